"""Option parsing the commands share."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

__all__ = ["parse_time"]


def parse_time(value: str | None) -> datetime:
    """``--now``-style options: ISO 8601 with a zone; ``None`` means the clock."""
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
    return parsed
