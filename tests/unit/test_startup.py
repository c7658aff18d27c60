"""Start-up stays light: ``omni-journey --help`` imports no command module, and no
command's ``--help`` imports scikit-learn, scipy, matplotlib or Prefect.

Each check runs the real command in a child Python (a fresh ``sys.modules``) and reads
back which modules it loaded; the speed itself is measured in bench/README.md.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typer.core import TyperGroup

from omni_journey.cli import COMMANDS
from omni_journey.cli.lazy import load, module_group

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "matplotlib", "prefect")

#: Runs each argv through ``omni_journey.cli:main`` in this one process and records, after
#: each, its exit code, the heavy packages loaded so far and every omni_journey module.
CHILD = """
import json, sys
from omni_journey.cli import main
argvs, out, heavy = json.loads(sys.argv[1]), sys.argv[2], set(sys.argv[3].split(","))
results = []
for argv in argvs:
    sys.argv = ["omni-journey", *argv]
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    results.append({
        "argv": argv,
        "code": code,
        "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
        "ours": sorted(m for m in sys.modules if m.split(".")[0] == "omni_journey"),
    })
with open(out, "w") as file:
    json.dump(results, file)
"""


def run_in_process(
    argvs: Sequence[Sequence[str]],
    tmp_path: Path,
    *,
    cwd: Path = ROOT,
    heavy: Sequence[str] = HEAVY,
    **env: str,
) -> tuple[list[dict[str, Any]], str]:
    """Run the commands one after the other in one child Python: a record for each, and
    what they printed; ``heavy``: the top-level packages each record lists if loaded."""
    out = tmp_path / "startup.json"
    environment = {**os.environ, "OMNI_HOME": str(tmp_path / "home"), **env}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            json.dumps([list(a) for a in argvs]),
            str(out),
            ",".join(heavy),
        ],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records: list[dict[str, Any]] = json.loads(out.read_text())
    return records, result.stdout


def test_top_level_help_lists_every_command_and_imports_none(tmp_path: Path) -> None:
    [record], help_text = run_in_process([["--help"]], tmp_path)
    assert record["code"] == 0
    assert record["heavy"] == []
    assert record["ours"] == ["omni_journey", "omni_journey.cli", "omni_journey.cli.lazy"]
    for entry in COMMANDS:
        assert f" {entry.name} " in help_text, entry.name
    assert "Fit the channel model" in help_text


def test_python_dash_m_shows_the_same_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "omni_journey", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for entry in COMMANDS:
        assert f" {entry.name} " in result.stdout, entry.name


def _help_argvs() -> list[list[str]]:
    argvs: list[list[str]] = []
    for entry in COMMANDS:
        argvs.append([entry.name, "--help"])
        command = load(entry)
        if isinstance(command, TyperGroup):
            argvs.extend([entry.name, sub, "--help"] for sub in command.commands)
    return argvs


def test_every_commands_help_works_without_heavy_imports(tmp_path: Path) -> None:
    argvs = _help_argvs()
    assert ["events", "import", "--help"] in argvs and ["run", "--help"] in argvs
    records, _ = run_in_process(argvs, tmp_path)
    assert [r["argv"] for r in records] == argvs
    for record in records:
        assert record["code"] == 0, record["argv"]
        assert record["heavy"] == [], record["argv"]


def test_the_listed_help_is_the_commands_own() -> None:
    for entry in COMMANDS:
        real = load(entry)
        first = inspect.cleandoc(real.help or "").split("\n\n")[0]
        assert entry.help == " ".join(first.split()), entry.name


def test_every_command_of_every_module_is_listed() -> None:
    listed = {(entry.module, entry.name) for entry in COMMANDS}
    assert len(listed) == len(COMMANDS)
    modules = {path.stem for path in (ROOT / "omni_journey" / "cli").glob("*_cmd.py")}
    assert {entry.module for entry in COMMANDS} == modules
    defined = {(module, name) for module in modules for name in module_group(module).commands}
    assert defined == listed


def test_policy_names_are_learned_and_the_baselines() -> None:
    from omni_journey.channels.baselines import BASELINES
    from omni_journey.cli.channels_cmd import POLICY_NAMES

    assert ("learned", *BASELINES) == POLICY_NAMES
