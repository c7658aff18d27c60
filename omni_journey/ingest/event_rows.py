"""Events checked into rows: no store access, so the import reader process can run it.

:func:`check_events` validates a batch of events (docs/data-formats.md) and builds their rows;
the field checks here are shared with profile ingestion. This module and what it
imports must stay free of SQLAlchemy and the store: the reader process started by
:mod:`omni_journey.ingest.import_chunks` imports it, and its start-up is on the clock of
every large import (tests/integration/test_import_reader.py pins it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from omni_journey.errors import IngestError
from omni_journey.identity import (
    EVENT_IDENTITY_KINDS,
    IdentityKey,
    normalize_identity,
    normalize_text,
)
from omni_journey.ingest.limits import MAX_DEPTH, check_depth, check_time_range

__all__ = [
    "CheckedEvents",
    "Reject",
    "check_events",
    "json_text",
    "label",
    "required",
    "sqlite_timestamp",
    "text",
    "timestamp",
]

_NAME_RE = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class Reject:
    index: int  # position in the input batch (0-based), or line number for files
    reason: str  # stable, PII-free code
    detail: str  # human text, never containing the email/phone/token itself


# --- field checks ---------------------------------------------------------------------


def text(value: object, name: str, max_length: int) -> str:
    """An id or name: the common printable-ASCII case without a call, else
    :func:`normalize_text` (which strips, and explains what is wrong)."""
    if (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
    ):
        return value
    return normalize_text(value, field=name, max_length=max_length)


class _Checked:
    """``text`` with a memory: names and customer ids repeat within a batch."""

    def __init__(self, name: str, max_length: int) -> None:
        self._name = name
        self._max_length = max_length
        self._seen: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        if type(value) is str:
            hit = self._seen.get(value)
            if hit is None:
                hit = self._seen[value] = text(value, self._name, self._max_length)
            return hit
        return text(value, self._name, self._max_length)


def timestamp(value: object, name: str) -> datetime:
    """An ISO 8601 string or an aware datetime, with a zone, within the accepted range
    (:mod:`omni_journey.ingest.limits`)."""
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise IngestError("invalid-timestamp", f"{name} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is not None:
            return check_time_range(parsed, name)
    elif isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return check_time_range(value, name)
    else:
        raise IngestError("invalid-timestamp", f"{name} must be an ISO 8601 string")
    raise IngestError("invalid-timestamp", f"{name} has no time zone (add Z or +hh:mm)")


def sqlite_timestamp(value: datetime) -> str:
    """Exactly what ``UTCDateTime`` binds on SQLite: naive UTC, microseconds."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def json_text(value: object, name: str) -> str:
    if value is None:
        return "{}"
    if type(value) is not dict:
        raise IngestError("invalid-field", f"{name} must be a JSON object")
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        data = _json_fallback(value, name)
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH:  # else it cannot nest that deep
        check_depth(value, name)
    if b"\\u0000" in data:
        raise IngestError("invalid-field", f"{name} contains a NUL character")
    return data.decode()


def _json_fallback(value: dict[str, Any], name: str) -> bytes:
    """What orjson refuses: nesting past its own limit (checked first, so the standard
    library never recurses deeply), and integers past 64 bits (kept exact)."""
    check_depth(value, name)
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError):
        raise IngestError("invalid-field", f"{name} is not JSON-serialisable") from None


def label(key: object) -> str:
    return key if isinstance(key, str) and _NAME_RE.fullmatch(key) else "(unprintable)"


def required(record: Mapping[str, Any], names: Sequence[str]) -> None:
    missing = [n for n in names if record.get(n) in (None, "")]
    if missing:
        raise IngestError("missing-field", f"missing {', '.join(missing)}")


# --- events -------------------------------------------------------------------------------


def _event_keys(identities: object, region: str) -> tuple[IdentityKey, ...]:
    if identities is None:
        return ()
    if not isinstance(identities, Mapping):
        raise IngestError("invalid-field", "identities must be a JSON object")
    for kind in identities:
        if kind not in EVENT_IDENTITY_KINDS:
            expected = ", ".join(EVENT_IDENTITY_KINDS)
            raise IngestError(
                "invalid-field", f"identities.{label(kind)} is unknown; expected {expected}"
            )
    keys: list[IdentityKey] = []
    for kind in EVENT_IDENTITY_KINDS:
        value = identities.get(kind)
        if value is not None and value != "":
            field_name = f"identities.{kind}"
            keys.append(
                (kind, normalize_identity(kind, value, default_region=region, field=field_name))
            )
    return tuple(keys)


@dataclass
class CheckedEvents:
    """Events that passed the checks, column by column, and the ones rejected.

    ``ats`` hold what the ``at`` column binds (SQLite: naive UTC text; PostgreSQL: an
    aware datetime). ``customer_ids`` are None where only identities name the
    customer. Columns, not rows: they cross the pipe from the reader process at about
    a third of the cost of row lists."""

    event_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    ats: list[Any] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    customer_ids: list[str | None] = field(default_factory=list)
    keys: list[tuple[IdentityKey, ...]] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_ids)

    def extend(self, other: CheckedEvents) -> None:
        """Append ``other``'s rows (not its rejects, which index another batch)."""
        self.event_ids += other.event_ids
        self.names += other.names
        self.ats += other.ats
        self.properties += other.properties
        self.customer_ids += other.customer_ids
        self.keys += other.keys


def check_events(records: Sequence[Mapping[str, Any]], region: str, sqlite: bool) -> CheckedEvents:
    """Validate a batch and build its rows (no store access)."""
    check_name = _Checked("name", 128)
    check_customer = _Checked("customer_id", 128)
    checked = CheckedEvents()
    event_ids, names, ats, properties = (
        checked.event_ids,
        checked.names,
        checked.ats,
        checked.properties,
    )
    customer_ids, keys_column, rejected = checked.customer_ids, checked.keys, checked.rejected
    for index, record in enumerate(records):
        try:
            if type(record) is not dict and not isinstance(record, Mapping):
                raise IngestError("invalid-field", "an event must be a JSON object")
            event_id = record.get("id")
            name = record.get("name")
            at = record.get("at")
            if event_id is None or name is None or at is None:
                required(record, ("id", "name", "at"))
            event_id = text(event_id, "id", 255)
            name = check_name(name)
            when = timestamp(at, "at")
            props = json_text(record.get("properties"), "properties")
            customer_id = record.get("customer_id")
            if customer_id is not None:
                customer_id = check_customer(customer_id) if customer_id != "" else None
            identities = record.get("identities")
            keys = _event_keys(identities, region) if identities else ()
            if customer_id is None and not keys:
                raise IngestError("missing-field", "missing customer_id (or an identity)")
        except IngestError as error:
            rejected.append(Reject(index, error.reason, error.detail))
            continue
        event_ids.append(event_id)
        names.append(name)
        if not sqlite:
            ats.append(when)
        elif (
            type(at) is str and len(at) == 27 and at[26] == "Z" and at[19] == "." and at[10] == "T"
        ):
            # "YYYY-MM-DDTHH:MM:SS.ffffffZ", checked by fromisoformat: already UTC with
            # microseconds, so its SQLite text is a slice (isoformat costs far more)
            ats.append(f"{at[:10]} {at[11:26]}")
        else:
            ats.append(sqlite_timestamp(when))
        properties.append(props)
        customer_ids.append(customer_id)
        keys_column.append(keys)
    return checked
