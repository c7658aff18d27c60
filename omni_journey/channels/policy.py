"""The channel policy: among the eligible channels, which one to use.

Every decision is logged with what off-policy evaluation needs: the eligible set, each
channel's score, the full distribution drawn from, the chosen channel's probability,
the policy and model version, and whether it explored.

How a send step chooses (``SendMessage.choice``):

* a fixed channel (``channel: email``) is used as is;
* a fallback list (``channel: [push, email]``) uses the first eligible channel in the
  marketer's order: the marketer's order is the policy;
* ``best`` asks the policy. Without a trained model (or when the model cannot be
  loaded) the documented rule decides: the cheapest eligible channel in the order
  push, email, whatsapp, sms. :class:`~omni_journey.channels.learned.LearnedPolicy`
  uses its model when it has one.

A policy offers ``choose(channels, choice)`` for one send without context, and for a
batch of the engine's ``SendMessage`` effects two steps: ``load(connection, sends,
now)`` reads everything the decisions need in bulk (features, send-time histograms,
the model) and is the only step that touches the store; ``decide_many(loaded, sends,
now)`` decides from what was loaded, with no I/O. ``choose_many`` is the two in one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from omni_journey.engine.types import SendMessage
from omni_journey.spec.models import QuietHours

__all__ = ["RULE_ORDER", "ChannelPolicy", "Decision", "RulePolicy", "rule_channel"]

RULE_ORDER: tuple[str, ...] = ("push", "email", "whatsapp", "sms")


@dataclass(frozen=True)
class Decision:
    """One channel decision, as logged in ``messages.decision``.

    ``scores`` are what the policy maximised (expected value minus cost, or the rule's
    1/0); ``probabilities`` the distribution the channel was drawn from; ``propensity``
    the chosen channel's probability in it. ``send_after`` is set when the step asked
    for ``send_at: best``.
    """

    channel: str
    eligible: tuple[str, ...]
    scores: dict[str, float]
    probabilities: dict[str, float]
    propensity: float
    policy: str
    model_version: str | None = None
    explored: bool = False
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    choice: str | None = None
    send_after: datetime | None = None

    def as_log(self) -> dict[str, Any]:
        """The JSON-safe record (what ``dataclasses.asdict`` gives, built directly: it
        runs once per message and ``asdict``'s recursive copy cost a tenth of a pass)."""
        return {
            "channel": self.channel,
            "eligible": list(self.eligible),
            "scores": dict(self.scores),
            "probabilities": dict(self.probabilities),
            "propensity": self.propensity,
            "policy": self.policy,
            "model_version": self.model_version,
            "explored": self.explored,
            "reason": self.reason,
            "extra": copy.deepcopy(self.extra) if self.extra else {},
            "choice": self.choice,
            "send_after": self.send_after.isoformat() if self.send_after else None,
        }


class ChannelPolicy(Protocol):
    """What the journey runner needs of a channel policy: load in bulk, then decide."""

    name: str

    def choose(self, channels: Sequence[str], choice: str) -> Decision: ...

    def load(self, connection: Connection, sends: Sequence[SendMessage], now: datetime) -> Any:
        """Everything ``decide_many`` needs for ``sends``, read in bulk (the only I/O)."""
        ...

    def decide_many(
        self,
        loaded: Any,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        """One decision per send, in order, from what ``load`` returned: no I/O."""
        ...

    def choose_many(
        self,
        connection: Connection,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]: ...


def rule_channel(channels: Sequence[str]) -> str:
    """The rule's pick: the cheapest eligible channel in the order push, email, whatsapp,
    sms (channels outside that order come last, in the given order)."""
    ranked = sorted(channels, key=lambda c: RULE_ORDER.index(c) if c in RULE_ORDER else 99)
    return ranked[0]


class RulePolicy:
    """The deterministic rule used when no model is trained (or a model cannot load)."""

    name = "rule-v1"

    def choose(self, channels: Sequence[str], choice: str) -> Decision:
        if not channels:
            raise ValueError("no eligible channel: the engine should have skipped this send")
        if choice == "best":
            chosen = rule_channel(channels)
            reason = "rule: cheapest eligible channel"
        else:
            chosen = channels[0]
            fixed = choice in channels and len(channels) == 1
            reason = "fixed channel" if fixed else "fallback order"
        scores = {c: (1.0 if c == chosen else 0.0) for c in channels}
        return Decision(
            channel=chosen,
            eligible=tuple(channels),
            scores=scores,
            probabilities=dict(scores),
            propensity=1.0,
            policy=self.name,
            reason=reason,
            choice=choice,
        )

    def load(self, connection: Connection, sends: Sequence[SendMessage], now: datetime) -> None:
        """The rule needs no history."""
        del connection, sends, now

    def decide_many(
        self,
        loaded: Any,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        """The rule for each send; ``send_at: best`` sends at once (no history read)."""
        del loaded, now, quiet_hours
        return [self.choose(send.channels, send.choice) for send in sends]

    def choose_many(
        self,
        connection: Connection,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        self.load(connection, sends, now)
        return self.decide_many(None, sends, now, quiet_hours=quiet_hours)
