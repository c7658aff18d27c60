"""The facts of one pass: each customer's loaded once, kept in step with the pass's writes.

A pass runs every journey, batch after batch, and the same customers come up in many of
them (a session's view, add to cart and order trigger three journeys). Loading their
profiles, consent and event history again for each batch was a fifth of a pass.
:class:`FactCache` loads what a batch needs for the customers it has not seen yet
(through the same reads as :func:`~omni_journey.segments.facts.load_facts`) and answers
the rest from memory.

Recent sends are read afresh for every batch, inside its transaction: passes of other
journeys running at the same time queue messages that count against the global
frequency cap (on SQLite their batches take turns, so each sees the others' sends; on
PostgreSQL the runner locks the batch's customers before this read).
What the pass itself writes is forgotten and read again when next needed: the profile
of a customer whose attributes an update step changed, the history of a customer it
recorded an event for (of the names that history holds). So a batch decides from the
same facts as with a fresh read, as long as nothing else changes those profiles or
histories during the pass (an import's are seen from the next pass on, where a fresh
read per batch might have seen them from the next batch on). One cache serves one pass,
at one ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from omni_journey.engine import NO_FACTS, FactNeeds
from omni_journey.engine.types import CustomerFacts
from omni_journey.segments.fact_loads import (
    ANY_EVENT,
    History,
    Profile,
    customer_facts,
    load_consent,
    load_events,
    load_profiles,
    load_sends,
)
from omni_journey.segments.facts import BatchFacts, history_since
from omni_journey.spec.models import SegmentSpec

__all__ = ["FactCache"]


class FactCache:
    """Facts at ``now`` for the batches of one pass (see the module's docstring)."""

    def __init__(
        self,
        segments: Mapping[str, SegmentSpec],
        now: datetime,
        *,
        cap_window: timedelta = timedelta(days=8),
    ) -> None:
        self.now = now
        self._segments = segments
        self._sends_since = now - cap_window
        self._profiles: dict[str, Profile | None] = {}
        self._consent: dict[str, dict[str, bool]] = {}
        # (event names, read from) -> customer -> history
        self._events: dict[tuple[frozenset[str], datetime], dict[str, History]] = {}

    def load(
        self, connection: Connection, customer_ids: Sequence[str], needs: FactNeeds
    ) -> BatchFacts:
        """What :func:`~omni_journey.segments.facts.load_facts` would load for
        ``customer_ids`` and ``needs`` now, reading only what is not known yet (and
        the recent sends, always)."""
        ids = sorted(set(customer_ids)) if needs != NO_FACTS else []
        if needs.profiles:
            missing = [c for c in ids if c not in self._profiles]
            if missing:
                profiles = load_profiles(connection, missing)
                self._profiles.update((c, profiles.get(c)) for c in missing)
        sends = load_sends(connection, ids, self._sends_since) if needs.sends else {}
        consent: dict[str, dict[str, bool]] = {}
        if needs.consent:
            missing = [c for c in ids if c not in self._consent]
            if missing:
                loaded = load_consent(connection, missing)
                self._consent.update((c, loaded.get(c, {})) for c in missing)
            consent = {c: self._consent[c] for c in ids}
        events: dict[str, History] = {}
        if needs.event_names:
            key = (needs.event_names, history_since(needs, self.now))
            known = self._events.setdefault(key, {})
            missing = [c for c in ids if c not in known]
            if missing:
                loaded_events = load_events(connection, missing, *key)
                known.update((c, loaded_events.get(c, [])) for c in missing)
            events = {c: known[c] for c in ids}
        facts: dict[str, CustomerFacts] = {}
        if needs.profiles or needs.sends:
            known_profiles = self._profiles if needs.profiles else {}
            facts = {c: customer_facts(c, known_profiles.get(c), sends.get(c)) for c in ids}
        return BatchFacts(facts, consent, events, self._segments, self.now)

    # --- the pass's own writes ------------------------------------------------------

    def updated(self, customer_ids: Iterable[str]) -> None:
        """These customers' profiles (attributes) changed."""
        for customer_id in customer_ids:
            self._profiles.pop(customer_id, None)

    def recorded(self, events: Iterable[tuple[str, str]]) -> None:
        """Events (customer id, name) were stored: histories holding that name change."""
        for customer_id, name in events:
            for (names, _), known in self._events.items():
                if name in names or names == ANY_EVENT:
                    known.pop(customer_id, None)
