"""The step graph of a journey, and the checks on it.

A step goes to its ``next``, else to the following step in file order (after the
last one the journey ends). ``wait_for`` goes to ``on_event`` and ``on_timeout``,
``branch`` to each arm's ``next`` and to ``else``, ``split`` to each variant's
``next``; a target left out is the step's default next
(:meth:`~omni_journey.spec.models.JourneySpec.successors`). ``exit`` goes nowhere.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence

from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of
from omni_journey.spec.document import Document
from omni_journey.spec.models import (
    BranchStep,
    DelayStep,
    JourneySpec,
    SplitStep,
    WaitForStep,
)
from omni_journey.spec.naming import YamlPath

__all__ = ["arrows", "check_step_graph", "cycles", "step_references"]


def step_references(spec: JourneySpec) -> Iterator[tuple[YamlPath, str]]:
    """Every step id the journey names explicitly, with where it is written."""
    for i, step in enumerate(spec.steps):
        here: YamlPath = ("steps", i)
        if step.next is not None:
            yield (*here, "next"), step.next
        if isinstance(step, WaitForStep):
            if step.on_event is not None:
                yield (*here, "on_event"), step.on_event
            if step.on_timeout is not None:
                yield (*here, "on_timeout"), step.on_timeout
        elif isinstance(step, BranchStep):
            for j, arm in enumerate(step.arms):
                yield (*here, "arms", j, "next"), arm.next
            if step.else_ is not None:
                yield (*here, "else"), step.else_
        elif isinstance(step, SplitStep):
            for j, variant in enumerate(step.variants):
                if variant.next is not None:
                    yield (*here, "variants", j, "next"), variant.next
    for old, new in spec.versioning.migrate.items():
        yield ("versioning", "migrate", old), new


def _first_index(spec: JourneySpec) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        index.setdefault(step.id, i)
    return index


def _edges(spec: JourneySpec) -> dict[str, list[str]]:
    """Step id -> the steps it may go to. A misspelt target counts as the step it was
    probably meant to be, so one typo is reported once (``unknown-step``), not again
    as an unreachable step."""
    index = _first_index(spec)
    edges: dict[str, list[str]] = {}
    for step_id in index:
        targets = (t if t in index else did_you_mean(t, index) for t in spec.successors(step_id))
        edges[step_id] = list(dict.fromkeys(t for t in targets if t is not None))
    return edges


def _reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    """Nodes reachable from ``start`` in one step or more."""
    seen: set[str] = set()
    queue = deque(edges.get(start, ()))
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(edges.get(node, ()))
    return seen


def cycles(nodes: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected group that has one, in node order:
    ``[a, b, a]``."""
    reach = {node: _reachable(node, edges) for node in nodes}
    found: list[list[str]] = []
    done: set[str] = set()
    for node in nodes:
        if node in done or node not in reach[node]:
            continue
        group = {m for m in nodes if m in reach[node] and node in reach[m]}
        done |= group
        found.append(_path_back(node, edges, group))
    return found


def _path_back(start: str, edges: Mapping[str, Sequence[str]], within: set[str]) -> list[str]:
    """The shortest way from ``start`` round to itself, inside ``within``."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges.get(node, ()):
            if target not in within:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return [start, start]


def arrows(ids: Iterable[str]) -> str:
    return " -> ".join(f'"{i}"' for i in ids)


def check_step_graph(spec: JourneySpec, doc: Document) -> list[Diagnostic]:
    """``duplicate-step-id``, ``unknown-step``, ``unreachable-step``, ``loop-without-wait``."""
    found: list[Diagnostic] = []
    index = _first_index(spec)
    ids = list(index)
    for i, step in enumerate(spec.steps):
        if index[step.id] != i:
            first_line = doc.span(("steps", index[step.id], "id"))
            found.append(
                doc.at(
                    ("steps", i, "id"),
                    "duplicate-step-id",
                    f'two steps have the id "{step.id}"'
                    + (f" (the first on line {first_line.line})" if first_line else ""),
                    expected="a different id for every step",
                    hint=f'rename this one, for example "{step.id}_2"',
                )
            )
    for path, target in step_references(spec):
        if target in index:
            continue
        owner = (
            f'versioning.migrate moves customers waiting at "{path[-1]}"'
            if path[0] == "versioning"
            else f"{doc.describe(path[:-1], 'journey')} sends customers"
        )
        suggestion = did_you_mean(target, ids)
        found.append(
            doc.at(
                path,
                "unknown-step",
                f'{owner} to "{target}", but no step has that id',
                expected=one_of(ids),
                hint=f'did you mean "{suggestion}"?'
                if suggestion
                else f'add a step with id "{target}", or point at one of the steps above',
            )
        )
    if len(index) < len(spec.steps):
        return found  # with two steps of one id, the graph is ambiguous: fix that first
    edges = _edges(spec)
    reached = {ids[0]} | _reachable(ids[0], edges)
    for step_id in ids:
        if step_id not in reached:
            found.append(
                doc.at(
                    ("steps", index[step_id], "id"),
                    "unreachable-step",
                    f'step "{step_id}" can never be reached',
                    expected="every step reachable from the first step",
                    hint=f'point a next, on_event, on_timeout, arm, else or variant at "{step_id}",'
                    " or remove the step",
                )
            )
    waits = {s.id for s in spec.steps if isinstance(s, DelayStep | WaitForStep)}
    moving = [i for i in ids if i not in waits]
    moving_edges = {i: [t for t in edges[i] if t not in waits] for i in moving}
    for cycle in cycles(moving, moving_edges):
        subject = (
            f'step "{cycle[0]}" goes back to itself'
            if len(cycle) == 2
            else f"steps {arrows(cycle)} go round in a loop"
        )
        found.append(
            doc.at(
                ("steps", index[cycle[0]], "id"),
                "loop-without-wait",
                f"{subject} with no delay or wait_for on the way",
                expected="a delay or wait_for step on every loop",
                hint="add a delay or wait_for step inside the loop, or end it with an exit step",
            )
        )
    return found
