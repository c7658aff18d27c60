"""Option parsing the commands share."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from omni_journey.errors import IngestError
from omni_journey.ingest.limits import check_time_range

__all__ = ["parse_time"]


def parse_time(value: str | None) -> datetime:
    """``--now``-style options: ISO 8601 with a zone, within the range ingestion accepts
    (years 1900 to 2999 in UTC); ``None`` means the clock."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO 8601 time like 2026-05-01T10:00Z, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("give the time with a zone, e.g. 2026-05-01T10:00Z")
    try:
        return check_time_range(parsed, "the time")
    except IngestError as error:
        raise typer.BadParameter(error.detail) from None
