"""The corpus: hand-picked nasty inputs replayed against their entry point, every run.

``tests/reliability/corpus/`` holds the inputs (a year-1 timestamp with a positive
offset, year 9999 with a negative one, 1,000 levels of nesting, a 2**64 user id, a
gzip bomb, invalid UTF-8, a template saved as Latin-1, one that includes itself, a
``javascript:`` URL, an unquoted attribute...), and ``cases.json`` what each must give:
the reason of each rejected line and the ids stored (``events/``, ``customers/``:
through ``import_file``, as ``events import`` and ``customers import`` run it), the
status and reason of the answer (``http/``: a POST to ``/v1/track`` of the real
collector, ``.gz`` files sent as gzip), or the diagnostic's code and line (``templates/``:
the file put in place of the ``welcome`` message's file of that name, checked as
``validate`` checks it; ``journeys/``: the file added to a copy of the project's
journeys, loaded as ``validate`` loads them). ``see`` names the test that pins the
same case in depth, where one exists: the corpus is the cheap always-run replay, and
the place to drop the next nasty input a user sends.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from omni_journey.ingest.intake import ImportFileError, import_file
from omni_journey.render import (
    RenderContext,
    RenderError,
    TemplateRenderer,
    check_templates,
    customer_profile,
)
from omni_journey.settings import Settings
from omni_journey.spec.project import load_project
from omni_journey.store import open_store
from tests.integration.test_collector import NOW, serving

CORPUS = Path(__file__).parent / "corpus"
CASES: dict[str, dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text())
ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "corpus-write-key"


def _cases(folder: str) -> list[str]:
    return sorted(name for name in CASES if name.startswith(f"{folder}/"))


def test_every_corpus_file_has_its_case() -> None:
    files = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file())
    assert [f for f in files if f != "cases.json"] == sorted(CASES)
    for name, case in CASES.items():
        for test in (case["see"] or "").split(", "):
            if test.startswith("tests/"):
                assert list(ROOT.glob(test)), f"{name}: {test} does not exist"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'omni.db'}")
    yield engine
    engine.dispose()


def _customer_of(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT customer_id FROM identities WHERE kind = 'customer_id' AND value = :v"),
            {"v": key},
        ).scalar_one_or_none()


@pytest.mark.parametrize("name", _cases("events") + _cases("customers"))
def test_an_import_file_of_the_corpus(name: str, store: Engine, tmp_path: Path) -> None:
    case = CASES[name]
    kind = name.split("/")[0]
    settings = Settings(home=tmp_path)
    if "file_error" in case:
        with pytest.raises(ImportFileError, match=case["file_error"]):
            import_file(store, CORPUS / name, kind, settings=settings, now=NOW)  # type: ignore[arg-type]
        with store.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == 0
        return
    result = import_file(store, CORPUS / name, kind, settings=settings, now=NOW)  # type: ignore[arg-type]
    rejects = (
        [orjson.loads(line) for line in result.rejects_path.read_bytes().splitlines()]
        if result.rejects_path is not None
        else []
    )
    assert {str(r["line"]): r["reason"] for r in rejects} == case["rejected"]
    assert all(r["detail"] for r in rejects)
    assert result.accepted == len(case["stored"])
    with store.connect() as connection:
        if kind == "events":
            stored = connection.execute(text("SELECT event_id FROM events")).scalars().all()
        else:
            stored = (
                connection.execute(text("SELECT value FROM identities WHERE kind = 'customer_id'"))
                .scalars()
                .all()
            )
    assert sorted(stored) == sorted(case["stored"])
    if "customer" in case:  # an id past 64 bits, exact
        with store.connect() as connection:
            customers = connection.execute(
                text("SELECT DISTINCT customer_id FROM events")
            ).scalars()
            assert case["customer"] in set(customers)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'omni.db'}")
    with serving(engine, Settings(write_keys=WRITE_KEY)) as url:
        yield url, engine
    engine.dispose()


@pytest.mark.parametrize("name", _cases("http"))
def test_an_http_body_of_the_corpus(name: str, collector: tuple[str, Engine]) -> None:
    url, engine = collector
    case = CASES[name]
    headers = {"content-type": "application/json"}
    if name.endswith(".gz"):
        headers["content-encoding"] = "gzip"
    response = httpx.post(
        f"{url}/v1/track",
        content=(CORPUS / name).read_bytes(),
        headers=headers,
        auth=(WRITE_KEY, ""),
        timeout=30,
    )
    assert response.status_code == case["status"], response.text
    if "reason" in case:
        assert response.json()["reason"] == case["reason"]
    if "customer" in case:
        assert _customer_of(engine, case["customer"]) is not None


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", copy)
    return copy


@pytest.mark.parametrize("name", _cases("templates"))
def test_a_template_of_the_corpus(name: str, templates: Path) -> None:
    case = CASES[name]
    target = name.split("/")[1].split(".", 1)[1]  # unquoted-attribute.email.html -> email.html
    shutil.copy(CORPUS / name, templates / "welcome" / target)
    found = check_templates(templates, ["welcome"], settings=Settings(), shown_dir="templates")
    if "code" not in case:
        assert [d for d in found if d.is_error] == []
        context = RenderContext(customer_profile("c-1", {"url": case["customer_url"]}))
        renderer = TemplateRenderer(templates, secret_key="corpus-secret")
        html = getattr(renderer.render("welcome", "email", context), "html", None)
        assert html is not None
        assert case["html_has"] in html and case["html_lacks"] not in html
        return
    located = [(d.path, d.line, d.code, d.severity) for d in found]
    wanted = (
        f"templates/welcome/{target}",
        case["line"],
        case["code"],
        case.get("severity", "error"),
    )
    assert wanted in located, located
    diagnostic = next(d for d in found if (d.path, d.line, d.code) == wanted[:3])
    assert case.get("message", "") in diagnostic.message


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in _cases("templates")
        if CASES[n].get("severity", "error") == "error" and "code" in CASES[n]
    ],
)
def test_a_template_of_the_corpus_is_the_same_error_when_a_message_renders(
    name: str, templates: Path
) -> None:
    """What ``validate`` says is what the dispatcher gets: a :class:`RenderError` with the
    same code and line, never another exception."""
    case = CASES[name]
    target = name.split("/")[1].split(".", 1)[1]
    shutil.copy(CORPUS / name, templates / "welcome" / target)
    renderer = TemplateRenderer(templates, secret_key="corpus-secret")
    channel = "email" if target.endswith(".html") else "sms"
    with pytest.raises(RenderError) as raised:
        renderer.render("welcome", channel, RenderContext(customer_profile("c-1", {})))
    diagnostic = raised.value.diagnostic
    assert (Path(diagnostic.path).name, diagnostic.line, diagnostic.code) == (
        target,
        case["line"],
        case["code"],
    )


@pytest.mark.parametrize("name", _cases("journeys"))
def test_a_journey_file_of_the_corpus(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    for folder in ("journeys", "segments", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(CORPUS / name, tmp_path / name)
    found = load_project(tmp_path).diagnostics  # never raises
    located = [(d.path, d.line, d.code) for d in found]
    assert (name, case["line"], case["code"]) in located, located
    diagnostic = next(
        d for d in found if (d.path, d.line, d.code) == (name, case["line"], case["code"])
    )
    assert case["message"] in diagnostic.message
