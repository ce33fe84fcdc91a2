"""How close are defect transplants to held-out real defects? (issue #23, item 1)

For each category: the first ``shots`` defect images of each type are the support (as in
the grid's split); each is cut from its anomaly map (``fsad.synth.transplant``, no
ground truth) and pasted into ``per_cutout`` normal training images (:data:`VARIANTS`:
Poisson or alpha blending, context-matched or random places). Every transplant, every
support image and the paste targets (no defect) are then seen through the category's
residual engine, and compared with the held-out real defects (the split's queries):

- anomaly-map statistics: peak score (the image score) and the fraction of map cells above
  the normal level (the cut's label-free threshold ``normal_level``);
- descriptor distances: rows of the anomaly-guided methods' block (``ANOMALY_BLOCKS``),
  cosine distance to the centroid of the real queries of the same type (``dist_same``) and
  the mean distance to the other types' centroids (``dist_other``); ``nn_type_acc`` = the
  fraction of rows whose nearest real centroid is of their own type (for the paste targets,
  which have no type: ``dist_same`` is the distance to the nearest type's centroid and
  ``dist_other`` the mean over all types); ``dist_support_loo`` = the distance to the
  centroid of the *other* support images of the source's type (no query label: the one
  column a method may select on).

Labels of the queries (and the ground-truth masks: ``cut_iou``) are used only here, for the
report; nothing the transplants are made with looks at them. Writes
``results/transplants/closeness.csv`` atomically (one row per category, source and defect
type, plus ``all``), with the git commit.

    FSAD_DATA=../shared/data python scripts/transplant_closeness.py --categories bottle
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fsad.blocks import Inputs, block_rows
from fsad.data import few_shot_split, load_category, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS
from fsad.synth.foreground import foreground_mask
from fsad.synth.transplant import (
    TransplantConfig,
    cut_mask,
    cut_support,
    cut_threshold,
    map_to_image,
    normal_level,
    transplants,
)
from fsad.utils import atomic_write_csv, progress

OUT = Path("results/transplants/closeness.csv")
DATASETS = {"tire": "mvtec_3d"}  # everything else: mvtec_ad
#: (blend, place) of the transplants compared; the library's default first
VARIANTS = (("poisson", "context"), ("alpha", "context"), ("alpha", "random"))


def category_rows(
    root: Path, dataset: str, category: str, shots: int, seed: int, per_cutout: int, normals: int
) -> list[dict]:
    """The closeness rows of one category (see the module docstring)."""
    data = load_category(root / dataset, dataset, category)
    engine = ResidualEngine(data, EngineConfig(), seed=seed)
    features = engine.config.features
    split = few_shot_split(data.test, shots)
    support_labels = [split.classes[i] for i in split.support_labels]
    query_labels = np.array([split.classes[i] for i in split.query_labels])

    # paste targets: `normals` training images drawn by seed; their maps give the normal level
    pick = np.random.default_rng(seed).choice(len(data.train), min(normals, len(data.train)), False)
    targets = [read_image(data.train[i].path) for i in sorted(pick)]
    target_fg = [foreground_mask(img, category, dataset) for img in targets]
    level = normal_level(Inputs(engine, images=targets).anomaly_maps())

    # the cut: anomaly map -> threshold -> GrabCut (no ground truth)
    support_maps = engine.anomaly_maps(split.support)
    cuts, ious = [], []
    for sample, label, amap in zip(split.support, support_labels, support_maps, strict=True):
        img = read_image(sample.path)
        fg = foreground_mask(img, category, dataset)
        cut = cut_support(img, amap.numpy(), label, features, level, fg)
        cuts.append(cut)
        ious.append(_ious(img, amap.numpy(), cut, sample.mask_path, features, level))

    # the paste, both blends, then everything through the engine
    support_x = block_rows(ANOMALY_BLOCKS, engine, split.support)
    sources: dict[str, np.ndarray] = {}  # the support image each row comes from
    rows_by_source: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for blend, place in VARIANTS:
        config = TransplantConfig(blend=blend, place=place)
        made = transplants(cuts, targets, per_cutout, seed, target_fg, config)
        inputs = Inputs(engine, images=[t.image for t in made])
        rows_by_source[f"transplant_{blend}_{place}"] = (
            _describe(inputs),
            inputs.anomaly_maps().numpy(),
            np.array([t.label for t in made]),
        )
        sources[f"transplant_{blend}_{place}"] = np.arange(len(made)) // per_cutout
    rows_by_source["support"] = (support_x, support_maps.numpy(), np.array(support_labels))
    sources["support"] = np.arange(len(split.support))
    targets_in = Inputs(engine, images=targets)
    rows_by_source["normal_targets"] = (
        _describe(targets_in),
        targets_in.anomaly_maps().numpy(),
        np.array(["good"] * len(targets)),
    )
    query_x = block_rows(ANOMALY_BLOCKS, engine, split.query)
    query_maps = engine.anomaly_maps(split.query).numpy()
    centroids = {c: _unit(query_x[query_labels == c].mean(0)) for c in split.classes}

    out = []
    base = {"dataset": dataset, "category": category, "shots": shots, "seed": seed}
    for source, (x, maps, labels) in rows_by_source.items():
        for c in [*split.classes, "all"]:
            sel = labels == c if c != "all" else np.ones(len(labels), bool)
            if source == "normal_targets":
                if c != "all":
                    continue
            elif not sel.any():
                continue
            real = query_labels == c if c != "all" else np.ones(len(query_labels), bool)
            row = {**base, "source": source, "defect_type": c, "n": int(sel.sum())}
            row.update(_map_stats(maps[sel], level, ""))
            row.update(_map_stats(query_maps[real], level, "real_"))
            row.update(_distances(x[sel], labels[sel], centroids))
            if source in sources:
                loo = _support_loo(x[sel], sources[source][sel], support_x, support_labels)
                row["dist_support_loo"] = loo
            if source == "support":
                picked = [iou for iou, lab in zip(ious, support_labels, strict=True) if lab == c]
                picked = picked if c != "all" else ious
                row["cut_iou"] = _mean([p[0] for p in picked])
                row["threshold_iou"] = _mean([p[1] for p in picked])
            out.append(row)
    for row in out:
        row.update(normal_level=level, per_cutout=per_cutout, n_targets=len(targets))
    return out


def _describe(inputs: Inputs) -> np.ndarray:
    return ANOMALY_BLOCKS.describe(inputs).numpy()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _map_stats(maps: np.ndarray, level: float, prefix: str) -> dict:
    """Mean peak score and mean fraction of map cells above the normal level."""
    peaks = maps.reshape(len(maps), -1).max(1)
    area = (maps.reshape(len(maps), -1) > level).mean(1)
    return {
        f"{prefix}peak_mean": float(peaks.mean()),
        f"{prefix}peak_std": float(peaks.std(ddof=1)) if len(peaks) > 1 else float("nan"),
        f"{prefix}area_mean": float(area.mean()),
    }


def _distances(x: np.ndarray, labels: np.ndarray, centroids: dict[str, np.ndarray]) -> dict:
    """Cosine distance of each row to its own type's real centroid and to the others'.

    ``x`` holds concatenated unit blocks, so rows are renormalised as a whole first."""
    names = list(centroids)
    c = np.stack([centroids[n] for n in names])  # (C, D)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = 1.0 - xn @ c.T  # (N, C)
    if labels[0] not in names:  # the normal targets: distance to the nearest type only
        return {"dist_same": float(d.min(1).mean()), "dist_other": float(d.mean())}
    own = np.array([names.index(lab) for lab in labels])
    same = d[np.arange(len(x)), own]
    other = (d.sum(1) - same) / max(len(names) - 1, 1)
    return {
        "dist_same": float(same.mean()),
        "dist_other": float(other.mean()),
        "nn_type_acc": float((d.argmin(1) == own).mean()),
    }


def _support_loo(
    x: np.ndarray, source: np.ndarray, support_x: np.ndarray, support_labels: list[str]
) -> float:
    """Mean cosine distance of rows to the centroid of the *other* support images of their
    source's type (no query label involved: a signal a method may select on)."""
    labels = np.array(support_labels)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    out = []
    for row, s in zip(xn, source, strict=True):
        others = (labels == labels[s]) & (np.arange(len(labels)) != s)
        if others.any():
            out.append(1.0 - float(row @ _unit(_unit_rows(support_x[others]).mean(0))))
    return float(np.mean(out)) if out else float("nan")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _ious(img, amap, cut, mask_path, features, level) -> tuple[float, float]:
    """IoU of the cut (GrabCut) and of the plain threshold with the ground truth (report only)."""
    if mask_path is None or not Path(mask_path).is_file():
        return float("nan"), float("nan")
    gt = read_image(mask_path)[..., 0] > 127
    full = np.zeros(img.shape[:2], bool)
    top, left, bottom, right = cut.box
    full[top:bottom, left:right] = cut.mask
    pix = map_to_image(amap, img.shape[:2], features)
    plain = cut_mask(img, pix, cut_threshold(float(pix.max()), level), grabcut=False)
    return _iou(full, gt), _iou(plain, gt)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else float("nan")


def _mean(v: list[float]) -> float:
    v = [x for x in v if not np.isnan(x)]
    return float(np.mean(v)) if v else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--categories", nargs="+", default=["bottle"])
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-cutout", type=int, default=4, help="transplants per support image")
    ap.add_argument("--normals", type=int, default=16, help="normal images pasted into")
    ap.add_argument("--data", default=os.environ.get("FSAD_DATA", "../shared/data"))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    rows = []
    for category in progress(args.categories, desc="categories"):
        start = time.perf_counter()
        dataset = DATASETS.get(category, "mvtec_ad")
        rows += category_rows(
            Path(args.data), dataset, category, args.shots, args.seed, args.per_cutout, args.normals
        )
        print(f"{category}: {time.perf_counter() - start:.0f} s")
    frame = pd.DataFrame(rows)
    frame["git_commit"] = git_commit()
    atomic_write_csv(args.out, frame.round(4))
    print(frame.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
