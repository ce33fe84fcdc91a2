"""Robustness round 2 (issue #21, item 3): the shipped support poses on the recommended recipe.

Round 1 (:mod:`research.robust`) adopted turned support copies (``rot4``) for its two probes.
This round measures them, through the library's own code (:func:`fsad.recipe.support_rows`,
the code of the grid's ``*_rot4`` methods and of ``fsad fit``), on the recommended recipe:

- ``hires_poe_proto`` against ``hires_poe_proto_rot4`` (the decision);
- ``anomaly_lr`` / ``anomaly_lr_rot4`` and ``residual_proto`` / ``residual_proto_rot4``
  (round 1's probes again, now as shipped methods: a check that they agree with round 1).

Signal: leave-one-out accuracy inside the 5-shot support set (an image leaves with its poses:
:func:`fsad.recipe.leave_one_out`), seeds 1-3, the four MVTec AD categories, on the MVTec
protocol (centre crop) and on the suite ``all`` (whole image). The query accuracy of the same
cells is in the grids ``results/poses/mvtec`` and ``results/poses/suite_all``: a record for
the report, never a signal.

The rule, fixed before the run (as round 1's): ``hires_poe_proto_rot4`` becomes the
recommended method (``fsad fit``'s default) when its support leave-one-out averaged over the
two protocols beats ``hires_poe_proto``'s by at least 1 point and, on the MVTec protocol
alone, is not below it by more than one sample standard deviation over seeds (of
``hires_poe_proto``'s category-averaged leave-one-out). Otherwise ``hires_poe_proto`` stays
the default and ``hires_poe_proto_rot4`` is offered by name. Usage::

    python -m research.poses_round --data "$FSAD_DATA" --suite "$OUT/all" \\
        --out results/explore/poses_loo.csv
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fsad.data import few_shot_split
from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import leave_one_out, support_rows
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged
from research.robust import category_of, protocol_cells, round_parser

SHOTS = 5
#: (method without poses, with poses): the decision pair first
PAIRS = (
    ("hires_poe_proto", "hires_poe_proto_rot4"),
    ("anomaly_lr", "anomaly_lr_rot4"),
    ("residual_proto", "residual_proto_rot4"),
)
CELL = ["protocol", "category", "seed", "method"]


def support_loo(engine: ResidualEngine, method: str) -> dict:
    """Leave-one-out accuracy of ``method`` inside the 5-shot support set of ``engine``'s
    category (its rows through :func:`fsad.recipe.support_rows`, cached as the grid's)."""
    t0 = time.time()
    split = few_shot_split(engine.category.test, SHOTS)
    recipe = RECIPES[method]
    labels = np.asarray(split.support_labels)
    rows, source = support_rows(engine, recipe, split.support)
    index, scores = leave_one_out(recipe, rows, labels[source], split.n_classes, source)
    return {
        "method": method,
        "shots": SHOTS,
        "support_loo": float((scores.argmax(1) == labels[index]).mean()),
        "n_left_out": len(index),
        "poses": recipe.support_poses,
        "seconds": round(time.time() - t0, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = round_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--methods", nargs="+", default=[m for p in PAIRS for m in p])
    args = ap.parse_args(argv)
    root, out = data_root(args.data), Path(args.out)
    commit = git_commit(Path(__file__).resolve().parents[1])
    done = done_cells(out, CELL)
    for protocol, name, config in protocol_cells(args):
        category = category_of(protocol, root, Path(args.suite), name)
        for seed in args.seeds:
            engine = ResidualEngine(category, config, seed=seed)
            rows = []
            for method in args.methods:
                if (protocol, name, seed, method) in done:
                    continue
                row = support_loo(engine, method)
                row.update(protocol=protocol, category=name, seed=seed, git_commit=commit,
                           timestamp=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
                print(f"{protocol} {name} seed {seed} {method}: loo {row['support_loo']:.3f}",
                      flush=True)  # fmt: skip
                rows.append(row)
            if rows:
                atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
