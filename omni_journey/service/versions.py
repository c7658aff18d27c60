"""Checks on a journey change before it is published.

A new version of a journey with ``versioning.on_change: migrate`` moves the customers in
flight to it. A customer waiting at a step the new version no longer has can only move
when ``versioning.migrate`` names where to: without a target the change is refused
(with ``keep`` they finish on their old version, so removing the step is fine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, and_, func, select

from omni_journey.engine.types import ACTIVE
from omni_journey.errors import SpecError
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.models import JourneySpec
from omni_journey.spec.project import JOURNEYS_DIR
from omni_journey.store.core import ENROLLMENTS, JOURNEY_VERSIONS

__all__ = [
    "REMOVED_STEP_IN_USE",
    "check_in_flight",
    "in_flight_diagnostics",
    "in_flight_problems",
]

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
