"""``load_valid_project`` parses a project once per process while its files are
unchanged, and again as soon as one changes, appears or goes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from omni_journey.errors import SpecError
from omni_journey.service.pipeline import load_valid_project
from omni_journey.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder in ("journeys", "segments", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_an_unchanged_project_is_parsed_once(project: Path) -> None:
    settings = Settings(project_dir=project)
    first = load_valid_project(settings)
    assert load_valid_project(settings) is first


def test_a_changed_added_or_removed_file_is_read_again(project: Path) -> None:
    settings = Settings(project_dir=project)
    first = load_valid_project(settings)
    journey = project / "journeys" / "browse_abandonment.yaml"
    journey.write_text(journey.read_text().replace("for: 1h", "for: 2h"))
    _touch_later(journey)
    second = load_valid_project(settings)
    assert second is not first
    assert "seconds=7200" in str(second.journeys["browse_abandonment"].steps[0])

    (project / "journeys" / "broken.yaml").write_text("key: broken\nsteps: []\nnope: 1\n")
    with pytest.raises(SpecError):
        load_valid_project(settings)
    (project / "journeys" / "broken.yaml").unlink()
    assert set(load_valid_project(settings).journeys) == set(second.journeys)
