"""Guards at send time: eligibility, quiet hours, send windows and frequency caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_journey.engine import CompiledJourney, advance
from omni_journey.engine.types import (
    ACTIVE,
    CustomerFacts,
    EnrollmentState,
    ScheduleWakeup,
    SendMessage,
    Skip,
    StepEntered,
)
from omni_journey.spec.models import FrequencyCap
from tests.unit.engine.support import ALL_OK, T0, FakeFacts, enter_and_advance, event, journey

NUDGE: dict[str, Any] = {"id": "nudge", "type": "send", "message": "m"}
AFTER = {"id": "after", "type": "delay", "for": "1d"}


def only(customer: CustomerFacts) -> FakeFacts:
    return FakeFacts({customer.customer_id: customer})


def run(
    j: CompiledJourney, facts: FakeFacts, now: datetime = T0, global_cap: FrequencyCap | None = None
) -> tuple[EnrollmentState, list[Any]]:
    [state], effects = enter_and_advance(
        j, [event("product.added", "c1", now)], facts, now, global_cap=global_cap
    )
    return state, effects


def sends(effects: list[Any]) -> list[SendMessage]:
    return [e for e in effects if isinstance(e, SendMessage)]


def skips(effects: list[Any]) -> list[str]:
    return [e.reason for e in effects if isinstance(e, Skip)]


# --- eligibility -----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["no_consent", "suppressed", "unreachable"])
def test_an_ineligible_fixed_channel_skips_with_its_reason_and_moves_on(reason: str) -> None:
    j = journey(steps=[{**NUDGE, "channel": "email"}, AFTER])
    facts = only(CustomerFacts("c1", eligible={**ALL_OK, "email": reason}))
    state, effects = run(j, facts)
    assert sends(effects) == []
    assert skips(effects) == [reason]
    assert state.step_id == "after"  # moved on


def test_fallback_takes_the_eligible_channels_in_order() -> None:
    j = journey(steps=[{**NUDGE, "channel": ["push", "sms", "email"]}])
    facts = only(CustomerFacts("c1", eligible={**ALL_OK, "push": "no_consent"}))
    [send] = sends(run(j, facts)[1])
    assert (send.channels, send.choice) == (("sms", "email"), "fallback")


def test_fallback_with_nothing_eligible_reports_the_first_wanted_channel() -> None:
    j = journey(steps=[{**NUDGE, "channel": ["push", "email"]}])
    facts = only(CustomerFacts("c1", eligible={"push": "unreachable", "email": "suppressed"}))
    assert skips(run(j, facts)[1]) == ["unreachable"]


def test_best_offers_every_eligible_channel() -> None:
    j = journey(steps=[{**NUDGE, "channel": "best"}])
    facts = only(CustomerFacts("c1", eligible={"email": None, "sms": "no_consent", "push": None}))
    [send] = sends(run(j, facts)[1])
    assert (send.channels, send.choice) == (("email", "push"), "best")


def test_a_channel_the_facts_do_not_mention_is_not_eligible() -> None:
    j = journey(steps=[{**NUDGE, "channel": "whatsapp"}])
    facts = only(CustomerFacts("c1", eligible={"email": None}))
    assert skips(run(j, facts)[1]) == ["unreachable"]


# --- quiet hours -------------------------------------------------------------------------

QUIET: dict[str, Any] = {"quiet_hours": {"start": "21:00", "end": "08:00"}}


@pytest.mark.parametrize(
    ("tz", "now", "opens"),
    [
        # 22:00 EDT -> 08:00 EDT
        (
            "America/New_York",
            datetime(2026, 5, 4, 2, tzinfo=UTC),
            datetime(2026, 5, 4, 12, tzinfo=UTC),
        ),
        # 04:00 CEST, after midnight -> 08:00 CEST
        ("Europe/Berlin", datetime(2026, 5, 4, 2, tzinfo=UTC), datetime(2026, 5, 4, 6, tzinfo=UTC)),
        # 23:30 JST, before midnight -> 08:00 JST next day
        (
            "Asia/Tokyo",
            datetime(2026, 5, 4, 14, 30, tzinfo=UTC),
            datetime(2026, 5, 4, 23, tzinfo=UTC),
        ),
        # the night New York springs forward: 23:00 EST -> 08:00 EDT (12:00 UTC, not 13:00)
        (
            "America/New_York",
            datetime(2026, 3, 8, 4, tzinfo=UTC),
            datetime(2026, 3, 8, 12, tzinfo=UTC),
        ),
        # the night Berlin falls back: 01:30 CEST -> 08:00 CET (07:00 UTC)
        (
            "Europe/Berlin",
            datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 7, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_defer_the_send_never_drop_it(tz: str, now: datetime, opens: datetime) -> None:
    j = journey(steps=[NUDGE, AFTER], **QUIET)
    facts = only(CustomerFacts("c1", timezone=tz, eligible=ALL_OK))
    state, effects = run(j, facts, now)
    assert sends(effects) == [] and skips(effects) == []
    assert [e for e in effects if isinstance(e, ScheduleWakeup)] == [
        ScheduleWakeup(1, opens, "quiet_hours")
    ]
    # while deferred: still on the send step, due at the end of the quiet hours
    assert (state.state, state.step_id, state.wake_at) == (ACTIVE, "nudge", opens)
    assert state.context["step"]["deferred"] == "quiet_hours"
    # an advance before then (say, for an event) changes nothing
    early = advance(
        j, [state], {"c1": [event("page.viewed", "c1", now)]}, facts, opens - timedelta(minutes=1)
    )
    assert early.states == [state] and early.effects == []
    # at the end of the quiet hours it goes out, once, under the key of its one visit
    result = advance(j, [state], {}, facts, opens)
    [send] = sends(result.effects)
    assert (send.send_after, send.idempotency_key) == (opens, "j:1:1:nudge:1")
    assert not [e for e in result.effects if isinstance(e, StepEntered) and e.step_id == "nudge"]
    assert result.states[0].step_id == "after"


def test_outside_quiet_hours_sends_now() -> None:
    j = journey(steps=[NUDGE], **QUIET)
    facts = only(CustomerFacts("c1", timezone="Asia/Tokyo", eligible=ALL_OK))
    noon_tokyo = datetime(2026, 5, 4, 3, tzinfo=UTC)
    [send] = sends(run(j, facts, noon_tokyo)[1])
    assert send.send_after == noon_tokyo


def test_a_bad_time_zone_skips_when_timing_rules_apply() -> None:
    facts = only(CustomerFacts("c1", timezone="Mars/Olympus", eligible=ALL_OK))
    assert skips(run(journey(steps=[NUDGE], **QUIET), facts)[1]) == ["invalid_timezone"]
    assert len(sends(run(journey(steps=[NUDGE]), facts)[1])) == 1  # no timing rules: UTC


# --- send window -----------------------------------------------------------------------


def test_send_window_defers_to_the_next_opening() -> None:
    j = journey(
        steps=[NUDGE],
        send_window={"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
    )
    facts = only(CustomerFacts("c1", timezone="Europe/Berlin", eligible=ALL_OK))
    saturday = datetime(2026, 5, 9, 10, tzinfo=UTC)
    state, effects = run(j, facts, saturday)
    monday_nine = datetime(2026, 5, 11, 7, tzinfo=UTC)
    assert state.wake_at == monday_nine
    assert [e.reason for e in effects if isinstance(e, ScheduleWakeup)] == ["send_window"]
    result = advance(j, [state], {}, facts, monday_nine)
    assert [s.send_after for s in sends(result.effects)] == [monday_nine]


# --- frequency caps --------------------------------------------------------------------


def test_journey_cap_counts_the_customers_local_calendar_day() -> None:
    j = journey(steps=[NUDGE, AFTER], frequency_cap={"max": 1, "per": "1d"})
    late_utc = datetime(2026, 5, 4, 16, tzinfo=UTC)  # already 2026-05-05 01:00 in Tokyo
    yesterday = only(
        CustomerFacts(
            "c1", timezone="Asia/Tokyo", eligible=ALL_OK, sends_by_day={("j", "2026-05-04"): 1}
        )
    )
    assert len(sends(run(j, yesterday, late_utc)[1])) == 1
    today = only(
        CustomerFacts(
            "c1", timezone="Asia/Tokyo", eligible=ALL_OK, sends_by_day={("j", "2026-05-05"): 1}
        )
    )
    state, effects = run(j, today, late_utc)
    assert sends(effects) == [] and skips(effects) == ["frequency_cap"]
    assert state.step_id == "after"


def test_cap_over_several_days_counts_each_local_day_of_the_period() -> None:
    j = journey(steps=[NUDGE], frequency_cap={"max": 2, "per": "1w"})
    counts = {("j", "2026-04-28"): 1, ("j", "2026-05-01"): 1}  # 6 and 3 days ago
    facts = only(CustomerFacts("c1", eligible=ALL_OK, sends_by_day=counts))
    assert skips(run(j, facts)[1]) == ["frequency_cap"]
    older = {("j", "2026-04-27"): 1, ("j", "2026-05-01"): 1}  # 7 days ago is outside
    facts = only(CustomerFacts("c1", eligible=ALL_OK, sends_by_day=older))
    assert len(sends(run(j, facts)[1])) == 1


def test_sends_of_other_journeys_do_not_count_towards_the_journey_cap() -> None:
    j = journey(steps=[NUDGE], frequency_cap={"max": 1, "per": "1d"})
    facts = only(
        CustomerFacts(
            "c1", eligible=ALL_OK, sends_by_day={("other", "2026-05-04"): 3, ("*", "2026-05-04"): 3}
        )
    )
    assert len(sends(run(j, facts)[1])) == 1


def test_global_cap_counts_every_journey() -> None:
    j = journey(steps=[NUDGE])
    facts = only(CustomerFacts("c1", eligible=ALL_OK, sends_by_day={("*", "2026-05-04"): 2}))
    cap = FrequencyCap(max=2, per=timedelta(days=1))
    assert skips(run(j, facts, global_cap=cap)[1]) == ["frequency_cap"]
    roomy = FrequencyCap(max=3, per=timedelta(days=1))
    assert len(sends(run(j, facts, global_cap=roomy)[1])) == 1


def test_sends_earlier_in_the_same_call_count() -> None:
    j = journey(
        steps=[{**NUDGE, "id": "one"}, {**NUDGE, "id": "two"}, {**NUDGE, "id": "three"}],
        frequency_cap={"max": 2, "per": "1d"},
    )
    _, effects = run(j, FakeFacts())
    assert [s.step_id for s in sends(effects)] == ["one", "two"]
    assert skips(effects) == ["frequency_cap"]


def test_global_cap_counts_sends_earlier_in_the_same_call() -> None:
    j = journey(steps=[{**NUDGE, "id": "one"}, {**NUDGE, "id": "two"}])
    facts = only(CustomerFacts("c1", eligible=ALL_OK, sends_by_day={("*", "2026-05-04"): 1}))
    _, effects = run(j, facts, global_cap=FrequencyCap(max=2, per=timedelta(days=1)))
    assert [s.step_id for s in sends(effects)] == ["one"]
    assert skips(effects) == ["frequency_cap"]


def test_in_call_counts_are_per_customer() -> None:
    j = journey(steps=[NUDGE], frequency_cap={"max": 1, "per": "1d"})
    _, effects = enter_and_advance(
        j, [event("product.added", c) for c in ("c1", "c2", "c3")], FakeFacts(), T0
    )
    assert len(sends(effects)) == 3


def test_a_deferred_send_is_capped_when_it_finally_goes() -> None:
    j = journey(steps=[NUDGE], frequency_cap={"max": 1, "per": "1d"}, **QUIET)
    berlin = CustomerFacts("c1", timezone="Europe/Berlin", eligible=ALL_OK)
    night = datetime(2026, 5, 4, 22, tzinfo=UTC)  # midnight in Berlin
    state, _ = run(j, only(berlin), night)
    morning = datetime(2026, 5, 5, 6, tzinfo=UTC)
    assert state.wake_at == morning
    busy = replace(berlin, sends_by_day={("j", "2026-05-05"): 1})  # another send meanwhile
    result = advance(j, [state], {}, only(busy), morning)
    assert skips(result.effects) == ["frequency_cap"]
