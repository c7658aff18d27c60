"""The console's journey pages: the diagram with live counts, and the customers behind
one count (each linking to their timeline and to ``explain``)."""

from __future__ import annotations

from urllib.parse import urlencode

from markupsafe import Markup
from sqlalchemy import Connection

from omni_journey.analytics.funnels import StepFunnel, journey_funnel
from omni_journey.console.counts import COUNT_CODE, Chip, customers_behind, step_chips, total_chips
from omni_journey.console.customer_pages import (
    customer_href,
    explain_href,
    journey_href,
    table,
    when,
)
from omni_journey.console.diagram import journey_svg, step_summary
from omni_journey.console.html import el, join, page
from omni_journey.console.journeys import load_console_journey
from omni_journey.settings import Settings
from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import JourneySpec

__all__ = ["SAMPLE_SIZE", "count_href", "journey_page", "sample_page"]

SAMPLE_SIZE = 50


def count_href(journey: str, step: str | None, code: str) -> str:
    query = {"step": step, "count": code} if step else {"count": code}
    return f"{journey_href(journey)}/customers?{urlencode(query)}"


def _chips(journey: str, step: str | None, chips: list[Chip]) -> Markup:
    items = [
        el("a", {"href": count_href(journey, step, c.code)}, f"{c.label} {c.number}")
        if c.number
        else el("span", {"class": "mute"}, f"{c.label} 0")
        for c in chips
    ]
    return join(
        *(join(item, " · ") if i < len(items) - 1 else item for i, item in enumerate(items))
    )


def _facts(spec: JourneySpec) -> list[tuple[str, object]]:
    trigger = spec.trigger
    facts: list[tuple[str, object]] = [
        (
            "trigger",
            getattr(trigger, "event", None) or f"segment {getattr(trigger, 'segment', '')}",
        ),
    ]
    entry = spec.entry
    facts.append(
        (
            "entry",
            " · ".join(
                x
                for x in (
                    f"segment {entry.segment}" if entry.segment else "",
                    f"re-entry {entry.re_entry}",
                )
                if x
            ),
        )
    )
    if spec.goal is not None:
        facts.append(("goal", f"{spec.goal.event} within {format_duration(spec.goal.within)}"))
    if spec.holdout is not None:
        facts.append(("holdout", f"{spec.holdout:.0%}"))
    return facts


def journey_page(connection: Connection, settings: Settings, key: str) -> str | None:
    """The journey's diagram from its YAML, each step with its live counts; the
    journey's totals; the same counts as a table. None for an unknown journey."""
    source = load_console_journey(connection, settings, key)
    if source is None:
        return None
    spec = source.spec
    funnel = journey_funnel(connection, key)
    by_step = {step.step_id: step for step in funnel.steps}
    chips = {step_id: step_chips(step) for step_id, step in by_step.items()}
    diagram = journey_svg(spec, chips, lambda step, chip: count_href(key, step, chip.code))
    facts = [join(el("dt", None, k), el("dd", None, v)) for k, v in _facts(spec)]
    facts.append(join(el("dt", None, "drawn from"), el("dd", None, source.source)))
    rows = [
        (
            join(el("a", {"href": f"#step-{s.id}"}, s.id), el("small", None, step_summary(s))),
            _chips(key, s.id, chips.get(s.id) or step_chips(StepFunnel(s.id, s.type))),
        )
        for s in spec.steps
    ]
    gone = [s for s in funnel.steps if s.step_id not in {x.id for x in spec.steps}]
    rows += [
        (
            join(s.step_id, el("small", None, "only in an older version")),
            _chips(key, s.step_id, chips[s.step_id]),
        )
        for s in gone
    ]
    return page(
        f"Journey {key}",
        el(
            "h1",
            None,
            spec.name or key,
            el("span", {"class": "mute"}, f" ({key})") if spec.name else "",
        ),
        el("p", {"class": "card withdrawn"}, source.problem) if source.problem else "",
        el("div", {"class": "card"}, el("dl", None, *facts)),
        el(
            "p",
            {"id": "totals"},
            el("strong", None, "All time: "),
            _chips(key, None, total_chips(funnel)),
            f" · holdout {funnel.holdout}" if funnel.holdout else "",
        ),
        el("h2", None, "Steps"),
        el("div", {"class": "card diagram-box"}, diagram),
        el("h2", None, "Counts by step"),
        el("p", {"class": "mute"}, "Each count links to the customers behind it."),
        table(["step", "counts"], rows, id="counts"),
    )


def sample_page(
    connection: Connection, settings: Settings, key: str, step: str | None, code: str
) -> tuple[int, str]:
    """Up to :data:`SAMPLE_SIZE` customers behind one count, newest first, each with a
    link to their timeline and to their decisions in this journey."""
    if COUNT_CODE.match(code) is None or (step is not None and len(step) > 64):
        return 400, page(
            "Not a count",
            el("h1", None, "Not a count"),
            el(
                "p",
                None,
                "count is one of entered, waiting, converted, "
                "sent:<channel>, skipped:<reason>, refused:<reason>.",
            ),
        )
    if load_console_journey(connection, settings, key) is None:
        return 404, page("No such journey", el("h1", None, "No such journey"))
    found = customers_behind(connection, key, step, code, limit=SAMPLE_SIZE)
    rows = [
        (
            el("a", {"href": customer_href(c.customer_id)}, c.customer_id),
            when(c.at),
            el("a", {"href": explain_href(c.customer_id, key)}, "explain"),
        )
        for c in found
    ]
    where = f"step {step}" if step else "the journey"
    title = f"{code.replace(':', ' ')} at {where}"
    return 200, page(
        f"{key}: {title}",
        el("h1", None, key, el("span", {"class": "mute"}, f": {title}")),
        el(
            "p",
            None,
            el("a", {"href": journey_href(key)}, "← journey"),
            " · ",
            f"{len(found)} customer(s), most recent first"
            + (f" (the first {SAMPLE_SIZE})" if len(found) == SAMPLE_SIZE else ""),
        ),
        table(["customer", "last at", "decisions"], rows, id="sample"),
    )
