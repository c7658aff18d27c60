"""The Python API: ``omni_journey.track`` and ``omni_journey.identify``; a customer's
data out (``export_customer``) or erased everywhere (``erase_customer``).

Each ``track`` or ``identify`` call stores one event or one profile through the same
ingestion the CLI and the collector use, durably, before it returns. The store comes from settings
(``OMNI_DATABASE_URL`` or the SQLite file under ``OMNI_HOME``), read at call time;
one engine is kept per database URL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from omni_journey.errors import IngestError
from omni_journey.ingest.intake import BatchResult, ingest_events, ingest_profiles
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store

if TYPE_CHECKING:  # the privacy package loads on first use
    from omni_journey.privacy import ErasureResult

__all__ = ["erase_customer", "export_customer", "get_engine", "identify", "track"]

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(settings: Settings) -> Engine:
    """The engine for ``settings``' database, opened (and migrated) once per URL."""
    url = settings.resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = open_store(url)
        return engine


def _raise_rejected(result: BatchResult) -> None:
    if result.rejected:
        reject = result.rejected[0]
        raise IngestError(reject.reason, reject.detail)


def track(
    name: str,
    customer_id: str | None = None,
    *,
    properties: Mapping[str, Any] | None = None,
    identities: Mapping[str, str] | None = None,
    at: datetime | str | None = None,
    event_id: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Store one event and return its id (``evt-<uuid4>`` when none is given).

    ``at`` defaults to now and must carry a time zone. A repeated ``event_id`` is
    stored once. Raises :class:`~omni_journey.errors.IngestError` (with a reason code
    such as ``invalid-email``) when the event is rejected.
    """
    settings = settings or get_settings()
    now = datetime.now(UTC)
    event_id = event_id or f"evt-{uuid.uuid4()}"
    record: dict[str, Any] = {
        "id": event_id,
        "name": name,
        "at": now if at is None else at,
        "properties": dict(properties or {}),
    }
    if customer_id is not None:
        record["customer_id"] = customer_id
    if identities:
        record["identities"] = dict(identities)
    _raise_rejected(ingest_events(get_engine(settings), [record], now=now, settings=settings))
    return event_id


def identify(customer_id: str, *, settings: Settings | None = None, **profile: Any) -> None:
    """Create or update one customer profile (docs/data-formats.md: ``email``, ``phone``,
    ``push_tokens``, ``timezone``, ``locale``, ``consent``, ``attributes``, plus
    ``anonymous_id`` / ``external_id``). Linking an anonymous id merges the anonymous
    customer's history into this one; an identity that belongs to another customer
    known by its own id is refused (``identity-conflict``) unless ``merge=True`` asks
    for the merge. Raises ``IngestError`` when rejected.
    """
    settings = settings or get_settings()
    now = datetime.now(UTC)
    record = {**profile, "customer_id": customer_id}
    _raise_rejected(ingest_profiles(get_engine(settings), [record], now=now, settings=settings))


def export_customer(key: str, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """Everything stored about the customer behind ``key`` (a customer id, email, phone
    number, push token, external or anonymous id) as one JSON-ready dict: profile,
    identities (merged customers' too), consent and its history, suppressions, events,
    messages with what was rendered, enrollments, decisions, segments, purchase cycles.
    None when no customer matches."""
    from omni_journey.privacy import export_customer as _export_customer

    settings = settings or get_settings()
    return _export_customer(get_engine(settings), settings, key, now=datetime.now(UTC))


def erase_customer(key: str, *, settings: Settings | None = None) -> ErasureResult:
    """Erase the customer behind ``key`` everywhere omni-journey writes (the store, the
    file outbox, previews, rejects files), keeping anonymous aggregates under an opaque
    id, and record the erasure without personal data (docs/operations.md, "Export and
    erasure"). Idempotent: a key that matches nobody returns ``erased=False``; an
    erasure a crash interrupted is finished by the next call."""
    from omni_journey.privacy import erase_customer as _erase_customer

    settings = settings or get_settings()
    return _erase_customer(get_engine(settings), settings, key, now=datetime.now(UTC))
