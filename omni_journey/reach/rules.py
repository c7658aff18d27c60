"""The one table of reach rules: where each channel's address lives, and the ordered
tests a channel must pass, each written as Python and as SQL side by side.

Why one table: the channel -> address rule, the consent test and the suppression test
used to be written four times (the runner's facts, the segment compiler, the
dispatcher's recipients...), and the copies had drifted (an empty push token, a
customer with no row). Here every rule is one :class:`Rule` holding both of its forms;
:mod:`omni_journey.reach.verdicts` only folds the table, so the Python verdict (one
customer's loaded facts) and the SQL verdict (the segment compiler, bulk loading) can
only differ if one rule's two halves do, and the property test in
``tests/integration/reach`` checks exactly that on both databases.

The rules, in order (the first that fails names the reason):

1. ``unreachable``: no address on the channel (null and ``""`` are no address);
2. ``no_consent``: consent on the channel is not granted (revoked or never given);
3. ``suppressed``: every address the customer has on the channel is suppressed.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from sqlalchemy import ColumnElement, and_, exists, select, true

from omni_journey.spec.conditions import CHANNELS
from omni_journey.store.core import CONSENTS, CUSTOMERS, IDENTITIES, SUPPRESSIONS

__all__ = [
    "ADDRESS_OF",
    "NO_CONSENT",
    "RULES",
    "SUPPRESSED",
    "UNREACHABLE",
    "AddressSource",
    "Profile",
    "Rule",
    "Suppressed",
    "addresses",
    "consenting",
    "has_consent",
]

UNREACHABLE: Final = "unreachable"
NO_CONSENT: Final = "no_consent"
SUPPRESSED: Final = "suppressed"

Suppressed = Container[tuple[str, str]]  # (channel, address) pairs


class Profile(Protocol):
    """What the Python rules read of one customer (a survivor's, when merged)."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def push_tokens(self) -> Sequence[str]: ...  # newest first
    @property
    def consent(self) -> Mapping[str, bool]: ...


@dataclass(frozen=True, slots=True)
class AddressSource:
    """A channel's addresses: one ``customers`` column, or every ``identities`` row of
    one kind that the customer owns."""

    column: str | None = None
    identity_kind: str | None = None


ADDRESS_OF: Final[Mapping[str, AddressSource]] = {
    "email": AddressSource(column="email"),
    "sms": AddressSource(column="phone"),
    "whatsapp": AddressSource(column="phone"),
    "push": AddressSource(identity_kind="push_token"),
}
if set(ADDRESS_OF) != set(CHANNELS):  # a new channel must say where its address lives
    raise RuntimeError(f"reach: address sources {sorted(ADDRESS_OF)} != channels {CHANNELS}")


def addresses(profile: Profile, channel: str) -> tuple[str, ...]:
    """The customer's usable addresses on ``channel``, in preference order."""
    source = ADDRESS_OF.get(channel)
    if source is None:
        return ()
    if source.column is not None:
        value = getattr(profile, source.column)
        return (value,) if value else ()
    return tuple(token for token in profile.push_tokens if token)


def has_consent(consent: Mapping[str, bool], channel: str) -> bool:
    """Consent is a granted row: revoked and missing both mean no."""
    return bool(consent.get(channel, False))


def consenting(channel: str) -> ColumnElement[bool]:
    """``customers.id`` has granted consent on ``channel`` (two-valued)."""
    granted = select(CONSENTS.c.customer_id).where(
        CONSENTS.c.channel == channel, CONSENTS.c.granted == true()
    )
    return CUSTOMERS.c.id.in_(granted)


# --- the rules, each as Python and as SQL over the outer ``customers`` row -------------


def _has_address(profile: Profile, channel: str, suppressed: Suppressed) -> bool:
    del suppressed
    return bool(addresses(profile, channel))


def _has_address_sql(channel: str) -> ColumnElement[bool]:
    source = ADDRESS_OF[channel]
    if source.column is not None:
        column = CUSTOMERS.c[source.column]
        return and_(column.is_not(None), column != "")
    owned = IDENTITIES.alias("reach_owned")
    return exists().where(
        owned.c.customer_id == CUSTOMERS.c.id,
        owned.c.kind == source.identity_kind,
        owned.c.value != "",
    )


def _consents(profile: Profile, channel: str, suppressed: Suppressed) -> bool:
    del suppressed
    return has_consent(profile.consent, channel)


def _open_address(profile: Profile, channel: str, suppressed: Suppressed) -> bool:
    return any((channel, a) not in suppressed for a in addresses(profile, channel))


def _open_address_sql(channel: str) -> ColumnElement[bool]:
    source = ADDRESS_OF[channel]
    blocked = SUPPRESSIONS.alias("reach_blocked")
    if source.column is not None:
        column = CUSTOMERS.c[source.column]
        hit = exists().where(blocked.c.channel == channel, blocked.c.address == column)
        return and_(column.is_not(None), column != "", ~hit)
    owned = IDENTITIES.alias("reach_open")
    hit = exists().where(blocked.c.channel == channel, blocked.c.address == owned.c.value)
    return exists().where(
        owned.c.customer_id == CUSTOMERS.c.id,
        owned.c.kind == source.identity_kind,
        owned.c.value != "",
        ~hit,
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """One test a channel must pass; ``reason`` is what the engine logs when it fails.

    ``holds`` is the Python form (a loaded profile, the suppressed addresses among its
    own), ``sql`` the SQL form: a two-valued predicate over the outer ``customers`` row.
    """

    reason: str
    holds: Callable[[Profile, str, Suppressed], bool]
    sql: Callable[[str], ColumnElement[bool]]


RULES: Final[tuple[Rule, ...]] = (
    Rule(UNREACHABLE, _has_address, _has_address_sql),
    Rule(NO_CONSENT, _consents, consenting),
    Rule(SUPPRESSED, _open_address, _open_address_sql),
)
