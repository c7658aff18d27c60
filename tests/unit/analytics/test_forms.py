"""The report's plain forms: funnel rows, the mix table, JSON, tables, markdown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from omni_journey.analytics import (
    MixRow,
    ReportOptions,
    mix_table,
    report_json,
    report_markdown,
    report_summary,
    report_tables,
)
from omni_journey.settings import Settings
from tests.unit.analytics.support import DAY, funnel, report


def test_funnel_rows_have_a_column_per_channel_and_reasons_by_count() -> None:
    rows = funnel().rows()
    assert [r["step"] for r in rows] == ["wait", "remind", "bought", "last"]
    remind = rows[1]
    assert remind["sent_email"] == 600 and remind["sent_push"] == 300
    assert remind["skipped"] == 70
    assert remind["skipped_by_reason"] == "no_consent 50, frequency_cap 20"
    assert rows[0]["sent_push"] == 0
    assert rows[2]["waiting"] == 12
    assert rows[3]["exited_by_reason"] == "completed 700"
    assert funnel().treated == 1000
    assert funnel().channels == ["email", "push"]


def test_mix_table_fills_empty_periods_with_zeros() -> None:
    table = mix_table(report().mix)
    assert table == [
        {"period": "2026-05-04", "email": 500, "push": 200, "sms": 0, "total": 700},
        {"period": "2026-05-05", "email": 0, "push": 0, "sms": 0, "total": 0},
        {"period": "2026-05-06", "email": 900, "push": 0, "sms": 40, "total": 940},
    ]
    assert mix_table([]) == []


def test_mix_table_steps_months_across_the_year_end() -> None:
    rows = [
        MixRow(datetime(2025, 11, 1, tzinfo=UTC), "email", 1),
        MixRow(datetime(2026, 2, 1, tzinfo=UTC), "email", 2),
    ]
    assert [r["period"] for r in mix_table(rows, "month")] == [
        "2025-11-01",
        "2025-12-01",
        "2026-01-01",
        "2026-02-01",
    ]
    hours = mix_table([MixRow(DAY, "push", 1), MixRow(DAY.replace(hour=2), "push", 1)], "hour")
    assert [r["period"] for r in hours] == [
        "2026-05-04 00:00",
        "2026-05-04 01:00",
        "2026-05-04 02:00",
    ]


def test_delivery_rates_use_sent_and_attempted() -> None:
    email = report().delivery[0]
    assert email.attempted == 1400 + 12 + 3
    assert email.rates["delivered"] == pytest.approx(1380 / 1400)
    assert email.rates["suppressed"] == pytest.approx(12 / 1415)
    nothing = type(email)("whatsapp")
    assert set(nothing.rates.values()) == {None}


def test_report_json_is_strict_json_with_every_figure() -> None:
    data = report_json(report())
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["until"] == "2026-05-11T09:00:00+00:00"
    cart = data["journeys"][0]
    assert cart["funnel"]["treated"] == 1000
    assert cart["funnel"]["steps"][1]["sent_total"] == 900
    assert cart["lift"]["treated"]["rate"] == pytest.approx(0.14)
    assert data["delivery"][0]["rates"]["opened"] == pytest.approx(600 / 1400)
    assert data["policy"]["estimates"][3]["policy"] == "most-engaged"
    assert len(data["channel_mix"]) == 3


def test_report_tables_are_plain_rows_for_prefect_artifacts() -> None:
    tables = report_tables(report())
    assert list(tables) == [
        "funnel:cart",
        "funnel:welcome",
        "lift",
        "channel_mix",
        "delivery",
        "suppressions",
        "policy",
    ]
    for rows in tables.values():
        for row in rows:
            assert all(isinstance(v, str | int | float) for v in row.values()), row
    assert tables["lift"][0]["lift"] == "+4.0 pp"
    assert tables["lift"][1]["treated_rate"] == "n/a"
    assert tables["policy"][0]["policy"] == "running policy (rule-v1)"
    assert tables["suppressions"] == [{"channel": "email", "reason": "hard_bounce", "count": 3}]
    assert report_tables(report(policy=False))["policy"] == []


def test_markdown_and_summary_cover_every_journey() -> None:
    markdown = report_markdown(report())
    for heading in (
        "# omni-journey report",
        "## Conversions and holdout lift",
        "## Funnel: cart",
        "## Funnel: welcome",
        "## Channel mix",
        "## Delivery and suppression",
        "## Channel policy value vs baselines",
    ):
        assert heading in markdown
    assert "| remind | send |" in markdown
    lines = report_summary(report())
    assert lines[0].startswith("period: the beginning to 2026-05-11 09:00 UTC")
    assert lines[1].startswith("cart: entered 1100 (holdout 100), sent 1700, converted 150")
    assert "welcome: entered 0" in lines[2]
    assert lines[3] == "messages sent by channel: email 1400, push 200, sms 40"
    assert "most-engaged 131" in lines[4]


def test_report_options_read_the_channel_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        channel_conversion_value=40.0,
        channel_costs="email=0.002,sms=0.05",
        channel_attribution_hours=48.0,
        channel_training_days=30,
    )
    options = ReportOptions.from_settings(settings, bucket="week")
    assert options.conversion_value == 40.0
    assert options.costs["email"] == 0.002 and options.costs["sms"] == 0.05
    assert (options.attribution_hours, options.policy_days) == (48.0, 30)
    assert options.models_dir == tmp_path / "models"
    assert options.bucket == "week"
