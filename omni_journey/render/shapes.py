"""The shape of the YAML a message is written in: ``message.yaml`` (shared content, open
to extra keys of your own), ``push.yaml`` and ``whatsapp.yaml`` (closed: unknown keys
are errors). Problems come back as diagnostics pointing at the key or value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from omni_journey.render.source import Content
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of, quoted
from omni_journey.spec.loader import Document
from omni_journey.spec.naming import YamlPath

__all__ = [
    "CONTENT_FIELDS",
    "FCM_RESERVED_DATA",
    "PUSH_FIELDS",
    "WHATSAPP_FIELDS",
    "Field",
    "content_problems",
    "variant_problems",
]

Kind = Literal["text", "link", "mapping", "list", "text-or-mapping"]


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = False
    fields: Mapping[str, Field] | None = None  # of a mapping; None: any keys
    closed: bool = True  # unknown keys of the mapping are errors


_CTA = {"text": Field("text", required=True), "url": Field("link", required=True)}
CONTENT_FIELDS: Final[Mapping[str, Field]] = {
    "subject": Field("text", required=True),
    "preheader": Field("text"),
    "headline": Field("text", required=True),
    "body": Field("text"),
    "cta": Field("mapping", fields=_CTA),
    "offer": Field("text-or-mapping"),
    "image": Field("link"),
    "deep_link": Field("text"),
    "footer": Field("text"),
    "unsubscribe_text": Field("text"),
    "sms_footer": Field("text"),
}
PUSH_FIELDS: Final[Mapping[str, Field]] = {
    "title": Field("text", required=True),
    "body": Field("text", required=True),
    "image": Field("link"),
    "deep_link": Field("text"),
    "data": Field("mapping"),
}
WHATSAPP_FIELDS: Final[Mapping[str, Field]] = {
    "body": Field("text"),
    "template": Field(
        "mapping",
        fields={
            "name": Field("text", required=True),
            "language": Field("text"),
            "parameters": Field("list"),
        },
    ),
}
# Keys FCM refuses in ``data`` (and any key starting with "google" or "gcm").
FCM_RESERVED_DATA: Final = frozenset({"from", "notification", "message_type", "collapse_key"})
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_EXPECTED: Final[Mapping[Kind, str]] = {
    "text": "text",
    "link": 'an http(s) URL (or a {{ ... }} that gives one), like "https://shop.example.com"',
    "mapping": "a mapping of keys",
    "list": "a list",
    "text-or-mapping": "text, or a mapping of keys",
}


def _is_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _fits(kind: Kind, value: Any) -> bool:
    if kind == "text":
        return _is_text(value)
    if kind == "link":
        return isinstance(value, str) and (
            value.startswith(("https://", "http://")) or value.lstrip().startswith("{")
        )
    if kind == "mapping":
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    return _is_text(value) or isinstance(value, Mapping)


def _check(
    data: Mapping[str, Any],
    fields: Mapping[str, Field],
    closed: bool,
    path: YamlPath,
    doc_of: Any,
    what: str,
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for name, field in fields.items():
        if field.required and name not in data:
            found.append(
                doc_of(path).at(
                    path,
                    "missing-content" if what == "the shared content" else "missing-field",
                    f"{what} has no {name}",
                    expected=f"{name}: {_EXPECTED[field.kind]}",
                    hint=f"add {name}: under {'/'.join(map(str, path)) or 'the top level'}",
                )
            )
    for name, value in data.items():
        here = (*path, name)
        field_spec = fields.get(name)
        if field_spec is None:
            if closed:
                close = did_you_mean(name, fields)
                found.append(
                    doc_of(here).at(
                        here,
                        "unknown-field",
                        f"{what} has no setting {quoted(name)}",
                        key=True,
                        expected=one_of(fields),
                        hint=f'did you mean "{close}"?' if close else None,
                    )
                )
            continue
        if not _fits(field_spec.kind, value):
            found.append(
                doc_of(here).at(
                    here,
                    "invalid-value",
                    f"{name} in {what} must be {_EXPECTED[field_spec.kind]}",
                    expected=_EXPECTED[field_spec.kind],
                )
            )
        elif field_spec.fields is not None and isinstance(value, Mapping):
            found += _check(value, field_spec.fields, field_spec.closed, here, doc_of, name)
    return found


def content_problems(content: Content) -> list[Diagnostic]:
    """What is wrong with the shape of the shared content (for one locale)."""
    if not content.data and content.diagnostics:
        return []  # the YAML itself is broken; that is reported already
    return _check(content.data, CONTENT_FIELDS, False, (), content.origin, "the shared content")


def variant_problems(doc: Document, fields: Mapping[str, Field], what: str) -> list[Diagnostic]:
    """What is wrong with ``push.yaml`` or ``whatsapp.yaml``."""
    if not isinstance(doc.data, Mapping):
        return [doc.at((), "invalid-value", f"{what} must be a mapping of keys")]
    found = _check(doc.data, fields, True, (), lambda _: doc, what)
    data = doc.data.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            if (
                not isinstance(key, str)
                or key in FCM_RESERVED_DATA
                or key.startswith(("google", "gcm"))
            ):
                found.append(
                    doc.at(
                        ("data", key),
                        "invalid-value",
                        f"FCM refuses the data key {quoted(key)}",
                        key=True,
                        hint='choose another name; "from", "notification", "message_type", '
                        '"collapse_key" and names starting with google or gcm are reserved',
                    )
                )
            elif not _is_text(value):
                found.append(
                    doc.at(("data", key), "invalid-value", "push data values must be text")
                )
    template = doc.data.get("template")
    if isinstance(template, Mapping):
        name = template.get("name")
        if isinstance(name, str) and not _TEMPLATE_NAME.fullmatch(name):
            found.append(
                doc.at(
                    ("template", "name"),
                    "invalid-value",
                    f"{quoted(name)} is not a WhatsApp template name",
                    expected="lower-case letters, digits and _ (the name it was approved under)",
                )
            )
        for index, parameter in enumerate(template.get("parameters") or []):
            if not _is_text(parameter):
                found.append(
                    doc.at(
                        ("template", "parameters", index),
                        "invalid-value",
                        "each template parameter must be text",
                    )
                )
    return found
