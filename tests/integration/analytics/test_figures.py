"""Funnel, lift, channel mix, delivery rates and policy value on a known history, on a
real SQLite file and a real PostgreSQL database (see conftest.py for the story)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from omni_journey.analytics import (
    ChannelDelivery,
    MixRow,
    channel_mix,
    delivery_rates,
    holdout_lift,
    journey_funnel,
    policy_value,
    suppression_counts,
)
from omni_journey.analytics import policy as policy_module
from omni_journey.analytics.lift import judge
from omni_journey.runner.passes import JourneyRunner
from tests.integration.analytics.conftest import END, JOURNEY, KEY, History, settings_for
from tests.integration.engine.conftest import T0, Shop, event, profile

DAY1 = datetime(2026, 5, 4, tzinfo=UTC)


def test_funnel_counts_every_step_in_journey_order(history: History) -> None:
    with history.engine.connect() as connection:
        funnel = journey_funnel(connection, KEY, until=END)
    treated, holdout = len(history.treated), len(history.holdout)
    unwilling = [c for c in history.treated if c in history.no_consent]
    reached_remind = treated - 1  # the early buyer left during the delay
    reached_last = reached_remind - len(history.treated_buyers)
    assert (funnel.entered, funnel.holdout, funnel.treated) == (30, holdout, treated)
    assert funnel.name == "Cart test"
    assert funnel.refused == {}
    assert [s.step_id for s in funnel.steps] == ["wait", "remind", "bought", "last"]
    assert [s.type for s in funnel.steps] == ["delay", "send", "wait_for", "send"]
    wait, remind, bought, last = funnel.steps
    assert (wait.entered, wait.exited) == (treated, {"exit_when:order.completed": 1})
    assert remind.entered == reached_remind
    assert remind.sent == {"email": len(history.reminded)}
    assert remind.skipped == {"no_consent": len(unwilling)}
    assert remind.converted == len(history.treated_buyers)  # last touch: the reminder
    assert bought.entered == reached_remind  # a skipped send moves on
    assert bought.exited == {"exit_when:order.completed": len(history.treated_buyers)}
    assert last.entered == reached_last
    # the suppressed address is no longer eligible when the last chance is decided
    assert last.sent == {"email": len(history.last_chance) - 1}
    assert last.skipped == {"no_consent": len(unwilling), "suppressed": 1}
    assert last.exited == {"completed": reached_last}
    assert [s.waiting for s in funnel.steps] == [0, 0, 0, 0]
    assert funnel.waiting_holdout == 0
    buyers = 1 + len(history.treated_buyers) + len(history.holdout_buyers)
    assert funnel.converted == buyers
    assert funnel.converted_holdout == len(history.holdout_buyers)
    assert funnel.converted_untouched == 1
    assert funnel.exited == {
        "completed": reached_last,
        "exit_when:order.completed": buyers,
        "holdout": holdout - len(history.holdout_buyers),
    }


def test_the_window_leaves_earlier_rows_out(history: History) -> None:
    with history.engine.connect() as connection:
        later = journey_funnel(connection, KEY, since=T0 + timedelta(days=1), until=END)
    reached_last = len(history.treated) - 1 - len(history.treated_buyers)
    assert (later.entered, later.converted) == (0, 0)
    assert [s.entered for s in later.steps] == [0, 0, 0, reached_last]
    assert later.steps[3].sent == {"email": len(history.last_chance) - 1}
    assert later.exited == {
        "completed": reached_last,
        "holdout": len(history.holdout) - len(history.holdout_buyers),
    }


def test_waiting_counts_active_enrollments_by_step(store: Engine, tmp_path: Path) -> None:
    shop = Shop(store, settings_for(tmp_path))
    ids = [f"w-{i}" for i in range(12)]
    shop.profiles([profile(c) for c in ids])
    shop.events([event(f"add-{c}", "product.added", c, T0) for c in ids])
    runner = JourneyRunner(store, {KEY: JOURNEY}, {})
    runner.run(T0 + timedelta(minutes=1))
    with store.connect() as connection:
        early = journey_funnel(connection, KEY)
    runner.run(T0 + timedelta(hours=2))
    with store.connect() as connection:
        later = journey_funnel(connection, KEY)
    assert early.holdout > 0 and early.treated > 0
    assert [s.waiting for s in early.steps] == [early.treated, 0, 0, 0]  # in the delay
    assert early.waiting_holdout == early.holdout
    assert [s.waiting for s in later.steps] == [0, 0, later.treated, 0]  # for an order
    assert later.waiting_holdout == later.holdout


def test_holdout_lift_compares_the_groups_from_the_log(history: History) -> None:
    with history.engine.connect() as connection:
        lift = holdout_lift(connection, KEY, until=END)
    treated_conversions = 1 + len(history.treated_buyers)
    holdout_conversions = len(history.holdout_buyers)
    assert (lift.treated.converted, lift.treated.enrollments) == (
        treated_conversions,
        len(history.treated),
    )
    assert (lift.holdout.converted, lift.holdout.enrollments) == (
        holdout_conversions,
        len(history.holdout),
    )
    assert lift.treated.rate == pytest.approx(treated_conversions / len(history.treated))
    assert lift.holdout.rate == pytest.approx(holdout_conversions / len(history.holdout))
    expected = judge(
        KEY,
        treated_conversions,
        len(history.treated),
        holdout_conversions,
        len(history.holdout),
        until=END,
    )
    assert lift == expected
    assert lift.absolute_low is not None and lift.absolute_high is not None
    assert lift.absolute_low < 0 < lift.absolute_high
    assert not lift.significant
    assert lift.verdict.startswith("not significant yet")


def test_lift_of_a_journey_without_entries_or_holdout(history: History) -> None:
    with history.engine.connect() as connection:
        nothing = holdout_lift(connection, "no_such_journey")
        early = holdout_lift(connection, KEY, until=T0)  # before anyone entered
    assert (nothing.treated.enrollments, nothing.holdout.enrollments) == (0, 0)
    assert nothing.verdict.startswith("no entries yet")
    assert early.treated.rate is None and early.absolute is None


def test_channel_mix_buckets_sent_messages_by_utc_period(history: History) -> None:
    first = len(history.reminded) - 1  # one reminder was suppressed at dispatch
    second = len(history.last_chance) - 1
    with history.engine.connect() as connection:
        days = channel_mix(connection)
        hours = channel_mix(connection, bucket="hour")
        weeks = channel_mix(connection, bucket="week")
        months = channel_mix(connection, bucket="month", journey_key=KEY)
        none = channel_mix(connection, journey_key="other")
        first_day = channel_mix(connection, until=DAY1 + timedelta(days=1))
    assert days == [
        MixRow(DAY1, "email", first),
        MixRow(DAY1 + timedelta(days=1), "email", second),
    ]
    assert hours == [
        MixRow(T0 + timedelta(hours=1), "email", first),
        MixRow(T0 + timedelta(days=1, hours=1), "email", second),
    ]
    assert weeks == [MixRow(DAY1, "email", first + second)]  # 2026-05-04 is a Monday
    assert months == [MixRow(datetime(2026, 5, 1, tzinfo=UTC), "email", first + second)]
    assert none == []
    assert first_day == [MixRow(DAY1, "email", first)]


def test_delivery_rates_count_each_message_once_and_only_ours(history: History) -> None:
    with history.engine.connect() as connection:
        rates = delivery_rates(connection, until=END)
        suppressions = suppression_counts(connection)
    sent = len(history.reminded) - 1 + len(history.last_chance) - 1
    assert rates == [
        ChannelDelivery(
            "email",
            sent=sent,
            suppressed=1,
            delivered=len(history.reminded) - 1,  # every sent reminder
            opened=3,  # one was opened twice; the open of a message we never sent is left out
            clicked=1,  # the tracked link (no message id)
        )
    ]
    (email,) = rates
    assert email.attempted == sent + 1
    assert email.rates["delivered"] == pytest.approx((len(history.reminded) - 1) / sent)
    assert email.rates["opened"] == pytest.approx(3 / sent)
    assert email.rates["suppressed"] == pytest.approx(1 / (sent + 1))
    assert email.rates["failed"] == 0.0
    assert [(s.channel, s.reason, s.count) for s in suppressions] == [("email", "hard_bounce", 1)]


def test_policy_value_evaluates_baselines_on_logged_best_decisions(history: History) -> None:
    with history.engine.connect() as connection:
        value = policy_value(connection, now=END, costs={"email": 0.001}, bootstrap=50)
    reminders = len(history.reminded) - 1  # the best-channel decisions that were sent
    assert value.decisions == reminders
    assert value.logged_policies == {"rule-v1": reminders}
    assert value.logged is not None
    per_decision = 25.0 * len(history.treated_buyers) / reminders - 0.001
    assert value.logged.value == pytest.approx(1000 * per_decision)
    by_name = {row.policy: row for row in value.estimates}
    assert set(by_name) == {"email", "random", "rule", "most-engaged"}
    # the rule is what ran: its estimate is exactly what was earned
    assert by_name["rule"].value == pytest.approx(value.logged.value)
    for row in value.estimates:
        assert row.low <= row.value <= row.high


def test_policy_value_without_best_decisions_says_so(store: Engine) -> None:
    with store.connect() as connection:
        value = policy_value(connection, now=END)
    assert (value.decisions, value.estimates, value.logged) == (0, [], None)
    assert value.warnings


def test_a_failed_policy_read_is_a_warning_and_the_connection_still_works(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error while reading decisions (here: a missing table) rolls back to a
    savepoint; the report goes on with the same connection (PostgreSQL would otherwise
    refuse every later statement in the aborted transaction)."""

    def broken(connection: Any, **_: Any) -> Any:
        return connection.execute(text("SELECT * FROM no_such_table WHERE customer_id = 'c-00'"))

    monkeypatch.setattr(policy_module, "load_logged", broken)
    with history.engine.connect() as connection:
        before = channel_mix(connection)
        value = policy_value(connection, now=END)
        after = channel_mix(connection)
    assert (value.decisions, value.estimates) == (0, [])
    (warning,) = value.warnings
    assert warning.startswith("the logged decisions could not be read: ")
    assert "no_such_table" in warning
    assert "c-00" not in warning  # the statement's parameters never reach the report
    assert after == before
