"""What does undoing the light do to the features? (a study: its per-type table reads every
image's defect type and chooses nothing; its estimator table reads the bank's normal images
and the generator's own light draws, never a defect type, as the light estimate study did)

The light by type study (:mod:`research.light_by_type_study`) measured the light the
library's estimate (:mod:`fsad.light_estimate`) leaves in the *pixels* of the suite `all`:
about half, on normals and defect types alike. Yet undoing it costs the suite's transistor
13 points where the exactly undone light (the oracle, :mod:`research.light_oracle`) gains
13. The engine does not see pixels: it sees patch features. This study measures the light
left where the engine looks, in the patch features ``f`` (not the residuals ``r = f - m*``)
of both of the default's engines (EfficientNet-Lite0 at 224 px, the whole image letterboxed,
as ``fsad run --dataset folder`` frames it; and at 448 px, at the product's scale).

**Measure.** For every image and each *version* of it (``shot``: as written; ``library``:
the library's estimate undone; three simpler estimates, :data:`VARIANTS`), the version's
*truth* is the oracle's copy (the drawn light divided out exactly) under the light the
version's images share: one affine map of the log luminance, ``log t = a log o + b``, fitted
over the category's bank normals (the reference's own light is harmless: every image of the
version has it). ``feat_left`` is the mean over the patch grid of ``||f(version) -
f(truth)||``, the feature distance the light leaves. Its share (a version over ``shot``)
below 1: the estimate took light out of the features; above 1: it put some in.

- ``library``: the median-gradient plane removed, then ``(g, k)`` from the 19 log-luminance
  quantiles against the normals' mean (:func:`fsad.light_estimate.undo_light`);
- ``no_plane``: the same ``(g, k)`` without removing a plane;
- ``gain_plane``: the plane removed, then the gain alone (``g = 1``, ``k`` the mean of the
  quantiles' difference to the reference);
- ``gain``: the gain alone, no plane.

The constants are the library's; the variants were fixed before this study ran.

**What it found** (``results/explore/light_features.csv``, 928 images x 5 versions x 2
engines, at 8fd04b8, about 40 minutes on 2 cores beside other work; the table is
:func:`fsad.report.feature_light_by_type`, chapter 10). The library's estimate leaves
0.52-0.64 of the feature light on metal_nut, 0.49-0.62 on screw, 0.59-0.67 on transistor's
normals, misplaced parts, damaged cases and bent leads (cut leads 0.77-0.85), on both
engines alike; on bottle it takes out little or none (normals 1.02-1.03, defects 0.93-1.04). On the
bank's normals no variant leaves less: without the plane it ties on transistor and leaves
more on screw (0.73 against 0.55), the gain alone more everywhere. The first run fitted the
common light with numpy's ``polyfit`` on float32 pixels, which was ill-conditioned on bottle
and transistor (:func:`common_light` now solves it in float64).

Usage (the suite and the oracle's copies written as their modules say)::

    python -m research.light_feature_study --suite "$SUITE/all" \\
        --oracle "$ORACLE/all_light_undone" --out results/explore/light_features.csv
    python -m research.light_feature_study --summary results/explore/light_features.csv
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fsad.config import load_config
from fsad.data import CategoryData, load_category, read_image
from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.evaluate.sources import engine_config_from_dict
from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.light_estimate import (
    VALID,
    fit_light,
    flattened,
    log_domain,
    log_quantiles,
    reference_levels,
    undo_light,
)
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_engines
from fsad.report import feature_light_by_type
from fsad.utils import atomic_write_csv
from research.light_estimate_study import small_log
from research.light_oracle import oracle_copy
from research.records import oracle_study_parser
from research.robust import CATEGORIES

Estimate = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: the default's engines the study reads, in :func:`fsad.recipe.recipe_engines`'s order
ENGINES = ("first", "hires")


def relit(image: np.ndarray, g: float, k: float) -> np.ndarray:
    """``(H, W, C) uint8``: every channel ``y -> (y - k) / g`` in the log domain."""
    x = 256.0 * np.exp((log_domain(image) - k) / g) - 0.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def undo_gain(image: np.ndarray, reference: np.ndarray, plane: bool) -> np.ndarray:
    """The gain alone undone (``g = 1``, ``k`` the mean log-quantile difference to
    ``reference``), after the plane when ``plane``."""
    flat = flattened(image) if plane else image
    return relit(flat, 1.0, float(np.mean(log_quantiles(flat) - reference)))


def undo_no_plane(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The library's ``(g, k)`` fit without removing a plane."""
    return relit(image, *fit_light(log_quantiles(image), reference))


#: the versions of every image: how each is made from the image and the reference
VARIANTS: dict[str, Estimate | None] = {
    "shot": None,
    "library": undo_light,
    "no_plane": undo_no_plane,
    "gain_plane": lambda im, ref: undo_gain(im, ref, plane=True),
    "gain": lambda im, ref: undo_gain(im, ref, plane=False),
}


def common_light(
    versions: Sequence[np.ndarray], oracle: Sequence[np.ndarray]
) -> tuple[float, float]:
    """``(a, b)`` of ``log version ~ a log oracle + b``, pooled over the images' pixels that
    are neither crushed nor clipped (:data:`fsad.light_estimate.VALID`) in both, each image
    shrunk as the light estimate study shrinks it."""
    lo, hi = np.log((np.array(VALID) + 0.5) / 256.0)
    xs, ys = [], []
    for v, o in zip(versions, oracle, strict=True):
        y, x = small_log(v.mean(axis=2)), small_log(o.mean(axis=2))
        keep = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
        xs.append(x[keep])
        ys.append(y[keep])
    x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)
    a = float(np.mean((x - x.mean()) * (y - y.mean())) / np.var(x))
    return a, float(y.mean() - a * x.mean())


def truth_of(oracle: np.ndarray, a: float, b: float) -> np.ndarray:
    """The oracle's copy under the version's common light: ``log t = a log o + b``."""
    x = 256.0 * np.exp(a * log_domain(oracle) + b) - 0.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def feature_distance(engine: ResidualEngine, a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                     batch: int = 16) -> np.ndarray:  # fmt: skip
    """``(N,)``: per image pair (``(H, W, 3)`` uint8 each, the pair of one size), the mean over
    the patch grid of ``||f(a) - f(b)||``, the engine's features ``(B, D, h, w)``."""
    out = []
    for i in range(0, len(a), batch):
        fa = engine.features_of_images(list(a[i : i + batch]))
        fb = engine.features_of_images(list(b[i : i + batch]))
        out.append(torch.linalg.vector_norm(fa - fb, dim=1).flatten(1).mean(dim=1))
    return torch.cat(out).numpy()


def default_engine(category: CategoryData, which: str) -> ResidualEngine:
    """One of the default's engines on ``category`` as ``fsad run --dataset folder`` builds
    them: ``"first"`` (``configs/paper.yaml``'s engine, 224 px, the whole image letterboxed)
    or ``"hires"`` (the 448 px engine at the product's scale, :func:`fsad.recipe.framed`
    ``"fixed"``)."""
    config = engine_config_from_dict(load_config("paper").engine)
    first = ResidualEngine(
        category, replace(config, features=replace(config.features, framing="letterbox"))
    )
    return recipe_engines(first, RECIPES[DEFAULT_METHOD])[ENGINES.index(which)]


def category_rows(suite: Path, oracle: Path, name: str, which: str) -> list[dict]:
    """One row per image of ``suite/name`` and version (:data:`VARIANTS`): its type, whether
    it is a bank normal, and ``feat_left`` on the default's engine ``which``
    (:func:`default_engine`)."""
    category = load_category(suite / name, "folder")
    samples = [*category.train, *category.test]
    n_bank = len(category.train)
    images = [read_image(s.path) for s in samples]
    truths = [read_image(oracle_copy(oracle / name, suite / name, s.path)) for s in samples]
    reference = reference_levels(images[:n_bank])
    engine = default_engine(category, which)
    rows = []
    for version, estimate in VARIANTS.items():
        moved = images if estimate is None else [estimate(im, reference) for im in images]
        a, b = common_light(moved[:n_bank], truths[:n_bank])
        left = feature_distance(engine, moved, [truth_of(t, a, b) for t in truths])
        rows += [{"category": name, "image": str(s.path.relative_to(suite / name)),
                  "label": s.label, "bank": i < n_bank, "engine": which, "version": version,
                  "feat_left": float(d), "common_a": a, "common_b": b}
                 for i, (s, d) in enumerate(zip(samples, left, strict=True))]  # fmt: skip
        print(f"{name} {which} {version}: {np.mean(left):.3f}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = oracle_study_parser(__doc__, CATEGORIES)
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    args = ap.parse_args(argv)
    if args.out:
        if not (args.suite and args.oracle):
            raise SystemExit("--out needs --suite and --oracle")
        rows = [r for w in args.engines for c in args.categories
                for r in category_rows(args.suite, args.oracle, c, w)]  # fmt: skip
        stamp = {"git_commit": git_commit(Path(__file__).resolve().parents[1]),
                 "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        atomic_write_csv(args.out, pd.DataFrame(rows).assign(**stamp))
    if args.summary or args.out:
        for engine, rows in pd.read_csv(args.summary or args.out).groupby("engine", sort=False):
            print(f"engine {engine}:")
            print(feature_light_by_type(rows).to_string())


if __name__ == "__main__":
    main()
