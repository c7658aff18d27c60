"""``omni-journey validate`` on templates that loop forever or build huge strings: it
ends in seconds, in about the memory of a clean run, and reports each at its line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# validate as a user runs it, reporting its own peak memory (KiB) on stderr at exit
COMMAND = [
    sys.executable,
    "-c",
    "import atexit, resource, runpy, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "f'maxrss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'))\n"
    "sys.argv = ['omni-journey', 'validate']\n"
    "runpy.run_module('omni_journey', run_name='__main__')\n",
]
BOMBS = {
    "bomb_loop": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "bomb_mul": "{{ 'a' * 300000000 }}",
    "bomb_format": "{{ '{:>300000000}'.format(customer.id) }}",
    "bomb_lipsum": "{{ lipsum(n=100000) }}",
}


def _validate(project: Path) -> tuple[subprocess.CompletedProcess[str], float, int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    started = time.monotonic()
    result = subprocess.run(
        COMMAND, cwd=project, env=environment, capture_output=True, text=True, check=False,
        timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    match = re.search(r"^maxrss=(\d+)$", result.stderr, re.MULTILINE)
    assert match, result.stderr
    return result, elapsed, int(match.group(1))


@pytest.mark.timeout(300)
def test_validate_is_bounded_in_time_and_memory_and_says_where(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    for folder in ("journeys", "segments", "templates", "schemas"):
        shutil.copytree(ROOT / folder, project / folder)
    clean, clean_seconds, clean_rss = _validate(project)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    for key, bomb in BOMBS.items():
        folder = project / "templates" / key
        folder.mkdir()
        (folder / "message.yaml").write_text("subject: Hi\nheadline: Hello\nbody: Welcome.\n")
        (folder / "email.html").write_text("<p>{{ message.headline }}</p>\n" + bomb + "\n")
    result, seconds, rss = _validate(project)

    assert result.returncode == 1, result.stdout + result.stderr
    found = re.findall(r"^(templates/\S+): error\[([a-z-]+)\]", result.stdout, re.MULTILINE)
    assert sorted(found) == [
        ("templates/bomb_format/email.html:2:1", "render-too-large"),
        ("templates/bomb_lipsum/email.html:2:4", "unknown-variable"),
        ("templates/bomb_loop/email.html:2:1", "render-too-large"),
        ("templates/bomb_mul/email.html:2:1", "render-too-large"),
    ]
    assert seconds < clean_seconds + 30  # each bomb costs at most its render budget
    assert rss < clean_rss + 100 * 1024  # KiB: nothing of 300 MB was built


@pytest.mark.timeout(300)
def test_validate_stops_a_slow_loop_at_the_render_timeout(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    for folder in ("journeys", "segments", "templates", "schemas"):
        shutil.copytree(ROOT / folder, project / folder)
    folder = project / "templates" / "slow"
    folder.mkdir()
    (folder / "message.yaml").write_text("subject: Hi\nheadline: Hello\nbody: Welcome.\n")
    (folder / "email.html").write_text(
        "<p>{{ message.headline }}</p>\n" + BOMBS["bomb_loop"] + "\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    environment |= {"OMNI_RENDER_TIMEOUT_SECONDS": "0.5", "OMNI_RENDER_MAX_CHARS": "100000000"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "omni_journey", "validate"], cwd=project, env=environment,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip

    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    assert "templates/slow/email.html:2:1: error[render-timeout] " in result.stdout
    assert "did not finish rendering: rendering took longer than 0.5 s" in result.stdout
