"""Image by image: what photometric round 7 and robustness round 13 changed in the
support leave-one-out and in the query record (issue #21; a study, chooses nothing).

Both rounds lost by their rule's guard on the MVTec protocol (leave-one-out -2.25 and -2.8
points) while their query records rose on both protocols (+4 to +6 points). A cell's
accuracy hides which images moved. This study reruns each round's cells from the cache
(the same engines, bases and rows as the rounds; the cells' accuracies must equal the
records') and keeps every image's outcome, baseline and candidate, so the two can be
compared image by image:

- per round, protocol and set (``loo``: the support's left-out images; ``query``: the
  record), an image *gains* when its outcome averaged over seeds 1-3 rises under the
  candidate and *loses* when it falls (seeds redraw the coreset, not the images, so an image
  is the unit, not an image-seed);
- ``p``: the two-sided exact sign test of gains against losses (the images that moved),
  :func:`scipy.stats.binomtest`, a measure of how far the move exceeds what chance flips of
  that many images would give; no correction for the several tests, and none of them
  chooses anything.

The query rows read the query labels; like every record they decide nothing. Usage::

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
from scipy.stats import binomtest

from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import RECIPES
from fsad.utils import atomic_write_csv
from research.light_subspace_round import BASELINE, SubspaceEngine
from research.normal_subspace_round import NormalSubspaceEngine
from research.recipe_round import cell_predictions
from research.robust import PROTOCOLS, category_of, data_root

#: round -> (its candidate's name, the engine kind it runs on, its record)
ROUNDS = {
    "photometric 7": ("light_subspace", SubspaceEngine, "light_subspace.csv"),
    "robustness 13": ("normal_subspace", NormalSubspaceEngine, "normal_subspace.csv"),
}
CATEGORIES = ("bottle", "transistor", "screw", "metal_nut")
SEEDS = (1, 2, 3)


def outcome_rows(engine: ResidualEngine, variant: str) -> list[dict]:
    """One row per support image left out and per query image of the cell: its file, its
    class and whether :data:`BASELINE` on ``engine`` gets it right."""
    seen = cell_predictions(engine, RECIPES[BASELINE])
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


def image_changes(rows: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """Per image (round, protocol, category, set, label, image): its outcome averaged over
    the seeds under the baseline and under ``candidate``, and the change."""
    keys = ["round", "protocol", "category", "set", "label", "image"]
    mean = rows.groupby([*keys, "variant"])["correct"].mean().unstack("variant")
    return mean.assign(change=mean[candidate] - mean["baseline"]).reset_index()


def sign_tests(changes: pd.DataFrame) -> pd.DataFrame:
    """Per round, protocol and set: images, images gaining and losing (their seed-mean
    outcome up or down), and the exact two-sided sign test's p of gains against losses."""
    out = []
    for key, g in changes.groupby(["round", "protocol", "set"], sort=False):
        gains, losses = int((g["change"] > 0).sum()), int((g["change"] < 0).sum())
        moved = gains + losses
        p = binomtest(gains, moved, 0.5).pvalue if moved else 1.0
        out.append(dict(zip(["round", "protocol", "set"], key, strict=True))
                   | {"images": len(g), "gain": gains, "lose": losses, "p": round(p, 3)})  # fmt: skip
    return pd.DataFrame(out)


def report(out: Path) -> str:
    """The sign tests and, per class, the images that moved, as text."""
    rows = pd.read_csv(out)
    tables = []
    for label, (candidate, _, _) in ROUNDS.items():
        changes = image_changes(rows[rows["round"] == label], candidate)
        tables.append(changes)
    changes = pd.concat(tables, ignore_index=True)
    moved = changes[changes["change"] != 0].assign(
        sign=lambda d: np.where(d["change"] > 0, "gain", "lose")
    )
    by_class = moved.groupby(["round", "protocol", "set", "category", "label", "sign"]).size()
    return f"{sign_tests(changes).to_string(index=False)}\n\n{by_class.unstack('sign', 0)}"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--suite", help="the suite `all` folder")
    ap.add_argument("--out", required=True, help="the CSV to write")
    ap.add_argument("--report", action="store_true", help="print the sign tests")
    args = ap.parse_args(argv)
    if args.report:
        print(report(Path(args.out)))
        return
    data, suite = Path(data_root(args.data)), Path(args.suite) if args.suite else None
    rows = []
    for label, (candidate, kind, _) in ROUNDS.items():
        for protocol in PROTOCOLS:
            config = EngineConfig(features=FeatureConfig(framing=PROTOCOLS[protocol][1]))
            for name in CATEGORIES:
                category = category_of(protocol, data, suite, name)
                for seed in SEEDS:
                    plain = ResidualEngine(category, config, seed=seed)
                    sub = kind(category, config, seed, plain.cache)
                    cell = {"round": label, "protocol": protocol, "category": name, "seed": seed}
                    for variant, engine in (("baseline", plain), (candidate, sub)):
                        rows += [cell | r for r in outcome_rows(engine, variant)]
                    print(label, protocol, name, seed, flush=True)
    commit = git_commit(Path(__file__).resolve().parents[1])
    atomic_write_csv(Path(args.out), pd.DataFrame(rows).assign(git_commit=commit))


if __name__ == "__main__":
    main()
