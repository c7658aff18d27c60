"""The simulator's hidden truth: how a customer answers a message on each channel.

Nothing here is observable by the product: the oracle of ``bench/channels.py`` reads
these probabilities, the learned policy only sees what they produce (events).

Per send, on channel ``c`` with message ``m`` at the customer's local hour ``h``::

    p_open  = sigmoid(base[c] + age[c][age] + message[c][m] + affinity[i, c]
                      + responsiveness[i] - fatigue * sends_on_c_last_7_days
                      - off_peak * (1 - cos(2 pi (h - peak_i) / 24)) / 2)
    p_click = p_open * click_given_open[c]            (0 for a dormant push token)
    uplift  = p_click * buy_given_click[m] * quality[c] * tier_buy[tier]

``uplift`` is the incremental conversion probability: the order the message causes.
Organic orders happen anyway (see :mod:`omni_journey.lab.shop`). Email opens
of customers behind Apple Mail Privacy Protection are recorded whether or not a human
opened ("machine opens"): engagement counted from opens overrates email for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AGE_BANDS",
    "CHANNELS",
    "MESSAGES",
    "TIERS",
    "Population",
    "ResponseTruth",
    "draw_population",
]

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "whatsapp")
MESSAGES: tuple[str, ...] = (
    "cart_reminder",
    "viewed_product",
    "we_miss_you",
    "cross_sell_generic",
    "replenish_reminder",
)
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-54", "55+")
TIERS: tuple[str, ...] = ("bronze", "silver", "gold")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class ResponseTruth:
    """Parameters of the hidden response model (defaults: the demo shop)."""

    open_base: tuple[float, ...] = (-1.4, -0.3, -2.0, -0.5)  # email, sms (read), push, whatsapp
    click_given_open: tuple[float, ...] = (0.18, 0.20, 0.60, 0.25)
    quality: tuple[float, ...] = (1.0, 1.15, 0.85, 1.05)  # how well a click converts
    age_effect: tuple[tuple[float, ...], ...] = (
        (-0.5, -0.1, 0.2, 0.5),  # email: older customers read it
        (-0.2, 0.0, 0.1, 0.3),  # sms
        (0.6, 0.3, -0.2, -0.7),  # push: the young use the app
        (0.4, 0.3, 0.0, -0.4),  # whatsapp
    )
    message_effect: tuple[tuple[float, ...], ...] = (
        (-0.2, 0.0, 0.3, 0.4, 0.0),  # email: good for win-back and cross-sell
        (0.5, 0.1, -0.2, -0.4, 0.3),  # sms: urgent things
        (0.4, 0.3, -0.4, -0.1, 0.1),  # push
        (0.3, 0.1, 0.0, -0.2, 0.2),  # whatsapp
    )
    buy_given_click: tuple[float, ...] = (0.30, 0.15, 0.08, 0.10, 0.22)
    tier_buy: tuple[float, ...] = (0.8, 1.0, 1.4)
    fatigue: float = 0.35
    off_peak: float = 0.8
    affinity_sd: float = 0.5
    responsiveness_sd: float = 0.4
    unsubscribe_base: tuple[float, ...] = (0.002, 0.004, 0.003, 0.003)
    unsubscribe_fatigue: float = 0.004
    bounce: tuple[float, ...] = (0.01, 0.005, 0.0, 0.005)
    mpp_share: float = 0.45
    dormant_token_share: float = 0.2
    machine_open: float = 0.95


@dataclass
class Population:
    """The hidden side of every customer, index-aligned with the shop's customers."""

    age: IntArray
    tier: IntArray
    affinity: FloatArray  # (n, channels)
    responsiveness: FloatArray
    mpp: BoolArray
    dormant_token: BoolArray
    peak_hour: FloatArray  # local hour of day the customer is most active
    activity: FloatArray  # organic orders per 30 days
    truth: ResponseTruth = field(default_factory=ResponseTruth)

    def open_probability(
        self,
        index: IntArray,
        channel: IntArray,
        message: IntArray,
        local_hour: FloatArray,
        recent_sends: FloatArray,
    ) -> FloatArray:
        """Probability that a human opens (reads) the message."""
        t = self.truth
        base = np.asarray(t.open_base)[channel]
        age = np.asarray(t.age_effect)[channel, self.age[index]]
        msg = np.asarray(t.message_effect)[channel, message]
        phase = 2.0 * np.pi * (local_hour - self.peak_hour[index]) / 24.0
        hour = t.off_peak * (1.0 - np.cos(phase)) / 2.0
        logit = (
            base
            + age
            + msg
            + self.affinity[index, channel]
            + self.responsiveness[index]
            - t.fatigue * recent_sends
            - hour
        )
        p = _sigmoid(logit)
        dormant = (channel == CHANNELS.index("push")) & self.dormant_token[index]
        return np.where(dormant, 0.0, p)

    def click_probability(
        self,
        index: IntArray,
        channel: IntArray,
        message: IntArray,
        local_hour: FloatArray,
        recent_sends: FloatArray,
    ) -> FloatArray:
        p_open = self.open_probability(index, channel, message, local_hour, recent_sends)
        return np.asarray(p_open * np.asarray(self.truth.click_given_open)[channel])

    def buy_given_click(self, index: IntArray, channel: IntArray, message: IntArray) -> FloatArray:
        t = self.truth
        return np.asarray(
            np.asarray(t.buy_given_click)[message]
            * np.asarray(t.quality)[channel]
            * np.asarray(t.tier_buy)[self.tier[index]]
        )

    def uplift(
        self,
        index: IntArray,
        channel: IntArray,
        message: IntArray,
        local_hour: FloatArray,
        recent_sends: FloatArray,
    ) -> FloatArray:
        """The incremental conversion probability of one send."""
        click = self.click_probability(index, channel, message, local_hour, recent_sends)
        return np.asarray(click * self.buy_given_click(index, channel, message))


def draw_population(rng: np.random.Generator, n: int, truth: ResponseTruth) -> Population:
    """Hidden traits for ``n`` customers (observable ones are drawn by the shop)."""
    age = rng.choice(len(AGE_BANDS), size=n, p=[0.18, 0.30, 0.34, 0.18]).astype(np.int64)
    tier = rng.choice(len(TIERS), size=n, p=[0.6, 0.3, 0.1]).astype(np.int64)
    peaks = np.array([8.5, 12.5, 20.5])
    peak = np.mod(
        rng.choice(peaks, size=n, p=[0.35, 0.2, 0.45]) + rng.normal(0.0, 1.0, size=n), 24.0
    )
    activity = rng.lognormal(mean=np.log(0.15), sigma=0.7, size=n) * np.array([1.0, 1.3, 2.0])[tier]
    return Population(
        age=age,
        tier=tier,
        affinity=rng.normal(0.0, truth.affinity_sd, size=(n, len(CHANNELS))),
        responsiveness=rng.normal(0.0, truth.responsiveness_sd, size=n),
        mpp=rng.random(n) < truth.mpp_share,
        dormant_token=rng.random(n) < truth.dormant_token_share,
        peak_hour=peak,
        activity=activity,
        truth=truth,
    )
