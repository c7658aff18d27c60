"""Events resolve to customers: attach identities nobody owns, never steal one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from omni_journey.identity.keys import IdentityKey, derive_customer_id
from omni_journey.identity.lookup import lookup_owners, lookup_values
from omni_journey.store.driver import DriverSql


class KnownCustomers:
    """The owners of customer ids that earlier transactions of one connection resolved
    (a file import's chunks), so each chunk looks up only the ids it has not seen.

    What is known holds only while no other connection writes: a profile may merge a
    customer away. On SQLite, :meth:`start` reads ``PRAGMA data_version``, which
    changes when another connection commits, and forgets everything when it has; call
    it inside each write transaction (which keeps other writers out until the commit).
    PostgreSQL has no such counter, so there nothing is kept. Bounded: past ``limit``
    customer ids it forgets them all and starts again.

    A transaction that fails must end the run: what it resolved is known already.
    """

    def __init__(self, limit: int = 500_000) -> None:
        self.owners: dict[str, str] | None = None
        self._version: object = None
        self._limit = limit

    def start(self, connection: Connection) -> None:
        if connection.dialect.name != "sqlite":
            self.owners = None
            return
        version = connection.exec_driver_sql("PRAGMA data_version").scalar()
        if self.owners is None or version != self._version or len(self.owners) > self._limit:
            self.owners = {}
            self._version = version


@dataclass(frozen=True)
class EventResolution:
    """Where each event of a batch lands, and what resolution did to the graph."""

    customer_ids: list[str]
    customers_created: int
    identities_attached: int
    conflicts: int


def resolve_event_customers(
    connection: Connection,
    items: Sequence[tuple[str | None, tuple[IdentityKey, ...]]],
    *,
    now: datetime,
) -> EventResolution:
    """Resolve each ``(customer_id or None, identity keys)`` to a customer id.

    A named customer that was merged away resolves to its survivor; an unknown one is
    created. Without a name, the first owned key (in :data:`EVENT_IDENTITY_KINDS` order)
    decides; if none is owned, a customer is created with :func:`derive_customer_id`.
    Unowned keys are attached; keys owned by someone else are counted, not moved.
    Customers' empty email / phone columns are filled from newly attached identities.
    """
    if all(customer_id is not None and not keys for customer_id, keys in items):
        named = [customer_id for customer_id, _ in items if customer_id is not None]
        return resolve_named_customers(connection, named, now=now)
    # Identical items resolve identically: resolve each once, in order of appearance.
    distinct = Counter(items)
    wanted: set[IdentityKey] = set()
    for customer_id, keys in distinct:
        if customer_id is not None:
            wanted.add(("customer_id", customer_id))
        else:
            wanted.add(("customer_id", derive_customer_id(keys[0])))
        wanted.update(keys)
    owners = lookup_owners(connection, wanted)

    new_customers: dict[str, list[str | None]] = {}  # id -> [email, phone]
    new_keys: list[IdentityKey] = []
    contact_fill: dict[tuple[str, str], str] = {}  # (customer, column) -> value
    conflicts = 0
    resolved: dict[tuple[str | None, tuple[IdentityKey, ...]], str] = {}
    for item, repeats in distinct.items():
        customer_id, keys = item
        name = customer_id
        if name is None:
            target = next((owners[k] for k in keys if k in owners), None)
            name = derive_customer_id(keys[0])
        else:
            target = None
        if target is None:
            target = owners.get(("customer_id", name))
        if target is None:
            target = owners[("customer_id", name)] = name
            new_keys.append(("customer_id", name))
            new_customers[name] = [None, None]
        for key in keys:
            owner = owners.get(key)
            if owner is None:
                owners[key] = target
                new_keys.append(key)
                if key[0] in ("email", "phone"):
                    _fill_contact(new_customers, contact_fill, target, key)
            elif owner != target:
                conflicts += repeats
        resolved[item] = target

    _write_new_identities(connection, new_customers, new_keys, owners, contact_fill, now)
    targets = [resolved[item] for item in items]
    return EventResolution(targets, len(new_customers), len(new_keys), conflicts)


def resolve_named_customers(
    connection: Connection,
    customer_ids: Sequence[str],
    *,
    now: datetime,
    known: KnownCustomers | None = None,
) -> EventResolution:
    """:func:`resolve_event_customers` for the common case, events that name their
    customer and carry no identities. ``known`` (see :class:`KnownCustomers`) spares
    lookups of customer ids resolved before, and learns this batch's."""
    cache = None if known is None else known.owners
    named = set(customer_ids)
    if cache is not None:
        named.difference_update(cache)
    ordered = sorted(named)  # new customers are written in this order: not hash order
    found = lookup_values(connection, "customer_id", named)
    new: dict[str, list[str | None]] = {c: [None, None] for c in ordered if c not in found}
    owners = found if cache is None else cache
    if cache is not None:
        cache.update(found)
    owners.update((c, c) for c in new)
    keys = [("customer_id", c) for c in new]
    key_owners = {key: key[1] for key in keys}
    _write_new_identities(connection, new, keys, key_owners, {}, now)
    targets = list(map(owners.__getitem__, customer_ids))
    return EventResolution(targets, len(new), len(keys), 0)


def _fill_contact(
    new_customers: dict[str, list[str | None]],
    contact_fill: dict[tuple[str, str], str],
    target: str,
    key: IdentityKey,
) -> None:
    slot = 0 if key[0] == "email" else 1
    fresh = new_customers.get(target)
    if fresh is not None:
        if fresh[slot] is None:
            fresh[slot] = key[1]
    else:
        contact_fill.setdefault((target, key[0]), key[1])


def _write_new_identities(
    connection: Connection,
    new_customers: Mapping[str, Sequence[str | None]],
    new_keys: Sequence[IdentityKey],
    owners: Mapping[IdentityKey, str],
    contact_fill: Mapping[tuple[str, str], str],
    now: datetime,
) -> None:
    sql = DriverSql(connection)
    stamp = sql.timestamp(now)
    if new_customers:
        sql.insert_ignore(
            connection,
            "customers",
            [
                ("id", "text"),
                ("email", "text"),
                ("phone", "text"),
                ("attributes", "jsonb"),
                ("created_at", "timestamptz"),
                ("updated_at", "timestamptz"),
            ],
            sorted(
                (cid, email, phone, "{}", stamp, stamp)
                for cid, (email, phone) in new_customers.items()
            ),
            "id",
        )
    if new_keys:
        sql.insert_ignore(
            connection,
            "identities",
            [
                ("kind", "text"),
                ("value", "text"),
                ("customer_id", "text"),
                ("created_at", "timestamptz"),
            ],
            sorted((kind, value, owners[(kind, value)], stamp) for kind, value in new_keys),
            "kind, value",
        )
    for column in ("email", "phone"):
        rows = [(v, stamp, c) for (c, col), v in contact_fill.items() if col == column]
        if rows:
            connection.exec_driver_sql(
                f"UPDATE customers SET {column} = {sql.p}, updated_at = {sql.p} "
                f"WHERE id = {sql.p} AND {column} IS NULL",
                rows,
            )
