"""Profiles speak for the person: link and merge customers, move a push token, and move
a merged customer's history to the survivor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from omni_journey.identity.conflicts import check_no_conflict
from omni_journey.identity.consent_log import ConsentChangeRow, append_consent_changes
from omni_journey.identity.keys import IdentityKey, derive_customer_id, is_derived_customer_id
from omni_journey.identity.lookup import (
    _chunks,
    _consents,
    _customers,
    _enrollments,
    _events,
    _identities,
    _messages,
    lookup_owners,
)
from omni_journey.store.core import CONSENT_CHANGES


@dataclass
class ConsentState:
    granted: bool
    updated_at: datetime
    source: str | None


def _same(a: object, b: object) -> bool:
    """JSON equality that tells 1, 1.0 and true apart."""
    return a is b or orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )


@dataclass
class CustomerState:
    """One customer's row and consents, changed in memory and saved with the batch."""

    id: str
    created_at: datetime
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    merged_into: str | None = None
    consents: dict[str, ConsentState] = field(default_factory=dict)
    # changes of the answer since loaded, for the consent history: (channel, before, after)
    consent_changes: list[ConsentChangeRow] = field(default_factory=list)
    new: bool = False
    dirty: bool = False
    consents_dirty: bool = False

    def set_column(self, name: str, value: str | None) -> bool:
        """Set email, phone, timezone or locale; ``None`` leaves it alone."""
        if value is None or getattr(self, name) == value:
            return False
        setattr(self, name, value)
        self.dirty = True
        return True

    def update_attributes(self, values: Mapping[str, Any]) -> bool:
        changed = False
        for key, value in values.items():
            if key not in self.attributes or not _same(self.attributes[key], value):
                self.attributes[key] = value
                changed = True
        self.dirty = self.dirty or changed
        return changed

    def state_consent(self, channel: str, granted: bool, at: datetime, source: str) -> bool:
        """Record a consent statement; the latest wins. True when the answer changed."""
        current = self.consents.get(channel)
        if current is not None and at < current.updated_at:
            return False
        if current is None or current.updated_at != at or current.granted != granted:
            self.consents[channel] = ConsentState(granted, at, source)
            self.consents_dirty = True
        changed = current is None or current.granted != granted
        if changed:
            previous = None if current is None else current.granted
            self.consent_changes.append(
                ConsentChangeRow(self.id, channel, previous, granted, source, at)
            )
        return changed

    def absorb(self, loser: CustomerState, survivor_id: str) -> None:
        """Fold ``loser`` into this customer: our attributes and columns win where set;
        consent per channel goes to the latest statement."""
        self.attributes = {**loser.attributes, **self.attributes}
        for name in ("email", "phone", "timezone", "locale"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(loser, name))
        for channel, theirs in loser.consents.items():
            ours = self.consents.get(channel)
            if ours is None or theirs.updated_at > ours.updated_at:
                self.consents[channel] = theirs
        loser.merged_into = survivor_id
        loser.email = loser.phone = None
        loser.consents = {}
        self.dirty = self.consents_dirty = loser.dirty = loser.consents_dirty = True


class IdentityGraph:
    """A batch's working copy of the identity graph: loaded in a few set-based queries,
    changed in memory record by record, saved in a few statements."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.merges = 0
        self.moves = 0
        self._owner: dict[IdentityKey, str] = {}
        self._customers: dict[str, CustomerState] = {}
        self._parent: dict[str, str] = {}
        self._new_keys: set[IdentityKey] = set()
        self._moved_keys: set[IdentityKey] = set()

    @classmethod
    def load(
        cls,
        connection: Connection,
        *,
        keys: Iterable[IdentityKey],
        customer_ids: Iterable[str],
        now: datetime,
    ) -> IdentityGraph:
        graph = cls(now)
        graph._owner = lookup_owners(connection, keys)
        named = set(customer_ids) | set(graph._owner.values())
        graph._owner.update(lookup_owners(connection, [("customer_id", c) for c in named]))
        # identities point at survivors, so one more hop reaches every customer involved
        wanted = sorted(named | set(graph._owner.values()))
        for chunk in _chunks(wanted):
            for row in connection.execute(select(_customers).where(_customers.c.id.in_(chunk))):
                graph._customers[row.id] = CustomerState(
                    id=row.id,
                    created_at=row.created_at,
                    email=row.email,
                    phone=row.phone,
                    timezone=row.timezone,
                    locale=row.locale,
                    attributes=dict(row.attributes or {}),
                    merged_into=row.merged_into,
                )
            for row in connection.execute(
                select(_consents).where(_consents.c.customer_id.in_(chunk))
            ):
                state = graph._customers.get(row.customer_id)
                if state is not None:  # consent of a customer with no row: left alone
                    state.consents[row.channel] = ConsentState(
                        row.granted, row.updated_at, row.source
                    )
        return graph

    def _root(self, customer_id: str) -> str:
        root = customer_id
        while root in self._parent:
            root = self._parent[root]
        return root

    def owner(self, key: IdentityKey) -> str | None:
        owner = self._owner.get(key)
        return None if owner is None else self._root(owner)

    def customer(self, customer_id: str) -> CustomerState:
        state = self._customers.get(customer_id)
        if state is None:
            state = CustomerState(id=customer_id, created_at=self.now, new=True, dirty=True)
            self._customers[customer_id] = state
        return state

    def link(
        self,
        customer_id: str | None,
        keys: Sequence[IdentityKey],
        movable: Sequence[IdentityKey] = (),
        *,
        merge: bool = False,
    ) -> tuple[CustomerState, bool]:
        """The customer a profile speaks for, and whether the graph changed.

        ``keys`` are linking identities (merged on), ``movable`` ones (push tokens)
        move to the survivor. Without ``customer_id``, ``keys`` must not be empty.
        Customers known only by an identity (derived ids: an anonymous visitor) merge
        into the survivor; two customers known by their own ids merge only when
        ``merge`` asks for it, else :class:`IngestError` (``identity-conflict``) is
        raised before anything changes.
        """
        owners = list(dict.fromkeys(o for o in map(self.owner, keys) if o is not None))
        if not merge:
            named = None
            if customer_id is not None:
                named = self.owner(("customer_id", customer_id)) or customer_id
            check_no_conflict(named, [(key[0], self.owner(key)) for key in keys])
        if customer_id is not None:
            survivor_id = self.owner(("customer_id", customer_id)) or customer_id
        elif owners:
            survivor_id = min(
                owners,
                key=lambda c: (is_derived_customer_id(c), self.customer(c).created_at, c),
            )
        else:
            survivor_id = derive_customer_id(keys[0])
        changed = survivor_id not in self._customers
        survivor = self.customer(survivor_id)
        for other in owners:
            if other != survivor_id:
                self._merge(other, survivor)
                changed = True
        for key in (*keys, ("customer_id", survivor_id)):
            if self.owner(key) is None:
                self._owner[key] = survivor_id
                self._new_keys.add(key)
                changed = True
        for key in movable:
            owner = self.owner(key)
            if owner == survivor_id:
                continue
            self._owner[key] = survivor_id
            if owner is None:
                self._new_keys.add(key)
            else:
                self.moves += 1
                if key not in self._new_keys:
                    self._moved_keys.add(key)
            changed = True
        return survivor, changed

    def _merge(self, loser_id: str, survivor: CustomerState) -> None:
        survivor.absorb(self.customer(loser_id), survivor.id)
        self._parent[loser_id] = survivor.id
        self.merges += 1

    def save(self, connection: Connection) -> None:
        """Write every change: merges (history follows), customers, identities, consents."""
        now = self.now
        roots = {loser: self._root(loser) for loser in self._parent}
        move_history(connection, roots, now=now)
        for state in self._customers.values():
            if state.merged_into is not None:
                state.merged_into = self._root(state.merged_into)
        self._save_customers(connection)
        if self._new_keys:
            connection.execute(
                insert(_identities),
                [
                    {"kind": k, "value": v, "customer_id": self.owner((k, v)), "created_at": now}
                    for k, v in sorted(self._new_keys)
                ],
            )
        if self._moved_keys:
            connection.execute(
                update(_identities)
                .where(
                    _identities.c.kind == bindparam("b_kind"),
                    _identities.c.value == bindparam("b_value"),
                )
                .values(customer_id=bindparam("b_owner")),
                [
                    {"b_kind": k, "b_value": v, "b_owner": self.owner((k, v))}
                    for k, v in sorted(self._moved_keys)
                ],
            )
        self._save_consents(connection)

    def _save_customers(self, connection: Connection) -> None:
        dirty = [s for s in self._customers.values() if s.dirty]
        columns = ("email", "phone", "timezone", "locale", "attributes", "merged_into")
        rows = [
            {name: getattr(s, name) for name in columns} | {"updated_at": self.now} for s in dirty
        ]
        fresh = [
            row | {"id": s.id, "created_at": s.created_at}
            for s, row in zip(dirty, rows, strict=True)
            if s.new
        ]
        if fresh:
            connection.execute(insert(_customers), fresh)
        known = [row | {"b_id": s.id} for s, row in zip(dirty, rows, strict=True) if not s.new]
        if known:
            statement = update(_customers).where(_customers.c.id == bindparam("b_id"))
            connection.execute(statement, known)

    def _save_consents(self, connection: Connection) -> None:
        states = [s for s in self._customers.values() if s.consents_dirty]
        if not states:
            return
        ids = sorted(s.id for s in states)
        for chunk in _chunks(ids):
            connection.execute(delete(_consents).where(_consents.c.customer_id.in_(chunk)))
        rows = [
            {
                "customer_id": s.id,
                "channel": channel,
                "granted": c.granted,
                "source": c.source,
                "updated_at": c.updated_at,
            }
            for s in states
            for channel, c in sorted(s.consents.items())
        ]
        if rows:
            connection.execute(insert(_consents), rows)
        append_consent_changes(connection, consent_changes(states))


def consent_changes(states: Iterable[CustomerState]) -> list[ConsentChangeRow]:
    """The consent changes of ``states`` to append, each under the customer it ends
    with (a change stated on a customer merged away later in the batch goes to the
    survivor's history; :func:`move_history` moves what was stored before)."""
    changes = []
    for state in states:
        owner = state.merged_into or state.id
        changes += [
            ConsentChangeRow(owner, c.channel, c.previous, c.granted, c.source, c.at)
            for c in state.consent_changes
        ]
        state.consent_changes = []
    return changes


def move_history(connection: Connection, roots: Mapping[str, str], *, now: datetime) -> None:
    """Everything that pointed at a merged customer now points at its survivor:
    identities, events, messages, enrollments, consent history, and customers merged
    into it earlier.

    Where the loser and the survivor are both active in one journey, the enrollment
    entered first stays; the other ends with ``end_reason='merged'``.
    """
    if not roots:
        return
    pairs = [{"b_to": survivor, "b_from": loser} for loser, survivor in sorted(roots.items())]
    _end_duplicate_enrollments(connection, roots, now)
    for table in (_identities, _events, _messages, _enrollments, CONSENT_CHANGES):
        connection.execute(
            update(table)
            .where(table.c.customer_id == bindparam("b_from"))
            .values(customer_id=bindparam("b_to")),
            pairs,
        )
    connection.execute(
        update(_customers)
        .where(_customers.c.merged_into == bindparam("b_from"))
        .values(merged_into=bindparam("b_to")),
        pairs,
    )


def _end_duplicate_enrollments(
    connection: Connection, roots: Mapping[str, str], now: datetime
) -> None:
    involved = sorted(set(roots) | set(roots.values()))
    active: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
    table = _enrollments
    for chunk in _chunks(involved):
        query = select(table.c.id, table.c.journey_key, table.c.customer_id, table.c.entered_at)
        query = query.where(table.c.state == "active", table.c.customer_id.in_(chunk))
        for row in connection.execute(query):
            group = (roots.get(row.customer_id, row.customer_id), row.journey_key)
            active.setdefault(group, []).append((row.entered_at, row.id))
    ended = [
        {"b_id": enrollment_id}
        for entries in active.values()
        for _, enrollment_id in sorted(entries)[1:]
    ]
    if ended:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(state="exited", end_reason="merged", ended_at=now, updated_at=now),
            ended,
        )
