"""Analytics: funnels, holdout lift, channel mix, delivery rates, policy value, report.

Set-based queries over the store (a few grouped statements per figure, never a loop
over customers) that return plain dataclasses; the HTML report, ``omni-journey report``
and the Prefect artifacts all read the same :class:`Report`.
"""

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
