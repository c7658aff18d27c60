"""Identity normalisation (pure) and the in-memory rules of merging."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_journey import identity
from omni_journey.errors import IngestError
from omni_journey.identity import (
    ConsentState,
    CustomerState,
    derive_customer_id,
    is_derived_customer_id,
    normalize_email,
    normalize_identity,
    normalize_phone,
    normalize_text,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("ana@example.com", "ana@example.com"),
        ("  Ana.Maria@EXAMPLE.Com ", "Ana.Maria@example.com"),
        ("ana@BÜCHER.de", "ana@bücher.de"),
        ("ana@xn--bcher-kva.de", "ana@bücher.de"),
    ],
)
def test_emails_are_validated_and_their_domain_lowercased(given_: str, expected: str) -> None:
    assert normalize_email(given_) == expected


@pytest.mark.parametrize(
    "bad", ["", "ana", "ana@", "@example.com", "ana@localhost", "a b@example.com", "ana@x.invalid"]
)
def test_invalid_emails_are_rejected_without_echoing_them(bad: str) -> None:
    with pytest.raises(IngestError) as error:
        normalize_email(bad)
    assert error.value.reason == "invalid-email"
    if bad:
        assert bad not in str(error.value)


def test_non_string_email_is_rejected() -> None:
    with pytest.raises(IngestError, match="invalid-email"):
        normalize_email(42)


@pytest.mark.parametrize(
    ("given_", "region", "expected"),
    [
        ("+49 151 12345678", "US", "+4915112345678"),
        ("0151 12345678", "DE", "+4915112345678"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("+1 201-555-0123", "DE", "+12015550123"),
        (12015550123, "US", "+12015550123"),
    ],
)
def test_phones_become_e164(given_: object, region: str, expected: str) -> None:
    assert normalize_phone(given_, region) == expected


@pytest.mark.parametrize("bad", ["", "12", "+999", "call me", "+49 151", "1" * 80, None])
def test_invalid_phones_are_rejected_without_echoing_them(bad: object) -> None:
    with pytest.raises(IngestError) as error:
        normalize_phone(bad, "DE")
    assert error.value.reason == "invalid-phone"
    if isinstance(bad, str) and bad:
        assert bad not in str(error.value)


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]


@given(st.sampled_from(_REGIONS), st.sampled_from(_FORMATS))
def test_e164_normalisation_of_real_numbers_is_idempotent(region: str, style: int) -> None:
    example = phonenumbers.example_number_for_type(
        region, phonenumbers.PhoneNumberType.MOBILE
    ) or phonenumbers.example_number(region)
    if example is None:
        return
    written = phonenumbers.format_number(example, style)
    once = normalize_phone(written, region)
    assert once == phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(once, "US") == once


@given(st.text(alphabet="0123456789 +-()", max_size=20), st.sampled_from(["US", "DE", "GB", "IN"]))
def test_e164_normalisation_is_idempotent_or_rejects(text: str, region: str) -> None:
    try:
        once = normalize_phone(text, region)
    except IngestError as error:
        assert error.reason == "invalid-phone"
        return
    assert once.startswith("+")
    assert normalize_phone(once, "US") == once


@given(st.emails())
def test_email_normalisation_is_idempotent(address: str) -> None:
    try:
        once = normalize_email(address)
    except IngestError:
        return
    assert normalize_email(once) == once
    assert once.rpartition("@")[2] == once.rpartition("@")[2].lower()


def test_opaque_values_are_stripped_and_length_limited() -> None:
    assert normalize_text("  tok-1 ", field="push_token") == "tok-1"
    assert normalize_text(42, field="external_id") == "42"
    assert normalize_identity("customer_id", "c" * 128, default_region="US") == "c" * 128
    for bad, reason in [
        ("", "missing-field"),
        ("   ", "missing-field"),
        ("c" * 129, "invalid-field"),
        (True, "invalid-field"),
        (["x"], "invalid-field"),
        ("a\x00b", "invalid-field"),
        ("\ud800", "invalid-field"),
    ]:
        with pytest.raises(IngestError) as error:
            normalize_identity("customer_id", bad, default_region="US")
        assert error.value.reason == reason
    with pytest.raises(IngestError, match="invalid-field"):
        normalize_identity("push_token", "t" * 513, default_region="US")
    with pytest.raises(IngestError, match="unknown identity kind"):
        normalize_identity("fax", "1", default_region="US")


def test_derived_customer_ids_are_stable_and_recognisable() -> None:
    first = derive_customer_id(("email", "ana@example.com"))
    assert first == derive_customer_id(("email", "ana@example.com"))
    assert first != derive_customer_id(("anonymous_id", "ana@example.com"))
    assert is_derived_customer_id(first)
    assert "ana" not in first
    assert not is_derived_customer_id("c-42")
    assert len(first) <= identity.CUSTOMER_ID_MAX


def test_consent_latest_statement_wins() -> None:
    state = CustomerState(id="c", created_at=T0)
    assert state.state_consent("email", True, T0, "profile")
    assert not state.state_consent("email", False, T0 - timedelta(days=1), "profile")
    assert state.consents["email"].granted is True
    assert not state.state_consent("email", True, T0 + timedelta(days=1), "profile")
    assert state.consents["email"].updated_at == T0 + timedelta(days=1)
    assert state.state_consent("email", False, T0 + timedelta(days=2), "profile")


def test_absorb_keeps_the_survivors_values_and_the_latest_consent() -> None:
    survivor = CustomerState(
        id="s",
        created_at=T0,
        email="s@example.com",
        attributes={"tier": "gold"},
        consents={"email": ConsentState(True, T0, "profile")},
    )
    loser = CustomerState(
        id="l",
        created_at=T0,
        email="l@example.com",
        phone="+4915112345678",
        timezone="Europe/Berlin",
        attributes={"tier": "silver", "source": "web"},
        consents={
            "email": ConsentState(False, T0 + timedelta(hours=1), "profile"),
            "sms": ConsentState(True, T0, "profile"),
        },
    )
    survivor.absorb(loser, "s")
    assert survivor.attributes == {"tier": "gold", "source": "web"}
    assert (survivor.email, survivor.phone, survivor.timezone) == (
        "s@example.com",
        "+4915112345678",
        "Europe/Berlin",
    )
    assert {c: s.granted for c, s in survivor.consents.items()} == {"email": False, "sms": True}
    assert (loser.merged_into, loser.email, loser.phone, loser.consents) == ("s", None, None, {})


def test_attribute_updates_tell_json_types_apart() -> None:
    state = CustomerState(id="c", created_at=T0, attributes={"vip": 1})
    assert state.update_attributes({"vip": True})
    assert not state.update_attributes({"vip": True})
    assert state.attributes == {"vip": True}


def test_identity_sits_below_service_and_cli() -> None:
    imported: set[str] = set()
    for module in Path(identity.__file__).parent.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported |= {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
    ours = {
        m
        for m in imported
        if m.startswith("omni_journey") and not m.startswith("omni_journey.identity")
    }
    assert ours <= {
        "omni_journey.errors",
        "omni_journey.store.core",
        "omni_journey.store.driver",
        "omni_journey.store.ops",
        "omni_journey.store.tables",
    }
