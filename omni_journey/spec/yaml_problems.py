"""The YAML-level problems, worded for a marketer: YAML 1.1 traps, duplicate keys,
unsupported tags and syntax errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from omni_journey.spec.diagnostics import Diagnostic, quoted
from omni_journey.spec.document import Document, Span
from omni_journey.spec.naming import YamlPath

__all__ = ["Finding", "finding_diagnostic", "syntax_diagnostic"]

_CLOCK_LIKE = re.compile(r"([0-9]{1,2}):([0-5][0-9])")


@dataclass(frozen=True)
class Finding:
    """A YAML-level problem, turned into a diagnostic once the whole data is built."""

    code: str
    path: YamlPath  # of the mapping or value concerned
    span: Span
    subject: Any
    extra: Any = None


def _trap_diagnostic(doc: Document, finding: Finding) -> Diagnostic:
    text = str(finding.subject)
    if finding.extra == "bool":
        truth = "true" if text.lower() in ("y", "yes", "on") else "false"
        return doc.at_span(
            finding.span,
            "yaml-1.1-trap",
            f"unquoted {text} means {truth} to YAML 1.1 tools but is text in YAML 1.2",
            expected=f'true or false for a yes/no setting, "{text}" in quotes for text',
            hint=f'write {truth} if you mean {truth}, or "{text}" if you mean the word',
        )
    if finding.extra == "sexagesimal":
        clock = _CLOCK_LIKE.fullmatch(text)
        if clock and int(clock.group(1)) < 24:
            fixed = f"{int(clock.group(1)):02d}:{clock.group(2)}"
            return doc.at_span(
                finding.span,
                "yaml-1.1-trap",
                f"unquoted {text} is a number (base 60) to YAML 1.1 tools, not a time",
                expected='a time in quotes, like "09:30"',
                hint=f'write "{fixed}"',
            )
        return doc.at_span(
            finding.span,
            "yaml-1.1-trap",
            f"unquoted {text} is a number (base 60) to YAML 1.1 tools",
            expected="a value in quotes",
            hint=f'write "{text}"',
        )
    return doc.at_span(
        finding.span,
        "yaml-1.1-trap",
        f"unquoted {text} is an octal number to YAML 1.1 tools and a decimal one in YAML 1.2",
        expected="a number without a leading zero, or text in quotes",
        hint=f'write "{text}" if it is a code, or {text.lstrip("0") or "0"} if it is a number',
    )


def finding_diagnostic(doc: Document, noun: str, finding: Finding) -> Diagnostic:
    """The diagnostic of one problem the loader noted."""
    if finding.code == "duplicate-key":
        owner = doc.describe(finding.path, noun)
        return doc.at_span(
            finding.span,
            "duplicate-key",
            f"{owner} sets {quoted(finding.subject)} twice (first on line {finding.extra})",
            expected="each key once",
            hint="keep one of them: other YAML tools silently keep only the last",
        )
    if finding.code == "yaml-1.1-trap":
        return _trap_diagnostic(doc, finding)
    if finding.subject == "<<":
        return doc.at_span(
            finding.span,
            "yaml-syntax",
            "a merge key (<<) must refer to a mapping",
            expected="<<: *anchor_of_a_mapping",
            hint="point << at an anchored mapping, or write the keys out",
        )
    return doc.at_span(
        finding.span,
        "yaml-syntax",
        f"the YAML tag {quoted(finding.subject)} is not supported here",
        expected="plain values: text, numbers, true/false, lists and mappings",
        hint="remove the tag (the word starting with !)",
    )


# (what the parser says, what we say instead, how to fix it)
_SYNTAX_PROBLEMS = (
    (
        "mapping values are not allowed",
        'an unquoted value contains ": "',
        "put the value in quotes, or check the indentation of this line",
    ),
    ("found character '\\t'", "a tab character", "indent with spaces, not tabs"),
    ("could not find expected ':'", "a key without a colon", "write key: value"),
    (
        "expected <block end>",
        "this line is indented differently from the lines above it",
        "line it up with the keys it belongs with",
    ),
    (
        "did not find expected key",
        "this line is indented differently from the lines above it",
        "line it up with the keys it belongs with",
    ),
    (
        "did not find expected '-'",
        "a list item without its dash",
        'start every item with "- " at the same indentation',
    ),
    (
        "found undefined alias",
        "an alias (*name) with no anchor (&name) before it",
        "define the anchor before using it, or write the value out",
    ),
    (
        "expected a single document",
        "a second document (---) in the file",
        "put one journey or segment in each file",
    ),
    (
        "while scanning a quoted scalar",
        "a quoted value is never closed",
        "add the closing quote",
    ),
    (
        "found unexpected end of stream",
        "the file ends in the middle of a value",
        "close the quote or bracket that is still open",
    ),
    (
        "expected ',' or ']'",
        "a list in [brackets] is not closed, or an item needs quotes",
        "close the list with ], and put items containing : in quotes",
    ),
    (
        "expected ',' or '}'",
        "a mapping in {braces} is not closed, or a value needs quotes",
        "close the mapping with }, and put values containing : or , in quotes",
    ),
    (
        "found unhashable key",
        "a key that is a list or a mapping",
        "use a plain word as the key",
    ),
)


def syntax_diagnostic(path: str, lines: tuple[str, ...], error: YAMLError) -> Diagnostic:
    """Where and why ruamel.yaml could not parse the file, in plain words."""
    doc = Document(path=path, lines=lines, data=None)
    mark = None
    problem = str(error)
    context = ""
    if isinstance(error, MarkedYAMLError):
        context = str(error.context or "")
        problem = str(error.problem or context or "invalid YAML")
        mark = error.problem_mark or error.context_mark
        # Past the end of the file, the place the construct began says more.
        if error.context_mark is not None and (mark is None or mark.line >= len(lines)):
            mark = error.context_mark
    span = None
    if mark is not None:
        line = min(mark.line + 1, max(len(lines), 1))
        col = mark.column + 1 if mark.line < len(lines) else 1
        span = Span(line, col, line, col + 1)
    full = f"{context} {problem}"
    said, hint = next(
        ((message, fix) for needle, message, fix in _SYNTAX_PROBLEMS if needle in full),
        (
            re.sub(r"\s+", " ", problem).strip(),
            "check the indentation and the quotes on this line and the one above",
        ),
    )
    return doc.at_span(
        span,
        "yaml-syntax",
        f"this is not valid YAML: {said}",
        expected="key: value mappings and - lists, indented with spaces",
        hint=hint,
    )
