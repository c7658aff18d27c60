"""The demo: a simulated shop runs every journey for a month on the embedded default.

The shop's behaviour and provider feedback go in through ``ingest_*``, as a collector
would put them; the journeys are moved by ``passes`` (``flows/demo.py``: the production
Prefect flows, run with the simulated time as ``now``), and the dispatcher sends through
the file outbox. The shop (:class:`omni_journey.lab.shop.Shop`) answers each
message that was sent with deliveries, opens, clicks, orders and unsubscribes, as real
providers and customers would.

A seed gives one demo: the same seed and code give the same messages, journey log and
summary on every run and machine, whatever ``PYTHONHASHSEED``. The shop draws from
seeded streams, every pass is timed by the simulated ``now`` only (never the wall
clock: see :class:`Passes`), and what the shop reads back from the store is ordered.
``tests/integration/test_determinism.py`` holds it to that.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, and_, func, select

from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.lab.shop import START, SentMessage, Shop
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import EVENTS, JOURNEY_LOG, MESSAGES

__all__ = [
    "DemoConfig",
    "DemoSummary",
    "Passes",
    "Tick",
    "demo_environment",
    "demo_settings",
    "prepare_demo",
    "run_demo",
]

_BATCH = 5000


@dataclass(frozen=True)
class DemoConfig:
    customers: int = 1000
    days: int = 30
    seed: int = 7
    history_days: int = 180
    tick: timedelta = timedelta(hours=1)
    signup_share: float = 0.05  # customers who create their account during the demo


@dataclass
class DemoSummary:
    """What the demo did, in counts (no personal data)."""

    customers: int = 0
    history_events: int = 0
    events: int = 0
    passes: int = 0
    journeys: dict[str, Counter[str]] = field(default_factory=dict)
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    suppressed: int = 0
    feedback: Counter[str] = field(default_factory=Counter)
    outbox: Path | None = None
    store_url: str = ""


@dataclass(frozen=True)
class Tick:
    """One step of simulated time, for progress bars."""

    index: int
    total: int
    now: datetime
    sent: int


def demo_settings(settings: Settings) -> Settings:
    """The demo's own corner of ``OMNI_HOME``: ``<home>/demo`` (SQLite, file outbox)."""
    home = settings.home / "demo"
    return settings.model_copy(
        update={
            "home": home,
            "database_url": f"sqlite:///{(home / 'omni.db').as_posix()}",
            "email_provider": "file",
            "sms_provider": "file",
            "push_provider": "file",
            "whatsapp_provider": "file",
            "webhook_provider": "file",
        }
    )


_PROVIDERS = ("email", "sms", "push", "whatsapp", "webhook")


def demo_environment(settings: Settings) -> dict[str, str]:
    """The ``OMNI_*`` variables that make :func:`get_settings` (what the flows read)
    return ``settings``' demo corner: home, store and file providers."""
    env = {"OMNI_HOME": str(settings.home), "OMNI_DATABASE_URL": settings.resolved_database_url}
    for channel in _PROVIDERS:
        env[f"OMNI_{channel.upper()}_PROVIDER"] = str(getattr(settings, f"{channel}_provider"))
    return env


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


def _ingest(
    engine: Engine, rows: Sequence[dict[str, Any]], now: datetime, settings: Settings
) -> int:
    accepted = 0
    for batch in _batches(rows):
        accepted += ingest_events(engine, batch, now=now, settings=settings).accepted
    return accepted


def _signups(shop: Shop, config: DemoConfig) -> list[dict[str, Any]]:
    """``account.created`` for a share of customers at times spread over the demo."""
    rng = np.random.default_rng(config.seed + 1)
    chosen = rng.random(len(shop.customer_ids)) < config.signup_share
    seconds = rng.uniform(0, config.days * 86400, len(shop.customer_ids))
    return [
        {
            "id": f"demo-signup-{cid}",
            "name": "account.created",
            "customer_id": cid,
            "at": (shop.start + timedelta(seconds=float(seconds[i]))).isoformat(),
            "properties": {"source": "demo"},
        }
        for i, cid in enumerate(shop.customer_ids)
        if chosen[i]
    ]


def prepare_demo(
    settings: Settings, config: DemoConfig
) -> tuple[Engine, Shop, DemoSummary, list[dict[str, Any]]]:
    """A fresh demo store with the shop's customers and their history before ``START``."""
    shutil.rmtree(settings.home, ignore_errors=True)
    engine = open_store(settings.resolved_database_url)
    shop = Shop(config.seed, config.customers, start=START)
    profiles, history = shop.generate(days=config.history_days)
    summary = DemoSummary(customers=len(profiles), outbox=settings.outbox_dir)
    summary.store_url = settings.resolved_database_url
    for batch in _batches(profiles):
        result = ingest_profiles(engine, batch, now=shop.start, settings=settings)
        if result.rejected:
            raise RuntimeError(f"demo profiles rejected: {result.rejected[:3]}")
    summary.history_events = _ingest(engine, history, shop.start, settings)
    return engine, shop, summary, _signups(shop, config)


def _sent_since(engine: Engine, since: datetime) -> list[SentMessage]:
    """What was sent after ``since``, in the order it was sent: the shop answers the
    sends one after the other from one random stream, so the order must be fixed for
    a seed to give the same answers (SQL promises no order without ORDER BY)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                MESSAGES.c.id,
                MESSAGES.c.customer_id,
                MESSAGES.c.channel,
                MESSAGES.c.message_key,
                MESSAGES.c.sent_at,
            )
            .where(
                and_(
                    MESSAGES.c.status == "sent",
                    MESSAGES.c.channel != "webhook",
                    MESSAGES.c.sent_at > since,
                )
            )
            .order_by(MESSAGES.c.sent_at, MESSAGES.c.id)
        ).all()
    return [
        SentMessage(row.id, row.customer_id, row.channel, row.message_key, row.sent_at)
        for row in rows
    ]


class Passes(Protocol):
    """What moves the shop's customers through the journeys, once per simulated tick.

    The demo command passes the Prefect flows (``flows/demo.py``): each pass is a flow
    run of the production flow, with the simulated time as ``now``;
    :class:`omni_journey.lab.direct.DirectPasses` makes the same calls without Prefect.
    A pass must stamp what it does with ``now`` and nothing else: a timestamp that moved
    on with the wall clock (a ``sent_at`` a second later on a slower run) changes when
    the shop answers, and the demo is no longer reproducible."""

    def daily(self, now: datetime) -> None:
        """Segments, purchase cycles and the catalogue fan-out (once a simulated day)."""

    def advance(self, now: datetime) -> Mapping[str, Mapping[str, int]]:
        """One pass over every journey; counts per journey."""
        ...

    def dispatch(self, now: datetime) -> Mapping[str, Any]:
        """Send what is due; ``failed`` and ``suppressed`` counts at least."""
        ...


def run_demo(
    settings: Settings,
    config: DemoConfig,
    *,
    passes: Callable[[Engine], Passes],
    on_tick: Callable[[Tick], None] | None = None,
) -> DemoSummary:
    """Run the demo to the end and return what it did. ``passes(engine)`` makes what
    advances the journeys: the Prefect flows (``flows/demo.py``)."""
    engine, shop, summary, signups = prepare_demo(settings, config)
    try:
        mover = passes(engine)
        end = shop.start + timedelta(days=config.days)
        ticks = int((end - shop.start) / config.tick)
        previous = shop.start - config.tick
        pending_signups = sorted(signups, key=lambda e: str(e["at"]))
        daily_on: date | None = None
        for index in range(1, ticks + 1):
            now = shop.start + index * config.tick
            organic = shop.advance(now)
            due = [e for e in pending_signups if datetime.fromisoformat(str(e["at"])) <= now]
            pending_signups = pending_signups[len(due) :]
            summary.events += _ingest(engine, organic + due, now, settings)
            if daily_on is None or (now.date() > daily_on and now.hour >= 6):
                mover.daily(now)  # the first pass, then the first of a day from 06:00
                daily_on = now.date()
            counts = mover.advance(now)
            summary.passes += 1
            for key, journey_counts in counts.items():
                summary.journeys.setdefault(key, Counter()).update(journey_counts)
            dispatched = mover.dispatch(now)
            summary.failed += int(dispatched.get("failed", 0))
            summary.suppressed += int(dispatched.get("suppressed", 0))
            sent = _sent_since(engine, previous)
            previous = max([previous, *(s.at for s in sent)])
            summary.sent_by_channel.update(s.channel for s in sent)
            answers = shop.respond(sent)
            summary.feedback.update(str(e["name"]) for e in answers)
            summary.events += _ingest(engine, answers, now, settings)
            withdrawals = shop.consent_updates()
            if withdrawals:
                ingest_profiles(engine, withdrawals, now=now, settings=settings)
            if on_tick is not None:
                on_tick(Tick(index, ticks, now, len(sent)))
        return summary
    finally:
        engine.dispose()


def conversions(engine: Engine) -> Counter[str]:
    """Conversions per journey, from the journey log."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(JOURNEY_LOG.c.journey_key, func.count().label("n"))
            .where(JOURNEY_LOG.c.kind == "converted")
            .group_by(JOURNEY_LOG.c.journey_key)
        ).all()
    return Counter({str(row.journey_key): int(row.n) for row in rows})


def event_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EVENTS)).scalar_one())
