"""Inbound SMS keywords: STOP and friends opt the number out.

:func:`handle_inbound_sms` is what the collector, a flow or :mod:`.feedback` (two-way
SMS through SNS) calls with one inbound message. An opt-out withdraws SMS consent of
every customer with that number, suppresses the number, and records a
``message.unsubscribed`` event, in one transaction; repeating it changes nothing.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Engine, Table, and_, select

from omni_journey.store.ops import insert_ignore
from omni_journey.store.tables import Consent, Customer, Event, Identity, Suppression

__all__ = ["OPT_OUT_KEYWORDS", "handle_inbound_sms", "is_opt_out"]

# AWS End User Messaging SMS's default opt-out keywords, plus common variants.
OPT_OUT_KEYWORDS = frozenset({
    "ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "STOPALL",
    "TD", "UNSUBSCRIBE", "UNSUB", "REVOKE", "STOPP", "BAJA", "PARAR",
})  # fmt: skip

_CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
_IDENTITIES: Table = Identity.__table__  # type: ignore[attr-defined]
_CONSENTS: Table = Consent.__table__  # type: ignore[attr-defined]
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def is_opt_out(text: str) -> bool:
    """The whole message is an opt-out keyword (any case, surrounding punctuation ignored)."""
    return _TRIM.sub("", text).upper() in OPT_OUT_KEYWORDS


def handle_inbound_sms(
    engine: Engine, *, phone: str, text: str, now: datetime, inbound_id: str
) -> bool:
    """Apply one inbound SMS; True when it was an opt-out.

    ``phone`` is the sender in E.164; ``inbound_id`` (the provider's inbound message
    id) makes the event idempotent.
    """
    if not is_opt_out(text):
        return False
    with engine.begin() as connection:
        owners = sorted(
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
        connection.execute(
            insert_ignore(connection, Suppression),
            [{"channel": "sms", "address": phone, "reason": "opt_out", "created_at": now}],
        )
        for owner in owners:
            updated = connection.execute(
                _CONSENTS.update()
                .where(and_(_CONSENTS.c.customer_id == owner, _CONSENTS.c.channel == "sms"))
                .values(granted=False, source="sms_keyword", updated_at=now)
            )
            if updated.rowcount == 0:
                connection.execute(
                    insert_ignore(connection, Consent),
                    [{"customer_id": owner, "channel": "sms", "granted": False,
                      "source": "sms_keyword", "updated_at": now}],
                )  # fmt: skip
        events = [
            {
                "event_id": f"sms.opt_out:{inbound_id}:{owner}",
                "name": "message.unsubscribed",
                "customer_id": owner,
                "at": now,
                "received_at": now,
                "properties": {"channel": "sms", "source": "sms_keyword"},
            }
            for owner in owners
        ]
        if events:
            connection.execute(insert_ignore(connection, Event, "event_id"), events)
    return True
