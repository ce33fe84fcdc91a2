"""Ablation grid of the anomaly-guided descriptors and few-shot heads (issue 7).

For every (category, seed) the PatchCore residual engine is built once (same settings as the
paper configs, so its cache is shared); every descriptor variant is computed once for all
test images (cached) and every head is scored on the paper's n-shot splits. Query labels are
used only to score, never to choose anything: all variants are fixed in this file.

Usage::

    FSAD_DATA=/work/shared/data .venv/bin/python scripts/explore_best.py \
        --out results/explore/ablation.csv --seeds 1 2 3 4 5

Writes one tidy row per (dataset, category, variant, head, shots, seed) with the git commit
and the variant's full configuration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.cache import DiskCache
from fsad.data import default_data_root, few_shot_split, load_category
from fsad.descriptors import DescriptorConfig, category_descriptors, descriptors_of
from fsad.engine import EngineConfig, ResidualEngine
from fsad.features import FeatureConfig
from fsad.heads import cosine_prototypes, logistic_regression, predict, soft_kmeans
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, LR_C, SKM_ITERATIONS, SKM_TEMPERATURE
from fsad.utils import atomic_write_csv

#: (dataset, category, shots) of the shared data; tire's 'combined' has 5 images
GRID = [
    ("mvtec_ad", "bottle", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "transistor", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "screw", (1, 2, 3, 4, 5)),
    ("mvtec_ad", "metal_nut", (1, 2, 3, 4, 5)),
    ("mvtec_3d", "tire", (1, 2, 3, 4)),
]
#: the engine of the paper configs (configs/paper.yaml), so the residual cache is shared
ENGINE = EngineConfig(
    features=FeatureConfig("tf_efficientnet_lite0", resize=256, crop=224, dim=384),
    coreset_ratio=0.1,
)
#: descriptor variants (name -> settings); the first is the issue's reference
VARIANTS: dict[str, DescriptorConfig] = {
    "ref_r2": DescriptorConfig(residual_fracs=(0.02,)),
    "r_multi": DescriptorConfig(residual_fracs=(0.01, 0.02, 0.05, 0.1)),
    "r2+fc": DescriptorConfig(residual_fracs=(0.02,), feature_fracs=(0.02,), feature_centred=True),
    "best": ANOMALY_BLOCKS,  # r_multi + fc
}
Head = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
HEADS: dict[str, Head] = {
    "cosine": cosine_prototypes,
    "logreg": lambda xs, ys, xq, c: logistic_regression(xs, ys, xq, c, c=LR_C),
    "softkmeans": lambda xs, ys, xq, c: soft_kmeans(
        xs, ys, xq, c, temperature=SKM_TEMPERATURE, iterations=SKM_ITERATIONS
    ),
}


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run(
    root: Path,
    seeds: list[int],
    variants: list[str],
    heads: list[str],
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """Score every (category, seed, variant, head, shots) of :data:`GRID`."""
    rows = []
    commit = git_commit()
    for dataset, name, shot_list in GRID:
        if categories and name not in categories:
            continue
        category = load_category(root / dataset, dataset, name)
        for seed in seeds:
            engine = ResidualEngine(category, ENGINE, seed=seed, cache=DiskCache())
            for variant in variants:
                cfg = VARIANTS[variant]
                t0 = time.time()
                table = category_descriptors(engine, cfg)
                t_desc = time.time() - t0
                for shots in shot_list:
                    split = few_shot_split(category.test, shots)
                    xs = descriptors_of(table, split.support)
                    xq = descriptors_of(table, split.query)
                    for head in heads:
                        scores = HEADS[head](xs, split.support_labels, xq, split.n_classes)
                        acc = float((predict(scores) == split.query_labels).mean())
                        rows.append(
                            {
                                "dataset": dataset,
                                "category": name,
                                "variant": variant,
                                "head": head,
                                "shots": shots,
                                "seed": seed,
                                "accuracy": acc,
                                "n_query": len(split.query),
                                "chance": split.chance,
                                "descriptor_seconds": round(t_desc, 2),
                                "descriptor": json.dumps(cfg.cache_key(), sort_keys=True),
                                "engine": "lite0-224-dim384-coreset0.1",
                                "git_commit": commit,
                                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                            }
                        )
                print(f"{name} seed {seed} {variant}: {t_desc:.1f}s", flush=True)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy (%) over seeds per (variant, head, shots): the 4 MVTec AD categories
    averaged, and tire."""
    mean = df.groupby(["variant", "head", "category", "shots"])["accuracy"].mean().mul(100)
    table = mean.unstack("category")
    ad = [c for c in ("bottle", "transistor", "screw", "metal_nut") if c in table]
    table["mvtec_ad_mean"] = table[ad].mean(axis=1)
    return table.round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", default="results/explore/ablation.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--heads", nargs="+", default=list(HEADS))
    parser.add_argument("--categories", nargs="+", default=None)
    args = parser.parse_args()
    root = default_data_root(args.data)
    if root is None:
        raise SystemExit("set FSAD_DATA or pass --data (the folder holding mvtec_ad/, mvtec_3d/)")
    df = run(root, args.seeds, args.variants, args.heads, args.categories)
    out = Path(args.out)
    atomic_write_csv(out, df)
    table = summary(df)
    atomic_write_csv(out.with_name(out.stem + "_summary.csv"), table.reset_index())
    print(table.to_string())


if __name__ == "__main__":
    main()
