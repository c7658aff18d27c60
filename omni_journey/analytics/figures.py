"""Every figure of the report, gathered once, and its plain forms: JSON, tables, markdown.

:func:`build_report` runs the set-based queries (a handful per journey, a few more for
the whole store) and returns a :class:`Report` of plain dataclasses. The HTML page
(:mod:`.report`), ``omni-journey report --json`` and the Prefect artifacts all read
that one object, so they always agree. Counts only: no customer id, address or token
ever reaches a figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from omni_journey.analytics.catalogue import known_journeys
from omni_journey.analytics.funnels import Funnel, journey_funnel
from omni_journey.analytics.lift import Lift, holdout_lift
from omni_journey.analytics.mix import MixRow, channel_mix, mix_table
from omni_journey.analytics.periods import Bucket
from omni_journey.analytics.policy import PolicyValue, policy_value
from omni_journey.analytics.rates import (
    ChannelDelivery,
    SuppressionCount,
    delivery_rates,
    suppression_counts,
)
from omni_journey.channels.learned import parse_costs
from omni_journey.settings import Settings

__all__ = [
    "JourneyFigures",
    "Report",
    "ReportOptions",
    "build_report",
    "report_json",
    "report_markdown",
    "report_summary",
    "report_tables",
]


@dataclass(frozen=True)
class ReportOptions:
    """What the report needs besides the store; :meth:`from_settings` reads the
    ``OMNI_CHANNEL_*`` settings the channel policy itself uses."""

    bucket: Bucket = "day"
    conversion_value: float = 25.0
    costs: Mapping[str, float] = field(default_factory=dict)
    attribution_hours: float = 72.0
    policy_days: int = 180
    models_dir: Path | None = None
    bootstrap: int = 200
    include_policy: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ReportOptions:
        values: dict[str, Any] = {
            "conversion_value": settings.channel_conversion_value,
            "costs": parse_costs(settings.channel_costs),
            "attribution_hours": settings.channel_attribution_hours,
            "policy_days": settings.channel_training_days,
            "models_dir": settings.home / "models",
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class JourneyFigures:
    """One journey's funnel and holdout lift over the report's window."""

    funnel: Funnel
    lift: Lift

    @property
    def key(self) -> str:
        return self.funnel.journey_key


@dataclass(frozen=True)
class Report:
    """Everything the report shows, for ``[since, until)``."""

    generated_at: datetime
    since: datetime | None
    until: datetime
    bucket: Bucket
    journeys: list[JourneyFigures]
    mix: list[MixRow]
    delivery: list[ChannelDelivery]
    suppressions: list[SuppressionCount]
    policy: PolicyValue | None


def build_report(
    connection: Connection,
    *,
    now: datetime,
    journeys: Sequence[str] | None = None,
    since: datetime | None = None,
    options: ReportOptions | None = None,
) -> Report:
    """Gather every figure up to ``now`` (from ``since``, or all history).

    ``journeys``: the keys to show (default: every journey the store knows).
    """
    options = options or ReportOptions()
    keys = list(journeys) if journeys is not None else known_journeys(connection)
    figures = [
        JourneyFigures(
            journey_funnel(connection, key, since=since, until=now),
            holdout_lift(connection, key, since=since, until=now),
        )
        for key in keys
    ]
    policy = None
    if options.include_policy:
        days = options.policy_days
        if since is not None:
            days = max(1, min(days, math.ceil((now - since).total_seconds() / 86400)))
        policy = policy_value(
            connection,
            now=now,
            days=days,
            conversion_value=options.conversion_value,
            costs=options.costs,
            attribution_hours=options.attribution_hours,
            models_dir=options.models_dir,
            bootstrap=options.bootstrap,
        )
    return Report(
        generated_at=now,
        since=since,
        until=now,
        bucket=options.bucket,
        journeys=figures,
        mix=channel_mix(connection, bucket=options.bucket, since=since, until=now),
        delivery=delivery_rates(connection, since=since, until=now),
        suppressions=suppression_counts(connection),
        policy=policy,
    )


# --- plain forms -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-safe: dataclasses as dicts, datetimes as ISO text, NaN as None."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as one JSON-safe object (``omni-journey report --json``)."""
    data: dict[str, Any] = {
        "generated_at": report.generated_at.isoformat(),
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat(),
        "bucket": report.bucket,
        "journeys": [],
        "channel_mix": mix_table(report.mix, report.bucket),
        "delivery": [
            {**_plain(row), "attempted": row.attempted, "rates": row.rates}
            for row in report.delivery
        ],
        "suppressions": [_plain(row) for row in report.suppressions],
        "policy": _plain(report.policy) if report.policy else None,
    }
    for figures in report.journeys:
        funnel = _plain(figures.funnel)
        funnel["treated"] = figures.funnel.treated
        for step, plain in zip(figures.funnel.steps, funnel["steps"], strict=True):
            plain["sent_total"] = step.sent_total
            plain["skipped_total"] = step.skipped_total
        data["journeys"].append(
            {"journey": figures.key, "funnel": funnel, "lift": _plain(figures.lift)}
        )
    return data


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pp"


def lift_row(lift: Lift) -> dict[str, Any]:
    """One journey's lift as a table row of readable strings and counts."""
    t, h = lift.treated, lift.holdout
    interval = (
        f"{_pp(lift.absolute_low)} to {_pp(lift.absolute_high)}"
        if lift.absolute_low is not None
        else "n/a"
    )
    return {
        "journey": lift.journey_key,
        "treated": t.enrollments,
        "treated_converted": t.converted,
        "treated_rate": _percent(t.rate),
        "holdout": h.enrollments,
        "holdout_converted": h.converted,
        "holdout_rate": _percent(h.rate),
        "lift": _pp(lift.absolute),
        "lift_95ci": interval,
        "relative_lift": _percent(lift.relative, 0) if lift.relative is not None else "n/a",
        "significant": "yes" if lift.significant else "no",
    }


def delivery_row(row: ChannelDelivery) -> dict[str, Any]:
    rates = row.rates
    out: dict[str, Any] = {"channel": row.channel, "sent": row.sent}
    for name in ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"):
        out[name] = getattr(row, name)
        out[f"{name}_rate"] = _percent(rates[name])
    out["failed"] = row.failed
    out["failed_rate"] = _percent(rates["failed"])
    out["suppressed"] = row.suppressed
    out["suppressed_rate"] = _percent(rates["suppressed"])
    out["queued"] = row.queued
    return out


def policy_rows(policy: PolicyValue) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    entries = ([policy.logged] if policy.logged else []) + policy.estimates
    for entry in entries:
        rows.append(
            {
                "policy": entry.policy,
                "value_per_1000": round(entry.value, 1),
                "low": round(entry.low, 1),
                "high": round(entry.high, 1),
                "support": "" if entry.support is None else f"{entry.support:.0%}",
            }
        )
    return rows


def report_tables(report: Report) -> dict[str, list[dict[str, Any]]]:
    """The report's tables as plain rows (Prefect table artifacts): ``funnel:<journey>``
    per journey, then ``lift``, ``channel_mix``, ``delivery``, ``suppressions``,
    ``policy``."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for figures in report.journeys:
        tables[f"funnel:{figures.key}"] = figures.funnel.rows()
    tables["lift"] = [lift_row(f.lift) for f in report.journeys]
    tables["channel_mix"] = mix_table(report.mix, report.bucket)
    tables["delivery"] = [delivery_row(row) for row in report.delivery]
    tables["suppressions"] = [asdict(row) for row in report.suppressions]
    tables["policy"] = policy_rows(report.policy) if report.policy else []
    return tables


def _markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "_nothing yet_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _window(report: Report) -> str:
    start = report.since.strftime("%Y-%m-%d %H:%M") if report.since else "the beginning"
    return f"{start} to {report.until:%Y-%m-%d %H:%M} UTC"


def report_summary(report: Report) -> list[str]:
    """A few lines for a terminal or a log: per journey, then channels and policy."""
    lines = [f"period: {_window(report)}"]
    for figures in report.journeys:
        funnel, lift = figures.funnel, figures.lift
        sent = sum(step.sent_total for step in funnel.steps)
        lines.append(
            f"{funnel.journey_key}: entered {funnel.entered} (holdout {funnel.holdout}), "
            f"sent {sent}, converted {funnel.converted}; "
            f"treated {_percent(lift.treated.rate)} vs holdout {_percent(lift.holdout.rate)}: "
            f"{lift.verdict}"
        )
    totals: dict[str, int] = {}
    for row in report.mix:
        totals[row.channel] = totals.get(row.channel, 0) + row.count
    mix = ", ".join(f"{c} {n}" for c, n in sorted(totals.items(), key=lambda i: -i[1]))
    lines.append(f"messages sent by channel: {mix or 'none'}")
    if report.policy is not None:
        best = report.policy.best
        logged = report.policy.logged
        if best is not None and logged is not None:
            lines.append(
                f"channel policy: running {logged.value:.0f} per 1,000 decisions; best "
                f"estimate {best.policy} {best.value:.0f} ({best.low:.0f} to {best.high:.0f})"
            )
        elif report.policy.warnings:
            lines.append(f"channel policy: not estimated: {report.policy.warnings[0]}")
        else:
            lines.append("channel policy: no logged best-channel decisions to evaluate yet")
    return lines


def report_markdown(report: Report) -> str:
    """The report as markdown (a Prefect markdown artifact): lift, funnels, channels."""
    parts = [
        "# omni-journey report",
        f"Period: {_window(report)}. Counts only.",
        "## Conversions and holdout lift",
        _markdown_table([lift_row(f.lift) for f in report.journeys]),
    ]
    parts += [f"- **{f.key}**: {f.lift.verdict}" for f in report.journeys]
    for figures in report.journeys:
        parts += [f"## Funnel: {figures.key}", _markdown_table(figures.funnel.rows())]
    parts += [
        "## Channel mix (messages sent)",
        _markdown_table(mix_table(report.mix, report.bucket)),
        "## Delivery and suppression",
        _markdown_table([delivery_row(row) for row in report.delivery]),
        "## Suppression list",
        _markdown_table([asdict(row) for row in report.suppressions]),
    ]
    if report.policy is not None:
        parts += [
            "## Channel policy value vs baselines",
            f"{report.policy.unit}; {report.policy.decisions} decisions.",
            _markdown_table(policy_rows(report.policy)),
        ]
        parts += [f"- {warning}" for warning in report.policy.warnings]
    return "\n\n".join(parts) + "\n"
