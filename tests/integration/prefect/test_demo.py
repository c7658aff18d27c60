"""``omni-journey demo`` runs the shop through the real flows on a real Prefect API and
ends with a report whose numbers are the store's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_, func, select

from omni_journey.store import open_store
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG, MESSAGES
from tests.integration.prefect.conftest import ROOT, PrefectApi

pytestmark = [pytest.mark.slow]

BIN = Path(sys.executable).parent / "omni-journey"


def _flow_runs(prefix: str, since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterStartTime,
    )

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(like_=prefix),
                    start_time=FlowRunFilterStartTime(after_=since),
                ),
                limit=200,
            )
        )


def _artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [latest] = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    data = latest.data
    return json.loads(data) if isinstance(data, str) and latest.type == "table" else data


def test_the_demo_runs_the_flows_and_its_report_matches_the_store(
    prefect_api: PrefectApi, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMNI_")},
        **prefect_api.env(),
        "OMNI_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    started = datetime.now(UTC)
    result = subprocess.run(
        [str(BIN), "demo", "--customers", "300", "--days", "2", "--pass-every", "4"],
        cwd=ROOT,  # the README's first command runs from the repository root
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    home = tmp_path / "home" / "demo"
    # 12 passes over 2 simulated days: a demo-day flow run a day (a task a pass, a
    # daily task a day), then the report flow
    assert re.search(r"12 journey passes, 3 Prefect flow runs, 0 failed", result.stdout)
    assert (home / "report" / "index.html").is_file()
    day_runs = _flow_runs("demo-day-", started)
    assert sorted(r.name for r in day_runs) == ["demo-day-2026-03-02", "demo-day-2026-03-03"]
    assert all(r.state is not None and r.state.is_completed() for r in day_runs)
    assert len(_flow_runs("report-", started)) == 1

    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    try:
        with engine.connect() as connection:
            sent = Counter(
                dict(
                    connection.execute(
                        select(MESSAGES.c.channel, func.count())
                        .where(and_(MESSAGES.c.status == "sent", MESSAGES.c.channel != "webhook"))
                        .group_by(MESSAGES.c.channel)
                    ).all()
                )
            )
            enrolled = dict(
                connection.execute(
                    select(ENROLLMENTS.c.journey_key, func.count()).group_by(
                        ENROLLMENTS.c.journey_key
                    )
                ).all()
            )
            converted = dict(
                connection.execute(
                    select(JOURNEY_LOG.c.journey_key, func.count())
                    .where(JOURNEY_LOG.c.kind == "converted")
                    .group_by(JOURNEY_LOG.c.journey_key)
                ).all()
            )
    finally:
        engine.dispose()
    assert sum(sent.values()) > 0 and sum(enrolled.values()) > 0

    # the terminal summary
    shown = re.search(r"messages sent by channel: (.*)", result.stdout)
    assert shown is not None
    assert {
        channel: int(count)
        for channel, count in (part.split() for part in shown.group(1).split(", "))
    } == sent

    # the report flow's tables (the same figures as the HTML page)
    lift = {row["journey"]: row for row in _artifact("report-lift")}
    assert {k: r["treated"] + r["holdout"] for k, r in lift.items() if k in enrolled} == enrolled
    assert {
        k: r["treated_converted"] + r["holdout_converted"]
        for k, r in lift.items()
        if r["treated_converted"] + r["holdout_converted"]
    } == converted
    delivery = {row["channel"]: row["sent"] for row in _artifact("report-delivery")}
    assert {c: n for c, n in delivery.items() if n and c != "webhook"} == sent
    mix = _artifact("report-channel-mix")
    assert {c: sum(row.get(c, 0) for row in mix) for c in sent} == sent
    page = (home / "report" / "index.html").read_text()
    for key, count in enrolled.items():
        assert key in page
        assert str(count) in page
