"""A journey's step graph drawn as inline SVG, on the server, from the journey's spec.

One column of boxes, top to bottom in file order (the order the marketer wrote, which
is also the usual path), so it reads on a phone. The edges are the compiled journey's
(:func:`omni_journey.engine.compile.compile_journey`): an edge to the box right below
is a short arrow down; any other (a branch arm, a split variant, ``on_timeout``, a jump
back) leaves the box on its right, runs down or up its own lane and comes back into
its target's right side. Edge labels say which outcome takes it: the arm's condition,
``else``, the variant and its weight, the event waited for, the timeout. A last
``journey ends`` box collects every outcome that ends the journey. Each box carries
its step's live counts, each a link to the customers behind it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from markupsafe import Markup

from omni_journey.console.counts import Chip
from omni_journey.console.html import el, join
from omni_journey.engine.compile import CompiledJourney, compile_journey
from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import JourneySpec
from omni_journey.spec.steps import (
    BranchStep,
    DelayStep,
    ExitStep,
    SendStep,
    SplitStep,
    UpdateStep,
    WaitForStep,
    WebhookStep,
)

__all__ = ["END", "journey_svg", "step_summary"]

END: Final = "(end)"
_BOX_X, _BOX_W, _GAP = 12, 330, 46
_LABEL_ROOM, _LANE = 170, 16
_CHAR = 6.6  # average width of a 12px character, for wrapping the counts


@dataclass(frozen=True, slots=True)
class _Edge:
    source: str
    target: str
    label: str


def _short(value: Any, width: int = 38) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace('"', "").replace("{", "").replace("}", "")
    return text if len(text) <= width else text[: width - 1] + "…"


def step_summary(step: Any) -> str:
    """What a step does, in a few words (its type and its main settings)."""
    if isinstance(step, SendStep):
        channel = ", ".join(step.channel) if isinstance(step.channel, tuple) else step.channel
        best_hour = " at the best hour" if step.send_at == "best" else ""
        return f"send {step.message} by {channel}{best_hour}"
    if isinstance(step, DelayStep):
        if step.for_ is not None:
            return f"delay {format_duration(step.for_)}"
        return f"delay until {step.until:%H:%M}" if step.until else "delay"
    if isinstance(step, WaitForStep):
        return f"wait for {step.event}, up to {format_duration(step.timeout)}"
    if isinstance(step, BranchStep):
        return f"branch: {len(step.arms)} condition(s), else"
    if isinstance(step, SplitStep):
        return "split " + " / ".join(f"{v.name} {v.weight}" for v in step.variants)
    if isinstance(step, UpdateStep):
        return "update " + ", ".join([*step.set, *step.unset])
    if isinstance(step, WebhookStep):
        return "webhook POST"
    if isinstance(step, ExitStep):
        return "exit" + (f": {step.reason}" if step.reason else "")
    return str(getattr(step, "type", "step"))


def _label(compiled: CompiledJourney, step_id: str, outcome: str) -> str:
    step = compiled.steps[step_id].spec
    if outcome.startswith("arm:") and isinstance(step, BranchStep):
        arm = step.arms[int(outcome[4:])]
        return "if " + _short(
            arm.when.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        )
    if outcome.startswith("variant:") and isinstance(step, SplitStep):
        name = outcome[8:]
        total = sum(v.weight for v in step.variants)
        weight = next(v.weight for v in step.variants if v.name == name)
        return f"{name} {round(100 * weight / total)}%"
    if outcome == "event" and isinstance(step, WaitForStep):
        return f"on {step.event}"
    if outcome == "timeout" and isinstance(step, WaitForStep):
        return f"after {format_duration(step.timeout)}"
    return "" if outcome == "next" else outcome


def _edges(compiled: CompiledJourney) -> list[_Edge]:
    edges: list[_Edge] = []
    for step_id in compiled.order:
        targets: dict[str, list[str]] = {}
        for outcome, target in compiled.steps[step_id].outcomes.items():
            targets.setdefault(target or END, []).append(_label(compiled, step_id, outcome))
        edges += [_Edge(step_id, t, " / ".join(x for x in ls if x)) for t, ls in targets.items()]
    return edges


def _wrap(chips: Sequence[Chip]) -> list[list[Chip]]:
    lines: list[list[Chip]] = [[]]
    used = 0.0
    for chip in chips:
        width = (len(chip.label) + len(str(chip.number)) + 3) * _CHAR
        if lines[-1] and used + width > _BOX_W - 20:
            lines.append([])
            used = 0.0
        lines[-1].append(chip)
        used += width
    return [line for line in lines if line]


def journey_svg(
    spec: JourneySpec,
    chips: Mapping[str, Sequence[Chip]],
    href: Callable[[str, Chip], str],
) -> Markup:
    """The diagram of ``spec`` with ``chips[step_id]`` in each box, each chip a link to
    ``href(step_id, chip)``."""
    compiled = compile_journey(spec, 0)
    edges = _edges(compiled)
    nodes = [*compiled.order, *([END] if any(e.target == END for e in edges) else [])]
    heights: dict[str, int] = {}
    tops: dict[str, int] = {}
    y = 12
    for node in nodes:
        lines = _wrap(chips.get(node, ())) if node != END else []
        heights[node] = 30 if node == END else 50 + 18 * len(lines)
        tops[node] = y
        y += heights[node] + _GAP
    index = {node: i for i, node in enumerate(nodes)}
    side = [e for e in edges if index[e.target] != index[e.source] + 1]
    right = _BOX_X + _BOX_W
    width = right + _LABEL_ROOM + _LANE * (len(side) + 1)
    parts: list[Markup] = [
        el(
            "defs",
            None,
            el(
                "marker",
                {
                    "id": "arrow",
                    "viewBox": "0 0 10 10",
                    "refX": 9,
                    "refY": 5,
                    "markerWidth": 7,
                    "markerHeight": 7,
                    "orient": "auto-start-reverse",
                },
                el("path", {"d": "M0 0L10 5L0 10z", "fill": "#8a94a8"}),
            ),
        )
    ]
    outgoing: dict[str, int] = {}
    incoming: dict[str, int] = {}
    for lane, edge in enumerate(side, start=1):
        n_out = outgoing[edge.source] = outgoing.get(edge.source, 0) + 1
        n_in = incoming[edge.target] = incoming.get(edge.target, 0) + 1
        y1 = tops[edge.source] + min(16 * n_out, heights[edge.source] - 6)
        y2 = tops[edge.target] + min(10 + 8 * n_in, heights[edge.target] - 4)
        x = right + _LABEL_ROOM + _LANE * lane
        path = f"M{right} {y1}H{x}V{y2}H{right + 2}"
        parts.append(el("path", {"class": "edge", "d": path, "marker-end": "url(#arrow)"}))
        if edge.label:
            parts.append(el("text", {"class": "label", "x": right + 6, "y": y1 - 4}, edge.label))
    for edge in edges:
        if edge in side:
            continue
        x = _BOX_X + _BOX_W // 2
        y1, y2 = tops[edge.source] + heights[edge.source], tops[edge.target]
        parts.append(
            el("path", {"class": "edge", "d": f"M{x} {y1}V{y2 - 2}", "marker-end": "url(#arrow)"})
        )
        if edge.label:
            parts.append(
                el("text", {"class": "label", "x": x + 8, "y": (y1 + y2) // 2 + 4}, edge.label)
            )
    for node in nodes:
        parts.append(_box(compiled, node, tops[node], heights[node], chips, href))
    return el(
        "svg",
        {
            "class": "diagram",
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {y - _GAP + 12}",
            "role": "img",
            "aria-label": f"steps of journey {spec.key}",
        },
        *parts,
    )


def _box(
    compiled: CompiledJourney,
    node: str,
    top: int,
    height: int,
    chips: Mapping[str, Sequence[Chip]],
    href: Callable[[str, Chip], str],
) -> Markup:
    if node == END:
        return join(
            el(
                "rect",
                {
                    "class": "box end",
                    "x": _BOX_X,
                    "y": top,
                    "width": _BOX_W,
                    "height": height,
                    "rx": 15,
                },
            ),
            el(
                "text",
                {
                    "class": "kind",
                    "x": _BOX_X + _BOX_W // 2,
                    "y": top + 19,
                    "text-anchor": "middle",
                },
                "journey ends",
            ),
        )
    step = compiled.steps[node]
    kind = "send" if step.kind == "send" else "wait" if step.kind in ("delay", "wait_for") else ""
    parts = [
        el(
            "rect",
            {
                "class": f"box {kind}".strip(),
                "x": _BOX_X,
                "y": top,
                "width": _BOX_W,
                "height": height,
                "rx": 8,
            },
        ),
        el("text", {"class": "id", "x": _BOX_X + 10, "y": top + 20}, node),
        el(
            "text",
            {"class": "kind", "x": _BOX_X + 10, "y": top + 38},
            _short(step_summary(step.spec), 48),
        ),
    ]
    for row, line in enumerate(_wrap(chips.get(node, ()))):
        x = float(_BOX_X + 10)
        for chip in line:
            text = f"{chip.label} {chip.number}"
            style = "count" if chip.number else "count zero"
            item = el("text", {"class": style, "x": round(x), "y": top + 57 + 18 * row}, text)
            parts.append(el("a", {"href": href(node, chip)}, item) if chip.number else item)
            x += (len(text) + 3) * _CHAR
    return el("g", {"id": f"step-{node}"}, *parts)
