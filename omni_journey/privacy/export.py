"""Everything the product holds about one customer, as one JSON document (the right of
access: GDPR article 15, CCPA's right to know): ``omni-journey customers export``.

Read only. The document covers the customer and every customer merged into them: the
profile rows, identities, consent in force and its history, suppressions of their
addresses, events with their properties, outbox messages with what was rendered (the
file outbox's file, when the file provider sent it), journey enrollments and every
decision with its inputs, segment memberships and purchase cycles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, or_, select

from omni_journey.history.timeline import consent_history
from omni_journey.privacy.files import find_outbox_files
from omni_journey.privacy.subject import Subject, load_subject
from omni_journey.settings import Settings
from omni_journey.store.core import (
    CONSENTS,
    ENROLLMENTS,
    EVENTS,
    IDENTITIES,
    JOURNEY_LOG,
    MESSAGES,
    SUPPRESSIONS,
)
from omni_journey.store.tables import metadata

__all__ = ["EXPORT_FORMAT", "export_customer", "export_subject"]

EXPORT_FORMAT = "omni-journey.customer-export.v1"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(connection: Connection, table: Table, where: Any, *order: Any) -> list[dict[str, Any]]:
    query = select(table).where(where).order_by(*order)
    return [_plain(dict(row._mapping)) for row in connection.execute(query)]


def _messages(
    connection: Connection, ids: Sequence[str], settings: Settings
) -> list[dict[str, Any]]:
    rows = _rows(connection, MESSAGES, MESSAGES.c.customer_id.in_(ids), MESSAGES.c.id)
    for row in rows:
        files = find_outbox_files(settings.outbox_dir, [(row["channel"], row["idempotency_key"])])
        row["rendered"] = [
            {"file": str(path.relative_to(settings.outbox_dir)),
             "content": path.read_text(encoding="utf-8", errors="replace")}
            for path in files
        ]  # fmt: skip
    return rows


def export_subject(
    connection: Connection, subject: Subject, settings: Settings, *, now: datetime
) -> dict[str, Any]:
    """The export document of ``subject`` (see the module), JSON-ready."""
    ids = list(subject.ids)
    customers = {str(r.id): _plain(dict(r._mapping)) for r in subject.rows}
    consent: dict[str, dict[str, Any]] = {
        row["channel"]: row
        for row in _rows(connection, CONSENTS, CONSENTS.c.customer_id.in_(ids), CONSENTS.c.channel)
    }
    for channel, changes in consent_history(connection, ids).items():
        consent.setdefault(channel, {"channel": channel})["history"] = changes
    addresses = [
        and_(SUPPRESSIONS.c.channel == channel, SUPPRESSIONS.c.address == address)
        for channel, address in subject.addresses()
    ]
    memberships = metadata.tables["segment_memberships"]
    cycles = metadata.tables["purchase_cycles"]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        "customer_id": subject.survivor,
        "profile": customers.get(subject.survivor),
        "merged_customers": [customers[c] for c in ids[1:] if c in customers],
        "identities": _rows(
            connection,
            IDENTITIES,
            or_(
                IDENTITIES.c.customer_id.in_(ids),
                (IDENTITIES.c.kind == "customer_id") & IDENTITIES.c.value.in_(ids),
            ),
            IDENTITIES.c.kind,
            IDENTITIES.c.value,
        ),
        "consent": consent,
        "suppressions": _rows(connection, SUPPRESSIONS, or_(*addresses), SUPPRESSIONS.c.channel)
        if addresses
        else [],
        "events": _rows(
            connection, EVENTS, EVENTS.c.customer_id.in_(ids), EVENTS.c.at, EVENTS.c.seq
        ),
        "messages": _messages(connection, ids, settings),
        "enrollments": _rows(
            connection, ENROLLMENTS, ENROLLMENTS.c.customer_id.in_(ids), ENROLLMENTS.c.id
        ),
        "decisions": _rows(
            connection, JOURNEY_LOG, JOURNEY_LOG.c.customer_id.in_(ids), JOURNEY_LOG.c.id
        ),
        "segments": _rows(
            connection, memberships, memberships.c.customer_id.in_(ids), memberships.c.segment_key
        ),
        "purchase_cycles": _rows(
            connection, cycles, cycles.c.customer_id.in_(ids), cycles.c.category
        ),
    }


def export_customer(
    engine: Engine, settings: Settings, key: str, *, now: datetime
) -> dict[str, Any] | None:
    """The export document of the customer behind ``key`` (any key ``customers show``
    takes), or None when nobody matches."""
    with engine.connect() as connection:
        subject = load_subject(connection, key, settings.default_region)
        if subject is None:
            return None
        return export_subject(connection, subject, settings, now=now)
