"""Erasure of one customer everywhere the product writes (the right to erasure: GDPR
article 17, CCPA's right to delete): ``omni-journey customers erase``.

Personal data goes: the profile rows (of the customer and of everyone merged into
them), every identity, consent and its history, segment memberships and purchase
cycles are deleted; events keep only :data:`KEEP_PROPERTIES` (the references reports
count by); outbox rows lose their render context and error text, and the ones not yet
handed to a provider are cancelled (``cancelled``, ``erased``); enrollments lose their
context and active ones end (``exited``, ``erased``); decisions lose their inputs;
suppressions of the customer's own addresses stay on the list under an opaque address;
outbox files, previews and the lines of rejects files about the customer are removed.

Anonymous aggregates stay: every row that reports count (events, outbox rows,
enrollments, decisions) moves to an opaque ``erased-<random>`` id, one per customer id,
so the report adds up exactly as before. One ``erasures`` row records it: the opaque
id, when, and how many rows and files of each kind were removed; no personal data.

Three steps, each safe to repeat, so a run that dies anywhere is finished by the next:

1. ``files``: outbox files, previews and rejects lines, found from the store (which
   still names the customer);
2. ``store``: everything in the database, in one transaction, with the ``erasures``
   row (``finished_at`` empty);
3. ``sweep``: outbox files of the opaque ids' messages again (a message a dispatcher
   had in hand during steps 1 and 2), then ``finished_at``. Every erasure call first
   sweeps unfinished erasures, so a run that died after step 2 is finished by the next
   call, whatever its key.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from omni_journey.cycles.daily import forget_cycles
from omni_journey.delivery.outbox import erase_customer_messages
from omni_journey.identity.erasure import forget_customers
from omni_journey.privacy.files import (
    delete_files,
    find_outbox_files,
    forget_previews,
    line_matcher,
    scrub_rejects,
)
from omni_journey.privacy.subject import Subject, load_subject, subject_of
from omni_journey.reach.suppressions import forget_addresses
from omni_journey.runner.writes import erase_customer_journeys
from omni_journey.segments.evaluate import forget_members
from omni_journey.settings import Settings
from omni_journey.store.core import CUSTOMERS, ERASURES, IDENTITIES, MESSAGES
from omni_journey.store.events import erase_customer_events

__all__ = ["KEEP_PROPERTIES", "ErasureResult", "erase_customer", "finish_erasures"]

#: Event properties an erased customer's events keep: references to the product's own
#: messages, journeys and channels, which delivery rates and funnels count by.
KEEP_PROPERTIES = frozenset({"channel", "message", "message_id", "journey", "step", "source"})

StepHook = Callable[[str], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureResult:
    """``erased``: a customer matched and is gone now (False: nobody matched: never
    known, or erased before); ``erasure_id``: the opaque id of the ``erasures`` row;
    ``counts``: what was removed; ``finished``: earlier unfinished erasures completed."""

    erased: bool
    erasure_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    finished: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"erased": self.erased, "erasure_id": self.erasure_id,
                "counts": dict(self.counts), "finished_earlier": self.finished}  # fmt: skip


def _messages_of(connection: Connection, ids: Iterable[str]) -> list[tuple[str, str]]:
    query = select(MESSAGES.c.channel, MESSAGES.c.idempotency_key).where(
        MESSAGES.c.customer_id.in_(list(ids))
    )
    return [(str(channel), str(key)) for channel, key in connection.execute(query)]


def _remove_files(
    settings: Settings, subject: Subject, messages: list[tuple[str, str]]
) -> dict[str, int]:
    phones = [value for kind, value in subject.values() if kind == "phone"]
    lines, files = scrub_rejects(settings.rejects_dir, line_matcher(subject.needles(), phones))
    return {
        "outbox_files": delete_files(find_outbox_files(settings.outbox_dir, messages)),
        "previews": forget_previews(settings.home / "previews", subject.ids),
        "rejects_lines": lines,
        "rejects_files": files,
    }


def _shared(connection: Connection, subject: Subject, addresses: list[tuple[str, str]]) -> set[str]:
    """The addresses of ``addresses`` another customer has too (their suppression
    protects that customer, and stays as it is)."""
    values = sorted({address for _, address in addresses})
    ids = list(subject.ids)
    owned = connection.execute(
        select(IDENTITIES.c.value).where(
            IDENTITIES.c.value.in_(values), IDENTITIES.c.customer_id.not_in(ids)
        )
    ).scalars()
    on_profiles = connection.execute(
        select(CUSTOMERS.c.email, CUSTOMERS.c.phone).where(
            or_(CUSTOMERS.c.email.in_(values), CUSTOMERS.c.phone.in_(values)),
            CUSTOMERS.c.id.not_in(ids),
        )
    )
    return set(owned) | {v for row in on_profiles for v in row if v in values}


def _erase_store(
    connection: Connection, subject: Subject, tombstones: dict[str, str], now: datetime
) -> dict[str, int]:
    subject = subject_of(connection, subject.ids)  # identities added since step 1 too
    ids = list(subject.ids)
    addresses = subject.addresses()
    shared = _shared(connection, subject, addresses)
    cancelled, messages = erase_customer_messages(connection, tombstones)
    enrollments, decisions = erase_customer_journeys(connection, tombstones, now)
    counts = {
        "messages": messages,
        "messages_cancelled": cancelled,
        "events": erase_customer_events(connection, tombstones, KEEP_PROPERTIES),
        "enrollments": enrollments,
        "decisions": decisions,
        "suppressions": forget_addresses(connection, [a for a in addresses if a[1] not in shared]),
        "segment_memberships": forget_members(connection, ids),
        "purchase_cycles": forget_cycles(connection, ids),
    }
    return counts | forget_customers(connection, ids)


def _secure_delete(connection: Connection, *, on: bool) -> None:
    """SQLite: overwrite what the erasure deletes or rewrites with zeros, in the file,
    instead of leaving it in free pages (PostgreSQL: see docs/operations.md, VACUUM)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA secure_delete = {'ON' if on else 'OFF'}")


def _forget_old_pages(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the file and empty it, so the pages that
    held the customer before the erasure are not left in the log."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside a transaction: the driver's autocommit
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA secure_delete = OFF")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # busy readers: a partial one
        cursor.close()
    except sqlite3.Error as error:  # the erasure is done; the log empties at a later one
        log.warning("checkpoint after an erasure failed: %s", type(error).__name__)
    finally:
        raw.close()


def _sweep(
    engine: Engine, settings: Settings, erasure_id: str, tombstones: list[str], now: datetime
) -> int:
    with engine.connect() as connection:
        messages = _messages_of(connection, tombstones)
    swept = delete_files(find_outbox_files(settings.outbox_dir, messages))
    with engine.begin() as connection:
        connection.execute(
            update(ERASURES).where(ERASURES.c.id == erasure_id, ERASURES.c.finished_at.is_(None))
            .values(finished_at=now)
        )  # fmt: skip
    return swept


def finish_erasures(engine: Engine, settings: Settings, *, now: datetime) -> int:
    """Finish erasures a crash left after their store step (step 3); how many."""
    with engine.connect() as connection:
        pending = connection.execute(
            select(ERASURES.c.id, ERASURES.c.tombstones).where(ERASURES.c.finished_at.is_(None))
        ).all()
    for erasure_id, tombstones in pending:
        _sweep(engine, settings, str(erasure_id), [str(t) for t in tombstones], now)
    return len(pending)


def erase_customer(
    engine: Engine,
    settings: Settings,
    key: str,
    *,
    now: datetime,
    after_step: StepHook | None = None,
) -> ErasureResult:
    """Erase the customer behind ``key`` (any key ``customers show`` takes), in the three
    steps of the module; ``after_step`` is called with each step's name once it is done
    (``files``, ``store``, ``sweep``). A key that matches nobody erases nothing and is
    not an error: the customer may have been erased before."""
    hook = after_step or (lambda _step: None)
    finished = finish_erasures(engine, settings, now=now)
    with engine.connect() as connection:
        subject = load_subject(connection, key, settings.default_region)
        if subject is None:
            return ErasureResult(False, finished=finished)
        messages = _messages_of(connection, subject.ids)
    counts = _remove_files(settings, subject, messages)
    hook("files")
    tombstones = {customer_id: f"erased-{uuid.uuid4().hex}" for customer_id in subject.ids}
    erasure_id = tombstones[subject.survivor]
    with engine.begin() as connection:
        _secure_delete(connection, on=True)
        counts |= _erase_store(connection, subject, tombstones, now)
        connection.execute(
            insert(ERASURES),
            {"id": erasure_id, "tombstones": sorted(tombstones.values()), "counts": counts,
             "erased_at": now, "finished_at": None},
        )  # fmt: skip
    _forget_old_pages(engine)
    hook("store")
    counts["outbox_files"] += _sweep(engine, settings, erasure_id, list(tombstones.values()), now)
    hook("sweep")
    return ErasureResult(True, erasure_id, counts, finished)
