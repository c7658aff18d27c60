"""The render budget: a template that only some data makes endless or huge fails that
message with ``render-timeout`` / ``render-too-large`` at its line, in well under a
second and without building the huge value; other templates render exactly as before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

import omni_journey.render.environment as environment_module
import omni_journey.render.library as library_module
from omni_journey.render import (
    CHANNELS,
    RenderContext,
    RenderError,
    RenderOptions,
    TemplateRenderer,
    customer_profile,
    sample_context,
)
from tests.unit.render.conftest import CART, Write

ROOT = Path(__file__).resolve().parents[3]
SMALL = RenderOptions(render_timeout_seconds=0.3, render_max_chars=100_000)

# each refused before it is built, for the customer whose first name is "Bomb"
TOO_LARGE = {
    "string times n": "{{ 'a' * 300000000 }}",
    "list times n": "{{ ([1] * 300000000) | length }}",
    "power": "{{ 10 ** 300000000 }}",
    "format width": "{{ '{:>300000000}'.format('x') }}",
    "format nested width": "{{ '{:>{}}'.format('x', 300000000) }}",
    "percent width": "{{ '%300000000s' % 'x' }}",
    "percent star": "{{ '%*s' % (300000000, 'x') }}",
    "format filter": "{{ '%300000000s' | format('x') }}",
    "center": "{{ 'x' | center(300000000) }}",
    "indent": "{{ ('a\\n' * 10) | indent(300000000) }}",
    "batch fill": "{{ [1] | batch(300000000, 'x') | list | length }}",
    "slice": "{{ [1] | slice(300000000) | list | length }}",
    "ljust": "{{ 'x'.ljust(300000000) }}",
    "zfill": "{{ 'x'.zfill(300000000) }}",
    "expandtabs": "{{ ('\t' * 10).expandtabs(300000000) }}",
    "replace": "{{ ('a' * 5000).replace('a', 'b' * 5000) }}",
    "replace filter": "{{ ('a' * 5000) | replace('a', 'b' * 5000) }}",
    "join": "{{ ('b' * 5000).join('a' * 5000) }}",
    "doubling in a namespace": (
        "{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "nested lists in a namespace": (
        "{% set ns = namespace(s=['ab']) %}{% for i in range(60) %}"
        "{% set ns.s = [ns.s, ns.s] %}{% endfor %}{{ ns.s | length }}"
    ),
    "squaring in a namespace": (
        "{% set ns = namespace(n=3) %}{% for i in range(60) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}"
    ),
    "recursive doubling macro": (
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}"
        "{{ f('ab', 60) }}"
    ),
    "loop into a set block": (
        "{% set x %}{% for i in range(100000) %}{{ 'a' * 50 }}{% endfor %}{% endset %}"
        "{{ x | length }}"
    ),
    "a long list many times, printed": "{{ [[1] * 10000] * 10000 }}",
    "a long list many times, joined": "{{ ([[1] * 10000] * 10000) | join }}",
    "a long list many times, summed": "{{ ([[1] * 10000] * 10000) | sum(start=[]) }}",
    "a long list many times, in a %": "{{ '%s' % ([[1] * 10000] * 10000,) }}",
    "a long list many times, formatted": "{{ '{}'.format([[1] * 10000] * 10000) }}",
    "a long list many times, concatenated": "{{ ([[1] * 10000] * 10000) ~ '' }}",
    "a long list many times, counted": "{{ ([[1] * 10000] * 10000).count(1) }}",
    "nested ranges": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
}


def _bomb_renderer(write_templates: Write, bomb: str, options: RenderOptions) -> TemplateRenderer:
    root = write_templates(
        {
            "m/message.yaml": CART,
            "m/email.html": (
                '<p>Hello</p>\n{% if customer.first_name == "Bomb" %}\n' + bomb + "\n{% endif %}\n"
            ),
        }
    )
    return TemplateRenderer(root, secret_key="test-secret", options=options)


def _context(name: str) -> RenderContext:
    return RenderContext(customer_profile("c-1", {"first_name": name}), event={"name": "Serum"})


@pytest.mark.parametrize("bomb", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_a_value_too_large_is_refused_at_its_line(write_templates: Write, bomb: str) -> None:
    renderer = _bomb_renderer(write_templates, bomb, SMALL)
    assert renderer.render("m", "email", _context("Ana")).html  # type: ignore[union-attr]

    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        renderer.render("m", "email", _context("Bomb"))
    assert time.monotonic() - started < 1.0

    assert caught.value.code == "render-too-large"
    diagnostic = caught.value.diagnostic
    assert (Path(diagnostic.path).name, diagnostic.line) == ("email.html", 3)
    assert "larger than 100,000 characters" in diagnostic.message
    assert diagnostic.hint


def test_a_loop_past_the_time_budget_fails_with_render_timeout(write_templates: Write) -> None:
    slow = RenderOptions(render_timeout_seconds=0.2, render_max_chars=100_000_000)
    renderer = _bomb_renderer(write_templates, TOO_LARGE["nested ranges"], slow)

    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        renderer.render("m", "email", _context("Bomb"))
    assert 0.2 <= time.monotonic() - started < 2.0

    assert caught.value.code == "render-timeout"
    assert caught.value.diagnostic.line == 3
    assert caught.value.reason == (
        "this message did not finish rendering: rendering took longer than 0.2 s"
    )
    # the budget is per message: the next one starts afresh
    assert renderer.render("m", "email", _context("Ana"))


def test_lipsum_is_gone_and_range_stays_capped(write_templates: Write) -> None:
    renderer = _bomb_renderer(write_templates, "{{ lipsum(n=100000) }}", SMALL)
    with pytest.raises(RenderError) as caught:
        renderer.render("m", "email", _context("Bomb"))
    assert caught.value.code == "undefined-variable"


def test_validate_reports_the_budget_codes(write_templates: Write) -> None:
    from omni_journey.render import check_message

    root = write_templates(
        {"m/message.yaml": CART, "m/email.html": "<p>Hi</p>\n" + TOO_LARGE["string times n"]}
    )
    found = [(d.line, d.code) for d in check_message(root, "m") if d.is_error]
    assert found == [(2, "render-too-large")]


def test_the_budget_comes_from_the_settings() -> None:
    from omni_journey.settings import Settings

    options = RenderOptions.from_settings(
        Settings(render_timeout_seconds=2.5, render_max_chars=50_000)  # type: ignore[call-arg]
    )
    assert (options.budget.timeout_seconds, options.budget.max_chars) == (2.5, 50_000)
    assert RenderOptions().budget.max_chars == 1_000_000
    with pytest.raises(ValueError):
        RenderOptions(render_timeout_seconds=0)


def _all_renders(renderer: TemplateRenderer) -> dict[tuple[str, str, str | None, int], str]:
    out = {}
    for key in renderer.message_keys():
        for locale in [None, *renderer.folder(key).locales]:
            for channel in CHANNELS:
                contexts = (
                    sample_context(locale),
                    sample_context(locale, attributes=False),
                    sample_context(locale, recommendations=False),
                )
                for index, context in enumerate(contexts):
                    try:
                        out[key, channel, locale, index] = repr(
                            renderer.render(key, channel, context)
                        )
                    except RenderError as error:
                        out[key, channel, locale, index] = f"error: {error}"
    return out


def test_the_shipped_templates_render_byte_for_byte_as_in_the_plain_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budgeted = _all_renders(TemplateRenderer(ROOT / "templates", secret_key="test-secret"))
    monkeypatch.setattr(environment_module, "BudgetedSandbox", ImmutableSandboxedEnvironment)
    plain = TemplateRenderer(ROOT / "templates", secret_key="test-secret")
    assert type(plain.environment) is ImmutableSandboxedEnvironment
    assert library_module.build_environment is environment_module.build_environment
    assert len(budgeted) > 100
    assert _all_renders(plain) == budgeted
