"""Ingestion: events and customer profiles into the store, one transaction per batch.

* ``ingest_events`` is idempotent on the event id (``ON CONFLICT DO NOTHING``): a
  re-import stores nothing and counts duplicates. Events never merge customers.
* ``ingest_profiles`` applies customer profiles (docs/data-formats.md): contact
  columns, push tokens, time zone, locale, consent per channel (the latest statement
  wins), attributes, and merges the customers a profile links (see
  :mod:`omni_journey.identity`). A profile that changes nothing counts as a duplicate.
* ``import_file`` streams a JSON Lines or CSV file through them in batches of
  ``settings.batch_size`` lines (events: one transaction per
  ``settings.import_batch_size`` events) and writes every rejected line, with its
  line number and reason, to a JSON Lines file under ``settings.rejects_dir``.

A bad record is rejected with a stable reason code and the rest of its batch goes
in; a record is never stored in part. When a function returns, its batch is
committed durably (SQLite ``synchronous=FULL`` for these transactions).

The entry points, gathered where the API, the CLI, the collector and the flows import
them; each lives with its concept: :mod:`~omni_journey.ingest.events`,
:mod:`~omni_journey.ingest.profiles`, :mod:`~omni_journey.ingest.files`.
"""

from __future__ import annotations

from omni_journey.ingest.event_rows import Reject
from omni_journey.ingest.events import ingest_events
from omni_journey.ingest.files import import_file
from omni_journey.ingest.profiles import ingest_profiles
from omni_journey.ingest.readers import ImportFileError
from omni_journey.ingest.results import BatchResult, ImportResult

__all__ = [
    "BatchResult",
    "ImportFileError",
    "ImportResult",
    "Reject",
    "import_file",
    "ingest_events",
    "ingest_profiles",
]
