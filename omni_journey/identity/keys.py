"""Identity kinds and their normalisation (pure): emails through email-validator
(domain lowercased, no DNS), phones to E.164 through phonenumbers, push tokens and ids
as opaque, length-limited strings.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from omni_journey.errors import IngestError

IdentityKey = tuple[str, str]

#: Every identity kind the store knows.
KINDS: Final = ("customer_id", "external_id", "email", "phone", "push_token", "anonymous_id")
#: Identities an event may carry, in the order an event without ``customer_id`` tries them.
EVENT_IDENTITY_KINDS: Final = ("external_id", "email", "phone", "push_token", "anonymous_id")
#: Identities through which a profile merges customers (push tokens move instead).
LINKING_KINDS: Final = ("customer_id", "external_id", "email", "phone", "anonymous_id")
CONSENT_CHANNELS: Final = ("email", "sms", "push", "whatsapp")

CUSTOMER_ID_MAX: Final = 128
IDENTITY_MAX: Final = 512
_CHUNK: Final = 1000
_DERIVED = re.compile(r"auto-[0-9a-f]{24}")
_ID_FIELDS: Final = frozenset({"id", "push_tokens", *KINDS})


def normalize_text(value: object, *, field: str, max_length: int = IDENTITY_MAX) -> str:
    """An opaque id or token: a string (or integer, exactly as written), stripped,
    1..max_length characters. A decimal number is refused (``invalid-id`` for an id):
    ``1e20`` or ``2**64`` read as a float has lost the digits that told ids apart."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float):
        reason = "invalid-id" if _is_id_field(field) else "invalid-field"
        raise IngestError(reason, f"{field} is a decimal number; send it as a string")
    if not isinstance(value, str):
        raise IngestError("invalid-field", f"{field} must be a string")
    text = value.strip()
    if not text:
        raise IngestError("missing-field", f"{field} is empty")
    if len(text) > max_length:
        raise IngestError("invalid-field", f"{field} is longer than {max_length} characters")
    if not text.isascii() and not _is_storable(text):
        raise IngestError("invalid-field", f"{field} is not valid Unicode text")
    if "\x00" in text:
        raise IngestError("invalid-field", f"{field} contains a NUL character")
    return text


def _is_id_field(field: str) -> bool:
    return field in _ID_FIELDS or field.startswith("identities.")


def _is_storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_email(value: object, *, field: str = "email") -> str:
    """A syntactically valid address, domain lowercased (IDNA to Unicode), no DNS lookup."""
    if not isinstance(value, str):
        raise IngestError("invalid-email", f"{field} must be a string")
    import email_validator  # on first use: a command that reads no address skips it

    try:
        checked = email_validator.validate_email(value.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise IngestError("invalid-email", f"{field} is not a valid email address") from None
    local, _, domain = checked.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalize_phone(value: object, default_region: str, *, field: str = "phone") -> str:
    """E.164 (``+4915112345678``); numbers without ``+`` are read in ``default_region``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > 64:
        raise IngestError("invalid-phone", f"{field} must be a string of at most 64 characters")
    import phonenumbers  # on first use, as email_validator above

    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise IngestError("invalid-phone", f"{field} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise IngestError("invalid-phone", f"{field} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_identity(kind: str, value: object, *, default_region: str, field: str = "") -> str:
    """Normalise one identity value of ``kind`` (see :data:`KINDS`)."""
    label = field or kind
    if kind == "email":
        return normalize_email(value, field=label)
    if kind == "phone":
        return normalize_phone(value, default_region, field=label)
    if kind == "customer_id":
        return normalize_text(value, field=label, max_length=CUSTOMER_ID_MAX)
    if kind in KINDS:
        return normalize_text(value, field=label)
    raise IngestError("invalid-field", f"unknown identity kind {kind!r}")


def derive_customer_id(key: IdentityKey) -> str:
    """The id of a customer created from an identity alone: stable, so re-import is a no-op."""
    digest = hashlib.sha256(f"{key[0]}\x1f{key[1]}".encode()).hexdigest()
    return f"auto-{digest[:24]}"


def is_derived_customer_id(customer_id: str) -> bool:
    return _DERIVED.fullmatch(customer_id) is not None
