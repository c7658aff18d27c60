"""One pass over the journeys: publish versions, enroll, advance, queue sends.

A pass holds each journey while it works on it, so two passes of one journey take
turns (:mod:`~omni_journey.runner.locks`). Each batch is one transaction: read the
journey's event cursor (locked on PostgreSQL; SQLite takes the write lock at BEGIN),
lock the batch's customers when a cap across journeys applies, load the batch's facts
in bulk, decide with the pure engine, turn its effects into rows
(:mod:`~omni_journey.runner.effects`, pure), write states, outbox rows and the decision
record (:mod:`~omni_journey.runner.writes`), move the cursor, commit. A crash rolls the
whole batch back and the next pass redoes it; outbox rows are unique by idempotency
key, so a redo never queues a send twice.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from omni_journey.channels.policy import ChannelPolicy, RulePolicy
from omni_journey.engine import CompiledJourney, EntryCandidate, advance, evaluate_entry
from omni_journey.engine.types import (
    ACTIVE,
    Effect,
    EnrollmentState,
    Entered,
    EventView,
    SendMessage,
)
from omni_journey.runner import locks, reads, writes
from omni_journey.runner.effects import PassReport, Rows, effects_to_rows, entries_to_rows
from omni_journey.runner.heap import frozen_heap
from omni_journey.runner.session import PassSession
from omni_journey.runner.versions import (
    CompiledVersions,
    RefusedJourneysError,
    migrate_in_flight,
    publish_allowed,
    publish_versions,
)
from omni_journey.runner.watch import is_trigger, next_schedule, watched_events
from omni_journey.segments.compile import select_members
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.segments.fact_cache import FactCache
from omni_journey.segments.facts import BatchFacts
from omni_journey.segments.triggers import CATALOGUE_CUSTOMER_ID
from omni_journey.spec.models import (
    FrequencyCap,
    JourneySpec,
    ScheduleTrigger,
    SegmentSpec,
    SegmentTrigger,
)
from omni_journey.store.core import ENROLLMENTS

__all__ = ["JourneyRunner", "PassReport", "publish_versions"]

_MAX_BATCHES = 1000


class JourneyRunner:
    """Runs passes over a set of journeys against one store."""

    def __init__(
        self,
        engine: Engine,
        journeys: Mapping[str, JourneySpec],
        segments: Mapping[str, SegmentSpec],
        *,
        batch_size: int = 5000,
        global_cap: FrequencyCap | None = None,
        policy: ChannelPolicy | None = None,
        evaluate_trigger_segments: bool = True,
        trigger_max_age: timedelta | None = timedelta(days=1),
    ) -> None:
        self.engine = engine
        self.journeys = dict(journeys)
        self.segments = dict(segments)
        self.batch_size = batch_size
        self.global_cap = global_cap
        self.policy: ChannelPolicy = policy or RulePolicy()
        self.evaluate_trigger_segments = evaluate_trigger_segments
        self.trigger_max_age = trigger_max_age
        self._versions = CompiledVersions(self.segments)
        self._local = threading.local()  # the running pass's session, per thread

    # --- the pass ---------------------------------------------------------------

    def run(self, now: datetime, only: Iterable[str] | None = None) -> PassReport:
        report = PassReport()
        keys = sorted(set(only) if only is not None else self.journeys)
        with frozen_heap(), self.engine.connect() as connection:  # facts read afresh
            self._local.session = PassSession(connection, FactCache(self.segments, now))
            try:
                self._run(now, keys, report)
            finally:
                self._local.session = None
        if report.refused:  # after every other journey ran
            raise RefusedJourneysError(report.refused, report)
        return report

    def _begin(self) -> AbstractContextManager[Connection]:
        """One batch's transaction: on the pass's connection when a pass is running."""
        session: PassSession | None = getattr(self._local, "session", None)
        return session.transaction() if session is not None else self.engine.begin()

    def _run(self, now: datetime, keys: list[str], report: PassReport) -> None:
        with self._begin() as connection:
            versions, refused = publish_allowed(connection, self.journeys, now)
        report.refused.extend(d for d in refused if Path(d.path).stem in keys)
        keys = [key for key in keys if key in versions]
        if self.evaluate_trigger_segments:
            wanted = sorted(
                {
                    spec.trigger.segment
                    for key, spec in self.journeys.items()
                    if key in keys and isinstance(spec.trigger, SegmentTrigger)
                }
                & set(self.segments)
            )
            if wanted:
                evaluate_segments(self.engine, self.segments, now=now, keys=wanted)
        session: PassSession = self._local.session
        for key in keys:
            if self.journeys[key].enabled:
                with session.journey(key):  # while another pass holds it, wait
                    self._journey_pass(key, versions[key], now, report)

    def _journey_pass(self, key: str, version_id: int, now: datetime, report: PassReport) -> None:
        self._migrate(key, version_id, now)
        if isinstance(self.journeys[key].trigger, ScheduleTrigger):
            self._scheduled_audience(key, version_id, now, report)
        for _ in range(_MAX_BATCHES):
            if not self._event_batch(key, version_id, now, report):
                break
        for _ in range(_MAX_BATCHES):
            if not self._due_batch(key, now, report):
                break

    def next_wake(self) -> datetime | None:
        """The earliest time an active enrollment wants to be advanced (for simulate)."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.min(ENROLLMENTS.c.wake_at)).where(ENROLLMENTS.c.state == ACTIVE)
            ).scalar_one_or_none()

    # --- versions -------------------------------------------------------------------

    def _journey(self, connection: Connection, version_id: int) -> CompiledJourney:
        return self._versions.get(connection, version_id)

    def _facts(
        self,
        connection: Connection,
        customers: Sequence[str],
        version_ids: Iterable[int],
        now: datetime,
    ) -> BatchFacts:
        """The facts the engine declared these versions need, loaded in bulk now (once a
        pass for each customer: :class:`FactCache`): the engine then decides from memory
        and never waits on the store. Under a cap across journeys, the customers are
        locked first: their recent sends, read next, are then all another journey's
        batch will have queued (journeys of its own take turns: the journey lock)."""
        needs = self._versions.needs(connection, version_ids)
        if needs.sends and self.global_cap is not None:
            locks.hold_customers(connection, customers)
        session: PassSession | None = getattr(self._local, "session", None)
        if session is None or session.now != now:  # outside a pass: read now
            return FactCache(self.segments, now).load(connection, customers, needs)
        return session.facts.load(connection, customers, needs)

    def _migrate(self, key: str, current_id: int, now: datetime) -> None:
        """Move in-flight customers to the current version when the journey says so."""
        spec = self.journeys[key]
        if spec.versioning.on_change != "migrate":
            return
        with self._begin() as connection:
            old_ids: Any = connection.execute(
                select(ENROLLMENTS.c.journey_version_id)
                .where(
                    and_(
                        ENROLLMENTS.c.journey_key == key,
                        ENROLLMENTS.c.state == ACTIVE,
                        ENROLLMENTS.c.journey_version_id != current_id,
                    )
                )
                .distinct()
            ).scalars()
            old = {old_id: self._journey(connection, old_id) for old_id in list(old_ids)}
            current = self._journey(connection, current_id)
            migrate_in_flight(connection, spec, current, old, now)

    # --- events: exits, goals, waits, and entries -------------------------------------

    def _event_batch(self, key: str, version_id: int, now: datetime, report: PassReport) -> bool:
        spec = self.journeys[key]
        with self._begin() as connection:
            cursor = writes.event_cursor(connection, key, now)
            names = set(watched_events(spec))
            for other in reads.active_versions(connection, key) | {version_id}:
                names |= watched_events(self._journey(connection, other).spec)
            events = reads.events_after(connection, cursor, names, self.batch_size)
            if not events:
                return False
            by_customer: dict[str, list[EventView]] = defaultdict(list)
            for event in events:
                by_customer[event.customer_id].append(event)
            customers = sorted(by_customer)
            existing = reads.active_enrollments(connection, key, customers)
            existing += reads.awaiting_goal(connection, spec, events, now)
            versions = {s.version_id for s in existing} | {version_id}
            facts = self._facts(connection, customers, versions, now)
            moved = self._advance_and_apply(
                connection, key, existing, by_customer, facts, now, report
            )
            # still active: all of these customers' active enrollments were just written back
            active = {state.customer_id for state in moved if state.state == ACTIVE}
            self._enter(
                connection, key, version_id, events, by_customer, facts, now, report, active
            )
            writes.advance_cursor(connection, key, max(e.seq for e in events), now)
            return len(events) == self.batch_size

    def _enter(
        self,
        connection: Connection,
        key: str,
        version_id: int,
        events: Sequence[EventView],
        by_customer: Mapping[str, Sequence[EventView]],
        facts: BatchFacts,
        now: datetime,
        report: PassReport,
        active: set[str],
    ) -> None:
        """Enter whom ``events`` trigger (``active``: the batch's actively enrolled)."""
        journey = self._journey(connection, version_id)
        # catalogue events (a price drop for a sku) are fanned out per customer first;
        # a trigger event older than trigger_max_age when first seen (a backfill, a
        # journey launched after the fact) enters nobody
        oldest = now - self.trigger_max_age if self.trigger_max_age is not None else None
        triggers = [
            e
            for e in events
            if is_trigger(journey.spec, e)
            and e.customer_id != CATALOGUE_CUSTOMER_ID
            and (oldest is None or e.at >= oldest)
        ]
        if not triggers:
            return
        customers = sorted({e.customer_id for e in triggers})
        last_entered = reads.last_entered(connection, key, customers)
        candidates = _candidates([(e.customer_id, e) for e in triggers], active, last_entered)
        self._enroll(connection, key, journey, candidates, by_customer, facts, now, report)

    def _enroll(
        self,
        connection: Connection,
        key: str,
        journey: CompiledJourney,
        candidates: Sequence[EntryCandidate],
        by_customer: Mapping[str, Sequence[EventView]],
        facts: BatchFacts,
        now: datetime,
        report: PassReport,
    ) -> None:
        """Decide entries, store the new enrollments, and advance them at once."""
        effects = evaluate_entry(journey, candidates, facts, now)
        entered = [effect for effect in effects if isinstance(effect, Entered)]
        refused = [effect for effect in effects if not isinstance(effect, Entered)]
        self._apply(connection, key, refused, now, report)
        if not entered:
            return
        states = writes.insert_enrollments(connection, entered, now)
        event_ids = [effect.event_id for effect in entered]
        self._write(connection, entries_to_rows(key, states, event_ids, now, report), now)
        self._advance_and_apply(connection, key, states, by_customer, facts, now, report)

    # --- scheduled audiences ------------------------------------------------------------

    def _scheduled_audience(
        self, key: str, version_id: int, now: datetime, report: PassReport
    ) -> None:
        """Enter everyone in the trigger's segment when the schedule comes due."""
        spec = self.journeys[key]
        trigger = spec.trigger
        assert isinstance(trigger, ScheduleTrigger)
        segment = self.segments.get(trigger.segment)
        if segment is None:
            return
        with self._begin() as connection:
            last = reads.locked_cursor(connection, key, "last_scheduled_at")
            if next_schedule(trigger.schedule, last, now) > now:
                return
            members = select_members(connection, segment, self.segments, now=now)
            journey = self._journey(connection, version_id)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                facts = self._facts(connection, chunk, [version_id], now)
                active = {s.customer_id for s in reads.active_enrollments(connection, key, chunk)}
                last_entered = reads.last_entered(connection, key, chunk)
                candidates = _candidates([(c, None) for c in chunk], active, last_entered)
                self._enroll(connection, key, journey, candidates, {}, facts, now, report)
            writes.mark_scheduled(connection, key, now)

    # --- wake-ups -----------------------------------------------------------------------

    def _due_batch(self, key: str, now: datetime, report: PassReport) -> bool:
        with self._begin() as connection:
            states = reads.due_enrollments(connection, key, now, self.batch_size)
            if not states:
                return False
            customers = sorted({s.customer_id for s in states})
            facts = self._facts(connection, customers, {s.version_id for s in states}, now)
            self._advance_and_apply(connection, key, states, {}, facts, now, report)
            return len(states) == self.batch_size

    # --- engine calls and effects ----------------------------------------------------

    def _advance_and_apply(
        self,
        connection: Connection,
        key: str,
        states: Sequence[EnrollmentState],
        events: Mapping[str, Sequence[EventView]],
        facts: BatchFacts,
        now: datetime,
        report: PassReport,
    ) -> list[EnrollmentState]:
        """Advance ``states`` and write what the engine decided; the states after."""
        by_version: dict[int, list[EnrollmentState]] = defaultdict(list)
        moved: list[EnrollmentState] = []
        for state in states:
            by_version[state.version_id].append(state)
        for version_id, group in by_version.items():
            journey = self._journey(connection, version_id)
            result = advance(journey, group, events, facts, now, global_cap=self.global_cap)
            moved += result.states
            if result.states:
                writes.write_back(connection, result.states, now)
                report.add(key, "advanced", len(result.states))
            self._apply(
                connection,
                key,
                result.effects,
                now,
                report,
                version_id=version_id,
                contexts={state.id: state.context for state in result.states},
            )
        return moved

    def _apply(
        self,
        connection: Connection,
        key: str,
        effects: Sequence[Effect],
        now: datetime,
        report: PassReport,
        version_id: int | None = None,
        contexts: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        """The channel policy decides every send (its history loaded in bulk first: the
        decisions themselves do no I/O), then the effects become rows."""
        sends = [effect for effect in effects if isinstance(effect, SendMessage)]
        decisions = []
        if sends:
            quiet = self._journey(connection, sends[0].version_id).spec.quiet_hours
            loaded = self.policy.load(connection, sends, now)
            decisions = self.policy.decide_many(loaded, sends, now, quiet_hours=quiet)
        rows = effects_to_rows(
            key, effects, decisions, now, report, version_id=version_id, contexts=contexts
        )
        self._write(connection, rows, now)

    def _write(self, connection: Connection, rows: Rows, now: datetime) -> None:
        """Write one batch's rows; the pass's facts forget what they change."""
        writes.write_rows(connection, rows, now)
        if (session := getattr(self._local, "session", None)) is not None:
            session.wrote(rows)


def _candidates(
    triggers: Sequence[tuple[str, EventView | None]],
    active: set[str],
    last_entered: Mapping[str, datetime],
) -> list[EntryCandidate]:
    """Who may enter: (customer, trigger event or ``None``), with what the entry rules ask."""
    return [EntryCandidate(c, e, c in active, last_entered.get(c)) for c, e in triggers]
