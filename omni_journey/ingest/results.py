"""What an ingestion call reports: counts, and every reject with its reason.

Its own module because the collector, the API, the CLI and the ingest flow all read
these results, while only some of them need the code that produces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omni_journey.ingest.event_rows import Reject
from omni_journey.ingest.record_keys import UnknownKeys

__all__ = ["BatchResult", "ImportResult", "Reject", "UnknownKeys"]


@dataclass(frozen=True)
class BatchResult:
    accepted: int  # newly stored (profiles: changed the store)
    duplicates: int  # already stored: same event id, or a profile that changed nothing
    rejected: list[Reject]
    identity_conflicts: int = 0  # event identities owned by another customer, left alone


@dataclass(frozen=True)
class ImportResult:
    accepted: int
    duplicates: int
    rejected: int
    rejects_path: Path | None
    # lines with top-level keys omni-journey does not read (imported without them; a
    # strict import rejects them instead, and counts them in ``rejected``)
    unknown: UnknownKeys = field(default_factory=UnknownKeys)
