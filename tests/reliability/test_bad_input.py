"""Bad input never crashes anything and never loses the good input beside it.

Hypothesis mutates the repository's own journey and segment files (characters deleted,
inserted and replaced, lines duplicated and swapped, huge and deeply nested values) and
generates arbitrary event records and HTTP bodies. Every journey problem is a located
diagnostic (file, line >= 1, column >= 1, a code, a message); every bad event is
rejected with a reason while the good events of its batch are stored; every HTTP call
gets an answer below 500. How many inputs each test tries: :mod:`tests.reliability.fuzz`
(``OMNI_RELIABILITY_EXAMPLES``); templates, import files, every HTTP route and the
corpus of hand-picked inputs have modules of their own (``test_bad_input_*.py``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from omni_journey.ingest.intake import ingest_events
from omni_journey.settings import Settings
from omni_journey.spec.project import load_project
from omni_journey.store import open_store
from tests.integration.test_collector import NOW, serving
from tests.reliability.fuzz import FUZZ, fuzz_timeout

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted([*ROOT.glob("journeys/*.yaml"), *ROOT.glob("segments/*.yaml")])
WRITE_KEY = "fuzz-write-key"
pytestmark = fuzz_timeout(2.0)

# --- journey and segment files ------------------------------------------------------

_NOISE = st.sampled_from(
    [":", "- ", "  ", "\t", "{", "}", "[", "]", "'", '"', "#", "&a", "*a", "!!python/object",
     "\x00", "é", "\u202e", "999999999999999999999d", "-1h", "null", "~", "\n", "{{", "%"]
)  # fmt: skip


class _Mutation(tuple[str, str]):
    """(file, mutated content), shown shortened: Hypothesis prints every input it tries,
    and printing a 200,000-character value took it over a second an input."""

    def __repr__(self) -> str:
        relative, content = self
        shown = content if len(content) <= 2000 else f"{content[:2000]}... ({len(content)} chars)"
        return f"({relative!r}, {shown!r})"


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(SPEC_FILES))
    lines = path.read_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "swap",
                                       "nest", "huge"]))  # fmt: skip
        line = lines[at] if lines else ""
        if action == "delete" and lines:
            del lines[at]
        elif action == "insert":
            lines.insert(at, draw(_NOISE) + "\n")
        elif action == "replace" and line:
            col = draw(st.integers(0, len(line) - 1))
            lines[at] = line[:col] + draw(_NOISE) + line[col + 1 :]
        elif action == "duplicate":
            lines.insert(at, line)
        elif action == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif action == "nest":
            lines.insert(at, "deep: " + "[" * 500 + "]" * 500 + "\n")
        elif action == "huge":
            lines.insert(at, "name: " + "x" * 200_000 + "\n")
    return _Mutation((path.relative_to(ROOT).as_posix(), "".join(lines)))


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for folder in ("journeys", "segments", "templates"):
        shutil.copytree(ROOT / folder, root / folder)
    if (ROOT / "events.yaml").exists():
        shutil.copy(ROOT / "events.yaml", root / "events.yaml")
    return root


@FUZZ
@given(mutation=_mutated())
def test_a_broken_journey_or_segment_is_a_located_diagnostic(
    project_copy: Path, mutation: tuple[str, str]
) -> None:
    relative, content = mutation
    target = project_copy / relative
    original = (ROOT / relative).read_text()
    target.write_text(content)
    try:
        project = load_project(project_copy)  # must not raise
    finally:
        target.write_text(original)
    for diagnostic in project.diagnostics:
        assert diagnostic.path and diagnostic.line >= 1 and diagnostic.col >= 1, diagnostic
        assert diagnostic.code and diagnostic.message, diagnostic
    if content != original and not project.errors:  # accepted: then it must be usable
        assert relative.split("/")[0] in ("journeys", "segments")


# --- event records --------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                     children, max_size=4),
    max_leaves=20,
)  # fmt: skip
_TIMES = st.sampled_from(
    ["2026-11-02T09:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00",
     "yesterday", "2026-11-02T09:00:00", ""]
)  # fmt: skip


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in (("id", st.text(max_size=20) | st.integers() | st.floats()),
                       ("name", st.text(max_size=20) | _JSON),
                       ("customer_id", st.text(max_size=20) | st.integers(-(2**70), 2**70)),
                       ("at", _TIMES | _JSON), ("properties", _JSON),
                       ("identities", _JSON)):  # fmt: skip
        if draw(st.booleans()):
            record[key] = draw(value)
    return record


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'omni.db'}")
    yield engine
    engine.dispose()


@FUZZ
@given(bad=st.lists(_event(), min_size=1, max_size=6), at=st.integers(0, 6))
def test_bad_events_are_rejected_with_reasons_and_the_good_ones_stored(
    fuzz_store: Engine, bad: list[dict[str, Any]], at: int
) -> None:
    good = {"id": f"good-{uuid.uuid4()}", "name": "product.viewed", "customer_id": "c-good",
            "at": "2026-11-02T09:00:00Z"}  # fmt: skip
    batch = [*bad[:at], good, *bad[at:]]
    result = ingest_events(fuzz_store, batch, now=NOW, settings=Settings())
    assert result.accepted + result.duplicates + len(result.rejected) == len(batch)
    for rejected in result.rejected:
        assert rejected.reason and isinstance(rejected.reason, str)
    with fuzz_store.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM events WHERE event_id = :id"), {"id": good["id"]}
        ).scalar_one()
    assert stored == 1


# --- HTTP endpoints ---------------------------------------------------------------------

_BODIES = (
    st.binary(max_size=300)
    | _JSON.map(lambda v: json.dumps(v).encode())
    | st.builds(lambda e: json.dumps({"type": "track", "event": "Order Completed", **e}).encode(),
                st.dictionaries(st.sampled_from(["userId", "anonymousId", "timestamp", "sentAt",
                                                 "properties", "messageId", "context"]),
                                _JSON | _TIMES, max_size=5))
    | st.builds(lambda n: ('{"type":"track","event":"x","userId":"u","properties":'
                           + "[" * n + "]" * n + "}").encode(), st.integers(1, 1200))
    | st.builds(lambda items: json.dumps({"batch": items}).encode(), st.lists(_JSON, max_size=5))
)  # fmt: skip


@pytest.fixture(scope="module")
def collector(fuzz_store: Engine) -> Iterator[str]:
    with serving(fuzz_store, Settings(write_keys=WRITE_KEY)) as url:
        yield url


@FUZZ
@given(
    path=st.sampled_from(["/v1/track", "/v1/identify", "/v1/batch", "/v1/alias", "/v1/page"]),
    body=_BODIES,
)
def test_no_http_body_gets_a_server_error(collector: str, path: str, body: bytes) -> None:
    response = httpx.post(
        f"{collector}{path}", content=body, auth=(WRITE_KEY, ""),
        headers={"content-type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert response.status_code < 500, (response.status_code, response.text[:300])
