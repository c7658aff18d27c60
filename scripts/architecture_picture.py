"""Draw docs/images/architecture.png from the code itself.

The rows are the layers of the import-linter contract in pyproject.toml (top: the
command line; bottom: errors); each box is a package, its width its lines of code;
each arrow is "imports", with the number of import statements, read from the code
with grimp (import-linter's own graph). Run after a restructuring:

    .venv/bin/python scripts/architecture_picture.py
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import grimp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs/images/architecture.png"
GROUND = {"errors", "settings"}  # used by nearly everything: arrows to them are left out


def layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            return [[name.strip() for name in row.split("|")] for row in contract["layers"]]
    raise SystemExit("no layers contract in pyproject.toml")


def lines_of(package: str) -> int:
    base = ROOT / "omni_journey" / package
    files = list(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    return sum(len(f.read_text().splitlines()) for f in files if "migrations" not in f.parts)


def edges(packages: set[str]) -> Counter[tuple[str, str]]:
    graph = grimp.build_graph("omni_journey")
    counts: Counter[tuple[str, str]] = Counter()
    for importer in graph.modules:
        src = importer.split(".")[1] if "." in importer else None
        if src not in packages:
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            dst = imported.split(".")[1] if imported.count(".") else None
            if dst in packages and dst != src:
                counts[(src, dst)] += 1
    return counts


def main() -> None:
    rows = [row for row in layers() if row != ["__main__"]]
    packages = {name for row in rows for name in row}
    size = {name: max(lines_of(name), 40) for name in packages}
    fig, ax = plt.subplots(figsize=(13, 1.05 * len(rows) + 1))
    box: dict[str, tuple[float, float, float]] = {}  # name -> (x centre, y, width)
    for level, row in enumerate(rows):
        y = len(rows) - level
        total = sum(size[name] ** 0.5 for name in row)
        widths = [min(11.5 * size[n] ** 0.5 / max(total, 1), 3.2) for n in row]
        if len(row) == 1:
            widths = [2.4]
        x = 6.5 - (sum(widths) + 0.1 * (len(row) - 1)) / 2
        for name, width in zip(row, widths, strict=True):
            box[name] = (x + width / 2, y, width)
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - 0.3),
                    width - 0.15,
                    0.6,
                    boxstyle="round,pad=0.02",
                    facecolor="#dbe8f5" if name != "lab" else "#f3e1e1",
                    edgecolor="#3b5b7a",
                )
            )
            ax.text(
                x + (width - 0.15) / 2,
                y + 0.06,
                name,
                ha="center",
                va="center",
                fontsize=10,
                weight="bold",
            )
            ax.text(
                x + (width - 0.15) / 2,
                y - 0.17,
                f"{size[name]:,} lines",
                ha="center",
                va="center",
                fontsize=7,
                color="#555555",
            )
            x += width + 0.1
    for (src, dst), count in sorted(edges(packages).items()):
        if dst in GROUND:
            continue
        (x1, y1, _), (x2, y2, _) = box[src], box[dst]
        ax.add_patch(
            FancyArrowPatch(
                (x1, y1 - 0.3),
                (x2, y2 + 0.3),
                arrowstyle="-|>",
                mutation_scale=7,
                color="#7a8da0",
                alpha=0.5,
                linewidth=0.4 + min(count, 40) / 20,
                connectionstyle="arc3,rad=0.08",
            )
        )
    ax.set_xlim(0, 13)
    ax.set_ylim(0.4, len(rows) + 0.7)
    ax.axis("off")
    ax.set_title(
        "omni_journey: packages by layer (import-linter); arrows = imports read from the code\n"
        "(arrow width ~ import statements; imports of errors and settings, used by nearly"
        " every package, are left out)",
        fontsize=11,
    )
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT.relative_to(ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
