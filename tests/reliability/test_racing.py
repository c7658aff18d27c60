"""Racing: every command started twice at once, as a schedule and a trigger (or two
operators) would, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.reliability.crash import Workload, another_database, run_clean, run_racing, snapshot

pytestmark = pytest.mark.slow


def test_every_command_run_twice_at_once_does_the_work_once(store: Engine, tmp_path: Path) -> None:
    """Two importers, two runners and two dispatchers racing on one store, as a schedule
    and a trigger (or two operators) would: every copy succeeds, and the store and the
    outbox hold what one clean run leaves."""
    url = store.url.render_as_string(hide_password=False)
    store.dispose()
    clean = Workload.shop(tmp_path / "clean", None if store.dialect.name == "sqlite" else url)
    run_clean(clean)
    expected = snapshot(clean)
    racing = Workload.shop(tmp_path / "racing", another_database(store, url))
    run_racing(racing)
    found = snapshot(racing)
    for part in expected:
        assert found[part] == expected[part], part
