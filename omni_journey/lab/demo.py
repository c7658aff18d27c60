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
    "PassTime",
    "Passes",
    "ShopSide",
    "Tick",
    "clear_home",
    "day_of",
    "demo_environment",
    "demo_settings",
    "plan_days",
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


def clear_home(home: Path, keep: Sequence[str] = ()) -> None:
    """Remove what a previous demo left in ``home``, except the entries named in ``keep``
    (the demo's Prefect server keeps its database there while the shop is generated)."""
    if not home.is_dir():
        return
    for entry in home.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def prepare_demo(
    settings: Settings, config: DemoConfig, *, keep: Sequence[str] = ()
) -> tuple[Engine, Shop, DemoSummary, list[dict[str, Any]]]:
    """A fresh demo store with the shop's customers and their history before ``START``
    (everything else in the demo's home is removed first, but for ``keep``)."""
    clear_home(settings.home, keep)
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


@dataclass(frozen=True)
class PassTime:
    """One pass of the demo: its simulated time, and whether the daily passes
    (segments, purchase cycles, the weekly model) run before it."""

    index: int
    total: int
    now: datetime
    daily: bool


def day_of(now: datetime) -> date:
    """The simulated day a pass belongs to: a pass at midnight closes the day before."""
    return (now - timedelta(microseconds=1)).date()


def plan_days(config: DemoConfig, start: datetime = START) -> list[list[PassTime]]:
    """The demo's passes, one list per simulated day (a pass at midnight closes its
    day): every ``config.tick`` from ``start`` to ``start + config.days``. The daily
    passes run before the first pass, then before the first pass of a day from 06:00."""
    end = start + timedelta(days=config.days)
    total = int((end - start) / config.tick)
    days: list[list[PassTime]] = []
    daily_on: date | None = None
    for index in range(1, total + 1):
        now = start + index * config.tick
        daily = daily_on is None or (now.date() > daily_on and now.hour >= 6)
        if daily:
            daily_on = now.date()
        if not days or day_of(days[-1][-1].now) != day_of(now):
            days.append([])
        days[-1].append(PassTime(index, total, now, daily))
    return days


class Passes(Protocol):
    """What moves the shop's customers through the journeys, a simulated day at a time.

    The demo command passes the Prefect flows (``flows/demo.py``: one flow run a
    simulated day, a task a pass); :class:`omni_journey.lab.direct.DirectPasses` makes
    the same calls without Prefect. For each :class:`PassTime` of the day, in order, it
    calls ``shop.before(at)``, then (``at.daily``) the daily passes, ``advance`` and
    ``dispatch`` as of ``at.now``, then ``shop.after(at, counts, dispatched)``.
    A pass must stamp what it does with ``now`` and nothing else: a timestamp that moved
    on with the wall clock (a ``sent_at`` a second later on a slower run) changes when
    the shop answers, and the demo is no longer reproducible."""

    def run_day(self, passes: Sequence[PassTime], shop: ShopSide) -> None:
        """Run one simulated day's passes (see the class doc)."""


@dataclass
class ShopSide:
    """The shop's part of each pass: what customers did since the last one goes in
    before it; the answers to what it sent come back after it."""

    engine: Engine
    shop: Shop
    settings: Settings
    summary: DemoSummary
    signups: list[dict[str, Any]]
    on_tick: Callable[[Tick], None] | None = None
    previous: datetime = START

    def before(self, at: PassTime) -> None:
        """Store what the customers did up to ``at.now`` (and the sign-ups due)."""
        organic = self.shop.advance(at.now)
        due = [e for e in self.signups if datetime.fromisoformat(str(e["at"])) <= at.now]
        self.signups = self.signups[len(due) :]
        self.summary.events += _ingest(self.engine, organic + due, at.now, self.settings)

    def after(
        self,
        at: PassTime,
        counts: Mapping[str, Mapping[str, int]],
        dispatched: Mapping[str, Any],
    ) -> None:
        """Count the pass, and store the shop's answers to what it sent."""
        summary = self.summary
        summary.passes += 1
        for key, journey_counts in counts.items():
            summary.journeys.setdefault(key, Counter()).update(journey_counts)
        summary.failed += int(dispatched.get("failed", 0))
        summary.suppressed += int(dispatched.get("suppressed", 0))
        sent = _sent_since(self.engine, self.previous)
        self.previous = max([self.previous, *(s.at for s in sent)])
        summary.sent_by_channel.update(s.channel for s in sent)
        answers = self.shop.respond(sent)
        summary.feedback.update(str(e["name"]) for e in answers)
        summary.events += _ingest(self.engine, answers, at.now, self.settings)
        withdrawals = self.shop.consent_updates()
        if withdrawals:
            ingest_profiles(self.engine, withdrawals, now=at.now, settings=self.settings)
        if self.on_tick is not None:
            self.on_tick(Tick(at.index, at.total, at.now, len(sent)))


def run_demo(
    settings: Settings,
    config: DemoConfig,
    *,
    passes: Callable[[Engine], Passes],
    on_tick: Callable[[Tick], None] | None = None,
    keep: Sequence[str] = (),
) -> DemoSummary:
    """Run the demo to the end and return what it did. ``passes(engine)`` makes what
    advances the journeys: the Prefect flows (``flows/demo.py``). ``keep``: entries of
    the demo's home that a previous demo's clean-up leaves alone."""
    engine, shop, summary, signups = prepare_demo(settings, config, keep=keep)
    try:
        mover = passes(engine)
        side = ShopSide(
            engine,
            shop,
            settings,
            summary,
            sorted(signups, key=lambda e: str(e["at"])),
            on_tick,
            previous=shop.start - config.tick,
        )
        for day in plan_days(config, shop.start):
            mover.run_day(day, side)
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
