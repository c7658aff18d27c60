"""Guards at send time: channel eligibility, quiet hours, send window, frequency caps.

The order is fixed and each guard has one outcome:

1. no eligible channel            -> skip, with the first wanted channel's reason
2. bad time zone + timing rules   -> skip ``invalid_timezone`` (we cannot tell the
                                     customer's night from their day)
3. quiet hours / send window      -> defer to the next allowed instant (never dropped)
4. frequency caps                 -> skip ``frequency_cap``

Caps count messages on calendar days in the customer's zone: the store's
``sends_by_day`` plus the sends this same ``advance`` call already decided.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from omni_journey.engine.clock import local_date, next_send_time, quiet_until, zone
from omni_journey.engine.types import CustomerFacts
from omni_journey.spec.conditions import CHANNELS
from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import FrequencyCap, JourneySpec, SendStep

__all__ = ["GLOBAL_CAP_KEY", "SendDecision", "SendLedger", "decide_send", "wanted_channels"]

GLOBAL_CAP_KEY = "*"
NO_ADDRESS = "unreachable"


@dataclass(frozen=True, slots=True)
class SendDecision:
    action: Literal["send", "skip", "defer"]
    channels: tuple[str, ...] = ()
    choice: str = ""
    reason: str = ""
    until: datetime | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)


class SendLedger:
    """Sends decided during one ``advance`` call, by (customer, cap key, local date)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, date]] = Counter()

    def count(self, customer_id: str, key: str, day: date) -> int:
        return self._counts[(customer_id, key, day)]

    def record(self, customer_id: str, keys: tuple[str, ...], day: date) -> None:
        for key in keys:
            self._counts[(customer_id, key, day)] += 1


def wanted_channels(step: SendStep) -> tuple[tuple[str, ...], str]:
    """The channels the step would use, in preference order, and how it chooses."""
    if step.channel == "best":
        return CHANNELS, "best"
    if isinstance(step.channel, str):
        return (step.channel,), step.channel
    return tuple(step.channel), "fallback"


def decide_send(
    spec: JourneySpec,
    step: SendStep,
    customer: CustomerFacts,
    now: datetime,
    ledger: SendLedger,
    global_cap: FrequencyCap | None,
) -> SendDecision:
    wanted, choice = wanted_channels(step)
    # the inputs of every guard, kept with the decision (the journey log's ``detail``)
    eligibility = {c: customer.eligible.get(c, NO_ADDRESS) or "eligible" for c in wanted}
    inputs: dict[str, Any] = {"eligibility": eligibility}
    channels = tuple(c for c in wanted if c in customer.eligible and customer.eligible[c] is None)
    if not channels:
        reason = customer.eligible.get(wanted[0]) or NO_ADDRESS
        return SendDecision("skip", reason=reason, inputs=inputs)
    inputs["timezone"] = customer.timezone
    tz = zone(customer.timezone)
    if tz is None:
        if spec.quiet_hours or spec.send_window:
            return SendDecision("skip", reason="invalid_timezone", inputs=inputs)
        tz = ZoneInfo("UTC")
    at = next_send_time(now, spec.quiet_hours, spec.send_window, tz)
    if at is None:
        return SendDecision("skip", reason="no_send_time", inputs=inputs)
    if at > now:
        quiet = spec.quiet_hours is not None and quiet_until(now, spec.quiet_hours, tz)
        reason = "quiet_hours" if quiet else "send_window"
        inputs["local_time"] = now.astimezone(tz).strftime("%H:%M")
        window = spec.quiet_hours if quiet else spec.send_window
        if window is not None:
            inputs[reason] = f"{window.start:%H:%M}-{window.end:%H:%M}"
        return SendDecision("defer", reason=reason, until=at, inputs=inputs)
    today = local_date(now, tz)
    caps = [(spec.key, spec.frequency_cap), (GLOBAL_CAP_KEY, global_cap)]
    for key, cap in caps:
        if cap is None:
            continue
        sent = _sent(customer, key, today, cap.per, ledger)
        if sent >= cap.max:
            scope = "journey" if key == spec.key else "global"
            per = format_duration(cap.per)
            inputs["cap"] = {"scope": scope, "max": cap.max, "per": per, "sent": sent}
            return SendDecision("skip", reason="frequency_cap", inputs=inputs)
    ledger.record(customer.customer_id, (spec.key, GLOBAL_CAP_KEY), today)
    return SendDecision("send", channels=channels, choice=choice, inputs=inputs)


def _sent(
    customer: CustomerFacts, key: str, today: date, per: timedelta, ledger: SendLedger
) -> int:
    days = max(1, math.ceil(per / timedelta(days=1)))
    total = 0
    for back in range(days):
        day = today - timedelta(days=back)
        total += customer.sends_by_day.get((key, day.isoformat()), 0)
        total += ledger.count(customer.customer_id, key, day)
    return total
