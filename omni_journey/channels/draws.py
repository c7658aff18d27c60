"""What a channel decision is drawn from, without numpy: the request, the random numbers
seeded by the send, and the rule's row when no model scores.

:class:`~omni_journey.channels.learned.LearnedPolicy` decides from one row per request
(probabilities, scores, the distribution, the greedy channel, epsilon, modelled). With a
model, numpy computes the rows for the whole batch; before the first model, a pass
builds them here in plain Python, number for number the same (a test compares them), so
it never loads numpy.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from omni_journey.channels.policy import rule_channel
from omni_journey.engine.types import SendMessage
from omni_journey.spec.conditions import CHANNELS

__all__ = [
    "Request",
    "Row",
    "cold_row",
    "draw_key",
    "known",
    "mask",
    "rule_index",
    "rule_reason",
    "uniform",
]

#: (p per channel, score per channel, distribution, greedy index, epsilon, modelled)
Row = tuple[list[float], list[float], list[float], int, float, bool]


@dataclass(frozen=True)
class Request:
    """One send to decide: the engine's ``SendMessage`` without the journey plumbing."""

    customer_id: str
    message: str
    channels: tuple[str, ...]
    choice: str
    key: str
    send_at: str = "now"

    @classmethod
    def of(cls, send: SendMessage) -> Request:
        return cls(
            send.customer_id,
            send.message,
            tuple(send.channels),
            send.choice,
            draw_key(send),
            send.send_at,
        )


def draw_key(send: SendMessage) -> str:
    """What the random draws of one send are seeded with: the send itself (journey,
    version, customer, step, when it is due), not the enrollment's database id, which
    differs between two stores doing the same work (a PostgreSQL sequence keeps the
    gaps a crash leaves), so a crashed and resumed run decides as an uninterrupted one."""
    return (
        f"{send.journey_key}:{send.version_id}:{send.customer_id}:{send.step_id}:"
        f"{send.send_after.isoformat()}"
    )


def uniform(salt: str, key: str, purpose: str) -> float:
    """A number in [0, 1) fixed by (salt, key, purpose)."""
    digest = hashlib.blake2b(f"{salt}|{key}|{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@functools.lru_cache(maxsize=256)
def known(channels: tuple[str, ...]) -> tuple[str, ...]:
    """The channels a model knows, in the send's order."""
    return tuple(c for c in channels if c in CHANNELS)


@functools.lru_cache(maxsize=256)
def mask(channels: tuple[str, ...]) -> tuple[bool, ...]:
    """For each of :data:`CHANNELS`, is it among ``channels``?"""
    return tuple(c in channels for c in CHANNELS)


@functools.lru_cache(maxsize=256)
def rule_index(channels: tuple[str, ...]) -> int:
    """The index in :data:`CHANNELS` of the rule's choice."""
    return CHANNELS.index(rule_channel(known(channels) or CHANNELS))


def rule_reason(choice: str, channels: Sequence[str]) -> str:
    if choice == "best":
        return "rule: cheapest eligible channel" if len(channels) > 1 else "only eligible channel"
    return "fixed channel" if choice in channels and len(channels) == 1 else "fallback order"


def cold_row(request: Request, cold_epsilon: float) -> Row:
    """The row for ``request`` when no model scores: no probabilities or scores, the
    rule's channel as the greedy one, ``cold_epsilon`` spread evenly over the eligible
    channels (none with a single one)."""
    nan = float("nan")
    eligible = mask(request.channels)
    count = sum(eligible)
    epsilon = cold_epsilon if count > 1 else 0.0
    share = epsilon / max(count, 1)
    dist = [share if e else 0.0 for e in eligible]
    greedy = rule_index(request.channels)
    dist[greedy] += 1.0 - epsilon
    return [nan] * len(CHANNELS), [nan] * len(CHANNELS), dist, greedy, epsilon, False
