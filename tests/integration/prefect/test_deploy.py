"""``prefect deploy --all`` accepts prefect.yaml on a real server (deployments, schedules,
the journeys' automations), and the server's scheduler creates the safety-net runs."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from omni_journey.service.deploy import journey_triggers
from omni_journey.spec.project import load_project
from tests.integration.prefect.conftest import ROOT, PrefectApi, stop_group, wait_for

pytestmark = [pytest.mark.slow]

PREFECT = Path(sys.executable).parent / "prefect"
DEPLOYMENTS = {
    "ingest/ingest",
    "advance/advance",
    "dispatch/dispatch",
    "evaluate-segments/evaluate-segments",
    "purchase-cycles/purchase-cycles",
    "train-channel-model/train-channel-model",
    "report/report",
}


def _owned_automations(client: Any, deployment_id: UUID) -> list[Any]:
    return [
        a
        for a in client.read_automations()
        if str(deployment_id) in json.dumps(a.model_dump(mode="json"))
    ]


def _delete(client: Any, deployment_id: UUID) -> None:
    client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
    client.delete_deployment(deployment_id)


def test_prefect_deploy_all_creates_every_deployment_and_journey_automation(
    prefect_api: PrefectApi,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name="omni-journey", type="process"))
    result = subprocess.run(
        [str(PREFECT), "--no-prompt", "deploy", "--all"],
        cwd=ROOT,
        env={**os.environ, **prefect_api.env()},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    expected = journey_triggers(load_project(ROOT).journeys)
    with get_client(sync_client=True) as client:
        deployments = {name: client.read_deployment_by_name(name) for name in DEPLOYMENTS}
        try:
            advance = deployments["advance/advance"]
            automations = _owned_automations(client, advance.id)
            schedules = {
                name: [s.schedule.model_dump(mode="json") for s in d.schedules]
                for name, d in deployments.items()
            }
        finally:
            for deployment in deployments.values():
                _delete(client, deployment.id)
    assert all(d.work_pool_name == "omni-journey" for d in deployments.values())
    assert all(d.entrypoint and d.entrypoint.startswith("flows/") for d in deployments.values())
    assert schedules["advance/advance"][0]["interval"] == 60
    assert schedules["dispatch/dispatch"][0]["interval"] == 60
    assert schedules["evaluate-segments/evaluate-segments"][0]["interval"] == 300
    assert schedules["purchase-cycles/purchase-cycles"][0]["cron"] == "15 3 * * *"
    assert schedules["train-channel-model/train-channel-model"][0]["cron"] == "30 2 * * *"
    assert schedules["report/report"][0]["cron"] == "0 6 * * *"
    assert schedules["ingest/ingest"] == []
    found = {
        (a.name, json.dumps(a.trigger.match.model_dump(mode="json")), a.trigger.within)
        for a in automations
    }
    assert found == {
        (
            t["name"],
            json.dumps({"prefect.resource.id": t["match"]["prefect.resource.id"]}),
            timedelta(seconds=t["within"]),
        )
        for t in expected
    }
    parameters = sorted(a.actions[0].parameters["journey"] for a in automations)
    assert parameters == sorted(t["parameters"]["journey"] for t in expected)


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``prefect server start`` (the test harness's ephemeral server runs no scheduler)."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        assert wait_for(healthy, timeout=90), "prefect server start did not come up"
        yield url
    finally:
        stop_group(process, timeout=20)


def test_the_scheduler_creates_the_every_minute_safety_net_runs(
    prefect_api: PrefectApi, real_server: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.dispatch import dispatch_outbox

    with temporary_settings(updates={PREFECT_API_URL: real_server}):
        deployment_id = dispatch_outbox.to_deployment(name="schedule-probe", interval=60).apply()
        with get_client(sync_client=True) as client:

            def scheduled() -> list[Any]:
                return list(
                    client.read_flow_runs(
                        deployment_filter=DeploymentFilter(
                            id=DeploymentFilterId(any_=[deployment_id])
                        )
                    )
                )

            runs = wait_for(scheduled, timeout=20)
    assert runs, "no scheduled run within 20 s"
    assert {r.state_name for r in runs} == {"Scheduled"}
