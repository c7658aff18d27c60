"""Loading whole projects: the examples, lookups, path filters, events.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omni_journey.errors import SpecError
from omni_journey.spec import (
    Diagnostic,
    check_paths,
    load_journey,
    load_project,
    parse_journey,
    parse_segment,
    validate_paths,
)
from omni_journey.spec.checks import journey_conditions
from omni_journey.spec.conditions import AttributeCondition, EventCondition, SegmentCondition
from omni_journey.spec.models import (
    STEP_KINDS,
    DelayStep,
    ScheduleTrigger,
    SegmentTrigger,
    SendStep,
    WaitForStep,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/{}.schema.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project, to break."""
    for folder in ("journeys", "segments", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def _break(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))


def test_the_examples_validate_with_no_problems() -> None:
    example = load_project(ROOT)
    assert example.diagnostics == [], "\n\n".join(d.format() for d in example.diagnostics)
    assert set(example.journeys) >= {
        "browse_abandonment",
        "cart_abandonment",
        "welcome_series",
        "post_purchase_cross_sell",
        "replenishment",
        "win_back",
    }
    assert set(example.segments) >= {"reachable", "vip", "skincare_browsers", "lapsed_customers"}
    sent = {
        s.message for j in example.journeys.values() for s in j.steps if isinstance(s, SendStep)
    }
    assert sent <= example.messages
    for message in example.messages:
        assert (ROOT / "templates" / message / "message.yaml").is_file()
    assert "_partials" not in example.messages


def test_the_examples_start_with_the_schema_line() -> None:
    for kind in ("journey", "segment"):
        for file in sorted((ROOT / f"{kind}s").glob("*.yaml")):
            assert file.read_text().splitlines()[0] == SCHEMA_LINE.format(kind), file


def test_the_examples_use_every_feature_between_them() -> None:
    journeys = load_project(ROOT).journeys.values()
    steps = [s for j in journeys for s in j.steps]
    assert {s.type for s in steps} == set(STEP_KINDS)
    delays = [s for s in steps if isinstance(s, DelayStep)]
    assert any(d.for_ for d in delays) and any(d.until for d in delays)
    assert any(isinstance(s, WaitForStep) and s.on_timeout for s in steps)
    conditions = [c for j in journeys for c, _ in journey_conditions(j)]
    for kind in (SegmentCondition, AttributeCondition, EventCondition):
        assert any(isinstance(c, kind) for c in conditions), kind
    channels = {repr(s.channel) for s in steps if isinstance(s, SendStep)}
    assert "'best'" in channels and "'email'" in channels
    assert any(c.startswith("(") for c in channels)  # a fallback list
    assert all(any(getattr(j, f) for j in journeys) for f in ("goal", "exit_when", "holdout"))
    assert all(any(getattr(j, f) for j in journeys) for f in ("quiet_hours", "frequency_cap"))
    assert {j.entry.re_entry.split()[0] for j in journeys} >= {"never", "always", "after"}
    replenishment = load_project(ROOT).journey("replenishment")
    assert getattr(replenishment.trigger, "event", None) == "purchase_cycle.due"
    assert getattr(replenishment.trigger, "where", {}).get("category") == "coffee"
    assert any(isinstance(j.trigger, ScheduleTrigger | SegmentTrigger) for j in journeys)


def test_everything_is_found_at_once_and_sorted(project: Path) -> None:
    _break(
        project / "journeys/cart_abandonment.yaml", "message: cart_reminder", "message: cart_remind"
    )
    _break(project / "journeys/welcome_series.yaml", "for: 3d", "for: 3 days")
    _break(project / "segments/vip.yaml", "key: vip", "key: vips")
    loaded = load_project(project)
    assert [(d.path, d.code) for d in loaded.diagnostics] == [
        ("journeys/cart_abandonment.yaml", "unknown-message"),
        ("journeys/welcome_series.yaml", "invalid-duration"),
        ("segments/vip.yaml", "key-mismatch"),
    ]
    assert not loaded.ok
    assert "welcome_series" not in loaded.journeys and "vip" not in loaded.segments
    assert "browse_abandonment" in loaded.journeys
    with pytest.raises(SpecError) as raised:
        loaded.require_valid()
    assert raised.value.diagnostics == loaded.errors
    assert "journeys/welcome_series.yaml:" in str(raised.value)


def test_journey_lookup(project: Path) -> None:
    _break(project / "journeys/win_back.yaml", "timeout: 14d", "timeout: 14")
    loaded = load_project(project)
    assert loaded.journey("cart_abandonment").key == "cart_abandonment"
    with pytest.raises(SpecError) as raised:
        loaded.journey("win_back")
    [problem] = raised.value.diagnostics
    assert isinstance(problem, Diagnostic) and problem.code == "invalid-duration"
    with pytest.raises(SpecError) as raised:
        loaded.journey("cart_abandon")
    [missing] = raised.value.diagnostics
    assert isinstance(missing, Diagnostic) and missing.code == "unknown-journey"
    assert missing.hint == 'did you mean "cart_abandonment"?'


def test_validate_paths_reports_only_the_files_asked_for_with_their_context(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break(project / "journeys/cart_abandonment.yaml", "segment: reachable", "segment: reachabel")
    _break(project / "journeys/win_back.yaml", "timeout: 14d", "timeout: 14")
    monkeypatch.chdir(project)
    found = validate_paths([Path("journeys/cart_abandonment.yaml")])
    assert [(d.path, d.code) for d in found] == [
        ("journeys/cart_abandonment.yaml", "unknown-segment")
    ]
    result = check_paths([project / "journeys"])
    assert result.files == len(list((project / "journeys").glob("*.yaml")))
    assert {d.path for d in result.diagnostics} == {
        "journeys/cart_abandonment.yaml",
        "journeys/win_back.yaml",
    }
    assert check_paths([project / "segments"]).diagnostics == []
    with pytest.raises(FileNotFoundError):
        check_paths([project / "nowhere"])


def test_a_file_outside_the_project_folders_is_read_by_its_content(project: Path) -> None:
    loose = project / "drafts" / "vip_again.yaml"
    loose.parent.mkdir()
    loose.write_text("key: vip_again\nmatch: {segment: vipp}\n")
    [problem] = validate_paths([loose], root=project)
    assert problem.code == "unknown-segment" and problem.hint == 'did you mean "vip"?'


def test_events_yaml_names_custom_events(project: Path) -> None:
    _break(
        project / "journeys/welcome_series.yaml",
        "- event: message.unsubscribed",
        "- event: newsletter.left",
    )
    [problem] = load_project(project).diagnostics
    assert problem.code == "unknown-event"
    (project / "events.yaml").write_text("- newsletter.left\n- 12\n")
    [problem] = load_project(project).diagnostics
    assert (problem.path, problem.line, problem.code) == ("events.yaml", 2, "invalid-value")
    (project / "events.yaml").write_text("newsletter.left: true\n")
    codes = [d.code for d in load_project(project).diagnostics]
    assert codes == ["invalid-value", "unknown-event"]


def test_load_journey(project: Path) -> None:
    spec = load_journey(project / "journeys/replenishment.yaml")
    assert spec.key == "replenishment"
    _break(project / "journeys/replenishment.yaml", "message: replenish_reminder", "message: nope")
    with pytest.raises(SpecError) as raised:
        load_journey(project / "journeys/replenishment.yaml")
    assert [getattr(d, "code", None) for d in raised.value.diagnostics] == ["unknown-message"]


def test_parse_journey_and_segment_from_text() -> None:
    spec = parse_journey("key: x\ntrigger: {event: a.b}\nsteps: [{id: e, type: exit}]\n")
    assert spec.key == "x"
    with pytest.raises(SpecError) as raised:
        parse_journey("key: x\ntrigger: {event: a.b}\nsteps: [{id: e, type: exit, next: f}]\n")
    assert "error[unknown-step]" in str(raised.value)
    assert parse_segment("key: s\nmatch: {consent: email}\n").key == "s"
    with pytest.raises(SpecError):
        parse_segment("key: s\nmatch: {consent: fax}\n")
