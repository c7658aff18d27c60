"""Inbound SMS keywords: STOP and friends opt the number out, START and UNSTOP back in.

:func:`handle_inbound_sms` is what the collector, a flow or :mod:`.feedback` (two-way
SMS through SNS) calls with one inbound message. An opt-out withdraws SMS consent of
every customer with that number, suppresses the number, and records a
``message.unsubscribed`` event, in one transaction; repeating it changes nothing. An
opt-in (the number's holder asking for messages again, AWS's resubscribe keywords) lifts
the number's opt-out suppression (never a bounce's or a complaint's), grants SMS consent
to every customer with that number and records ``message.resubscribed``.

Every inbound SMS, keyword or not, is also recorded as a ``message.replied`` on the
number's owner by :mod:`.feedback` (a keyword with ``keyword: opt_out`` / ``opt_in``),
the way Braze and Customer.io log the inbound message and apply the keyword.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, Table, and_, select

from omni_journey.identity.changes import record_consent
from omni_journey.reach.suppressions import lift_suppression, suppress
from omni_journey.store.events import append_events
from omni_journey.store.tables import Customer, Identity

__all__ = [
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "apply_inbound_sms",
    "handle_inbound_sms",
    "is_opt_in",
    "is_opt_out",
    "keyword",
]

# AWS End User Messaging SMS's default opt-out keywords, plus common variants.
OPT_OUT_KEYWORDS = frozenset({
    "ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "STOPALL",
    "TD", "UNSUBSCRIBE", "UNSUB", "REVOKE", "STOPP", "BAJA", "PARAR",
})  # fmt: skip
# What AWS documents for resubscribing (a toll-free number's opt-in keyword action).
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})

_CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
_IDENTITIES: Table = Identity.__table__  # type: ignore[attr-defined]
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def is_opt_out(text: str) -> bool:
    """The whole message is an opt-out keyword (any case, surrounding punctuation ignored)."""
    return _TRIM.sub("", text).upper() in OPT_OUT_KEYWORDS


def is_opt_in(text: str) -> bool:
    """The whole message is an opt-in keyword (any case, surrounding punctuation ignored)."""
    return _TRIM.sub("", text).upper() in OPT_IN_KEYWORDS


Outcome = Literal["opted_out", "opted_in"]


def handle_inbound_sms(
    engine: Engine, *, phone: str, text: str, now: datetime, inbound_id: str
) -> Outcome | None:
    """Apply one inbound SMS: ``"opted_out"``, ``"opted_in"`` or None (any other text,
    which changes nothing).

    ``phone`` is the sender in E.164; ``inbound_id`` (the provider's inbound message
    id) makes the event idempotent.
    """
    if keyword(text) is None:
        return None
    with engine.begin() as connection:
        return apply_inbound_sms(connection, phone=phone, text=text, now=now, inbound_id=inbound_id)


def keyword(text: str) -> Outcome | None:
    """What an inbound text asks for, if it is a keyword."""
    if is_opt_in(text):
        return "opted_in"
    return "opted_out" if is_opt_out(text) else None


def apply_inbound_sms(
    connection: Connection, *, phone: str, text: str, now: datetime, inbound_id: str
) -> Outcome | None:
    """:func:`handle_inbound_sms` in the caller's transaction (feedback records the
    message as a reply in the same one)."""
    outcome = keyword(text)
    if outcome is None:
        return None
    opt_in = outcome == "opted_in"
    owners = _owners(connection, phone)
    if opt_in:
        lift_suppression(connection, "sms", phone, "opt_out")
    else:
        suppress(connection, [("sms", phone, "opt_out")], now)
    for owner in owners:
        record_consent(connection, owner, "sms", granted=opt_in, source="sms_keyword", at=now)
    kind = "resubscribed" if opt_in else "unsubscribed"
    events = [
        {
            "event_id": f"sms.opt_{'in' if opt_in else 'out'}:{inbound_id}:{owner}",
            "name": f"message.{kind}",
            "customer_id": owner,
            "at": now,
            "received_at": now,
            "properties": {"channel": "sms", "source": "sms_keyword"},
        }
        for owner in owners
    ]
    if events:
        append_events(connection, events)
    return outcome


def _owners(connection: Connection, phone: str) -> list[str]:
    """The customers with this number: on their profile or as an identity."""
    return sorted(
        {
            str(c)
            for (c,) in connection.execute(
                select(_CUSTOMERS.c.id).where(
                    and_(_CUSTOMERS.c.phone == phone, _CUSTOMERS.c.merged_into.is_(None))
                )
            )
        }
        | {
            str(c)
            for (c,) in connection.execute(
                select(_IDENTITIES.c.customer_id).where(
                    and_(_IDENTITIES.c.kind == "phone", _IDENTITIES.c.value == phone)
                )
            )
        }
    )
