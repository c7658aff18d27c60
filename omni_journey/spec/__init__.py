"""The journey and segment language: models, loader, checks, JSON Schema.

The public entry points; the models themselves live in :mod:`omni_journey.spec.models`
and :mod:`omni_journey.spec.conditions`.
"""

from omni_journey.spec.diagnostics import CODES, Diagnostic, format_diagnostics
from omni_journey.spec.project import (
    Project,
    Validation,
    check_paths,
    load_journey,
    load_project,
    parse_journey,
    parse_segment,
    validate_paths,
)

__all__ = [
    "CODES",
    "Diagnostic",
    "Project",
    "Validation",
    "check_paths",
    "format_diagnostics",
    "load_journey",
    "load_project",
    "parse_journey",
    "parse_segment",
    "validate_paths",
]
