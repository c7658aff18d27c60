"""The channel policy: among the eligible channels, which one to use.

Every decision is logged with what off-policy evaluation needs: the eligible set, each
channel's score, the full distribution drawn from, the chosen channel's probability,
the policy and model version, and whether it explored.

Without a trained model the documented rule decides: a fixed channel is used as is;
a fallback list uses the first eligible channel in the marketer's order; ``best`` uses
the cheapest eligible channel in the order push, email, whatsapp, sms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RULE_ORDER", "Decision", "RulePolicy"]

RULE_ORDER: tuple[str, ...] = ("push", "email", "whatsapp", "sms")


@dataclass(frozen=True)
class Decision:
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

    def as_log(self) -> dict[str, Any]:
        data = asdict(self)
        data["eligible"] = list(self.eligible)
        return data


class RulePolicy:
    """The deterministic rule used when no model is trained (or a model cannot load)."""

    name = "rule-v1"

    def choose(self, channels: Sequence[str], choice: str) -> Decision:
        if not channels:
            raise ValueError("no eligible channel: the engine should have skipped this send")
        if choice == "best":
            ranked = sorted(channels, key=lambda c: RULE_ORDER.index(c) if c in RULE_ORDER else 99)
            reason = "rule: cheapest eligible channel"
        else:
            ranked = list(channels)
            fixed = choice in channels and len(channels) == 1
            reason = "fixed channel" if fixed else "fallback order"
        chosen = ranked[0]
        scores = {c: (1.0 if c == chosen else 0.0) for c in channels}
        return Decision(
            channel=chosen,
            eligible=tuple(channels),
            scores=scores,
            probabilities=dict(scores),
            propensity=1.0,
            policy=self.name,
            reason=reason,
        )
