"""The report's charts as PNG files (matplotlib).

Each function draws one figure on its own :class:`~matplotlib.figure.Figure` with an
Agg canvas created inside the function: no pyplot, no global state, safe in threads and
in a Prefect worker with no display. Each returns the file it wrote, or ``None`` when
there is nothing to draw (the page says so in words instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omni_journey.analytics.funnels import Funnel
from omni_journey.analytics.lift import Lift
from omni_journey.analytics.mix import MixRow, mix_table
from omni_journey.analytics.periods import Bucket
from omni_journey.analytics.policy import PolicyValue
from omni_journey.analytics.rates import ChannelDelivery

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CHANNEL_COLOURS",
    "delivery_chart",
    "funnel_chart",
    "lift_chart",
    "mix_chart",
    "policy_chart",
]

CHANNEL_COLOURS: dict[str, str] = {
    "email": "#4C72B0",
    "push": "#55A868",
    "sms": "#DD8452",
    "whatsapp": "#8172B3",
}
_OTHER = "#937860"
_GREY = "#C8CDD3"
_INK = "#2B2F36"
_TREATED = "#4C72B0"
_HOLDOUT = "#8C8C8C"
_DPI = 110


def _colour(channel: str) -> str:
    return CHANNEL_COLOURS.get(channel, _OTHER)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _style(axes: Any) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=_INK, labelsize=9)
    axes.title.set_color(_INK)


def _legend(figure: Figure, columns: int) -> None:
    """One legend row under the axes, clear of bars and their notes."""
    figure.legend(loc="outside lower center", ncols=columns, fontsize=8, frameon=False)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI, facecolor="white")
    return path


def funnel_chart(funnel: Funnel, path: Path) -> Path | None:
    """Horizontal bars, top to bottom in the journey's order: entries, then each step's
    reached count (grey) with the messages it queued on top, by channel."""
    if funnel.entered == 0 and not any(step.entered for step in funnel.steps):
        return None
    labels = ["entered (treated)"] + [f"{s.step_id} ({s.type})" for s in funnel.steps]
    reached = [funnel.treated] + [s.entered for s in funnel.steps]
    channels = funnel.channels
    figure = _figure(9.0, max(2.6, 1.2 + 0.42 * len(labels)))
    axes = figure.add_subplot()
    _style(axes)
    positions = list(range(len(labels)))
    axes.barh(positions, reached, color=_GREY, height=0.75, label="reached")
    left = [0] * len(labels)
    for channel in channels:
        counts = [0] + [s.sent.get(channel, 0) for s in funnel.steps]
        axes.barh(
            positions,
            counts,
            left=left,
            height=0.4,
            color=_colour(channel),
            label=f"sent: {channel}",
        )
        left = [a + b for a, b in zip(left, counts, strict=True)]
    top = max([*reached, 1])
    notes = [f"{funnel.treated:,} treated, {funnel.holdout:,} holdout"]
    for step in funnel.steps:
        bits = [f"{step.entered:,} reached"]
        if step.sent_total:
            bits.append(f"{step.sent_total:,} sent")
        if step.skipped_total:
            bits.append(f"{step.skipped_total:,} skipped")
        if step.waiting:
            bits.append(f"{step.waiting:,} waiting")
        if step.converted:
            bits.append(f"{step.converted:,} converted")
        if step.exited_total:
            bits.append(f"{step.exited_total:,} left")
        notes.append(", ".join(bits))
    for y, (value, note) in enumerate(zip(reached, notes, strict=True)):
        axes.text(value + top * 0.01, y, note, va="center", fontsize=8, color=_INK)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlim(0, top * 1.8)
    axes.set_xlabel("customers (enrollments) / messages")
    axes.set_title(f"Funnel: {funnel.name or funnel.journey_key}", loc="left", fontsize=11)
    _legend(figure, 1 + len(channels))
    return _save(figure, path)


def lift_chart(lifts: Sequence[Lift], path: Path) -> Path | None:
    """Conversion rate of treated vs holdout per journey, with 95% Wilson intervals."""
    shown = [lift for lift in lifts if lift.treated.enrollments or lift.holdout.enrollments]
    if not shown:
        return None
    figure = _figure(9.0, max(2.6, 1.4 + 0.7 * len(shown)))
    axes = figure.add_subplot()
    _style(axes)
    top = 0.0
    for y, lift in enumerate(shown):
        for offset, rate, colour, label in (
            (-0.15, lift.treated, _TREATED, "treated"),
            (0.15, lift.holdout, _HOLDOUT, "holdout"),
        ):
            if rate.rate is None or rate.low is None or rate.high is None:
                continue
            top = max(top, rate.high)
            axes.errorbar(
                [100 * rate.rate],
                [y + offset],
                xerr=[[100 * (rate.rate - rate.low)], [100 * (rate.high - rate.rate)]],
                fmt="o",
                color=colour,
                capsize=3,
                label=label if y == 0 else None,
            )
    for y, lift in enumerate(shown):
        if lift.absolute is None or lift.absolute_low is None or lift.absolute_high is None:
            note = "no holdout" if lift.holdout.enrollments == 0 else "n/a"
        else:
            note = (
                f"lift {100 * lift.absolute:+.1f} pp "
                f"({100 * lift.absolute_low:+.1f} to {100 * lift.absolute_high:+.1f})"
            )
            if lift.significant:
                note += " *"
        axes.text(100 * top * 1.04 + 0.5, y, note, va="center", fontsize=8, color=_INK)
    axes.set_yticks(range(len(shown)), [lift.journey_key for lift in shown])
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.set_xlim(0, 100 * top * 1.6 + 3)
    axes.set_xlabel("conversion rate (%), 95% interval; * = significant lift")
    axes.set_title("Conversions: treated vs holdout", loc="left", fontsize=11)
    _legend(figure, 2)
    return _save(figure, path)


def mix_chart(rows: Sequence[MixRow], path: Path, bucket: Bucket = "day") -> Path | None:
    """Messages sent per period, stacked by channel."""
    table = mix_table(list(rows), bucket)
    if not table:
        return None
    channels = [c for c in table[0] if c not in ("period", "total")]
    figure = _figure(9.0, 3.6)
    axes = figure.add_subplot()
    _style(axes)
    positions = list(range(len(table)))
    bottom = [0] * len(table)
    for channel in channels:
        counts = [row[channel] for row in table]
        axes.bar(positions, counts, bottom=bottom, color=_colour(channel), label=channel)
        bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
    every = max(1, len(table) // 12)
    axes.set_xticks(
        positions[::every], [row["period"] for row in table][::every], rotation=30, ha="right"
    )
    axes.set_ylabel("messages sent")
    axes.set_title(f"Channel mix per {bucket}", loc="left", fontsize=11)
    axes.legend(loc="upper left", fontsize=8, frameon=False, ncols=len(channels))
    return _save(figure, path)


_RATES: tuple[tuple[str, str], ...] = (
    ("delivered", "delivered"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("bounced", "bounced"),
    ("complained", "complained"),
    ("unsubscribed", "unsubscribed"),
    ("failed", "failed"),
    ("suppressed", "suppressed"),
)


def delivery_chart(rows: Sequence[ChannelDelivery], path: Path) -> Path | None:
    """Per outcome, one bar per channel: the share of messages (see :mod:`.rates`)."""
    shown = [row for row in rows if row.attempted]
    if not shown:
        return None
    figure = _figure(9.0, 3.6)
    axes = figure.add_subplot()
    _style(axes)
    width = 0.8 / len(shown)
    for i, row in enumerate(shown):
        rates = row.rates
        values = [100 * (rates[name] or 0.0) for name, _ in _RATES]
        xs = [k + (i - (len(shown) - 1) / 2) * width for k in range(len(_RATES))]
        axes.bar(xs, values, width=width, color=_colour(row.channel), label=row.channel)
    axes.set_xticks(range(len(_RATES)), [label for _, label in _RATES])
    axes.set_ylabel("% of messages")
    axes.set_ylim(0, 105)
    axes.set_title("Delivery, engagement and suppression by channel", loc="left", fontsize=11)
    axes.legend(loc="upper right", fontsize=8, frameon=False)
    return _save(figure, path)


def policy_chart(policy: PolicyValue, path: Path) -> Path | None:
    """Each policy's estimated value per 1,000 decisions with its 95% interval; the
    running policy's own value as a line and band."""
    if not policy.estimates:
        return None
    rows = sorted(policy.estimates, key=lambda row: row.value)
    figure = _figure(9.0, max(2.6, 1.4 + 0.5 * len(rows)))
    axes = figure.add_subplot()
    _style(axes)
    if policy.logged is not None:
        axes.axvspan(policy.logged.low, policy.logged.high, color=_GREY, alpha=0.5, lw=0)
        axes.axvline(
            policy.logged.value, color=_INK, ls="--", lw=1, label=f"{policy.logged.policy}"
        )
    for y, row in enumerate(rows):
        colour = "#C44E52" if row.policy == "learned" else _TREATED
        axes.errorbar(
            [row.value],
            [y],
            xerr=[[max(0.0, row.value - row.low)], [max(0.0, row.high - row.value)]],
            fmt="o",
            color=colour,
            capsize=3,
        )
    axes.set_yticks(range(len(rows)), [row.policy for row in rows])
    axes.set_xlabel("estimated value per 1,000 decisions (95% interval)")
    axes.set_title("Channel policy vs baselines", loc="left", fontsize=11)
    if policy.logged is not None:
        axes.legend(loc="lower right", fontsize=8, frameon=False)
    return _save(figure, path)
