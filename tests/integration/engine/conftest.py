"""Helpers to drive journeys through the real store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.spec.models import JourneySpec
from omni_journey.store.core import JOURNEY_LOG, MESSAGES

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # a Monday


def journey(data: dict[str, Any]) -> JourneySpec:
    return JourneySpec.model_validate(data)


def profile(customer_id: str, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "customer_id": customer_id,
        "email": f"{customer_id}@example.com",
        "timezone": "Europe/Berlin",
        "consent": {"email": True, "sms": False, "push": False},
        "attributes": {"first_name": customer_id.upper()},
    }
    record.update(extra)
    return record


def event(event_id: str, name: str, customer_id: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "name": name,
        "customer_id": customer_id,
        "at": at.isoformat(),
        "properties": props,
    }


class Shop:
    """A store plus the ingestion entry points the product uses."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def profiles(self, records: Sequence[dict[str, Any]], now: datetime = T0) -> None:
        result = ingest_profiles(self.engine, records, now=now, settings=self.settings)
        assert result.rejected == [], result.rejected

    def events(self, records: Sequence[dict[str, Any]], now: datetime = T0) -> None:
        result = ingest_events(self.engine, records, now=now, settings=self.settings)
        assert result.rejected == [], result.rejected

    def messages(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(MESSAGES).order_by(MESSAGES.c.id)))

    def log(self, kind: str) -> list[Any]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(JOURNEY_LOG).where(JOURNEY_LOG.c.kind == kind).order_by(JOURNEY_LOG.c.id)
                )
            )


@pytest.fixture
def shop(store: Engine, tmp_path: Any) -> Shop:
    return Shop(store, Settings(home=tmp_path / "home"))
