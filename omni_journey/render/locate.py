"""Turn a Jinja error into a :class:`Diagnostic` at the file and line it comes from.

Syntax errors carry their line; runtime errors (an undefined value, a sandbox refusal)
are located through the template frames Jinja puts in the traceback, innermost first,
so a problem inside a partial points at the partial. Values of ``message.yaml`` (and
of ``push.yaml`` / ``whatsapp.yaml``) are templates too: their line 1 is the line of
the value in the YAML file (or the line after ``|`` for a block).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError, UndefinedError

from omni_journey.render.budget import RenderTimeoutError
from omni_journey.spec.diagnostics import Diagnostic, quoted, redact
from omni_journey.spec.loader import Document, Span
from omni_journey.spec.naming import YamlPath

__all__ = [
    "BUILTIN_PREFIX",
    "Target",
    "classify",
    "diagnose",
    "file_document",
    "locate_line",
    "template_frame",
]

BUILTIN_PREFIX = "<built-in "


@dataclass(frozen=True)
class Target:
    """What was being rendered: a YAML value (``yaml_path`` set), a template file
    (``doc`` is that file) or a built-in variant (``label`` says which; ``doc`` is the
    message.yaml it is filled from)."""

    doc: Document
    yaml_path: YamlPath | None = None
    label: str | None = None


def file_document(path: Path, shown: str) -> Document:
    """A template file as a :class:`Document`, so diagnostics can quote its lines."""
    try:
        lines = tuple(path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        lines = ()
    return Document(path=shown, lines=lines, data=None)


def template_frame(error: BaseException) -> tuple[str, int] | None:
    """(file name, line) of the innermost template frame in ``error``'s traceback; for
    a ``RecursionError``, the call that leads back into the loop (the frame just before
    the first one that comes back: the include or the macro call)."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    if isinstance(error, RecursionError):
        seen = set()
        for index, frame in enumerate(frames):
            if frame in seen:
                return frames[index - 1]
            seen.add(frame)
    return frames[-1] if frames else None


def classify(error: BaseException) -> tuple[str, str, str | None]:
    """The code, message and hint for ``error``."""
    if isinstance(error, RecursionError):  # {% include %} of itself, a macro calling itself
        return (
            "render-failed",
            "rendering never ends: this reaches itself again (an include, import, extends "
            "or macro that leads back here)",
            "remove the include or call that leads back to this template",
        )
    if isinstance(error, UnicodeDecodeError):  # a template file saved in another encoding
        return (
            "template-syntax",
            f"the file is not UTF-8 text (byte {error.start + 1})",
            "save the file as UTF-8 in your editor",
        )
    if isinstance(error, TemplateSyntaxError):
        return (
            "template-syntax",
            f"this is not valid Jinja: {error.message}",
            "check that every {{ has its }}, every {% its %}, and every block its end tag",
        )
    if isinstance(error, TemplateNotFound):
        return (
            "template-not-found",
            f"the template {quoted(error.name, 80)} does not exist in the templates folder",
            'paths start at templates/, like "_partials/brand.html"',
        )
    if isinstance(error, SecurityError):
        return (
            "unsafe-template",
            f"the sandbox refused this: {error.message}",
            "templates may read values but not names starting with _ nor change data",
        )
    if isinstance(error, RenderTimeoutError):
        return (
            "render-timeout",
            f"this message did not finish rendering: {error}",
            "a loop or a call that runs too long for some data; loop over short lists "
            "(recommendations, an order's lines), never over large ranges",
        )
    if isinstance(error, MemoryError):  # RenderTooLargeError, or a real one
        return (
            "render-too-large",
            "this message would be too large: "
            + (str(error) if str(error) else "out of memory while rendering"),
            "repeat, pad and format with small numbers: 'a' * n, '{:>n}', center(n), "
            "indent(n) and loops are limited by the size allowed for one message",
        )
    if isinstance(error, UndefinedError):
        return (
            "undefined-variable",
            f"a value this template reads is not there: {error.message}",
            'give optional values a default: {{ customer.first_name | default("there") }}, '
            "or test them: {% if event.coupon is defined %}",
        )
    detail = redact(str(error)).strip()
    return (
        "render-failed",
        f"rendering failed: {type(error).__name__}" + (f": {detail}" if detail else ""),
        None,
    )


def _line_span(doc: Document, line: int) -> Span | None:
    if not 1 <= line <= len(doc.lines):
        return None
    text = doc.lines[line - 1]
    col = len(text) - len(text.lstrip()) + 1
    return Span(line, col, line, max(len(text.rstrip()) + 1, col + 1))


def _in_yaml_value(doc: Document, path: YamlPath, line: int) -> Span | None:
    """Where line ``line`` of the template in the YAML value at ``path`` stands."""
    span = doc.span(path)
    if span is None:
        return None
    first = doc.lines[span.line - 1][span.col - 1 :] if span.line <= len(doc.lines) else ""
    if first[:1] in ("|", ">"):  # a block: the text starts on the next line
        return _line_span(doc, span.line + line) or span
    return span


def locate_line(target: Target, line: int) -> Span | None:
    """Where line ``line`` of the template ``target`` is in its file."""
    if target.yaml_path is not None:
        return _in_yaml_value(target.doc, target.yaml_path, line)
    return _line_span(target.doc, line)


def diagnose(
    error: BaseException, target: Target, templates_dir: Path, shown_dir: str
) -> Diagnostic:
    """The diagnostic for ``error``, raised while rendering ``target``; files under
    ``templates_dir`` are shown under ``shown_dir``."""
    code, message, hint = classify(error)
    if isinstance(error, TemplateSyntaxError):
        where: tuple[str | None, int] | None = (error.filename, error.lineno or 1)
    else:
        where = template_frame(error)
    filename, line = where if where is not None else (None, 1)
    if filename and not filename.startswith("<"):
        try:
            relative = Path(os.path.relpath(filename, templates_dir)).as_posix()
        except ValueError:  # another drive on Windows
            relative = Path(filename).name
        doc = file_document(Path(filename), f"{shown_dir}/{relative}")
        return doc.at_span(_line_span(doc, line), code, message, hint=hint)
    built_in = None
    if filename and filename.startswith(BUILTIN_PREFIX):
        built_in = filename[len(BUILTIN_PREFIX) : -1]
    elif target.label and target.yaml_path is None:
        built_in = target.label
    if built_in is not None:
        return target.doc.at((), code, f"{message} (in the built-in {built_in})", hint=hint)
    return target.doc.at_span(locate_line(target, line), code, message, hint=hint)
