"""One customer's history across channels: the profile, every identity (with the ids of
customers merged into this one), consent per channel with when and how it changed,
suppressions of their addresses, and one timeline, newest first, of events in,
messages out, journey decisions and consent changes.

Read only. Customers merged into the survivor keep their rows under their old ids
until history moves, so every query covers the survivor and the ids merged into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from omni_journey.identity.survivors import merged_into
from omni_journey.store.core import (
    CONSENT_CHANGES,
    CONSENTS,
    EVENTS,
    IDENTITIES,
    JOURNEY_LOG,
    MESSAGES,
    SUPPRESSIONS,
)

__all__ = ["CustomerHistory", "TimelineItem", "consent_history", "load_history"]

ItemKind = Literal["event", "message", "journey", "consent"]
# the channel an address kind reaches, for suppressions
_ADDRESS_CHANNELS: Mapping[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("sms", "whatsapp"),
    "push_token": ("push",),
}


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One thing that happened to the customer. ``name``: the event's name, the
    message's key, the decision (entered, sent, skipped, deferred, exited, ...), or
    ``granted`` / ``withdrawn`` for a change of consent."""

    at: datetime
    kind: ItemKind
    name: str
    channel: str | None = None
    journey: str | None = None
    step: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "name": self.name,
            "channel": self.channel,
            "journey": self.journey,
            "step": self.step,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class CustomerHistory:
    customer: Mapping[str, Any]
    merged_ids: Sequence[str]
    identities: Sequence[Mapping[str, Any]]
    consent: Mapping[str, Mapping[str, Any]]
    suppressions: Sequence[Mapping[str, Any]]
    timeline: Sequence[TimelineItem]
    offset: int
    more: bool  # another page follows

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer": dict(self.customer),
            "merged_ids": list(self.merged_ids),
            "identities": [dict(i) for i in self.identities],
            "consent": {channel: dict(c) for channel, c in self.consent.items()},
            "suppressions": [dict(s) for s in self.suppressions],
            "timeline": [item.as_dict() for item in self.timeline],
            "page": {"offset": self.offset, "limit": len(self.timeline), "more": self.more},
        }


# At one instant, what happened because of something shows above it (newest first): the
# events the product emits about its own decisions and sends (journey.entered,
# message.sent, ...), then messages, then decisions, then consent changes, then what the
# customer did (an order, a reply: the causes).
_EFFECT_EVENTS = ("journey.", "message.sent", "message.failed")
_RANK = {"message": 3, "journey": 2, "consent": 1}


def _newest_first(item: TimelineItem) -> tuple[datetime, int]:
    if item.kind == "event":
        return item.at, 4 if item.name.startswith(_EFFECT_EVENTS) else 0
    return item.at, _RANK[item.kind]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _events(connection: Connection, ids: Sequence[str], last: int) -> list[TimelineItem]:
    rows = connection.execute(
        select(EVENTS.c.event_id, EVENTS.c.name, EVENTS.c.at, EVENTS.c.properties)
        .where(EVENTS.c.customer_id.in_(ids))
        .order_by(EVENTS.c.at.desc(), EVENTS.c.seq.desc())
        .limit(last)
    )
    items = []
    for row in rows:
        properties = dict(row.properties or {})
        channel = properties.get("channel")
        items.append(
            TimelineItem(
                row.at,
                "event",
                row.name,
                channel=channel if isinstance(channel, str) else None,
                journey=properties.get("journey") if row.name.startswith("journey.") else None,
                detail={"event_id": row.event_id, "properties": properties},
            )
        )
    return items


def _messages(connection: Connection, ids: Sequence[str], last: int) -> list[TimelineItem]:
    at = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.created_at)
    rows = connection.execute(
        select(MESSAGES, at.label("shown_at"))
        .where(MESSAGES.c.customer_id.in_(ids))
        .order_by(at.desc(), MESSAGES.c.id.desc())
        .limit(last)
    )
    return [
        TimelineItem(
            row.sent_at or row.created_at,
            "message",
            row.message_key,
            channel=row.channel,
            journey=row.journey_key,
            step=row.step_id,
            detail={
                "status": row.status,
                "provider": row.provider,
                "provider_message_id": row.provider_message_id,
                "error": row.error,
                "attempts": row.attempts,
                "queued_at": _iso(row.created_at),
                "send_after": _iso(row.send_after),
                "sent_at": _iso(row.sent_at),
                "outbox_id": row.id,
                "idempotency_key": row.idempotency_key,
            },
        )
        for row in rows
    ]


def _decisions(connection: Connection, ids: Sequence[str], last: int) -> list[TimelineItem]:
    rows = connection.execute(
        select(JOURNEY_LOG)
        .where(JOURNEY_LOG.c.customer_id.in_(ids))
        .order_by(JOURNEY_LOG.c.at.desc(), JOURNEY_LOG.c.id.desc())
        .limit(last)
    )
    items = []
    for row in rows:
        detail: dict[str, Any] = {"reason": row.reason, "holdout": bool(row.holdout)}
        if row.event_id:
            detail["event_id"] = row.event_id
        if row.message_id is not None:
            detail["outbox_id"] = row.message_id
        if row.detail:
            detail["inputs"] = dict(row.detail)
        channel = (row.detail or {}).get("channel")
        if row.kind == "sent":  # a send decision's reason is the channel it chose
            channel = row.reason
        elif channel is None:  # a skip or deferral of a step with one channel names it
            tried = (row.detail or {}).get("eligibility")
            if isinstance(tried, dict) and len(tried) == 1:
                channel = next(iter(tried))
        items.append(
            TimelineItem(
                row.at,
                "journey",
                row.kind,
                channel=channel if isinstance(channel, str) else None,
                journey=row.journey_key,
                step=row.step_id,
                detail=detail,
            )
        )
    return items


def _consent_changes(connection: Connection, ids: Sequence[str], last: int) -> list[TimelineItem]:
    rows = connection.execute(
        select(CONSENT_CHANGES)
        .where(CONSENT_CHANGES.c.customer_id.in_(ids))
        .order_by(CONSENT_CHANGES.c.at.desc(), CONSENT_CHANGES.c.id.desc())
        .limit(last)
    )
    return [
        TimelineItem(
            row.at,
            "consent",
            "granted" if row.granted else "withdrawn",
            channel=row.channel,
            detail={"previous": None if row.previous is None else bool(row.previous),
                    "value": bool(row.granted), "source": row.source},
        )
        for row in rows
    ]  # fmt: skip


def consent_history(connection: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per channel, every change of consent of ``ids``, oldest first: ``at``, ``value``
    (granted or not), ``previous`` and ``source`` (how it changed)."""
    history: dict[str, list[dict[str, Any]]] = {}
    for row in connection.execute(
        select(CONSENT_CHANGES)
        .where(CONSENT_CHANGES.c.customer_id.in_(ids))
        .order_by(CONSENT_CHANGES.c.at, CONSENT_CHANGES.c.id)
    ):
        history.setdefault(row.channel, []).append(
            {"at": _iso(row.at), "value": bool(row.granted), "source": row.source,
             "previous": None if row.previous is None else bool(row.previous)}
        )  # fmt: skip
    return history


def _suppressions(
    connection: Connection, identities: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    wanted: list[ColumnElement[bool]] = []
    for identity in identities:
        for channel in _ADDRESS_CHANNELS.get(str(identity["kind"]), ()):
            wanted.append(
                and_(SUPPRESSIONS.c.channel == channel, SUPPRESSIONS.c.address == identity["value"])
            )
    if not wanted:
        return []
    rows = connection.execute(
        select(SUPPRESSIONS).where(or_(*wanted)).order_by(SUPPRESSIONS.c.created_at)
    )
    return [
        {"channel": r.channel, "address": r.address, "reason": r.reason,
         "since": _iso(r.created_at)}
        for r in rows
    ]  # fmt: skip


def load_history(
    connection: Connection, customer: Any, *, limit: int = 50, offset: int = 0
) -> CustomerHistory:
    """The history of ``customer`` (a surviving ``customers`` row, as
    :func:`~omni_journey.history.find.find_customer` returns it); the timeline's page
    of ``limit`` items after the newest ``offset``."""
    survivor = str(customer.id)
    merged = merged_into(connection, survivor)
    ids = [survivor, *merged]
    identities = [
        {"kind": r.kind, "value": r.value, "since": _iso(r.created_at)}
        for r in connection.execute(
            select(IDENTITIES)
            .where(IDENTITIES.c.customer_id == survivor)
            .order_by(IDENTITIES.c.kind, IDENTITIES.c.value)
        )
    ]
    changes = consent_history(connection, ids)
    consent: dict[str, dict[str, Any]] = {
        r.channel: {"granted": bool(r.granted), "source": r.source, "since": _iso(r.updated_at)}
        for r in connection.execute(
            select(CONSENTS).where(CONSENTS.c.customer_id == survivor).order_by(CONSENTS.c.channel)
        )
    }
    for channel in sorted(changes.keys() - consent.keys()):  # history only (none in force)
        consent[channel] = {"granted": None, "source": None, "since": None}
    for channel, state in consent.items():
        state["history"] = changes.get(channel, [])
    last = offset + limit + 1  # one more than the page: is there another?
    sources = (
        _events(connection, ids, last),
        _messages(connection, ids, last),
        _decisions(connection, ids, last),
        _consent_changes(connection, ids, last),
    )
    newest = sorted(chain(*sources), key=_newest_first, reverse=True)
    profile = {
        "customer_id": survivor,
        "email": customer.email,
        "phone": customer.phone,
        "timezone": customer.timezone,
        "locale": customer.locale,
        "attributes": dict(customer.attributes or {}),
        "created_at": _iso(customer.created_at),
        "updated_at": _iso(customer.updated_at),
    }
    return CustomerHistory(
        customer=profile,
        merged_ids=merged,
        identities=identities,
        consent=consent,
        suppressions=_suppressions(connection, identities),
        timeline=newest[offset : offset + limit],
        offset=offset,
        more=len(newest) > offset + limit,
    )
