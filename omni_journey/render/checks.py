"""``validate`` for templates: every problem of a message, found before anything is sent.

For each message: files that look like misspelt variants; Jinja syntax and names that
are not in the render context, in every template and every YAML value (with the line);
then every channel rendered for every locale with the sample context, which runs the
output checks (subject length, SMS parts, push size, text part); HTML attribute values
written without quotes are warned about. Two more renders per
channel find what only some customers would hit: a customer attribute used without a
default, and a template that fails when there are no recommendations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from omni_journey.render.attributes import unquoted_attributes
from omni_journey.render.context import CONTEXT_NAMES, SAMPLE_ATTRIBUTES, sample_context
from omni_journey.render.errors import RenderError
from omni_journey.render.library import TemplateLibrary
from omni_journey.render.locate import Target, classify, file_document, locate_line
from omni_journey.render.rendered import CHANNELS
from omni_journey.render.sandbox import too_deep
from omni_journey.render.shapes import PUSH_FIELDS, WHATSAPP_FIELDS
from omni_journey.render.source import MessageFolder
from omni_journey.render.template_renderer import TemplateRenderer
from omni_journey.render.variables import (
    EVENT_PROPERTIES,
    OptionalRead,
    optional_reads,
    read_column,
)
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of, quoted
from omni_journey.spec.loader import Document, Span
from omni_journey.spec.naming import YamlPath

__all__ = ["check_folder", "check_partials", "finish"]

_MISSING_NAME = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined")


def _strings(data: Any, path: YamlPath = ()) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))


def _bound(tree: nodes.Template) -> set[str]:
    """Every name the template binds somewhere: imports, macros, set, loop variables.

    Jinja's own analysis scopes blocks apart, so ``{% import ... as brand %}`` at the top
    would count as undeclared inside ``{% block %}``; the sample render still catches
    a name used where it is really not bound."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {n.target for n in tree.find_all(nodes.Import)}
    names |= {n.name for n in tree.find_all(nodes.Macro)}
    for node in tree.find_all(nodes.FromImport):
        names |= {alias if isinstance(alias, str) else alias[1] for alias in node.names}
    return names


def _unknown_names(
    renderer: TemplateLibrary,
    source: str,
    allowed: frozenset[str],
    target: Target,
    name: str | None,
) -> list[Diagnostic]:
    """Syntax errors and names outside ``allowed`` in one template ``source``."""
    environment = renderer.environment
    try:
        tree = environment.parse(source, name=name, filename=None)
        # the analysis compiles: it finds what parsing does not ({% extends %} in a block)
        undeclared = meta.find_undeclared_variables(tree) - _bound(tree)
    except TemplateSyntaxError as error:
        return [renderer.diagnose(error, target)]
    except RecursionError:  # parsed, yet too deep for the analysis
        return [renderer.diagnose(too_deep(source, name, None), target)]
    known = allowed | set(environment.globals)
    found = []
    for unknown in sorted(undeclared - known):
        line = next(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown and n.ctx == "load"),
            1,
        )
        close = did_you_mean(unknown, known)
        found.append(
            target.doc.at_span(
                _narrowed(target, line, rf"(?<![\w.]){re.escape(unknown)}\b"),
                "unknown-variable",
                f"{quoted(unknown)} is not something templates can use here",
                expected=one_of(sorted(allowed)),
                hint=f'did you mean "{close}"?'
                if close
                else "templates see customer, event, journey, recommendations, links "
                "and (outside message.yaml) message",
            )
        )
    return found + [_optional(read, target) for read in optional_reads(tree)]


def _narrowed(target: Target, line: int, pattern: str) -> Span | None:
    """Where template line ``line`` is in its file, narrowed to the first match of
    ``pattern`` on it (the caret on the name, not the whole line)."""
    span = locate_line(target, line)
    if span is None or span.line > len(target.doc.lines):
        return span
    match = re.compile(pattern).search(target.doc.lines[span.line - 1], span.col - 1)
    return Span(span.line, match.start() + 1, span.line, match.end() + 1) if match else span


def _optional(read: OptionalRead, target: Target) -> Diagnostic:
    """A warning for one value some customers or events lack, read without a default,
    the caret on the variable."""
    span = locate_line(target, read.line)
    if span is not None and span.line <= len(target.doc.lines):
        text = target.doc.lines[span.line - 1]
        columns = read_column(text, read, span.col - 1)
        if columns is not None:
            span = Span(span.line, columns[0] + 1, span.line, columns[1] + 1)
    fix = (
        f'give it a default: {{{{ {read.text} | default("...") }}}}, or test it: '
        f"{{% if {read.text} is defined %}}"
    )
    if read.root == "customer":
        message = (
            f"customers without {quoted(read.name)} are skipped: {read.text} is an "
            "attribute, and not every profile has it"
        )
        return target.doc.at_span(span, "optional-attribute", message, hint=fix, severity="warning")
    declared = [name for name, (_, optional) in EVENT_PROPERTIES.items() if read.name in optional]
    where = f"optional in {', '.join(declared)}" if declared else "no standard event requires it"
    message = (
        f"events without {quoted(read.name)} skip the customer: {read.text} may be missing "
        f"({where}; docs/data-formats.md)"
    )
    return target.doc.at_span(
        span, "optional-event-property", message, hint=fix, severity="warning"
    )


def _static(renderer: TemplateLibrary, folder: MessageFolder) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    with_message = CONTEXT_NAMES
    without_message = CONTEXT_NAMES - {"message"}
    documents: dict[str, tuple[Document, frozenset[str]]] = {}
    for locale in [None, *folder.locales]:
        content, _ = renderer.content(folder, locale)
        for doc in content.documents if content is not None else ():
            documents[doc.path] = (doc, without_message)
    for (base, _, ext), name in sorted(folder.files.items(), key=lambda item: item[1]):
        if ext in ("html", "txt"):
            file = folder.directory / name
            target = Target(file_document(file, folder.show(name)))
            source = _source(file, target.doc)
            if isinstance(source, Diagnostic):
                found.append(source)
                continue
            found += _unknown_names(renderer, source, with_message, target, f"{folder.key}/{name}")
            if ext == "html":
                found += _unquoted(source, target.doc)
        elif base in ("push", "whatsapp"):
            fields = PUSH_FIELDS if base == "push" else WHATSAPP_FIELDS
            what = "push notification" if base == "push" else "WhatsApp message"
            variant, problems = renderer.variant(folder, name, fields, what)
            found += problems
            if variant is not None:
                documents[variant.path] = (variant, with_message)
    for doc, allowed in documents.values():
        for path, value in _strings(doc.data):
            found += _unknown_names(renderer, value, allowed, Target(doc, yaml_path=path), None)
    return found


def _source(file: Path, doc: Document) -> str | Diagnostic:
    """A template file's text, or a ``template-syntax`` error when it is not UTF-8 (as
    the renderer reads it: Latin-1, UTF-16, binary junk)."""
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        code, message, hint = classify(error)  # as the renderer reports it, so one
        return doc.at_span(None, code, message, hint=hint)  # diagnostic, not two
    except OSError as error:
        return doc.at_span(
            None, "template-not-found", f"the file cannot be read ({error.strerror})"
        )


def _unquoted(source: str, doc: Document) -> list[Diagnostic]:
    """A warning for each HTML attribute whose value is written without quotes."""
    return [
        doc.at_span(
            Span(line, col, line, col + len(attribute) + 1),
            "unquoted-attribute",
            f"the value of {quoted(attribute)} has no quotes: a value with a space in it "
            "(from customer data, say) ends the value and adds attributes of its own",
            hint=f'quote it: {attribute}="{{{{ ... }}}}"',
            severity="warning",
        )
        for line, col, attribute in unquoted_attributes(source)
    ]


def _missing_name(error: RenderError) -> str | None:
    match = _MISSING_NAME.search(error.reason)
    return (match.group(1) or match.group(2)) if match else None


def _as_warning(error: RenderError, code: str, message: str, hint: str) -> Diagnostic:
    d = error.diagnostic
    return Diagnostic(
        path=d.path,
        line=d.line,
        col=d.col,
        code=code,
        message=message,
        hint=hint,
        severity="warning",
        length=d.length,
        source_line=d.source_line,
    )


def _render_passes(
    renderer: TemplateRenderer,
    key: str,
    channel: str,
    locale: str | None,
    covered: set[tuple[str, int]],
) -> list[Diagnostic]:
    rendered, found = renderer.problems(key, channel, sample_context(locale))
    if rendered is None or any(p.is_error for p in found):
        return found
    try:
        renderer.render(key, channel, sample_context(locale, attributes=False))
    except RenderError as error:
        name = _missing_name(error)
        known = name in SAMPLE_ATTRIBUTES
        if (error.diagnostic.path, error.diagnostic.line) in covered:
            pass  # the line's reads are warned about one by one already
        else:
            found.append(
                _as_warning(
                    error,
                    "optional-attribute",
                    f"customers without {quoted(name)} are skipped: this has no default for it"
                    if known
                    else f"customers without some attribute are skipped ({error.reason})",
                    f"give it a default: {{{{ customer.{name if known else 'first_name'} "
                    '| default("...") }}',
                )
            )
    try:
        renderer.render(key, channel, sample_context(locale, recommendations=False))
    except RenderError as error:
        found.append(
            _as_warning(
                error,
                "empty-recommendations",
                f"customers with no recommendations are skipped ({error.reason})",
                "test the list first: {% if recommendations %} ... {% endif %}",
            )
        )
    return found


def check_folder(renderer: TemplateRenderer, key: str) -> list[Diagnostic]:
    """Every problem of message ``key`` (unsorted; may repeat across locales)."""
    try:
        folder = renderer.folder(key)
    except RenderError as error:
        return [error.diagnostic]
    found: list[Diagnostic] = []
    for name, suggestion in folder.misspelt():
        found.append(
            Diagnostic(
                path=folder.show(name),
                line=1,
                col=1,
                code="unknown-template-file",
                message=f"{quoted(name)} is not a file omni-journey reads",
                expected=f"a variant file such as {suggestion}",
                hint=f'did you mean "{suggestion}"?',
                severity="warning",
            )
        )
    found += _static(renderer, folder)
    covered = {(d.path, d.line) for d in found if d.code == "optional-attribute"}
    for locale in [None, *folder.locales]:
        content, problems = renderer.content(folder, locale)
        found += problems
        if content is None or any(p.is_error for p in problems):
            continue
        for channel in CHANNELS:
            found += _render_passes(renderer, key, channel, locale, covered)
    return found


def check_partials(renderer: TemplateLibrary) -> list[Diagnostic]:
    """Syntax errors and unknown names in ``templates/_partials/``, used or not."""
    partials = renderer.templates_dir / "_partials"
    found: list[Diagnostic] = []
    if not partials.is_dir():
        return found
    for path in sorted(partials.rglob("*")):
        if path.is_file() and path.suffix in (".html", ".txt"):
            relative = path.relative_to(renderer.templates_dir).as_posix()
            shown = f"{renderer.shown_dir}/{relative}"
            target = Target(file_document(path, shown))
            source = _source(path, target.doc)
            if isinstance(source, Diagnostic):
                found.append(source)
                continue
            found += _unknown_names(renderer, source, CONTEXT_NAMES, target, relative)
            if path.suffix == ".html":
                found += _unquoted(source, target.doc)
    return found


def finish(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Sorted, without repeats, without an ``undefined-variable`` where the same line
    already has an ``unknown-variable``, and without an ``optional-*`` warning where the
    sample render already fails on that value (an error, said once)."""
    unknown = {(d.path, d.line) for d in diagnostics if d.code == "unknown-variable"}
    narrowed = [_on_variable(d) if d.code == "undefined-variable" else d for d in diagnostics]
    failing = {(d.path, d.line, d.col) for d in narrowed if d.code == "undefined-variable"}
    return sorted(
        d
        for d in dict.fromkeys(narrowed)
        if not (d.code == "undefined-variable" and (d.path, d.line) in unknown)
        and not (d.code in _OPTIONAL and (d.path, d.line, d.col) in failing)  # said already
    )


_OPTIONAL = ("optional-attribute", "optional-event-property")


def _on_variable(diagnostic: Diagnostic) -> Diagnostic:
    """An ``undefined-variable`` from a render, its caret moved from the whole line to
    the value that is not there (``customer.nickname``), when the line shows it once."""
    match = _MISSING_NAME.search(diagnostic.message)
    name = (match.group(1) or match.group(2)) if match else None
    if not name or not diagnostic.source_line:
        return diagnostic
    pattern = rf"(?<![\w.])(?:[A-Za-z_]\w*\.)*{re.escape(name)}\b(?!\s*\()"
    found = list(re.finditer(pattern, diagnostic.source_line))
    if len(found) != 1:
        return diagnostic
    start, end = found[0].span()
    return replace(diagnostic, col=start + 1, length=end - start)
