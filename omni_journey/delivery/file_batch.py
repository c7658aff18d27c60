"""Writing a batch of files durably with one flush, for the file outbox.

Why not one fsync and rename per file, as before: on a journalled file system every
fsync of a new file waits for its own journal commit, and that was a third of a large
dispatch pass. A batch is written in three steps instead:

1. **stage**: each file's bytes go to a temporary name beside it (``.tmp-<name>.part``,
   derived from the final name, so a batch resent after a crash overwrites the
   leftovers instead of adding to them);
2. **commit**: every staged file is fsynced, the fsyncs issued together so that the
   file system makes them durable in one journal commit; then each is renamed over its
   final name; then each directory that gained or replaced an entry is fsynced once
   (a directory created for the batch also gets its parent fsynced);
3. only then does :meth:`FileBatch.commit` report a file written, and only then does the
   dispatcher mark its outbox row sent.

The crash guarantees are those of one fsync and rename per file: a final name only
ever holds a complete file (it appears by rename, after its data is on disk); a file
reported written survives a power cut (its data and its directory entry were flushed);
a crash before the report leaves the row in flight, and the resend writes the same
names again (the outbox's idempotency), so there is never a second file for a key.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["FileBatch", "temporary_name"]

# Concurrent fsyncs: enough for the file system to group them into one commit, few
# enough that a batch does not start a thread per file.
_FSYNC_THREADS: Final = 16
_MODE: Final = 0o600  # messages hold addresses: readable by the outbox's owner only
_TEMPORARY_PREFIX: Final = ".tmp-"


def temporary_name(final: Path) -> Path:
    """Where ``final`` is staged: beside it, hidden, and not matching ``*.eml``/``*.json``."""
    return final.with_name(f"{_TEMPORARY_PREFIX}{final.name}.part")


def _fsync_path(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class FileBatch:
    """Files staged for one commit. Errors are per file: one file that cannot be written
    fails alone; a directory that cannot be flushed fails the files renamed into it."""

    _staged: dict[Path, Path] = field(default_factory=dict)  # final -> temporary
    _new_entries: set[Path] = field(default_factory=set)  # directories gaining entries
    _directories: set[Path] = field(default_factory=set)  # known to exist

    def stage(self, final: Path, data: bytes) -> None:
        """Write ``data`` under ``final``'s temporary name (not yet flushed or visible)."""
        directory = final.parent
        if directory not in self._directories:
            missing: list[Path] = []
            probe = directory
            while not probe.is_dir():
                missing.append(probe)
                probe = probe.parent
            if missing:
                directory.mkdir(parents=True, exist_ok=True)
                self._new_entries.update(created.parent for created in missing)
            self._directories.add(directory)
        temporary = temporary_name(final)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            # a full disk (ENOSPC, EDQUOT, EFBIG) stops the write part-way: no leftover,
            # which would hold the space and an inode until the resend overwrote it
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        os.close(fd)
        self._staged[final] = temporary

    def discard(self) -> None:
        """Remove every staged file (a batch given up before its commit)."""
        for temporary in self._staged.values():
            temporary.unlink(missing_ok=True)
        self._staged.clear()

    def commit(self) -> dict[Path, OSError | None]:
        """Flush, rename and flush the directories; for each staged file, ``None`` when it
        is durably in place, else the error that kept it from being so."""
        outcome: dict[Path, OSError | None] = {}
        flushed = self._flush_files(outcome)
        directories: dict[Path, list[Path]] = {}
        for final in flushed:
            try:
                self._staged[final].replace(final)
            except OSError as error:
                outcome[final] = error
                with contextlib.suppress(OSError):
                    self._staged[final].unlink()
                continue
            directories.setdefault(final.parent, []).append(final)
        for directory in self._new_entries - directories.keys():
            directories[directory] = []
        for directory, finals in directories.items():
            try:
                _fsync_path(directory, os.O_RDONLY)
            except OSError as error:
                for final in finals:
                    outcome[final] = error
        self._staged.clear()
        self._new_entries.clear()
        return outcome

    def _flush_files(self, outcome: dict[Path, OSError | None]) -> list[Path]:
        """fsync every staged file, together; the ones that failed are removed."""

        def flush(temporary: Path) -> OSError | None:
            try:
                _fsync_path(temporary, os.O_WRONLY)
            except OSError as error:
                return error
            return None

        finals = list(self._staged)
        temporaries = [self._staged[final] for final in finals]
        errors: Iterable[OSError | None]
        if len(temporaries) > 1:
            threads = min(_FSYNC_THREADS, len(temporaries))
            with ThreadPoolExecutor(threads, thread_name_prefix="outbox-fsync") as pool:
                errors = list(pool.map(flush, temporaries))
        else:
            errors = [flush(t) for t in temporaries]
        flushed: list[Path] = []
        for final, error in zip(finals, errors, strict=True):
            outcome[final] = error
            if error is None:
                flushed.append(final)
            else:  # a leftover would be overwritten by the resend; tidy it if we can
                with contextlib.suppress(OSError):
                    self._staged[final].unlink()
        return flushed
