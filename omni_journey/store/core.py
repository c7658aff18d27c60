"""Typed SQLAlchemy Core handles of the tables, for set-based queries.

The engine and the service work on batches with Core statements; these handles give
them ``Table`` objects that type checkers understand (``CUSTOMERS.c.id``).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table

from omni_journey.store import tables

__all__ = [
    "CONSENTS",
    "CONSENT_CHANGES",
    "CUSTOMERS",
    "ENROLLMENTS",
    "ERASURES",
    "EVENTS",
    "IDENTITIES",
    "JOURNEY_CURSORS",
    "JOURNEY_LOG",
    "JOURNEY_SHARD_CURSORS",
    "JOURNEY_VERSIONS",
    "MESSAGES",
    "PROVIDER_RATE_LIMITS",
    "SUPPRESSIONS",
]


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


CUSTOMERS = _table(tables.Customer)
IDENTITIES = _table(tables.Identity)
CONSENTS = _table(tables.Consent)
CONSENT_CHANGES = _table(tables.ConsentChange)
ERASURES = _table(tables.Erasure)
SUPPRESSIONS = _table(tables.Suppression)
EVENTS = _table(tables.Event)
JOURNEY_VERSIONS = _table(tables.JourneyVersion)
ENROLLMENTS = _table(tables.Enrollment)
MESSAGES = _table(tables.Message)
JOURNEY_CURSORS = _table(tables.JourneyCursor)
JOURNEY_LOG = _table(tables.JourneyLog)
JOURNEY_SHARD_CURSORS = _table(tables.JourneyShardCursor)
PROVIDER_RATE_LIMITS = _table(tables.ProviderRateLimit)
