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
  customers created from a real id over ones created from an identity. A push token a
  profile claims *moves* to it instead (a device changes hands; merging everyone who
  ever used a shared tablet would be wrong).

Nothing here logs or raises with an email address, phone number or token in it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import email_validator
import orjson
import phonenumbers
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from omni_journey.errors import IngestError
from omni_journey.store.tables import metadata

__all__ = [
    "CONSENT_CHANNELS",
    "EVENT_IDENTITY_KINDS",
    "KINDS",
    "ConsentState",
    "CustomerState",
    "DriverSql",
    "EventResolution",
    "IdentityGraph",
    "IdentityKey",
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
]

IdentityKey = tuple[str, str]

#: Every identity kind the store knows.
KINDS: Final = ("customer_id", "external_id", "email", "phone", "push_token", "anonymous_id")
#: Identities an event may carry, in the order an event without ``customer_id`` tries them.
EVENT_IDENTITY_KINDS: Final = ("external_id", "email", "phone", "push_token", "anonymous_id")
#: Identities through which a profile merges customers (push tokens move instead).
LINKING_KINDS: Final = ("customer_id", "external_id", "email", "phone", "anonymous_id")
CONSENT_CHANNELS: Final = ("email", "sms", "push", "whatsapp")

CUSTOMER_ID_MAX: Final = 128
IDENTITY_MAX: Final = 512
_CHUNK: Final = 1000
_DERIVED = re.compile(r"auto-[0-9a-f]{24}")

_customers: Table = metadata.tables["customers"]
_identities: Table = metadata.tables["identities"]
_consents: Table = metadata.tables["consents"]
_events: Table = metadata.tables["events"]
_enrollments: Table = metadata.tables["enrollments"]
_messages: Table = metadata.tables["messages"]


# --- normalisation (pure) ---------------------------------------------------------------


def normalize_text(value: object, *, field: str, max_length: int = IDENTITY_MAX) -> str:
    """An opaque id or token: a string (or integer), stripped, 1..max_length characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise IngestError("invalid-field", f"{field} must be a string")
    text = value.strip()
    if not text:
        raise IngestError("missing-field", f"{field} is empty")
    if len(text) > max_length:
        raise IngestError("invalid-field", f"{field} is longer than {max_length} characters")
    if not text.isascii() and not _is_storable(text):
        raise IngestError("invalid-field", f"{field} is not valid Unicode text")
    if "\x00" in text:
        raise IngestError("invalid-field", f"{field} contains a NUL character")
    return text


def _is_storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_email(value: object, *, field: str = "email") -> str:
    """A syntactically valid address, domain lowercased (IDNA to Unicode), no DNS lookup."""
    if not isinstance(value, str):
        raise IngestError("invalid-email", f"{field} must be a string")
    try:
        checked = email_validator.validate_email(value.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise IngestError("invalid-email", f"{field} is not a valid email address") from None
    local, _, domain = checked.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalize_phone(value: object, default_region: str, *, field: str = "phone") -> str:
    """E.164 (``+4915112345678``); numbers without ``+`` are read in ``default_region``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > 64:
        raise IngestError("invalid-phone", f"{field} must be a string of at most 64 characters")
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise IngestError("invalid-phone", f"{field} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise IngestError("invalid-phone", f"{field} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_identity(kind: str, value: object, *, default_region: str, field: str = "") -> str:
    """Normalise one identity value of ``kind`` (see :data:`KINDS`)."""
    label = field or kind
    if kind == "email":
        return normalize_email(value, field=label)
    if kind == "phone":
        return normalize_phone(value, default_region, field=label)
    if kind == "customer_id":
        return normalize_text(value, field=label, max_length=CUSTOMER_ID_MAX)
    if kind in KINDS:
        return normalize_text(value, field=label)
    raise IngestError("invalid-field", f"unknown identity kind {kind!r}")


def derive_customer_id(key: IdentityKey) -> str:
    """The id of a customer created from an identity alone: stable, so re-import is a no-op."""
    digest = hashlib.sha256(f"{key[0]}\x1f{key[1]}".encode()).hexdigest()
    return f"auto-{digest[:24]}"


def is_derived_customer_id(customer_id: str) -> bool:
    return _DERIVED.fullmatch(customer_id) is not None


# --- raw driver SQL for the bulk paths ----------------------------------------------------


class DriverSql:
    """Placeholders and values for DBAPI ``executemany`` that bind exactly what the
    store's column types would (``UTCDateTime``: naive UTC ISO text on SQLite,
    ``timestamptz`` on PostgreSQL; JSON as text, cast to ``jsonb`` on PostgreSQL)."""

    def __init__(self, connection: Connection) -> None:
        self.sqlite = connection.dialect.name == "sqlite"
        self.p = "?" if self.sqlite else "%s"
        self.json_p = "?" if self.sqlite else "CAST(%s AS jsonb)"

    def params(self, count: int) -> str:
        return ", ".join([self.p] * count)

    def timestamp(self, value: datetime) -> object:
        if value.tzinfo is None:
            raise ValueError("naive datetime: omni-journey stores aware UTC timestamps only")
        utc = value.astimezone(UTC)
        if self.sqlite:
            return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
        return utc

    def insert_ignore(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[object]],
        conflict: str,
    ) -> int:
        """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` of many rows; the number
        inserted. ``columns`` are (name, PostgreSQL type: text, timestamptz or jsonb).

        SQLite: one ``executemany``. PostgreSQL: one statement over ``unnest`` of one
        array per column (a round trip per batch, not per row), in the rows' order.
        """
        if not rows:
            return 0
        names = ", ".join(name for name, _ in columns)
        if self.sqlite:
            statement = (
                f"INSERT INTO {table} ({names}) VALUES ({self.params(len(columns))}) "
                f"ON CONFLICT ({conflict}) DO NOTHING"
            )
            return int(connection.exec_driver_sql(statement, list(rows)).rowcount)
        arrays = [f"CAST(%s AS {'text' if kind == 'jsonb' else kind}[])" for _, kind in columns]
        aliases = [f"c{i}" for i in range(len(columns))]
        picks = [
            f"CAST({alias} AS jsonb)" if kind == "jsonb" else alias
            for alias, (_, kind) in zip(aliases, columns, strict=True)
        ]
        statement = (
            f"INSERT INTO {table} ({names}) SELECT {', '.join(picks)} "
            f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS t({', '.join(aliases)}, n) "
            f"ORDER BY n ON CONFLICT ({conflict}) DO NOTHING"
        )
        values = [list(column) for column in zip(*rows, strict=True)]
        return int(connection.exec_driver_sql(statement, tuple(values)).rowcount)


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lookup_owners(connection: Connection, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
    """The customer owning each key that has one: one query per kind and chunk of values."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, set()).add(value)
    owners: dict[IdentityKey, str] = {}
    for kind, values in by_kind.items():
        for value, owner in lookup_values(connection, kind, values).items():
            owners[(kind, value)] = owner
    return owners


def lookup_values(connection: Connection, kind: str, values: Iterable[str]) -> dict[str, str]:
    """``lookup_owners`` for one kind: {value: customer id} for the values owned."""
    sql = DriverSql(connection)
    found: dict[str, str] = {}
    cursor = connection.connection.cursor()  # plain DBAPI rows: this runs per batch
    for chunk in _chunks(sorted(values)):
        if sql.sqlite:
            query = "SELECT value, customer_id FROM identities WHERE kind = ? AND value IN "
            cursor.execute(f"{query}({sql.params(len(chunk))})", (kind, *chunk))
        else:  # a join, so the plan stays an index probe per value whatever the stats
            cursor.execute(
                "SELECT i.value, i.customer_id FROM unnest(%b::text[]) AS v(value) "
                "JOIN identities i ON i.kind = %s AND i.value = v.value",
                (list(chunk), kind),
            )
        found.update(cursor.fetchall())
    cursor.close()
    return found


# --- events: attach, never steal ----------------------------------------------------------


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
        return _resolve_named(connection, [customer_id for customer_id, _ in items], now)
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


def _resolve_named(
    connection: Connection, customer_ids: Sequence[str | None], now: datetime
) -> EventResolution:
    """The common case, events that name their customer and carry no identities."""
    named = {c for c in customer_ids if c}
    owners = lookup_values(connection, "customer_id", named)
    new: dict[str, list[str | None]] = {c: [None, None] for c in named if c not in owners}
    owners.update((c, c) for c in new)
    keys = [("customer_id", c) for c in new]
    key_owners = {key: key[1] for key in keys}
    _write_new_identities(connection, new, keys, key_owners, {}, now)
    return EventResolution([owners[c] for c in customer_ids if c], len(new), len(keys), 0)


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


# --- profiles: link and merge -------------------------------------------------------------


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
        return current is None or current.granted != granted

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
    ) -> tuple[CustomerState, bool]:
        """The customer a profile speaks for, and whether the graph changed.

        ``keys`` are linking identities (merged on), ``movable`` ones (push tokens)
        move to the survivor. Without ``customer_id``, ``keys`` must not be empty.
        """
        owners = list(dict.fromkeys(o for o in map(self.owner, keys) if o is not None))
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


def move_history(connection: Connection, roots: Mapping[str, str], *, now: datetime) -> None:
    """Everything that pointed at a merged customer now points at its survivor:
    identities, events, messages, enrollments, and customers merged into it earlier.

    Where the loser and the survivor are both active in one journey, the enrollment
    entered first stays; the other ends with ``end_reason='merged'``.
    """
    if not roots:
        return
    pairs = [{"b_to": survivor, "b_from": loser} for loser, survivor in sorted(roots.items())]
    _end_duplicate_enrollments(connection, roots, now)
    for table in (_identities, _events, _messages, _enrollments):
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
