"""Reach's Python path on hand-made customers: reasons, their precedence, the address a
send uses, and quiet hours on the engine's clock."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_journey.reach import (
    ADDRESS_OF,
    RULES,
    ReachBatch,
    ReachFacts,
    address,
    eligibility,
    eligible_channels,
    quiet_ends,
    quiet_reason,
    reason,
)
from omni_journey.spec.conditions import CHANNELS
from omni_journey.spec.models import QuietHours

ALL = dict.fromkeys(CHANNELS, True)
ANA = ReachFacts("c-1", email="ana@example.com", phone="+4915100000001", consent=ALL)


def test_the_reasons_and_their_order_are_the_engines() -> None:
    assert [rule.reason for rule in RULES] == ["unreachable", "no_consent", "suppressed"]
    assert set(ADDRESS_OF) == set(CHANNELS)


def test_a_customer_with_everything_may_receive_email_sms_and_whatsapp() -> None:
    assert eligible_channels(ANA, set()) == {
        "email": None,
        "sms": None,
        "whatsapp": None,
        "push": "unreachable",
    }


@pytest.mark.parametrize(
    ("facts", "suppressed", "expected"),
    [
        (ReachFacts("c", email="", consent=ALL), set(), "unreachable"),
        (ReachFacts("c", email=None, consent={}), set(), "unreachable"),  # before consent
        (ReachFacts("c", email="a@x.io", consent={"email": False}), set(), "no_consent"),
        (ReachFacts("c", email="a@x.io", consent={"sms": True}), set(), "no_consent"),
        (ReachFacts("c", email="a@x.io"), {("email", "a@x.io")}, "no_consent"),  # before supp.
        (ReachFacts("c", email="a@x.io", consent=ALL), {("email", "a@x.io")}, "suppressed"),
        (ReachFacts("c", email="a@x.io", consent=ALL), {("sms", "a@x.io")}, None),
    ],
)
def test_email_reasons(facts: ReachFacts, suppressed: set[tuple[str, str]], expected: str) -> None:
    assert eligibility(facts, "email", suppressed) == expected


def test_push_is_suppressed_only_when_every_token_is() -> None:
    facts = ReachFacts("c", push_tokens=("new", "old"), consent=ALL)
    assert eligibility(facts, "push", {("push", "new")}) is None
    assert address(facts, "push", {("push", "new")}) == "old"
    both = {("push", "new"), ("push", "old")}
    assert eligibility(facts, "push", both) == "suppressed"
    assert address(facts, "push", both) == "new"  # still named, so the caller says why
    assert eligibility(ReachFacts("c", push_tokens=("",), consent=ALL), "push", set()) == (
        "unreachable"
    )


def test_sms_and_whatsapp_share_the_phone_but_not_its_suppression() -> None:
    blocked = {("sms", "+4915100000001")}
    assert (eligibility(ANA, "sms", blocked), eligibility(ANA, "whatsapp", blocked)) == (
        "suppressed",
        None,
    )


def test_an_unknown_channel_or_customer_is_unreachable() -> None:
    assert eligibility(ANA, "fax", set()) == "unreachable"
    assert address(ANA, "fax", set()) is None
    batch = ReachBatch({"c-1": ANA}, frozenset())
    assert batch.eligibility("c-2", "email") == "unreachable"
    assert batch.eligible("c-2") == dict.fromkeys(CHANNELS, "unreachable")


@given(
    email=st.sampled_from([None, "", "a@x.io"]),
    granted=st.sampled_from([None, True, False]),
    blocked=st.booleans(),
)
def test_the_verdict_is_the_first_failing_rule(
    email: str | None, granted: bool | None, blocked: bool
) -> None:
    consent = {} if granted is None else {"email": granted}
    facts = ReachFacts("c", email=email, consent=consent)
    suppressed = {("email", "a@x.io")} if blocked else set()
    expected = (
        "unreachable"
        if not email
        else "no_consent"
        if not granted
        else "suppressed"
        if blocked
        else None
    )
    assert eligibility(facts, "email", suppressed) == expected


def test_every_channel_has_an_sql_verdict() -> None:
    for channel in CHANNELS:
        sql = str(reason(channel).compile())
        assert sql.startswith("CASE WHEN") and "suppressions" in sql


NIGHT = QuietHours(start=time(21, 0), end=time(8, 0))


@pytest.mark.parametrize(
    ("at", "zone", "expected"),
    [
        (datetime(2026, 5, 1, 20, 30, tzinfo=UTC), "Europe/Berlin", "quiet_hours"),  # 22:30
        (datetime(2026, 5, 1, 12, 0, tzinfo=UTC), "Europe/Berlin", None),
        (datetime(2026, 5, 1, 22, 0, tzinfo=UTC), None, "quiet_hours"),  # no zone: UTC
        (datetime(2026, 5, 1, 12, 0, tzinfo=UTC), "Mars/Olympus", "invalid_timezone"),
    ],
)
def test_quiet_hours_in_the_customers_zone(at: datetime, zone: str | None, expected: str) -> None:
    assert quiet_reason(at, NIGHT, zone) == expected


def test_quiet_hours_end_in_the_morning_and_no_window_is_never_quiet() -> None:
    late = datetime(2026, 5, 1, 20, 30, tzinfo=UTC)
    assert quiet_ends(late, NIGHT, "Europe/Berlin") == datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    assert quiet_reason(late, None, "Mars/Olympus") is None
    assert quiet_ends(late, None, "Europe/Berlin") is None
