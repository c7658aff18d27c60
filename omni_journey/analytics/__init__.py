"""Analytics: funnels, holdout lift, channel mix, delivery rates, policy value, report.

Set-based queries over the store (a few grouped statements per figure, never a loop
over customers) that return plain dataclasses; the HTML report, ``omni-journey report``
and the Prefect artifacts all read the same :class:`Report`.

The public names are loaded on first use: the policy's value scores with scikit-learn,
so importing this package (or one light submodule, such as ``catalogue``) must not
import every figure.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_journey.analytics.figures import (
        JourneyFigures,
        Report,
        ReportOptions,
        build_report,
        report_json,
        report_markdown,
        report_summary,
        report_tables,
    )
    from omni_journey.analytics.funnels import Funnel, StepFunnel, journey_funnel
    from omni_journey.analytics.lift import Lift, Rate, holdout_lift
    from omni_journey.analytics.mix import MixRow, channel_mix, mix_table
    from omni_journey.analytics.policy import PolicyRow, PolicyValue, policy_value
    from omni_journey.analytics.rates import (
        ChannelDelivery,
        SuppressionCount,
        delivery_rates,
        suppression_counts,
    )
    from omni_journey.analytics.report import render_report, write_report

#: Each public name and the submodule that defines it.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(
        (
            "JourneyFigures",
            "Report",
            "ReportOptions",
            "build_report",
            "report_json",
            "report_markdown",
            "report_summary",
            "report_tables",
        ),
        "figures",
    ),
    **dict.fromkeys(("Funnel", "StepFunnel", "journey_funnel"), "funnels"),
    **dict.fromkeys(("Lift", "Rate", "holdout_lift"), "lift"),
    **dict.fromkeys(("MixRow", "channel_mix", "mix_table"), "mix"),
    **dict.fromkeys(("PolicyRow", "PolicyValue", "policy_value"), "policy"),
    **dict.fromkeys(
        ("ChannelDelivery", "SuppressionCount", "delivery_rates", "suppression_counts"), "rates"
    ),
    **dict.fromkeys(("render_report", "write_report"), "report"),
}

__all__ = [
    "ChannelDelivery",
    "Funnel",
    "JourneyFigures",
    "Lift",
    "MixRow",
    "PolicyRow",
    "PolicyValue",
    "Rate",
    "Report",
    "ReportOptions",
    "StepFunnel",
    "SuppressionCount",
    "build_report",
    "channel_mix",
    "delivery_rates",
    "holdout_lift",
    "journey_funnel",
    "mix_table",
    "policy_value",
    "render_report",
    "report_json",
    "report_markdown",
    "report_summary",
    "report_tables",
    "suppression_counts",
    "write_report",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
