"""Who a claimed message goes to, read at send time: profile, consent, suppressions, push
tokens and the WhatsApp service window, for a whole batch in a few queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, func, select

from omni_journey.store.tables import Consent, Customer, Event, Identity, Suppression

__all__ = ["WHATSAPP_WINDOW", "CustomerView", "Recipients", "load_recipients"]

WHATSAPP_WINDOW = timedelta(hours=24)
WHATSAPP_INBOUND_EVENT = "whatsapp.received"
_CHUNK = 500
_CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
_IDENTITIES: Table = Identity.__table__  # type: ignore[attr-defined]
_CONSENTS: Table = Consent.__table__  # type: ignore[attr-defined]
_EVENTS: Table = Event.__table__  # type: ignore[attr-defined]
_SUPPRESSIONS: Table = Suppression.__table__  # type: ignore[attr-defined]
_MAX_MERGE_HOPS = 8


@dataclass(frozen=True)
class CustomerView:
    """The profile a renderer sees (and the address the dispatcher uses)."""

    id: str
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    push_tokens: tuple[str, ...] = ()  # newest first
    consent: dict[str, bool] = field(default_factory=dict)
    last_whatsapp_inbound: datetime | None = None


@dataclass
class Recipients:
    customers: dict[str, CustomerView]  # by the id the message names (merges followed)
    suppressed: set[tuple[str, str]]  # (channel, address)

    def address(self, customer: CustomerView, channel: str) -> str | None:
        """The address to use on ``channel``; ``None`` if there is none."""
        if channel == "email":
            return customer.email
        if channel in ("sms", "whatsapp"):
            return customer.phone
        if channel == "push":
            usable = [t for t in customer.push_tokens if ("push", t) not in self.suppressed]
            return (
                usable[0] if usable else (customer.push_tokens[0] if customer.push_tokens else None)
            )
        return None

    def is_suppressed(self, channel: str, address: str) -> bool:
        return (channel, address) in self.suppressed


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def load_recipients(
    connection: Connection, customer_ids: Iterable[str], *, now: datetime
) -> Recipients:
    wanted = sorted(set(customer_ids))
    rows: dict[str, Any] = {}
    pending = list(wanted)
    for _ in range(_MAX_MERGE_HOPS):
        pending = [c for c in pending if c not in rows]
        if not pending:
            break
        for chunk in _chunks(pending):
            for row in connection.execute(select(_CUSTOMERS).where(_CUSTOMERS.c.id.in_(chunk))):
                rows[row.id] = row
        pending = [rows[c].merged_into for c in pending if c in rows and rows[c].merged_into]
    survivor: dict[str, str] = {}
    for cid in wanted:
        current, hops = cid, 0
        while current in rows and rows[current].merged_into and hops < _MAX_MERGE_HOPS:
            current, hops = rows[current].merged_into, hops + 1
        if current in rows:
            survivor[cid] = current
    live = sorted(set(survivor.values()))
    tokens: dict[str, list[str]] = defaultdict(list)
    consent: dict[str, dict[str, bool]] = defaultdict(dict)
    inbound: dict[str, datetime] = {}
    for chunk in _chunks(live):
        for owner, value in connection.execute(
            select(_IDENTITIES.c.customer_id, _IDENTITIES.c.value)
            .where(and_(_IDENTITIES.c.kind == "push_token", _IDENTITIES.c.customer_id.in_(chunk)))
            .order_by(_IDENTITIES.c.created_at.desc(), _IDENTITIES.c.value)
        ):
            tokens[str(owner)].append(str(value))
        for owner, channel, granted in connection.execute(
            select(_CONSENTS.c.customer_id, _CONSENTS.c.channel, _CONSENTS.c.granted).where(
                _CONSENTS.c.customer_id.in_(chunk)
            )
        ):
            consent[str(owner)][str(channel)] = bool(granted)
        for owner, last in connection.execute(
            select(_EVENTS.c.customer_id, func.max(_EVENTS.c.at))
            .where(
                and_(
                    _EVENTS.c.customer_id.in_(chunk),
                    _EVENTS.c.name == WHATSAPP_INBOUND_EVENT,
                    _EVENTS.c.at >= now - WHATSAPP_WINDOW,
                )
            )
            .group_by(_EVENTS.c.customer_id)
        ):
            if isinstance(last, datetime):
                inbound[str(owner)] = last
    views: dict[str, CustomerView] = {}
    for cid, live_id in survivor.items():
        row = rows[live_id]
        views[cid] = CustomerView(
            id=live_id,
            email=row.email,
            phone=row.phone,
            timezone=row.timezone,
            locale=row.locale,
            attributes=dict(row.attributes or {}),
            push_tokens=tuple(tokens.get(live_id, ())),
            consent=dict(consent.get(live_id, {})),
            last_whatsapp_inbound=inbound.get(live_id),
        )
    addresses: dict[str, set[str]] = defaultdict(set)
    for view in views.values():
        if view.email:
            addresses["email"].add(view.email)
        if view.phone:
            addresses["sms"].add(view.phone)
            addresses["whatsapp"].add(view.phone)
        addresses["push"].update(view.push_tokens)
    suppressed: set[tuple[str, str]] = set()
    for channel, values in addresses.items():
        for chunk in _chunks(sorted(values)):
            for (address,) in connection.execute(
                select(_SUPPRESSIONS.c.address).where(
                    and_(_SUPPRESSIONS.c.channel == channel, _SUPPRESSIONS.c.address.in_(chunk))
                )
            ):
                suppressed.add((channel, str(address)))
    return Recipients(views, suppressed)
