"""JSON Schema for journey and segment files, generated from the models.

The files in ``schemas/`` are committed so editors (the YAML language server, VS
Code, JetBrains) autocomplete and check journeys as they are typed; a test fails when
they drift from the models. ``omni-journey schema --write`` regenerates them.
"""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import JourneySpec, SegmentSpec

__all__ = [
    "SCHEMA_FILES",
    "build_schema",
    "render_schemas",
    "stale_schemas",
    "write_schemas",
]

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "journey.schema.json": JourneySpec,
    "segment.schema.json": SegmentSpec,
}
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_BASE_ID = "https://omni-journey.dev/schemas/"


class _MarketerSchema(GenerateJsonSchema):
    """Writes defaults the way a marketer writes them (``"10s"``, ``"09:00"``)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        if isinstance(dft, time):
            return dft.strftime("%H:%M")
        return super().encode_default(dft)


def build_schema(model: type[BaseModel], filename: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec model, by alias, for validation."""
    body = model.model_json_schema(
        mode="validation", by_alias=True, schema_generator=_MarketerSchema
    )
    return {"$schema": _DRAFT, "$id": _BASE_ID + filename, **body}


def render_schemas() -> dict[str, str]:
    """File name -> the exact text the committed file must have."""
    return {
        name: json.dumps(build_schema(model, name), indent=2, ensure_ascii=False) + "\n"
        for name, model in SCHEMA_FILES.items()
    }


def stale_schemas(directory: Path) -> list[str]:
    """The schema files in ``directory`` that are missing or differ from the models."""
    stale = []
    for name, text in render_schemas().items():
        file = directory / name
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema file into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        file = directory / name
        file.write_text(text, encoding="utf-8")
        written.append(file)
    return written
