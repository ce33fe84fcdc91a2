"""Heads refitted on support + defect transplants (issue #23, item 2a), first round.

Each support image's defect is cut (its anomaly map, thresholded and refined by GrabCut;
never its ground-truth mask) and pasted into normal training images of the same product
(:mod:`fsad.synth.transplant`); the transplants carry the support image's label and join
the support set as extra rows. Nothing else changes: the bank, the queries and the cached
tables are the grid's.

Variants (the ablation "transplants on/off" and the blend):

- ``baseline``: the probe recipe as registered (transplants off);
- ``poisson``: + :data:`PER_CUTOUT` Poisson-blended transplants per support image
  (``TransplantConfig()``, the library's default: context placement);
- ``alpha``: the same places, feathered alpha blending.

Probes: ``anomaly_lr`` (the block set inside every recommended recipe, and the cheapest
learned head: each transplant costs one 224 px engine pass, not the recommended recipe's
448 px engine and 16 zoom passes) and ``residual_proto``.

Signal: leave-one-out inside the largest support set (5 shots; tire 4); an image leaves
with its transplants. Query accuracy is recorded for the appendix, never used.

The rule, fixed before the run: a variant is *adopted* (to be measured with the
recommended recipe next) when, for a probe, its support leave-one-out averaged over the
five categories and seeds 1-5 beats the baseline's by at least 1 point. Usage::

    python -m research.transplant_heads --data "$FSAD_DATA" --out results/explore/transplant_heads.csv
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fsad.blocks import Inputs
from fsad.data import few_shot_split, load_category, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.evaluate import git_commit
from fsad.heads import predict
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import inputs_rows, recipe_proba, sample_rows
from fsad.synth.foreground import foreground_mask
from fsad.synth.transplant import TransplantConfig, cut_support, normal_level, transplants
from fsad.utils import atomic_write_csv
from research.records import data_root, done_cells, merged, record_parser
from research.robust import loo

#: (dataset, category, shots of the signal)
GRID = (
    ("mvtec_ad", "bottle", 5),
    ("mvtec_ad", "transistor", 5),
    ("mvtec_ad", "screw", 5),
    ("mvtec_ad", "metal_nut", 5),
    ("mvtec_3d", "tire", 4),
)
PROBES = ("anomaly_lr", "residual_proto")
#: transplants per support image, and the normal images they are pasted into (drawn by seed)
PER_CUTOUT = 6
TARGETS = 24
VARIANTS = {"poisson": TransplantConfig(), "alpha": TransplantConfig(blend="alpha")}
CELL = ["category", "seed", "probe", "variant"]


def transplant_images(
    engine: ResidualEngine,
    dataset: str,
    split,
    seed: int,
    variants: Sequence[str] = tuple(VARIANTS),
) -> dict:
    """Per variant (of :data:`VARIANTS`), the transplant images and their support image's
    index ``(T,)``."""
    data, name = engine.category, engine.category.name
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(data.train), min(TARGETS, len(data.train)), replace=False))
    targets = [read_image(data.train[i].path) for i in pick]
    target_fg = [foreground_mask(img, name, dataset) for img in targets]
    level = normal_level(Inputs(engine, images=targets).anomaly_maps())
    maps = engine.anomaly_maps(split.support)
    cuts = []
    for s, y, amap in zip(split.support, split.support_labels, maps, strict=True):
        img = read_image(s.path)
        fg = foreground_mask(img, name, dataset)
        cuts.append(cut_support(img, amap.numpy(), split.classes[y], engine.config.features, level, fg))  # fmt: skip
    out = {}
    for variant in variants:
        config, images, source = VARIANTS[variant], [], []
        for i, cut in enumerate(cuts):
            try:  # a cut-out as large as the product (a bent nut) fits nowhere: none of it
                made = transplants([cut], targets, PER_CUTOUT, seed * 1000 + i, target_fg, config)
            except ConfigError as exc:
                print(f"{name} seed {seed} {variant}: support image {i} skipped ({exc})")
                continue
            images += [t.image for t in made]
            source += [i] * len(made)
        out[variant] = (images, np.asarray(source, dtype=int))
    return out


def score_engine(engine: ResidualEngine, dataset: str, shots: int, seed: int) -> list[dict]:
    """Every (probe, variant) of one (category, seed)."""
    split = few_shot_split(engine.category.test, shots)
    labels, n = np.asarray(split.support_labels), split.n_classes
    t0 = time.time()
    made = transplant_images(engine, dataset, split, seed)
    paste_s = time.time() - t0
    inputs = {v: Inputs(engine, images=imgs) for v, (imgs, _) in made.items()}
    out = []
    for probe in PROBES:
        recipe = RECIPES[probe]
        base = sample_rows(engine, recipe, split.support)
        xq = sample_rows(engine, recipe, split.query)
        for variant in ("baseline", *VARIANTS):
            rows, source = base, np.arange(len(labels))
            if variant != "baseline" and len(made[variant][1]):
                more = inputs_rows(recipe, [inputs[variant]])
                rows = [np.concatenate([b, m]) for b, m in zip(base, more, strict=True)]
                source = np.concatenate([source, made[variant][1]])
            p = recipe_proba(recipe, rows, labels[source], xq, n)
            out.append({
                "probe": probe, "variant": variant, "shots": shots,
                "support_loo": loo(recipe, rows, labels[source], source, n),
                "query_acc": float((predict(p) == np.asarray(split.query_labels)).mean()),
                "n_support": len(labels), "n_rows": len(source), "n_query": len(split.query),
                "paste_seconds": round(paste_s, 1),
            })  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = record_parser(__doc__, [c for _, c, _ in GRID]).parse_args(argv)
    root = data_root(args.data)
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    done = done_cells(out, ["category", "seed"])
    for dataset, name, shots in GRID:
        if name not in args.categories:
            continue
        category = load_category(Path(root) / dataset, dataset, name)
        for seed in args.seeds:
            if (name, seed) in done:
                continue
            t0, engine = time.time(), ResidualEngine(category, EngineConfig(), seed=seed)
            rows = score_engine(engine, dataset, shots, seed)
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for row in rows:
                row.update(dataset=dataset, category=name, seed=seed, git_commit=commit,
                           cell_seconds=round(time.time() - t0, 1), timestamp=stamp)  # fmt: skip
                print(f"{name} seed {seed} {row['probe']} {row['variant']}: loo "
                      f"{row['support_loo']:.3f} query {row['query_acc']:.3f}", flush=True)  # fmt: skip
            atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
