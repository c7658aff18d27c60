"""The sandboxed environment: untrusted templates cannot escape, and HTML is escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from omni_journey.render.environment import build_environment, one_line, paragraphs


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "m").mkdir(parents=True)
    (root / "m" / "email.html").write_text("<p>{{ name }}</p>")
    (root / "m" / "sms.txt").write_text("{{ name }}")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


def test_it_is_a_sandbox_with_strict_undefined(templates: Path) -> None:
    environment = build_environment(templates)
    assert isinstance(environment, SandboxedEnvironment)
    assert environment.undefined is StrictUndefined


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ items.append(1) }}",
        "{{ data.update({'a': 1}) }}",
    ],
)
def test_the_sandbox_refuses_internals_and_mutation(templates: Path, source: str) -> None:
    with pytest.raises(SecurityError):
        build_environment(templates).from_string(source).render(items=[], data={})


def test_ranges_are_capped(templates: Path) -> None:
    with pytest.raises(OverflowError):
        build_environment(templates).from_string("{{ range(10**9) | length }}").render()


def test_unknown_names_and_attributes_are_errors(templates: Path) -> None:
    environment = build_environment(templates)
    with pytest.raises(UndefinedError):
        environment.from_string("{{ nobody }}").render()
    with pytest.raises(UndefinedError):
        environment.from_string("{{ customer.first_name }}").render(customer={})
    rendered = environment.from_string('{{ customer.first_name | default("there") }}')
    assert rendered.render(customer={}) == "there"


def test_html_files_are_autoescaped_text_is_not(templates: Path) -> None:
    environment = build_environment(templates)
    name = "<script>alert(1)</script>"
    assert (
        environment.get_template("m/email.html").render(name=name)
        == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    )
    assert environment.get_template("m/sms.txt").render(name=name) == name
    assert environment.from_string("{{ name }}").render(name=name) == name


@pytest.mark.parametrize("name", ["../secret.txt", "m/../../secret.txt", "/etc/passwd"])
def test_the_loader_stays_inside_the_templates_folder(templates: Path, name: str) -> None:
    with pytest.raises(TemplateNotFound):
        build_environment(templates).get_template(name)


def test_a_symbolic_link_pointing_out_is_refused(templates: Path) -> None:
    (templates / "m" / "leak.txt").symlink_to(templates.parent / "secret.txt")
    plain = Environment(loader=FileSystemLoader(templates), autoescape=True)
    assert plain.get_template("m/leak.txt").render() == "top secret"  # what we guard against
    with pytest.raises(TemplateNotFound):
        build_environment(templates).get_template("m/leak.txt")


def test_builtin_partials_serve_projects_without_their_own(tmp_path: Path) -> None:
    environment = build_environment(tmp_path)
    assert "omni-journey" in environment.get_template("_partials/brand.html").module.name
    (tmp_path / "_partials").mkdir()
    (tmp_path / "_partials" / "brand.html").write_text("mine")
    environment = build_environment(tmp_path)
    assert environment.get_template("_partials/brand.html").render() == "mine"


def test_paragraphs_escapes_then_marks_up() -> None:
    assert str(paragraphs("a <b>\nc\n\n  \nd")) == "<p>a &lt;b&gt;<br>\nc</p>\n<p>d</p>"


def _paragraphs_with_markup(text: str) -> Markup:
    """``paragraphs`` written with Markup's own join and format (as it was)."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(
            Markup("<br>\n").join(escape(line) for line in block.split("\n"))
        )
        for block in blocks
    )


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from([*"a <>&\"'\n\t\r", "é", "{", "}", "%"]), max_size=60))
def test_paragraphs_marks_up_as_markup_would(text: str) -> None:
    made = paragraphs(text)
    assert isinstance(made, Markup)
    assert made == _paragraphs_with_markup(text)


def test_one_line() -> None:
    assert one_line(" a\n\n b \t c ") == "a b c"
