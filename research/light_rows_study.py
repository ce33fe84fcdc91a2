"""Does undoing the light keep the defect types apart in what the head sees? (a diagnostic
study: it reads every defect image's type and chooses nothing)

Round 17's default undoes each image's estimated light where the support's light test finds
the light varying, and on the suite `all` that cost transistor 13 points while the oracle's
exactly undone light (:mod:`research.light_oracle`) gains it 13. The feature study
(:mod:`research.light_feature_study`) measures how much light the estimate leaves in the
features; this one measures what the classifier is left with. For every defect image of a
category of the suite `all`, in three versions (``shot``: as written; ``library``: the
library's estimate undone, :func:`fsad.light_test.undone_category`; ``oracle``: the drawn
light divided out), it computes the default's rows (:func:`fsad.recipe.sample_rows`: the
224 px engine's anomaly blocks, the 448 px engine's, the rotated zoom views; each version's
engines on its own normals, coreset seed 1, no turned copies) and scores each image by the
default's head fitted on every other defect image of its category
(:func:`fsad.recipe.leave_one_out`), with all groups and with each group alone.

A stand-in for the grid's queries, not a grid: one coreset seed, every defect image at once
(10 per type on screw and transistor, 20-25 on bottle and metal_nut), and the head fitted on
all the others of each type rather than 5. ``--splits-out``
scores the same rows over drawn 5-shot splits (:func:`support_masks`; draw 0 is the grid's
split) with the support as shot and with its turned copies (:func:`split_accuracy`).

**What it found** (``results/explore/light_rows.csv`` and ``light_splits.csv``, both at
a350aa0 in 3 minutes from the rows cached by the first runs, whose values they equal: the
leave-one-out at 7d6fafb, about an hour on one core with cold caches, and the splits at
82d4b20; chapter 10). Leave-one-out with all groups, as shot -> undone -> oracle: bottle
85.7 -> 82.5 -> 82.5 %, metal_nut 60.2 -> 73.1 -> 73.1, screw 54.0 -> 60.0 -> 68.0,
transistor 42.5 -> 50.0 -> 67.5. The rotated zoom views gain nothing undone (-3.2 to 0.0)
and 1.6-17.5 points under the oracle. Over drawn splits with the support turned: metal_nut
+8.3 undone (oracle +14.4), screw +8.6 (+18.0), transistor +0.4 (+12.2; better in 21 splits,
worse in 20, the change's std 11.7), bottle +1.0 (+1.0). On the grid's split with the
support turned, as shot equals the seed-1 cells of
``hires_lite0_poe_proto_rot4_gated_fixed`` in ``results/poses/suite_all`` in all four
categories, and undone equals round 17's default's in the three where it undid the light
(transistor 60.0 -> 45.0, oracle 80.0). ``--gated-out`` (``light_gated_splits.csv`` at
e88771f, about 7 minutes from cached rows): the default as the grid runs it on each split,
its own light test and pose test deciding; its light was undone in every drawn split of
screw and transistor, 42 of metal_nut's 50 and none of bottle's, its support turned in all.
Over the drawn splits: bottle 71.4 +- 6.6 %, metal_nut 60.6 +- 5.5, screw 61.8 +- 8.9,
transistor 53.7 +- 9.9 (mean 61.9; the grid's split 60.0, equal to the grid's seed-1 cells).

Usage (the suite and the oracle's copies written as their modules say)::

    python -m research.light_rows_study --suite "$SUITE/all" \\
        --oracle "$ORACLE/all_light_undone" --out results/explore/light_rows.csv
    python -m research.light_rows_study --suite "$SUITE/all" \\
        --oracle "$ORACLE/all_light_undone" --splits-out results/explore/light_splits.csv
    python -m research.light_rows_study --suite "$SUITE/all" \\
        --oracle "$ORACLE/all_light_undone" --gated-out results/explore/light_gated_splits.csv
    python -m research.light_rows_study --summary results/explore/light_rows.csv \\
        --splits-summary results/explore/light_splits.csv \\
        --gated-summary results/explore/light_gated_splits.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.cache import DiskCache
from fsad.data import CategoryData, Sample, load_category, natural_key
from fsad.evaluate import git_commit
from fsad.evaluate.plan import data_hash
from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.light_test import light_gated_engine, undone_category
from fsad.methods.anomaly_guided import RECIPES
from fsad.poses import with_poses
from fsad.recipe import (
    Recipe,
    leave_one_out,
    posed_sample_rows,
    recipe_proba,
    sample_rows,
    support_pose_test,
)
from fsad.report import gated_split_summary, rows_by_version, split_draws_summary
from fsad.utils import atomic_write_csv
from research.light_feature_study import default_engine
from research.records import oracle_study_parser
from research.robust import CATEGORIES

#: the versions of every image
VERSIONS = ("shot", "library", "oracle")
#: support images per type in each drawn split (the grid's shots)
SHOTS = 5
#: the default's support poses (four: as shot and turned by 90, 180, 270 degrees)
POSES = RECIPES[DEFAULT_METHOD].support_poses
#: the default's groups by name, in its recipe's order
GROUP_NAMES = ("anomaly 224 px", "anomaly 448 px", "rotated zoom")


def version_of(category: CategoryData, version: str, oracle: Path) -> CategoryData:
    """The category as ``version`` sees it (``oracle``: the oracle's copies of the same
    files, in the same order)."""
    if version == "shot":
        return category
    if version == "library":
        return undone_category(category, DiskCache())
    copy = load_category(oracle / category.name, "folder")
    names = [s.path.name for s in [*category.train, *category.test]]
    if [s.path.name for s in [*copy.train, *copy.test]] != names:
        raise SystemExit(f"{oracle / category.name}: not the oracle's copies of {category.root}")
    return copy


def defect_samples(category: CategoryData) -> list[Sample]:
    """The category's defect images, each type's in natural order, the types in name order
    (the order every table of the study uses)."""
    return sorted((s for s in category.test if s.label != "good"),
                  key=lambda s: (s.label, natural_key(s.path)))  # fmt: skip


def scored(recipe: Recipe, rows: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """``(N,)`` each image's class under the recipe's head fitted on every other image."""
    index, scores = leave_one_out(recipe, rows, labels, int(labels.max()) + 1)
    if len(index) != len(labels):
        raise SystemExit("every defect type needs two images for the leave-one-out")
    return scores.argmax(axis=1)


def version_rows(suite: Path, oracle: Path, name: str, version: str, poses: int = 1
                 ) -> tuple[list, np.ndarray, list[str], list[np.ndarray]]:  # fmt: skip
    """The defect images of ``suite/name`` as ``version`` sees them (each type's in natural
    order), their labels ``(N,)``, the types, and the default's rows (per group ``(N, D_g)``,
    cached on disk with the engines); with ``poses`` P > 1, each group's rows are followed by
    those of every image's ``P - 1`` turned copies, ``(P N, D_g)``: image ``i``'s copy ``j``
    at row ``N + i (P - 1) + j`` (:func:`fsad.recipe.posed_sample_rows` order)."""
    return seen_rows(version_of(load_category(suite / name, "folder"), version, oracle), poses)


def seen_rows(seen: CategoryData, poses: int = 1
              ) -> tuple[list, np.ndarray, list[str], list[np.ndarray]]:  # fmt: skip
    """:func:`version_rows` of a category as some version already sees it."""
    defects = defect_samples(seen)
    types = sorted({s.label for s in defects})
    labels = np.array([types.index(s.label) for s in defects])
    engine, recipe = default_engine(seen, "first"), RECIPES[DEFAULT_METHOD]
    rows = sample_rows(engine, recipe, defects)
    if poses > 1:
        posed = posed_sample_rows(engine, replace(recipe, support_poses=poses), defects)
        rows = [np.concatenate([r, p]) for r, p in zip(rows, posed, strict=True)]
    return defects, labels, types, rows


def original_names(suite: Path, oracle: Path, name: str) -> dict[str, list[str]]:
    """Per version, the file names (relative to ``suite/name``) of the images
    :func:`version_rows` returns, in its order: every version's images named as the suite
    names them (the library's undone files are named by position in the cache)."""
    category = load_category(suite / name, "folder")
    original = {str(s.path): str(s.path.relative_to(category.root))
                for s in [*category.train, *category.test]}  # fmt: skip
    out = {}
    for version in VERSIONS:
        seen = version_of(category, version, oracle)
        back = dict(zip([str(s.path) for s in [*seen.train, *seen.test]], original.values(),
                        strict=True))  # fmt: skip
        defects = defect_samples(seen)
        out[version] = [back[str(s.path)] for s in defects]
    return out


def category_rows(suite: Path, oracle: Path, name: str) -> list[dict]:
    """One row per defect image of ``suite/name``, version and group (``all`` or one of
    :data:`GROUP_NAMES`): its type and the type the head gave it."""
    recipe = RECIPES[DEFAULT_METHOD]
    originals = original_names(suite, oracle, name)
    out = []
    for version in VERSIONS:
        defects, labels, types, rows = version_rows(suite, oracle, name, version)
        names = originals[version]
        heads = {"all": (recipe, rows)}
        heads.update({g: (replace(recipe, groups=(recipe.groups[k],)), [rows[k]])
                      for k, g in enumerate(GROUP_NAMES)})  # fmt: skip
        for group, (head, x) in heads.items():
            given = scored(head, x, labels)
            out += [{"category": name, "version": version, "group": group,
                     "image": image, "label": s.label, "given": types[p]}
                    for s, image, p in zip(defects, names, given, strict=True)]  # fmt: skip
            if group == "all":
                print(f"{name} {version}: {np.mean(given == labels):.3f}", flush=True)
    return out


def support_masks(labels: np.ndarray, shots: int, n_draws: int) -> list[np.ndarray]:
    """``n_draws + 1`` boolean support masks ``(N,)``: first the grid's split (the first
    ``shots`` images of each type, in the given order), then ``n_draws`` drawn ones (draw
    ``d`` picks ``shots`` images of each type with ``numpy.random.default_rng(d)``).

    Raises:
        SystemExit: a type with ``shots`` images or fewer (no query left).
    """
    counts = np.bincount(labels)
    if counts.min() <= shots:
        raise SystemExit(f"{shots} shots leave no query for a type of {counts.min()} images")
    first = np.zeros(len(labels), bool)
    for c in range(len(counts)):
        first[np.flatnonzero(labels == c)[:shots]] = True
    masks = [first]
    for d in range(1, n_draws + 1):
        rng, mask = np.random.default_rng(d), np.zeros(len(labels), bool)
        for c in range(len(counts)):
            mask[rng.choice(np.flatnonzero(labels == c), shots, replace=False)] = True
        masks.append(mask)
    return masks


def split_accuracy(rows: list[np.ndarray], labels: np.ndarray, support: np.ndarray,
                   poses: int = 1, recipe: Recipe | None = None) -> float:  # fmt: skip
    """The head of ``recipe`` (default: the default's) fitted on the ``support`` rows (mask
    ``(N,)``) and its accuracy on the queries' rows as shot (the first ``N`` rows of each
    group, not in ``support``).

    With ``poses`` P > 1, ``rows`` must carry the turned copies (:func:`version_rows` with
    ``poses``) and the head is also fitted on the support's copies, as the default fits a
    support its pose test finds free; the queries' copies are never read."""
    n, idx = len(labels), np.flatnonzero(support)
    shot = [x[:n] for x in rows]
    fit = [x[idx] for x in shot]
    fit_labels = labels[idx]
    if poses > 1:
        turned = (n + idx[:, None] * (poses - 1) + np.arange(poses - 1)).ravel()
        fit, source = with_poses(fit, [x[turned] for x in rows], poses)
        fit_labels = fit_labels[source]
    proba = recipe_proba(recipe or RECIPES[DEFAULT_METHOD], fit, fit_labels,
                         [x[~support] for x in shot], int(labels.max()) + 1)  # fmt: skip
    return float(np.mean(proba.argmax(axis=1) == labels[~support]))


def split_rows(suite: Path, oracle: Path, name: str, n_draws: int) -> list[dict]:
    """One row per version, support poses (1: as shot; 4: with turned copies) and split of
    ``suite/name``'s defect images (:func:`support_masks` at :data:`SHOTS` shots; draw 0 is
    the grid's split): its query accuracy."""
    out = []
    for version in VERSIONS:
        _, labels, _, rows = version_rows(suite, oracle, name, version, poses=POSES)
        for poses in (1, POSES):
            for d, mask in enumerate(support_masks(labels, SHOTS, n_draws)):
                out.append({"category": name, "version": version, "poses": poses, "draw": d,
                            "shots": SHOTS, "n_query": int((~mask).sum()),
                            "accuracy": split_accuracy(rows, labels, mask, poses)})  # fmt: skip
        print(f"{name} {version}: splits scored", flush=True)
    return out


def gated_split_rows(suite: Path, oracle: Path, name: str, n_draws: int) -> list[dict]:
    """One row per split of ``suite/name``'s defect images (:func:`support_masks`): the
    default as the grid runs it on that split. Its light test reads the split's support
    (:func:`fsad.light_test.light_gated_engine`, the task's engine with coreset seed 1); where
    it finds the light varying the split is scored on the undone rows, otherwise as shot; the
    pose test then reads the support as that version sees it
    (:func:`fsad.recipe.support_pose_test`) and the head is fitted with the turned copies
    where it finds the product free (:func:`split_accuracy`)."""
    recipe = RECIPES[DEFAULT_METHOD]
    seen = {v: version_rows(suite, oracle, name, v, poses=POSES) for v in ("shot", "library")}
    defects, labels = seen["shot"][0], seen["shot"][1]
    task_engine = default_engine(load_category(suite / name, "folder"), "first")
    out = []
    for d, mask in enumerate(support_masks(labels, SHOTS, n_draws)):
        support = [defects[i] for i in np.flatnonzero(mask)]
        engine, view, light = light_gated_engine(task_engine, recipe, support)
        version = "shot" if engine is task_engine else "library"
        pose = support_pose_test(engine, recipe, view)
        poses = 1 if pose.holds_pose else POSES
        out.append({"category": name, "draw": d, "shots": SHOTS, "n_query": int((~mask).sum()),
                    "light_varies": light.varies, "lower_undone": light.lower_undone,
                    "holds_pose": pose.holds_pose, "version": version, "poses": poses,
                    "accuracy": split_accuracy(seen[version][3], labels, mask, poses)})  # fmt: skip
    print(f"{name}: the default scored on {len(out)} splits", flush=True)
    return out


def rows_written(path: Path) -> pd.DataFrame:
    """The rows a run already wrote to ``path`` (empty when it has none), the commit read as
    text: a hash of digits alone, such as ``0282761``, would otherwise come back a number
    and be written back without its leading zero."""
    return pd.read_csv(path, dtype={"git_commit": str}) if path.is_file() else pd.DataFrame()


def stamp() -> dict[str, str]:
    """The code's commit and the time, for every row a run writes."""
    return {"git_commit": git_commit(Path(__file__).resolve().parents[1]),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip


def suite_hash(suite: Path, name: str) -> str:
    """The data hash of ``suite/name`` (:func:`fsad.evaluate.plan.data_hash`): the suite's
    bytes depend on the machine that wrote them (``results/suite/README.md``), so the split
    rows record which images they scored."""
    return data_hash(load_category(suite / name, "folder"))


def main(argv: Sequence[str] | None = None) -> None:
    ap = oracle_study_parser(
        __doc__, CATEGORIES, "the per-image CSV to write (appended per category; a rerun resumes)"
    )
    ap.add_argument("--draws", type=int, default=50, help="drawn splits per category")
    ap.add_argument("--splits-out", type=Path, help="the per-split CSV to write")
    ap.add_argument("--splits-summary", type=Path, help="print the summary of this CSV")
    ap.add_argument("--gated-out", type=Path, help="the per-split CSV of the default, gated")
    ap.add_argument("--gated-summary", type=Path, help="print the summary of this CSV")
    args = ap.parse_args(argv)
    if args.out:
        if not (args.suite and args.oracle):
            raise SystemExit("--out needs --suite and --oracle")
        done = rows_written(args.out)
        for name in args.categories:
            if len(done) and name in set(done["category"]):
                continue
            rows = pd.DataFrame(category_rows(args.suite, args.oracle, name)).assign(**stamp())
            done = pd.concat([done, rows], ignore_index=True)
            atomic_write_csv(args.out, done)
    if args.summary or args.out:
        print(rows_by_version(pd.read_csv(args.summary or args.out)).to_string())
    for option, out, rows_of in (("--splits-out", args.splits_out, split_rows),
                                 ("--gated-out", args.gated_out, gated_split_rows)):  # fmt: skip
        if out:
            if not (args.suite and args.oracle):
                raise SystemExit(f"{option} needs --suite and --oracle")
            rows = [{**r, "data_hash": suite_hash(args.suite, c)} for c in args.categories
                    for r in rows_of(args.suite, args.oracle, c, args.draws)]  # fmt: skip
            atomic_write_csv(out, pd.DataFrame(rows).assign(**stamp()))
    if args.gated_summary or args.gated_out:
        print(gated_split_summary(pd.read_csv(args.gated_summary or args.gated_out)).to_string())
    if args.splits_summary or args.splits_out:
        splits = pd.read_csv(args.splits_summary or args.splits_out)
        for poses, table in splits.groupby("poses"):
            print(f"support poses {poses}:")
            print(split_draws_summary(table).to_string())


if __name__ == "__main__":
    main()
