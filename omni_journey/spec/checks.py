"""Checks a valid model cannot make on its own: keys against file names, settings
that contradict each other, the step graph (:mod:`omni_journey.spec.graph`), and
references between journeys, segments, messages and events.

Every check is a pure function of specs and their :class:`Document` (for positions)
that returns a list of diagnostics; none reads a file.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping

from omni_journey.spec.conditions import (
    STANDARD_EVENTS,
    AllCondition,
    AnyCondition,
    Condition,
    EventCondition,
    NotCondition,
    SegmentCondition,
)
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of, quoted
from omni_journey.spec.graph import arrows, check_step_graph, cycles
from omni_journey.spec.loader import Document
from omni_journey.spec.models import (
    BranchStep,
    EventTrigger,
    JourneySpec,
    ScheduleTrigger,
    SegmentSpec,
    SegmentTrigger,
    SendStep,
    SplitStep,
    WaitForStep,
)
from omni_journey.spec.naming import YamlPath

__all__ = [
    "check_journey",
    "check_journey_references",
    "check_key",
    "check_segment_cycles",
    "check_segment_references",
    "iter_conditions",
    "journey_conditions",
    "known_events",
]


# --- keys -----------------------------------------------------------------------


def check_key(spec: JourneySpec | SegmentSpec, doc: Document, stem: str | None) -> list[Diagnostic]:
    """``key-mismatch``: the key must equal the file name without ``.yaml``."""
    if stem is None or spec.key == stem:
        return []
    return [
        doc.at(
            ("key",),
            "key-mismatch",
            f'the key "{spec.key}" differs from the file name "{stem}"',
            expected=f"key: {stem}",
            hint=f'change the key to "{stem}", or rename the file to {spec.key}.yaml',
        )
    ]


def check_journey(spec: JourneySpec, doc: Document, stem: str | None) -> list[Diagnostic]:
    """The checks of one journey on its own: key, settings, the step graph."""
    return check_key(spec, doc, stem) + _settings(spec, doc) + check_step_graph(spec, doc)


def _settings(spec: JourneySpec, doc: Document) -> list[Diagnostic]:
    """Settings that are each valid but make no sense together."""
    found: list[Diagnostic] = []
    for name, window in (("quiet_hours", spec.quiet_hours), ("send_window", spec.send_window)):
        if window is not None and window.start == window.end:
            found.append(
                doc.at(
                    (name, "end"),
                    "invalid-value",
                    f"{name} starts and ends at the same time",
                    expected="an end different from the start",
                    hint=f"say which hours are {'quiet' if name == 'quiet_hours' else 'open'},"
                    ' like start: "21:00" and end: "08:00"',
                )
            )
    if spec.send_window is not None and not spec.send_window.days:
        found.append(
            doc.at(
                ("send_window", "days"),
                "invalid-value",
                "send_window has no days, so it would never open",
                expected="at least one of mon, tue, wed, thu, fri, sat, sun",
                hint="list the days, like days: [mon, tue, wed, thu, fri], or leave days out",
            )
        )
    for i, step in enumerate(spec.steps):
        if isinstance(step, SplitStep):
            names: set[str] = set()
            for j, variant in enumerate(step.variants):
                if variant.name in names:
                    found.append(
                        doc.at(
                            ("steps", i, "variants", j, "name"),
                            "invalid-value",
                            f'step "{step.id}" has two variants named "{variant.name}"',
                            expected="a different name for every variant",
                            hint="rename one: reports tell variants apart by their name",
                        )
                    )
                names.add(variant.name)
    return found


# --- conditions and references ----------------------------------------------------


def iter_conditions(condition: Condition, path: YamlPath) -> Iterator[tuple[Condition, YamlPath]]:
    """A condition and every condition nested in it, each with its path."""
    yield condition, path
    if isinstance(condition, AllCondition):
        for i, child in enumerate(condition.all):
            yield from iter_conditions(child, (*path, "all", i))
    elif isinstance(condition, AnyCondition):
        for i, child in enumerate(condition.any):
            yield from iter_conditions(child, (*path, "any", i))
    elif isinstance(condition, NotCondition):
        yield from iter_conditions(condition.not_, (*path, "not"))


def journey_conditions(spec: JourneySpec) -> Iterator[tuple[Condition, YamlPath]]:
    """Every condition in a journey's branch arms, with its path."""
    for i, step in enumerate(spec.steps):
        if isinstance(step, BranchStep):
            for j, arm in enumerate(step.arms):
                yield from iter_conditions(arm.when, ("steps", i, "arms", j, "when"))


def known_events(journeys: Iterable[JourneySpec], custom: Iterable[str] = ()) -> frozenset[str]:
    """Standard events, the events journeys are triggered by, and the project's own."""
    triggers = {j.trigger.event for j in journeys if isinstance(j.trigger, EventTrigger)}
    return STANDARD_EVENTS | triggers | frozenset(custom)


def _segment_refs(
    conditions: Iterable[tuple[Condition, YamlPath]],
) -> Iterator[tuple[YamlPath, str]]:
    for condition, path in conditions:
        if isinstance(condition, SegmentCondition):
            yield (*path, "segment"), condition.segment


def _event_refs(conditions: Iterable[tuple[Condition, YamlPath]]) -> Iterator[tuple[YamlPath, str]]:
    for condition, path in conditions:
        if isinstance(condition, EventCondition):
            yield (*path, "event"), condition.event


def _unknown_segment(
    doc: Document, path: YamlPath, name: str, segments: Collection[str]
) -> Diagnostic:
    suggestion = did_you_mean(name, segments)
    return doc.at(
        path,
        "unknown-segment",
        f'{doc.describe(path[:-1], "journey")} uses segment "{name}",'
        f" but there is no segments/{name}.yaml",
        expected=one_of(sorted(segments)) if segments else "a segment defined in segments/",
        hint=f'did you mean "{suggestion}"?'
        if suggestion
        else f"create segments/{name}.yaml, or use an existing segment",
    )


def _event_suggestion(name: str, events: Collection[str]) -> str | None:
    # Segment's "Order Completed" style names map to "order.completed".
    dotted = re.sub(r"\s+", ".", name.strip().lower(), count=1).replace(" ", "_")
    if dotted in events:
        return dotted
    return did_you_mean(name, events)


def _unknown_event(doc: Document, path: YamlPath, name: str, events: Collection[str]) -> Diagnostic:
    suggestion = _event_suggestion(name, events)
    add = f'if your shop sends "{name}", list it in events.yaml'
    return doc.at(
        path,
        "unknown-event",
        f'{doc.describe(path[:-1], "journey")} uses the event "{name}", which nothing sends',
        expected="a standard event, an event some journey is triggered by,"
        " or an event listed in events.yaml",
        hint=f'did you mean "{suggestion}"? ({add})' if suggestion else add,
    )


def check_journey_references(
    spec: JourneySpec,
    doc: Document,
    *,
    segments: Collection[str],
    messages: Collection[str],
    events: Collection[str],
) -> list[Diagnostic]:
    """``unknown-segment``, ``unknown-message`` and ``unknown-event`` in one journey."""
    found: list[Diagnostic] = []
    segment_refs = list(_segment_refs(journey_conditions(spec)))
    if isinstance(spec.trigger, SegmentTrigger | ScheduleTrigger):
        segment_refs.append((("trigger", "segment"), spec.trigger.segment))
    if spec.entry.segment is not None:
        segment_refs.append((("entry", "segment"), spec.entry.segment))
    for path, name in segment_refs:
        if name not in segments:
            found.append(_unknown_segment(doc, path, name, segments))

    for i, step in enumerate(spec.steps):
        if isinstance(step, SendStep) and step.message not in messages:
            suggestion = did_you_mean(step.message, messages)
            found.append(
                doc.at(
                    ("steps", i, "message"),
                    "unknown-message",
                    f'step "{step.id}" sends the message "{step.message}",'
                    f" but there is no folder templates/{step.message}/",
                    expected=one_of(sorted(messages)) if messages else "a folder in templates/",
                    hint=f'did you mean "{suggestion}"?'
                    if suggestion
                    else f"create templates/{step.message}/message.yaml",
                )
            )

    event_refs = list(_event_refs(journey_conditions(spec)))
    if spec.goal is not None:
        event_refs.append((("goal", "event"), spec.goal.event))
    for i, exit_ in enumerate(spec.exit_when):
        event_refs.append((("exit_when", i, "event"), exit_.event))
    for i, step in enumerate(spec.steps):
        if isinstance(step, WaitForStep):
            event_refs.append((("steps", i, "event"), step.event))
    for path, name in event_refs:
        if name not in events:
            found.append(_unknown_event(doc, path, name, events))
    return found


def check_segment_references(
    spec: SegmentSpec,
    doc: Document,
    *,
    segments: Collection[str],
    events: Collection[str],
) -> list[Diagnostic]:
    """``unknown-segment`` and ``unknown-event`` in one segment's condition."""
    conditions = list(iter_conditions(spec.match, ("match",)))
    found = [
        _unknown_segment(doc, path, name, segments)
        for path, name in _segment_refs(conditions)
        if name not in segments
    ]
    found += [
        _unknown_event(doc, path, name, events)
        for path, name in _event_refs(conditions)
        if name not in events
    ]
    return found


def check_segment_cycles(segments: Mapping[str, tuple[SegmentSpec, Document]]) -> list[Diagnostic]:
    """``segment-cycle``: segments that include each other round in a circle.

    Each segment on a circle gets a diagnostic, at its reference to the next one.
    """
    refs: dict[str, list[tuple[YamlPath, str]]] = {
        key: list(_segment_refs(iter_conditions(spec.match, ("match",))))
        for key, (spec, _) in segments.items()
    }
    nodes = sorted(segments)
    edges = {key: [name for _, name in refs[key] if name in segments] for key in nodes}
    found: list[Diagnostic] = []
    for cycle in cycles(nodes, edges):
        for position, key in enumerate(cycle[:-1]):
            rotated = [*cycle[position:-1], *cycle[:position], key]
            target = rotated[1]
            path = next(p for p, name in refs[key] if name == target)
            doc = segments[key][1]
            subject = (
                f'segment "{key}" includes itself'
                if len(cycle) == 2
                else f'segment "{key}" includes itself by way of {arrows(rotated[1:-1])}'
            )
            found.append(
                doc.at(
                    path,
                    "segment-cycle",
                    subject,
                    expected="segments that build on others without coming back round",
                    hint=f"a segment cannot contain itself: remove {quoted(target)} here,"
                    " or the reference back",
                )
            )
    return found
