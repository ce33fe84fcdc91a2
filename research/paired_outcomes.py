"""Image by image: what photometric round 7 and robustness round 13 changed in the
support leave-one-out and in the query record (issue #21; a study, chooses nothing).

Both rounds lost by their rule's guard on the MVTec protocol (leave-one-out -2.25 and -2.8
points) while their query records rose on both protocols (+3 to +6 points). A cell's
accuracy hides which images moved. This study reruns each round's cells from the cache
(the same engines, bases and rows as the rounds; the cells' accuracies must equal the
records') and keeps every image's outcome, baseline and candidate, so the two can be
compared image by image:

- per round, protocol and set (``loo``: the support's left-out images; ``query``: the
  record), an image *gains* when its outcome averaged over seeds 1-3 rises under the
  candidate and *loses* when it falls (seeds redraw the coreset, not the images, so an image
  is the unit, not an image-seed);
- ``p``: the two-sided exact sign test of gains against losses (the images that moved,
  :func:`fsad.report.sign_test`), a measure of how far the move exceeds what chance flips
  of that many images would give; ``p_holm``: Holm's adjustment over the table's eight
  tests (:func:`fsad.report.moved_images`). None of them chooses anything.

The query rows read the query labels; like every record they decide nothing.

**What it found** (``results/explore/paired_outcomes.csv``, 96 cells, every one equal to its
round's record): on the MVTec protocol no move of either signal is distinguishable from
chance flips (leave-one-out: round 7 lost 6 images and gained 3, p 0.51; round 13 lost 7
and gained 5, p 0.77; record: 18 gained and 11 lost, p 0.27; 14 and 12, p 0.85). The
record's +4.3 to +6.1 points there come mostly from transistor, whose 20 queries weigh 3.7
times metal_nut's 73 in the mean of the categories' accuracies. The firmest moves are the
suite's records (26 gained against 13 lost, p 0.053; 28 against 14, p 0.044; 0.37 and 0.35
after Holm's adjustment). The test has little power with 9 to 29 images moving, weighs
every image alike while the rules and the record average the categories, and treats the
images of a cell, which share one fitted head, as independent: a rough gauge. Chapter 10
adds a gauge that keeps the categories' weighting (:func:`fsad.report.sign_flip_null`): had
the moved left-out images moved at random, the leave-one-out would fall below the rules'
guard in 33-38 % of the draws on each protocol. Usage::

    python -m research.paired_outcomes --suite "$OUT/all" \\
        --out results/explore/paired_outcomes.csv
    python -m research.paired_outcomes --report --out results/explore/paired_outcomes.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe
from fsad.report import image_changes, moved_images, record_identity
from fsad.utils import atomic_write_csv
from research import light_subspace_round as ls
from research import normal_subspace_round as ns
from research.recipe_round import CellPredictions, cell_predictions
from research.robust import category_of, data_root, protocol_cells, round_parser

#: round -> (its candidate's name, the engine kind it runs on, its record)
ROUNDS = {
    "photometric 7": (ls.CANDIDATE, ls.SubspaceEngine, "light_subspace.csv"),
    "robustness 13": (ns.CANDIDATE, ns.NormalSubspaceEngine, "normal_subspace.csv"),
}
#: what names an image (its file name repeats across classes)
IMAGE = ["round", "protocol", "category", "set", "label", "image"]
SEEDS = (1, 2, 3)


def outcome_rows(engine: ResidualEngine, variant: str, recipe: Recipe | None = None) -> list[dict]:
    """One row per support image left out and per query image of the cell: its file, its
    class and whether ``recipe`` (default: :data:`research.light_subspace_round.BASELINE`'s)
    on ``engine`` gets it right."""
    return prediction_rows(cell_predictions(engine, recipe or RECIPES[ls.BASELINE]), variant)


def prediction_rows(seen: CellPredictions, variant: str) -> list[dict]:
    """One row per support image left out and per query image of ``seen``: ``variant``,
    the set (``loo`` or ``query``), its file name, its class and whether it is right."""
    sets = [
        ("loo", [seen.split.support[i] for i in seen.left_out], seen.loo_correct),
        ("query", seen.split.query, seen.query_correct),
    ]
    return [
        {
            "variant": variant,
            "set": name,
            "image": sample.path.name,
            "label": sample.label,
            "correct": bool(ok),
        }  # fmt: skip
        for name, samples, correct in sets
        for sample, ok in zip(samples, correct, strict=True)
    ]


def report(out: Path) -> str:
    """The identity with the rounds' records, the sign tests and, per class, the images
    that moved, as text."""
    rows = pd.read_csv(out)
    tables, lines = [], []
    for label, (candidate, _, record) in ROUNDS.items():
        mine = rows[rows["round"] == label]
        same, cells = record_identity(mine, pd.read_csv(out.parent / record))
        lines.append(f"{label}: {same} of {cells} cells equal the record {record}")
        changes = image_changes(mine, candidate, IMAGE)
        tables.append(changes.rename(columns={candidate: "candidate"}))
    changes = pd.concat(tables, ignore_index=True)
    moved = changes[changes["change"] != 0].assign(
        sign=lambda d: np.where(d["change"] > 0, "gain", "lose")
    )
    by_class = moved.groupby(["round", "protocol", "set", "category", "label", "sign"]).size()
    tests = moved_images(changes, ["round", "protocol", "set"]).round(3).to_string(index=False)
    return "\n".join(lines) + f"\n\n{tests}\n\n{by_class.unstack('sign', 0)}"


def round_rows(args: argparse.Namespace, label: str) -> list[dict]:
    """Every image outcome of one round's cells (:data:`ROUNDS`), baseline and candidate,
    protocol by protocol, category by category, seed by seed."""
    candidate, kind, _ = ROUNDS[label]
    rows = []
    for protocol, name, config in protocol_cells(args):
        category = category_of(protocol, Path(data_root(args.data)), Path(args.suite), name)
        for seed in SEEDS:
            plain = ResidualEngine(category, config, seed=seed)
            cell = {"round": label, "protocol": protocol, "category": name, "seed": seed}
            for variant, engine in (("baseline", plain), (candidate, kind(category, config, seed))):
                rows += [cell | r for r in outcome_rows(engine, variant)]
            print(label, protocol, name, seed, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Write every round's image outcomes to ``--out`` (round by round, atomically), or
    print the report (``--report``)."""
    ap = round_parser(__doc__, suite_required=False)
    ap.add_argument("--report", action="store_true", help="print the sign tests of --out")
    args = ap.parse_args(argv)
    if args.report:
        print(report(Path(args.out)))
        return
    if args.suite is None:
        ap.error("--suite (the suite `all` folder) is needed to run the cells")
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    rows: list[dict] = []
    for label in ROUNDS:
        rows += round_rows(args, label)
        atomic_write_csv(out, pd.DataFrame(rows).assign(git_commit=commit))


if __name__ == "__main__":
    main()
