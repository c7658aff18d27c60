"""``omni-journey validate`` and ``omni-journey schema`` run as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "omni_journey"]


def _run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    environment.update(env)
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder in ("journeys", "segments", "templates", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / "shop" / folder)
    return tmp_path / "shop"


def test_the_examples_pass(project: Path) -> None:
    result = _run("validate", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("checked ")
    assert result.stdout.splitlines()[-1].endswith(" files: no problems")


def test_a_mistake_fails_with_a_located_hinted_report(project: Path) -> None:
    journey = project / "journeys/cart_abandonment.yaml"
    broken = journey.read_text().replace(
        "    channel: [push, email]", "    chanel: [push, email]", 1
    )
    journey.write_text(broken)
    line, source = next(
        (n, text) for n, text in enumerate(broken.splitlines(), 1) if "chanel:" in text
    )
    result = _run("validate", cwd=project)
    assert result.returncode == 1
    assert result.stdout == (
        f'journeys/cart_abandonment.yaml:{line}:5: error[unknown-field] step "remind" has no'
        ' setting "chanel"\n'
        f"{line:>5} | {source}\n"
        "      |     ^^^^^^\n"
        "  expected: one of channel, id, message, name, next, send_at, type\n"
        '  hint: did you mean "channel"?\n'
        "\n" + result.stdout.splitlines()[-1] + "\n"
    )
    assert result.stdout.splitlines()[-1].startswith("1 error in 1 of ")


def test_json_output_for_scripts(project: Path) -> None:
    (project / "segments/vip.yaml").write_text("key: vip\nmatch: {segment: vipp}\n")
    result = _run("validate", "segments", "--format", "json", cwd=project)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"] == 1
    assert report["files"] == len(list((project / "segments").glob("*.yaml")))
    [problem] = report["diagnostics"]
    assert problem["path"] == "segments/vip.yaml"
    assert (problem["line"], problem["col"], problem["code"]) == (2, 18, "unknown-segment")
    assert problem["hint"] == 'did you mean "vip"?'


def test_default_paths_come_from_omni_project_dir(project: Path, tmp_path: Path) -> None:
    (project / "journeys/win_back.yaml").write_text("key: win_back\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run("validate", cwd=elsewhere, OMNI_PROJECT_DIR=str(project))
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{project.resolve().as_posix()}/journeys/win_back.yaml:1:1: error[")
    empty = _run("validate", cwd=elsewhere)
    assert empty.returncode == 2 and "nothing to validate" in empty.stderr


def test_a_missing_path_is_a_usage_error(project: Path) -> None:
    result = _run("validate", "journeys/nope.yaml", cwd=project)
    assert result.returncode == 2


def test_schema_check_and_write(project: Path) -> None:
    assert _run("schema", "--check", cwd=ROOT).returncode == 0
    (project / "schemas/segment.schema.json").write_text("{}\n")
    stale = _run("schema", cwd=project)
    assert stale.returncode == 1 and "stale:" in stale.stdout
    assert "segment.schema.json" in stale.stdout
    wrote = _run("schema", "--write", cwd=project)
    assert wrote.returncode == 0, wrote.stderr
    assert _run("schema", "--check", cwd=project).returncode == 0
    assert (project / "schemas/segment.schema.json").read_text() == (
        ROOT / "schemas/segment.schema.json"
    ).read_text()


def test_message_folders_are_checked_by_the_render_layer(project: Path) -> None:
    message = project / "templates/cart_reminder/message.yaml"
    text = message.read_text()
    message.write_text(text + "subject: Again\n")
    line = len(text.splitlines()) + 1
    result = _run("validate", "templates/cart_reminder", cwd=project)
    assert result.returncode == 1
    assert f"templates/cart_reminder/message.yaml:{line}:1: error[duplicate-key]" in result.stdout
    assert "journeys/" not in result.stdout
