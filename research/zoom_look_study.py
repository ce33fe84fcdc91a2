"""Where the zoom views look or what they see: which part of the oracle's gain in the zoom
views does the light's estimate miss? (a diagnostic study: it reads every defect image's
type and chooses nothing)

The rows study (:mod:`research.light_rows_study`) found that the rotated zoom views gain
nothing from the library's light estimate in any category of the suite `all`, while the
oracle's exactly undone light lifts them up to 17.5 points. A zoom view depends on the
light twice: through *where it looks* (its windows centre on the peak of the 224 px engine's
anomaly map ||r||, Eq. 2, which the light moves) and through *what it sees* (the window's
pixels, re-encoded through the ImageNet backbone). This study separates the two. For every
defect image of a category and every pair of versions (``shot``, ``library``, ``oracle``, as
:func:`research.light_rows_study.version_of` makes them), it computes the default's rotated
zoom block (:data:`fsad.methods.anomaly_guided.ROT_ZOOM`) with the windows centred on the
peak of one version's map (``centres``) and cut from another version's pixels (``pixels``);
the diagonal is each version's own zoom block, which the study checks against the rows the
library computes (:func:`fsad.recipe.sample_rows`).

Each pair is scored by the default's head (coreset seed 1, no turned copies):

- ``zoom``: the zoom block alone;
- ``all``: the anomaly blocks of the ``pixels`` version with the pair's zoom block, so that
  only where the zoom views look differs from the ``pixels`` version's own rows;

by a leave-one-out over all the defect images of a category (``--out``, one row per image)
and over drawn 5-shot splits with the support as shot (``--splits-out``, draw 0 the grid's
split; :func:`research.light_rows_study.support_masks`). ``--peaks-out`` writes each image's
peak in every version (pixels of the image as written), to read how far the light moves it.

**What it found** (``results/explore/zoom_look*.csv``, at 12e750b from a clean clone, about
25 minutes on one core with the rows cached by the rows study; chapter 10). It ran on the
bytes of the suite that ``results/suite/all`` holds, not those of ``results/poses/suite_all``
(the suite's bytes depend on the machine that writes them; each row records its category's
data hash). Over the 50 drawn splits, support as shot, from the library's own rows: the
oracle's peaks gain the zoom block alone +4.5 points averaged over the four categories
(transistor +11.4, screw +5.7), the oracle's pixels at the library's peaks +2.9, both +6.9;
with all three groups the oracle's peaks add +1.5, its pixels +5.8 (screw +11.3, transistor
+7.9), both +7.0 (by the leave-one-out +2.7 and +3.5). On transistor and metal_nut the
library's peaks score the zoom block a little lower than the peaks as shot (36.4 against
40.3 %, 51.2 against 54.8 %; small against the spread over splits, 10.9 and 6.3 points).

Usage (the suite and the oracle's copies written as their modules say)::

    python -m research.zoom_look_study --suite "$SUITE/all" \\
        --oracle "$ORACLE/all_light_undone" --out results/explore/zoom_look.csv \\
        --splits-out results/explore/zoom_look_splits.csv \\
        --peaks-out results/explore/zoom_look_peaks.csv
    python -m research.zoom_look_study --summary results/explore/zoom_look.csv \\
        --splits-summary results/explore/zoom_look_splits.csv \\
        --peaks-summary results/explore/zoom_look_peaks.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fsad.blocks import Inputs
from fsad.data import load_category, read_image
from fsad.evaluate.plan import data_hash
from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES, ROT_ZOOM
from fsad.recipe import sample_rows
from fsad.report import zoom_look_changes, zoom_look_peaks, zoom_look_summary
from fsad.utils import atomic_write_csv
from fsad.zoom import peak_centres, zoom_encoder, zoom_images
from research.light_feature_study import default_engine
from research.light_rows_study import (
    SHOTS,
    VERSIONS,
    defect_samples,
    original_names,
    scored,
    split_accuracy,
    stamp,
    support_masks,
    version_of,
)
from research.records import oracle_study_parser
from research.robust import CATEGORIES

#: the index of the rotated zoom block among the default's groups
ZOOM_GROUP = 2
if RECIPES[DEFAULT_METHOD].groups[ZOOM_GROUP].block != ROT_ZOOM:
    raise RuntimeError(f"{DEFAULT_METHOD}'s group {ZOOM_GROUP} is no longer its rotated zoom views")


def version_views(suite: Path, oracle: Path, name: str, version: str) -> dict[str, object]:
    """The defect images of ``suite/name`` as ``version`` sees them (each type's in natural
    order, as the rows study orders them): ``labels`` ``(N,)``, ``types``, ``images``
    ``[(H, W, 3) uint8]``, ``centres`` (each image's peak ``(y, x)`` on the default's 224 px
    engine, coreset seed 1) and ``rows`` (the default's rows, per group ``(N, D_g)``)."""
    seen = version_of(load_category(suite / name, "folder"), version, oracle)
    defects = defect_samples(seen)
    types = sorted({s.label for s in defects})
    engine = default_engine(seen, "first")
    inputs = Inputs(engine, samples=defects)
    images = [read_image(s.path) for s in defects]
    centres = peak_centres(inputs.anomaly_maps(), images, engine.config.features)
    return {"labels": np.array([types.index(s.label) for s in defects]), "types": types,
            "images": images, "centres": centres,
            "rows": sample_rows(engine, RECIPES[DEFAULT_METHOD], defects)}  # fmt: skip


def swapped_zoom(views: dict[str, dict], centres: str, pixels: str) -> np.ndarray:
    """``(N, D_zoom)`` the rotated zoom block of the ``pixels`` version's images with the
    windows centred on the ``centres`` version's peaks, weighted as the default weighs its
    zoom group."""
    encoder = zoom_encoder(ROT_ZOOM)
    blocks = zoom_images(encoder, views[pixels]["images"], views[centres]["centres"], ROT_ZOOM)
    return RECIPES[DEFAULT_METHOD].groups[ZOOM_GROUP].weight * blocks.numpy()


def pair_rows(views: dict[str, dict]) -> dict[tuple[str, str], list[np.ndarray]]:
    """Per ``(centres, pixels)`` pair, the default's rows with its zoom block swapped
    (:func:`swapped_zoom`).

    Raises:
        SystemExit: a version's own zoom block differs from the library's rows.
    """
    out = {}
    for c in VERSIONS:
        for p in VERSIONS:
            zoom = swapped_zoom(views, c, p)
            own = views[p]["rows"]
            if c == p and not np.allclose(zoom, own[ZOOM_GROUP], atol=1e-4):
                raise SystemExit(f"{p}: the zoom block differs from the library's rows")
            out[c, p] = [*own[:ZOOM_GROUP], zoom, *own[ZOOM_GROUP + 1 :]]
    return out


def heads(rows: list[np.ndarray]) -> dict[str, tuple[object, list[np.ndarray]]]:
    """The two heads a pair is scored by: ``all`` (the default on every group) and ``zoom``
    (the default's head on the zoom block alone)."""
    recipe = RECIPES[DEFAULT_METHOD]
    zoom = replace(recipe, groups=(recipe.groups[ZOOM_GROUP],))
    return {"all": (recipe, rows), "zoom": (zoom, [rows[ZOOM_GROUP]])}


def category_tables(suite: Path, oracle: Path, name: str, n_draws: int
                    ) -> tuple[list[dict], list[dict], list[dict]]:  # fmt: skip
    """One category's per-image leave-one-out rows, per-split rows and peak rows."""
    torch.set_grad_enabled(False)
    views = {v: version_views(suite, oracle, name, v) for v in VERSIONS}
    labels, types = views["shot"]["labels"], views["shot"]["types"]
    names = original_names(suite, oracle, name)
    if any(names[v] != names["shot"] for v in VERSIONS):
        raise SystemExit(f"{name}: the versions' defect images are not in one order")
    masks = support_masks(labels, SHOTS, n_draws)
    loo, splits = [], []
    for (c, p), rows in pair_rows(views).items():
        for group, (recipe, x) in heads(rows).items():
            given = scored(recipe, x, labels)
            loo += [{"category": name, "centres": c, "pixels": p, "group": group,
                     "image": image, "label": types[t], "given": types[g]}
                    for image, t, g in zip(names["shot"], labels, given, strict=True)]  # fmt: skip
            splits += [{"category": name, "centres": c, "pixels": p, "group": group,
                        "draw": d, "shots": SHOTS, "n_query": int((~m).sum()),
                        "accuracy": split_accuracy(x, labels, m, recipe=recipe)}
                       for d, m in enumerate(masks)]  # fmt: skip
        print(f"{name} centres {c}, pixels {p} scored", flush=True)
    peaks = [{"category": name, "image": image, "label": types[t], "version": v,
              "y": views[v]["centres"][i][0], "x": views[v]["centres"][i][1],
              "short_side": min(views[v]["images"][i].shape[:2])}
             for v in VERSIONS
             for i, (image, t) in enumerate(zip(names["shot"], labels, strict=True))]  # fmt: skip
    return loo, splits, peaks


def write_category(suite: Path, oracle: Path, name: str, n_draws: int,
                   outs: tuple[Path, Path, Path]) -> None:  # fmt: skip
    """Append one category's three tables (:func:`category_tables`) to the three CSVs, each
    row stamped with the commit and the data hash of ``suite/name`` (the suite's bytes depend
    on the machine that wrote them, ``results/suite/README.md``). A category already in all
    three CSVs on the same images is skipped, so a rerun resumes; one that a CSV holds on other
    images is refused, so byte sets never mix; otherwise its rows are replaced.

    Raises:
        SystemExit: a CSV holds ``name`` on other images (another data hash).
    """
    done = [pd.read_csv(o, dtype={"data_hash": str}) if o.exists() else pd.DataFrame()
            for o in outs]  # fmt: skip
    digest = data_hash(load_category(suite / name, "folder"))
    held = [set(d.loc[d["category"] == name, "data_hash"]) if len(d) else set() for d in done]
    for out, hashes in zip(outs, held, strict=True):
        if hashes - {digest}:
            raise SystemExit(f"{out}: holds {name} rows on other images ({sorted(hashes)}, "
                             f"these are {digest}); write to another file")  # fmt: skip
    if all(hashes == {digest} for hashes in held):
        return
    stamped = {**stamp(), "data_hash": digest}
    for out, old, rows in zip(outs, done, category_tables(suite, oracle, name, n_draws),
                              strict=True):  # fmt: skip
        old = old[old["category"] != name] if len(old) else old
        atomic_write_csv(out, pd.concat([old, pd.DataFrame(rows).assign(**stamped)]))


def main(argv: Sequence[str] | None = None) -> None:
    ap = oracle_study_parser(__doc__, CATEGORIES, "the per-image leave-one-out CSV to write")
    ap.add_argument("--draws", type=int, default=50, help="drawn splits per category")
    ap.add_argument("--splits-out", type=Path, help="the per-split CSV to write")
    ap.add_argument("--peaks-out", type=Path, help="the per-image peaks CSV to write")
    ap.add_argument("--splits-summary", type=Path, help="print the summary of this CSV")
    ap.add_argument("--peaks-summary", type=Path, help="print the summary of this CSV")
    args = ap.parse_args(argv)
    outs = (args.out, args.splits_out, args.peaks_out)
    if any(outs):
        if not (args.suite and args.oracle and all(outs)):
            raise SystemExit("a run needs --suite, --oracle, --out, --splits-out and --peaks-out")
        for name in args.categories:
            write_category(args.suite, args.oracle, name, args.draws, outs)
    loo, splits = args.summary or args.out, args.splits_summary or args.splits_out
    if loo:
        print(zoom_look_summary(pd.read_csv(loo), "leave-one-out").to_string())
    if splits:
        table = pd.read_csv(splits)
        print(zoom_look_summary(table, "splits").to_string())
        print(zoom_look_changes(table).to_string())
    if args.peaks_summary or args.peaks_out:
        print(zoom_look_peaks(pd.read_csv(args.peaks_summary or args.peaks_out)).to_string())


if __name__ == "__main__":
    main()
