"""Engine states as the rows the store writes (the runner reads rows through the driver:
:mod:`omni_journey.runner.reads`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from omni_journey.engine.types import EnrollmentState

__all__ = ["context_json", "enrollment_row"]

_SCALARS = frozenset({str, int, float, bool, type(None)})


def enrollment_row(state: EnrollmentState, now: datetime) -> dict[str, Any]:
    """The columns an engine state writes back."""
    return {
        "id": state.id,
        "journey_key": state.journey_key,
        "journey_version_id": state.version_id,
        "customer_id": state.customer_id,
        "step_id": state.step_id,
        "state": state.state,
        "wake_at": state.wake_at,
        "entered_at": state.entered_at,
        "updated_at": now,
        "ended_at": state.ended_at,
        "end_reason": state.end_reason,
        "holdout": state.holdout,
        "trigger_event_id": state.trigger_event_id,
        "context": _json_safe(state.context),
    }


def context_json(context: Mapping[str, Any]) -> str:
    """An enrollment's context as the JSON text its column stores: what
    ``enrollment_row`` and the column's JSON type would write (datetimes as ISO 8601,
    tuples as arrays, keys as strings), in one C call, for bulk write-backs."""
    if type(context) is not dict:
        context = _json_safe(context)
    return orjson.dumps(context, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_safe(value: Any) -> Any:
    if type(value) in _SCALARS:  # most of a context: a quick exit
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
