"""One pass over the journeys: publish versions, enroll, advance, queue sends.

Each batch is one transaction: read the journey's event cursor (locked on PostgreSQL;
SQLite takes the write lock at BEGIN), load the batch's facts in bulk, decide with the
pure engine, turn its effects into rows (:mod:`~omni_journey.runner.effects`, pure),
write states, outbox rows and the decision record (:mod:`~omni_journey.runner.writes`),
move the cursor, commit. A crash rolls the whole batch back and the next pass redoes
it; outbox rows are unique by idempotency key, so a redo or an overlapping pass never
queues a send twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from omni_journey.channels.policy import ChannelPolicy, RulePolicy
from omni_journey.engine import (
    NO_FACTS,
    CompiledJourney,
    EntryCandidate,
    FactNeeds,
    advance,
    compile_journey,
    evaluate_entry,
    facts_needed,
)
from omni_journey.engine.types import (
    ACTIVE,
    Effect,
    EnrollmentState,
    Entered,
    EventView,
    SendMessage,
)
from omni_journey.runner import reads, writes
from omni_journey.runner.effects import PassReport, effects_to_rows, entries_to_rows
from omni_journey.runner.versions import migrate_in_flight, publish_versions
from omni_journey.runner.watch import is_trigger, next_schedule, watched_events
from omni_journey.segments.compile import select_members
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.segments.facts import BatchFacts, load_facts
from omni_journey.segments.triggers import CATALOGUE_CUSTOMER_ID
from omni_journey.spec.models import (
    FrequencyCap,
    JourneySpec,
    ScheduleTrigger,
    SegmentSpec,
    SegmentTrigger,
)
from omni_journey.store.core import ENROLLMENTS, JOURNEY_VERSIONS

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
        self._compiled: dict[int, CompiledJourney] = {}
        self._needs: dict[int, FactNeeds] = {}

    # --- the pass ---------------------------------------------------------------

    def run(self, now: datetime, only: Iterable[str] | None = None) -> PassReport:
        report = PassReport()
        keys = sorted(set(only) if only is not None else self.journeys)
        with self.engine.begin() as connection:
            versions = publish_versions(connection, self.journeys, now)
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
        for key in keys:
            spec = self.journeys[key]
            if not spec.enabled:
                continue
            self._migrate(key, versions[key], now)
            if isinstance(spec.trigger, ScheduleTrigger):
                self._scheduled_audience(key, versions[key], now, report)
            for _ in range(_MAX_BATCHES):
                if not self._event_batch(key, versions[key], now, report):
                    break
            for _ in range(_MAX_BATCHES):
                if not self._due_batch(key, now, report):
                    break
        return report

    def next_wake(self) -> datetime | None:
        """The earliest time an active enrollment wants to be advanced (for simulate)."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.min(ENROLLMENTS.c.wake_at)).where(ENROLLMENTS.c.state == ACTIVE)
            ).scalar_one_or_none()

    # --- versions -------------------------------------------------------------------

    def _journey(self, connection: Connection, version_id: int) -> CompiledJourney:
        compiled = self._compiled.get(version_id)
        if compiled is None:
            spec_json: Any = connection.execute(
                select(JOURNEY_VERSIONS.c.spec).where(JOURNEY_VERSIONS.c.id == version_id)
            ).scalar_one()
            compiled = compile_journey(JourneySpec.model_validate(spec_json), version_id)
            self._compiled[version_id] = compiled
        return compiled

    def _facts(
        self,
        connection: Connection,
        customers: Sequence[str],
        version_ids: Iterable[int],
        now: datetime,
    ) -> BatchFacts:
        """The facts the engine declared these versions need, loaded in bulk now: the
        engine then decides from memory and never waits on the store."""
        needs = NO_FACTS
        for version_id in set(version_ids):
            if version_id not in self._needs:
                spec = self._journey(connection, version_id).spec
                self._needs[version_id] = facts_needed(spec, self.segments)
            needs |= self._needs[version_id]
        return load_facts(connection, customers, now=now, segments=self.segments, needs=needs)

    def _migrate(self, key: str, current_id: int, now: datetime) -> None:
        """Move in-flight customers to the current version when the journey says so."""
        spec = self.journeys[key]
        if spec.versioning.on_change != "migrate":
            return
        with self.engine.begin() as connection:
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
        with self.engine.begin() as connection:
            cursor = reads.locked_cursor(connection, key)
            if cursor is None:
                writes.ensure_cursor(connection, key, now)
                cursor = 0
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
            self._advance_and_apply(connection, key, existing, by_customer, facts, now, report)
            self._enter(connection, key, version_id, events, by_customer, facts, now, report)
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
    ) -> None:
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
        active = {s.customer_id for s in reads.active_enrollments(connection, key, customers)}
        last_entered = reads.last_entered(connection, key, customers)
        candidates = [
            EntryCandidate(
                customer_id=e.customer_id,
                event=e,
                active=e.customer_id in active,
                last_entered_at=last_entered.get(e.customer_id),
            )
            for e in triggers
        ]
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
        writes.write_rows(connection, entries_to_rows(key, states, event_ids, now, report), now)
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
        with self.engine.begin() as connection:
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
                candidates = [
                    EntryCandidate(
                        customer_id=c,
                        event=None,
                        active=c in active,
                        last_entered_at=last_entered.get(c),
                    )
                    for c in chunk
                ]
                self._enroll(connection, key, journey, candidates, {}, facts, now, report)
            writes.mark_scheduled(connection, key, now)

    # --- wake-ups -----------------------------------------------------------------------

    def _due_batch(self, key: str, now: datetime, report: PassReport) -> bool:
        with self.engine.begin() as connection:
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
    ) -> None:
        by_version: dict[int, list[EnrollmentState]] = defaultdict(list)
        for state in states:
            by_version[state.version_id].append(state)
        for version_id, group in by_version.items():
            journey = self._journey(connection, version_id)
            result = advance(journey, group, events, facts, now, global_cap=self.global_cap)
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
        writes.write_rows(connection, rows, now)
