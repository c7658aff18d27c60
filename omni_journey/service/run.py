"""One pass over the journeys: publish versions, enroll, advance, queue sends.

Each batch is one transaction: read the journey's event cursor (locked on PostgreSQL;
SQLite takes the write lock at BEGIN), decide with the pure engine, write states,
outbox rows and the journey log, move the cursor, commit. A crash rolls the whole batch
back and the next pass redoes it; outbox rows are unique by idempotency key, so a
redo or an overlapping pass never queues a send twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, select, update

from omni_journey.channels.policy import ChannelPolicy, RulePolicy
from omni_journey.engine import (
    AdvanceResult,
    CompiledJourney,
    EntryCandidate,
    advance,
    compile_journey,
    evaluate_entry,
    plan_migration,
)
from omni_journey.engine.types import (
    ACTIVE,
    CallWebhook,
    Converted,
    Effect,
    EnrollmentState,
    Entered,
    EventView,
    ExitJourney,
    ScheduleWakeup,
    SendMessage,
    Skip,
    StepEntered,
    UpdateAttributes,
)
from omni_journey.identity import DriverSql
from omni_journey.segments.compile import select_members
from omni_journey.segments.evaluate import SEGMENT_ENTERED, evaluate_segments
from omni_journey.segments.facts import LazyFacts, lazy_facts
from omni_journey.segments.triggers import CATALOGUE_CUSTOMER_ID
from omni_journey.service.records import (
    context_json,
    enrollment_row,
    row_to_enrollment,
    row_to_event,
)
from omni_journey.service.versions import check_in_flight
from omni_journey.spec.models import (
    EventTrigger,
    FrequencyCap,
    JourneySpec,
    Schedule,
    ScheduleTrigger,
    SegmentSpec,
    SegmentTrigger,
    WaitForStep,
)
from omni_journey.store.core import (
    CUSTOMERS,
    ENROLLMENTS,
    EVENTS,
    JOURNEY_CURSORS,
    JOURNEY_VERSIONS,
    MESSAGES,
)
from omni_journey.store.ops import insert_ignore

__all__ = ["JourneyRunner", "PassReport", "publish_versions"]

_MAX_BATCHES = 1000


@dataclass
class PassReport:
    """Counts per journey of what one pass did."""

    journeys: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, journey_key: str, kind: str, count: int = 1) -> None:
        self.journeys[journey_key][kind] += count

    def total(self, kind: str) -> int:
        return sum(counter[kind] for counter in self.journeys.values())


def publish_versions(
    connection: Connection, journeys: Mapping[str, JourneySpec], now: datetime
) -> dict[str, int]:
    """Store each journey's definition once per distinct content; return the current ids.

    Refuses (:class:`~omni_journey.errors.SpecError`, code ``removed-step-in-use``) to
    publish a version that would strand customers: see :mod:`omni_journey.service.versions`.
    """
    check_in_flight(connection, journeys)
    current: dict[str, int] = {}
    for key, spec in journeys.items():
        digest = spec.version_hash()
        table = JOURNEY_VERSIONS
        found: Any = connection.execute(
            select(table.c.id).where(and_(table.c.journey_key == key, table.c.spec_hash == digest))
        ).scalar_one_or_none()
        if found is None:
            latest = connection.execute(
                select(func.max(table.c.version)).where(table.c.journey_key == key)
            ).scalar_one_or_none()
            connection.execute(
                insert_ignore(connection, table),
                {
                    "journey_key": key,
                    "version": (latest or 0) + 1,
                    "spec_hash": digest,
                    "spec": spec.canonical(),
                    "published_at": now,
                },
            )
            found = connection.execute(
                select(table.c.id).where(
                    and_(table.c.journey_key == key, table.c.spec_hash == digest)
                )
            ).scalar_one()
        current[key] = int(found)
    return current


def _trigger_event(spec: JourneySpec) -> str | None:
    """The event that enters customers: the trigger event, or ``segment.entered``."""
    if isinstance(spec.trigger, EventTrigger):
        return spec.trigger.event
    if isinstance(spec.trigger, SegmentTrigger):
        return SEGMENT_ENTERED
    return None


def _is_trigger(spec: JourneySpec, event: EventView) -> bool:
    if event.name != _trigger_event(spec):
        return False
    if isinstance(spec.trigger, SegmentTrigger):
        return event.properties.get("segment") == spec.trigger.segment
    return True


def _watched_events(spec: JourneySpec) -> set[str]:
    names = {exit_.event for exit_ in spec.exit_when}
    if spec.goal:
        names.add(spec.goal.event)
    names.update(step.event for step in spec.steps if isinstance(step, WaitForStep))
    trigger_event = _trigger_event(spec)
    if trigger_event:
        names.add(trigger_event)
    return names


def _next_schedule(schedule: Schedule, last: datetime | None, now: datetime) -> datetime:
    """When a scheduled audience is next due (UTC): ``every`` after the slot it last
    served, where a slot is ``at`` o'clock UTC when given; the first run is due at once."""
    if last is None:
        return now
    if schedule.at is None:
        return last + schedule.every
    slot = last.astimezone(UTC).replace(
        hour=schedule.at.hour, minute=schedule.at.minute, second=0, microsecond=0
    )
    if slot > last:
        slot -= timedelta(days=1)
    return slot + schedule.every


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
            new = self._journey(connection, current_id)
            for old_id in list(old_ids):
                plan = plan_migration(
                    self._journey(connection, old_id), new, spec.versioning.migrate
                )
                for old_step, new_step in plan.items():
                    if new_step is None:
                        continue  # refused by validate; stays on its version
                    connection.execute(
                        update(ENROLLMENTS)
                        .where(
                            and_(
                                ENROLLMENTS.c.journey_version_id == old_id,
                                ENROLLMENTS.c.state == ACTIVE,
                                ENROLLMENTS.c.step_id == old_step,
                            )
                        )
                        .values(journey_version_id=current_id, step_id=new_step, updated_at=now)
                    )

    # --- events: exits, goals, waits, and entries -------------------------------------

    def _event_batch(self, key: str, version_id: int, now: datetime, report: PassReport) -> bool:
        spec = self.journeys[key]
        with self.engine.begin() as connection:
            cursor = connection.execute(
                select(JOURNEY_CURSORS.c.last_event_seq)
                .where(JOURNEY_CURSORS.c.journey_key == key)
                .with_for_update()
            ).scalar_one_or_none()
            if cursor is None:
                connection.execute(
                    insert_ignore(connection, JOURNEY_CURSORS),
                    {"journey_key": key, "last_event_seq": 0, "updated_at": now},
                )
                cursor = 0
            names = set(_watched_events(spec))
            active_versions = self._active_versions(connection, key) | {version_id}
            for other in active_versions:
                names |= _watched_events(self._journey(connection, other).spec)
            rows = connection.execute(
                select(EVENTS)
                .where(and_(EVENTS.c.seq > cursor, EVENTS.c.name.in_(sorted(names))))
                .order_by(EVENTS.c.seq)
                .limit(self.batch_size)
            ).all()
            if not rows:
                return False
            events = [row_to_event(row) for row in rows]
            by_customer: dict[str, list[EventView]] = defaultdict(list)
            for event in events:
                by_customer[event.customer_id].append(event)
            customers = sorted(by_customer)
            facts = lazy_facts(connection, customers, now=now, segments=self.segments)
            existing = self._active_enrollments(connection, key, customers)
            existing += self._awaiting_goal(connection, spec, events, now)
            self._advance_and_apply(connection, key, existing, by_customer, facts, now, report)
            self._enter(connection, key, version_id, events, by_customer, facts, now, report)
            connection.execute(
                update(JOURNEY_CURSORS)
                .where(JOURNEY_CURSORS.c.journey_key == key)
                .values(last_event_seq=max(e.seq for e in events), updated_at=now)
            )
            return len(rows) == self.batch_size

    def _enter(
        self,
        connection: Connection,
        key: str,
        version_id: int,
        events: Sequence[EventView],
        by_customer: Mapping[str, Sequence[EventView]],
        facts: LazyFacts,
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
            if _is_trigger(journey.spec, e)
            and e.customer_id != CATALOGUE_CUSTOMER_ID
            and (oldest is None or e.at >= oldest)
        ]
        if not triggers:
            return
        customers = sorted({e.customer_id for e in triggers})
        active = {s.customer_id for s in self._active_enrollments(connection, key, customers)}
        last_entered = self._last_entered(connection, key, customers)
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
        facts: LazyFacts,
        now: datetime,
        report: PassReport,
    ) -> None:
        """Decide entries, store the new enrollments, and advance them at once."""
        effects = evaluate_entry(journey, candidates, facts, now)
        entered = [effect for effect in effects if isinstance(effect, Entered)]
        self._apply(
            connection, key, [e for e in effects if not isinstance(e, Entered)], now, report
        )
        if not entered:
            return
        rows = [enrollment_row(effect.enrollment, now) for effect in entered]
        for row in rows:
            row.pop("id")
        ids: Any = (
            connection.execute(
                ENROLLMENTS.insert().returning(
                    ENROLLMENTS.c.id,
                    sort_by_parameter_order=True,
                ),
                rows,
            )
            .scalars()
            .all()
        )
        states = []
        log = []
        for new_id, effect in zip(ids, entered, strict=True):
            state = effect.enrollment
            states.append(_with_id(state, new_id))
            log.append(
                _log(
                    key,
                    state.version_id,
                    new_id,
                    state.customer_id,
                    None,
                    "entered",
                    now,
                    holdout=state.holdout,
                    event_id=effect.event_id,
                    at=state.entered_at,
                )
            )
        self._insert_log(connection, log)
        self._emit(
            connection,
            [
                (
                    f"journey.entered:{s.id}",
                    "journey.entered",
                    s.customer_id,
                    s.entered_at,
                    {"journey": key, "holdout": s.holdout},
                )
                for s in states
            ],
            now,
        )
        report.add(key, "entered", len(states))
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
            last = connection.execute(
                select(JOURNEY_CURSORS.c.last_scheduled_at)
                .where(JOURNEY_CURSORS.c.journey_key == key)
                .with_for_update()
            ).scalar_one_or_none()
            if _next_schedule(trigger.schedule, last, now) > now:
                return
            members = select_members(connection, segment, self.segments, now=now)
            journey = self._journey(connection, version_id)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                facts = lazy_facts(connection, chunk, now=now, segments=self.segments)
                active = {s.customer_id for s in self._active_enrollments(connection, key, chunk)}
                last_entered = self._last_entered(connection, key, chunk)
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
            values = {"journey_key": key, "last_event_seq": 0, "updated_at": now}
            connection.execute(insert_ignore(connection, JOURNEY_CURSORS), values)
            connection.execute(
                update(JOURNEY_CURSORS)
                .where(JOURNEY_CURSORS.c.journey_key == key)
                .values(last_scheduled_at=now, updated_at=now)
            )

    # --- wake-ups -----------------------------------------------------------------------

    def _due_batch(self, key: str, now: datetime, report: PassReport) -> bool:
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(ENROLLMENTS)
                .where(
                    and_(
                        ENROLLMENTS.c.journey_key == key,
                        ENROLLMENTS.c.state == ACTIVE,
                        ENROLLMENTS.c.wake_at <= now,
                    )
                )
                .order_by(ENROLLMENTS.c.wake_at, ENROLLMENTS.c.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return False
            states = [row_to_enrollment(row) for row in rows]
            facts = lazy_facts(
                connection, [s.customer_id for s in states], now=now, segments=self.segments
            )
            self._advance_and_apply(connection, key, states, {}, facts, now, report)
            return len(rows) == self.batch_size

    # --- engine calls and effects ----------------------------------------------------

    def _advance_and_apply(
        self,
        connection: Connection,
        key: str,
        states: Sequence[EnrollmentState],
        events: Mapping[str, Sequence[EventView]],
        facts: LazyFacts,
        now: datetime,
        report: PassReport,
    ) -> None:
        by_version: dict[int, list[EnrollmentState]] = defaultdict(list)
        for state in states:
            by_version[state.version_id].append(state)
        for version_id, group in by_version.items():
            journey = self._journey(connection, version_id)
            result: AdvanceResult = advance(
                journey, group, events, facts, now, global_cap=self.global_cap
            )
            if result.states:
                _write_back(connection, result.states, now)
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
        contexts = contexts or {}
        sends = [effect for effect in effects if isinstance(effect, SendMessage)]
        decided = iter(
            self.policy.choose_many(
                connection,
                sends,
                now,
                quiet_hours=self._journey(connection, sends[0].version_id).spec.quiet_hours,
            )
            if sends
            else []
        )
        log: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        emitted: list[tuple[str, str, str, datetime, dict[str, Any]]] = []
        updates: list[UpdateAttributes] = []
        for effect in effects:
            if isinstance(effect, StepEntered):
                log.append(
                    _log(
                        key,
                        version_id,
                        effect.enrollment_id,
                        effect.customer_id,
                        effect.step_id,
                        "step",
                        now,
                        at=effect.at,
                    )
                )
            elif isinstance(effect, SendMessage):
                decision = next(decided)
                send_after = decision.send_after or effect.send_after
                messages.append(
                    {
                        "idempotency_key": effect.idempotency_key,
                        "enrollment_id": effect.enrollment_id,
                        "journey_key": effect.journey_key,
                        "journey_version_id": effect.version_id,
                        "step_id": effect.step_id,
                        "customer_id": effect.customer_id,
                        "channel": decision.channel,
                        "message_key": effect.message,
                        "status": "pending",
                        "send_after": send_after,
                        "created_at": now,
                        "attempts": 0,
                        "decision": decision.as_log(),
                        "render_context": _render_context(contexts.get(effect.enrollment_id)),
                    }
                )
                log.append(
                    _log(
                        key,
                        effect.version_id,
                        effect.enrollment_id,
                        effect.customer_id,
                        effect.step_id,
                        "sent",
                        now,
                        reason=decision.channel,
                        at=send_after,
                    )
                )
                report.add(key, f"queued:{decision.channel}")
                report.add(key, "queued")
            elif isinstance(effect, Skip):
                log.append(
                    _log(
                        key,
                        version_id,
                        effect.enrollment_id,
                        effect.customer_id,
                        effect.step_id,
                        "skipped",
                        now,
                        reason=effect.reason,
                        at=effect.at,
                    )
                )
                report.add(key, f"skipped:{effect.reason}")
                report.add(key, "skipped")
            elif isinstance(effect, ScheduleWakeup):
                if effect.reason.startswith(("quiet_hours", "send_window")):
                    report.add(key, "deferred")
            elif isinstance(effect, ExitJourney):
                log.append(
                    _log(
                        key,
                        version_id,
                        effect.enrollment_id,
                        effect.customer_id,
                        None,
                        "exited",
                        now,
                        reason=effect.reason,
                        at=effect.at,
                    )
                )
                emitted.append(
                    (
                        f"journey.exited:{effect.enrollment_id}",
                        "journey.exited",
                        effect.customer_id,
                        effect.at,
                        {"journey": key, "reason": effect.reason},
                    )
                )
                report.add(key, "exited" if effect.reason != "completed" else "completed")
            elif isinstance(effect, Converted):
                log.append(
                    _log(
                        key,
                        version_id,
                        effect.enrollment_id,
                        effect.customer_id,
                        effect.last_step_id,
                        "converted",
                        now,
                        holdout=effect.holdout,
                        event_id=effect.event_id,
                        reason=effect.last_message,
                        at=effect.at,
                    )
                )
                emitted.append(
                    (
                        f"journey.converted:{effect.enrollment_id}",
                        "journey.converted",
                        effect.customer_id,
                        effect.at,
                        {
                            "journey": key,
                            "holdout": effect.holdout,
                            "event_id": effect.event_id,
                            "message": effect.last_message,
                        },
                    )
                )
                report.add(key, "converted")
            elif isinstance(effect, UpdateAttributes):
                updates.append(effect)
            elif isinstance(effect, CallWebhook):
                messages.append(
                    {
                        "idempotency_key": effect.idempotency_key,
                        "enrollment_id": effect.enrollment_id,
                        "journey_key": key,
                        "journey_version_id": version_id,
                        "step_id": effect.step_id,
                        "customer_id": effect.customer_id,
                        "channel": "webhook",
                        "message_key": effect.step_id,
                        "status": "pending",
                        "send_after": now,
                        "created_at": now,
                        "attempts": 0,
                        "decision": {
                            "url": effect.url,
                            "body": dict(effect.body),
                            "headers": dict(effect.headers),
                        },
                        "render_context": {},
                    }
                )
                report.add(key, "webhooks")
        if messages:
            connection.execute(insert_ignore(connection, MESSAGES, "idempotency_key"), messages)
        self._insert_log(connection, log)
        self._emit(connection, emitted, now)
        self._update_attributes(connection, updates, now)

    # --- small store helpers ------------------------------------------------------

    def _active_versions(self, connection: Connection, key: str) -> set[int]:
        return set(
            connection.execute(
                select(ENROLLMENTS.c.journey_version_id)
                .where(and_(ENROLLMENTS.c.journey_key == key, ENROLLMENTS.c.state == ACTIVE))
                .distinct()
            ).scalars()
        )

    def _active_enrollments(
        self, connection: Connection, key: str, customers: Sequence[str]
    ) -> list[EnrollmentState]:
        states: list[EnrollmentState] = []
        for start in range(0, len(customers), 500):
            chunk = customers[start : start + 500]
            rows = connection.execute(
                select(ENROLLMENTS).where(
                    and_(
                        ENROLLMENTS.c.journey_key == key,
                        ENROLLMENTS.c.state == ACTIVE,
                        ENROLLMENTS.c.customer_id.in_(chunk),
                    )
                )
            ).all()
            states.extend(row_to_enrollment(row) for row in rows)
        return states

    def _awaiting_goal(
        self, connection: Connection, spec: JourneySpec, events: Sequence[EventView], now: datetime
    ) -> list[EnrollmentState]:
        """Ended enrollments whose goal window is still open, for customers with a goal
        event in this batch: a conversion after the last step still counts."""
        if spec.goal is None:
            return []
        buyers = sorted({e.customer_id for e in events if e.name == spec.goal.event})
        states: list[EnrollmentState] = []
        for start in range(0, len(buyers), 500):
            rows = connection.execute(
                select(ENROLLMENTS).where(
                    and_(
                        ENROLLMENTS.c.journey_key == spec.key,
                        ENROLLMENTS.c.state != ACTIVE,
                        ENROLLMENTS.c.customer_id.in_(buyers[start : start + 500]),
                        ENROLLMENTS.c.entered_at >= now - spec.goal.within,
                    )
                )
            ).all()
            states.extend(
                state for state in map(row_to_enrollment, rows) if "converted" not in state.context
            )
        return states

    def _last_entered(
        self, connection: Connection, key: str, customers: Sequence[str]
    ) -> dict[str, datetime]:
        result: dict[str, datetime] = {}
        for start in range(0, len(customers), 500):
            chunk = customers[start : start + 500]
            rows = connection.execute(
                select(ENROLLMENTS.c.customer_id, func.max(ENROLLMENTS.c.entered_at))
                .where(and_(ENROLLMENTS.c.journey_key == key, ENROLLMENTS.c.customer_id.in_(chunk)))
                .group_by(ENROLLMENTS.c.customer_id)
            ).all()
            result.update({row.customer_id: row[1] for row in rows})
        return result

    def _insert_log(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Rows built by :func:`_log`, through one driver ``executemany`` (as
        :func:`_write_back`)."""
        if not rows:
            return
        sql = DriverSql(connection)
        stamp = sql.timestamp
        fields = itemgetter(*_LOG_COLUMNS[:-1])
        values = [(*fields(row), stamp(row["at"])) for row in rows]
        statement = (
            f"INSERT INTO journey_log ({', '.join(_LOG_COLUMNS)}) "
            f"VALUES ({sql.params(len(_LOG_COLUMNS))})"
        )
        sql.executemany(connection, statement, values)

    def _emit(
        self,
        connection: Connection,
        events: Sequence[tuple[str, str, str, datetime, dict[str, Any]]],
        now: datetime,
    ) -> None:
        """Record what journeys did as events (other journeys may trigger on them)."""
        if not events:
            return
        connection.execute(
            insert_ignore(connection, EVENTS, "event_id"),
            [
                {
                    "event_id": event_id,
                    "name": name,
                    "customer_id": customer_id,
                    "at": at,
                    "received_at": now,
                    "properties": properties,
                }
                for event_id, name, customer_id, at, properties in events
            ],
        )

    def _update_attributes(
        self, connection: Connection, updates: Sequence[UpdateAttributes], now: datetime
    ) -> None:
        if not updates:
            return
        wanted = sorted({u.customer_id for u in updates})
        current = {
            row.id: dict(row.attributes or {})
            for row in connection.execute(
                select(CUSTOMERS.c.id, CUSTOMERS.c.attributes).where(CUSTOMERS.c.id.in_(wanted))
            )
        }
        for change in updates:
            attributes = current.setdefault(change.customer_id, {})
            attributes.update(change.set)
            for name in change.unset:
                attributes.pop(name, None)
        connection.execute(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.id == bindparam("b_id"))
            .values(attributes=bindparam("attributes"), updated_at=bindparam("updated_at")),
            [
                {"b_id": cid, "attributes": attrs, "updated_at": now}
                for cid, attrs in current.items()
            ],
        )


def _write_back(connection: Connection, states: Sequence[EnrollmentState], now: datetime) -> None:
    """Update the enrollments the engine moved: one driver ``executemany`` binding
    exactly what the column types would (SQLAlchemy's per-row bind processing cost
    more than the engine itself; bench/README.md)."""
    sql = DriverSql(connection)
    stamp = sql.timestamp
    updated = stamp(now)
    p = sql.p
    statement = (
        f"UPDATE enrollments SET step_id = {p}, state = {p}, wake_at = {p}, "
        f"updated_at = {p}, ended_at = {p}, end_reason = {p}, context = {sql.json_p} "
        f"WHERE id = {p}"
    )
    rows = [
        (
            s.step_id,
            s.state,
            None if s.wake_at is None else stamp(s.wake_at),
            updated,
            None if s.ended_at is None else stamp(s.ended_at),
            s.end_reason,
            context_json(s.context),
            s.id,
        )
        for s in states
    ]
    sql.executemany(connection, statement, rows)


def _render_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a message is rendered from besides the profile: the trigger event."""
    if not context:
        return {}
    return {"event": dict(context.get("trigger") or {}), "event_name": context.get("trigger_event")}


def _with_id(state: EnrollmentState, new_id: int) -> EnrollmentState:
    return replace(state, id=new_id)


_LOG_COLUMNS = (  # what _log builds; "at" last (bound as a timestamp)
    "journey_key",
    "journey_version_id",
    "enrollment_id",
    "customer_id",
    "step_id",
    "kind",
    "reason",
    "holdout",
    "event_id",
    "message_id",
    "at",
)


def _log(
    key: str,
    version_id: int | None,
    enrollment_id: int | None,
    customer_id: str,
    step_id: str | None,
    kind: str,
    now: datetime,
    *,
    reason: str | None = None,
    holdout: bool = False,
    event_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "journey_key": key,
        "journey_version_id": version_id,
        "enrollment_id": enrollment_id,
        "customer_id": customer_id,
        "step_id": step_id,
        "kind": kind,
        "reason": reason,
        "holdout": holdout,
        "event_id": event_id,
        "message_id": None,
        "at": at or now,
    }
