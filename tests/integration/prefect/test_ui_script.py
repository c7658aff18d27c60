"""``scripts/prefect_ui_screenshots.py`` without the browser: its server and workload
leave what the screenshots in docs/operations.md show (named, tagged flow runs with
table and markdown artifacts, the UI served). Chromium is not needed here: the script
itself fails when a page never shows the data it waits for."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

from tests.integration.prefect.conftest import ROOT

pytestmark = [pytest.mark.slow]

SCRIPT = ROOT / "scripts" / "prefect_ui_screenshots.py"
JOURNEYS = sorted(p.stem for p in (ROOT / "journeys").glob("*.yaml"))
STAMP = "2026-03-02T09:00"  # the demo shop's first simulated hour


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prefect_ui_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _runs_and_artifacts(api_url: str, run_ids: list[UUID]) -> tuple[list[Any], list[Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)), limit=200
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids)),
            limit=200,
        )
    return list(runs), list(artifacts)


def test_the_screenshot_script_leaves_named_tagged_runs_with_artifacts(tmp_path: Path) -> None:
    script = _script()
    home = tmp_path / "prefect-home"
    with script.prefect_server(home) as api_url:
        workload = script.run_workload(api_url, home, tmp_path / "omni", hours=1, customers=200)
        runs, artifacts = _runs_and_artifacts(api_url, list(workload.runs.values()))
        request = urllib.request.Request(
            api_url.removesuffix("/api") + "/v2/runs", headers={"accept": "text/html"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            page = response.read().decode()

    assert workload.failed == {}
    by_name = {run.name: run for run in runs}
    expected = {
        f"ingest-events-{STAMP}",
        f"segments-all-{STAMP}",
        f"purchase-cycles-{STAMP}",
        f"dispatch-{STAMP}",
        f"train-channel-model-{STAMP}",
        *(f"advance-{key}-{STAMP}" for key in JOURNEYS),
    }
    assert set(by_name) == expected
    assert {run.state_name for run in runs} == {"Completed"}
    for key in JOURNEYS:
        tags = set(by_name[f"advance-{key}-{STAMP}"].tags)
        assert f"journey:{key}" in tags
        assert any(tag.startswith("channel:") for tag in tags)

    assert workload.showcase_name == f"advance-{workload.showcase_journey}-{STAMP}"
    shown = {a.key: a for a in artifacts if a.flow_run_id == by_name[workload.showcase_name].id}
    table_key = "advance-" + workload.showcase_journey.replace("_", "-")
    assert shown[table_key].type == "table"
    rows = json.loads(shown[table_key].data)
    assert {"step", "entered", "waiting", "sent_email", "skipped_by_reason", "converted"} <= set(
        rows[0]
    )
    assert sum(row["entered"] for row in rows) > 0  # the run shown did something
    summary = shown[f"{table_key}-summary"]
    assert summary.type == "markdown"
    assert f"Journey pass at {STAMP} UTC" in summary.data
    keys = {a.key for a in artifacts}
    assert {"dispatch", "dispatch-summary", "ingest-events", "segments", "purchase-cycles"} <= keys
    assert "train-channel-model-summary" in keys

    assert "<html" in page.lower()  # the UI is served (PREFECT_UI_ENABLED)
