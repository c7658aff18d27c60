"""Whether a Prefect API is configured is answered without importing Prefect when no
setting could configure one (``track`` and ``events import`` stay light), and through
Prefect's own settings whenever a place it reads them from exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = (
    "import sys\n"
    "from omni_journey.ingest.announce import api_configured\n"
    "print(api_configured(), 'prefect' in sys.modules)\n"
)


def _probe(tmp_path: Path, **env: str) -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    clean.update(HOME=str(home), PREFECT_HOME=str(home / ".prefect"), **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_nothing_configured_means_no_prefect_import(tmp_path: Path) -> None:
    assert _probe(tmp_path) == "False False"


def test_the_environment_variable_is_enough(tmp_path: Path) -> None:
    assert _probe(tmp_path, PREFECT_API_URL="http://127.0.0.1:4200/api") == "True False"


@pytest.mark.parametrize("where", ["profile", "prefect.toml"])
def test_a_settings_file_is_read_by_prefect_itself(tmp_path: Path, where: str) -> None:
    if where == "profile":
        profiles = tmp_path / "home" / ".prefect" / "profiles.toml"
        profiles.parent.mkdir(parents=True)
        profiles.write_text(
            'active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
        )
    else:
        (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:4200/api"\n')
    assert _probe(tmp_path) == "True True"


def test_a_settings_file_without_the_url_is_no_api(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PREFECT_LOGGING_LEVEL=INFO\n")
    assert _probe(tmp_path) == "False True"
