"""What other parts of omni-journey may import from the spec package, pinned."""

from __future__ import annotations

import omni_journey.spec as spec


def test_public_surface() -> None:
    assert sorted(spec.__all__) == [
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
    for name in spec.__all__:
        assert getattr(spec, name) is not None
