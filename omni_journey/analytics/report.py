"""The report as one HTML page with its charts as PNG files beside it.

``write_report(engine, out_dir, now=...)`` writes ``out_dir/index.html`` and
``out_dir/charts/*.png`` and returns the page's path. The page has inline CSS and no
scripts or remote assets, so it opens from disk, attaches to an email, or serves from
any static host. It is written for a marketer: each section has a title, a sentence on
how to read it, a chart and the numbers. Counts only; no customer data.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from omni_journey.analytics.charts import (
    delivery_chart,
    funnel_chart,
    lift_chart,
    mix_chart,
    policy_chart,
)
from omni_journey.analytics.figures import (
    JourneyFigures,
    Report,
    ReportOptions,
    build_report,
    delivery_row,
    lift_row,
    policy_rows,
)
from omni_journey.analytics.mix import mix_table

__all__ = ["REPORT_FILE", "render_report", "write_report"]

REPORT_FILE = "index.html"
CHARTS_DIR = "charts"

_CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #2b2f36; margin: 0; background: #f6f7f9; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 6px; padding-top: 12px; border-top: 1px solid #e3e6ea; }
h3 { font-size: 16px; margin: 24px 0 6px; }
p.lead, p.note { color: #5b6270; margin: 4px 0 12px; }
p.verdict { padding: 8px 12px; border-left: 4px solid #4c72b0; background: #f2f5fb; }
p.verdict.good { border-color: #55a868; background: #f1f8f3; }
p.verdict.bad { border-color: #c44e52; background: #fbf1f1; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e6ea; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f4f7; font-weight: 600; }
td.text { text-align: left; }
img { max-width: 100%; height: auto; margin: 8px 0; }
nav a { margin-right: 14px; }
ul.warnings { color: #8a5a00; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _table(rows: Sequence[Mapping[str, Any]], text_columns: Sequence[str] = ()) -> str:
    if not rows:
        return '<p class="note">Nothing yet.</p>'
    columns = list(rows[0])
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{_e(row.get(c, ""))}</td>'
            if c in text_columns
            else f"<td>{_e(row.get(c, ''))}</td>"
            for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path | None, out_dir: Path, alt: str) -> str:
    if path is None:
        return ""
    return f'<img src="{_e(path.relative_to(out_dir).as_posix())}" alt="{_e(alt)}">'


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)


def _verdict_class(figures: JourneyFigures) -> str:
    lift = figures.lift
    if lift.significant and lift.absolute is not None:
        return "verdict good" if lift.absolute > 0 else "verdict bad"
    return "verdict"


def _journey_section(figures: JourneyFigures, out_dir: Path) -> str:
    funnel, lift = figures.funnel, figures.lift
    chart = funnel_chart(funnel, out_dir / CHARTS_DIR / f"funnel-{_slug(funnel.journey_key)}.png")
    title = funnel.name or funnel.journey_key
    parts = [
        f'<section id="journey-{_e(_slug(funnel.journey_key))}" class="journey">',
        f"<h3>{_e(title)} <small>({_e(funnel.journey_key)})</small></h3>",
        f'<p class="{_verdict_class(figures)}">{_e(lift.verdict[:1].upper() + lift.verdict[1:])}'
        "</p>",
        f'<p class="note">{funnel.entered:,} entries ({funnel.treated:,} treated, '
        f"{funnel.holdout:,} in the holdout); {funnel.converted:,} converted "
        f"({funnel.converted_holdout:,} of them in the holdout, "
        f"{funnel.converted_untouched:,} before any message).</p>",
    ]
    if chart is None:
        parts.append('<p class="note">No one has entered this journey in this period.</p>')
    else:
        parts.append(_image(chart, out_dir, f"funnel of {funnel.journey_key}"))
        columns = ("step", "type", "skipped_by_reason", "exited_by_reason")
        parts.append(_table(funnel.rows(), text_columns=columns))
    if funnel.refused:
        refused = ", ".join(f"{_e(r)} {n:,}" for r, n in funnel.refused.items())
        parts.append(f'<p class="note">Not entered (refused at entry): {refused}.</p>')
    if funnel.exited:
        exits = ", ".join(f"{_e(r)} {n:,}" for r, n in funnel.exited.items())
        parts.append(f'<p class="note">Ended: {exits}.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _window(report: Report) -> str:
    start = f"{report.since:%Y-%m-%d %H:%M}" if report.since else "the first recorded event"
    return f"{start} to {report.until:%Y-%m-%d %H:%M} UTC"


def _policy_section(report: Report, out_dir: Path) -> str:
    policy = report.policy
    parts = [
        '<section id="policy">',
        "<h2>Channel policy: value vs baselines</h2>",
        '<p class="lead">When a send step says <code>channel: best</code>, the channel '
        "policy picks the channel. Every pick is logged with its probability, so we can "
        "estimate what other ways of choosing would have earned on the same customers: "
        "always email, a random eligible channel, the cheapest-channel rule, and "
        '"most engaged" (the channel a customer opened or clicked most, as Braze ships '
        "it). Value is conversion value times conversions minus channel cost, per 1,000 "
        "decisions; bars are 95% intervals. Overlapping intervals mean we cannot tell the "
        "policies apart yet.</p>",
    ]
    if policy is None:
        parts += ['<p class="note">Not evaluated in this report.</p>', "</section>"]
        return "\n".join(parts)
    chart = policy_chart(policy, out_dir / CHARTS_DIR / "policy.png")
    if chart is None:
        parts.append(
            f'<p class="note">No estimate yet: {policy.decisions:,} logged best-channel '
            "decisions whose attribution window has closed.</p>"
        )
    else:
        parts.append(_image(chart, out_dir, "channel policy value vs baselines"))
    parts.append(
        f'<p class="note">{policy.decisions:,} decisions for {policy.customers:,} customers; '
        f"a conversion is worth {policy.conversion_value:g}; costs per message: "
        + (", ".join(f"{_e(c)} {v:g}" for c, v in sorted(policy.costs.items())) or "none")
        + f". Method: {_e(policy.method)}.</p>"
    )
    parts.append(_table(policy_rows(policy), text_columns=("policy",)))
    if policy.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in policy.warnings)
        parts.append(f'<ul class="warnings">{items}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


def render_report(report: Report, out_dir: Path) -> Path:
    """Write ``report`` as ``out_dir/index.html`` with its charts; return the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CHARTS_DIR).mkdir(exist_ok=True)
    lifts = [f.lift for f in report.journeys]
    lift_png = lift_chart(lifts, out_dir / CHARTS_DIR / "lift.png")
    mix_png = mix_chart(report.mix, out_dir / CHARTS_DIR / "channel-mix.png", report.bucket)
    delivery_png = delivery_chart(report.delivery, out_dir / CHARTS_DIR / "delivery.png")
    body = [
        "<h1>omni-journey report</h1>",
        f'<p class="lead">Period: {_e(_window(report))}. Generated '
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC. Counts only: no customer data.</p>",
        "<nav>"
        + "".join(
            f'<a href="#{a}">{t}</a>'
            for a, t in (
                ("lift", "Conversions &amp; lift"),
                ("journeys", "Journeys"),
                ("channel-mix", "Channel mix"),
                ("delivery", "Delivery"),
                ("policy", "Channel policy"),
            )
        )
        + "</nav>",
        '<section id="lift">',
        "<h2>Conversions and holdout lift</h2>",
        '<p class="lead">Each journey keeps a random control group (the holdout) that '
        "gets no messages. If treated customers convert more than the holdout, the "
        "journey works. Dots are conversion rates, whiskers their 95% intervals; the lift "
        "is the difference in percentage points (pp), with its 95% interval. Customers who "
        "entered recently may still convert.</p>",
    ]
    if lift_png is None:
        body.append('<p class="note">No journey has entries in this period.</p>')
    else:
        body.append(_image(lift_png, out_dir, "conversion rates, treated vs holdout"))
    body.append(_table([lift_row(f.lift) for f in report.journeys], text_columns=("journey",)))
    body += ["</section>", '<section id="journeys">', "<h2>Journeys</h2>"]
    body.append(
        '<p class="lead">For each journey, step by step: how many customers reached the '
        "step, how many messages it queued per channel, how many sends were skipped and "
        "why, who is waiting there now, how many conversions it was the last touch for, "
        "and who left the journey there and why.</p>"
    )
    if not report.journeys:
        body.append('<p class="note">No journeys have run yet.</p>')
    body += [_journey_section(f, out_dir) for f in report.journeys]
    body += [
        "</section>",
        '<section id="channel-mix">',
        "<h2>Channel mix over time</h2>",
        f'<p class="lead">Messages sent per {_e(report.bucket)} (UTC), by channel: those the '
        "provider accepted.</p>",
    ]
    if mix_png is None:
        body.append('<p class="note">No messages sent in this period.</p>')
    else:
        body.append(_image(mix_png, out_dir, "messages sent per channel over time"))
    body.append(_table(mix_table(report.mix, report.bucket), text_columns=("period",)))
    body += [
        "</section>",
        '<section id="delivery">',
        "<h2>Delivery and suppression</h2>",
        '<p class="lead">What happened to messages, per channel. Delivered, opened, '
        "clicked, bounced, complained and unsubscribed are shares of messages sent; failed "
        "and suppressed (not sent because the address is on the suppression list) are "
        "shares of messages attempted. Each provider reports what it can: the file outbox "
        "reports nothing, so 0% can mean not reported.</p>",
    ]
    if delivery_png is None:
        body.append('<p class="note">No messages attempted in this period.</p>')
    else:
        body.append(_image(delivery_png, out_dir, "delivery and engagement rates by channel"))
    body.append(_table([delivery_row(r) for r in report.delivery], text_columns=("channel",)))
    body.append("<h3>Suppression list</h3>")
    body.append(
        '<p class="note">Addresses we never send to again, by channel and reason (all time).</p>'
    )
    suppressions = [
        {"channel": s.channel, "reason": s.reason, "addresses": s.count}
        for s in report.suppressions
    ]
    body.append(_table(suppressions, text_columns=("channel", "reason")))
    body.append("</section>")
    body.append(_policy_section(report, out_dir))
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>omni-journey report {report.until:%Y-%m-%d}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
    path = out_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    engine: Engine,
    out_dir: Path,
    *,
    now: datetime,
    journeys: Sequence[str] | None = None,
    since: datetime | None = None,
    options: ReportOptions | None = None,
) -> Path:
    """Build the report from the store up to ``now`` and write it under ``out_dir``."""
    with engine.connect() as connection:
        report = build_report(connection, now=now, journeys=journeys, since=since, options=options)
    return render_report(report, out_dir)
