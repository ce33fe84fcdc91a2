"""Photometric round 7 (issue #21, item 3): every engine's patch features with the
directions along which light moves normal patches projected out, learned from the product's
own normal images relit; chosen without query labels on the MVTec protocol and the
generalisation suite together.

Why: photometric round 6 (:mod:`research.light_projection_round`) projected light's
directions out of the zoom views alone and lost by its rule (leave-one-out +0.35 points
averaged; the MVTec protocol's unmoved), although the light-rows study's ``--projected`` group shows
that the projection made the zoom rows of all three categories it reads move less under
light (median ratio to the nearest other defect image down by about a quarter: 1.35 ->
0.99, 1.88 -> 1.36, 1.35 -> 1.01 on bottle, screw, metal_nut; corrected while the round
ran: the text committed with the rule named metal_nut alone, before those rows were in the
record). The zoom
views are one of three experts, and their windows are placed by the first engine's map,
which light moves (:mod:`research.light_localisation`). This round acts where every block
starts: PatchCore's patch features f themselves. With light's directions removed from f,
the bank's normals, the residuals r = f - m* (Eq. 2), the anomaly map ||r|| (which places
the top-k patches and the zoom windows) and the centred feature blocks all live in a
subspace that light moves less, on both engines (224 px and 448 px).

**The nuisance directions** (label-free: only the engine's normal images are read).
From :data:`NORMALS` of the engine's normal images (seed 0), framed as the engine frames
them, the patch features of each image as shot and under each of
:func:`fsad.light.lit_views`'s three fixed lights (gamma 1.4, gamma 1 / 1.4, a brightness
ramp of 0.75-1.25; not the suite's generator); the differences lit minus as shot, patch by
patch, give the basis: the leading eigenvectors of their second-moment matrix ``(D, D)``
that hold :data:`ENERGY` of its trace (round 6's share, fixed before that round). Each
engine learns its own basis; every patch feature f (bank, support, turned support, query)
becomes ``f - U U^T f``. Features are not renormalised (PatchCore's are not unit-norm).

- ``baseline``: :data:`BASELINE` (``fsad fit``'s default when the round was written), as
  registered, on the protocol's engine;
- ``light_subspace``: the same recipe on :class:`SubspaceEngine` s: the same settings,
  coreset ratios, seed, blocks, zoom views (their windows at the projected map's peak; the
  windows' pixels themselves are not projected), poses and head.

Signal: support leave-one-out at 5 shots, the four MVTec AD categories, **seeds 1-3**, on
the MVTec protocol (centre crop) and the suite ``all`` (whole image), via
:func:`research.recipe_round.score_variants` (the code ``fsad run`` uses). Query accuracy is
recorded, never used.

**What the round found** (``results/explore/light_subspace.csv``, 48 rows, all run at
fe6d7ed from a clean clone, one process per protocol, each on one core, about 55 minutes):
*lost* by its rule's guard on the MVTec protocol.

- Support leave-one-out, mean ± std over seeds 1-3 of the four categories' mean: MVTec
  protocol 85.2 ± 1.0 % against 82.9 ± 1.5 % (transistor 80.0 -> 71.7, metal_nut 90.0 ->
  86.7, screw 84.0 -> 86.7, bottle equal), suite ``all`` 55.0 ± 1.3 % against 59.9 ± 0.6 %
  (metal_nut 46.7 -> 66.7, screw 53.3 -> 54.7, transistor 40.0 -> 38.3, bottle equal):
  +1.33 points averaged, over the margin of +1, but 2.25 points below the baseline on the
  MVTec protocol, beyond its guard (the baseline's std, 1.0). Lost.
- The query record, which decides nothing: 71.8 -> 78.0 % on the MVTec protocol (+6.12;
  transistor 55.0 -> 70.0, screw 76.0 -> 81.3) and 58.6 -> 61.8 % on the suite (+3.17;
  metal_nut +6.8, screw +6.7, bottle +4.2, transistor -5.0), each beyond the baseline's
  seed-std (2.4 and 2.7). On the MVTec protocol it runs against the signal: transistor's
  leave-one-out loses 8.3 points (20 left-out images, so about 1.7 images a seed, the same
  images every seed) while its 20 queries gain 15. The rule is not overridden by the
  record; chapter 10's table of signal against record counts the pair.
- The baseline's rows equal robustness round 12's and photometric round 6's (and so
  ``fsad run``'s rows of the default) in 24 of 24 cells.
- Directions removed per engine (of 384 channels): 33-70 on the MVTec protocol, 57-88 on
  the suite; transistor most on both.
- Cost: each candidate cell took 41-646 s on one core (metal_nut 41-59, bottle 152-355,
  transistor 307-336, screw 344-646: each engine's basis, both coresets and every residual
  recomputed), the baseline's 0.7-3.9 s from a warm cache; the MVTec process peaked at
  about 8 GB (the 448 px engine's normal features, raw and projected).
- Light invariance does not plainly explain the record. The light-rows study's
  ``--subspace`` groups (:mod:`research.light_descriptors`, added after the round; one
  seed, one draw of light; each suite's engines with their own basis, so the lit and the
  untransformed rows also differ by the basis, unlike ``--projected``'s one basis): the
  anomaly blocks move less under the suite's light on screw (share of defect images moved
  beyond their nearest other image 50 -> 22 % at 224 px, 54 -> 36 % at 448 px; its suite
  record +6.7), a little less on metal_nut's 448 px blocks (86 -> 77 %; its 224 px blocks a
  little more, 35 -> 40 %), and more on bottle (13 -> 46 %, 25 -> 60 %), while bottle's
  suite record rose by 4.2 points; and the record rose most on the MVTec protocol, whose
  light never changes. The evidence is mixed; light invariance is at most part of it.
- Robustness round 13 (:mod:`research.normal_subspace_round`, after this round) removed the
  normals' own leading variation instead, no lit image seen, and its record rose as far
  (+4.29 and +5.59) while its rule's guard failed the same way: the whitening reading is
  supported. The smaller of each engine's two subspaces lies largely inside the larger (mean
  squared cosine 0.52-0.77 on the MVTec protocol, 0.57-0.75 on the suite;
  :mod:`research.subspace_overlap`), and image by image no move of either signal on the
  MVTec protocol is distinguishable from chance flips (:mod:`research.paired_outcomes`:
  leave-one-out 6 images lost, 3 gained, sign test p 0.51; record 18 gained, 11 lost, p
  0.27; a test of little power).
- No grid ran; the candidate never entered the library.

**The rule, fixed before the run** (rounds 6-8's, round 12's and photometric round 6's,
:func:`research.recipe_round.verdict`): the candidate is adopted when its leave-one-out
averaged over the two protocols beats the baseline's by at least 1 point and, on each
protocol alone, is not below the baseline's by more than the baseline's sample std over
seeds. Adopted, it is measured with a grid: seeds 4-5 of the same cells added by the same
harness (query accuracy over seeds 1-5, both protocols), kept unless that grid puts it below
the baseline by more than the baseline's sample std over seeds on either protocol
(:func:`fsad.report.guarded_grid`). Kept, it enters the library as an engine setting (the
fitted model then stores each engine's basis); else its code stays here. Usage::

    python -m research.light_subspace_round --suite "$OUT/all" --seeds 1 2 3 \\
        --out results/explore/light_subspace.csv
    python -m research.light_subspace_round --report --out results/explore/light_subspace.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch

from fsad.data import CategoryData, Sample, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.light import light_key, lit_views
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import Recipe, recipe_engines
from research import recipe_round

# round 6's settings, which round 7 reuses: how many normal images, and the share of the
# light differences' energy (here their second moment's trace) the removed directions hold
from research.light_projection_round import ENERGY, NORMALS, normal_picks

#: the round's baseline: ``fsad fit``'s default when the round was written (pinned by name)
BASELINE = "hires_lite0_poe_proto_rot4_fixed"
CANDIDATE = "light_subspace"
#: bump when the bases are computed differently: cached ones then miss
SUBSPACE_VERSION = 1


@dataclass(frozen=True)
class SubspaceConfig(EngineConfig):
    """An engine's settings whose patch features lose light's directions (``energy``: the
    share of the differences' second moment they hold). Its bank key names the projection,
    so every cache entry keyed by it (banks, residuals, and through
    :func:`fsad.blocks.engine_key` the block tables and the turned support's rows) stays
    apart from the plain engine's; the features cache (before the projection) is shared.
    Caches keyed by the feature settings alone (the synthetic-defect pool, a fitted
    :class:`fsad.inspector.Inspector`'s extractor) are not covered: the round uses neither."""

    energy: float = ENERGY
    #: the projection's name: its cache namespace and its entry in the bank key
    KIND: ClassVar[str] = "light_subspace"

    def __post_init__(self) -> None:
        if not 0.0 < self.energy < 1.0:
            raise ConfigError(f"energy must lie in (0, 1), got {self.energy}")
        if self.relit_bank:
            raise ConfigError(f"a {self.KIND} engine does not take a relit bank")

    def subspace_key(self) -> dict[str, Any]:
        """What the basis is learned from and how much of it is removed."""
        settings = {"energy": self.energy, "normals": NORMALS, "light": light_key()}
        return {**settings, "v": SUBSPACE_VERSION}

    def bank_key(self) -> dict[str, Any]:
        """The plain engine's bank key and the projection's settings."""
        return {**EngineConfig.bank_key(self), self.KIND: self.subspace_key()}


def subspace_config(
    config: EngineConfig, energy: float = ENERGY, kind: type[SubspaceConfig] = SubspaceConfig
) -> SubspaceConfig:
    """``config``'s engine settings as a ``kind`` of share ``energy`` (``config`` itself when
    it is one)."""
    if type(config) is kind:
        return config
    plain = {f.name: getattr(config, f.name) for f in fields(EngineConfig)}
    return kind(**plain, energy=energy)


def second_moment(diffs: torch.Tensor) -> torch.Tensor:
    """``sum_p d_p d_p^T`` over the patches ``p`` of differences ``(N, D, h, w)``, ``(D, D)``
    float64."""
    flat = diffs.permute(0, 2, 3, 1).reshape(-1, diffs.shape[1]).double()
    return flat.T @ flat


def leading_basis(moment: torch.Tensor, energy: float) -> torch.Tensor:
    """The eigenvectors of a second-moment matrix ``(D, D)`` that hold ``energy`` of its
    trace, largest first, ``(D, k)`` float32 with orthonormal columns."""
    values, vectors = torch.linalg.eigh(moment)  # ascending
    values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    if float(values.sum()) <= 0:
        raise ConfigError(f"no differences to learn from (total energy {values.sum()})")
    share = torch.cumsum(values, 0) / values.sum()
    k = int(torch.searchsorted(share, torch.tensor(energy, dtype=share.dtype))) + 1
    return vectors[:, :k].float()


def project(features: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Patch features ``(N, D, h, w)`` without the basis's directions ``(D, k)``."""
    along = torch.einsum("ndhw,dk->nkhw", features, basis)
    return features - torch.einsum("nkhw,dk->ndhw", along, basis)


class SubspaceEngine(ResidualEngine):
    """A residual engine whose patch features f lose light's directions before anything
    else sees them: the bank, the residuals, the maps and every block (its siblings, the
    recipe's further engines, are light-subspace engines too, each with its own basis).
    A subclass learns other directions: its :data:`CONFIG` and :meth:`moment`."""

    #: the settings class this engine's (and its siblings') config is turned into
    CONFIG: ClassVar[type[SubspaceConfig]] = SubspaceConfig

    def __init__(self, category: CategoryData, config: EngineConfig, *args, **kwargs) -> None:
        super().__init__(category, subspace_config(config, kind=self.CONFIG), *args, **kwargs)
        self._basis: torch.Tensor | None = None

    def sibling(self, config: EngineConfig) -> ResidualEngine:
        """:meth:`ResidualEngine.sibling` with ``config`` as this engine's kind of settings,
        of this engine's share."""
        return super().sibling(subspace_config(config, self.config.energy, self.CONFIG))

    def basis(self) -> torch.Tensor:
        """The removed directions ``(D, k)`` of this engine's normal images (cached)."""
        if self._basis is None:
            train = self._groups["train"]
            key = {**self._features_key(train), **self.config.subspace_key()}

            def compute() -> dict[str, torch.Tensor]:
                return {"basis": leading_basis(self.moment(train), self.config.energy)}

            self._basis = self.cache.load_or_compute(self.config.KIND, key, compute)["basis"]
        return self._basis

    def moment(self, train: list[Sample]) -> torch.Tensor:
        """The second moment ``(D, D)`` of light's patch differences (each lit view minus
        the image as shot) over :data:`NORMALS` of the normal images ``train``."""
        moment = None
        for i in normal_picks(len(train), NORMALS):
            image = read_image(train[i].path)
            f = self.extractor.embed_images([image, *lit_views(image)])  # (4, D, h, w)
            m = second_moment(f[1:] - f[:1])
            moment = m if moment is None else moment + m
        return moment

    def _group_features(self, name: str, group: list[Sample]) -> torch.Tensor:
        """Projected patch features ``(N, D, h, w)`` of a group (the raw ones from the
        features cache, dropped from memory once projected)."""
        memo_key = f"projected:{name}"
        if memo_key not in self._memo:
            raw = super()._group_features(name, group)
            self._memo[memo_key] = {"f": project(raw, self.basis())}
            self._memo.pop(f"features:{name}", None)
        return self._memo[memo_key]["f"]

    def features_of_images(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Projected patch features of in-memory images ``(N, D, h, w)``."""
        return project(super().features_of_images(images), self.basis())


def score_cell(
    engine: ResidualEngine, kind: type[SubspaceEngine] = SubspaceEngine, candidate: str = CANDIDATE
) -> list[dict]:
    """The baseline's and the candidate's rows of one cell (``engine``: the protocol's
    engine of the cell; the candidate runs :data:`BASELINE` on a ``kind`` of it), each with
    the number of directions its engines remove."""
    sub = kind(engine.category, engine.config, engine.seed, engine.cache, engine.device)
    rows = []
    for variant, first in (("baseline", engine), (candidate, sub)):
        (row,) = recipe_round.score_variants(first, {variant: BASELINE})
        removed = "" if first is engine else removed_directions(sub, RECIPES[BASELINE])
        rows.append(row | {"removed_directions": removed})
    return rows


def removed_directions(engine: SubspaceEngine, recipe: Recipe) -> str:
    """How many directions each of the recipe's engines removes, e.g. ``"224 px: 12; 448 px:
    9"`` (:func:`fsad.recipe.recipe_engines`' order, by crop)."""
    engines = recipe_engines(engine, recipe)
    return "; ".join(f"{e.config.features.crop} px: {e.basis().shape[1]}" for e in engines)


#: the rule's verdict and table (:func:`research.recipe_round.verdict`, both protocols)
verdict = recipe_round.verdict
#: the round's grid, report and command line
ROUND = recipe_round.CandidateRound(__doc__, CANDIDATE, BASELINE, score_cell)
grid, report, main = ROUND.grid, ROUND.report, ROUND.main

if __name__ == "__main__":
    main()
