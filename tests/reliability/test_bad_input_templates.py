"""A broken template is a located diagnostic from ``validate``, never a crash or a hang.

Hypothesis mutates the repository's own templates (``templates/**``: HTML, text and
YAML variants, the shared partials): Jinja syntax broken, unknown filters and tests,
loops over huge ranges, deep nesting, undefined names, a template that includes or
extends itself, sandbox escapes, binary junk, text saved as Latin-1 or UTF-16. Each
mutated folder goes through :func:`omni_journey.render.check_templates`, what
``omni-journey validate`` runs for templates, under the default render budget
(``OMNI_RENDER_TIMEOUT_SECONDS``, ``OMNI_RENDER_MAX_CHARS``): it must return, within the
budget's reach, a list of diagnostics each with a file, a line and a column, a code and
a message (or none).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_journey.render import check_templates
from omni_journey.settings import Settings
from tests.reliability.fuzz import FUZZ, fuzz_timeout

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
FILES = sorted(p for p in TEMPLATES.rglob("*") if p.is_file())
# the message whose check reads a file: its own folder; a partial, a message using it
USES_PARTIALS = "welcome"

pytestmark = fuzz_timeout(3.0)

_JINJA = st.sampled_from(
    ["{{", "}}", "{%", "%}", "{#", "{{ }}", "{% if %}", "{% endif %}", "{% endfor %}",
     "{% for x in %}", "{% block extra %}", "{% endblock %}", "{% else %}",
     "{{ customer.first_name | no_such_filter }}", "{% if x is no_such_test %}{% endif %}",
     "{{ customer.nope.deeper }}", "{{ nobody }}", "{{ event.properties.x.y.z }}",
     "{% for i in range(10**9) %}x{% endfor %}",
     "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
     "{{ 'a' * 10**9 }}", "{{ '%999999999d' % 1 }}", "{{ 'x'.center(10**9) }}",
     "{% set l = [] %}{% for i in range(9) %}{{ l.append(i) }}{% endfor %}",
     "{{ ''.__class__.__mro__ }}", "{{ self._TemplateReference__context }}",
     "{{ cycler.__init__.__globals__ }}", "{% include 'nowhere.html' %}",
     "{% include '../../etc/passwd' %}", "{% extends 'welcome/email.html' %}",
     "{% include '_partials/base.html' %}", "{% import 'welcome/email.html' as me %}",
     "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
     "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
     "{% if 1 %}" * 120 + "{% endif %}" * 120, "{{ [" * 200 + "]" * 200 + " }}",
     "{{ 1/0 }}", "{{ customer.first_name.upper(1, 2) }}", "{{ recommendations[99] }}",
     "<a href={{ customer.first_name }}>", "<img src=x onerror=alert(1)>",
     "{% raw %}", "{% endraw %}", "{{ links.unsubscribe }}", "\x00", "\u202e", "\ufeff",
     ": [", "- - -", "&a *a", "!!python/object:os.system", "subject: ", "\t", "'", '"']
)  # fmt: skip
_JUNK = st.binary(min_size=1, max_size=64)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[Path, bytes]:
    """A template file and new bytes for it."""
    path = draw(st.sampled_from(FILES))
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["insert", "replace", "delete", "duplicate", "swap"]))
        if action == "insert":
            lines.insert(at, draw(_JINJA) + draw(st.sampled_from(["\n", ""])))
        elif action == "replace" and lines[at]:
            col = draw(st.integers(0, len(lines[at]) - 1))
            lines[at] = lines[at][:col] + draw(_JINJA) + lines[at][col + 1 :]
        elif action == "delete" and len(lines) > 1:
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    mutated = "".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16",
                                     "junk"]))  # fmt: skip
    if encoding == "junk":
        data = mutated.encode() + draw(_JUNK)
    else:
        data = mutated.encode(encoding, "replace")
    return path, data


@pytest.fixture(scope="module")
def templates_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project") / "templates"
    shutil.copytree(TEMPLATES, root)
    return root


@FUZZ
@given(mutation=_mutated())
def test_a_broken_template_is_a_located_diagnostic(
    templates_copy: Path, mutation: tuple[Path, bytes]
) -> None:
    original, data = mutation
    relative = original.relative_to(TEMPLATES)
    target = templates_copy / relative
    key = relative.parts[0] if relative.parts[0] != "_partials" else USES_PARTIALS
    target.write_bytes(data)
    started = time.monotonic()
    try:
        diagnostics = check_templates(
            templates_copy, [key], settings=Settings(), shown_dir="templates"
        )  # must not raise
    finally:
        target.write_bytes(original.read_bytes())
    # the render budget bounds every render; a check renders each channel a few times
    assert time.monotonic() - started < 60, "validate took too long on a template"
    for diagnostic in diagnostics:
        assert diagnostic.path.startswith("templates/"), diagnostic
        assert diagnostic.line >= 1 and diagnostic.col >= 1, diagnostic
        assert diagnostic.code and diagnostic.message, diagnostic


def test_the_repository_templates_have_no_errors() -> None:
    """The mutations start from templates that pass: a diagnostic above is the mutation's."""
    found = check_templates(TEMPLATES, settings=Settings(), shown_dir="templates")
    assert [d for d in found if d.is_error] == []
