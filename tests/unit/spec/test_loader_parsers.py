"""The YAML loader reads through ruamel.yaml's C parser when it can: wherever both
parsers accept a text, the document (data, every key and value position) and the
findings must be those of the pure-Python round-trip parser, which reads whatever the
C parser refuses; for well-formed YAML, the two must agree on everything."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml.error import ReusedAnchorWarning

from omni_journey.spec import loader
from omni_journey.spec.loader import Loaded, parse_yaml

ROOT = Path(__file__).resolve().parents[3]


def _view(loaded: Loaded) -> tuple[Any, ...]:
    doc = loaded.document
    return (
        None if doc is None else (doc.data, doc.value_spans, doc.key_spans, doc.lines),
        [d.format() for d in loaded.diagnostics],
    )


def _pure(text: str) -> Loaded:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "_compose_fast", lambda _text: None)
        return parse_yaml(text, "journeys/x.yaml", "journey")


def _both(text: str) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    with warnings.catch_warnings():  # both composers warn on a reused anchor
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        fast_used = loader._compose_fast(text) is not None
        fast = _view(parse_yaml(text, "journeys/x.yaml", "journey"))
        return fast, _view(_pure(text)), fast_used


def test_the_c_parser_is_used_for_ordinary_files() -> None:
    text = (ROOT / "journeys" / "cart_abandonment.yaml").read_text()
    fast, pure, fast_used = _both(text)
    assert fast_used, "ruamel.yaml.clib is a dependency: the fast path should be taken"
    assert fast == pure


YAML_FILES = sorted(
    p
    for folder in ("journeys", "segments", "tests")
    for p in (ROOT / folder).rglob("*.y*ml")
    if p.suffix in (".yaml", ".yml")
)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_repository_reads_the_same(path: Path) -> None:
    fast, pure, _ = _both(path.read_bytes().decode("utf-8-sig", errors="replace"))
    assert fast == pure


TRICKY = [
    "a: yes\nb: 010\nc: 9:30\nd: 'no'\n",
    "a: !!str 010\nb: !custom x\nc: !!int '7'\n",
    "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "a: 1\na: 2\n",
    "- [a, b]\n- {c: d, e: [f, {g: h}]}\n",
    "key: |\n  line one\n  Chloé ☕ 日本 👋\nnext: >-\n  folded\n  text\n",
    "a: b: c\n",
    "a:\n\t- b\n",
    "? [a]\n: b\n",
    "%YAML 1.2\n---\na: 1\n",
    "a: 'unterminated\n",
    "x: [" + "[a], " * 600 + "]\n",  # more brackets than the C parser is given
    "",
    "# only a comment\n",
    "a: ~\nb: null\nc: 1.5e3\nd: .inf\ne: 0x1F\nf: 2026-01-01\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_texts_read_the_same(text: str) -> None:
    fast, pure, _ = _both(text)
    assert fast == pure


SCALARS = st.sampled_from(
    ["x", "yes", "No", "010", "9:30", "1", "-2.5", "~", "''", '"q"', "Ü", "a b", "!t v", "&a v"]
)
KEYS = st.sampled_from(["a", "b", "id", "type", "a", "x y", "1", "<<"])


def _block(depth: int) -> st.SearchStrategy[str]:
    leaf = SCALARS
    if depth == 0:
        return leaf
    return st.one_of(
        leaf,
        st.lists(st.tuples(KEYS, _block(depth - 1)), min_size=1, max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
        st.lists(_block(depth - 1), min_size=1, max_size=3).map(
            lambda xs: "[" + ", ".join(xs) + "]"
        ),
    )


DOCUMENTS = st.lists(
    st.tuples(KEYS, _block(2), st.sampled_from(["", "  # note", "\t", " "])), min_size=1, max_size=5
).map(lambda rows: "".join(f"{k}: {v}{tail}\n" for k, v, tail in rows))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_generated_documents_read_the_same(text: str) -> None:
    fast, pure, _ = _both(text)
    assert fast == pure


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{},#'\"!&*|>? \n\t0é")), max_size=60))
def test_arbitrary_texts_read_the_same_where_both_parsers_accept_them(text: str) -> None:
    """Malformed text that libyaml still reads (``>#``: a block scalar whose header runs
    into a comment) may be accepted where the pure parser refuses it; a text both
    accept must give the same document and findings."""
    fast, pure, _ = _both(text)
    if fast[0] is not None and pure[0] is not None:
        assert fast == pure
