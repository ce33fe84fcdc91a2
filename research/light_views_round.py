"""Photometric round 10 (issue #21, item 3): one head over two photometric views of every
image, the images as shot and photometric round 9's flattened and relit copies, judged
image by image against its own noise.

**Why.** Rounds 8 and 9 each undid light image by image (:mod:`research.log_light_round`,
:mod:`research.flat_light_round`). Each moved the suite's leave-one-out up (+5.0 and +2.7
points) and neither was adopted; their query records, which decide nothing and were read
before this candidate was chosen, rose on some products and fell on others (bottle on the
suite -9.7 and -11.8, screw +10.7 and +14.6). A correction that helps one image and
misleads another (the weakness named before both: a window's framing moves the fit as light
would) can be hedged by keeping both views: the default's head is already a product of
experts, one per descriptor group (:func:`fsad.recipe.recipe_proba`); this candidate gives
it every group twice, once from each view, so a class must be likely under both.

**The candidate** (label-free: round 9's copies read only pixels and the category's normal
images):

- the default ``hires_lite0_poe_proto_rot4_fixed``'s rows of each support and query image
  from the images as shot and from round 9's copies (same stems, so the same few-shot
  split; the turned support copies of each view as the default makes them);
- :func:`fsad.recipe.recipe_proba` on the two views' groups side by side: the product of
  the logistic experts and the prototype experts of both. Leave-one-out takes an image out
  with all its rows in both views (:func:`fsad.recipe.leave_one_out`).

Round 9's copies, not round 8's, because their features are in the cache (cells of seconds,
not minutes); nothing was compared to choose between them. It would cost a user about twice
the default's encoding, plus the copy's fit (not timed).

- ``baseline``: the default on the images as they are; its rows are round 8's (as in
  round 9: ``results/explore/log_light.csv``, copied);
- ``light_views``: the two views' product.

Signal and rule: photometric round 8's, unchanged and committed before this round's first
row (:func:`fsad.report.image_verdict`, level 0.10 one-sided, support leave-one-out at 5
shots, four categories, seeds 1-3, the MVTec protocol and the suite ``all``; adopted when
the mean over the two protocols is positive, random signs reach it in at most 10 % of
10 000 draws, and neither protocol shows a loss random signs reach in at most 10 %). Adopted,
it is measured with a grid over seeds 1-5; else its code stays here. Query outcomes are
recorded and decide nothing.

**What the round found** (``results/explore/light_views.csv``: 1476 candidate rows from a
clean clone at 34c91a2 beside round 8's 1476 baseline rows; ``light_views_cells.csv`` from
it): *lost*. Support leave-one-out, seeds 1-3: MVTec protocol 85.2 ± 1.0 -> 85.4 ± 0.7 %
(screw 84.0 -> 86.7, transistor 80.0 -> 76.7), suite ``all`` 55.0 ± 1.3 -> 57.9 ± 0.3 %
(metal_nut 46.7 -> 56.7, screw 53.3 -> 58.7, transistor 40.0 -> 31.7): +1.56 points
averaged, which random signs on the 27 moved images reach in 22 % of draws (10 % needed).
The query record, deciding nothing: 71.8 -> 72.4 % and 58.6 -> 61.1 % (suite bottle
63.9 -> 52.1, as round 9's copies alone: the product did not hedge it). Cells took 2-6 s
on one core, every feature from the cache (rounds 8 and 9's runs).

Usage (``FL``, ``FL_SUITE``: round 9's copies, ``python -m research.flat_light_round
--copy``)::

    python -m research.light_views_round --suite "$SUITE/all" --copy-data FL \\
        --copy-suite FL_SUITE/all --out CSV
    python -m research.light_views_round --out CSV --report --earlier EARLIER_CSV
    python -m research.light_views_round --out CSV --cells CELLS_CSV  # one row per cell
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fsad.data import FewShotSplit, few_shot_split
from fsad.engine import ResidualEngine
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe, sample_rows, support_rows
from research import image_round
from research import light_subspace_round as ls
from research.paired_outcomes import prediction_rows
from research.recipe_round import predictions
from research.robust import category_of, round_parser

CANDIDATE = "light_views"


def two_view_rows(
    shot: ResidualEngine, relit: ResidualEngine, recipe: Recipe
) -> tuple[FewShotSplit, list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """The cell's split and the recipe's rows from both views, groups side by side.

    Returns:
        ``(split, support rows per group (2 G groups), source (R,), query rows per group)``;
        the first ``G`` groups are the images as shot, the next ``G`` the relit copies.

    Raises:
        SystemExit: the two views' splits differ (image names or labels), or their support
            rows come in another order.
    """
    split, other = (few_shot_split(e.category.test, image_round.SHOTS) for e in (shot, relit))
    for a, b in ((split.support, other.support), (split.query, other.query)):
        if [(s.path.stem, s.label) for s in a] != [(s.path.stem, s.label) for s in b]:
            raise SystemExit(f"{shot.category.name}: the two views' splits differ")
    xs_a, source = support_rows(shot, recipe, split.support)
    xs_b, source_b = support_rows(relit, recipe, other.support)
    if not np.array_equal(source, source_b):
        raise SystemExit(f"{shot.category.name}: the two views' support rows differ in order")
    xq = sample_rows(shot, recipe, split.query) + sample_rows(relit, recipe, other.query)
    return split, xs_a + xs_b, source, xq


def view_outcome_rows(
    shot: ResidualEngine, relit: ResidualEngine, recipe: Recipe | None = None
) -> list[dict]:
    """One row per left-out support image and per query of the cell: its file, its class
    and whether the recipe's product over both views (:func:`two_view_rows`; default: the
    default method's recipe) gets it right, through the head code of every round
    (:func:`research.recipe_round.predictions`)."""
    recipe = recipe or RECIPES[ls.BASELINE]
    return prediction_rows(predictions(recipe, *two_view_rows(shot, relit, recipe)), CANDIDATE)


def relit_engine(args: argparse.Namespace, protocol: str, shot: ResidualEngine) -> ResidualEngine:
    """The engine of ``shot``'s cell on round 9's copies (``args.copy_data``,
    ``args.copy_suite``): same category, settings and seed."""
    suite = Path(args.copy_suite) if args.copy_suite else None
    category = category_of(protocol, Path(args.copy_data), suite, shot.category.name)
    return ResidualEngine(category, shot.config, seed=shot.seed)


def main(argv: Sequence[str] | None = None) -> None:
    """``--report`` and ``--cells`` as every image round (:func:`research.image_round.main`);
    otherwise score the candidate's cells from the data and round 9's copies
    (:func:`research.image_round.run` with :func:`view_outcome_rows`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a.split("=")[0] in ("--report", "--cells") for a in argv):
        image_round.main(argv, __doc__, CANDIDATE)
        return
    ap = round_parser(__doc__, suite_required=False)
    ap.add_argument("--copy-data", required=True, help="round 9's copy of the data root")
    ap.add_argument("--copy-suite", help="round 9's copy of the suite `all` folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(image_round.SEEDS))
    args = ap.parse_args(argv)
    if "suite_all" in args.protocols and not (args.suite and args.copy_suite):
        ap.error("the suite protocol needs --suite and --copy-suite")
    args.variant = CANDIDATE
    image_round.run(args, score=lambda p, e: view_outcome_rows(e, relit_engine(args, p, e)))


if __name__ == "__main__":
    main()
