"""Who a claimed message goes to, read at send time: profile, consent, suppressions, push
tokens and the WhatsApp service window, for a whole batch in a few queries.

Merges are followed by :func:`omni_journey.identity.survivors.follow_merges`, and what
an address is, what consent means and what is suppressed come from
:mod:`omni_journey.reach`, the same rules the runner decided the send with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, select

from omni_journey.identity.survivors import follow_merges
from omni_journey.reach import address, eligibility, load_reach
from omni_journey.store.tables import Event

__all__ = ["WHATSAPP_WINDOW", "CustomerView", "Recipients", "load_recipients"]

WHATSAPP_WINDOW = timedelta(hours=24)
# What opens the window: a WhatsApp reply (``message.replied`` with ``channel:
# whatsapp``, recorded from End User Messaging Social's events), or a
# ``whatsapp.received`` event a shop sends itself.
WHATSAPP_INBOUND_EVENT = "whatsapp.received"
REPLIED = "message.replied"
_CHUNK = 500
_EVENTS: Table = Event.__table__  # type: ignore[attr-defined]


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
        """The address to use on ``channel`` (the first not suppressed, else the first,
        so a suppressed one is still reported as such); ``None`` if there is none."""
        return address(customer, channel, self.suppressed)

    def is_suppressed(self, channel: str, address: str) -> bool:
        return (channel, address) in self.suppressed

    def eligibility(self, customer: CustomerView, channel: str) -> str | None:
        """Reach's verdict at send time: ``None``, ``unreachable``, ``no_consent`` or
        ``suppressed``."""
        return eligibility(customer, channel, self.suppressed)


def load_recipients(
    connection: Connection, customer_ids: Iterable[str], *, now: datetime
) -> Recipients:
    survivors = follow_merges(connection, customer_ids)
    live = {str(row.id): row for row in survivors.values()}
    reach = load_reach(connection, live.values())
    inbound = _last_whatsapp_inbound(connection, sorted(live), now)
    views: dict[str, CustomerView] = {}
    for asked, row in survivors.items():
        live_id = str(row.id)
        facts = reach.facts[live_id]
        views[asked] = CustomerView(
            id=live_id,
            email=row.email,
            phone=row.phone,
            timezone=row.timezone,
            locale=row.locale,
            attributes=dict(row.attributes or {}),
            push_tokens=facts.push_tokens,
            consent=dict(facts.consent),
            last_whatsapp_inbound=inbound.get(live_id),
        )
    return Recipients(views, set(reach.suppressed))


def _last_whatsapp_inbound(
    connection: Connection, ids: list[str], now: datetime
) -> dict[str, datetime]:
    """Each customer's last WhatsApp message to us within the window."""
    inbound: dict[str, datetime] = {}
    for start in range(0, len(ids), _CHUNK):
        for owner, name, at, properties in connection.execute(
            select(_EVENTS.c.customer_id, _EVENTS.c.name, _EVENTS.c.at, _EVENTS.c.properties).where(
                and_(
                    _EVENTS.c.customer_id.in_(ids[start : start + _CHUNK]),
                    _EVENTS.c.name.in_((WHATSAPP_INBOUND_EVENT, REPLIED)),
                    _EVENTS.c.at >= now - WHATSAPP_WINDOW,
                )
            )
        ):
            if name == REPLIED and (properties or {}).get("channel") != "whatsapp":
                continue
            if isinstance(at, datetime) and (str(owner) not in inbound or at > inbound[str(owner)]):
                inbound[str(owner)] = at
    return inbound
