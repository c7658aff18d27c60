"""The rejects file of an import: every rejected line, with its line number and reason.

A rejected line is written as it was read, so it holds personal data (emails, phone
numbers, ids): the directory is made private (0700) and each file readable by its
owner only (0600, created so, never widened afterwards). Rejects files are kept
``settings.rejects_retention_days``: when a new one is created, those older than that
are deleted.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from omni_journey.ingest.readers import ImportFileError

__all__ = ["SUFFIX", "RejectsFile", "delete_expired"]

SUFFIX = ".rejects.jsonl"

log = logging.getLogger(__name__)


class RejectsFile:
    """The JSON Lines rejects file, created on the first reject."""

    def __init__(
        self, directory: Path, kind: str, source: Path, now: datetime, retention_days: int
    ) -> None:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._directory = directory
        self._stem = f"{kind}-{source.stem}-{stamp}"
        self._now = now
        self._retention = timedelta(days=retention_days)
        self.path: Path | None = None
        self._handle: Any = None
        self.count = 0

    def write(self, line: int, reason: str, detail: str, raw: bytes) -> None:
        if self._handle is None:
            self._open()
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        entry = {"line": line, "reason": reason, "detail": detail, "raw": text}
        self._handle.write(orjson.dumps(entry) + b"\n")
        self.count += 1

    def _open(self) -> None:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._directory.chmod(0o700)  # made earlier, or by another tool, with a wider mode
        delete_expired(self._directory, self._now - self._retention)
        for attempt in range(1000):
            suffix = f"-{attempt}" if attempt else ""
            candidate = self._directory / f"{self._stem}{suffix}{SUFFIX}"
            try:
                descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            self._handle = os.fdopen(descriptor, "wb")
            self.path = candidate
            return
        raise ImportFileError(self._directory, "cannot create a rejects file")  # pragma: no cover

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def delete_expired(directory: Path, before: datetime) -> int:
    """Delete the rejects files in ``directory`` last written before ``before``; how
    many. Other files are left alone; one that cannot be deleted is logged, not fatal."""
    cutoff = before.timestamp()
    deleted = 0
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except OSError as error:
            log.warning("an expired rejects file was not deleted: %s", type(error).__name__)
    return deleted
