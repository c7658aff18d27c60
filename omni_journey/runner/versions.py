"""Journey versions: published once per distinct content, checked before, migrated after.

A new version of a journey with ``versioning.on_change: migrate`` moves the customers in
flight to it. A customer waiting at a step the new version no longer has can only move
when ``versioning.migrate`` names where to: without a target the change is refused
(with ``keep`` they finish on their old version, so removing the step is fine). A pass
(:func:`publish_allowed`) refuses only that journey: it is not run until its file is
fixed (its customers wait, nothing is lost), and every other journey runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omni_journey.engine import (
    NO_FACTS,
    CompiledJourney,
    FactNeeds,
    compile_journey,
    facts_needed,
    plan_migration,
)
from omni_journey.engine.types import ACTIVE
from omni_journey.errors import SpecError
from omni_journey.runner.writes import move_step
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.models import JourneySpec, SegmentSpec
from omni_journey.spec.project import JOURNEYS_DIR
from omni_journey.store.core import ENROLLMENTS, JOURNEY_VERSIONS
from omni_journey.store.ops import insert_ignore
from omni_journey.store.shards import ALL, Shard

__all__ = [
    "REMOVED_STEP_IN_USE",
    "CompiledVersions",
    "RefusedJourneysError",
    "check_in_flight",
    "in_flight_diagnostics",
    "in_flight_problems",
    "migrate_in_flight",
    "publish_allowed",
    "publish_versions",
]

log = logging.getLogger("omni_journey.runner")

REMOVED_STEP_IN_USE = "removed-step-in-use"  # in spec.diagnostics.STORE_CODES


def in_flight_problems(
    connection: Connection, journeys: Mapping[str, JourneySpec]
) -> list[tuple[str, str, int]]:
    """``(journey_key, step_id, customers)`` for every removed step that active
    enrollments (of any version) wait on, in journeys whose current spec is not yet
    published, migrate on change, and give no valid ``versioning.migrate`` target."""
    problems: list[tuple[str, str, int]] = []
    for key in sorted(journeys):
        spec = journeys[key]
        if spec.versioning.on_change != "migrate":
            continue
        published = connection.execute(
            select(JOURNEY_VERSIONS.c.id).where(
                and_(
                    JOURNEY_VERSIONS.c.journey_key == key,
                    JOURNEY_VERSIONS.c.spec_hash == spec.version_hash(),
                )
            )
        ).first()
        if published is not None:
            continue
        steps = {step.id for step in spec.steps}
        waiting = connection.execute(
            select(ENROLLMENTS.c.step_id, func.count())
            .where(
                and_(
                    ENROLLMENTS.c.journey_key == key,
                    ENROLLMENTS.c.state == ACTIVE,
                    ENROLLMENTS.c.step_id.is_not(None),
                )
            )
            .group_by(ENROLLMENTS.c.step_id)
            .order_by(ENROLLMENTS.c.step_id)
        ).all()
        for step_id, count in waiting:
            if step_id in steps or spec.versioning.migrate.get(step_id) in steps:
                continue
            problems.append((key, str(step_id), int(count)))
    return problems


def in_flight_diagnostics(
    problems: Sequence[tuple[str, str, int]], journeys_dir: str = JOURNEYS_DIR
) -> list[Diagnostic]:
    """One ``removed-step-in-use`` error per problem, pointing at the journey file."""
    return [
        Diagnostic(
            path=f"{journeys_dir}/{key}.yaml",
            line=1,
            col=1,
            code=REMOVED_STEP_IN_USE,
            message=(
                f"{count} customer{'s' if count != 1 else ''} wait{'s' if count == 1 else ''} "
                f'at step "{step}", which this version of journey "{key}" removes; with '
                "on_change: migrate they would have nowhere to go"
            ),
            expected=f'a versioning.migrate target for "{step}"',
            hint=f"add versioning.migrate: {{{step}: <target step>}}",
        )
        for key, step, count in problems
    ]


def check_in_flight(connection: Connection, journeys: Mapping[str, JourneySpec]) -> None:
    """Raise :class:`SpecError` when publishing ``journeys`` would strand customers."""
    problems = in_flight_problems(connection, journeys)
    if problems:
        raise SpecError(list(in_flight_diagnostics(problems)))


def publish_versions(
    connection: Connection, journeys: Mapping[str, JourneySpec], now: datetime
) -> dict[str, int]:
    """Store each journey's definition once per distinct content; return the current ids.

    Refuses (:class:`~omni_journey.errors.SpecError`, code ``removed-step-in-use``) to
    publish a version that would strand customers (:func:`check_in_flight`).
    """
    check_in_flight(connection, journeys)
    return _publish(connection, journeys, now)


class RefusedJourneysError(SpecError):
    """Raised at the end of a pass that ran every journey but the ones in ``diagnostics``
    (``removed-step-in-use``): those were not run, their customers wait where they are.
    ``report`` is the pass's report (what the other journeys did)."""

    def __init__(self, diagnostics: list[Diagnostic], report: Any) -> None:
        super().__init__(list(diagnostics))
        self.report = report


def publish_allowed(
    connection: Connection, journeys: Mapping[str, JourneySpec], now: datetime
) -> tuple[dict[str, int], list[Diagnostic]]:
    """Publish every journey whose current version strands nobody; return the current
    version ids of those, and the problems of the others (``removed-step-in-use``, one
    for each step in use that the new version removes), which keep their published
    versions untouched and must not run this pass. Each refusal is logged as an error."""
    problems = in_flight_problems(connection, journeys)
    for key, step, waiting in problems:
        log.error(
            "journey %s not run: its new version removes step %s, where %d customers wait "
            "(removed-step-in-use)", key, step, waiting,
        )  # fmt: skip
    refused = {key for key, _, _ in problems}
    allowed = {key: spec for key, spec in journeys.items() if key not in refused}
    return _publish(connection, allowed, now), in_flight_diagnostics(problems)


def _publish(
    connection: Connection, journeys: Mapping[str, JourneySpec], now: datetime
) -> dict[str, int]:
    current: dict[str, int] = {}
    table = JOURNEY_VERSIONS
    for key, spec in journeys.items():
        digest = spec.version_hash()
        same = and_(table.c.journey_key == key, table.c.spec_hash == digest)
        found: Any = connection.execute(select(table.c.id).where(same)).scalar_one_or_none()
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
            found = connection.execute(select(table.c.id).where(same)).scalar_one()
        current[key] = int(found)
    return current


def migrate_in_flight(
    connection: Connection,
    spec: JourneySpec,
    current: CompiledJourney,
    old_versions: Mapping[int, CompiledJourney],
    now: datetime,
    shard: Shard = ALL,
) -> None:
    """Move the active enrollments of ``old_versions`` to ``current``, step by step as
    :func:`~omni_journey.engine.plan_migration` maps them (a step with no target stays
    on its version: ``validate`` refused that change)."""
    for old_id, old in old_versions.items():
        plan = plan_migration(old, current, spec.versioning.migrate)
        for old_step, new_step in plan.items():
            if new_step is None:
                continue
            move_step(connection, (old_id, old_step), (current.version_id, new_step), now, shard)


class CompiledVersions:
    """The published versions a runner decides with, each read and compiled once, with
    the facts its decisions need (:func:`~omni_journey.engine.facts_needed`)."""

    def __init__(self, segments: Mapping[str, SegmentSpec]) -> None:
        self._segments = segments
        self._compiled: dict[int, CompiledJourney] = {}
        self._needs: dict[int, FactNeeds] = {}

    def get(self, connection: Connection, version_id: int) -> CompiledJourney:
        compiled = self._compiled.get(version_id)
        if compiled is None:
            spec_json: Any = connection.execute(
                select(JOURNEY_VERSIONS.c.spec).where(JOURNEY_VERSIONS.c.id == version_id)
            ).scalar_one()
            compiled = compile_journey(JourneySpec.model_validate(spec_json), version_id)
            self._compiled[version_id] = compiled
        return compiled

    def needs(self, connection: Connection, version_ids: Iterable[int]) -> FactNeeds:
        """Everything the decisions of these versions can ask of the facts."""
        needs = NO_FACTS
        for version_id in set(version_ids):
            if version_id not in self._needs:
                spec = self.get(connection, version_id).spec
                self._needs[version_id] = facts_needed(spec, self._segments)
            needs |= self._needs[version_id]
        return needs
