"""One customer, one history: find a customer by any key and read everything the store
knows about them, across channels (``omni-journey customers show``)."""

from __future__ import annotations

from omni_journey.history.explain import Decision, journey_decisions, why_not_entered
from omni_journey.history.find import find_customer
from omni_journey.history.timeline import CustomerHistory, TimelineItem, load_history

__all__ = [
    "CustomerHistory",
    "Decision",
    "TimelineItem",
    "find_customer",
    "journey_decisions",
    "load_history",
    "why_not_entered",
]
