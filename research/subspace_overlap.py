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
  direction and the normals' subspace (1: every light direction lies in it, 0: each is
  orthogonal to it), and ``chance``: ``k_n / D``, what a random subspace of ``k_n``
  directions would hold of any direction on average;
- ``normal_in_light``: ``||U_l^T U_n||_F^2 / k_n``, the same read the other way (the same
  sum over the larger or smaller basis), and ``chance_light``: ``k_l / D``.

Usage::

    python -m research.subspace_overlap --suite "$OUT/all" \\
        --out results/explore/subspace_overlap.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from fsad.data import CategoryData
from fsad.engine import EngineConfig
from fsad.evaluate import git_commit
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_engines
from fsad.utils import atomic_write_csv
from research.light_subspace_round import BASELINE, SubspaceEngine
from research.normal_subspace_round import NormalSubspaceEngine
from research.robust import category_of, data_root, protocol_cells, round_parser


def overlap(inside: torch.Tensor, basis: torch.Tensor) -> float:
    """The mean squared cosine between ``basis``' columns ``(D, k)`` and the subspace of
    ``inside``'s ``(D, m)`` (both orthonormal): ``||inside^T basis||_F^2 / k``."""
    return float((inside.T @ basis).pow(2).sum() / basis.shape[1])


def category_rows(category: CategoryData, config: EngineConfig) -> list[dict]:
    """One row per engine of the default's recipe on ``category`` (the protocol's engine
    settings ``config``): both bases' sizes and their overlap, each way."""
    recipe = RECIPES[BASELINE]
    light = recipe_engines(SubspaceEngine(category, config, seed=1), recipe)
    normal = recipe_engines(NormalSubspaceEngine(category, config, seed=1), recipe)
    rows = []
    for lit, norm in zip(light, normal, strict=True):
        u_l, u_n = lit.basis(), norm.basis()
        rows.append({
            "crop": lit.config.features.crop,
            "light_dims": u_l.shape[1], "normal_dims": u_n.shape[1],
            "light_in_normal": round(overlap(u_n, u_l), 4),
            "chance": round(u_n.shape[1] / u_n.shape[0], 4),
            "normal_in_light": round(overlap(u_l, u_n), 4),
            "chance_light": round(u_l.shape[1] / u_l.shape[0], 4),
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
