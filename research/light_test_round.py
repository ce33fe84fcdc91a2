"""Robustness round 17 (issue #21): undo each image's own light only where the support's
light test finds that the product's light varies.

**Why.** After round 16 the suite `all`'s cost is mostly its light: dividing the exact drawn
light out of every image (the oracle, :mod:`research.light_oracle`) lifts the default's
predecessor from 58.3 to 70.8 % at 5 shots (chapter 11). Photometric round 12
(:mod:`research.estimated_light_round`) divided out an *estimated* light (the estimator the
label-free light estimate study ranked first, now :mod:`fsad.light_estimate`) and its judge,
signal round 5, approved it; but that judge failed its confirmation (it rises for
corrections that do not lift the queries), so the estimate was recorded, not shipped. No
label-free signal of this project has measured what a light correction is worth. This round
therefore decides *where* to correct by design, as round 16 decided where to turn: a product
shot under one light has nothing to undo, and the estimate would only add its noise. **It
was designed after reading round 12's query record** (the same cells' queries rose 6.0
points on the suite `all`, seeds 1-2, deciding nothing there), said here and in the book.

**The test** (:func:`fsad.light_test.light_test`, through :func:`fsad.light_test.light_gated`,
the code ``fsad run`` runs): each support image's mean patch distance ||r|| on the recipe's
first engine, as shot against a bank of the normals as shot, and with its light undone
(:func:`fsad.light_estimate.undo_light`, the product's reference read from its normals)
against a bank of the normals with theirs undone. Where the light changes from image to
image, undoing it brings the support closer to the normals; where it does not, the estimate
moves the distance up as often as down (the test's null, an assumption). The product's light
*varies* when a one-sided sign test rejects "as often" at 1 % (the pose test's level and
tie rule, fixed in advance); the recipe then sees every image, bank, support and queries,
with its light undone. It reads the support and the normals, never a query, and decides per
task. With fewer than 7 support images it can never reject, so at 1 shot nothing is undone.

**The candidate**: ``hires_lite0_poe_proto_rot4_gated_fixed_light``, the default
``hires_lite0_poe_proto_rot4_gated_fixed`` with ``light_test``; the pose test then runs on the
images as the light test leaves them.

**The rule, fixed before any row of the grid** (this module's first commit). At 5 shots over
seeds 1-5 (:func:`fsad.report.guarded_grid`), the candidate is *adopted* as the recommended
inductive method when it is below the default by no more than one sample standard deviation
of the default on each of the three grids: the MVTec protocol (``results/poses/mvtec``), the
suite `all` (``results/poses/suite_all``) and the untransformed suite
(``results/poses/suite_none``). The adoption is by design; the grids guard against a design
that misleads. ``fsad fit``'s default follows only once the inspector undoes the light with
the same code (at this rule's commit :func:`fsad.inspector.classifier.method_recipe` refused
the setting).
Reported beside it, deciding nothing: the tests' decisions (``results/explore/light_test.csv``,
read from the grid's own rows). The inspector gained the setting (the same
:func:`fsad.light_test.light_gated_engine`) while the grid ran; its commit came after the
first rows (bottle's, all with the light held) had been looked at, which decided nothing.

**What it found** (written after the grid: rows from a clean clone at c28d079, one process per
core, one torch thread; cells 0.3-430 s). At 5 shots, seeds 1-5, four categories, mean ±
sample std over seeds of the category mean, against the default:

- MVTec protocol: 81.91 ± 1.23 % against 81.11 ± 2.06 (+0.80; guard 2.06). The light was
  found varying in screw's 5 seeds (25 of 25 support images lower undone; whether MVTec's
  screw images differ in light, or the estimate evens out the screw's place in a dark frame,
  was not measured) and metal_nut's seed 3 (18 of 20), held elsewhere
  (bottle 0 of 15 in every seed). Screw +3.2 (seeds −4 to +12), all else unchanged.
- suite `all`: 59.57 ± 1.61 % against 58.34 ± 2.38 (+1.23; guard 2.38): screw +16.0 (every
  seed, +12 to +24), metal_nut +1.9 (found varying in 3 of 5 seeds), transistor −13.0
  (varying in 4 of 5 seeds, −10 to −25 where it was), bottle 0.0 (the light *held* in every
  seed: 0-4 of 15 support images lower undone).
- untransformed suite: 81.94 ± 0.51 % against 81.48 ± 1.07 (+0.46; guard 1.07): screw +2.4
  (varying in every seed), metal_nut −0.55 (varying in 1 seed).

**The rule adopts it**: within the guard on all three grids, so
``hires_lite0_poe_proto_rot4_gated_fixed_light`` is ``fsad fit``'s default. Issue #21's MVTec
target is met with a margin (81.91 against ≥ 81.04); its suite target is not: the gap to the
untransformed images is −22.37 points (was −23.14). **Read plainly**: the test answers the
question it asks (does undoing the light make the support look more normal?), and the answer is
not the question that matters (does it keep the defect types apart?). On the suite's
transistor, undone images look more normal and classify far worse; a likely reading, not
measured here, is that the estimate takes a defect that changes the part's grey levels (a
missing or misplaced part) for light and undoes part of it (measured since by
:mod:`research.light_by_type_study`: not borne out for those types by the light the
estimate leaves). On bottle, whose windows show the
dark background and the bright bottle in every proportion, the estimate is wrong enough that
undone images look *less* normal, and the test, rightly, keeps them as shot. Where the light
was drawn, the verdict can follow the seed's coreset bank rather than the support: the suite's
metal_nut, the same support images in every seed, had 6 to 18 of 20 lower undone. The adoption
is the rule's; the per-category costs are in the book beside it. Tire, added after the round
(``results/suite_tire``, 4 shots): the light held in 14 of 15 cells, on `all` too (1-3 of 16
lower undone), and was found varying on the untransformed images in seed 5 alone.

Usage (the suite written by ``fsad data suite``, ``$SUITE/all`` and ``$SUITE/none``)::

    M=hires_lite0_poe_proto_rot4_gated_fixed_light
    fsad run --config paper --methods $M --shots 5 --seeds 1 2 3 4 5 --out results/poses/mvtec
    for cat in bottle metal_nut transistor screw; do
      fsad run --dataset folder --data "$SUITE/all/$cat" --methods $M --shots 5 \\
        --seeds 1 2 3 4 5 --out results/poses/suite_all
      fsad run --dataset folder --data "$SUITE/none/$cat" --methods $M --shots 5 \\
        --seeds 1 2 3 4 5 --out results/poses/suite_none
    done
    python -m research.light_test_round --decisions results/explore/light_test.csv
    python -m research.light_test_round --report
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fsad.evaluate import read_results
from fsad.report import guarded_grid
from fsad.utils import atomic_write_csv
from research.robust import CATEGORIES

#: the candidate and the default it is judged against (named literally: the rule's)
CANDIDATE = "hires_lite0_poe_proto_rot4_gated_fixed_light"
BASELINE = "hires_lite0_poe_proto_rot4_gated_fixed"
#: the results folders under ``results/poses`` the rule reads
RULED = ("mvtec", "suite_all", "suite_none")
SHOTS = 5
#: every results folder (under ``results``) whose candidate rows the decisions record reads:
#: the ruled grids, then tire's (added after the round, reported)
RECORDED = {"mvtec": "poses/mvtec", "suite_all": "poses/suite_all",
            "suite_none": "poses/suite_none", "tire_crop": "poses/mvtec_3d",
            "tire_all": "suite_tire/all", "tire_none": "suite_tire/none"}  # fmt: skip


def decisions(
    root: Path, candidate: str = CANDIDATE, recorded: dict[str, str] = RECORDED
) -> pd.DataFrame:
    """The light test of every ``candidate`` cell, from the ``info`` column of the grids' rows
    (``recorded``: folder name -> results folder under ``results``, those present): folder,
    category, seed, shots, the test's fields (``n_images``, ``lower_undone``, ``p_value``,
    ``varies`` and whatever else it recorded; empty where a cell did not), git_commit."""
    rows = []
    for folder, path in recorded.items():
        if not (root / "results" / path / "results.csv").is_file():
            continue
        grid = read_results(root / "results" / path)
        for _, r in grid[grid["method"] == candidate].iterrows():
            test = json.loads(r["info"])["light_test"]
            test.pop("summary")
            rows.append({"folder": folder, "category": r["category"], "seed": r["seed"],
                         "shots": r["shots"], **test, "git_commit": r["git_commit"]})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["folder", "category", "seed", "shots"])


def guard_table(
    root: Path, candidate: str, baseline: str, shots: int = SHOTS, ruled: Sequence[str] = RULED
) -> pd.DataFrame:
    """:func:`fsad.report.guarded_grid` of ``candidate`` against ``baseline`` on each ruled
    folder under ``results/poses``, a row per folder."""
    rows = []
    for folder in ruled:
        grid = read_results(root / "results/poses" / folder)
        guard = guarded_grid(grid, candidate, baseline, shots, len(CATEGORIES))
        rows.append({"folder": folder, **guard})
    return pd.DataFrame(rows)


def verdict(root: Path, shots: int = SHOTS) -> tuple[pd.DataFrame, str]:
    """The guard per results folder and the rule's verdict."""
    table = guard_table(root, CANDIDATE, BASELINE, shots)
    if not table["complete"].all():
        return table, "incomplete: the ruled grids do not hold every cell yet"
    if table["below_guard"].any():
        return table, "not adopted: the default stays"
    return table, "adopted: the light-tested method is the recommended inductive method"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", default=None, help="write the tests' decisions to this CSV")
    ap.add_argument("--report", action="store_true", help="print the rule's table")
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    if args.decisions:
        atomic_write_csv(Path(args.decisions), decisions(root))
    if args.report:
        table, text = verdict(root)
        print(table.to_string(index=False), f"\n\nverdict: {text}")


if __name__ == "__main__":
    main()
