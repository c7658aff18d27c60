"""Identity resolution: one customer behind every email, phone, device and id.

Normalisation is pure: emails through email-validator (domain lowercased, no DNS),
phones to E.164 through phonenumbers, push tokens and ids as opaque, length-limited
strings. Resolution works on whole batches against the ``identities`` table, which
maps ``(kind, value)`` to one customer; every customer also owns
``("customer_id", <id>)``, so an id that was merged away still finds its survivor.

Two rules, deliberately different:

* An **event** attaches identities nobody owns to its customer, but never takes one
  another customer owns (it counts the conflict and leaves the graph alone).
* A **profile** speaks for the person: when its linking identities (customer id,
  external id, email, phone, anonymous id) belong to several customers, they are
  merged. The customer named by ``customer_id`` survives, else the oldest, preferring
  customers created from a real id over ones created from an identity. Two customers
  each known by a real id merge only when the profile asks (``merge``; a Segment
  alias): otherwise the profile is refused as an ``identity-conflict``
  (:mod:`omni_journey.identity.conflicts`). A push token a
  profile claims *moves* to it instead (a device changes hands; merging everyone who
  ever used a shared tablet would be wrong).

Nothing here logs or raises with an email address, phone number or token in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omni_journey.identity.keys import (
    CONSENT_CHANNELS,
    CUSTOMER_ID_MAX,
    EVENT_IDENTITY_KINDS,
    IDENTITY_MAX,
    KINDS,
    LINKING_KINDS,
    IdentityKey,
    derive_customer_id,
    is_derived_customer_id,
    normalize_email,
    normalize_identity,
    normalize_phone,
    normalize_text,
)

if TYPE_CHECKING:
    from omni_journey.identity.events import (
        EventResolution,
        KnownCustomers,
        resolve_event_customers,
        resolve_named_customers,
    )
    from omni_journey.identity.lookup import lookup_owners, lookup_values
    from omni_journey.identity.profiles import (
        ConsentState,
        CustomerState,
        IdentityGraph,
        move_history,
    )

# The keys are pure and light; resolution needs the store (SQLAlchemy, the tables), so
# it loads on first use: the import reader process checks events without it.
_LAZY = {
    "EventResolution": "events",
    "KnownCustomers": "events",
    "resolve_event_customers": "events",
    "resolve_named_customers": "events",
    "lookup_owners": "lookup",
    "lookup_values": "lookup",
    "ConsentState": "profiles",
    "CustomerState": "profiles",
    "IdentityGraph": "profiles",
    "move_history": "profiles",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omni_journey.identity' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"omni_journey.identity.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CONSENT_CHANNELS",
    "CUSTOMER_ID_MAX",
    "EVENT_IDENTITY_KINDS",
    "IDENTITY_MAX",
    "KINDS",
    "LINKING_KINDS",
    "ConsentState",
    "CustomerState",
    "EventResolution",
    "IdentityGraph",
    "IdentityKey",
    "KnownCustomers",
    "derive_customer_id",
    "is_derived_customer_id",
    "lookup_owners",
    "lookup_values",
    "move_history",
    "normalize_email",
    "normalize_identity",
    "normalize_phone",
    "normalize_text",
    "resolve_event_customers",
    "resolve_named_customers",
]
