"""How many labelled images: the default's accuracy against the number of support images per
defect type, on the suite ``all``, on its untransformed images and on the MVTec protocol
(issue #21: does labelling more images close the suite's gap?).

The target compares ``all`` with the untransformed images at 5 shots. If the gap shrank as the
support grew, the transforms would mostly make each defect type *vary more* (more examples
cover it); a gap that stays is consistent with their *hiding* what tells the types apart from
the default's descriptor (or with a variety that needs far more images than the data
holds). Nothing is chosen here: it reads query labels to evaluate the default ``fsad fit``
shipped when it ran (:data:`research.ROUND_BASELINE`), as the results chapters do.

- Every defect image of a category is described once (its rows as shot and those of its
  turned copies, :func:`fsad.recipe.support_rows`; both cached), with the bank of seed 1.
  A split only selects rows, in the order :func:`fsad.recipe.support_rows` would give them
  for that support, so each cell equals a run of the default on that split (checked:
  5 shots, draws 1-5, against ``support_draws.csv``).
- ``shots`` in :data:`SHOTS`: draws 1-:data:`DRAWS` of
  :func:`research.support_draws.drawn_split` (``shots`` images per type at random, the rest
  its queries); the same images in ``all`` and ``none`` (same file names), so each draw's
  gap is paired image by image.
- ``shots = -1`` (:data:`fsad.report.ALL_OTHERS`): every defect image scored with *all the
  other* defect images of its category as support (:func:`fsad.recipe.leave_one_out`: an
  image leaves with its turned copies), 9 (screw, transistor) to 24 (metal_nut's ``bent``)
  per type: the most labels the data holds. Its per-image predictions go to
  ``--predictions`` (one row per image, ``query`` = ``<type>/<file name>``).
- ``--protocols suite_<transform>`` reads one transform's folder alone (``border``,
  ``illumination``, ...; :data:`PROTOCOLS`), to see which transforms still cost when all the
  other images are labelled (``--shots -1``), paired image by image with ``suite_none``.

Rows go to a CSV (one per protocol, category, shots and draw), with the commit; a rerun
resumes (an all-others cell without predictions in ``--predictions`` is scored again).

**What it found** (``results/explore/shot_curve.csv``, four categories, bank seed 1; the draw
rows at 82d4180 (suites) and 260eec2 (MVTec), the all-others rows and their predictions at
24e7c2b, ``suite_elongated``'s at 8845ee5; scoring is the same code in all of them;
describing a category took 234-420 s on one core for ``all``, ``none`` and MVTec and
370-1025 s for a single transform, a draw about 0.1 s): the change from ``none`` to ``all``
is -20.6 +- 4.9 points at 1 image per type, -24.9 +- 4.4 at 5, -22.6 +- 6.8 at 8 and -21.0
with all the others (mean +- std over 20 draws); ``all`` with all the others labelled scores 65.1 %, between ``none`` with 1 (61.1 %)
and 2 (70.5 %) per type. Only bottle's gap shrinks by more than a point (-12.9 at 1, -7.9
with all the others); those figures are means over the four categories.
The MVTec protocol: 81.2 +- 3.5 % at 5 shots over the 20 draws, 90.2 % with all the others.
With all the others labelled, one transform at a time (bottle, screw, metal_nut: 206 images
paired with ``none``, exact sign test, uncorrected): ``illumination`` -12.6 points
(p < 0.001), ``border`` -6.8 (p 0.013), ``pose`` -4.9 (p 0.064), ``elongated`` -3.9
(p 0.115), ``grey`` -1.0 (p 0.754); ``all`` -21.4 (pooled over these three categories'
images, hence not the -21.0 above). Only ``illumination`` survives Holm's correction over the
five. In each category the single changes add up to at least ``all``'s, yet 26 of the 52
images ``all`` loses are lost by no single transform (:func:`fsad.report.lost_overlap`).

Usage::

    python -m research.shot_curve --suite-root "$SUITE" --protocols suite_all \\
        --out results/explore/shot_curve.csv --predictions results/explore/shot_curve_predictions.csv
    python -m research.shot_curve --suite-root "$SUITE" --protocols suite_grey suite_pose \\
        --shots -1 --categories bottle screw metal_nut --out CSV --predictions CSV
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data import GOOD, Sample, natural_key
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import leave_one_out, recipe_proba, support_rows
from fsad.report import ALL_OTHERS
from fsad.suite import TRANSFORMS
from fsad.utils import atomic_write_csv
from research import ROUND_BASELINE
from research.records import done_cells, merged
from research.support_draws import BANK_SEED, drawn_split, study_engine, study_parser
from research.support_draws import PROTOCOLS as DRAW_PROTOCOLS

#: support images per defect type (screw and transistor hold 10 per type in the shared data,
#: so 8 leaves two queries per type); ALL_OTHERS: all the other images (leave-one-out)
SHOTS = (1, 2, 3, 5, 8, ALL_OTHERS)
#: random support draws per shot count
DRAWS = 20
CELL = ["protocol", "category", "shots", "draw"]
#: a cell of the predictions file (the all-others cells only)
PRED_CELL = ["protocol", "category"]
#: protocol -> the suite's folder (None: the MVTec protocol); ``suite_<transform>``: one
#: transform alone (the suite's single-transform folders)
PROTOCOLS = {**DRAW_PROTOCOLS, **{f"suite_{t}": t for t in TRANSFORMS}}


class DescribedDefects:
    """Every defect image of a category with its rows (as shot and turned), described once.

    Attributes:
        samples: the defect images, natural file order.
        rows: per group, ``(N * P, D_g)``: the N images as shot, then their ``P - 1`` turned
            copies image by image (:func:`fsad.poses.with_poses`).
        source: ``(N * P,)`` each row's image index.
    """

    def __init__(self, samples: Sequence[Sample], rows: list[np.ndarray], source: np.ndarray):
        self.samples = list(samples)
        self.rows, self.source = rows, np.asarray(source)
        self.index = {s.path: i for i, s in enumerate(self.samples)}

    def support(self, chosen: Sequence[Sample]) -> tuple[list[np.ndarray], np.ndarray]:
        """The rows :func:`fsad.recipe.support_rows` gives for ``chosen``: the images as shot
        in the given order, then each one's turned copies; and each row's index in
        ``chosen``."""
        per_image = [np.flatnonzero(self.source == self.index[s.path]) for s in chosen]
        order = np.concatenate([[r[0] for r in per_image], *(r[1:] for r in per_image)])
        where = np.concatenate(
            [np.arange(len(chosen)), *(np.full(len(r) - 1, k) for k, r in enumerate(per_image))]
        )
        return [x[order] for x in self.rows], where

    def query(self, chosen: Sequence[Sample]) -> list[np.ndarray]:
        """Rows ``(Q, D_g)`` of ``chosen`` as shot."""
        first = [int(np.flatnonzero(self.source == self.index[s.path])[0]) for s in chosen]
        return [x[first] for x in self.rows]


def describe(engine) -> DescribedDefects:
    """Rows of every defect image of the engine's category, with the default recipe."""
    samples = sorted(
        (s for s in engine.category.test if s.label != GOOD), key=lambda s: natural_key(s.path)
    )
    rows, source = support_rows(engine, RECIPES[ROUND_BASELINE], samples)
    return DescribedDefects(samples, rows, source)


def score_draw(engine, described: DescribedDefects, shots: int, draw: int) -> dict:
    """Query accuracy of the default on draw ``draw`` with ``shots`` images per type."""
    split = drawn_split(engine.category.test, shots, draw)
    xs, where = described.support(split.support)
    proba = recipe_proba(RECIPES[ROUND_BASELINE], xs, split.support_labels[where],
                         described.query(split.query), split.n_classes)  # fmt: skip
    truth = np.asarray(split.query_labels)
    return {"query_acc": float((predict(proba) == truth).mean()), "n_query": len(truth),
            "chance": split.chance}  # fmt: skip


def score_all_others(engine, described: DescribedDefects) -> tuple[dict, pd.DataFrame]:
    """Each defect image scored with all the other ones as support (leave-one-out).

    Returns:
        the cell's row and its per-image predictions (``category, query, true_label,
        predicted_label``; ``query`` is ``<type>/<file name>``, the same in every suite).
    """
    classes = drawn_split(engine.category.test, 1, 0).classes
    labels = np.asarray([classes.index(s.label) for s in described.samples])
    index, scores = leave_one_out(RECIPES[ROUND_BASELINE], described.rows,
                                  labels[described.source], len(classes), described.source)  # fmt: skip
    predicted = predict(scores)
    counts = np.bincount(labels, minlength=len(classes))
    row = {"query_acc": float((predicted == labels[index]).mean()), "n_query": len(index),
           "chance": float(counts.max() / counts.sum())}  # fmt: skip
    images = [described.samples[i] for i in index]
    preds = pd.DataFrame(
        {
            "category": engine.category.name,
            "query": [f"{s.label}/{Path(s.path).name}" for s in images],
            "true_label": [s.label for s in images],
            "predicted_label": [classes[k] for k in predicted],
        }
    )
    return row, preds


def cells(shots: Sequence[int], draws: int) -> list[tuple[int, int]]:
    """(shots, draw) of every cell: draws 1..draws per shot count, one cell (draw 0) for
    :data:`fsad.report.ALL_OTHERS`."""
    return [(k, 0) if k == ALL_OTHERS else (k, d) for k in shots for d in range(1, draws + 1)
            if k != ALL_OTHERS or d == 1]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    ap = study_parser(__doc__, PROTOCOLS, DRAW_PROTOCOLS)
    ap.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--predictions", default=None,
                    help="CSV for the per-image predictions of the all-others cells "
                         "(a cell without them there is scored again)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.draws < 1:
        ap.error(f"--draws must be at least 1 (got {args.draws})")
    out = Path(args.out)
    preds_out = Path(args.predictions) if args.predictions else None
    if preds_out is None and ALL_OTHERS in args.shots:
        print("no --predictions: the all-others cells' per-image predictions are not kept "
              "(a later run with --predictions scores them again)", flush=True)  # fmt: skip
    commit = git_commit(Path(__file__).resolve().parents[1])
    done = done_cells(out, CELL)
    with_preds = done_cells(preds_out, PRED_CELL) if preds_out else None
    for protocol in args.protocols:
        for name in args.categories:
            todo = [c for c in cells(args.shots, args.draws) if (protocol, name, *c) not in done
                    or (c[0] == ALL_OTHERS and with_preds is not None
                        and (protocol, name) not in with_preds)]  # fmt: skip
            if not todo:
                continue
            engine = study_engine(PROTOCOLS[protocol], name, args)
            t0 = time.time()
            described = describe(engine)
            print(f"{protocol} {name}: described in {time.time() - t0:.0f} s", flush=True)
            rows, preds = [], []
            stamp = {"protocol": protocol, "method": ROUND_BASELINE, "bank_seed": BANK_SEED,
                     "git_commit": commit}  # fmt: skip
            for shots, draw in todo:
                t0 = time.time()
                if shots == ALL_OTHERS:
                    row, pred = score_all_others(engine, described)
                    preds.append(pred.assign(shots=shots, **stamp))
                else:
                    row = score_draw(engine, described, shots, draw)
                row.update(category=name, shots=shots, draw=draw, **stamp,
                           seconds=round(time.time() - t0, 2),
                           timestamp=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
                rows.append(row)
            atomic_write_csv(out, merged(out, rows, CELL))
            if preds and preds_out:
                atomic_write_csv(preds_out, merged(preds_out, pd.concat(preds).to_dict("records"),
                                                   PRED_CELL))  # fmt: skip
            print(f"{protocol} {name}: {len(rows)} cells written", flush=True)


if __name__ == "__main__":
    main()
