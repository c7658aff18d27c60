"""The demo shop: customers, their behaviour, and how they answer messages.

Seeded and clock-free: every method takes the time it simulates. A shop

* has customers with profiles (docs/data-formats.md: time zone, locale, consent per channel,
  email, phone, push token, attributes ``tier`` and ``age_band``) and hidden traits
  (:mod:`omni_journey.lab.shop_truth`): per-channel affinity, responsiveness,
  Apple Mail Privacy Protection, dormant app installs, the hour they are active;
* browses, adds to cart and orders on its own (:meth:`Shop.advance`), some customers
  on real replenishment cycles (coffee every ~4 weeks, skincare every ~6);
* answers sends (:meth:`Shop.respond`) with ``message.delivered`` / ``bounced`` /
  ``opened`` / ``clicked`` / ``unsubscribed`` and the orders the messages cause, as
  events (docs/data-formats.md) to feed through ``ingest_events`` like real provider feedback.
  Unsubscribes are also consent statements (:meth:`Shop.consent_updates`) for
  ``ingest_profiles``, as a preference centre would send them;
* knows its truth (:meth:`Shop.true_uplift`) so a benchmark can score an oracle.

:meth:`Shop.generate` returns the profiles and the history before ``start``: organic
events plus the sends of a legacy email-first tool and their answers (events only:
that tool logged no decisions). :func:`record_sends` stands in for the runner and the
dispatcher in benchmarks: it writes decisions as sent outbox rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from omni_journey.lab.shop_clock import DAY, HOUR, ZONES, LocalClock
from omni_journey.lab.shop_events import (
    CATEGORIES,
    EventWriter,
    Order,
    SentMessage,
    record_sends,
    sent_events,
)
from omni_journey.lab.shop_truth import (
    AGE_BANDS,
    CHANNELS,
    MESSAGES,
    TIERS,
    BoolArray,
    FloatArray,
    IntArray,
    ResponseTruth,
    draw_population,
)

__all__ = ["START", "SentMessage", "Shop", "record_sends", "sent_events"]

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
LEGACY_MIX = (0.4, 0.2, 0.2, 0.2)  # the legacy tool's channel shares (email first)
_EMAIL, _SMS, _PUSH, _WHATSAPP = range(4)


class Shop:
    """A seeded shop of ``customers`` customers whose simulated present starts at ``start``."""

    def __init__(
        self,
        seed: int,
        customers: int,
        *,
        start: datetime = START,
        truth: ResponseTruth | None = None,
    ) -> None:
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
        self._rng_people, self._rng_organic, self._rng_answer, self._rng_legacy = streams
        self.seed = seed
        self.start = start
        self.n = customers
        rng = self._rng_people
        self.customer_ids = [f"c-{i:06d}" for i in range(customers)]
        self._index = {cid: i for i, cid in enumerate(self.customer_ids)}
        self.zone = rng.choice(len(ZONES), size=customers, p=[z[2] for z in ZONES])
        self.people = draw_population(rng, customers, truth or ResponseTruth())
        young = self.people.age <= 1
        has = np.zeros((customers, len(CHANNELS)), dtype=bool)
        has[:, _EMAIL] = rng.random(customers) < 0.97
        has[:, _SMS] = rng.random(customers) < 0.75
        has[:, _PUSH] = rng.random(customers) < np.where(young, 0.6, 0.3)
        has[:, _WHATSAPP] = has[:, _SMS]
        consent_rate = np.array([0.9, 0.45, 0.75, 0.35])
        self.address = has
        self.consent = has & (rng.random((customers, len(CHANNELS))) < consent_rate)
        self.dead = np.zeros_like(has)  # hard-bounced addresses
        self.cycle_days = np.where(
            rng.random(customers) < 0.2, rng.choice([28.0, 45.0], size=customers), 0.0
        )
        self.next_due = start.timestamp() - rng.uniform(0, 1, customers) * self.cycle_days * DAY
        self.favourite = rng.integers(0, 5, size=customers)
        self.last_view = np.full(customers, -np.inf)
        self.last_cart = np.full(customers, -np.inf)
        self.last_order = np.full(customers, -np.inf)
        self._sends: list[list[tuple[float, int]]] = [[] for _ in range(customers)]
        self._consent_updates: list[dict[str, Any]] = []
        self._clock = start.timestamp()
        self.clock = LocalClock(self.zone)
        self.events = EventWriter(prefix=f"s{seed}")
        self.caused_orders = 0  # realised incremental conversions (truth, for benchmarks)
        self.truth_of: dict[int | str, tuple[float, float]] = {}  # message: p_click, uplift

    # --- what the store may know ----------------------------------------------------------

    def profiles(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """The profiles (docs/data-formats.md) of every customer (``at``: when the
        statement was made)."""
        rows: list[dict[str, Any]] = []
        stamp = (at or self.start - timedelta(days=400)).isoformat()
        for i, cid in enumerate(self.customer_ids):
            zone, locale, _ = ZONES[int(self.zone[i])]
            row: dict[str, Any] = {
                "customer_id": cid,
                "timezone": zone,
                "locale": locale,
                "consent": {c: bool(self.consent[i, k]) for k, c in enumerate(CHANNELS)},
                "attributes": {
                    "first_name": f"Customer{i}",
                    "tier": TIERS[int(self.people.tier[i])],
                    "age_band": AGE_BANDS[int(self.people.age[i])],
                },
                "at": stamp,
            }
            if self.address[i, _EMAIL]:
                row["email"] = f"{cid}@example.com"
            if self.address[i, _SMS]:
                row["phone"] = f"+49151{self.seed % 100:02d}{i:06d}"
            if self.address[i, _PUSH]:
                row["push_tokens"] = [f"fcm-{self.seed}-{cid}"]
            rows.append(row)
        return rows

    def eligible(self, customer_ids: Sequence[str]) -> BoolArray:
        """(n, channels): an address and consent, as the store sees them."""
        index = self._rows(customer_ids)
        return np.asarray(self.address[index] & self.consent[index])

    def consent_updates(self) -> list[dict[str, Any]]:
        """Consent withdrawals since the last call, as profiles for ``ingest_profiles``."""
        updates, self._consent_updates = self._consent_updates, []
        return updates

    # --- the history and the passing of time ------------------------------------------------

    def generate(
        self, days: int = 180, *, legacy_weekly: float = 0.9
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Profiles, and the events of the ``days`` before ``start``: organic behaviour plus
        a weekly legacy campaign (email first; each customer with probability
        ``legacy_weekly``) and the answers to it. The legacy tool's export carries sends,
        opens, clicks, bounces and unsubscribes, not deliveries."""
        begin = self.start.timestamp() - days * DAY
        self._clock = begin
        self.next_due = self.next_due - days * DAY
        rng = self._rng_legacy
        events: list[dict[str, Any]] = []
        for week, t in enumerate(np.arange(begin, self.start.timestamp(), 7 * DAY).tolist()):
            events += self.advance(
                datetime.fromtimestamp(min(t + 7 * DAY, self.start.timestamp()), UTC)
            )
            at = t + 10 * HOUR + rng.uniform(0, 4 * HOUR)
            reach = self.address & self.consent
            chosen = np.flatnonzero((rng.random(self.n) < legacy_weekly) & reach.any(axis=1))
            weights = np.where(reach[chosen], LEGACY_MIX, 0.0).cumsum(axis=1)
            draw = rng.random(len(chosen)) * weights[:, -1]
            channels = (weights <= draw[:, None]).sum(axis=1)
            sent = [
                SentMessage(
                    f"legacy-{week}-{i}",
                    self.customer_ids[i],
                    CHANNELS[c],
                    self._message_for(i, at),
                    datetime.fromtimestamp(at, UTC),
                )
                for i, c in zip(chosen.tolist(), channels.tolist(), strict=True)
            ]
            events += sent_events(sent)
            events += self._answer(sent, deliveries=False)
        self._consent_updates = []  # the profiles below state the consent as it is now
        events.sort(key=lambda event: str(event["at"]))
        return self.profiles(), events

    def advance(self, until: datetime) -> list[dict[str, Any]]:
        """Organic browsing, carts and orders from the shop's clock up to ``until``."""
        t0, t1 = self._clock, until.timestamp()
        if t1 <= t0:
            return self.events.drain()
        rng = self._rng_organic
        span = (t1 - t0) / DAY
        people = self.people
        views = rng.poisson((0.02 + 0.15 * people.activity) * span)
        owner = np.repeat(np.arange(self.n), views)
        at = self.clock.human_times(owner, self.people.peak_hour, t0, t1, rng)
        for i, t in zip(owner.tolist(), at.tolist(), strict=True):
            sku = Order.sku(int(self.favourite[i]), int(rng.integers(0, 20)))
            category, price = CATEGORIES[int(self.favourite[i])]
            name = f"{category.capitalize()} {sku}"
            product = {"sku": sku, "product_name": name, "category": category, "price": price}
            self.events.add("product.viewed", self.customer_ids[i], t, product)
            self.last_view[i] = max(self.last_view[i], t)
            if rng.random() < 0.2:
                self.events.add("product.added", self.customer_ids[i], t + 300, product)
                self.last_cart[i] = max(self.last_cart[i], t + 300)
                if rng.random() < 0.15:
                    self._order(i, t + rng.uniform(HOUR, 36 * HOUR), rng)
        buys = rng.poisson(people.activity / 30.0 * span)
        owner = np.repeat(np.arange(self.n), buys)
        for i, t in zip(
            owner.tolist(),
            self.clock.human_times(owner, self.people.peak_hour, t0, t1, rng).tolist(),
            strict=True,
        ):
            self._order(i, t, rng)
        for i in np.flatnonzero(self.cycle_days > 0).tolist():
            while self.next_due[i] < t1:
                if self.next_due[i] >= t0:
                    self._order(i, float(self.next_due[i]), rng, category=int(self.favourite[i]))
                self.next_due[i] += (self.cycle_days[i] + rng.normal(0, 2.5)) * DAY
        self._clock = t1
        return self.events.drain()

    # --- answering sends ----------------------------------------------------------------------

    def respond(
        self, sent: Sequence[SentMessage], now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The events that answer ``sent`` (each at the time it happens, up to two days
        after the send) and the orders the messages cause. ``now`` is unused by the
        answers themselves (each send carries its own time) and kept for symmetry."""
        del now
        return self._answer(sent, deliveries=True)

    def _answer(self, sent: Sequence[SentMessage], *, deliveries: bool) -> list[dict[str, Any]]:
        if not sent:
            return self.events.drain()
        rng, truth = self._rng_answer, self.people.truth
        index = self._rows([s.customer_id for s in sent])
        channel = np.array([CHANNELS.index(s.channel) for s in sent])
        message = np.array([_message_index(s.message) for s in sent])
        at = np.array([s.at.timestamp() for s in sent])
        recent = self._recent(index, channel, at)
        hour = self.clock.local_hour(index, at)
        p_open = self.people.open_probability(index, channel, message, hour, recent)
        p_buy = self.people.buy_given_click(index, channel, message)
        draws = rng.random((len(sent), 6))
        bounce = self.dead[index, channel] | (draws[:, 0] < np.asarray(truth.bounce)[channel])
        p_unsub = np.asarray(truth.unsubscribe_base)[channel] + truth.unsubscribe_fatigue * recent
        p_click = p_open * np.asarray(truth.click_given_open)[channel]
        for k, s in enumerate(sent):
            i, c, t = int(index[k]), int(channel[k]), float(at[k])
            self.truth_of[s.message_id] = (float(p_click[k]), float(p_click[k] * p_buy[k]))
            self._sends[i].append((t, c))
            props = {"message_id": s.message_id, "channel": s.channel, "message": s.message}
            if bounce[k]:
                self._bounce(i, c, t + 60, props)
                continue
            if deliveries:
                self.events.add("message.delivered", s.customer_id, t + 120, props)
            if c == _EMAIL and self.people.mpp[i] and draws[k, 1] < truth.machine_open:
                self.events.add("message.opened", s.customer_id, t + 300, props)
            if draws[k, 2] >= p_open[k]:
                continue
            seen = t + rng.lognormal(np.log(900 if c == _PUSH else 3600), 0.8)
            if c != _SMS:
                self.events.add("message.opened", s.customer_id, seen, props)
            if draws[k, 3] < truth.click_given_open[c]:
                clicked = seen + rng.uniform(30, 1200)
                self.events.add("message.clicked", s.customer_id, clicked, props)
                if draws[k, 4] < p_buy[k]:
                    self.caused_orders += 1
                    self._order(
                        i, clicked + min(rng.lognormal(np.log(2 * HOUR), 1.0), 47 * HOUR), rng
                    )
            if draws[k, 5] < p_unsub[k] and c != _PUSH:
                self._unsubscribe(i, c, seen + 60, props)
        return self.events.drain()

    # --- the truth ---------------------------------------------------------------------------

    def true_uplift(
        self,
        customer_ids: Sequence[str],
        messages: Sequence[str],
        now: datetime,
        *,
        average_affinity: int = 0,
    ) -> FloatArray:
        """(n, channels): the incremental conversion probability of a send at ``now``.

        With ``average_affinity=k`` the customers' personal channel affinity and
        responsiveness are unknown: the uplift is averaged over ``k`` draws of them
        from their distribution (what an oracle could know without reading them)."""
        index = self._rows(customer_ids)
        message = np.array([_message_index(m) for m in messages])
        at = np.full(len(index), now.timestamp())
        hour = self.clock.local_hour(index, at)
        recent = [self._recent(index, np.full(len(index), c), at) for c in range(len(CHANNELS))]
        people = self.people
        saved = people.affinity, people.responsiveness
        draws = max(average_affinity, 1)
        rng = np.random.default_rng(self.seed + 7919)
        total = np.zeros((len(index), len(CHANNELS)))
        try:
            for _ in range(draws):
                if average_affinity:
                    truth = people.truth
                    people.affinity = rng.normal(0.0, truth.affinity_sd, size=saved[0].shape)
                    people.responsiveness = rng.normal(
                        0.0, truth.responsiveness_sd, size=saved[1].shape
                    )
                for c in range(len(CHANNELS)):
                    channel = np.full(len(index), c)
                    total[:, c] += people.uplift(index, channel, message, hour, recent[c])
        finally:
            people.affinity, people.responsiveness = saved
        return total / draws

    def next_message(self, customer_ids: Sequence[str], now: datetime) -> list[str]:
        """The message a journey would send each customer now (cart, browse, win-back...)."""
        t = now.timestamp()
        return [self._message_for(int(i), t) for i in self._rows(customer_ids)]

    # --- helpers -------------------------------------------------------------------------------

    def _rows(self, customer_ids: Sequence[str]) -> IntArray:
        return np.array([self._index[c] for c in customer_ids], dtype=np.int64)

    def _message_for(self, i: int, t: float) -> str:
        if self.last_cart[i] > t - 3 * DAY and self.last_order[i] < self.last_cart[i]:
            return "cart_reminder"
        if self.cycle_days[i] and abs(self.next_due[i] - t) < 5 * DAY:
            return "replenish_reminder"
        if self.last_view[i] > t - 7 * DAY:
            return "viewed_product"
        if self.last_order[i] < t - 90 * DAY:
            return "we_miss_you"
        return "cross_sell_generic"

    def _recent(self, index: IntArray, channel: IntArray, at: FloatArray) -> FloatArray:
        """Sends on the same channel in the 7 days before each send (fatigue)."""
        return np.array(
            [
                sum(1 for t, c in self._sends[i] if c == ch and at_ - 7 * DAY <= t < at_)
                for i, ch, at_ in zip(index.tolist(), channel.tolist(), at.tolist(), strict=True)
            ],
            dtype=np.float64,
        )

    def _order(
        self, i: int, t: float, rng: np.random.Generator, category: int | None = None
    ) -> None:
        order = Order.draw(rng, int(self.favourite[i]) if category is None else category)
        self.events.add("order.completed", self.customer_ids[i], t, order.properties())
        self.last_order[i] = max(self.last_order[i], t)

    def _bounce(self, i: int, c: int, t: float, props: Mapping[str, Any]) -> None:
        """A hard bounce: the address is dead. The real feedback path suppresses it;
        here the shop withdraws the channel's consent so the store stops using it."""
        self.dead[i, c] = True
        self.events.add("message.bounced", self.customer_ids[i], t, {**props, "hard": True})
        self._withdraw(i, c, t)

    def _unsubscribe(self, i: int, c: int, t: float, props: Mapping[str, Any]) -> None:
        self.events.add("message.unsubscribed", self.customer_ids[i], t, dict(props))
        self._withdraw(i, c, t)

    def _withdraw(self, i: int, c: int, t: float) -> None:
        self.consent[i, c] = False
        when = datetime.fromtimestamp(t, UTC).isoformat()
        self._consent_updates.append(
            {"customer_id": self.customer_ids[i], "consent": {CHANNELS[c]: False}, "at": when}
        )


def _message_index(message: str) -> int:
    return MESSAGES.index(message) if message in MESSAGES else MESSAGES.index("cross_sell_generic")
