"""Deterministic buckets: the same customer always lands in the same holdout and variant.

Buckets come from SHA-256 of the journey key, (step id,) and customer id, so they are
stable across processes, machines and Python versions (unlike ``hash()``), and
independent between journeys and between split steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from omni_journey.spec.models import SplitVariant

__all__ = ["choose_variant", "holdout_bucket", "split_bucket"]

_SEPARATOR = "\x1f"


def _unit(*parts: str) -> float:
    digest = hashlib.sha256(_SEPARATOR.join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def holdout_bucket(journey_key: str, customer_id: str) -> float:
    """A stable number in [0, 1): the customer is in the holdout when it is below the share."""
    return _unit("holdout", journey_key, customer_id)


def split_bucket(journey_key: str, step_id: str, customer_id: str) -> float:
    """A stable number in [0, 1) for one split step and one customer."""
    return _unit("split", journey_key, step_id, customer_id)


def choose_variant(variants: Sequence[SplitVariant], bucket: float) -> SplitVariant:
    """The variant whose share of the total weight covers ``bucket`` (in file order)."""
    total = sum(variant.weight for variant in variants)
    point = bucket * total
    running = 0
    for variant in variants:
        running += variant.weight
        if point < running:
            return variant
    return variants[-1]
