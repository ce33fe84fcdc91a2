"""The two subspace rounds' bases: how far they overlap, what they take from the anomalies
and where the projected engines look (issue #21; a study, no class label read, chooses
nothing).

Photometric round 7 (:mod:`research.light_subspace_round`) removed from every engine's
patch features the directions along which three fixed lights move normal patches;
robustness round 13 (:mod:`research.normal_subspace_round`) the directions along which the
normal images as shot vary at one place of the frame. Both learn, per engine, an
orthonormal basis of the 384 feature channels from the same 40 normal images (seed 0), so
whether their effects could share a cause is, in part, whether the two subspaces overlap.

Per protocol, category and engine of the default's recipe (224 px and 448 px), from the
rounds' cached bases (each is recomputed when missing; neither reads a label):

- ``light_dims`` ``k_l`` and ``normal_dims`` ``k_n``: each basis's directions;
- ``light_in_normal``: ``||U_n^T U_l||_F^2 / k_l``, the mean squared cosine between a light
  direction and the normals' subspace (1: every light direction lies in it, 0: each is
  orthogonal to it), and ``chance``: ``k_n / D``, what a random subspace of ``k_n``
  directions would hold of any direction on average;
- ``normal_in_light``: ``||U_l^T U_n||_F^2 / k_n``, the same read the other way (the same
  sum over the larger or smaller basis), and ``chance_light``: ``k_l / D``.

What each subspace takes from the anomalies (added after robustness round 13; the plain
engine at bank seed 1, no class label read): at each image's peak patch p* of the plain
anomaly map, the share of the residual r = f - m* (Eq. 2) lying in a basis,
``||U^T r_p*||^2 / ||r_p*||^2``, averaged over the category's defect images
(``defect_light``, ``defect_normal``) and over its good test images when they are not the
bank's own (``good_light``, ``good_normal``; empty where there are none: the shared screw
has no good test image, metal_nut's are its bank, and the suite's good images are its
bank). A subspace that takes a smaller share of
the defects' peak residuals than of the good images' removes more nuisance than anomaly.
And where the projected engine looks: ``moved_light`` and ``moved_normal``, the share of the
defect images whose projected anomaly map peaks more than one patch (Chebyshev distance)
from the plain map's peak; the peak ranks the top-k patches of the anomaly blocks and
places the zoom windows. Where the category has masks (of these, MVTec's bottle only):
``in_mask_plain``, ``in_mask_light`` and ``in_mask_normal``, the share of its defect images
whose map peaks inside the mask laid on the patch grid and widened by one patch
(:func:`research.light_localisation.mask_on_grid`); the masks are pixel labels of the
defects, never their types.

What it found (``results/explore/subspace_overlap.csv``, 16 rows): the smaller of each
engine's two subspaces lies largely inside the larger (mean squared cosine 0.52-0.77 on the
MVTec protocol, 0.57-0.75 on the suite; 2.7 to 4.3 times chance); neither spares the
anomalies (the normals' holds 42-71 % of the defects' peak residual on the MVTec protocol,
and as much of the good images' where they exist); both move the 224 px map's peak beyond
its neighbours for 8-61 % of the defect images on the MVTec protocol and 27-70 % on the
suite, on bottle within the defects.

Usage::

    python -m research.subspace_overlap --suite "$OUT/all" \\
        --out results/explore/subspace_overlap.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fsad.data import CategoryData, Sample, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_engines
from fsad.utils import atomic_write_csv
from research.light_localisation import mask_on_grid, peak_in
from research.light_subspace_round import BASELINE, SubspaceEngine
from research.normal_subspace_round import NormalSubspaceEngine
from research.robust import category_of, data_root, protocol_cells, round_parser


def overlap(inside: torch.Tensor, basis: torch.Tensor) -> float:
    """The mean squared cosine between ``basis``' columns ``(D, k)`` and the subspace of
    ``inside``'s ``(D, m)`` (both orthonormal): ``||inside^T basis||_F^2 / k``."""
    return float((inside.T @ basis).pow(2).sum() / basis.shape[1])


def peak_shares(engine: ResidualEngine, samples: list[Sample], basis: torch.Tensor) -> float:
    """The mean over ``samples`` of the share of each image's residual at its anomaly map's
    peak patch that lies in ``basis`` ``(D, k)`` (NaN for no sample)."""
    if not samples:
        return float("nan")
    r, amap = engine.residuals(samples), engine.anomaly_maps(samples)  # (N, D, h, w), (N, h, w)
    peak = amap.flatten(1).argmax(dim=1)
    at_peak = r.flatten(2)[torch.arange(len(samples)), :, peak]  # (N, D)
    share = (at_peak @ basis).pow(2).sum(1) / at_peak.pow(2).sum(1).clamp(min=1e-12)
    return float(share.mean())


def peak_moved(plain: torch.Tensor, projected: torch.Tensor) -> float:
    """The share of images whose ``projected`` map ``(N, h, w)`` peaks more than one patch
    (Chebyshev distance) from the ``plain`` map's peak."""
    width = plain.shape[-1]
    a, b = plain.flatten(1).argmax(1), projected.flatten(1).argmax(1)
    distance = torch.maximum((a // width - b // width).abs(), (a % width - b % width).abs())
    return float((distance > 1).float().mean())


def peaks_in_masks(maps: torch.Tensor, samples: list[Sample], config: FeatureConfig) -> float:
    """The share of ``samples`` whose map ``(N, h, w)`` peaks inside their mask (NaN when
    a sample has no mask)."""
    if not samples or any(s.mask_path is None for s in samples):
        return float("nan")
    inside = [
        peak_in(m.numpy(), mask_on_grid(read_image(s.mask_path)[..., 0] > 127, config, len(m)))
        for m, s in zip(maps, samples, strict=True)
    ]
    return float(np.mean(inside))


def category_rows(category: CategoryData, config: EngineConfig) -> list[dict]:
    """One row per engine of the default's recipe on ``category`` (the protocol's engine
    settings ``config``): both bases' sizes and their overlap, each way."""
    recipe = RECIPES[BASELINE]
    light = recipe_engines(SubspaceEngine(category, config, seed=1), recipe)
    normal = recipe_engines(NormalSubspaceEngine(category, config, seed=1), recipe)
    plain = recipe_engines(ResidualEngine(category, config, seed=1), recipe)
    defects = [s for s in category.test if not s.is_good]
    good = [s for s in category.test if s.is_good] if category.bank_source == "train" else []
    rows = []
    for lit, norm, engine in zip(light, normal, plain, strict=True):
        u_l, u_n, maps = lit.basis(), norm.basis(), engine.anomaly_maps(defects)
        rows.append({
            "crop": lit.config.features.crop,
            "light_dims": u_l.shape[1], "normal_dims": u_n.shape[1],
            "light_in_normal": round(overlap(u_n, u_l), 4),
            "chance": round(u_n.shape[1] / u_n.shape[0], 4),
            "normal_in_light": round(overlap(u_l, u_n), 4),
            "chance_light": round(u_l.shape[1] / u_l.shape[0], 4),
            "defect_light": round(peak_shares(engine, defects, u_l), 4),
            "good_light": round(peak_shares(engine, good, u_l), 4),
            "defect_normal": round(peak_shares(engine, defects, u_n), 4),
            "good_normal": round(peak_shares(engine, good, u_n), 4),
            "moved_light": round(peak_moved(maps, lit.anomaly_maps(defects)), 4),
            "moved_normal": round(peak_moved(maps, norm.anomaly_maps(defects)), 4),
            **{
                f"in_mask_{name}": round(peaks_in_masks(m, defects, e.config.features), 4)
                for name, e, m in (
                    ("plain", engine, maps),
                    ("light", lit, lit.anomaly_maps(defects)),
                    ("normal", norm, norm.anomaly_maps(defects)),
                )
            },
        })  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Write every protocol's and category's rows to ``--out`` and print them."""
    args = round_parser(__doc__).parse_args(argv)
    rows = []
    for protocol, name, config in protocol_cells(args):
        category = category_of(protocol, Path(data_root(args.data)), Path(args.suite), name)
        cell = {"protocol": protocol, "category": name}
        rows += [cell | row for row in category_rows(category, config)]
    commit = git_commit(Path(__file__).resolve().parents[1])
    atomic_write_csv(Path(args.out), pd.DataFrame(rows).assign(git_commit=commit))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
