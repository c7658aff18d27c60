"""prefect.yaml is valid for Prefect, its entrypoints import, and every journey's trigger
is there (``omni-journey deploy --check`` fails CI when one is missing)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from omni_journey.service.deploy import (
    DEFAULT_THROTTLE_SECONDS,
    PrefectYamlError,
    journey_triggers,
    plan_triggers,
    write_triggers,
)
from omni_journey.spec.models import JourneySpec
from omni_journey.spec.project import load_project

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "omni-journey"


def _prefect_yaml() -> dict[str, Any]:
    # Prefect itself reads the file with PyYAML (YAML 1.1): so do we here
    data: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return data


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in _prefect_yaml()["deployments"]}


def test_prefect_yaml_validates_with_prefects_own_models() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._triggers import DeploymentTriggerAdapter

    model = PrefectYamlModel.model_validate(_prefect_yaml())
    assert sorted(d.name or "" for d in model.deployments) == [
        "advance",
        "dispatch",
        "evaluate-segments",
        "ingest",
        "purchase-cycles",
        "report",
        "train-channel-model",
    ]
    for deployment in model.deployments:
        assert deployment.work_pool is not None
        assert deployment.work_pool.name == "omni-journey"
        for trigger in deployment.triggers or []:
            DeploymentTriggerAdapter.validate_python(trigger)


@pytest.mark.parametrize("name", sorted(_deployments()))
def test_every_entrypoint_imports_and_takes_the_parameters_it_is_given(name: str) -> None:
    from prefect import Flow

    deployment = _deployments()[name]
    path, function = deployment["entrypoint"].split(":")
    spec = importlib.util.spec_from_file_location(f"_entry_{name.replace('-', '_')}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, function)
    assert isinstance(flow, Flow)
    accepted = set(flow.parameters.properties)
    given = set(deployment.get("parameters") or {})
    for trigger in deployment.get("triggers") or []:
        given |= set(trigger.get("parameters") or {})
    assert given <= accepted


def test_schedules_are_the_safety_nets() -> None:
    deployments = _deployments()
    assert deployments["advance"]["schedules"][0]["interval"] == 60
    assert deployments["dispatch"]["schedules"][0]["interval"] == 60
    assert deployments["evaluate-segments"]["schedules"][0]["interval"] == 300
    assert deployments["purchase-cycles"]["schedules"][0]["cron"] == "15 3 * * *"
    assert deployments["train-channel-model"]["schedules"][0]["cron"] == "30 2 * * *"
    assert "schedules" not in deployments["ingest"]
    assert deployments["dispatch"]["concurrency_limit"]["collision_strategy"] == "CANCEL_NEW"


def test_every_event_triggered_journey_has_its_trigger() -> None:
    project = load_project(ROOT).require_valid()
    plan = plan_triggers(ROOT / "prefect.yaml", project.journeys)
    assert plan.ok, plan.describe()
    by_journey = {t["parameters"]["journey"]: t for t in _deployments()["advance"]["triggers"]}
    for key, spec in project.journeys.items():
        event = getattr(spec.trigger, "event", None)
        if event and spec.enabled:
            assert by_journey[key]["match"] == {"prefect.resource.id": f"omni.event.{event}"}
            assert by_journey[key]["expect"] == ["omni.events.ingested"]
            assert by_journey[key]["within"] > 0  # the burst throttle


def test_deploy_check_passes_on_the_repository() -> None:
    result = subprocess.run(
        [str(CLI), "deploy", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


NEW_JOURNEY = """\
key: "on"
trigger:
  event: wishlist.added
steps:
  - id: nudge
    type: send
    message: viewed_product
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's project (journeys, segments, templates, prefect.yaml)."""
    for folder in ("journeys", "segments", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    for file in ("prefect.yaml", "events.yaml"):
        if (ROOT / file).exists():
            shutil.copy(ROOT / file, tmp_path / file)
    return tmp_path


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "deploy", *args],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "OMNI_PROJECT_DIR": str(project)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_new_journey_without_its_trigger_fails_the_check_until_deployed(project: Path) -> None:
    (project / "journeys" / "on.yaml").write_text(NEW_JOURNEY)
    before = (project / "prefect.yaml").read_text()

    check = _cli(project, "--check")

    assert check.returncode == 1
    assert "add under deployments -> name: advance -> triggers" in check.stdout
    assert 'prefect.resource.id: "omni.event.wishlist.added"' in check.stdout
    assert 'journey: "on"' in check.stdout  # quoted: YAML 1.1 would read on as true
    assert (project / "prefect.yaml").read_text() == before

    assert _cli(project).returncode == 0
    assert _cli(project, "--check").returncode == 0
    after = (project / "prefect.yaml").read_text()
    assert after.startswith(before.split("deployments:")[0])  # comments and header kept
    triggers = {
        t["parameters"]["journey"]: t
        for d in yaml.safe_load(after)["deployments"]
        if d["name"] == "advance"
        for t in d["triggers"]
    }
    assert triggers["on"]["match"] == {"prefect.resource.id": "omni.event.wishlist.added"}

    (project / "journeys" / "on.yaml").unlink()
    stale = _cli(project, "--check")
    assert stale.returncode == 1
    assert "remove (no journey generates them any more)" in stale.stdout


def test_hand_written_triggers_and_tuned_throttles_are_kept(project: Path) -> None:
    path = project / "prefect.yaml"
    text = path.read_text()
    text = text.replace("        within: 10\n", "        within: 45\n", 1)
    text = text.replace(
        "    triggers:\n",
        "    triggers:\n"
        "      - type: event\n"
        "        match: {prefect.resource.id: my.own.resource}\n"
        "        expect: [my.own.event]\n",
        1,
    )
    path.write_text(text)
    journeys = load_project(project).journeys
    assert plan_triggers(path, journeys).ok
    (project / "journeys" / "on.yaml").write_text(NEW_JOURNEY)
    plan = plan_triggers(path, load_project(project).journeys)
    assert write_triggers(plan)
    [advance] = [
        d for d in yaml.safe_load(path.read_text())["deployments"] if d["name"] == "advance"
    ]
    assert advance["triggers"][0]["expect"] == ["my.own.event"]
    withins = sorted(t["within"] for t in advance["triggers"][1:])
    assert 45 in withins
    assert withins.count(DEFAULT_THROTTLE_SECONDS) == len(withins) - 1


def test_disabled_and_scheduled_journeys_get_no_trigger_segment_journeys_do() -> None:
    def spec(**extra: Any) -> JourneySpec:
        base = {"steps": [{"id": "x", "type": "exit"}], **extra}
        return JourneySpec.model_validate(base)

    triggers = journey_triggers(
        {
            "off": spec(key="off", trigger={"event": "a.b"}, enabled=False),
            "weekly": spec(key="weekly", trigger={"schedule": {"every": "1w"}, "segment": "vip"}),
            "vips": spec(key="vips", trigger={"segment": "vip"}),
        }
    )
    assert [(t["parameters"], t["match"], t["expect"]) for t in triggers] == [
        (
            {"journey": "vips", "send": True},
            {"prefect.resource.id": "omni.segment.vip"},
            ["omni.segment.entered"],
        )
    ]


def test_a_prefect_yaml_without_the_advance_deployment_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text("deployments:\n  - name: other\n")
    with pytest.raises(PrefectYamlError, match="no deployment named 'advance'"):
        plan_triggers(path, {})
    with pytest.raises(PrefectYamlError, match="not found"):
        plan_triggers(tmp_path / "missing.yaml", {})
