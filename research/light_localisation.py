"""Does uneven light move where the default looks, or change what it sees there? (issue #21)

Chapter 11 found light the largest single cost of the default on the suite (``illumination``
alone: -17 points at 5 shots, screw -40), and a cost that stays when every other image of
the category is labelled. A study, not a round: it reads where the defects are (never their
types) and chooses nothing.

The ``illumination`` suite only changes pixel values (gamma, gain, a brightness gradient and
a colour-temperature shift); every file keeps its geometry and name. So each defect image's
anomaly map under light can be laid over the same image's map untransformed (``none``), patch
for patch, on the default's first engine (224 px, whole image letterboxed, bank seed 1): the
engine whose map places the anomaly blocks and the zoom windows.

Per defect image (all of a category's, support and queries alike):

- ``region``: the untransformed map's defect region, as the suite generator finds one where
  no mask exists (:func:`fsad.suite.map_region`'s rule on the patch grid: the connected part
  around the peak above ``median + 0.5 (peak - median)``), widened by one patch;
- ``peak_in``: whether the lit map's peak lies in that region (the untransformed map's does,
  by construction);
- ``top_in``: the share of the lit map's 2 % most anomalous patches in the region, beside
  ``top_in_none``, the same share of the untransformed map's own;
- ``score_ratio``: the lit image's anomaly score over its untransformed score;
- ``compared``: ``"illumination seed 1"``, or the control ``"none seed 2"`` (``--control``):
  the untransformed images again with another coreset, which says how far two coresets
  alone move the peak (a full bank does not depend on the seed);
- ``mask_peak_in`` (bottle, the one category here with masks): whether each map's peak lies
  in the ground-truth mask, widened by one patch, for both suites.

Run (the suites from ``fsad data suite --suites none illumination``, the masks from
``$FSAD_DATA``; about 3 minutes per category and suite from an empty cache on one core)::

    python -m research.light_localisation --suites $OUT --coresets 0.1 1.0 --control \\
        --out results/explore/light_localisation.csv

What it found (``results/explore/light_localisation.csv``, at 7fc6d9d): the share of
defect images whose compared map's peak lies outside the untransformed map's region is, for
screw (50 images) and metal_nut (93): another 10 % coreset alone 6 % and 12 %; light with
the 10 % coreset 26 % and 32 %; light with every normal patch in the bank 10 % and 18 %
(bottle, 63 images: 0 %, 0 % and 2 %; its ground-truth masks hold every peak in all three).
Light moves the first engine's map beyond what the coreset's sampling does, and a full bank
takes back about half of that on screw and little on metal_nut. Transistor is not in the
study, and metal_nut's bank holds its 10 normal images only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.data import GOOD, load_category, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig, placement
from fsad.report import localisation_summary
from fsad.suite import SuiteSettings, peak_part
from fsad.utils import atomic_write_csv
from research.records import data_root, study_parser

CATEGORIES = ("bottle", "screw", "metal_nut")
#: the suite generator's relative level of a map's defect region
LEVEL = SuiteSettings().map_threshold
#: share of most anomalous patches counted (one of the default's anomaly-block shares)
TOP = 0.02
#: the comparison of the study: the ``illumination`` suite, bank seed 1
LIT = ("illumination", 1)
#: its control: the untransformed images again with another coreset (bank seed 2)
CONTROL = ("none", 2)


def peak_region(amap: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """The connected part of a patch map around its peak above ``median + level (peak -
    median)``, widened by one patch (8-neighbourhood).

    Args:
        amap: ``(h, w)`` anomaly map.

    Returns:
        ``(h, w)`` bool.
    """
    import cv2

    region = peak_part(amap, level).astype(np.uint8)  # the suite generator's own rule
    return cv2.dilate(region, np.ones((3, 3), np.uint8)) > 0


def top_share(amap: np.ndarray, region: np.ndarray, top: float = TOP) -> float:
    """Share of the ``top`` most anomalous patches of ``amap`` ``(h, w)`` inside ``region``."""
    k = max(1, round(top * amap.size))
    idx = np.argsort(amap.ravel())[::-1][:k]
    return float(region.ravel()[idx].mean())


def peak_in(amap: np.ndarray, region: np.ndarray) -> bool:
    """Whether the peak of ``amap`` ``(h, w)`` lies in ``region`` ``(h, w)``."""
    return bool(region.ravel()[int(np.argmax(amap))])


def mask_on_grid(mask: np.ndarray, config: FeatureConfig, grid: int) -> np.ndarray:
    """A ``(H, W)`` ground-truth mask laid on the engine's ``(grid, grid)`` patch grid as
    the image is placed (letterbox, or the centre crop, which cuts the mask too), widened by
    one patch."""
    import cv2

    p = placement(mask.shape[:2], config)
    canvas = np.zeros((config.crop, config.crop), np.float32)
    small = cv2.resize(mask.astype(np.float32), (p.nw, p.nh), interpolation=cv2.INTER_AREA)
    top, left, bottom, right = p.visible()
    canvas[top:bottom, left:right] = small[top - p.dy : bottom - p.dy, left - p.dx : right - p.dx]
    cells = cv2.resize(canvas, (grid, grid), interpolation=cv2.INTER_AREA) > 0  # any overlap
    return cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def suite_maps(
    suites: Path, suite: str, name: str, config: EngineConfig, seed: int
) -> dict[tuple[str, str], np.ndarray]:
    """``(type, file stem) -> (h, w)`` anomaly map of every defect image of ``name`` in the
    ``suite`` folder, from the engine ``config`` with bank seed ``seed``."""
    category = load_category(suites / suite / name, "folder")
    defects = [s for s in category.test if s.label != GOOD]
    maps = ResidualEngine(category, config, seed=seed).anomaly_maps(defects).numpy()
    return {(s.label, s.path.stem): m for s, m in zip(defects, maps, strict=True)}


def category_rows(
    suites: Path, data: Path, name: str, coreset: float = 0.1, other: tuple[str, int] = LIT
) -> list[dict]:
    """One row per defect image of ``name``: the map of ``other`` (suite, bank seed) against
    the untransformed map of bank seed 1 (``coreset``: the share of normal patches both
    banks keep; ``other = ("none", 2)`` is the control: the same images, another coreset)."""
    config = EngineConfig(features=FeatureConfig(framing="letterbox"), coreset_ratio=coreset)
    plain_maps = suite_maps(suites, "none", name, config, 1)
    other_maps = suite_maps(suites, other[0], name, config, other[1])
    masks = data / "mvtec_ad" / name / "ground_truth"
    rows = []
    for key, plain in sorted(plain_maps.items()):
        lit = other_maps[key]
        region = peak_region(plain)
        row = {
            "category": name, "coreset": coreset, "compared": f"{other[0]} seed {other[1]}",
            "label": key[0], "file": key[1],
            "peak_in": peak_in(lit, region), "top_in": top_share(lit, region),
            "top_in_none": top_share(plain, region),
            "score_ratio": float(lit.max() / plain.max()),
        }  # fmt: skip
        mask_file = masks / key[0] / f"{key[1]}_mask.png"
        if mask_file.exists():
            truth = read_image(mask_file)[..., 0] > 127  # as fsad.data.read_mask reads masks
            mask = mask_on_grid(truth, config.features, plain.shape[0])
            row.update(mask_peak_in_none=peak_in(plain, mask), mask_peak_in_lit=peak_in(lit, mask))
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Write the study's rows (``--out``) and print its summary."""
    control = "also compare none with none, bank seed 2 (for each coreset below 1"
    ap = study_parser(__doc__, CATEGORIES, control + ": a full bank does not depend on the seed)")
    ap.add_argument("--data", default=None, help="data root for the masks (default: $FSAD_DATA)")
    ap.add_argument("--coresets", type=float, nargs="+", default=[0.1], help="bank shares")
    args = ap.parse_args(argv)
    commit = git_commit(Path(__file__).resolve().parents[1])
    rows = []
    for coreset in args.coresets:
        others = [LIT, CONTROL] if args.control and coreset < 1 else [LIT]
        for name, other in itertools.product(args.categories, others):
            rows += category_rows(
                Path(args.suites), Path(data_root(args.data)), name, coreset, other
            )
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    frame = pd.DataFrame(rows).assign(git_commit=commit, timestamp=stamp)
    atomic_write_csv(Path(args.out), frame)
    print(localisation_summary(frame).to_string())


if __name__ == "__main__":
    main()
