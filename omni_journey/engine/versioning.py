"""Moving in-flight customers between journey versions."""

from __future__ import annotations

from collections.abc import Mapping

from omni_journey.engine.compile import CompiledJourney

__all__ = ["plan_migration"]


def plan_migration(
    old: CompiledJourney, new: CompiledJourney, migrate: Mapping[str, str]
) -> dict[str, str | None]:
    """Where customers waiting at each of ``old``'s steps go in ``new``.

    A step id that still exists keeps its customers; a removed one sends them to its
    ``migrate`` target when that exists in ``new``; otherwise ``None``: the move is
    refused (``validate`` reports it; the service leaves those customers on ``old``).

    A moved enrollment needs only its ``version_id`` and ``step_id`` changed: the engine
    enters a step it has not entered yet on the next ``advance`` (a wait restarts there).
    """
    plan: dict[str, str | None] = {}
    for step_id in old.order:
        if step_id in new.steps:
            plan[step_id] = step_id
        else:
            target = migrate.get(step_id)
            plan[step_id] = target if target is not None and target in new.steps else None
    return plan
