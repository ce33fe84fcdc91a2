"""Speed round 1 (issue #22, item 8): a cheaper recommended recipe, non-inferior on the
label-free signal.

When this round was written, ``fsad fit``'s default, ``hires_poe_proto_rot4``, classified
1.2-1.5 images/s on 2 cores (target 5): per image, the rotated zoom views through
EfficientNet-Lite2 and Lite0 (16 encoder passes) took about half the time, the 448 px engine
(features + exact search) a third. Its fit missed 3 minutes on tire by 20 s (the 448 px
coreset bank dominates). The round adopted ``drop_lite2``, registered as
``hires_lite0_poe_proto_rot4`` (now the default). The
candidates drop groups of the default recipe; everything else stays (the heads: one
regression and one cosine prototype expert per group, probabilities multiplied; the support
in 4 poses):

==================  =========================================================================
``default``         the 4 groups: anomaly blocks of the 224 px engine (A0) and of the 448 px
                    engine (A1), rotated zoom views through Lite0 (Z0) and Lite2 (Z2)
``drop_lite2``      A0, A1, Z0
``drop_zoom``       A0, A1
``drop_hires``      A0, Z0, Z2 (no 448 px engine: no second bank to fit)
``drop_hires_lite2``  A0, Z0
``anomaly_only``    A0
==================  =========================================================================

A candidate's rows are the default's rows of its groups (the same blocks, weights and support
poses, computed by :func:`fsad.recipe.support_rows` and :func:`fsad.recipe.sample_rows`, cached
as the grid's), so the round costs only the heads.

Signal: leave-one-out accuracy inside the 5-shot support set (an image leaves with its poses:
:func:`fsad.recipe.leave_one_out`), seeds 1-5, the four MVTec AD categories, on the MVTec
protocol (centre crop) and on the suite ``all`` (whole image), as robustness round 2. The
query accuracy of the same cells is recorded for the appendix, never used. The cost of a
candidate is measured apart, without labels (``--costs``: CPU seconds per image of each
group's blocks on bottle's query images through a model that ``fsad fit`` built from the
folders of ``scripts/mvtec_as_folders.py``, as ``fsad classify`` computes them).

The rule, fixed before the run (commit of this file): a candidate is *non-inferior* when its
support leave-one-out, averaged over the two protocols (seed mean of the category means), is
at most 1 point below the default's and, on the MVTec protocol alone, at most one sample
standard deviation over seeds (of the default's category-averaged leave-one-out) below the
default's. Of the non-inferior candidates, the one with the lowest measured cost becomes the
recommended recipe (``fsad fit``'s default, registered under a name that says its recipe);
when none is, the default stays and the speed target is reported as missed. Usage::

    python -m research.speed_round --suite "$OUT/all" --out results/explore/speed_loo.csv
    python -m research.speed_round --costs --model MODEL --images DIR/query \\
        --out results/explore/speed_costs.csv
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fsad.blocks import Inputs
from fsad.data import few_shot_split, read_image
from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.inspector import Inspector
from fsad.inspector.inputs import images_in
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe, leave_one_out, recipe_proba, sample_rows
from fsad.recipe import support_rows as recipe_support_rows
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged
from research.robust import pending_cells, round_parser

SHOTS = 5
DEFAULT = RECIPES["hires_poe_proto_rot4"]
#: group labels of the default recipe, in its order
GROUP_NAMES = ("A0", "A1", "Z0", "Z2")
#: candidate -> the default's groups it keeps
CANDIDATES: dict[str, tuple[int, ...]] = {
    "default": (0, 1, 2, 3),
    "drop_lite2": (0, 1, 2),
    "drop_zoom": (0, 1),
    "drop_hires": (0, 2, 3),
    "drop_hires_lite2": (0, 2),
    "anomaly_only": (0,),
}
CELL = ["protocol", "category", "seed", "candidate"]
#: the rule's margins (points of leave-one-out accuracy)
MARGIN = 1.0


def candidate_recipe(keep: Sequence[int]) -> Recipe:
    """The default recipe restricted to the groups ``keep`` (no second engine when no kept
    group reads it)."""
    groups = tuple(DEFAULT.groups[i] for i in keep)
    engines = DEFAULT.engines if any(g.engine > 0 for g in groups) else ()
    return replace(DEFAULT, groups=groups, engines=engines)


def score_engine(engine: ResidualEngine) -> list[dict]:
    """Support leave-one-out and (recorded) query accuracy of every candidate on one cell."""
    split = few_shot_split(engine.category.test, SHOTS)
    labels, truth = np.asarray(split.support_labels), np.asarray(split.query_labels)
    xs, source = recipe_support_rows(engine, DEFAULT, split.support)
    xq = sample_rows(engine, DEFAULT, split.query)
    out = []
    for name, keep in CANDIDATES.items():
        t0, recipe = time.time(), candidate_recipe(keep)
        s, q = [xs[i] for i in keep], [xq[i] for i in keep]
        index, scores = leave_one_out(recipe, s, labels[source], split.n_classes, source)
        p = recipe_proba(recipe, s, labels[source], q, split.n_classes)
        out.append({
            "candidate": name, "groups": "+".join(GROUP_NAMES[i] for i in keep), "shots": SHOTS,
            "support_loo": float((scores.argmax(1) == labels[index]).mean()),
            "n_left_out": len(index),
            "query_acc": float((predict(p) == truth).mean()), "n_query": len(truth),
            "seconds": round(time.time() - t0, 1),
        })  # fmt: skip
    return out


def group_costs(model: Path, images: Path, n_images: int = 24, repeats: int = 2) -> list[dict]:
    """CPU seconds per image of each part of the default recipe, computed as ``fsad classify``
    computes it: through the engines of a model fitted by ``fsad fit`` (the default method),
    on the first ``n_images`` images of a folder, best of ``repeats``: engine 0 (features +
    search + anomaly map), then each group's blocks (A1 includes the 448 px engine's
    features and search). Labels are never read."""
    engines = Inspector.load(model).engines()
    paths = images_in(images, "images folder")[:n_images]
    imgs = [read_image(p) for p in paths]
    for g in DEFAULT.groups:  # backbones and banks loaded before timing
        g.block.describe(Inputs(engines[g.engine], images=imgs[:2]))
    best: dict[str, float] = {}
    for _ in range(repeats):
        inputs = [Inputs(e, images=imgs) for e in engines]
        t0 = time.process_time()
        inputs[0].anomaly_maps()
        parts = {"engine0": time.process_time() - t0}
        for name, g in zip(GROUP_NAMES, DEFAULT.groups, strict=True):
            t0 = time.process_time()
            g.block.describe(inputs[g.engine])
            parts[name] = time.process_time() - t0
        best = {k: min(v, best.get(k, v)) for k, v in parts.items()}
    return [{"part": k, "cpu_s_per_image": v / len(imgs), "n_images": len(imgs)}
            for k, v in best.items()]  # fmt: skip


def candidate_cost(costs: dict[str, float], keep: Sequence[int]) -> float:
    """CPU seconds per image of a candidate: engine 0 (always: the anomaly score) plus its
    groups' parts."""
    return costs["engine0"] + sum(costs[GROUP_NAMES[i]] for i in keep)


def main(argv: Sequence[str] | None = None) -> None:
    ap = round_parser(__doc__, suite_required=False)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--costs", action="store_true", help="measure the candidates' costs")
    ap.add_argument("--model", type=Path, help="--costs: a model folder of `fsad fit`")
    ap.add_argument("--images", type=Path, help="--costs: a folder of images to classify")
    args = ap.parse_args(argv)
    root, out = data_root(args.data), Path(args.out)
    commit = git_commit(Path(__file__).resolve().parents[1])
    stamp = {"git_commit": commit, "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.costs:
        if not (args.model and args.images):
            ap.error("--costs needs --model (fitted with the default method) and --images")
        parts = {r["part"]: r["cpu_s_per_image"] for r in group_costs(args.model, args.images)}
        rows = [{"candidate": n, "cpu_s_per_image": round(candidate_cost(parts, k), 4),
                 **{f"part_{p}": round(v, 4) for p, v in parts.items()}, **stamp}
                for n, k in CANDIDATES.items()]  # fmt: skip
        atomic_write_csv(out, merged(out, rows, ["candidate"]))
        print("\n".join(f"{r['candidate']}: {r['cpu_s_per_image']:.3f} CPU s/image" for r in rows))
        return
    if args.suite is None and "suite_all" in args.protocols:
        ap.error("--suite (the suite `all` folder) is needed for the suite_all protocol")
    done = done_cells(out, ["protocol", "category", "seed"])
    for protocol, name, seed, engine in pending_cells(args, Path(root), done):
        rows = score_engine(engine)
        for row in rows:
            row.update(protocol=protocol, category=name, seed=seed, **stamp)
            print(f"{protocol} {name} seed {seed} {row['candidate']}: loo "
                  f"{row['support_loo']:.3f} query {row['query_acc']:.3f}", flush=True)  # fmt: skip
        atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
