"""What one dispatch pass did, in counts: what the CLI prints, the ``dispatch`` flow
publishes and the demo sums. Counts only, never an address."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DispatchReport"]


@dataclass
class DispatchReport:
    """What one pass did. ``by_provider`` counts outcomes per provider; ``errors`` counts
    ``provider:code`` of every failure and retry."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    retried: int = 0
    deferred: int = 0
    in_doubt: int = 0
    claims_lost: int = 0
    by_provider: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    paused: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "retried": self.retried,
            "deferred": self.deferred,
            "in_doubt": self.in_doubt,
            "claims_lost": self.claims_lost,
            "by_provider": {name: dict(c) for name, c in sorted(self.by_provider.items())},
            "errors": dict(sorted(self.errors.items())),
            "paused": dict(self.paused),
        }

    def summary(self) -> str:
        text = (
            f"claimed {self.claimed}: sent {self.sent}, failed {self.failed}, "
            f"suppressed {self.suppressed}, retry later {self.retried}, deferred {self.deferred}"
        )
        if self.in_doubt:
            text += f", in doubt {self.in_doubt}"
        if self.paused:
            text += "; paused " + ", ".join(f"{p} ({c})" for p, c in sorted(self.paused.items()))
        return text
