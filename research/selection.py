"""Score candidate recipes on the label-free selection signals (and record their queries).

A candidate is a :class:`fsad.recipe.Recipe`. For each category and seed it gets:

- ``synth_1shot``, ``synth_5shot``: mean accuracy on synthetic few-shot tasks among texture
  pseudo-defects pasted on the category's normal images (:mod:`research.synthtask`);
- ``support_loo``: leave-one-out accuracy inside the largest real support set (5 shots;
  tire 4), never touching a query;
- ``query_<n>shot``: the query accuracy, a *record* for the book's appendix, never a
  selection signal.

Rows go to a CSV in the format of ``results/explore/synth.csv`` (one row per candidate,
category and seed; a rerun replaces its cells, every other row is kept). Usage::

    python -m research.selection --data "$FSAD_DATA" --candidates hires_poe hires_poe_proto \\
        --categories bottle --out results/explore/synth.csv

The rounds 1-20 that chose today's recipes, and their code, are kept at the git tag
``selection-rounds-1-20``; a new round adds its candidates to :data:`CANDIDATES` and fixes
its rule before it runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fsad.cache import fingerprint
from fsad.data import few_shot_split, load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe, recipe_proba, sample_rows
from fsad.synth import TextureSource
from fsad.utils import atomic_write_csv
from research.records import data_root, merged
from research.synthtask import SynthTaskConfig, draw_tasks, synthetic_rows, task_accuracy

#: (dataset, category, shot counts) of the paper's protocol on the shared data
GRID = (
    ("mvtec_ad", "bottle", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "transistor", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "screw", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "metal_nut", (1, 2, 3, 4, 5)),
    ("mvtec_3d", "tire", (1, 2, 3, 4)),
)
#: synthetic tasks at these shot counts (8 sources per class: 7 and 3 queries per class)
SYNTH_SHOTS = (1, 5)
#: the candidates: every registered inductive recipe (a new round adds its own)
#: (the recipes fitted on support poses are scored by ``research.robust``: this script's
#: signals see each support image once)
CANDIDATES: dict[str, Recipe] = {n: r for n, r in RECIPES.items() if r.support_poses == 1}
#: the cells a row is keyed by
CELL = ["variant", "category", "seed"]


def head_of(recipe: Recipe):
    """``(support groups, labels, query groups, n) -> (Q, C)``: the recipe's head."""

    def head(xs: list[np.ndarray], ys: np.ndarray, xq: list[np.ndarray], n: int) -> np.ndarray:
        return recipe_proba(recipe, xs, ys, xq, n)

    return head


def loo_accuracy(rows: Sequence[np.ndarray], labels: np.ndarray, n_classes: int, head) -> float:
    """Leave-one-out accuracy of ``head`` inside a support set (per-group ``rows``); a
    support image whose class would vanish without it (1 shot) is skipped."""
    hits = []
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        if len(set(labels[keep].tolist())) < n_classes:
            continue
        p = head([g[keep] for g in rows], labels[keep], [g[i : i + 1] for g in rows], n_classes)
        hits.append(int(predict(p)[0] == labels[i]))
    return float(np.mean(hits)) if hits else float("nan")


def score_candidate(
    engine: ResidualEngine,
    recipe: Recipe,
    shot_list: Sequence[int],
    textures: TextureSource | None,
) -> dict[str, float]:
    """The signals of one candidate on one (category, seed); ``textures=None`` skips the
    synthetic tasks (their columns are NaN)."""
    head, row = head_of(recipe), {}
    for k in SYNTH_SHOTS:
        row[f"synth_{k}shot"] = float("nan")
        if textures is not None:
            config = SynthTaskConfig(shots=k)
            x, y = synthetic_rows(engine, recipe, textures, config)
            row[f"synth_{k}shot"] = task_accuracy(x, y, draw_tasks(y, config), head)
    for k in shot_list:
        split = few_shot_split(engine.category.test, k)
        ys = np.asarray(split.support_labels)
        xs = sample_rows(engine, recipe, split.support)
        if k == shot_list[-1]:
            row["support_loo"] = loo_accuracy(xs, ys, split.n_classes, head)
        xq = sample_rows(engine, recipe, split.query)
        hits = predict(head(xs, ys, xq, split.n_classes)) == np.asarray(split.query_labels)
        row[f"query_{k}shot"] = float(hits.mean())
    return row


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument(
        "--out", required=True, help="CSV to add rows to (results/explore/synth.csv is the record)"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--categories", nargs="+", default=None, choices=[c for _, c, _ in GRID])
    ap.add_argument("--candidates", nargs="+", default=None, choices=sorted(CANDIDATES))
    ap.add_argument("--loo-only", action="store_true", help="no synthetic tasks")
    args = ap.parse_args(argv)
    root = data_root(args.data)
    textures = None if args.loo_only else TextureSource.from_dtd(Path(root) / "dtd")
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    synth_key = (
        "" if args.loo_only else fingerprint(SynthTaskConfig(shots=SYNTH_SHOTS[0]).key())[:12]
    )
    for dataset, name, shot_list in GRID:
        if args.categories and name not in args.categories:
            continue
        category = load_category(Path(root) / dataset, dataset, name)
        for seed in args.seeds:
            engine, rows = ResidualEngine(category, EngineConfig(), seed=seed), []
            for variant in args.candidates or CANDIDATES:
                t0 = time.time()
                row = {"dataset": dataset, "category": name, "variant": variant, "seed": seed}
                row.update(score_candidate(engine, CANDIDATES[variant], shot_list, textures))
                row.update(synth_config=synth_key, seconds=round(time.time() - t0, 1),
                           git_commit=commit,
                           timestamp=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
                rows.append(row)
                print(f"{name} seed {seed} {variant}: synth {row['synth_1shot']:.3f}/"
                      f"{row['synth_5shot']:.3f} loo {row['support_loo']:.3f}", flush=True)  # fmt: skip
            atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
