"""Compiling a journey spec into the step graph the engine walks.

Each step gets its outcomes resolved to step ids (``None``: the journey ends there):

=========  =====================================================================
kind       outcomes
=========  =====================================================================
delay      ``next``
wait_for   ``event`` (``on_event``), ``timeout`` (``on_timeout``)
branch     ``arm:<i>`` (the arm's ``next``), ``else``
split      ``variant:<name>``
send       ``next`` (sent or skipped)
update     ``next``
webhook    ``next``
exit       none
=========  =====================================================================

A missing target defaults to the step's ``next``, else the following step in file
order. An inconsistent graph raises ``ValueError`` listing every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from omni_journey.spec.models import (
    BranchStep,
    EventTrigger,
    ExitStep,
    JourneySpec,
    SendStep,
    SplitStep,
    Step,
    WaitForStep,
)

__all__ = ["CompiledJourney", "CompiledStep", "compile_journey"]

WAIT_KINDS = frozenset({"delay", "wait_for"})


@dataclass(frozen=True, slots=True)
class CompiledStep:
    id: str
    kind: str
    index: int
    spec: Step
    outcomes: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class CompiledJourney:
    """A journey version ready to run: its spec, version id and resolved step graph."""

    spec: JourneySpec
    version_id: int
    first_step: str
    steps: Mapping[str, CompiledStep]
    order: tuple[str, ...]
    waits: frozenset[str]
    send_steps: frozenset[str]
    event_names: frozenset[str]

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def goal_window(self) -> timedelta | None:
        return self.spec.goal.within if self.spec.goal else None

    def next_step(self, step_id: str, outcome: str = "next") -> str | None:
        """Where ``outcome`` of ``step_id`` leads (``None``: the journey ends)."""
        return self.steps[step_id].outcomes[outcome]


def compile_journey(spec: JourneySpec, version_id: int) -> CompiledJourney:
    """Resolve ``spec``'s step graph; ``ValueError`` names every inconsistency."""
    problems: list[str] = []
    order = tuple(step.id for step in spec.steps)
    seen: set[str] = set()
    for step_id in order:
        if step_id in seen:
            problems.append(f'step id "{step_id}" is used twice')
        seen.add(step_id)
    steps: dict[str, CompiledStep] = {}
    for index, step in enumerate(spec.steps):
        following = order[index + 1] if index + 1 < len(order) else None
        outcomes = _outcomes(step, step.next or following)
        for outcome, target in outcomes.items():
            if target is not None and target not in seen:
                problems.append(f'step "{step.id}" ({outcome}) goes to unknown step "{target}"')
        steps.setdefault(step.id, CompiledStep(step.id, step.type, index, step, outcomes))
    problems.extend(_timing_problems(spec))
    if not problems:
        problems.extend(_instant_cycles(steps, order))
    if problems:
        raise ValueError(f'journey "{spec.key}" is inconsistent: ' + "; ".join(problems))
    return CompiledJourney(
        spec=spec,
        version_id=version_id,
        first_step=order[0],
        steps=steps,
        order=order,
        waits=frozenset(s.id for s in steps.values() if s.kind in WAIT_KINDS),
        send_steps=frozenset(s.id for s in steps.values() if isinstance(s.spec, SendStep)),
        event_names=frozenset(_event_names(spec)),
    )


def _outcomes(step: Step, default: str | None) -> dict[str, str | None]:
    if isinstance(step, ExitStep):
        return {}
    if isinstance(step, WaitForStep):
        return {"event": step.on_event or default, "timeout": step.on_timeout or default}
    if isinstance(step, BranchStep):
        arms: dict[str, str | None] = {f"arm:{i}": arm.next for i, arm in enumerate(step.arms)}
        return {**arms, "else": step.else_ or default}
    if isinstance(step, SplitStep):
        return {f"variant:{v.name}": v.next or default for v in step.variants}
    return {"next": default}


def _timing_problems(spec: JourneySpec) -> list[str]:
    problems = []
    if spec.quiet_hours and spec.quiet_hours.start == spec.quiet_hours.end:
        problems.append("quiet_hours start equals end (say which hours are quiet)")
    window = spec.send_window
    if window and not window.days:
        problems.append("send_window has no days: it would never open")
    if window and window.start == window.end:
        problems.append("send_window start equals end (say which hours are open)")
    for step in spec.steps:
        if isinstance(step, SplitStep) and len({v.name for v in step.variants}) < len(
            step.variants
        ):
            problems.append(f'split "{step.id}" names a variant twice')
    return problems


def _instant_cycles(steps: Mapping[str, CompiledStep], order: tuple[str, ...]) -> list[str]:
    """Loops must pass a delay or wait_for step, or one advance would spin forever."""
    graph = {
        sid: sorted({t for t in step.outcomes.values() if t is not None and t in steps})
        for sid, step in steps.items()
        if step.kind not in WAIT_KINDS
    }
    colour: dict[str, int] = {}
    problems: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        colour[node] = 1
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if colour.get(target) == 1:
                loop = [*path[path.index(target) :], target]
                problems.append("loop without a delay or wait_for: " + " -> ".join(loop))
            elif target not in colour:
                visit(target, [*path, target])
        colour[node] = 2

    for sid in order:
        if sid in graph and sid not in colour:
            visit(sid, [sid])
    return problems


def _event_names(spec: JourneySpec) -> set[str]:
    names = {exit_.event for exit_ in spec.exit_when}
    if spec.goal:
        names.add(spec.goal.event)
    if isinstance(spec.trigger, EventTrigger):
        names.add(spec.trigger.event)
    names.update(step.event for step in spec.steps if isinstance(step, WaitForStep))
    return names
