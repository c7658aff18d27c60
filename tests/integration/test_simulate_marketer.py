"""What a marketer's first week hit in ``simulate`` and ``validate``, through the CLI
(typer's CliRunner; each replay in its own throw-away SQLite store):

* a message that fails to render for a customer or event is a skip with the reason,
  never "sent"; ``validate`` warns at each optional value, the caret on it;
* the catalogue fan-out runs in ``simulate`` as in production;
* the window covers every event given, or a warning names the events left out;
* ``simulate journeys/x.yaml`` works, and a misspelt key gets a "did you mean".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from omni_journey.cli import app

JOURNEY = """\
key: price_drop
trigger: {event: product.price_dropped}
steps:
  - {id: tell, type: send, message: price_drop, channel: email}
"""
MESSAGE = """\
subject: "Now {{ event.price }}"
headline: "Was {{ event.old_price }}"
body: |
  {% if customer.tier == "gold" %}Gold members save twice.{% endif %}
cta:
  text: Shop
  url: https://shop.example.com/p/{{ event.sku }}
"""
CUSTOMERS = [
    {"customer_id": "c-gold", "email": "g@example.com", "consent": {"email": True},
     "attributes": {"tier": "gold"}},
    {"customer_id": "c-none", "email": "n@example.com", "consent": {"email": True}},
    {"customer_id": "c-away", "email": "a@example.com", "consent": {"email": True},
     "attributes": {"tier": "gold"}},
]  # fmt: skip


def _viewed(customer: str, at: str) -> dict[str, Any]:
    return {"id": f"view-{customer}-{at}", "name": "product.viewed", "customer_id": customer,
            "at": at, "properties": {"sku": "SERUM-30"}}  # fmt: skip


def _catalogue(event_id: str, at: str, **properties: Any) -> dict[str, Any]:
    return {"id": event_id, "name": "product.price_dropped", "customer_id": "_catalogue",
            "at": at, "properties": {"sku": "SERUM-30", "price": 19.0, **properties}}  # fmt: skip


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "journeys").mkdir(parents=True)
    (root / "segments").mkdir()
    (root / "templates" / "price_drop").mkdir(parents=True)
    (root / "journeys" / "price_drop.yaml").write_text(JOURNEY)
    (root / "templates" / "price_drop" / "message.yaml").write_text(MESSAGE)
    monkeypatch.delenv("OMNI_DATABASE_URL", raising=False)
    monkeypatch.setenv("OMNI_PROJECT_DIR", str(root))
    monkeypatch.setenv("OMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(root)
    return root


def _simulate(project: Path, events: list[dict[str, Any]], *args: str) -> Any:
    customers = _write(project.parent / "customers.jsonl", CUSTOMERS)
    source = _write(project.parent / "events.jsonl", events)
    return CliRunner().invoke(
        app,
        ["simulate", *args, "--customers", str(customers), "--events", str(source)],
    )


def test_a_message_that_fails_to_render_is_a_skip_with_its_reason(project: Path) -> None:
    events = [
        _viewed("c-gold", "2026-05-01T09:00:00Z"),
        _viewed("c-none", "2026-05-01T09:30:00Z"),
        _catalogue("cat-1", "2026-05-02T08:00:00Z", old_price=24.0),
    ]
    result = _simulate(project, events, "price_drop", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # the catalogue event reached both viewers (and not the customer who saw nothing)
    assert [e["customer_id"] for e in out["entered"]] == ["c-gold", "c-none"]
    assert [s["customer_id"] for s in out["sends"]] == ["c-gold"]
    assert [(s["customer_id"], s["step"], s["reason"]) for s in out["skips"]] == [
        ("c-none", "tell", "undefined-variable")
    ]
    assert out["skips"][0]["detail"].startswith("templates/price_drop/message.yaml:4:")
    assert out["steps"]["tell"] == {"entered": 2, "sent": 1, "skipped": 1}
    assert out["warnings"] == []
    # the guide's example has exactly these keys, at every level
    guide = (Path(__file__).resolve().parents[2] / "docs" / "journeys.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", guide, flags=re.S)
    example = json.loads(next(b for b in blocks if b.startswith('{"journey": "price_drop"')))
    assert list(example) == list(out)
    for key in ("entered", "sends", "skips", "exits"):
        assert set(example[key][0]) == set(out[key][0]), key


def test_an_event_without_an_optional_property_skips_every_customer(project: Path) -> None:
    events = [
        _viewed("c-gold", "2026-05-01T09:00:00Z"),
        _catalogue("cat-1", "2026-05-02T08:00:00Z"),  # no old_price
    ]
    result = _simulate(project, events, "price_drop")
    assert result.exit_code == 0, result.output
    assert "entered 1, sent 0, skipped 1" in result.stdout
    assert "skipped 1: undefined-variable: the message reads a value" in result.stdout
    assert "old_price" in result.stdout  # the example detail names it


def test_validate_warns_at_each_optional_value_with_the_caret_on_it(project: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "--format", "json"])
    assert result.exit_code == 0, result.output  # warnings do not fail validate
    found = [
        (d["line"], d["col"], d["end_col"], d["code"])
        for d in json.loads(result.stdout)["diagnostics"]
    ]
    assert found == [
        (1, 18, 29, "optional-event-property"),  # event.price
        (2, 19, 34, "optional-event-property"),  # event.old_price
        (4, 9, 22, "optional-attribute"),  # customer.tier, in the if
    ]  # event.sku: every standard event that has it requires it
    text = CliRunner().invoke(app, ["validate"]).stdout
    assert '| default("...") }}' in text and "optional in product.price_dropped" in text


def test_the_window_covers_every_event_given(project: Path) -> None:
    events = [
        _viewed("c-gold", "2026-03-01T09:00:00Z"),  # months before the rest
        _viewed("c-away", "2026-04-28T09:00:00Z"),
        _catalogue("cat-1", "2026-05-02T08:00:00Z", old_price=24.0),
    ]
    result = _simulate(project, events, "journeys/price_drop.yaml", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["from"] == "2026-03-01T00:00:00Z"
    assert out["to"] == "2026-05-16T08:00:00Z"  # 14 days after the last event
    assert [s["customer_id"] for s in out["sends"]] == ["c-away"]  # c-gold viewed too long ago
    assert out["warnings"] == []


def test_events_past_a_given_window_are_named_in_a_warning(project: Path) -> None:
    events = [
        _viewed("c-gold", "2026-03-01T09:00:00Z"),
        _viewed("c-away", "2026-04-28T09:00:00Z"),
        _catalogue("cat-1", "2026-05-02T08:00:00Z", old_price=24.0),
    ]
    result = _simulate(project, events, "price_drop", "--days", "7")
    assert result.exit_code == 0, result.output
    assert "entered 0" in result.stdout
    assert (
        'warning: 2 events are after the end 2026-03-08T00:00:00Z: "view-c-away-2026-04-28'
        'T09:00:00Z", "cat-1"; not replayed (leave --days out to cover them)' in result.stderr
    )


def test_unknown_keys_in_the_files_are_warned_about(project: Path) -> None:
    events = [{**_viewed("c-gold", "2026-05-01T09:00:00Z"), "sku": "SERUM-30"}]
    result = _simulate(project, events, "price_drop", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == [
        "events file: 1 records have keys omni-journey does not read (sku on 1): "
        "replayed without them (docs/data-formats.md)"
    ]


def test_a_misspelt_journey_gets_a_did_you_mean(project: Path) -> None:
    result = _simulate(project, [_viewed("c-gold", "2026-05-01T09:00:00Z")], "price_drp")
    assert result.exit_code == 2
    assert "error[unknown-journey]: no journey 'price_drp': did you mean 'price_drop'?" in (
        result.stderr
    )
