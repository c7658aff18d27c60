"""Customers split into shards by a stable hash of their id: the same in Python, in
PostgreSQL and in SQLite, so a worker's SQL and its Python agree on whose work it is.

A customer's **shard key** is the first 32 bits of the MD5 of their id (UTF-8), as an
unsigned integer: ``int(md5(id).hexdigest()[:8], 16)`` in Python,
``('x' || substr(md5(id), 1, 8))::bit(32)::bigint`` in PostgreSQL, and the function
``omni_shard_key(id)`` that the store registers on every SQLite connection. Shard
``i`` of ``n`` (1-based, as ``--shard 2/4`` says it) holds the keys in the ``i``-th of
``n`` equal ranges of ``[0, 2**32)``: a range, so a worker's filter is two comparisons.
The hash is the customer's, never the process's (Python's ``hash`` of a string changes
with every interpreter), and it never changes: a customer stays in one shard of ``n``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["ALL", "SHARD_KEY_SPACE", "Shard", "ShardError", "shard_key", "sqlite_shard_key"]

SHARD_KEY_SPACE = 1 << 32
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_key(customer_id: str) -> int:
    """The customer's shard key: the first 32 bits of MD5(id), unsigned."""
    return int(hashlib.md5(customer_id.encode(), usedforsecurity=False).hexdigest()[:8], 16)


def sqlite_shard_key(customer_id: str | None) -> int | None:
    """:func:`shard_key` as SQLite's ``omni_shard_key`` (NULL in, NULL out)."""
    return None if customer_id is None else shard_key(customer_id)


class ShardError(ValueError):
    """A shard that cannot be: ``2/0``, ``5/4``, ``two``."""


@dataclass(frozen=True, order=True)
class Shard:
    """Shard ``index`` (1 to ``count``) of ``count``. ``Shard(1, 1)`` is everyone."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ShardError(
                f"shard {self.index}/{self.count}: expected I/N with 1 <= I <= N, like 2/4"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``."""
        match = _SPEC.match(text)
        if match is None:
            raise ShardError(f"shard {text!r}: expected I/N, like 2/4 (the second of four)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def everyone(self) -> bool:
        return self.count == 1

    @property
    def bounds(self) -> tuple[int, int]:
        """``[low, high)`` of the shard keys in this shard."""
        return _ceil_part(self.index - 1, self.count), _ceil_part(self.index, self.count)

    def holds(self, customer_id: str) -> bool:
        if self.everyone:
            return True
        low, high = self.bounds
        return low <= shard_key(customer_id) < high

    def sql(self, column: str, dialect: str) -> str:
        """A SQL condition: ``column`` (a customer id) is in this shard; ``"1=1"`` for
        everyone. Only integers this class computed are written into it."""
        if self.everyone:
            return "1=1"
        low, high = self.bounds
        key = key_sql(column, dialect)
        return f"({key} >= {low} AND {key} < {high})"

    def all(self) -> list[Shard]:
        """Every shard of this one's count."""
        return [Shard(i, self.count) for i in range(1, self.count + 1)]


def key_sql(column: str, dialect: str) -> str:
    """The shard key of ``column`` in ``dialect``'s SQL."""
    if dialect == "sqlite":
        return f"omni_shard_key({column})"
    return f"('x' || substr(md5({column}), 1, 8))::bit(32)::bigint"


def _ceil_part(index: int, count: int) -> int:
    return -((-index * SHARD_KEY_SPACE) // count)


#: every customer: the default (one worker, or passes that take turns)
ALL = Shard(1, 1)
