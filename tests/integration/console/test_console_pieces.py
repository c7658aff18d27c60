"""The console's pieces without a server: the escaping builder, and the diagram of the
repository's own journeys (every step a box, every outcome an edge)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markupsafe import Markup

from omni_journey.console.counts import COUNT_CODE, Chip
from omni_journey.console.diagram import journey_svg
from omni_journey.console.html import el, join, page
from omni_journey.engine.compile import compile_journey
from omni_journey.spec.project import load_project

ROOT = Path(__file__).resolve().parents[3]
JOURNEYS = load_project(ROOT).require_valid().journeys


def test_the_builder_escapes_every_value_and_refuses_odd_names() -> None:
    made = el("a", {"href": '"><script>x</script>', "title": "<b>"}, "<i>", 3, None, ["&"])
    assert str(made) == (
        '<a href="&#34;&gt;&lt;script&gt;x&lt;/script&gt;" title="&lt;b&gt;">&lt;i&gt;3&amp;</a>'
    )
    assert str(join(Markup("<br>"), "<br>")) == "<br>&lt;br&gt;"
    for tag, attrs in (("a onclick", {}), ("a", {"x onload": "1"}), ("a", {'x"': "1"})):
        with pytest.raises(ValueError, match="not an"):
            el(tag, attrs)
    whole = page("<title>", el("p", None, "<p>"))
    assert "<title>&lt;title&gt; · omni-journey console</title>" in whole
    assert '<meta name="viewport"' in whole and "<script" not in whole


@pytest.mark.parametrize("key", sorted(JOURNEYS))
def test_every_repository_journey_is_drawn_with_every_step_and_edge(key: str) -> None:
    spec = JOURNEYS[key]
    compiled = compile_journey(spec, 0)
    chips = {
        s: [Chip("entered", 2, "entered"), Chip("waiting", 0, "waiting")] for s in compiled.order
    }
    svg = str(journey_svg(spec, chips, lambda step, chip: f"/x?step={step}&count={chip.code}"))
    for step_id in compiled.order:
        assert f'<g id="step-{step_id}">' in svg
        assert f'href="/x?step={step_id}&amp;count=entered"' in svg
        assert f'href="/x?step={step_id}&amp;count=waiting"' not in svg  # zero: no link
    targets = {(s, t) for s in compiled.order for t in compiled.steps[s].outcomes.values()}
    assert svg.count('class="edge"') == len(targets)
    assert ("journey ends" in svg) == any(t is None for _, t in targets)
    width, height = map(float, re.search(r'viewBox="0 0 (\S+) (\S+)"', svg).groups())  # type: ignore[union-attr]
    assert 0 < width < 1200 and 0 < height < 200 * len(compiled.order)


def test_count_codes() -> None:
    for code in (
        "entered",
        "waiting",
        "converted",
        "sent:email",
        "skipped:no_consent",
        "refused:re_entry",
    ):
        assert COUNT_CODE.match(code), code
    for code in ("", "sent", "sent:", "bogus", "skipped:a b", "entered:x"):
        assert not COUNT_CODE.match(code), code
