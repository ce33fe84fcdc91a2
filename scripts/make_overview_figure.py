"""Draw docs/overview.png, the README's figure, from the embedded dataset (no real data).

One normal image and one image per defect type of the embedded ``washer``: the image, its
PatchCore anomaly map (||r||, r = f - m*, Eq. 2) and the ground-truth mask outline.

    .venv/bin/python scripts/make_overview_figure.py [--out docs/overview.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fsad.data import load_category, read_image, read_mask
from fsad.embedded import ensure_embedded
from fsad.engine import ResidualEngine
from fsad.viz.figures import heatmap_overlay, image_grid, to_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/overview.png"))
    parser.add_argument("--category", default="washer")
    args = parser.parse_args()

    data = load_category(ensure_embedded(), "mvtec_ad", args.category)
    picks = [next(s for s in data.test if s.is_good)]
    picks += [next(s for s in data.test if s.label == t) for t in data.defect_types]
    engine = ResidualEngine(data, seed=1)
    maps = engine.anomaly_maps(picks).numpy()
    cfg = engine.config.features
    vmin, vmax = float(np.percentile(maps, 5)), float(maps.max())
    panels, titles = [], []
    for sample, amap in zip(picks, maps):
        image = read_image(sample.path)
        crop = _crop(image, cfg.resize, cfg.crop)
        shown = heatmap_overlay(crop, amap, alpha=0.45, vmin=vmin, vmax=vmax)
        if sample.mask_path is not None:
            mask = read_mask(sample.mask_path, image.shape[:2]).astype(np.uint8) * 255
            mask = (_crop(mask, cfg.resize, cfg.crop, cv2.INTER_NEAREST) > 127).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(shown, contours, -1, (255, 255, 255), 1)
        panels += [crop, shown]
        titles += [sample.label, f"anomaly map (max {amap.max():.1f})"]
    fig = image_grid(
        panels,
        titles,
        ncols=4,
        suptitle=f"Embedded '{args.category}': images and PatchCore anomaly maps "
        "(white: ground-truth outline)",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(to_png(fig, dpi=80))
    print(f"wrote {args.out}")


def _crop(image: np.ndarray, resize: int, crop: int, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The centre crop the backbone sees (geometry of fsad.features.preprocess), uint8."""
    h, w = image.shape[:2]
    s = resize / min(h, w)
    img = cv2.resize(
        image, (max(resize, round(w * s)), max(resize, round(h * s))), interpolation=interp
    )
    top, left = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
    return img[top : top + crop, left : left + crop]


if __name__ == "__main__":
    main()
