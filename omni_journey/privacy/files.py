"""The files the product writes about a customer, found and removed.

* the file outbox (``<OMNI_HOME>/outbox/<channel>/``): one file a message, named by its
  idempotency key (:func:`~omni_journey.delivery.file.outbox_file_name`), so the files
  of a customer's outbox rows are found from the rows, before and after erasure (the
  keys name no person);
* previews (``<OMNI_HOME>/previews/``): named by a digest of the customer id;
* rejects files of imports (``<OMNI_HOME>/rejects/*.rejects.jsonl``): rejected lines as
  they were read. Each file holding a line about the customer is rewritten without it
  (a new file renamed over the old one, mode 0600, so a crash leaves the old or the
  new file, never half of one).

Every function here is idempotent: a second call finds nothing left to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import phonenumbers

from omni_journey.delivery.file import outbox_file_name
from omni_journey.ingest.rejects import SUFFIX as REJECTS_SUFFIX

__all__ = ["find_outbox_files", "forget_previews", "line_matcher", "scrub_rejects"]

_SUFFIXES = (".eml", ".json")


def find_outbox_files(outbox_dir: Path, messages: Iterable[tuple[str, str]]) -> list[Path]:
    """The outbox files that exist for ``(channel, idempotency key)`` pairs."""
    found = []
    for channel, key in messages:
        for suffix in _SUFFIXES:
            path = outbox_dir / channel / outbox_file_name(key, suffix)
            if path.is_file():
                found.append(path)
    return found


def delete_files(paths: Iterable[Path]) -> int:
    """Delete ``paths`` (those already gone count as deleted before); how many now."""
    deleted = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
    return deleted


def forget_previews(previews_dir: Path, customer_ids: Sequence[str]) -> int:
    """Delete the previews rendered for ``customer_ids``; how many files."""
    if not previews_dir.is_dir():
        return 0
    paths = []
    for customer_id in customer_ids:
        digest = hashlib.sha256(customer_id.encode()).hexdigest()[:10]
        for path in previews_dir.iterdir():
            stem = path.name.rsplit(".", 1)[0]
            if f"-{digest}" in stem and path.suffix in (".html", ".eml"):
                paths.append(path)
    return delete_files(sorted(set(paths)))


def _phone_digits(value: str) -> str | None:
    """The national significant number of an E.164 phone (how a CSV may have held it)."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.national_significant_number(number)


def line_matcher(needles: Sequence[str], phones: Sequence[str] = ()) -> re.Pattern[str] | None:
    """A pattern that finds any of ``needles`` as a whole word (any case), or one of
    ``phones`` written another way (``0151 1234567``, ``+49 (151) 1234567``)."""
    words = [re.escape(n) for n in sorted(set(needles), key=len, reverse=True) if n]
    alternatives = [rf"(?<!\w)(?:{'|'.join(words)})(?!\w)"] if words else []
    for phone in phones:
        digits = _phone_digits(phone)
        if digits and len(digits) >= 6:
            spaced = r"[\s().-]*".join(re.escape(d) for d in digits)
            alternatives.append(rf"(?<![\w+])(?:\+?\d{{1,3}}[\s().-]*|0)?{spaced}(?!\d)")
    return re.compile("|".join(alternatives), re.I) if alternatives else None


def scrub_rejects(rejects_dir: Path, matcher: re.Pattern[str] | None) -> tuple[int, int]:
    """Rewrite every rejects file without the lines ``matcher`` finds (a file left
    empty is deleted), reading line by line. (lines removed, files changed)."""
    if matcher is None or not rejects_dir.is_dir():
        return 0, 0
    removed = changed = 0
    for path in sorted(rejects_dir.glob(f"*{REJECTS_SUFFIX}")):
        with path.open("rb") as handle:
            if not any(matcher.search(line.decode("utf-8", "replace")) for line in handle):
                continue
        gone = _rewrite_without(path, matcher)
        removed += gone
        changed += 1
    return removed, changed


def _rewrite_without(path: Path, matcher: re.Pattern[str]) -> int:
    """Write ``path``'s lines but the matching ones to a new file (0600) and rename it
    over ``path``: a crash leaves the old file or the new one. Lines removed."""
    temporary = path.with_name(path.name + ".erasing")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a crash
    removed = kept = 0
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out, path.open("rb") as source:
        for line in source:
            if matcher.search(line.decode("utf-8", "replace")):
                removed += 1
            else:
                out.write(line)
                kept += 1
        out.flush()
        os.fsync(out.fileno())
    if kept:
        temporary.replace(path)
    else:
        path.unlink()
        temporary.unlink()
    return removed
