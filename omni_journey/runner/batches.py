"""A pass's batches: events (exits, goals, waits, entries), scheduled audiences and
wake-ups, each one transaction, for one shard of a journey's customers.

:class:`Batches` is the base of :class:`~omni_journey.runner.passes.JourneyRunner`,
which holds the journeys (and their shards) while these run. Each batch reads the
journey's event cursor for its shard (locked on PostgreSQL; SQLite takes the write
lock at BEGIN), locks the batch's customers when a cap across journeys applies, loads
the batch's facts in bulk, decides with the pure engine, turns its effects into rows
(:mod:`~omni_journey.runner.effects`, pure), writes states, outbox rows and the
decision record (:mod:`~omni_journey.runner.writes`), moves the cursor, commits. A
crash rolls the whole batch back and the next pass redoes it; outbox rows are unique by
idempotency key, so a redo never queues a send twice.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from omni_journey.channels.policy import ChannelPolicy
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
from omni_journey.runner.session import PassSession
from omni_journey.runner.versions import CompiledVersions, migrate_in_flight
from omni_journey.runner.watch import is_trigger, next_schedule, watched_events
from omni_journey.segments.compile import select_members
from omni_journey.segments.fact_cache import FactCache
from omni_journey.segments.facts import BatchFacts
from omni_journey.segments.triggers import CATALOGUE_CUSTOMER_ID
from omni_journey.spec.models import FrequencyCap, JourneySpec, ScheduleTrigger, SegmentSpec
from omni_journey.store.core import ENROLLMENTS
from omni_journey.store.shards import ALL, Shard

__all__ = ["Batches"]


class Batches:
    """The batches of a pass; the attributes are the runner's (see JourneyRunner)."""

    engine: Engine
    journeys: dict[str, JourneySpec]
    segments: dict[str, SegmentSpec]
    batch_size: int
    global_cap: FrequencyCap | None
    policy: ChannelPolicy
    trigger_max_age: timedelta | None
    _versions: CompiledVersions
    _local: threading.local

    def _begin(self) -> AbstractContextManager[Connection]:
        """One batch's transaction: on the pass's connection when a pass is running."""
        session: PassSession | None = getattr(self._local, "session", None)
        return session.transaction() if session is not None else self.engine.begin()

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

    def _migrate(self, key: str, current_id: int, now: datetime, shard: Shard = ALL) -> None:
        """Move the shard's in-flight customers to the current version when the journey
        says so."""
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
            migrate_in_flight(connection, spec, current, old, now, shard)

    # --- events: exits, goals, waits, and entries -------------------------------------

    def _event_batch(
        self,
        key: str,
        version_id: int,
        now: datetime,
        report: PassReport,
        shard: Shard = ALL,
        upto: int | None = None,
    ) -> bool:
        """The next batch of the events of ``shard``'s customers (up to seq ``upto``)
        after the shard's cursor; whether there may be more."""
        spec = self.journeys[key]
        with self._begin() as connection:
            cursor = writes.event_cursor(connection, key, now, shard)
            names = set(watched_events(spec))
            for other in reads.active_versions(connection, key) | {version_id}:
                names |= watched_events(self._journey(connection, other).spec)
            events = reads.events_after(connection, cursor, names, self.batch_size, shard, upto)
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
            writes.advance_cursor(connection, key, max(e.seq for e in events), now, shard)
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
        self, key: str, version_id: int, now: datetime, report: PassReport, shard: Shard = ALL
    ) -> None:
        """Enter everyone of ``shard`` in the trigger's segment when the schedule comes
        due (each shard keeps its own "last served")."""
        spec = self.journeys[key]
        trigger = spec.trigger
        assert isinstance(trigger, ScheduleTrigger)
        segment = self.segments.get(trigger.segment)
        if segment is None:
            return
        with self._begin() as connection:
            last = reads.locked_cursor(connection, key, "last_scheduled_at", shard)
            if next_schedule(trigger.schedule, last, now) > now:
                return
            members = select_members(connection, segment, self.segments, now=now)
            members = [member for member in members if shard.holds(member)]
            journey = self._journey(connection, version_id)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                facts = self._facts(connection, chunk, [version_id], now)
                active = {s.customer_id for s in reads.active_enrollments(connection, key, chunk)}
                last_entered = reads.last_entered(connection, key, chunk)
                candidates = _candidates([(c, None) for c in chunk], active, last_entered)
                self._enroll(connection, key, journey, candidates, {}, facts, now, report)
            writes.mark_scheduled(connection, key, now, shard)

    # --- wake-ups -----------------------------------------------------------------------

    def _due_batch(self, key: str, now: datetime, report: PassReport, shard: Shard = ALL) -> bool:
        with self._begin() as connection:
            states = reads.due_enrollments(connection, key, now, self.batch_size, shard)
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
