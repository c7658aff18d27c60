"""The top-level keys an imported record may have, and what to say about any other one.

A key omni-journey does not read (``"id"`` where a profile means ``"customer_id"``,
``"consents"``, a ``"first_name"`` meant for ``attributes``) is never dropped silently:
an import counts it and names it with its line, or (``--strict``) rejects the line.
Finding one is a set difference per record (:func:`unknown_keys`); the hints are
built only for the few lines an import shows. Light on purpose: the import reader
process imports this module (no store, no pydantic).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "EVENT_KEYS",
    "PROFILE_KEYS",
    "SAMPLES",
    "UnknownKeys",
    "describe",
    "known_keys",
    "shown_key",
    "unknown_keys",
]

EVENT_KEYS: Final = frozenset({"id", "name", "at", "customer_id", "properties", "identities"})
PROFILE_KEYS: Final = frozenset(
    {
        "customer_id",
        "email",
        "phone",
        "push_tokens",
        "timezone",
        "locale",
        "consent",
        "attributes",
        "at",
        "merge",
        "external_id",
        "anonymous_id",
    }
)

# what people coming from other tools write, and what it is called here
_ALIASES: Final[dict[str, dict[str, str]]] = {
    "customers": {
        "id": "customer_id",
        "user_id": "customer_id",
        "userid": "customer_id",
        "traits": "attributes",
        "properties": "attributes",
        "push_token": "push_tokens",
        "tokens": "push_tokens",
        "time_zone": "timezone",
        "tz": "timezone",
        "language": "locale",
        "subscriptions": "consent",
    },
    "events": {
        "event": "name",
        "type": "name",
        "event_id": "id",
        "message_id": "id",
        "messageid": "id",
        "timestamp": "at",
        "time": "at",
        "user_id": "customer_id",
        "userid": "customer_id",
        "traits": "identities",
    },
}

SAMPLES: Final = 10  # lines with unknown keys an import keeps to show, per chunk and in all
_SHOWN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


def known_keys(kind: Literal["events", "customers"]) -> frozenset[str]:
    return EVENT_KEYS if kind == "events" else PROFILE_KEYS


def unknown_keys(record: dict[str, Any], known: frozenset[str]) -> list[str]:
    """The record's keys omni-journey does not read, sorted (usually none: one subset
    test). Only top-level keys: ``properties`` and ``attributes`` are free-form, and
    ``consent`` and ``identities`` refuse an unknown channel or kind themselves."""
    if record.keys() <= known:
        return []
    return sorted(str(key) for key in record.keys() - known)


def shown_key(key: str) -> str:
    """A key as a message may show it: a name, never what looks like data (an email
    address written as a key, say)."""
    return f'"{key}"' if _SHOWN_KEY.fullmatch(key) else "(a key that is not a name)"


def _hint(key: str, kind: Literal["events", "customers"]) -> str:
    known = known_keys(kind)
    alias = _ALIASES[kind].get(key.lower())
    if alias is None and _SHOWN_KEY.fullmatch(key):
        import difflib  # only for the few lines an import shows

        close = difflib.get_close_matches(key.lower(), sorted(known), n=1, cutoff=0.6)
        alias = close[0] if close else None
    if alias is not None:
        return f'did you mean "{alias}"?'
    if not _SHOWN_KEY.fullmatch(key):
        return "not a key omni-journey reads"
    if kind == "customers":
        return f'your own data goes under "attributes": "attributes": {{"{key}": ...}}'
    return f'event data goes under "properties": "properties": {{"{key}": ...}}'


def describe(keys: Iterable[str], kind: Literal["events", "customers"]) -> str:
    """``"id" (did you mean "customer_id"?), "vip" (your own data goes under ...)``."""
    return ", ".join(f"{shown_key(key)} ({_hint(key, kind)})" for key in keys)


@dataclass
class UnknownKeys:
    """Unknown keys met so far: lines, lines per key, and the first lines to show."""

    lines: int = 0
    per_key: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)

    def add(self, line: int, keys: list[str]) -> None:
        self.lines += 1
        for key in keys:
            shown = key if _SHOWN_KEY.fullmatch(key) else "(a key that is not a name)"
            self.per_key[shown] = self.per_key.get(shown, 0) + 1
        if len(self.samples) < SAMPLES:
            self.samples.append((line, tuple(keys)))

    def merge(self, other: UnknownKeys) -> None:
        self.lines += other.lines
        for key, count in other.per_key.items():
            self.per_key[key] = self.per_key.get(key, 0) + count
        room = SAMPLES - len(self.samples)
        if room > 0:
            self.samples += other.samples[:room]
