"""Customer profiles checked and normalised: no store access.

A profile is the customer record of docs/data-formats.md plus ``anonymous_id`` / ``external_id`` and
an optional ``at`` (when the statement was made). Every field is checked here, before
any transaction, so a bad record is rejected with a stable reason and nothing of it is
stored; what is left is what identity resolution needs (the linking keys in merge
order, the push tokens that move) and what the customer row and consents take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from omni_journey.errors import IngestError
from omni_journey.identity import (
    CONSENT_CHANNELS,
    derive_customer_id,
    normalize_email,
    normalize_phone,
    normalize_text,
)
from omni_journey.identity.statements import Profile
from omni_journey.ingest.event_rows import Reject, json_text, label, timestamp

__all__ = ["Profile", "parse_profile", "parse_profiles"]


def _zone(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise IngestError("invalid-timezone", "timezone must be an IANA name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise IngestError("invalid-timezone", "timezone is not a known IANA time zone") from None
    return value


def parse_profile(record: Mapping[str, Any], region: str, now: datetime) -> Profile:
    if not isinstance(record, Mapping):
        raise IngestError("invalid-field", "a profile must be a JSON object")
    customer_id = record.get("customer_id")
    if customer_id is not None and customer_id != "":
        customer_id = normalize_text(customer_id, field="customer_id", max_length=128)
    else:
        customer_id = None
    email = record.get("email")
    email = None if email in (None, "") else normalize_email(email)
    phone = record.get("phone")
    phone = None if phone in (None, "") else normalize_phone(phone, region)
    external_id = record.get("external_id")
    anonymous_id = record.get("anonymous_id")
    candidates = {
        "customer_id": customer_id,
        "external_id": None
        if external_id in (None, "")
        else normalize_text(external_id, field="external_id"),
        "email": email,
        "phone": phone,
        "anonymous_id": None
        if anonymous_id in (None, "")
        else normalize_text(anonymous_id, field="anonymous_id"),
    }
    linking = [(kind, value) for kind, value in candidates.items() if value is not None]
    if not linking:
        raise IngestError(
            "missing-field", "missing customer_id (or email, phone, external_id, anonymous_id)"
        )
    tokens = record.get("push_tokens") or []
    if not isinstance(tokens, list):
        raise IngestError("invalid-field", "push_tokens must be a list of strings")
    push = tuple(
        dict.fromkeys(("push_token", normalize_text(t, field="push_tokens")) for t in tokens)
    )
    timezone = record.get("timezone")
    locale = record.get("locale")
    columns = {
        "email": email,
        "phone": phone,
        "timezone": None if timezone in (None, "") else _zone(timezone),
        "locale": None
        if locale in (None, "")
        else normalize_text(locale, field="locale", max_length=35),
    }
    consent = record.get("consent") or {}
    if not isinstance(consent, Mapping):
        raise IngestError("invalid-consent", "consent must be an object of channel: true/false")
    for channel, granted in consent.items():
        if channel not in CONSENT_CHANNELS or not isinstance(granted, bool):
            raise IngestError(
                "invalid-consent",
                f"consent.{label(channel)} must be true or false; channels: "
                + ", ".join(CONSENT_CHANNELS),
            )
    attributes = record.get("attributes") or {}
    attributes = orjson.loads(json_text(attributes, "attributes"))
    at = record.get("at")
    merge = record.get("merge", False)
    if not isinstance(merge, bool):
        raise IngestError("invalid-field", "merge must be true or false")
    profile = Profile(
        customer_id=customer_id,
        linking=tuple(linking),
        push=push,
        columns=columns,
        consent=dict(consent),
        attributes=attributes,
        at=now if at in (None, "") else timestamp(at, "at"),
        merge=merge,
    )
    if customer_id is None:
        profile.seeds.append(derive_customer_id(linking[0]))
    return profile


def parse_profiles(
    records: Sequence[Mapping[str, Any]], region: str, now: datetime
) -> tuple[list[Profile], list[Reject]]:
    """A batch checked: its good profiles in order, and each bad one's reason."""
    profiles: list[Profile] = []
    rejected: list[Reject] = []
    for index, record in enumerate(records):
        try:
            profiles.append(parse_profile(record, region, now))
        except IngestError as error:
            rejected.append(Reject(index, error.reason, error.detail))
    return profiles, rejected
