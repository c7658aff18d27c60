"""Names for places in a journey or segment file, in the marketer's words.

``("steps", 3, "arms", 0, "when")`` reads as ``the segment condition in step "check"``:
steps by their id, never by a list index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omni_journey.spec.conditions import CONDITION_KINDS

__all__ = ["YamlPath", "describe", "get_at", "step_label"]

YamlPath = tuple[Any, ...]

_CONDITION_KEYS = frozenset({"when", "match", "not"})
_CONDITION_LISTS = frozenset({"all", "any"})
_TOP_LABELS = {"trigger": "the trigger", "entry": "entry", "goal": "goal"}


def get_at(data: Any, path: YamlPath) -> Any:
    """The value at ``path`` in loaded YAML data, or ``None`` where there is none."""
    for part in path:
        if (isinstance(data, Mapping) and part in data) or (
            isinstance(data, Sequence)
            and not isinstance(data, str)
            and isinstance(part, int)
            and 0 <= part < len(data)
        ):
            data = data[part]
        else:
            return None
    return data


def step_label(step: Any) -> str:
    """``step "nudge"``; a step without a usable id by its type."""
    if isinstance(step, Mapping):
        step_id = step.get("id")
        if isinstance(step_id, str) and step_id:
            return f'step "{step_id[:64]}"'
        kind = step.get("type")
        if isinstance(kind, str) and kind:
            return f"a {kind[:32]} step without an id"
    return "a step"


def _is_condition_place(path: YamlPath) -> bool:
    if not path:
        return False
    last = path[-1]
    if isinstance(last, str):
        return last in _CONDITION_KEYS
    return len(path) >= 2 and path[-2] in _CONDITION_LISTS


def _own_label(data: Any, path: YamlPath, rest: YamlPath) -> str:
    value = get_at(data, path)
    if _is_condition_place(rest):
        if isinstance(value, Mapping):
            for kind in CONDITION_KINDS:
                if kind in value:
                    return f"the {kind} condition"
        return "a condition"
    last = rest[-1]
    parent = rest[-2] if len(rest) >= 2 else None
    if isinstance(last, int):
        if parent == "arms":
            return "an arm"
        if parent == "variants":
            name = value.get("name") if isinstance(value, Mapping) else None
            return f'variant "{name[:64]}"' if isinstance(name, str) else "a variant"
        if parent == "exit_when":
            return "an exit_when condition"
        return f"an item of {parent}" if isinstance(parent, str) else "an item"
    if parent == "where":
        return f'the filter on "{str(last)[:64]}"'
    if len(rest) == 1:
        return _TOP_LABELS.get(str(last), str(last))
    return str(last)


def describe(data: Any, path: YamlPath, noun: str = "journey") -> str:
    """What sits at ``path``, named for a message: ``step "nudge"``, ``quiet_hours``,
    ``the attribute condition in step "check"``, ``the journey``."""
    step: str | None = None
    rest = path
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        step = step_label(get_at(data, path[:2]))
        rest = path[2:]
    if not rest:
        return step if step is not None else f"the {noun}"
    label = _own_label(data, path, rest)
    if step is not None:
        return f"{label} in {step}"
    top_item = len(rest) == 2 and isinstance(rest[1], int)  # exit_when[0]: named by its list
    if len(rest) > 1 and isinstance(rest[0], str) and not top_item:
        return f"{label} in {_TOP_LABELS.get(rest[0], rest[0])}"
    return label
