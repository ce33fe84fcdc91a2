"""How far to trust a fitted model: ``fsad fit``'s leave-one-out estimate next to the
accuracy the grid measured on the queries of the same cell.

For each category and shot count (seed 1), a model is fitted as ``fsad fit`` does
(:class:`fsad.inspector.Inspector`, ``--method``, by default ``fsad fit``'s; the paper's
centre crop, so the model is the grid's), on ``train/good`` and the grid's support (the
first n files of each defect type). Its leave-one-out estimate uses the support images
only; the measured accuracy is read from the committed grid results of that cell (its
queries' labels are used for this report only, never by the fit). Rows are appended to
``OUT/trust.csv`` as they come (atomic rewrite; a rerun skips the (category, shots, method)
cells already there), with the git commit.

Usage (warm caches: seconds per fit; from an empty cache each category first builds its
engines)::

    python scripts/trust_vs_grid.py --data $FSAD_DATA --out results/trust \\
        --categories bottle transistor tire --shots 1 4 5

A cell the grids do not hold (the ``*_rot4`` methods' grids have shots 1, 3 and 5 on MVTec
AD and 1 and 4 on tire) is skipped with a line, before any fit.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from fsad.data import load_category
from fsad.evaluate.provenance import git_commit
from fsad.inspector import DEFAULT_METHOD, Inspector
from fsad.utils import atomic_write_csv

ROOT = Path(__file__).resolve().parents[1]
#: (dataset, category, the committed grid folders that may hold the method's cell)
CELLS = [
    ("mvtec_ad", "bottle", ("beyond", "poses/mvtec")),
    ("mvtec_ad", "transistor", ("beyond", "poses/mvtec")),
    ("mvtec_ad", "screw", ("beyond", "poses/mvtec")),
    ("mvtec_ad", "metal_nut", ("beyond", "poses/mvtec")),
    ("mvtec_3d", "tire", ("beyond_3d", "poses/mvtec_3d")),
]


def _grid_row(folders: tuple[str, ...], category: str, method: str, shots: int) -> pd.Series | None:
    """The committed grid row of the cell (seed 1), from the first folder that holds it;
    None when none does."""
    for folder in folders:
        frame = pd.read_csv(ROOT / "results" / folder / "results.csv")
        rows = frame[
            (frame.category == category)
            & (frame.method == method)
            & (frame.shots == shots)
            & (frame.seed == 1)
        ]
        if len(rows) == 1:
            return rows.iloc[0]
    return None


def trust_row(
    data: Path, dataset: str, category: str, grid: pd.Series, shots: int, method: str
) -> dict:
    """Fit one cell's model and return its estimate next to the grid's measured accuracy
    (``grid``: the cell's committed row)."""
    cat = load_category(data / dataset, dataset, category)
    support: dict[str, list[Path]] = {}
    for s in cat.test:
        if not s.is_good:
            support.setdefault(s.label, []).append(s.path)
    support = {t: files[:shots] for t, files in support.items()}
    insp = Inspector(method=method, framing="crop", seed=1)
    insp.fit([s.path for s in cat.train], support)
    trust = insp.trust
    return {
        "dataset": dataset,
        "category": category,
        "method": method,
        "shots": shots,
        "seed": 1,
        "n_classes": len(insp.classes),
        "loo_accuracy": trust["accuracy"],
        "loo_stderr": trust["stderr"],
        "loo_images": trust["n_images"],
        "uniform_chance": trust["chance"],
        "grid_accuracy": float(grid["accuracy"]),
        "grid_queries": int(grid["n_query"]),
        "grid_chance": float(grid["chance"]),
        "git_commit": git_commit(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("FSAD_DATA"))
    ap.add_argument("--out", type=Path, required=True, help="results folder, e.g. results/trust")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--categories", nargs="+", default=None, help="default: every category")
    ap.add_argument("--method", default=DEFAULT_METHOD, help="default: fsad fit's default")
    args = ap.parse_args()
    if args.data is None:
        raise SystemExit("give --data or set FSAD_DATA")
    csv = args.out / "trust.csv"
    frame = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    cells = [c for c in CELLS if args.categories is None or c[1] in args.categories]
    for dataset, category, folders in cells:
        for shots in args.shots:
            if (
                not frame.empty
                and (
                    (frame.category == category)
                    & (frame.shots == shots)
                    & (frame.method == args.method)
                ).any()
            ):
                continue
            grid = _grid_row(folders, category, args.method, shots)
            if grid is None:  # looked up before the fit: no cell, nothing to compare
                print(f"{category} {shots}-shot: no grid row of {args.method} in {folders}")
                continue
            row = trust_row(args.data, dataset, category, grid, shots, args.method)
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
            atomic_write_csv(csv, frame)
            print(f"{category} {shots}-shot: {row}", flush=True)


if __name__ == "__main__":
    main()
