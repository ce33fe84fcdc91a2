"""Robustness round 16 (issue #21): turn the support only where the support's pose test finds
the product free.

**Why.** Turned support copies (``*_rot4``, robustness rounds 1-2) lift the suite `all`,
whose frames are turned, and cost most products shot in one pose: at 5 shots, seeds 1-5,
``hires_poe_proto_rot4`` is 6.5 points below ``hires_poe_proto`` on the MVTec protocol
(75.40 ± 1.40 against 81.91 ± 0.87 %) and 5.5 below it on the untransformed suite, transistor
(whose ``misplaced`` type is a turned part) most, 16 and 14, while bottle gains 1.25 on the
MVTec protocol (and ``residual_proto``'s and ``anomaly_lr``'s metal_nut gain 7.1 and 4.1).
``fsad fit``'s default ``hires_lite0_poe_proto_rot4_fixed`` (73.40 ± 2.79 %) also dropped the
Lite2 zoom views; the grid measured no unturned Lite0 recipe, so turning's share of its gap
was not known before this round. No label-free signal of this project can see that cost: the
support leave-one-out and synthetic texture tasks both rise with turned support on the
MVTec protocol (rounds 2-3, signal round 1), because a texture pasted in any orientation, or
a support image left out with its own turns, stays in its class when turned, whereas a
fixed-pose product's real defect types need not. Round 3's gate (:mod:`research.pose_gate`)
read held-out normals, called every MVTec category upright and every suite category free,
but its adoption rule asked the leave-one-out, so it could only be adopted by failing at its
purpose; it also found that such a test reads whether the whole frame looks turned (light,
background, the part's shadow), not the part's own pose. **This round was designed after
reading those query records** (said here and in the book's appendix): the choice it makes
is not fitted to them, but the idea of making it is theirs.

**The test** (:func:`fsad.poses.pose_test`, through :func:`fsad.recipe.support_pose_test`, the
code ``fsad run`` and ``fsad fit`` use): each support image's mean patch distance ||r|| to the
normal bank of the recipe's first engine, as shot and turned by 90, 180 and 270 degrees. On a
product whose frames come in one pose a turned frame looks anomalous everywhere, so the
turned copies score higher; where the frames come in any pose, turning should lower the
score as often as it raises it (the test's null, an assumption). The product holds a pose
when a one-sided sign test over the support images rejects "as often" at 1 % (fixed in
advance); the gated recipe then fits on the support as shot,
else on its four poses. It reads the support and the normals only, never a query, and
decides per task (each seed's bank, each shot count). A 1-shot support of 3-5 images can
never reach 1 %, so at 1 shot the support is always turned. A label-free look before the
rule (the ratio of each support image's turned to shot mean distance, seed 1, 5 shots, not
recorded) gave medians 1.03-1.51 on the MVTec protocol and the untransformed suite and
1.00-1.02 on the suite `all` and the suite `pose`. The decisions were therefore foreseeable
before the grid: at 5 shots the support as shot on the MVTec protocol, turned on the suite
`all`, where the gated rows then equal the default's and the suite's guard is nearly empty
by construction. What the grid measures is mainly the MVTec protocol's side, and what
turning cost the default there.

**The rule, fixed before any row of the grid** (this module's first commit). The gated
method ``hires_lite0_poe_proto_rot4_gated_fixed`` becomes ``fsad fit``'s default when, at
5 shots over seeds 1-5 (:func:`fsad.report.guarded_grid`), it is below the default
``hires_lite0_poe_proto_rot4_fixed`` by no more than one sample standard deviation of the
default on the suite `all` (``results/poses/suite_all``) and on the MVTec protocol
(``results/poses/mvtec``). The adoption is by design (above); the grid is a guard against a
design that misleads. Reported beside it, deciding nothing: the untransformed suite
(``results/poses/suite_none``), shots 1 and 3, and the tests' decisions
(``results/explore/pose_test.csv``).

**What it found** (written after the grid; rows at a4e6d9b from a clean clone, one core per
process, `results/poses/*`; the tests' record at 6740edb read the grid's cache entries, 0.4 s
at most per test, so it holds the decisions the grid used). The decisions were those foreseen:
at 5 shots the support held a pose in all 20 MVTec cells and all 20 untransformed suite cells
(15-25 of 15-25 images, metal_nut 17-18 of 20) and was turned in all 20 suite `all` cells (at
most 15 of 20 turned higher: transistor, p 0.02; the test measures significance, not size: the
same 75 % share over 30 images would reach 1 %); at 3 shots it held in 16 of 20 MVTec cells
(metal_nut in 1 of 5 seeds); at 1 shot never. At 5 shots, seeds 1-5, four categories, mean ±
sample std over seeds of the category mean:

- MVTec protocol: 81.11 ± 2.06 % against the default's 73.40 ± 2.79 (+7.71; guard 2.79):
  transistor +26.0, screw +3.2, metal_nut +1.6, bottle 0.0; ``hires_poe_proto`` 81.91 ±
  0.87, so without the turns the Lite0 recipe is 0.80 points below it, inside that std.
- suite `all`: 58.34 ± 2.38 %, every one of its 60 rows (shots 1, 3, 5) equal to the
  default's, as turned support makes them.
- untransformed suite (reported): 81.48 ± 1.07 % against 74.19 ± 2.03 (+7.29).
- 3 shots, MVTec: 77.07 ± 1.15 against 72.77 ± 1.68 (+4.30), but bottle −7.0 (its support
  as shot in every seed); 1 shot: equal to the default in 20 of 20 cells.

**The rule adopts it**: ``hires_lite0_poe_proto_rot4_gated_fixed`` is ``fsad fit``'s default.
Issue #21's MVTec target (no loss beyond one std of ``hires_poe_proto``'s 81.91 ± 0.87) is
met, by 0.07 points: less than one query (one transistor query of one seed moves the mean
by 0.25 points). Its suite target is further away: the gated default's own untransformed
figure rose, so its gap on `all` is −23.14 points (the old default's −15.85).

Usage::

    fsad run --config paper --methods hires_lite0_poe_proto_rot4_gated_fixed \\
        --shots 1 3 5 --seeds 1 2 3 4 5 --out results/poses/mvtec
    fsad run --dataset folder --data "$SUITE/all/$cat" --methods ... --out results/poses/suite_all
    python -m research.pose_test_round --suite "$SUITE" --out results/explore/pose_test.csv
    python -m research.pose_test_round --out results/explore/pose_test.csv --report
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fsad.data import CategoryData, few_shot_split
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit, read_results
from fsad.features import FeatureConfig
from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import support_pose_test
from fsad.report import guarded_grid
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged
from research.robust import CATEGORIES, PROTOCOLS, category_of

#: the gated method and the default it is judged against (named literally: the rule's)
CANDIDATE = "hires_lite0_poe_proto_rot4_gated_fixed"
BASELINE = "hires_lite0_poe_proto_rot4_fixed"
#: results folder under ``results/poses`` -> (its protocol in :data:`research.robust.PROTOCOLS`,
#: its suite's sub-folder or None)
FOLDERS = {"mvtec": ("mvtec", None), "suite_all": ("suite_all", "all"),
           "suite_none": ("suite_all", "none")}  # fmt: skip
#: the folders the rule reads (the others are reported)
RULED = ("mvtec", "suite_all")
SHOTS = 5
CELL = ["folder", "category", "seed", "shots"]


def category_in(folder: str, data: Path, suite: Path | None, name: str) -> CategoryData:
    """The category as a results folder's grid reads it (:func:`research.robust.category_of`;
    a suite folder needs ``suite``, the folder holding ``all`` and ``none``)."""
    protocol, sub = FOLDERS[folder]
    return category_of(protocol, data, suite / sub if suite and sub else None, name)


def pose_row(engine: ResidualEngine, shots: int) -> dict[str, Any]:
    """The pose test of a cell's support (the grid's split) as the gated recipe runs it."""
    t0 = time.time()
    split = few_shot_split(engine.category.test, shots)
    test = support_pose_test(engine, RECIPES[CANDIDATE], split.support)
    return {
        "n_images": test.n_images,
        "turned_higher": test.turned_higher,
        "p_value": test.p_value,
        "holds_pose": test.holds_pose,
        "seconds": round(time.time() - t0, 1),
    }


def verdict(root: Path, shots: int = SHOTS) -> tuple[pd.DataFrame, str]:
    """The guard per results folder and the rule's verdict."""
    rows = []
    for folder in FOLDERS:
        grid = read_results(root / "results/poses" / folder)
        g = guarded_grid(grid, CANDIDATE, BASELINE, shots, len(CATEGORIES))
        rows.append({"folder": folder, "ruled": folder in RULED, **g})
    table = pd.DataFrame(rows)
    ruled = table[table["ruled"]]
    if not ruled["complete"].all():
        return table, "incomplete: the ruled grids do not hold every cell yet"
    adopted = not ruled["below_guard"].any()
    return table, ("adopted: the gated method becomes fsad fit's default" if adopted
                   else "not adopted: the default stays")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--suite", default=None, help="the folder holding the suite's all/ and none/")
    ap.add_argument("--out", required=True, help="CSV of the tests' decisions")
    ap.add_argument("--folders", nargs="+", default=list(FOLDERS), choices=list(FOLDERS))
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--report", action="store_true", help="print the rule's table and stop")
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    if args.report:
        table, text = verdict(root)
        print(table.to_string(index=False), f"\n\nverdict: {text} (default: {DEFAULT_METHOD})")
        return
    data, out, commit = data_root(args.data), Path(args.out), git_commit(root)
    suite = Path(args.suite) if args.suite else None
    done = done_cells(out, CELL)
    for folder in args.folders:
        config = EngineConfig(features=FeatureConfig(framing=PROTOCOLS[FOLDERS[folder][0]][1]))
        for name in args.categories:
            category = category_in(folder, data, suite, name)
            for seed in args.seeds:
                engine = ResidualEngine(category, config, seed=seed)
                for shots in args.shots:
                    if (folder, name, seed, shots) in done:
                        continue
                    stamp = datetime.now(UTC).isoformat(timespec="seconds")
                    row = {**pose_row(engine, shots), "folder": folder, "category": name,
                           "seed": seed, "shots": shots, "git_commit": commit,
                           "timestamp": stamp}  # fmt: skip
                    print(row, flush=True)
                    atomic_write_csv(out, merged(out, [row], CELL))


if __name__ == "__main__":
    main()
