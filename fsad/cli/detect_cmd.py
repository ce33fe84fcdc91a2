"""``fsad detect``: the binary anomaly-detection sanity check (PatchCore image/pixel AUROC)."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fsad.cache import DiskCache
from fsad.data import available_datasets, default_data_root, load_category, read_mask
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import DataError
from fsad.features import FeatureConfig


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "detect",
        help="PatchCore anomaly detection on one category: image and pixel AUROC",
        description=(
            "Build the coreset memory bank from the category's normal images, score every "
            "test image and report image-level AUROC (good vs defective) and pixel-level "
            "AUROC where ground-truth masks exist."
        ),
    )
    p.add_argument("--data", help="dataset root (default: $FSAD_DATA/<dataset>)")
    p.add_argument("--category", help="category name (not needed for --dataset folder)")
    p.add_argument("--dataset", default="mvtec_ad", choices=available_datasets())
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="timm model name")
    p.add_argument("--weights", help="local weights file (needed for non-packaged backbones)")
    p.add_argument("--dim", type=int, default=None, help="patch feature dimension D")
    p.add_argument("--seed", type=int, default=1, help="coreset seed")
    p.add_argument("--ratio", type=float, default=0.1, help="coreset ratio")
    p.add_argument("--sigma", type=float, default=4.0, help="Gaussian blur of pixel maps (0: off)")
    p.add_argument("--cache", help="cache folder (default: $FSAD_CACHE or ~/.cache/fsad)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.set_defaults(func=run)


def _data_root(args: argparse.Namespace) -> Path:
    if args.data:
        return Path(args.data).expanduser()
    root = default_data_root()
    if root is None:
        raise DataError("no data: pass --data ROOT or set FSAD_DATA")
    return root / args.dataset if (root / args.dataset).is_dir() else root


def pixel_maps(amaps: Any, size: tuple[int, int], sigma: float) -> np.ndarray:
    """Patch-grid maps ``(N, h, w)`` -> ``(N, H, W)`` (bilinear, then Gaussian blur as PatchCore)."""
    import cv2
    import torch.nn.functional as F

    up = F.interpolate(amaps[:, None].float(), size=size, mode="bilinear", align_corners=False)
    out = up[:, 0].numpy()
    if sigma > 0:
        out = np.stack([cv2.GaussianBlur(m, (0, 0), sigmaX=sigma) for m in out])
    return out


def evaluate(engine: Any, sigma: float = 4.0) -> dict[str, Any]:
    """Image AUROC and (where masks exist) pixel AUROC of an engine's category test set."""
    from sklearn.metrics import roc_auc_score

    test = engine.category.test
    labels = np.array([0 if s.is_good else 1 for s in test])
    scores = engine.scores(test).numpy()
    result: dict[str, Any] = {
        "n_good": int((labels == 0).sum()),
        "n_defective": int(labels.sum()),
        "image_auroc": float(roc_auc_score(labels, scores))
        if 0 < labels.sum() < len(labels)
        else None,
        "pixel_auroc": None,
    }
    with_masks = [s.mask_path is not None for s in test if not s.is_good]
    if with_masks and all(with_masks):
        size = (engine.config.features.crop, engine.config.features.crop)
        maps = pixel_maps(engine.anomaly_maps(test), size, sigma)
        gts = np.stack([_cropped_mask(s, engine.config.features) for s in test])
        if gts.any():
            result["pixel_auroc"] = float(roc_auc_score(gts.ravel(), maps.ravel()))
    return result


def _cropped_mask(sample: Any, cfg: Any) -> np.ndarray:
    """Ground-truth mask resized and centre-cropped exactly like the image, ``(crop, crop)``."""
    import cv2

    if sample.mask_path is None:
        return np.zeros((cfg.crop, cfg.crop), dtype=bool)
    h, w = _shape(sample)
    m = read_mask(sample.mask_path, (h, w)).astype(np.uint8)
    scale = cfg.resize / min(h, w)
    nh, nw = max(cfg.resize, round(h * scale)), max(cfg.resize, round(w * scale))
    m = cv2.resize(m, (nw, nh), interpolation=cv2.INTER_NEAREST)
    top, left = (nh - cfg.crop) // 2, (nw - cfg.crop) // 2
    return m[top : top + cfg.crop, left : left + cfg.crop] > 0


def _shape(sample: Any) -> tuple[int, int]:
    import cv2

    img = cv2.imread(str(sample.path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"cannot read image: {sample.path}")
    return int(img.shape[0]), int(img.shape[1])


def run(args: argparse.Namespace) -> int:
    root = _data_root(args)
    category = load_category(root, args.dataset, args.category)
    fcfg = FeatureConfig(backbone=args.backbone, weights=args.weights)
    if args.dim:
        fcfg = replace(fcfg, dim=args.dim)
    config = EngineConfig(features=fcfg, coreset_ratio=args.ratio)
    cache = DiskCache(args.cache, enabled=not args.no_cache)
    engine = ResidualEngine(category, config, seed=args.seed, cache=cache)
    start = time.perf_counter()
    result = evaluate(engine, sigma=args.sigma)
    elapsed = time.perf_counter() - start

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    print(
        f"category   {category.name} ({args.dataset}, {len(category.train)} bank images "
        f"from {category.bank_source}, {result['n_good']} good + {result['n_defective']} "
        f"defective test images)"
    )
    print(f"backbone   {fcfg.backbone}  D={fcfg.dim}  ratio={args.ratio}  seed={args.seed}")
    print(f"{'metric':<12}{'value':>8}")
    print(f"{'image AUROC':<12}{fmt(result['image_auroc']):>8}")
    print(f"{'pixel AUROC':<12}{fmt(result['pixel_auroc']):>8}")
    print(f"time       {elapsed:.1f} s")
    if category.bank_source != "train":
        print(
            f"note: '{category.name}' has no train normals; the bank is built from the "
            f"good test images ({category.bank_source}), so these AUROCs are not meaningful."
        )
    return 0
