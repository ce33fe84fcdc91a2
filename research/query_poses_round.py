"""Robustness round 4 (issue #21, item 3): each query also seen in its other poses (test-time
poses), chosen without query labels on the MVTec protocol and the generalisation suite together.

Round 2 made the recommended recipe see every *support* image in four poses (``rot4``: as
shot, turned by 90, 180 and 270 degrees, :mod:`fsad.poses`), so each class's rows span the
poses its few images happen not to show. A query is still seen once, in the one pose it was
shot in. The candidate scores the query the way the support is described: in its four poses,
through the same head, and averages the class probabilities of the four (the arithmetic mean,
the usual test-time augmentation). Nothing else changes: the memory bank, the head and its
fit, and the rows of the query as shot are the baseline's.

- ``baseline``: ``fsad fit``'s default of the time (:data:`research.ROUND_BASELINE`), each
  query as shot;
- ``query_rot4``: the same fitted head; each query's class probabilities are the mean over the
  query as shot and its 90, 180 and 270 degree turns.

Signal: support leave-one-out at 5 shots, the four MVTec AD categories, on the MVTec protocol
(centre crop) and on the suite ``all`` (whole image), as the earlier rounds. A left-out image
leaves with its poses (:func:`fsad.recipe.leave_one_out`); the head fitted on the others scores
its four pose rows; ``baseline`` reads the row as shot, ``query_rot4`` the mean of the four.
Both variants come from the same fits, so the comparison is paired cell by cell. Query
accuracy is recorded for the appendix, never used.

**The rule, fixed before the run** (as robustness round 1's): ``query_rot4`` is *adopted*
(implemented as a recipe option of the recommended method and measured with a grid next) when
its leave-one-out averaged over the two protocols beats the baseline's by at least 1 point and,
on the MVTec protocol alone, is not below the baseline by more than one sample standard
deviation over seeds (of the baseline's category-averaged leave-one-out). Otherwise it is
recorded as lost.

Seeds 1-3 were planned (as photometric round 1); every seed draws the same support images, so
seeds differ by the bank's coreset only. **What ran: seed 1 only.** With the caches cold a
cell of bottle took 1134 s on one core (the 448 px engine's coreset of 209 normals), so the
MVTec protocol alone would not have finished within the session; the run was restarted with
``--seeds 1`` after bottle's seeds 1 and 2 (MVTec protocol) had been seen, before any other
row (both seeds: leave-one-out 86.7 % for both variants). With one seed the guard's standard
deviation comes from speed round 1's rows of the same recipe (seeds 1-5; the harness
reproduces its MVTec seed-1 cells exactly, see below): the baseline's sample std over seeds of its
category-averaged leave-one-out on the MVTec protocol. Bottle's seed-2 rows stay in the
record; the comparison takes the seeds every category holds. The baseline's leave-one-out
must equal speed round 1's rows of the same recipe (``drop_lite2``), a check of the harness
that ``--check`` runs.

**What the round found** (``results/explore/query_poses.csv``, seed 1, four categories):
*lost*. Support leave-one-out, the category mean: MVTec protocol 84.2 % (baseline) against
79.2 % (``query_rot4``; screw 80 -> 60 %, transistor 80 -> 75 %, metal_nut 90 -> 95 %),
suite ``all`` 48.6 % against 45.9 %; averaged over the two, -3.8 points, and the MVTec guard
(the baseline's std over speed round 1's seeds: 1.4 points) fails. The query record agrees
on the MVTec protocol (69.5 -> 65.7 %) and is a point lower on the suite (57.4 -> 56.3 %).
``--check``: the MVTec protocol's five baseline cells equal speed round 1's; on the suite
only metal_nut's does (bottle's and screw's leave-one-out, transistor's and screw's query
accuracy differ), most likely because the suite's images were regenerated since with
another OpenCV build (``results/suite/README.md``); both variants read the same images.
Usage::

    python -m research.query_poses_round --suite "$SUITE/all" --seeds 1 --out CSV
    python -m research.query_poses_round --check results/explore/speed_loo.csv CSV
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fsad.data import few_shot_split
from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import image_labels, with_poses
from fsad.recipe import Recipe, posed_sample_rows, recipe_proba, sample_rows, support_rows
from research import ROUND_BASELINE
from research.photometric_round import SPEED_BASELINE
from research.robust import round_parser, run_paired_cells

SHOTS = 5
VARIANTS = ("baseline", "query_rot4")
CELL = ["protocol", "category", "seed", "variant"]


def pooled(proba: np.ndarray, source: np.ndarray, n_images: int) -> np.ndarray:
    """Mean class probabilities ``(n_images, C)`` of each image's rows.

    Args:
        proba: ``(R, C)`` probabilities of every row.
        source: ``(R,)`` the image each row comes from, ``0..n_images-1``.
    """
    out = np.zeros((n_images, proba.shape[1]))
    np.add.at(out, source, proba)
    return out / np.bincount(source, minlength=n_images)[:, None]


def pose_loo(
    recipe: Recipe,
    rows: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    source: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support leave-one-out where the left-out image is also scored in its poses.

    Args:
        rows: per group, support rows ``(R, D_g)`` with their poses (:func:`support_rows`);
            labels ``(R,)``; ``source`` ``(R,)`` each row's image (the first rows as shot).

    Returns:
        ``index`` ``(K,)``: the images left out (as :func:`fsad.recipe.leave_one_out`);
        ``shot`` ``(K, C)``: the scores of each as shot (the baseline: the very scores
        ``leave_one_out`` gives); ``posed`` ``(K, C)``: the mean over its pose rows.
    """
    shot_labels = image_labels(labels, source)
    counts = np.bincount(shot_labels, minlength=n_classes)
    index = np.flatnonzero(counts[shot_labels] >= 2)
    shot, posed = np.zeros((len(index), n_classes)), np.zeros((len(index), n_classes))
    for k, i in enumerate(index):
        keep, mine = source != i, np.flatnonzero(source == i)  # mine[0]: row i, as shot
        p = recipe_proba(
            recipe, [x[keep] for x in rows], labels[keep], [x[mine] for x in rows], n_classes
        )
        shot[k], posed[k] = p[0], p.mean(axis=0)
    return index, shot, posed


def score_engine(engine: ResidualEngine) -> list[dict]:
    """Both variants' support leave-one-out and (recorded) query accuracy on one cell."""
    recipe = RECIPES[ROUND_BASELINE]
    split = few_shot_split(engine.category.test, SHOTS)
    labels, truth = np.asarray(split.support_labels), np.asarray(split.query_labels)
    t0 = time.time()
    xs, source = support_rows(engine, recipe, split.support)
    index, shot, posed = pose_loo(recipe, xs, labels[source], split.n_classes, source)
    t_loo = time.time() - t0
    xq, q_source = with_poses(
        sample_rows(engine, recipe, split.query),
        posed_sample_rows(engine, recipe, split.query),
        recipe.support_poses,
    )
    p = recipe_proba(recipe, xs, labels[source], xq, split.n_classes)
    query = {"baseline": p[: len(truth)], "query_rot4": pooled(p, q_source, len(truth))}
    loo = {"baseline": shot, "query_rot4": posed}
    return [
        {
            "variant": v,
            "method": ROUND_BASELINE,
            "shots": SHOTS,
            "support_loo": float((predict(loo[v]) == labels[index]).mean()),
            "n_left_out": len(index),
            "query_acc": float((predict(query[v]) == truth).mean()),
            "n_query": len(truth),
            "loo_seconds": round(t_loo, 1),
            "seconds": round(time.time() - t0, 1),
        }
        for v in VARIANTS
    ]


def check(speed_csv: Path, out: Path) -> int:
    """Compare this round's baseline rows with speed round 1's of the same recipe; returns
    the number of cells compared (raises SystemExit naming the first that differs)."""
    import pandas as pd

    keys = ["protocol", "category", "seed"]
    speed = pd.read_csv(speed_csv)
    speed = speed[(speed["candidate"] == SPEED_BASELINE) & (speed["shots"] == SHOTS)]
    mine = pd.read_csv(out)
    both = mine[mine["variant"] == "baseline"].merge(speed, on=keys, suffixes=("", "_speed"))
    for _, row in both.iterrows():
        for col in ("support_loo", "query_acc"):
            if not np.isclose(row[col], row[f"{col}_speed"]):
                cell = tuple(row[k] for k in keys)
                raise SystemExit(f"{cell}: {col} {row[col]} here, {row[f'{col}_speed']} there")
    return len(both)


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--check":
        if len(argv) != 3:
            raise SystemExit("usage: --check SPEED_LOO_CSV CSV")
        print(f"{check(Path(argv[1]), Path(argv[2]))} cells equal speed round 1's")
        return
    ap = round_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args(argv)
    run_paired_cells(args, score_engine, CELL, git_commit(Path(__file__).resolve().parents[1]))


if __name__ == "__main__":
    main()
