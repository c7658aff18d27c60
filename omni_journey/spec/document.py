"""A loaded YAML file: its data and where every key and value stands, so that any
problem found later can be pointed at as ``path:line:col`` with a caret snippet."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omni_journey.spec.diagnostics import Diagnostic, Severity, redact
from omni_journey.spec.naming import YamlPath, describe

__all__ = ["Document", "Span"]


@dataclass(frozen=True)
class Span:
    """Where a node stands: 1-based, ``end_col`` exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


@dataclass(frozen=True)
class Document:
    """Loaded YAML data and the position of every key and value in it."""

    path: str
    lines: tuple[str, ...]
    data: Any
    value_spans: Mapping[YamlPath, Span] = field(default_factory=dict)
    key_spans: Mapping[YamlPath, Span] = field(default_factory=dict)

    def span(self, path: YamlPath, *, key: bool = False) -> Span | None:
        """The span of the key (``key=True``) or value at ``path``; where there is
        none (a missing key), the value of the nearest ancestor that exists."""
        if key and path in self.key_spans:
            return self.key_spans[path]
        for end in range(len(path), -1, -1):
            found = self.value_spans.get(path[:end])
            if found is not None:
                return found
        return None

    def at(
        self,
        path: YamlPath,
        code: str,
        message: str,
        *,
        key: bool = False,
        expected: str | None = None,
        hint: str | None = None,
        severity: Severity = "error",
    ) -> Diagnostic:
        """A diagnostic pointing at the key or value at ``path``."""
        span = self.span(path, key=key)
        return self.at_span(span, code, message, expected=expected, hint=hint, severity=severity)

    def at_span(
        self,
        span: Span | None,
        code: str,
        message: str,
        *,
        expected: str | None = None,
        hint: str | None = None,
        severity: Severity = "error",
    ) -> Diagnostic:
        line, col, length = 1, 1, 1
        source: str | None = None
        if span is not None:
            line, col = span.line, span.col
        if 1 <= line <= len(self.lines):
            source = self.lines[line - 1].replace("\t", " ")
            if span is None:
                length = max(len(source.rstrip()), 1)
            elif span.end_line == span.line and span.end_col > span.col:
                length = span.end_col - span.col
            else:
                rest = re.sub(r"\s+#.*$", "", source[col - 1 :]).rstrip()
                length = max(len(rest), 1)
            source = redact(source)
        return Diagnostic(
            path=self.path,
            line=line,
            col=col,
            code=code,
            message=message,
            expected=expected,
            hint=hint,
            severity=severity,
            length=length,
            source_line=source,
        )

    def describe(self, path: YamlPath, noun: str) -> str:
        return describe(self.data, path, noun)
