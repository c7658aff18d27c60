"""Validate loaded YAML against a spec model and explain every pydantic error in the
marketer's words, at the key or value it is about.

Pydantic reports ``loc`` paths through the data, with discriminator tags
(``step:send``, ``cond:attribute``, ``trigger:event``) and union members (``str``,
``literal['best']``, ``Comparison``) in between. :func:`validate_document` walks each
``loc`` through the loaded data to the node it names, drops the noise unions add
(every member's failure; a ``too_short`` on a list whose items failed), merges what
is left per place, and turns it into :class:`Diagnostic` objects with stable codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from omni_journey.spec import hints
from omni_journey.spec.conditions import CONDITION_KINDS
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of, quoted
from omni_journey.spec.loader import Document
from omni_journey.spec.model_paths import allowed_keys, field_of, model_at
from omni_journey.spec.models import STEP_KINDS
from omni_journey.spec.naming import YamlPath, describe, get_at

__all__ = ["validate_document"]

M = TypeVar("M", bound=BaseModel)

_TAG_PREFIXES = ("step:", "cond:", "trigger:")
_TRIGGER_KINDS = ("event", "segment", "schedule")


# --- resolving and filtering errors -------------------------------------------------


@dataclass(frozen=True)
class _Error:
    type: str
    path: YamlPath  # the node in the data the error is about
    field: Any  # for "missing": the key that is missing
    union_site: YamlPath | None  # where a plain union began, if the error is a member's
    message: str
    ctx: Mapping[str, Any]


def _resolve(data: Any, error: ErrorDetails) -> _Error:
    value = data
    path: list[Any] = []
    union_site: YamlPath | None = None
    loc = list(error["loc"])
    missing = loc.pop() if error["type"] == "missing" and loc else None
    for part in loc:
        if isinstance(part, str) and part.startswith(_TAG_PREFIXES):
            continue
        if _has(value, part):
            value = get_at(value, (part,))
            path.append(part)
        elif union_site is None:  # a union member's name
            union_site = tuple(path)
    return _Error(
        type=error["type"],
        path=tuple(path),
        field=missing,
        union_site=union_site,
        message=error["msg"],
        ctx=error.get("ctx", {}),
    )


def _has(value: Any, part: Any) -> bool:
    if isinstance(value, Mapping):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def _without_noise(data: Any, errors: list[_Error]) -> list[_Error]:
    kept: list[_Error] = []
    for error in errors:
        if error.type == "too_short":
            value = get_at(data, error.path)
            if not isinstance(value, list) or len(value) >= int(error.ctx.get("min_length", 0)):
                continue  # its items failed; their errors say why
        kept.append(error)
    # Of a union's member errors, only the deepest say something: a mapping member
    # that got as far as a bad key beats "should be text" from the scalar members.
    deepest: dict[YamlPath, int] = {}
    for error in kept:
        if error.union_site is not None:
            depth = deepest.get(error.union_site, -1)
            deepest[error.union_site] = max(depth, len(error.path))
    return [e for e in kept if e.union_site is None or len(e.path) == deepest.get(e.union_site, 0)]


# --- explaining -------------------------------------------------------------------


class _Explainer:
    def __init__(self, doc: Document, root: type[BaseModel], noun: str) -> None:
        self.doc = doc
        self.root = root
        self.noun = noun

    def owner(self, path: YamlPath) -> str:
        return describe(self.doc.data, path, self.noun)

    def value(self, path: YamlPath) -> Any:
        return get_at(self.doc.data, path)

    def field_phrase(self, path: YamlPath) -> tuple[str, str]:
        """(owner, "field") for the value at ``path``; list items by their list."""
        if path and isinstance(path[-1], int) and len(path) >= 2:
            if len(path) >= 3 and path[-3] == "where":
                return self.owner(path[:-1]), "item"
            return self.owner(path[:-2]), f'item in "{path[-2]}"'
        if not path:
            return f"the {self.noun}", "content"
        return self.owner(path[:-1]), f'"{path[-1]}"'

    # each returns one diagnostic

    def unknown_field(self, error: _Error) -> Diagnostic:
        key = error.path[-1]
        parent = error.path[:-1]
        model = model_at(self.root, self.doc.data, parent)
        allowed = allowed_keys(model) if model is not None else []
        suggestion = did_you_mean(key, allowed)
        if suggestion is not None:
            hint = f'did you mean "{suggestion}"?'
        else:
            hint = self._elsewhere(key, parent) or f"remove {quoted(key)}"
        return self.doc.at(
            error.path,
            "unknown-field",
            f"{self.owner(parent)} has no setting {quoted(key)}",
            key=True,
            expected=one_of(allowed) if allowed else None,
            hint=hint,
        )

    def _elsewhere(self, key: Any, parent: YamlPath) -> str | None:
        """Where a key that is wrong here would be right."""
        step = get_at(self.doc.data, parent)
        if len(parent) == 2 and parent[0] == "steps" and isinstance(step, Mapping):
            kinds = [kind for kind, model in STEP_KINDS.items() if key in allowed_keys(model)]
            if kinds:
                return f"{quoted(key)} is a setting of {' and '.join(kinds)} steps"
        outer = parent[:-1]
        if isinstance(get_at(self.doc.data, outer), list):
            outer = outer[:-1]  # the mapping that holds the list
        if parent:
            above = model_at(self.root, self.doc.data, outer)
            if above is not None and key in allowed_keys(above):
                return f"indent {quoted(key)} less: it belongs to {self.owner(outer)}"
        return None

    def missing_field(self, error: _Error) -> Diagnostic:
        field = error.field
        model = model_at(self.root, self.doc.data, error.path)
        info = field_of(model, field) if model is not None else None
        description = info.description if info is not None else None
        placeholder = hints.PLACEHOLDERS.get(str(field), "<value>")
        return self.doc.at(
            error.path,
            "missing-field",
            f"{self.owner(error.path)} is missing {quoted(field)}",
            expected=f"{field}: {description}" if description else f"{field}: {placeholder}",
            hint=f"add {field}: {placeholder}",
        )

    def unknown_step_type(self, error: _Error) -> Diagnostic:
        step = self.value(error.path)
        owner = self.owner(error.path)
        kinds = list(STEP_KINDS)
        if not isinstance(step, Mapping):
            return self.doc.at(
                error.path,
                "invalid-value",
                f"{owner} is not a mapping",
                expected="a step: a mapping with id and type",
                hint="write a step like - {id: wait, type: delay, for: 1h}",
            )
        if "type" not in step:
            return self.doc.at(
                error.path,
                "missing-field",
                f'{owner} is missing "type"',
                expected=f"type: {one_of(kinds)}",
                hint=f"add type: {hints.guess_step_type(step)}",
            )
        kind = step["type"]
        suggestion = did_you_mean(kind, kinds)
        return self.doc.at(
            (*error.path, "type"),
            "unknown-step-type",
            f"{owner} has an unknown type {quoted(kind)}",
            expected=one_of(kinds),
            hint=f'did you mean "{suggestion}"?'
            if suggestion
            else "use one of the step types listed above",
        )

    def unknown_kind(self, error: _Error, code: str, kinds: Sequence[str], what: str) -> Diagnostic:
        value = self.value(error.path)
        owner = self.owner(error.path)
        example = "{segment: vip}" if what == "condition" else "{event: product.viewed}"
        if not isinstance(value, Mapping) or not value:
            return self.doc.at(
                error.path,
                code,
                f"{owner} must be a mapping that starts with the kind of {what}",
                expected=one_of(kinds),
                hint=f"write it like {example}",
            )
        for key in value:
            suggestion = did_you_mean(key, kinds)
            if suggestion is not None:
                return self.doc.at(
                    (*error.path, key),
                    code,
                    f"{owner} has an unknown kind {quoted(key)}",
                    key=True,
                    expected=one_of(kinds),
                    hint=f'did you mean "{suggestion}"?',
                )
        first = next(iter(value))
        return self.doc.at(
            (*error.path, first),
            code,
            f"{owner} has none of the {what} kinds",
            key=True,
            expected=one_of(kinds),
            hint=f"start it with one of the kinds, like {example}",
        )

    def custom(self, error: _Error) -> Diagnostic:
        """Errors our validators raise with a code of their own."""
        owner, field = self.field_phrase(error.path)
        value = self.value(error.path)
        if error.type in ("missing-field", "invalid-value") and error.ctx.get("hint"):
            return self.doc.at(
                error.path,
                error.type,
                f"{self.owner(error.path)} {error.message}",
                expected=error.ctx.get("expected"),
                hint=str(error.ctx["hint"]),
            )
        if error.type == "invalid-duration":
            return self.doc.at(
                error.path,
                error.type,
                f"{owner} has an invalid duration in {field}",
                expected='a number and a unit (w, d, h, m, s), like "90m", "2h", "3d", "1d12h"',
                hint=hints.duration_hint(value),
            )
        if error.type == "invalid-time":
            return self.doc.at(
                error.path,
                error.type,
                f"{owner} has an invalid time in {field}",
                expected='a 24-hour time in quotes, like "09:30" or "21:00"',
                hint=hints.time_hint(value),
            )
        if error.type == "invalid-percent":
            hint = error.ctx.get("hint") or hints.percent_hint(value)
            return self.doc.at(
                error.path,
                error.type,
                f"{owner} has an invalid percentage in {field}"
                + (f": {error.message}" if error.ctx.get("hint") else ""),
                expected='a percentage in quotes, like "10%"',
                hint=str(hint),
            )
        return self.doc.at(
            error.path,
            error.type,
            f"{self.owner(error.path)} {error.message}",
            expected=error.ctx.get("expected"),
            hint=error.ctx.get("hint"),
        )

    def invalid_value(self, path: YamlPath, errors: list[_Error]) -> Diagnostic:
        owner, field = self.field_phrase(path)
        value = self.value(path)
        choices: list[str] = []
        words: list[str] = []
        details: list[str] = []
        for error in errors:
            if error.type == "literal_error":
                choices += re.findall(r"'([^']*)'", str(error.ctx.get("expected", "")))
            elif error.type in hints.TYPE_WORDS:
                words.append(hints.TYPE_WORDS[error.type])
            else:
                details.append(hints.detail(error.type, error.ctx, error.message))
        if "a number" in words and "a whole number" in words:
            words.remove("a whole number")
        if choices and "a list" in words:
            words = [w for w in words if w != "a list"] + ["a list of them"]
        parts = list(dict.fromkeys([*choices, *words, *details]))
        expected = hints.join(parts) if parts else None
        suggestion = did_you_mean(value, choices) if choices else None
        if suggestion is not None:
            hint = f'did you mean "{suggestion}"?'
        elif errors[0].type == "string_pattern_mismatch":
            hint = hints.pattern_hint(value, str(errors[0].ctx.get("pattern", "")))
        elif isinstance(value, bool) and choices:
            hint = "write one of the words above; true and false are not among them"
        elif errors[0].type == "too_short":
            hint = f"add more items to {field}"
        elif isinstance(value, Mapping | list) and not (set(words) & hints.COLLECTIONS):
            hint = "write a single value here, not a " + (
                "mapping" if isinstance(value, Mapping) else "list"
            )
        elif parts:
            hint = f"write {hints.example(parts[0], field)}"
        else:
            hint = None
        message = f"{owner} has an invalid {field}"
        if not path:
            message = f"the {self.noun} file must be a mapping of settings"
        return self.doc.at(path, "invalid-value", message, expected=expected, hint=hint)


# --- the entry point ---------------------------------------------------------------


def _explain(explainer: _Explainer, errors: list[_Error]) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    grouped: dict[YamlPath, list[_Error]] = {}
    for error in errors:
        if error.type == "extra_forbidden":
            found.append(explainer.unknown_field(error))
        elif error.type == "missing":
            found.append(explainer.missing_field(error))
        elif error.type == "unknown-step-type":
            found.append(explainer.unknown_step_type(error))
        elif error.type == "unknown-condition":
            found.append(
                explainer.unknown_kind(error, error.type, list(CONDITION_KINDS), "condition")
            )
        elif error.type == "unknown-trigger":
            found.append(explainer.unknown_kind(error, error.type, _TRIGGER_KINDS, "trigger"))
        elif "-" in error.type:  # our own codes, raised by validators
            found.append(explainer.custom(error))
        else:
            grouped.setdefault(error.path, []).append(error)
    found += [explainer.invalid_value(path, group) for path, group in grouped.items()]
    return found


def validate_document(
    doc: Document,
    model: type[M],
    noun: str,
    *,
    already: Iterable[Diagnostic] = (),
) -> tuple[M | None, list[Diagnostic]]:
    """Validate ``doc.data`` as ``model``: the spec, or ``None`` and every problem.

    Problems at a place ``already`` reported (a YAML 1.1 trap, say) are not repeated.
    """
    if doc.data is None:
        return None, [
            doc.at(
                (),
                "missing-field",
                f"the {noun} file is empty",
                expected=one_of(sorted(k for k in allowed_keys(model) if _required(model, k))),
                hint=f"start from one of the examples in {noun}s/",
            )
        ]
    try:
        spec = model.model_validate(doc.data, by_alias=True, by_name=False)
    except ValidationError as invalid:
        errors = [_resolve(doc.data, e) for e in invalid.errors(include_url=False)]
        explainer = _Explainer(doc, model, noun)
        taken = {(d.path, d.line, d.col) for d in already}
        found = [
            d
            for d in _explain(explainer, _without_noise(doc.data, errors))
            if (d.path, d.line, d.col) not in taken
        ]
        return None, sorted(set(found))
    return spec, []


def _required(model: type[BaseModel], key: str) -> bool:
    info = field_of(model, key)
    return bool(info is not None and info.is_required())
