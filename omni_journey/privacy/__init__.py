"""The rights of the person behind a customer: everything held about them, as one
document (:func:`export_customer`), and their erasure everywhere the product writes,
keeping only anonymous aggregates (:func:`erase_customer`)."""

from __future__ import annotations

from omni_journey.privacy.erase import (
    KEEP_PROPERTIES,
    ErasureResult,
    erase_customer,
    finish_erasures,
)
from omni_journey.privacy.export import EXPORT_FORMAT, export_customer, export_subject
from omni_journey.privacy.subject import Subject, load_subject

__all__ = [
    "EXPORT_FORMAT",
    "KEEP_PROPERTIES",
    "ErasureResult",
    "Subject",
    "erase_customer",
    "export_customer",
    "export_subject",
    "finish_erasures",
    "load_subject",
]
