"""Problems found in marketer files, located and explained, and how they print.

A :class:`Diagnostic` points at ``path:line:col`` (1-based), carries a stable ``code``
that tests and tools rely on, says what was expected and suggests a fix::

    journeys/cart_abandon.yaml:14:5: error[unknown-field] step "remind" has no setting "chanel"
       14 |     chanel: email
          |     ^^^^^^
      expected: one of channel, id, message, name, next, send_at, type
      hint: did you mean "channel"?

Nothing here prints an email address, a phone number, a token or a secret: values
quoted in messages go through :func:`quoted`, source lines through :func:`redact`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CODES",
    "STORE_CODES",
    "Diagnostic",
    "Severity",
    "did_you_mean",
    "format_diagnostics",
    "one_of",
    "quoted",
    "redact",
    "summary",
]

Severity = Literal["error", "warning"]

# Every code a diagnostic may carry, with what it means. Stable: tests, docs and
# scripts rely on them; add codes, never rename one.
CODES: Mapping[str, str] = {
    "yaml-syntax": "the file is not valid YAML",
    "duplicate-key": "a key appears twice in one mapping",
    "yaml-1.1-trap": "an unquoted value that YAML 1.1 tools read differently",
    "unknown-field": "a setting this object does not have",
    "missing-field": "a required setting is missing",
    "invalid-value": "a value of the wrong type, form or range",
    "invalid-duration": 'not a duration like "90m", "2h", "3d" or "1w"',
    "invalid-time": 'not a 24-hour clock time like "09:30"',
    "invalid-percent": 'not a percentage like "10%", or out of range',
    "unknown-step-type": "a step type that does not exist",
    "unknown-condition": "a condition of no known kind",
    "unknown-trigger": "a trigger of no known kind",
    "key-mismatch": "the key differs from the file name",
    "duplicate-step-id": "two steps share one id",
    "unknown-step": "a reference to a step that does not exist",
    "unreachable-step": "a step no customer can ever reach",
    "loop-without-wait": "steps that loop with no delay or wait_for on the loop",
    "unknown-segment": "a reference to a segment that does not exist",
    "unknown-message": "a message with no folder under templates/",
    "unknown-event": "an event name nothing sends",
    "segment-cycle": "segments that refer to each other in a circle",
    "unknown-journey": "a journey key with no file under journeys/",
}

# Codes only the store can tell (what customers in flight wait on): reported by
# ``validate`` when it sees a store, and by a run that refuses to publish a version.
STORE_CODES: Mapping[str, str] = {
    "removed-step-in-use": "a removed step customers still wait at, with nowhere to go",
}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d ()./-]{5,}\d|(?<![\w.])\d{9,}(?![\w.])")
_USERINFO = re.compile(r"(?<=://)[^/\s@:]+:[^/\s@]+(?=@)")
_SENSITIVE_NAME = (
    r"(?:token|secret|passw(?:or)?d|api[_-]?key|authorization|auth|bearer|signature|credentials?)"
)
# ``token: abc``, ``"api_key": "abc"``, ``?token=abc``, ``Authorization: Bearer abc``
_SECRET_VALUE = re.compile(
    r"(?i)(?:\b[\w-]*" + _SENSITIVE_NAME + r"[\w-]*['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic)\s+)?"
    r"|\b(?:bearer|basic)\s+)"
    r"(?P<value>[^\s'\",}&]+)"
)


def redact(text: str) -> str:
    """Mask emails, phone numbers, URL credentials and secret-looking values.

    Masks keep the length of what they hide, so carets under the line still line up.
    """

    def mask(match: re.Match[str]) -> str:
        return "*" * len(match.group(0))

    def mask_value(match: re.Match[str]) -> str:
        keep = match.start("value") - match.start()
        return match.group(0)[:keep] + "*" * len(match.group("value"))

    for pattern in (_EMAIL, _PHONE, _USERINFO):
        text = pattern.sub(mask, text)
    return _SECRET_VALUE.sub(mask_value, text)


def quoted(value: object, limit: int = 40) -> str:
    """A value as a message may show it: in double quotes, shortened, never PII."""
    text = str(value)
    if redact(text) != text:
        return '"***"'
    text = text.replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"'


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """The closest choice to a misspelt ``word``, if one is close enough."""
    if not isinstance(word, str):
        return None
    options = sorted(set(choices))
    for option in options:
        if option.lower() == word.lower() and option != word:
            return option
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def one_of(choices: Iterable[str], limit: int = 12) -> str:
    """``expected:`` text for a choice among names (the first ``limit`` of them)."""
    names = list(dict.fromkeys(choices))
    if len(names) == 1:
        return names[0]
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f" (and {len(names) - limit} more)"
    return "one of " + shown


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one file, at a 1-based ``line`` and ``col``.

    ``length`` is how many characters the caret underlines; ``source_line`` the
    (redacted) line of the file it points into, when there is one.
    """

    path: str
    line: int
    col: int
    code: str
    message: str
    expected: str | None = None
    hint: str | None = None
    severity: Severity = "error"
    length: int = 1
    source_line: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.col, self.code, self.message)

    def __lt__(self, other: Diagnostic) -> bool:
        return self.sort_key() < other.sort_key()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        """The text a marketer reads: location, code, message, snippet, expected, hint."""
        lines = [f"{self.path}:{self.line}:{self.col}: {self.severity}[{self.code}] {self.message}"]
        if self.source_line is not None:
            lines.append(f"{self.line:>5} | {self.source_line}".rstrip())
            lines.append(" " * 5 + " | " + " " * (self.col - 1) + "^" * max(self.length, 1))
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (``omni-journey validate --format json``)."""
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "end_col": self.col + max(self.length, 1),
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "expected": self.expected,
            "hint": self.hint,
        }


def format_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    """Every diagnostic, sorted, separated by blank lines."""
    return "\n\n".join(d.format() for d in sorted(diagnostics))


def summary(diagnostics: Iterable[Diagnostic], files: int) -> str:
    """The one line after the list: ``3 errors, 1 warning in 2 of 14 files``."""
    found = list(diagnostics)
    errors = sum(d.is_error for d in found)
    warnings = len(found) - errors
    checked = f"{files} file{'s' if files != 1 else ''}"
    if not found:
        return f"checked {checked}: no problems"
    with_problems = len({d.path for d in found})
    counts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
    if warnings:
        counts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{', '.join(counts)} in {with_problems} of {checked}"
