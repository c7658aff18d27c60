"""The Python path's facts for a batch of customers, in a few set-based queries.

For callers that need the facts themselves, not only the verdict: the dispatcher must
know *which* push token to use, and tells a suppressed address from a missing one.
(A caller that only needs the verdicts selects :func:`verdicts.eligibility_columns`
instead, one query.) Merges are not followed here: pass survivors' rows
(:func:`omni_journey.identity.survivors.follow_merges`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, select

from omni_journey.reach.rules import ADDRESS_OF, UNREACHABLE, addresses
from omni_journey.reach.verdicts import eligibility, eligible_channels
from omni_journey.store.core import CONSENTS, CUSTOMERS, IDENTITIES, SUPPRESSIONS

__all__ = ["ReachBatch", "ReachFacts", "load_reach", "load_reach_by_id"]

_CHUNK: Final = 500
_TOKEN_KIND: Final = ADDRESS_OF["push"].identity_kind  # the one channel addressed by identities


@dataclass(frozen=True, slots=True)
class ReachFacts:
    """What the reach rules read of one customer (a :class:`rules.Profile`)."""

    customer_id: str
    email: str | None = None
    phone: str | None = None
    push_tokens: tuple[str, ...] = ()  # newest first
    consent: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class ReachBatch:
    """Facts by customer id, and the suppressed (channel, address) pairs among theirs."""

    facts: Mapping[str, ReachFacts]
    suppressed: frozenset[tuple[str, str]]

    def eligibility(self, customer_id: str, channel: str) -> str | None:
        """The verdict for one customer; one not in the batch is ``unreachable``."""
        facts = self.facts.get(customer_id)
        return UNREACHABLE if facts is None else eligibility(facts, channel, self.suppressed)

    def eligible(self, customer_id: str) -> dict[str, str | None]:
        """Every channel's verdict (the shape of ``CustomerFacts.eligible``)."""
        facts = self.facts.get(customer_id) or ReachFacts(customer_id)
        return eligible_channels(facts, self.suppressed)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def load_reach(connection: Connection, profiles: Iterable[Any]) -> ReachBatch:
    """Reach facts for ``customers`` rows already read (anything with ``id``, ``email``
    and ``phone``): their consents, push tokens and suppressions."""
    rows = {str(p.id): p for p in profiles}
    ids = sorted(rows)
    consent: dict[str, dict[str, bool]] = defaultdict(dict)
    tokens: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(ids):
        for owner, channel, granted in connection.execute(
            select(CONSENTS.c.customer_id, CONSENTS.c.channel, CONSENTS.c.granted).where(
                CONSENTS.c.customer_id.in_(chunk)
            )
        ):
            consent[str(owner)][str(channel)] = bool(granted)
        for owner, value in connection.execute(
            select(IDENTITIES.c.customer_id, IDENTITIES.c.value)
            .where(IDENTITIES.c.kind == _TOKEN_KIND, IDENTITIES.c.customer_id.in_(chunk))
            .order_by(IDENTITIES.c.created_at.desc(), IDENTITIES.c.value)
        ):
            tokens[str(owner)].append(str(value))
    facts = {
        cid: ReachFacts(
            customer_id=cid,
            email=rows[cid].email,
            phone=rows[cid].phone,
            push_tokens=tuple(tokens.get(cid, ())),
            consent=dict(consent.get(cid, {})),
        )
        for cid in ids
    }
    return ReachBatch(facts, frozenset(_suppressed(connection, facts.values())))


def load_reach_by_id(connection: Connection, customer_ids: Iterable[str]) -> ReachBatch:
    """:func:`load_reach` for ids, rows included (merges not followed; unknown ids are
    left out, and :meth:`ReachBatch.eligibility` calls them ``unreachable``)."""
    rows: list[Any] = []
    for chunk in _chunks(sorted(set(customer_ids))):
        rows += connection.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.email, CUSTOMERS.c.phone).where(
                CUSTOMERS.c.id.in_(chunk)
            )
        ).all()
    return load_reach(connection, rows)


def _suppressed(connection: Connection, facts: Iterable[ReachFacts]) -> set[tuple[str, str]]:
    by_channel: dict[str, set[str]] = defaultdict(set)
    for one in facts:
        for channel in ADDRESS_OF:
            by_channel[channel].update(addresses(one, channel))
    found: set[tuple[str, str]] = set()
    for channel, values in sorted(by_channel.items()):
        for chunk in _chunks(sorted(values)):
            for (hit,) in connection.execute(
                select(SUPPRESSIONS.c.address).where(
                    SUPPRESSIONS.c.channel == channel, SUPPRESSIONS.c.address.in_(chunk)
                )
            ):
                found.add((channel, str(hit)))
    return found
