"""The project's own checks, run as part of the suite: ruff, mypy, import layers."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint() -> None:
    result = _run(str(BIN / "ruff"), "check", "omni_journey", "tests", "flows", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "omni_journey", "tests", "flows", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy() -> None:
    result = _run(str(BIN / "mypy"), "omni_journey")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def _declared() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*config["dependencies"], *config["optional-dependencies"]["test"]]
    return {_normal(re.split(r"[\[<>=~!; ]", r, maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_third_party_package_is_declared() -> None:
    """What the package, the flows, the benchmarks and the tests import is declared in
    pyproject.toml (a transitive install is not a promise)."""
    distributions = packages_distributions()
    undeclared: dict[str, str] = {}
    for folder in ("omni_journey", "flows", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in {"omni_journey", "flows"}:
                        continue
                    if top in {"tests", "bench"}:
                        continue
                    owners = {_normal(d) for d in distributions.get(top, [top])}
                    if not owners & _declared():
                        undeclared[top] = str(path.relative_to(ROOT))
    assert undeclared == {}
