"""How much of light's directions lie among the directions normal images vary along
(issue #21; a study, label-free, chooses nothing).

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
  direction and the normals' subspace (1: every light direction lies in it, 0: none);
- ``chance``: ``k_n / D``, what a random subspace of ``k_n`` directions would hold of any
  direction on average.

Usage::

    python -m research.subspace_overlap --suite "$OUT/all" \\
        --out results/explore/subspace_overlap.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from fsad.engine import EngineConfig
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_engines
from fsad.utils import atomic_write_csv
from research.light_subspace_round import BASELINE, SubspaceEngine
from research.normal_subspace_round import NormalSubspaceEngine
from research.robust import PROTOCOLS, category_of, data_root

CATEGORIES = ("bottle", "transistor", "screw", "metal_nut")


def overlap(inside: torch.Tensor, basis: torch.Tensor) -> float:
    """The mean squared cosine between ``basis``' columns ``(D, k)`` and the subspace of
    ``inside``'s ``(D, m)`` (both orthonormal): ``||inside^T basis||_F^2 / k``."""
    return float((inside.T @ basis).pow(2).sum() / basis.shape[1])


def category_rows(protocol: str, name: str, data: Path, suite: Path | None) -> list[dict]:
    """One row per engine of the default's recipe: both bases' sizes and their overlap."""
    category = category_of(protocol, data, suite, name)
    config = EngineConfig(features=FeatureConfig(framing=PROTOCOLS[protocol][1]))
    recipe = RECIPES[BASELINE]
    light = recipe_engines(SubspaceEngine(category, config, seed=1), recipe)
    normal = recipe_engines(NormalSubspaceEngine(category, config, seed=1), recipe)
    rows = []
    for lit, norm in zip(light, normal, strict=True):
        u_l, u_n = lit.basis(), norm.basis()
        rows.append({
            "protocol": protocol, "category": name, "crop": lit.config.features.crop,
            "light_dims": u_l.shape[1], "normal_dims": u_n.shape[1],
            "light_in_normal": round(overlap(u_n, u_l), 4),
            "chance": round(u_n.shape[1] / u_n.shape[0], 4),
        })  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--suite", required=True, help="the suite `all` folder")
    ap.add_argument("--out", required=True, help="the CSV to write")
    args = ap.parse_args(argv)
    data, suite = data_root(args.data), Path(args.suite)
    rows = [
        row
        for protocol in PROTOCOLS
        for name in CATEGORIES
        for row in category_rows(protocol, name, Path(data), suite)
    ]
    commit = git_commit(Path(__file__).resolve().parents[1])
    atomic_write_csv(Path(args.out), pd.DataFrame(rows).assign(git_commit=commit))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
