"""The analytics package's public surface (the CLI and the flows import it)."""

from __future__ import annotations

import dataclasses

import omni_journey.analytics as analytics


def test_public_names_are_pinned() -> None:
    assert len(analytics.__all__) == len(set(analytics.__all__))
    assert set(analytics.__all__) == {
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
    }
    for name in analytics.__all__:
        assert getattr(analytics, name) is not None


def test_figures_are_plain_frozen_dataclasses() -> None:
    for name in (
        "ChannelDelivery",
        "Funnel",
        "Lift",
        "MixRow",
        "PolicyRow",
        "PolicyValue",
        "Rate",
        "Report",
        "StepFunnel",
        "SuppressionCount",
    ):
        cls = getattr(analytics, name)
        assert dataclasses.is_dataclass(cls), name
        assert cls.__dataclass_params__.frozen, name
