"""How far light moves what the default sees: each descriptor group's row of an image under
light against the same image untransformed (issue #21; a study, label-free, chooses nothing).

Robustness round 12 (:mod:`research.bank_coverage_round`) found that giving back the first
engine's localisation under light raises neither signal, so light's cost must lie in the
descriptor rows themselves. The ``illumination`` suite changes pixel values only and keeps
every file's name, so each defect image has a lit and an untransformed row in every group of
``fsad fit``'s default (``hires_lite0_poe_proto_rot4_fixed``: anomaly blocks of the 224 px
engine, anomaly blocks of the 448 px engine, zoom views through Lite0), bank seed 1.

Per group and defect image ``i`` (all of a category's, no type read):

- ``moved``: ``||x_lit(i) - x(i)||``, how far light moves the image's row;
- ``nearest``: ``min_j ||x(j) - x(i)||`` over the category's other untransformed defect
  images, the distance to the nearest other image's row;
- ``ratio = moved / nearest``: above 1, light moves the image further than the nearest other
  defect image lies (a scale-free measure of the change; it does not say the image is
  misclassified). The zoom views are cut around the lit map's own peak, so their ``moved``
  mixes a moved window with changed pixels; ``--control`` separates the two.

What it found (``results/explore/light_descriptors.csv``, 1648 rows at 4a00981 with
``--control --projected --subspace``; its other 1030 rows equal a run at 9508e40 with
``--control --projected``, whose first 824 equal a run at 2370b2e with ``--control``, whose
first 618, the default's three groups, equal a first run at 6c02e4c; one seed, one draw of
light per image): by median ratio the zoom views move most in all three
categories (1.35-1.88 against 0.75-1.19 for the anomaly blocks); by the share above 1 they
lead on bottle (76 %) and screw (84 %), the 448 px anomaly blocks on metal_nut (86 % against
77 %). On bottle,
whose peaks light does not move (:mod:`research.light_localisation`), the zoom rows still
move beyond the nearest for 76 % of the images. The control keeps most of the zoom views'
change (median ratio 1.16-1.65, 67-78 % above 1): it is mostly the pixels, not the moved
window. Its untransformed rows equal the default's zoom rows up to the group's weight (a
constant factor 2) in every image. Through photometric round 6's projection the zoom rows'
median ratio falls by about a quarter (1.35 -> 0.99, 1.88 -> 1.36 and 1.35 -> 1.01 on
bottle, screw and metal_nut; 44 %, 76 % and 53 % above 1), though that round's signals did
not follow. On photometric round 7's light-subspace engines the anomaly blocks move less on
screw (share above 1: 50 -> 22 % at 224 px, 54 -> 36 % at 448 px), a little less on
metal_nut's 448 px blocks (86 -> 77 %) and more on bottle (13 -> 46 %, 25 -> 60 %); the
zoom views, whose pixels that round does not project, about as before (73-84 %).

Run (the suites from ``fsad data suite --suites none illumination``)::

    python -m research.light_descriptors --suites $OUT --control --projected --subspace \\
        --out results/explore/light_descriptors.csv

``--control`` adds the zoom views with the lit windows cut at the untransformed map's peak
(group ``"ZoomConfig@0 windows at the untransformed peak"``), so that only the pixels differ:
what is left of the zoom views' change is light's, not the moved window's.

``--projected`` (added after photometric round 6, :mod:`research.light_projection_round`,
had run and lost) adds the zoom views through that round's projection (group
:data:`PROJECTED_GROUP`): the default's zoom rows of both suites with the light directions
learned from the ``illumination`` suite's normal images projected out, one set of bases for
both, so the measure asks whether the projection made the rows of defect images stay put
under the suite's light (which its learned lights only resemble).

``--subspace`` (added after photometric round 7, :mod:`research.light_subspace_round`, had
run and lost by its guard) adds the default's three groups computed on that round's
light-subspace engines (groups named ``"<group> light subspace"``): each suite's engines
with light's directions projected out of their patch features, each learning its basis from
its own suite's normal images, as the candidate does for a product.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fsad.data import GOOD, Sample, load_category, read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import sample_rows
from fsad.report import light_rows_summary
from fsad.utils import atomic_write_csv
from fsad.zoom import ZoomConfig, peak_centres, zoom_encoder, zoom_images
from research.light_projection_round import ProjectedZoom, project
from research.light_subspace_round import SubspaceEngine
from research.records import study_parser

CATEGORIES = ("bottle", "screw", "metal_nut")
#: the study's recipe: ``fsad fit``'s default when it ran (pinned by name)
METHOD = "hires_lite0_poe_proto_rot4_fixed"
#: the zoom views with the lit windows cut at the untransformed peak (``--control``)
CONTROL_GROUP = "ZoomConfig@0 windows at the untransformed peak"
#: suffix of the groups computed on photometric round 7's engines (``--subspace``)
SUBSPACE_SUFFIX = " light subspace"
#: the zoom views through photometric round 6's projection (``--projected``)
PROJECTED_GROUP = "ZoomConfig@0 projected (photometric round 6)"


def suite_engine(suites: Path, suite: str, name: str) -> tuple[ResidualEngine, list[Sample]]:
    """The first engine of ``name`` in the ``suite`` folder (whole image, bank seed 1) and
    its defect images, sorted by (type, file stem)."""
    category = load_category(suites / suite / name, "folder")
    defects = sorted(
        (s for s in category.test if s.label != GOOD), key=lambda s: (s.label, s.path.stem)
    )
    config = EngineConfig(features=FeatureConfig(framing="letterbox"))
    return ResidualEngine(category, config, seed=1), defects


def group_rows(
    suites: Path, suite: str, name: str, subspace: bool = False
) -> tuple[list[str], list[np.ndarray]]:
    """File keys (``type/stem``, sorted) and every group's rows ``(N, D_g)`` of the defect
    images of ``name`` in the ``suite`` folder (whole image, bank seed 1); ``subspace``: on
    photometric round 7's light-subspace engines instead."""
    engine, defects = suite_engine(suites, suite, name)
    if subspace:
        engine = SubspaceEngine(engine.category, engine.config, engine.seed, engine.cache)
    keys = [f"{s.label}/{s.path.stem}" for s in defects]
    return keys, sample_rows(engine, RECIPES[METHOD], defects)


def fixed_window_rows(suites: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The control of the zoom views: their rows ``(N, D)`` of the untransformed defect
    images, and of the lit ones with the windows cut at the *untransformed* map's peak (so
    only the pixels differ), both unweighted and in :func:`group_rows`'s order."""
    zoom = next(g.block for g in RECIPES[METHOD].groups if isinstance(g.block, ZoomConfig))
    engine, defects = suite_engine(suites, "none", name)
    _, lit_defects = suite_engine(suites, "illumination", name)
    plain_images = [read_image(s.path) for s in defects]
    lit_images = [read_image(s.path) for s in lit_defects]
    centres = peak_centres(engine.anomaly_maps(defects), plain_images, engine.config.features)
    encoder = zoom_encoder(zoom)
    plain = zoom_images(encoder, plain_images, centres, zoom).numpy()
    return plain, zoom_images(encoder, lit_images, centres, zoom).numpy()


def projected_rows(
    suites: Path, name: str, plain: np.ndarray, lit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The zoom group's rows ``(N, D)`` of :func:`group_rows` (``plain`` and ``lit``, with the
    group's weight) through photometric round 6's projection, with the bases learned from
    the ``illumination`` suite's normal images (bank seed 1's engine), unweighted."""
    (group,) = [g for g in RECIPES[METHOD].groups if isinstance(g.block, ZoomConfig)]
    engine, _ = suite_engine(suites, "illumination", name)
    bases = ProjectedZoom(group.block).bases(engine)
    return tuple(project(torch.as_tensor(x / group.weight), bases).numpy() for x in (plain, lit))


def moved_and_nearest(plain: np.ndarray, lit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: how far ``lit`` ``(N, D)`` lies from ``plain`` ``(N, D)`` (row by row), and
    the distance from each plain row to the nearest other plain row.

    Returns:
        ``(moved (N,), nearest (N,))``.
    """
    moved = np.linalg.norm(lit - plain, axis=1)
    gaps = np.linalg.norm(plain[:, None, :] - plain[None, :, :], axis=2)
    np.fill_diagonal(gaps, np.inf)
    return moved, gaps.min(axis=1)


def category_rows(
    suites: Path,
    name: str,
    with_control: bool = False,
    with_projected: bool = False,
    with_subspace: bool = False,
) -> list[dict[str, Any]]:
    """One row per (group, defect image) of ``name``; ``with_control`` adds the zoom views'
    control (:func:`fixed_window_rows`) as the group :data:`CONTROL_GROUP`,
    ``with_projected`` the projected zoom views (:func:`projected_rows`) as
    :data:`PROJECTED_GROUP`, ``with_subspace`` every group on the light-subspace engines
    (:data:`SUBSPACE_SUFFIX`)."""
    keys, plain = group_rows(suites, "none", name)
    lit_keys, lit = group_rows(suites, "illumination", name)
    if keys != lit_keys:
        raise SystemExit(f"{name}: the none and illumination suites hold different files")
    groups = [g.name for g in RECIPES[METHOD].groups]
    if with_control:
        groups.append(CONTROL_GROUP)
        plain, lit = [*plain, None], [*lit, None]
        plain[-1], lit[-1] = fixed_window_rows(suites, name)
    if with_projected:
        z = next(i for i, g in enumerate(RECIPES[METHOD].groups) if isinstance(g.block, ZoomConfig))
        groups.append(PROJECTED_GROUP)
        plain, lit = [*plain, None], [*lit, None]
        plain[-1], lit[-1] = projected_rows(suites, name, plain[z], lit[z])
    if with_subspace:
        groups += [g.name + SUBSPACE_SUFFIX for g in RECIPES[METHOD].groups]
        plain = [*plain, *group_rows(suites, "none", name, subspace=True)[1]]
        lit = [*lit, *group_rows(suites, "illumination", name, subspace=True)[1]]
    rows = []
    for group, plain_rows, lit_rows in zip(groups, plain, lit, strict=True):
        moved, nearest = moved_and_nearest(plain_rows, lit_rows)
        rows += [
            {"category": name, "group": group, "file": k, "moved": float(m), "nearest": float(n)}
            for k, m, n in zip(keys, moved, nearest, strict=True)
        ]
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Write the study's rows (``--out``) and print its summary."""
    control = "add the zoom views with the lit windows cut at the untransformed peak"
    ap = study_parser(__doc__, CATEGORIES, control + " (only the pixels differ)")
    ap.add_argument(
        "--projected", action="store_true", help="add the zoom views through round 6's projection"
    )
    ap.add_argument("--subspace", action="store_true", help="add every group on round 7's engines")
    args = ap.parse_args(argv)
    commit = git_commit(Path(__file__).resolve().parents[1])
    rows = [
        r for name in args.categories
        for r in category_rows(
            Path(args.suites), name, args.control, args.projected, args.subspace
        )
    ]  # fmt: skip
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    frame = pd.DataFrame(rows).assign(method=METHOD, git_commit=commit, timestamp=stamp)
    atomic_write_csv(Path(args.out), frame)
    print(light_rows_summary(frame).to_string())


if __name__ == "__main__":
    main()
