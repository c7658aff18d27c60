"""How to fix a value: the words for what was expected, and a hint for each kind of
mistake (a duration written in words, a 12-hour time, a percentage without quotes)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from omni_journey.spec.diagnostics import one_of
from omni_journey.spec.models import STEP_KINDS

__all__ = [
    "COLLECTIONS",
    "PATTERNS",
    "PLACEHOLDERS",
    "TYPE_WORDS",
    "detail",
    "duration_hint",
    "example",
    "guess_step_type",
    "join",
    "pattern_hint",
    "percent_hint",
    "time_hint",
]

TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true/false",
    "bool_parsing": "true/false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "none_required": "nothing",
}
COLLECTIONS = frozenset({"a list", "a list of them", "a mapping (key: value)"})
PATTERNS = {
    r"^[a-z][a-z0-9_]*$": "lowercase letters, digits and _, starting with a letter",
    r"^[A-Za-z][A-Za-z0-9_.:-]*$": "an event name like order.completed",
    r"^(never|always|after ([0-9]+[wdhms])+)$": 'never, always, or "after" and a duration',
    r"^https?://[^\s]+$": "an http:// or https:// address",
}
PLACEHOLDERS = {
    "id": "<a step id>",
    "next": "<a step id>",
    "on_event": "<a step id>",
    "on_timeout": "<a step id>",
    "message": "<a folder name under templates/>",
    "segment": "<a segment key>",
    "event": "order.completed",
    "key": "<the file name without .yaml>",
    "timeout": "2d",
    "within": "7d",
    "per": "1d",
    "every": "1d",
    "start": '"21:00"',
    "end": '"08:00"',
    "type": one_of(STEP_KINDS),
    "steps": "a list of steps",
    "trigger": "{event: product.viewed}",
    "arms": "a list of {when: <condition>, next: <step id>}",
    "variants": "a list of {name: a, weight: 50}",
    "when": "{segment: vip}",
    "url": "https://example.com/hook",
    "weight": "50",
    "name": "<a name>",
    "max": "3",
    "schedule": "{every: 1d}",
    "match": "{segment: vip}",
}


def detail(kind: str, ctx: Mapping[str, Any], message: str) -> str:
    """What a constraint error says was expected."""
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return PATTERNS.get(pattern, f"text matching {pattern}")
    if kind == "greater_than_equal":
        return f"a number of at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"a number above {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"a number of at most {ctx.get('le')}"
    if kind == "less_than":
        return f"a number below {ctx.get('lt')}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"at least {ctx.get('min_length')} character(s)"
    if kind == "too_short":
        count = ctx.get("min_length")
        return "at least one item" if count == 1 else f"at least {count} items"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items"
    return re.sub(r"^Value error, ", "", message)


def join(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def example(expected: str, field: str) -> str:
    examples = {
        "text": '"some text" in quotes',
        "a whole number": "a number like 3",
        "a number": "a number like 3",
        "true/false": "true or false",
        "a list": f"a list: {field.strip(chr(34))}: [a, b]",
        "a mapping (key: value)": "key: value pairs, indented below",
    }
    return examples.get(expected, expected)


def guess_step_type(step: Mapping[str, Any]) -> str:
    clues = (
        ("message", "send"),
        ("arms", "branch"),
        ("variants", "split"),
        ("url", "webhook"),
        ("set", "update"),
        ("unset", "update"),
        ("event", "wait_for"),
        ("for", "delay"),
        ("until", "delay"),
    )
    for key, kind in clues:
        if key in step:
            return kind
    return one_of(STEP_KINDS)


def duration_hint(value: Any) -> str:
    if isinstance(value, bool):
        return 'write a duration like "3d"'
    if isinstance(value, int | float):
        return f'add a unit: "{value}h" for hours, "{value}d" for days'
    text = str(value).strip().lower()
    words = {"week": "w", "day": "d", "hour": "h", "hr": "h", "minute": "m", "min": "m"}
    match = re.fullmatch(r"([0-9]+)\s*([a-z]+?)s?", text)
    if match:
        for word, unit in words.items():
            if match.group(2).startswith(word[:3]) or match.group(2) == word:
                return f'write "{match.group(1)}{unit}"'
    decimal = re.fullmatch(r"([0-9]*\.[0-9]+)([wdh])", text)
    if decimal:
        smaller = {"w": ("d", 7), "d": ("h", 24), "h": ("m", 60)}[decimal.group(2)]
        amount = float(decimal.group(1)) * smaller[1]
        return f'use whole numbers: "{amount:g}{smaller[0]}"'
    if text in ("0", "0s", "0m", "0h", "0d", "0w"):
        return "a duration must be longer than zero"
    return 'write a number and a unit, like "3d" or "1d12h"'


def time_hint(value: Any) -> str:
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9]{1,2})(?::([0-9]{2}))?\s*(am|pm)?", text)
    if isinstance(value, str) and match:
        hour, minute, half = int(match.group(1)), match.group(2) or "00", match.group(3)
        if half == "pm" and hour < 12:
            hour += 12
        if half == "am" and hour == 12:
            hour = 0
        if hour < 24 and int(minute) < 60:
            return f'write "{hour:02d}:{minute}"'
    return 'write hours 00-23 and minutes 00-59, like "21:00"'


def percent_hint(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        shown = value * 100 if 0 < value < 1 else value
        return f'write "{shown:g}%" in quotes'
    return 'write a number from 0 to 100 followed by %, in quotes: "10%"'


def pattern_hint(value: Any, pattern: str) -> str:
    if pattern == r"^[a-z][a-z0-9_]*$" and isinstance(value, str):
        slug = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
        if slug and slug[0].isalpha():
            return f'write "{slug}"'
        return "start with a letter; use lowercase letters, digits and _"
    if pattern == r"^[A-Za-z][A-Za-z0-9_.:-]*$" and isinstance(value, str):
        words = value.strip().lower().split()
        if len(words) > 1:
            return f'write "{words[0]}.{"_".join(words[1:])}" (no spaces in event names)'
        return "start with a letter; use letters, digits and . _ : -"
    if pattern.startswith("^(never|always"):
        return 'write never, always, or after and a duration, like "after 14d"'
    if pattern.startswith("^https?://"):
        return "write the full address, starting with https://"
    return "see docs/journeys.md for the form this value takes"
