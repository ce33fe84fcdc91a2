# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Generalisation: products that don't look like MVTec
#
# Every setting so far was chosen on MVTec-shaped images: square, colour, one part centred
# on a plain background, one camera and light that never turn, fixed scale, defects well
# inside the frame (the part itself may turn: screw, metal_nut). A factory's
# camera often sees otherwise. This chapter re-shoots the shared categories the way
# factories shoot and runs the same few-shot protocol on them: the *generalisation suite*
# (`fsad.suite`, written by `fsad data suite`; the images are generated, never committed).
#
# | suite | what changes (every normal and defective image alike) |
# |---|---|
# | `grey` | one channel (fsad reads it as three equal channels) |
# | `elongated` | a window of aspect ratio 0.4-2.7 that keeps the whole defect; normals get windows of the same aspect and size distributions |
# | `border` | the window placed so the defect's bounding box touches an edge of the frame |
# | `pose` | rotation (any angle) and scale (0.7-1) of the part about the centre, corners filled with the border colour |
# | `illumination` | gamma 0.6-1.6, gain 0.75-1.25, a linear brightness gradient (up to ±35 %), colour temperature (±15 % red against blue) |
# | `all` | all of them, in the order pose, window (elongated, defect at the border), illumination, grey |
# | `none` | the images copied unchanged: the like-for-like baseline |
#
# Where the defect is comes from the ground-truth mask (bottle, tire) or, elsewhere, from the
# anomaly map of the normal residual engine (224 px, whole image), which places the window
# and never reads a label. Each (suite, category) is a folder dataset (`good/` for the
# memory bank, one folder per defect type, MVTec file names kept), read by
# `fsad run --dataset folder`, which frames the whole image (letterbox) by default. Every
# suite, `none` included, is run with the same methods, shots 1, 3 and 5 and seeds 1-5; the
# support set is the first n files of each type, as in the paper's protocol, so the
# supports and queries are the same images as there, re-shot. To reproduce (`$OUT` is any
# scratch folder):
#
# ```bash
# fsad data suite --data $FSAD_DATA --out $OUT --suites none all --categories bottle transistor screw metal_nut
# fsad run --dataset folder --data $OUT/all/bottle --methods residual_proto anomaly_lr \
#     zoom2_rot_lr hires_poe hires_poe_proto --shots 1 3 5 --seeds 1 2 3 4 5 --out results/suite/all
# ```
#
# (one `fsad run` per category, into the same results folder). This chapter reads only the
# committed `results/suite/<suite>/results.csv` files.

# %% tags=["parameters"]
config: str = ""  # unused here: the results files record their own settings
data_root: str = ""  # unused here: results come from the committed results folders
results_dir: str = ""  # empty: the results folder of this repository
suites: list = ["all", "grey", "elongated", "border", "pose", "illumination"]
baseline: str = "none"  # the untransformed images, same methods, shots and seeds
methods: list = ["residual_proto", "anomaly_lr", "zoom2_rot_lr", "hires_poe", "hires_poe_proto"]
reference: str = "beyond"  # the MVTec protocol (centre crop) of the same methods

# %% tags=["hide-input"]
import json

import pandas as pd
from IPython.display import Markdown, display

from fsad.chapter import shown_path
from fsad.evaluate import read_predictions
from fsad.inspector import DEFAULT_METHOD
from fsad.report import (
    ALL_CATEGORIES,
    ALL_OTHERS,
    average_over_categories,
    bootstrap_change,
    describe_runs,
    find_results_dir,
    holm_adjusted,
    light_estimate_summary,
    light_fit_summary,
    lost_overlap,
    paired_table,
    pose_estimate_summary,
    read_folders,
    shot_curve_cells,
    shot_curve_table,
    suite_table,
    support_draws_table,
    to_markdown,
    transform_costs,
)
from fsad.viz.figures import show
from fsad.viz.results import accuracy_vs_shots

RESULTS = find_results_dir(results_dir)
print(f"results folder: {shown_path(RESULTS)}")
#: `fsad fit`'s default until robustness round 11: the method the studies of this chapter
#: that ran before then (support draws, shot curve, one transform at a time, tire) evaluated
ROUND_DEFAULT = "hires_lite0_poe_proto_rot4"
#: `fsad fit`'s default from robustness round 11 to round 16 (chapter 10)
FIXED_DEFAULT = "hires_lite0_poe_proto_rot4_fixed"
#: `fsad fit`'s default from robustness round 16 to round 17 (chapter 10)
GATED_DEFAULT = "hires_lite0_poe_proto_rot4_gated_fixed"


def read(name: str) -> pd.DataFrame | None:
    """The rows of ``results/<name>`` (latest configuration per method), notes printed."""
    rows, notes = read_folders(RESULTS, [name])
    for note in notes:
        print("note:", note)
    return rows


base_rows = read(f"suite/{baseline}")
ref_rows = read(reference)
suite_rows = {s: read(f"suite/{s}") for s in suites}
suite_rows = {s: r for s, r in suite_rows.items() if r is not None}
if base_rows is not None:
    print(f"suite/{baseline}:", describe_runs(base_rows))
for s, r in suite_rows.items():
    print(f"suite/{s}:", describe_runs(r))

# %% [markdown]
# ## What the suite looks like
#
# Bottle, one normal image (left) and the first image of each defect type, under each suite:
# the same draws as `fsad data suite` makes (before JPEG encoding). Shown when the shared
# images are at hand (`data_root` or `$FSAD_DATA`); the tables below need only the
# committed results.

# %% tags=["hide-input"]
from pathlib import Path

from matplotlib.figure import Figure

from fsad.data import default_data_root, read_image, read_mask
from fsad.suite import SUITES, SuiteSettings, file_rng, find_category, transform

root = Path(data_root) if data_root and data_root != "embedded" else default_data_root()
if root is not None and (root / "mvtec_ad" / "bottle").is_dir():
    bottle = find_category(root, "bottle")
    picks = [bottle.train[0]] + [
        next(s for s in bottle.test if s.label == t) for t in bottle.defect_types
    ]
    settings = SuiteSettings()
    fig = Figure(figsize=(1.6 * len(picks), 1.6 * len(SUITES)))
    axes = fig.subplots(len(SUITES), len(picks))
    for i, name in enumerate(SUITES):
        for j, s in enumerate(picks):
            img = read_image(s.path)
            label = "good" if s.is_good else s.label
            region = None if s.is_good else read_mask(s.mask_path, img.shape[:2])
            rng = file_rng(settings, name, "bottle", label, f"{s.path.stem}.jpg")
            out, _ = transform(img, region, name, rng, settings)
            ax = axes[i, j]
            ax.imshow(out, cmap="gray" if out.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    show(fig)
else:
    print("the shared images are not at hand (set FSAD_DATA): no example figure")

# %% [markdown]
# ## Each suite against the untransformed images
#
# One table per suite. *suite* and *untransformed*: accuracy (%) of the defect type, mean ±
# sample std over seeds of the average over categories, computed on exactly the
# (category, method, shots, seed) cells that both folders hold (`fsad.report.suite_table`);
# *change*: suite minus untransformed, in points; *MVTec protocol*: the same method on the
# paper's centre-cropped MVTec images (`results/beyond`, seeds 1-5, the same categories),
# for reference; *queries*: query images per seed, summed over categories; *chance*: the
# majority class's share of the queries, averaged over categories.

# %% tags=["hide-input", "full-width"]
tables = {}
if base_rows is None or not suite_rows:
    print("no suite results to compare yet")
for s, rows in suite_rows.items():
    table = suite_table(rows, base_rows, methods, ref_rows)
    if table.empty:
        print(f"suite {s}: no cells in common with {baseline}")
        continue
    tables[s] = table
    cats = ", ".join(sorted(rows["category"].unique()))
    display(Markdown(f"**{s}** ({cats})"))
    display(Markdown(to_markdown(table.set_index("method"))))

# %% [markdown]
# ## Which methods transfer
#
# The change at 5 shots, per method (rows) and suite (columns), in points: negative numbers
# are what the transform costs. The target for the recommended method: within 5
# points of the untransformed images on `all`, and not below `residual_proto` there.

# %% tags=["hide-input"]
if tables:
    five = {
        s: t[t["shots"] == 5].set_index("method")["change"]
        for s, t in tables.items()
        if (t["shots"] == 5).any()
    }
    if five:
        change = pd.DataFrame(five).reindex(
            [m for m in methods if any(m in c.index for c in five.values())]
        )
        display(
            change.style.format("{:+.2f}", na_rep="-").set_caption("change at 5 shots (points)")
        )

# %% [markdown]
# The target, checked for `fsad fit`'s default `hires_lite0_poe_proto_rot4_gated_fixed_light`
# (the recommended inductive method since robustness round 17, chapter 10: every image's own
# light undone where the support's light test finds it varying), for
# `hires_lite0_poe_proto_rot4_gated_fixed` (the default from round 16 to round 17: its
# support is turned only where the support's pose test finds the product free), for
# `hires_lite0_poe_proto_rot4_fixed` (the default from round 11 to round 16, its support
# always turned; its 448 px engine frames whole images at the product's scale) and for
# `hires_lite0_poe_proto_rot4` (the same recipe with every engine letterboxed, the default
# until round 11) on the grids of the images regenerated for the support-pose rounds, where
# every engine sees the whole image (`results/poses/suite_all` and
# `results/poses/suite_none`, seeds 1-5): the same categories, shots and seeds for each
# method in both folders. The gated default turns the suite `all`'s support, whose frames
# are turned, and keeps the untransformed images' support as shot, so its untransformed
# figure rises and its gap to the suite widens although its suite figure is its
# predecessor's. The light-tested default undoes the light where its test finds it varying,
# on the suite `all` and on the untransformed images alike (screw's light varies in both).

# %% tags=["hide-input"]
TARGET, REFERENCE = DEFAULT_METHOD, "residual_proto"
pose_all, pose_none = read("poses/suite_all"), read("poses/suite_none")


def target_check(target: str) -> None:
    """The target check of ``target`` against `residual_proto` (5 shots, seeds 1-5)."""
    keys = ["category", "shots", "seed"]
    a = pose_all
    cells = a.loc[(a["method"] == target) & (a["shots"] == 5), keys].drop_duplicates()
    cells = cells.merge(pose_none.loc[pose_none["method"] == target, keys], on=keys)

    def pair(rows: pd.DataFrame) -> pd.DataFrame:
        return rows[rows["method"].isin([target, REFERENCE])].merge(cells, on=keys)

    t = suite_table(pair(a), pair(pose_none), [REFERENCE, target])
    t = t.set_index(["method", "shots"]) if not t.empty else t
    if (target, 5) in t.index and (REFERENCE, 5) in t.index:
        rec, ref = t.loc[(target, 5)], t.loc[(REFERENCE, 5)]
        above = float(rec["suite"].split(" ")[0]) > float(ref["suite"].split(" ")[0])
        lines = [
            f"On {rec['categories']} categories ({', '.join(sorted(cells['category'].unique()))}) "
            f"and {rec['seeds']} seed(s), 5 shots, suite `all`:",
            f"- `{target}`: {rec['suite']} against {rec['untransformed']} untransformed "
            f"({rec['change']:+.2f} points; target: no worse than -5): "
            f"{'met' if rec['change'] >= -5 else 'not met'}.",
            f"- `{REFERENCE}`: {ref['suite']} ({ref['change']:+.2f} points); `{target}` is "
            f"{'above' if above else 'not above'} it.",
        ]
        folders = {"all": (pose_all, "suite_all"), "none": (pose_none, "suite_none")}

        def queries(folder: str, method: str) -> pd.DataFrame:
            """The per-query predictions behind the rows above: ``method``, 5 shots."""
            rows, name = folders[folder]
            picked = pair(rows)
            picked = picked.loc[picked["method"] == method, [*keys, "method", "config_hash"]]
            return read_predictions(RESULTS / "poses" / name).merge(picked)

        gap = bootstrap_change(queries("all", target), queries("none", target))
        lead = bootstrap_change(queries("all", target), queries("all", REFERENCE))
        lines.append(
            f"- Resampling the queries ({gap['draws']} draws; each category's queries with "
            "replacement, the same draw for every seed and both sides): 95 % interval of the "
            f"change {gap['low']:+.1f} to {gap['high']:+.1f} points, of `{target}`'s lead over "
            f"`{REFERENCE}` on `all` {lead['low']:+.1f} to {lead['high']:+.1f}. The seeds share "
            "their support images (the paper's protocol), so the ± above measures the bank's "
            "coreset only; this interval measures which images were the queries; neither "
            "measures the choice of the support images. The target's -5 lies "
            f"{'outside' if gap['high'] < -5 else 'inside'} the change's interval."
        )
        display(Markdown("\n".join(lines)))
    else:
        print(f"{target} has no 5-shot rows on both suites yet")


if pose_all is not None and pose_none is not None:
    for target in (TARGET, GATED_DEFAULT, FIXED_DEFAULT, ROUND_DEFAULT):
        target_check(target)
else:
    print("results/poses/suite_all or results/poses/suite_none not found: no target check")

# %% [markdown]
# Issue #21, which opened this chapter, found on a real product set unlike MVTec (not in
# the shared data) the richer methods below `residual_proto` at 1 and 3 shots. Does the
# default stay above it at every shot count on the suite? Its 1- and 3-shot cells were
# added to `results/poses/suite_all` (the grids' bytes) and `results/poses/mvtec` after its
# round had adopted it (seeds 1-5, `results/poses/README.md`); nothing was chosen from them.
# The table sets the suite `all` beside the MVTec protocol (centre crop) per method and shot
# count, on the (category, seed) cells both folders hold; *suite − MVTec* is that
# difference, not the target's suite-against-untransformed gap (the untransformed images
# have 5-shot rows only). At 1 shot the support holds 3-5 images, fewer than the 7 that the
# light test needs, so the default computes exactly what the gated default computes; the
# line under the table checks that query by query. The 5-shot rows were computed at c28d079,
# the 1- and 3-shot rows at 68a531a (`git_commit`); the code between them changed (the light
# test's skip below 7 images among other things), and two 5-shot cells recomputed at
# d961011, whose `fsad/` is 68a531a's (MVTec protocol, seed 1, metal_nut with its light held
# and screw with it found varying), predict what the committed rows predict, query by query.

# %% tags=["hide-input"]
mvtec_rows = read("poses/mvtec")
shots_side = pd.DataFrame()
if pose_all is not None and mvtec_rows is not None:
    shots_side = paired_table(
        pose_all, mvtec_rows, ("suite all", "MVTec protocol"), [REFERENCE, GATED_DEFAULT, TARGET]
    )
if shots_side.empty:
    print("results/poses/suite_all or results/poses/mvtec not found or not paired: no table")
else:
    shots_side = shots_side.rename(columns={"change": "suite − MVTec"})
    display(Markdown(to_markdown(shots_side.set_index(["method", "shots"]))))
    keys = ["category", "method", "shots", "seed"]
    cells = pose_all.loc[pose_all["method"].isin([TARGET, REFERENCE]), keys]
    both = cells.groupby(["category", "shots", "seed"]).filter(lambda g: len(g) == 2)
    means = average_over_categories(pose_all.merge(both, on=keys))
    count = means.groupby("shots")["n_categories"].min()
    spread = means.pivot(index="shots", columns="method", values="std")
    means = means.pivot(index="shots", columns="method", values="mean")
    lines = [
        f"- {shots} shot(s), suite `all`, {count[shots]} categories: `{TARGET}` "
        f"{row[TARGET]:.2f} ± {spread.loc[shots, TARGET]:.2f}, `{REFERENCE}` "
        f"{row[REFERENCE]:.2f} ± {spread.loc[shots, REFERENCE]:.2f}: "
        f"{'above' if row[TARGET] > row[REFERENCE] else 'not above'}."
        for shots, row in means.dropna().iterrows()
    ]
    preds = read_predictions(RESULTS / "poses" / "suite_all")
    one = preds[(preds["shots"] == 1) & preds["method"].isin([TARGET, GATED_DEFAULT])]
    one = one.merge(pose_all[[*keys, "config_hash"]], on=[*keys, "config_hash"])
    wide = one.pivot_table(
        index=["category", "seed", "query"],
        columns="method",
        values="predicted_label",
        aggfunc="first",
    )
    if {TARGET, GATED_DEFAULT} <= set(wide.columns):
        wide = wide.dropna()
        same = (wide[TARGET] == wide[GATED_DEFAULT]).groupby(["category", "seed"]).all()
        lines.append(
            f"- At 1 shot the default predicts what `{GATED_DEFAULT}` predicts in "
            f"{int(same.sum())} of {len(same)} (category, seed) cells, query by query."
        )
    display(Markdown("\n".join(lines)))

# %% [markdown]
# Read plainly: the default stays above `residual_proto` on the suite at every shot count,
# and at 1 shot it is the gated default. At 3 shots its light test gains on the suite and
# costs about a point on the MVTec protocol, mostly on screw, whose light it finds varying
# in every seed (chapter 9 sets it beside the gated default per protocol). Nothing was
# chosen from these rows.

# %% [markdown]
# The suite's bytes depend on the machine that writes them (`results/suite/README.md`): some
# machines of this workplace write the images of `results/poses/suite_all` (the *grids'
# bytes*, which the target checks above read), others those of `results/suite/all` (the *other
# bytes*), while the untransformed images come out the same everywhere. The default was run
# on the other bytes too (`results/suite/all`, 5 shots, beside the `residual_proto` rows
# already there), category by category; bottle has seeds 1-2 only, because the machine
# that had begun it was shut down and the next one wrote the grids' bytes, on which
# `fsad run` refuses to resume that folder. The table sets the two byte sets side by side
# per category (mean ± sample std over the seeds each holds) and averages the categories
# that both hold for all five seeds. Nothing was chosen from it; it says how far the
# headline figure rests on one set of bytes.


# %% tags=["hide-input"]
GRIDS, OTHER = "grids' bytes", "other bytes"


def byte_set_table(methods: list[str]) -> pd.DataFrame:
    """Per category and method, accuracy (%) at 5 shots on the two byte sets of the suite
    `all`: mean ± sample std over the seeds each folder holds, and their number."""
    rows = pd.concat({GRIDS: pose_all, OTHER: read("suite/all")}, names=["set"])
    rows = rows.reset_index(level="set")
    five = rows[rows["method"].isin(methods) & (rows["shots"] == 5)]
    acc = five.assign(acc=100 * five["accuracy"]).groupby(["method", "category", "set"])["acc"]
    return acc.agg(seeds="count", mean="mean", std="std").reset_index()


def shown(t: pd.DataFrame) -> pd.DataFrame:
    """``t`` as one row per (method, category), one column per byte set."""
    t = t.assign(
        cell=[
            f"{m:.2f} ± {s:.2f} ({n})"
            for m, s, n in zip(t["mean"], t["std"].fillna(0.0), t["seeds"])
        ]
    )
    return t.pivot(index=["method", "category"], columns="set", values="cell")


if pose_all is not None and (RESULTS / "suite" / "all" / "results.csv").exists():
    sides = byte_set_table([TARGET, REFERENCE])
    display(shown(sides).style.set_caption("suite all, 5 shots: accuracy % ± std (seeds)"))
    full = (
        sides[sides["seeds"] == 5]
        .groupby(["method", "category"])
        .filter(lambda g: g["set"].nunique() == 2)
    )
    for method, g in full.groupby("method"):
        means = g.groupby("set")["mean"].mean()
        cats = ", ".join(sorted(g["category"].unique()))
        print(
            f"{method}, mean over {cats}: {GRIDS} {means[GRIDS]:.2f}, "
            f"{OTHER} {means[OTHER]:.2f} ({means[OTHER] - means[GRIDS]:+.2f} points)"
        )
else:
    print("results/poses/suite_all or results/suite/all not found: no byte-set check")

# %% [markdown]
# ### A fifth product on the suite: tire
#
# Every round of issue #21 read the four categories above. The shared data holds a fifth
# product that no round has read on the suite (selection rounds 1-20 read it under its own
# protocol's centre crop): MVTec 3D-AD tire (its
# RGB images; 239 normals; four defect types, one of them, `combined`, with 5 images, so 4
# shots is its largest protocol). The same target check on it, from folders whose README
# fixed what they report before they ran (`results/suite_tire`): nothing was chosen from
# them. `hires_lite0_poe_proto_rot4_fixed` was added to both folders later, when it became
# `fsad fit`'s default (its rows on the untransformed images equal the old default's: every
# tire image there has one size). Its successor, the gated default of robustness round 16,
# was added to both folders after its round had adopted it (seeds 1-5): at 4 shots its pose
# test keeps the untransformed support as shot (its rows differ from `_fixed`'s) and turns
# `all`'s (its rows equal them), as on the four categories. The light-tested default of
# round 17 was added at 4 shots after its round had adopted it: its light test held in 14 of
# 15 cells (on `all` too, as on bottle), so its rows equal the gated default's there; it
# found the light varying on the untransformed images in seed 5 alone.

# %% tags=["hide-input"]
TIRE_METHODS = [REFERENCE, TARGET, GATED_DEFAULT, FIXED_DEFAULT, ROUND_DEFAULT, "hires_poe_proto"]
tire_all, tire_none = read("suite_tire/all"), read("suite_tire/none")


def tire_queries(folder: str, method: str) -> pd.DataFrame:
    """Tire's per-query predictions of ``method`` at 4 shots in ``folder``."""
    preds = read_predictions(RESULTS / "suite_tire" / folder)
    return preds[(preds["method"] == method) & (preds["shots"] == 4)]


def tire_line(four: pd.DataFrame, target: str) -> str:
    """The target check of ``target`` on tire at 4 shots (``four``: the table's rows)."""
    rec, ref = four.loc[target], four.loc[REFERENCE]
    above = float(rec["suite"].split(" ")[0]) > float(ref["suite"].split(" ")[0])
    gap = bootstrap_change(tire_queries("all", target), tire_queries("none", target))
    return (
        f"- `{target}` changes by {rec['change']:+.2f} points (target: no worse than -5: "
        f"{'met' if rec['change'] >= -5 else 'not met'}; 95 % interval over the queries "
        f"{gap['low']:+.1f} to {gap['high']:+.1f}), and is {'above' if above else 'not above'} "
        f"`{REFERENCE}` on `all` ({rec['suite']} against {ref['suite']})."
    )


if tire_all is not None and tire_none is not None:
    tire = suite_table(tire_all, tire_none, TIRE_METHODS)
    display(Markdown("Tire, suite `all` against the untransformed images (%, mean ± std over "
                     "seeds; change in points):"))  # fmt: skip
    display(Markdown(to_markdown(tire.set_index(["method", "shots"]))))
    four = tire[tire["shots"] == 4].set_index("method")
    n_query = tire_all.loc[tire_all["shots"] == 4, "n_query"].iloc[0]
    chance = tire_all.loc[tire_all["shots"] == 4, "chance"].iloc[0]
    checked = [
        t
        for t in (TARGET, GATED_DEFAULT, FIXED_DEFAULT, ROUND_DEFAULT)
        if {t, REFERENCE} <= set(four.index)
    ]
    if checked:
        head = f"At 4 shots ({n_query} queries per seed, majority class {100 * chance:.0f} %):"
        display(Markdown("\n".join([head, *(tire_line(four, t) for t in checked)])))
    cropped = read("poses/mvtec_3d")
    if cropped is not None:
        crop4 = cropped[(cropped["shots"] == 4) & cropped["method"].isin(TIRE_METHODS)]
        crop4 = crop4.groupby("method")["accuracy"].agg(["mean", "std"]).mul(100)
        display(
            Markdown(
                "The same product under the MVTec 3D-AD protocol's centre crop, 4 shots, seeds "
                "1-5 (`results/poses/mvtec_3d`): "
                + ", ".join(
                    f"`{m}` {r['mean']:.2f} ± {r['std']:.2f} %" for m, r in crop4.iterrows()
                )
                + "."
            )
        )
else:
    print("results/suite_tire/all or results/suite_tire/none not found: no tire check")

# %% [markdown]
# Read plainly: on tire's suite `all` every method is at the level of guessing among the
# four types, below always answering the most frequent one, so the defaults' places above
# `residual_proto` there are ties, not a floor (guessing among four is 25 %). The gap to the
# untransformed images is smaller than on the four categories largely because `all` sits at
# that floor and the untransformed figure is low already: seen whole (letterboxed), tire
# scores well below what the centre crop of its own protocol gives the same methods (last
# line); the crop's magnification of the tread, which the whole image gives up, is a likely
# part of that (not measured). This is the suite's lesson on a product no suite round has
# read: no default transfers, and the targets are not met here either (on
# the estimate; the interval over the queries is wide).

# %% [markdown]
# ### Which five images?
#
# The paper's protocol takes the first five files of each defect type as the support, so the
# five seeds above share their support images, and their ± measures the bank's coreset only.
# `research/support_draws.py` asks what the choice of images does: the default of the time
# (`hires_lite0_poe_proto_rot4`, as in the next two sections) with its support drawn at
# random, five draws per category, the same images in `all` and `none`
# (which keep the file names, so each draw's change is paired image by image), the bank of
# seed 1 in every cell. Draw 0 is the paper's support: on `none` it repeats the target
# check's seed-1 rows exactly; on `all` transistor's and screw's differ a little, most likely
# because today's `all` images were written by another OpenCV build (chapter 10, robustness
# round 4), so this section compares its own rows only. The study evaluates the shipped
# method and chooses nothing.

# %% tags=["hide-input"]
draws_file = RESULTS / "explore" / "support_draws.csv"
if draws_file.exists():
    draws = pd.read_csv(draws_file)
    held = draws.groupby("category")["protocol"].agg(set)
    both = sorted(c for c, ps in held.items() if {"suite_all", "suite_none"} <= ps)
    display(
        Markdown(
            f"From `{shown_path(draws_file)}`: `{ROUND_DEFAULT}`, 5 shots, bank seed 1; "
            f"query accuracy (%), mean over {len(both)} categories ({', '.join(both)}), "
            "then over the random draws:"
        )
    )
    draws_t = support_draws_table(draws)
    display(Markdown(to_markdown(draws_t.rename_axis("protocol"))))
    wide = draws.pivot_table(index=["category", "draw"], columns="protocol", values="query_acc")
    gap = wide["suite_all"].sub(wide["suite_none"]).mul(100).unstack("draw")
    per_cat = pd.DataFrame(
        {
            "change, paper's support": gap[0],
            "change, random draws": gap.loc[:, gap.columns >= 1].mean(axis=1),
            "std over draws": gap.loc[:, gap.columns >= 1].std(axis=1),
        }
    )
    display(Markdown("The change (`all` minus `none`, points) per category:"))
    display(Markdown(to_markdown(per_cat.round(1))))
    change = draws_t.loc["change"]
    paper_change = change["paper's support"]
    display(
        Markdown(
            f"With the paper's support the change is {paper_change:+.1f} points; "
            f"over {change['draws']} random draws it is {change['random draws']} (from "
            f"{change['low']:+.1f} to {change['high']:+.1f})."
        )
    )
    mvtec = draws[(draws["protocol"] == "mvtec") & draws["category"].isin(both)]
    if both and mvtec["category"].nunique() == len(both):
        per_draw = mvtec.groupby("draw")["query_acc"].mean().mul(100)
        drawn = per_draw[per_draw.index >= 1]
        display(
            Markdown(
                "The same draws on the MVTec protocol (centre crop, the same categories): "
                f"{per_draw.get(0, float('nan')):.1f} % with the paper's support, "
                f"{drawn.mean():.1f} ± {drawn.std():.1f} % over {len(drawn)} random draws "
                f"(from {drawn.min():.1f} to {drawn.max():.1f})."
            )
        )
else:
    display(Markdown(f"*{shown_path(draws_file)} not found.*"))

# %% [markdown]
# Read plainly: the target's gap does not come from an unlucky choice of support images.
# Drawn at random, the support does about as well on `all` as the paper's first files and
# better on the untransformed images, so the change is no smaller. What moves is where the
# loss falls: per category the change shifts by tens of points between the paper's support
# and random ones (bottle loses far less with random supports, metal_nut and transistor far
# more), and the category mean moves by several points from draw to draw, against about one
# point over the seeds of the target check. That is the spread a user should expect from
# labelling five other images of their product, and the spread the paper's protocol, by
# fixing the support, cannot show. One bank seed and five draws: an estimate of the spread,
# not a new target figure.
#
# The MVTec protocol shows the same spread and more: every random draw scores well above the
# paper's first five files (the last line above). Perhaps the first files of a type are more
# alike than five drawn at random (neighbouring captures), which would make them a narrower
# support; that is a guess, not measured, and it was measured for the default only. The
# paper's protocol keeps its first files everywhere in this book, so every comparison with
# the paper stays like for like; a user's own five images are a random draw, not the
# paper's.

# %% [markdown]
# ### How many images?
#
# Would labelling more images close the gap? If the transforms mostly make each defect type
# *vary more*, more support images cover the variety and the change shrinks as they grow;
# if it stays, that is consistent with their *hiding* what tells the types apart (from the
# default's descriptor, or from the images themselves), or with a variety that needs more
# images than the data holds. `research/shot_curve.py` describes every defect image of a
# category once (as shot and turned, bank seed 1) and scores the default on 20 random draws
# of 1, 2, 3, 5 and 8 support images per type (the rest of each type are the queries, so
# the query sets shrink as the support grows; screw and transistor hold 10 images per type
# in the shared data), and once with *all the other* defect images of the category as
# support (leave-one-out, the table's last row). Each draw holds the same images in `all`,
# `none` and the MVTec protocol (same file names), so its change is paired. Draws of
# different counts are independent: draw 3 with two images per type need not hold draw 3's
# one image. The figure shows the drawn counts; the all-others row is in the table only. The
# study evaluates the shipped method and chooses nothing.

# %% tags=["hide-input"]
curve_file = RESULTS / "explore" / "shot_curve.csv"
rest_file = RESULTS / "explore" / "shot_curve_predictions.csv"
rest_preds = pd.read_csv(rest_file) if rest_file.exists() else pd.DataFrame()
curve = pd.DataFrame()
if curve_file.exists():
    curve = pd.read_csv(curve_file)
    names = {"suite_all": "suite all", "suite_none": "untransformed", "mvtec": "MVTec protocol"}
    curve3 = curve[curve["protocol"].isin(names)]  # the single-transform rows: further down
    cells = shot_curve_cells(curve3)  # the cells every protocol holds (%)
    cats = sorted(cells.index.get_level_values("category").unique())
    per_type = (
        rest_preds[rest_preds["protocol"] == "suite_none"]
        .groupby(["category", "true_label"])
        .size()
        if len(rest_preds)
        else pd.Series(dtype=int)
    )
    others = (
        f"all others ({per_type.min() - 1}-{per_type.max() - 1} per type)"
        if len(per_type)
        else "all others"
    )
    curve_t = shot_curve_table(curve3).rename(index={ALL_OTHERS: others})
    display(
        Markdown(
            f"From `{shown_path(curve_file)}`: `{ROUND_DEFAULT}`, bank seed 1; query accuracy "
            f"(%), mean over {', '.join(cats)}, then mean ± std over the random draws; "
            "*change*: `suite_all` minus `suite_none` (points, paired per draw)."
        )
    )
    display(Markdown(to_markdown(curve_t)))
    drawn = cells[cells.index.get_level_values("shots") != ALL_OTHERS]
    figure_rows = (
        drawn.drop(columns="chance").rename_axis(columns="protocol").stack().rename("accuracy")
        .div(100).reset_index().merge(drawn["chance"].div(100).reset_index(), on=["shots", "draw", "category"])
    )  # fmt: skip
    figure_rows = figure_rows.assign(
        method=figure_rows["protocol"].map(names), seed=figure_rows["draw"], dataset="suite"
    )
    n_draws = figure_rows["draw"].nunique()
    title = f"the default against support images per type (± std over {n_draws} draws)"
    show(
        accuracy_vs_shots(figure_rows, methods=[names[p] for p in names if p in cells], title=title)
    )
    by_shots = cells.groupby(level=["shots", "draw"]).mean().groupby(level="shots").mean()
    change = by_shots["suite_all"] - by_shots["suite_none"]
    drawn_k = [k for k in by_shots.index if k != ALL_OTHERS]
    has_rest = ALL_OTHERS in by_shots.index and len(drawn_k) > 0
    top = by_shots.loc[ALL_OTHERS, "suite_all"] if has_rest else float("nan")
    per_cat = cells.groupby(level=["category", "shots"]).mean()
    cat_change = (per_cat["suite_all"] - per_cat["suite_none"]).unstack("shots")
    lo, hi = (drawn_k[0], drawn_k[-1]) if drawn_k else (None, None)

    def placed(value: float, curve_none: pd.Series) -> str:
        """Where ``value`` falls on the untransformed images' curve (shots -> accuracy)."""
        below = curve_none[curve_none <= value]
        above = curve_none[curve_none > value]
        if below.empty:
            return f"the untransformed images score more already at {above.index[0]} per type."
        if above.empty:
            return "more than the untransformed images at every drawn count."
        k0, k1 = below.index[-1], above.index[0]
        return (
            f"the untransformed images score {below.iloc[-1]:.1f} % with {k0} and "
            f"{above.iloc[0]:.1f} % with {k1} per type."
        )

    lines = (
        [
            f"- The change is {change[lo]:+.1f} points at {lo} image per type, "
            f"{change[hi]:+.1f} at {hi}, and {change[ALL_OTHERS]:+.1f} with all the others "
            "labelled.",
            f"- With all the others labelled, `all` scores {top:.1f} %; "
            + placed(top, by_shots.loc[drawn_k, "suite_none"]),
            f"- Per category, the change at {lo} image, at {hi} and with all the others: "
            + "; ".join(
                f"{c} {r[lo]:+.1f}, {r[hi]:+.1f}, {r[ALL_OTHERS]:+.1f}"
                for c, r in cat_change.iterrows()
            )
            + ".",
        ]
        if has_rest
        else ["- No all-others cells in the file: the lines below the table need them."]
    )
    draws_file = RESULTS / "explore" / "support_draws.csv"
    if draws_file.exists():
        five = curve3[curve3["shots"] == 5].merge(
            pd.read_csv(draws_file), on=["protocol", "category", "draw"], suffixes=("", "_draws")
        )  # fmt: skip
        same = (five["query_acc"] == five["query_acc_draws"]).sum()
        lines.append(
            f"- Check: {same} of the {len(five)} five-shot cells that `support_draws.csv` also "
            "holds (draws 1-5) give the same accuracy there."
        )
    display(Markdown("\n".join(lines)))
else:
    display(Markdown(f"*{shown_path(curve_file)} not found.*"))

# %% [markdown]
# Read plainly: **labelling more images does not close the gap.** From one image per type to
# all the others, the change stays near its one-image size (lines above), and `all` with all
# the other images labelled scores between what the untransformed images score with one and
# with two per type. This is consistent with the transforms hiding, from the default's
# descriptor or from the images, what tells the types apart, rather than only making each
# type vary more; with 9 labelled images per type for screw and transistor, a variety that
# needs many more images is not ruled out. The gap stays in points while the accuracies
# rise, so the share of `all`'s errors that the transforms add grows. For the next work
# this points at what the descriptor sees rather than at the support set: the support
# rounds of the appendix (turned, relit and shrunk copies of the support images) add
# variety, which may be why they moved the signal so little (a guess, not measured). The
# categories differ: bottle's change shrinks as labels grow, metal_nut's and screw's stay,
# transistor's grows (more labels help the untransformed images more). On the MVTec
# protocol the random draws score well above the paper's first five files again (previous
# section), and the spread over draws (the table's ±) is again several times the spread
# over seeds. One bank seed; the rows of every image are described once, so the draws of
# one cell share everything but the split.

# %% [markdown]
# **Which types the suite hides.** With all the other images labelled, recall per defect
# type (%) on the untransformed images and on `all`: every defect image of the categories
# scored once (`results/explore/shot_curve_predictions.csv`).

# %% tags=["hide-input"]
if len(rest_preds):
    rest_preds = rest_preds.rename(columns={"bank_seed": "seed"})
    hit = rest_preds.assign(right=rest_preds["true_label"] == rest_preds["predicted_label"])
    pair = hit[hit["protocol"].isin(["suite_none", "suite_all"])]
    recall = pair.pivot_table(
        index=["category", "true_label"], columns="protocol", values="right", aggfunc="mean"
    ).mul(100)  # fmt: skip
    recall["images"] = (
        pair[pair["protocol"] == "suite_all"].groupby(["category", "true_label"]).size()
    )
    recall["change"] = recall["suite_all"] - recall["suite_none"]
    recall = recall[["images", "suite_none", "suite_all", "change"]].dropna()
    display(Markdown(to_markdown(recall.round(1).rename_axis(["category", "type"]))))
    rest_rows = (
        curve[curve["shots"] == ALL_OTHERS][["protocol", "category"]]
        if len(curve)
        else rest_preds[["protocol", "category"]].drop_duplicates()
    )
    lacking = rest_rows.merge(
        rest_preds[["protocol", "category"]].drop_duplicates(), how="left", indicator=True
    ).query("_merge == 'left_only'")  # fmt: skip
    if len(lacking):
        print(
            "all-others cells without predictions:",
            lacking[["protocol", "category"]].values.tolist(),
        )
else:
    display(Markdown(f"*{shown_path(rest_file)} not found.*"))

# %% [markdown]
# With all the other images labelled, which transforms still cost? The same leave-one-out
# on each single-transform suite (one transform alone per folder, first run at five shots in
# the next section; the categories that every one of them holds are named above the table),
# paired image by image with the untransformed images
# (`fsad.report.transform_costs`: *lost*, right untransformed and wrong transformed;
# *gained*, the reverse; *p*, the exact sign test on those pairs, one test per row,
# uncorrected; the lines below the table also apply Holm's correction over the single
# transforms). Every defect image is scored, so these samples are larger
# than the five-shot queries of the breakdown below.

# %% tags=["hide-input"]
if len(rest_preds):
    by_suite = {
        p.removeprefix("suite_"): g
        for p, g in rest_preds.groupby("protocol")
        if p not in {"suite_none", "mvtec"}
    }
    base_rest = rest_preds[rest_preds["protocol"] == "suite_none"]
    one_cats = set.intersection(*(set(g["category"]) for g in by_suite.values() or [{}]))
    if "all" not in by_suite or len(by_suite) < 2 or not one_cats:
        print(f"{shown_path(rest_file)}: no all-others predictions of `all` and a single "
              f"transform on common categories (suites: {sorted(by_suite)})")  # fmt: skip
    else:
        by_suite = {s: g[g["category"].isin(one_cats)] for s, g in by_suite.items()}
        order = ["all", *sorted(set(by_suite) - {"all"})]
        rest_costs = transform_costs(
            {s: by_suite[s] for s in order}, base_rest, ROUND_DEFAULT, ALL_OTHERS, 1
        )
        pooled_rest = rest_costs[rest_costs["category"] == ALL_CATEGORIES]
        pooled = not pooled_rest.empty
        shown = (pooled_rest.drop(columns="category") if pooled else rest_costs).assign(
            p=lambda f: [f"{v:.3f}" if v >= 0.001 else "< 0.001" for v in f["p"]]
        )
        what = "pooled over " if pooled else ""
        display(Markdown(f"**All others labelled; {what}{', '.join(sorted(one_cats))}**"))
        display(Markdown(to_markdown(shown.set_index("transform"))))
        if pooled:
            per_cat_rest = rest_costs[rest_costs["category"] != ALL_CATEGORIES].pivot(
                index="transform", columns="category", values="change"
            )  # fmt: skip
            display(
                per_cat_rest.reindex(order)
                .style.format("{:+.1f}", na_rep="-")
                .set_caption("change per category (points)")
            )
            singles = pooled_rest[pooled_rest["transform"] != "all"]
            singles = singles.assign(holm=holm_adjusted(singles["p"]))
            sums = per_cat_rest.drop(index="all").sum()
            costly_rest = singles[(singles["p"] < 0.05) & (singles["change"] < 0)]
            overlap = lost_overlap(by_suite, base_rest, ROUND_DEFAULT, ALL_OTHERS, 1)
            rest_lines = [
                "- Cost significantly (p < 0.05, pooled, uncorrected): "
                + (
                    ", ".join(
                        f"`{r.transform}` {r.change:+.1f}"
                        for r in costly_rest.sort_values("change").itertuples()
                    )
                    or "none"
                )
                + ".",
                "- Of those, significant after Holm's correction over the "
                f"{len(singles)} single transforms (`fsad.report.holm_adjusted`): "
                + (
                    ", ".join(
                        f"`{r.transform}` (adjusted p "
                        + (f"{r.holm:.3f})" if r.holm >= 0.001 else "< 0.001)")
                        for r in costly_rest.query("holm < 0.05").itertuples()
                    )
                    or "none"
                )
                + ".",
                "- Per category, `all` against the sum of the single changes: "
                + "; ".join(
                    f"{c} {per_cat_rest.loc['all', c]:+.1f} against {sums[c]:+.1f}"
                    for c in per_cat_rest.columns
                )
                + ".",
                "- Image by image, of the images `all` loses, those that some single transform "
                "loses too (`fsad.report.lost_overlap`): "
                + "; ".join(
                    f"{c} {r.also_lost_alone} of {r.lost_combined} (the single transforms "
                    f"lose {r.lost_alone} between them)"
                    for c, r in overlap.iterrows()
                )
                + ".",
            ]
            display(Markdown("\n".join(rest_lines)))

# %% [markdown]
# Read plainly: with all the other images labelled, light (`illumination`) and the defect
# pushed to the frame's border (`border`) are the transforms that still cost the default
# with an uncorrected p below 0.05 when pooled, and only light survives the correction for
# testing five transforms; light costs screw most, the border costs metal_nut most. Grey costs almost nothing on its own,
# metal_nut included, so `all`'s loss of metal_nut's `color` type (recall table above) is
# not grey's doing alone: it comes with the other transforms (the five-shot confusions below
# show light turning bent and scratched nuts into `color`; not measured here). Pose, which
# the turned support copies address, and the elongated window (`elongated`) are not
# distinguishable from no change when pooled, though pose still costs screw and the window
# metal_nut. The sums of the single changes are no guide to `all`: in every category they
# reach at least what `all` costs, yet image by image much of what `all` loses no single
# transform loses (the last line above), while the single transforms lose images that `all`
# keeps. Every suite draws its own light, pose and window per file (`fsad.suite.file_rng`
# is seeded by the suite's name), so `all` does not see the lighting that `illumination`
# does; on screw, light alone costs more than `all`. One bank seed. (The last section
# takes each transform out of `all` with `all`'s own draws.)

# %% [markdown]
# ## Where the default loses: one transform at a time
#
# The target compares `all` (every transform at once) with the untransformed images. To see
# which transform the default's loss comes from, each single-transform suite and `all` were
# run with `fsad fit`'s default of the time (`hires_lite0_poe_proto_rot4`; "the default" in
# this and the following sections) on bottle, screw and metal_nut, the categories where `all`
# costs it most (`results/suite_one_transform/<suite>`; the commands and the images are in
# that folder's README). Transistor was left out: on `all` it loses nothing in the target
# check's folders, and a 448 px bank of it costs about 15 minutes on one core.
#
# One seed (1), 5 shots. The support set is the first five images of each type in every
# seed, so seeds differ only by the bank's coreset, and the query sets are small. So the
# comparison is made query by query: every suite keeps the file names, so each transformed
# query is paired with its untransformed self, the target check's `results/poses/suite_none`
# (the same images: equal data hashes) (`fsad.report.transform_costs`). *lost*: right
# untransformed, wrong transformed; *gained*: the reverse; *p*: the exact sign test on those
# pairs (McNemar), the chance of a split at least this uneven if the transform changed
# nothing. No seed, setting or method was chosen from these numbers: they only say where the
# loss is.

# %% tags=["hide-input"]
ONE = RESULTS / "suite_one_transform"
preds = {s: read_predictions(ONE / s) for s in [*(s for s in suites if s != "all"), "all"]}
preds = {s: p for s, p in preds.items() if len(p)}
base_preds = read_predictions(RESULTS / "poses" / "suite_none")
if preds and len(base_preds):
    costs = transform_costs(preds, base_preds, ROUND_DEFAULT, 5, 1)
    cats = sorted(set(costs["category"]) - {ALL_CATEGORIES})
    pooled = costs[costs["category"] == ALL_CATEGORIES].drop(columns="category")
    display(Markdown(f"**`{ROUND_DEFAULT}`, 5 shots, seed 1; {', '.join(cats)} pooled**"))

    def p_text(p: float) -> str:
        return f"{p:.3f}" if p >= 0.001 else "< 0.001"

    shown = pooled.assign(p=[p_text(p) for p in pooled["p"]])
    display(Markdown(to_markdown(shown.set_index("transform"))))
    by_cat = costs[costs["category"] != ALL_CATEGORIES]
    queries = by_cat.groupby("category")["queries"].first()
    change = by_cat.pivot(index="transform", columns="category", values="change")
    chance = (  # the untransformed rows the target check read (their predictions: base_preds)
        pose_none[(pose_none["method"] == ROUND_DEFAULT) & (pose_none["seed"] == 1)]
        .groupby("category")["chance"]
        .first()
    )
    caption = "change per category (points); queries (majority class): " + ", ".join(
        f"{c} {n} ({100 * chance.get(c, float('nan')):.0f} %)" for c, n in queries.items()
    )
    display(change.reindex(list(preds)).style.format("{:+.1f}", na_rep="-").set_caption(caption))
else:
    print(f"{shown_path(ONE)} or results/poses/suite_none not found: no breakdown")

# %% [markdown]
# Read plainly (the lines below are computed from the table): which single transforms cost
# the default significantly (p < 0.05 pooled over the three categories), and which do not.

# %% tags=["hide-input"]
if preds and len(base_preds):
    single = pooled[pooled["transform"] != "all"].sort_values("change")
    costly = single[(single["p"] < 0.05) & (single["change"] < 0)]
    free = single[single["p"] >= 0.05]

    def listed(rows: pd.DataFrame) -> str:
        return ", ".join(
            f"`{r.transform}` {r.change:+.1f} points (p {p_text(r.p)})" for r in rows.itertuples()
        )

    everything = (
        pooled.set_index("transform").loc["all"] if "all" in set(pooled["transform"]) else None
    )
    lines = [
        f"- Costly: {listed(costly) or 'none'}.",
        f"- Not distinguishable from no change: {listed(free) or 'none'}.",
    ]
    held = single.assign(holm=holm_adjusted(single["p"]))
    held = held[(held["holm"] < 0.05) & (held["change"] < 0)]
    lines.append(
        f"- Costly after Holm's correction over the {len(single)} single transforms: "
        + (", ".join(f"`{r.transform}` (adjusted p {p_text(r.holm)})" for r in held.itertuples())
           or "none")
        + "."
    )  # fmt: skip
    if everything is not None:
        lines.append(
            f"- All at once: {everything['change']:+.1f} points over {int(everything['queries'])} "
            f"queries; the single costs add up to {single['change'].sum():+.1f}."
        )
        overlap = lost_overlap(preds, base_preds, ROUND_DEFAULT, 5, 1)
        lines.append(
            "- Of the queries `all` loses, those some single transform loses too: "
            + "; ".join(
                f"{c} {r.also_lost_alone} of {r.lost_combined} (the single transforms lose "
                f"{r.lost_alone} between them)"
                for c, r in overlap.iterrows()
            )
            + "."
        )
    display(Markdown("\n".join(lines)))

# %% [markdown]
# Which confusions the costly transforms add: the queries each one *lost*, by true and
# predicted type (the three most frequent per transform).

# %% tags=["hide-input"]
if preds and len(base_preds):
    keys = ["category", "query"]
    cell = (
        (base_preds["method"] == ROUND_DEFAULT)
        & (base_preds["shots"] == 5)
        & (base_preds["seed"] == 1)
    )
    right = base_preds[cell & (base_preds["true_label"] == base_preds["predicted_label"])][keys]
    lost_rows = []
    for name in costly["transform"]:
        p = preds[name]
        p = p[(p["method"] == ROUND_DEFAULT) & (p["shots"] == 5) & (p["seed"] == 1)]
        wrong = p[p["true_label"] != p["predicted_label"]].merge(right, on=keys)
        top = wrong.groupby(["category", "true_label", "predicted_label"]).size().nlargest(3)
        lost_rows += [(name, *k, n) for k, n in top.items()]
    if lost_rows:
        columns = ["transform", "category", "true type", "predicted", "queries lost"]
        display(
            Markdown(to_markdown(pd.DataFrame(lost_rows, columns=columns).set_index("transform")))
        )

# %% [markdown]
# What this says, with one seed and 146 queries (so only large effects show):
#
# - **Light and framing, not pose or colour, are where the default loses.** The turned
#   support images (robustness round 2) did their job: `pose` is no longer a significant
#   cost, and `grey` is not one either. The single costs add up to more than `all` costs,
#   yet `all` also loses queries that no single transform loses (last line above): the
#   transforms neither simply add up nor simply break the same images (each suite draws its
#   own light, pose and window per file).
# - **Light changes look like defects.** Under `illumination`, metal_nut's bent and
#   scratched nuts are read as `color`, most likely because a colour-temperature shift of
#   the whole image leaves residuals like a colour defect's (metal_nut's bank holds only 10
#   normal nuts, each lit its own way; not measured further). Screw loses most here.
#   Equalising every image (photometric round 1, appendix) removed the shift but cost the
#   MVTec protocol's leave-one-out far more; bringing each image's channel means to its
#   product's (photometric round 2, appendix), a milder correction, still lost by its MVTec
#   guard. A fix must leave upright, evenly lit products as they are.
# - **The window hides size.** A window of 0.55-1 times the frame, letterboxed to the
#   engine's square, magnifies the part by up to 1.8 times (a `border` window, shrunk until
#   the defect touches its edge, by up to 4), so bottle's `broken_large` and
#   `broken_small` swap under `elongated` and `border`. The suite keeps the camera's pixel
#   size; it is the letterbox that gives each image its own magnification. Framing every
#   image at its product's scale instead (robustness round 10, chapter 10) gained bottle
#   about 11 points of query accuracy and cost screw about 14, whose small defects the
#   magnification had made visible: level on the four categories' mean, it did not ship.

# %% [markdown]
# ## Each transform taken out of `all`
#
# The single-transform suites above each draw their own pose, window and light, so they do
# not say what a transform costs *among the others*. `fsad data suite --suites
# all_but_<transform>` writes `all` with one transform left out, each kept step starting
# from the generator state it starts from in `all` (`fsad.suite.LEAVE_ONE_OUT`: the file's
# generator is `all`'s, replayed step by step). Without `illumination` or `grey` the
# images are `all`'s pixel for pixel in their geometry, lit (or coloured) as photographed:
# what a perfect correction of that transform could give back at most, an oracle and not a
# method. Without `pose`, `elongated` or `border` the later steps draw the same numbers on
# a different geometry.
#
# Between `all` and `all_but_illumination` sits a correction that knows the light exactly:
# `research.light_oracle` reads the gamma, gain, gradient and colour temperature the
# generator drew for each file and divides them out of `all`'s written image
# (`all_light_undone`). What it cannot give back is what the light destroyed: highlights
# clipped at white, shadows crushed into few grey levels, then JPEG. It is exact for grey
# parts only: the gamma bends each colour channel before the grey step mixes them, so a
# coloured part's grey level comes back off by an amount that depends on the gamma (bottle
# and transistor have coloured parts). Two partial oracles
# undo one part of it: the gamma alone (`all_gamma_undone`) or the gain with the gradient
# and the colour temperature alone (`all_gain_undone`, the gamma left). Every oracle reads
# the generator's draws, never a label; nothing is chosen from them.
#
# `fsad fit`'s default when this study ran (`hires_lite0_poe_proto_rot4_fixed`, before
# robustness round 16), 5 shots, the four categories; `all` and the untransformed images are
# the target check's folders (`results/poses/suite_all`, `suite_none`; this study's `all`
# images have their data hashes); the rest is `results/suite_leave_one_out/<suite>` (the
# commands are in its README). *regained*: points over `all`; *to go*: points still below
# the untransformed images.

# %% tags=["hide-input"]
LOO = RESULTS / "suite_leave_one_out"
#: the default when this study ran (its rows name it)
LOO_METHOD = FIXED_DEFAULT
LOO_SUITES = [f"all_but_{t}" for t in ("illumination", "border", "elongated", "pose", "grey")]
LOO_SUITES += ["all_light_undone", "all_gamma_undone", "all_gain_undone"]
loo_all_rows = {s: read(f"suite_leave_one_out/{s}") for s in LOO_SUITES}
loo_all_rows = {s: r for s, r in loo_all_rows.items() if r is not None}
loo_rows = {s: r[r["method"] == LOO_METHOD] for s, r in loo_all_rows.items()}


def oracle_table(method: str, suites: list[str]) -> pd.DataFrame:
    """``method`` on each suite of ``suites`` paired with `all` and the untransformed images.

    One row per suite that holds ``method``'s 5-shot rows: ``without it`` (the suite),
    ``all`` and ``regained`` (points over `all`), ``untransformed`` and ``to go`` (points
    below the untransformed images), each mean ± sample std over the seeds both hold.
    """
    table = []
    for name in suites:
        rows = loo_all_rows.get(name)
        if rows is None:
            continue
        rows = rows[(rows["method"] == method) & (rows["shots"] == 5)]
        over_all = paired_table(rows, pose_all, ("without it", "all"), [method])
        over_none = paired_table(rows, pose_none, ("without it", "untransformed"), [method])
        if over_all.empty or over_none.empty:
            continue
        a, n = over_all.iloc[0], over_none.iloc[0]
        table.append({"suite": name, "without it": a["without it"], "all": a["all"],
                      "regained": a["change"], "untransformed": n["untransformed"],
                      "to go": n["change"], "seeds": a["seeds"], "categories": a["categories"],
                      "queries": a["queries"], "chance": a["chance"]})  # fmt: skip
    return pd.DataFrame(table, columns=["suite", "without it", "all", "regained",
                                        "untransformed", "to go", "seeds", "categories",
                                        "queries", "chance"]).set_index("suite")  # fmt: skip


def light_varied(rows: pd.DataFrame) -> int:
    """How many of ``rows`` (result rows of a light-tested method) record a light test that
    found the light varying (their ``info`` JSON)."""
    return sum(bool(json.loads(i).get("light_test", {}).get("varies")) for i in rows["info"])


def show_oracle_table(table: pd.DataFrame, method: str) -> None:
    """Display ``oracle_table``'s rows, signed changes to two decimals."""
    display(Markdown(f"**`{method}`, 5 shots, mean ± sample std over seeds**"))
    shown = table.assign(
        regained=[f"{v:+.2f}" for v in table["regained"]],
        **{"to go": [f"{v:+.2f}" for v in table["to go"]]},
        chance=[f"{v:.1f}" for v in table["chance"]],
    )
    display(Markdown(to_markdown(shown)))


if loo_rows and pose_all is not None and pose_none is not None:
    loo_table = oracle_table(LOO_METHOD, LOO_SUITES)
    show_oracle_table(loo_table, LOO_METHOD)
else:
    loo_table = None
    print(f"{shown_path(LOO)} or the target check's folders not found: no leave-one-out table")

# %% [markdown]
# Query by query (seed 1): each query without the transform paired with itself in `all`
# (`fsad.report.transform_costs`; *worse*: right in `all`, wrong without the transform;
# *better*: the reverse; *p*: McNemar's exact test on those pairs). Accuracies here pool the
# queries of the four categories; the table above averages the categories.

# %% tags=["hide-input"]
if loo_table is not None:
    loo_preds = {s: read_predictions(LOO / s) for s in loo_rows}
    all_preds = read_predictions(RESULTS / "poses" / "suite_all")
    loo_costs = transform_costs(loo_preds, all_preds, LOO_METHOD, 5, 1)
    names = {"transform": "suite", "untransformed": "all", "transformed": "without it",
             "change": "regained", "lost": "worse", "gained": "better"}  # fmt: skip
    loo_costs = loo_costs.rename(columns=names)
    pooled_loo = loo_costs[loo_costs["category"] == ALL_CATEGORIES].drop(columns="category")
    pooled_loo = pooled_loo.assign(p=[f"{p:.3f}" if p >= 0.001 else "< 0.001"
                                      for p in pooled_loo["p"]])  # fmt: skip
    display(Markdown(to_markdown(pooled_loo.set_index("suite"))))
    per_cat = loo_costs[loo_costs["category"] != ALL_CATEGORIES]
    display(
        per_cat.pivot(index="suite", columns="category", values="regained")
        .reindex(list(loo_preds))
        .style.format("{:+.1f}", na_rep="-")
        .set_caption("regained per category (points), seed 1")
    )

# %% [markdown]
# Read plainly (computed from the query-by-query table: seed 1, the same 166 queries for
# every suite, so the suites compare like for like):

# %% tags=["hide-input"]
if loo_table is not None and {"all_but_illumination", "all_light_undone"} <= set(loo_preds):
    won = pooled_loo.set_index("suite")["regained"]
    none_preds = read_predictions(RESULTS / "poses" / "suite_none")
    whole = transform_costs({"all": all_preds}, none_preds, LOO_METHOD, 5, 1)
    gap = -whole.loc[whole["category"] == ALL_CATEGORIES, "change"].iloc[0]
    light, exact = won["all_but_illumination"], won["all_light_undone"]
    others = won[won.index.str.startswith("all_but_") & (won.index != "all_but_illumination")]
    seeds_light = loo_table.loc["all_but_illumination"]
    lines = [
        f"- `all` lies {gap:.1f} points below the untransformed images; without its light "
        f"{light:+.1f} points come back ({100 * light / gap:.0f} % of the gap)"
        + (", more than" if light > others.max() else ", not more than")
        + " without any other transform ("
        + ", ".join(f"{k.removeprefix('all_but_')}: {v:+.1f}" for k, v in others.items())
        + f"). Over {seeds_light['seeds']} seeds: {seeds_light['without it']} without the "
        f"light against {seeds_light['all']} with it (first table).",
        f"- Undoing the very light the generator drew regains {exact:+.1f} points; "
        f"leaving the light out regains {light:+.1f}."
        + f" Over {loo_table.loc['all_light_undone', 'seeds']} seeds (first table): "
        f"{loo_table.loc['all_light_undone', 'without it']}, "
        f"{-loo_table.loc['all_light_undone', 'to go']:.2f} points below the untransformed "
        f"images; without the light at all, {-seeds_light['to go']:.2f} below over "
        f"{seeds_light['seeds']} seeds (the target allows 5).",
    ]
    # the oracle against no light at all, query by query, on every seed both hold
    both = sorted(
        set(loo_preds["all_light_undone"]["seed"]) & set(loo_preds["all_but_illumination"]["seed"])
    )
    versus = [
        transform_costs(
            {"all_light_undone": loo_preds["all_light_undone"]},
            loo_preds["all_but_illumination"],
            LOO_METHOD,
            5,
            int(seed),
        ).assign(seed=int(seed))
        for seed in both
    ]
    versus = pd.concat(versus)
    versus = versus[versus["category"] == ALL_CATEGORIES]
    lines.append(
        "- The exact light undone against no light at all, query by query: "
        + ", ".join(
            f"seed {r.seed} {r.change:+.1f} points (p {r.p:.2f})" for r in versus.itertuples()
        )
        + (
            ": not distinguishable, so what the light destroys (clipped, crushed, coded, and "
            "the colours the undoing mixes wrongly) costs the default little here."
            if (versus["p"] >= 0.05).all()
            else ": they differ in at least one seed."
        )
    )
    partial = {
        "all_gamma_undone": ("its gamma alone", "gain and gradient"),
        "all_gain_undone": ("its gain and gradient alone", "gamma"),
    }
    for name, (what, kept) in partial.items():
        if name in won.index:
            lines.append(f"- Undoing {what} (the {kept} left as drawn) regains {won[name]:+.1f}.")
    fit_file = RESULTS / "explore" / "log_light_fit.csv"
    if fit_file.is_file():
        fit = light_fit_summary(pd.read_csv(fit_file))
        lines.append(
            "- Photometric round 8's estimate against the drawn light, on the bank's normal "
            f"images of `all` ({int(fit['images'].sum())} images): rank correlation of its "
            f"gamma with the drawn one {fit['rho_gamma'].min():.2f}-{fit['rho_gamma'].max():.2f} "
            f"by category, of its gain {fit['rho_gain'].min():.2f}-{fit['rho_gain'].max():.2f}."
        )
    display(Markdown("\n".join(lines)))

# %% [markdown]
# What this says (a study, not a round: no method, setting or seed was chosen from it):
#
# - **Light is most of what `all` costs the default.** Within `all`, taking out the pose,
#   the window, the border or the colour moves it by about as much as the seeds do, while
#   taking out the light closes most of the distance to the untransformed images. The
#   framing costs of the single-transform suites above are real (without the light, `all`
#   still lies below the untransformed images: *to go*), but under `all`'s light they hardly
#   show.
# - **Little of the light's cost is lost pixels.** Dividing the drawn light out of the
#   written images does as well as never lighting them, within the noise of these queries.
#   So a correction that estimated this light exactly would bring the default about as close
#   to the untransformed images as removing the light does: near the target, not shown
#   inside it, since without the light the framing still costs several points.
# - **A hypothesis, not a result:** that the photometric rounds of chapter 10 fell short for
#   want of a better estimate of the light. Round 8's gamma followed the drawn one fairly
#   closely and its gain less so (the last line above; metal_nut has only 10 normal images),
#   and their records were kept with another signal (support leave-one-out) and, for the
#   earlier rounds, another default, so they do not compare directly with these oracles. A
#   next light candidate can be judged, before any round and without a label, by how closely
#   it recovers the light the generator drew for the bank's normal images, as
#   `research.light_fit_study` judged round 8's.
# - **Both parts of the light seem to matter** (one seed): each partial oracle gives back
#   less than the whole light, the gamma alone markedly less; the gain with the gradient
#   alone is not far from it.
# - These are oracles of a generator whose light model (a gamma, a gain, a linear gradient, a
#   tint) is known; a factory's light is not that simple.

# %% [markdown]
# ### The shipped default on the two light oracles
#
# The oracles above ran with the default of their day. `fsad fit`'s default since
# robustness round 17 (`hires_lite0_poe_proto_rot4_gated_fixed_light`) was run on the two
# that remove the light, `all_light_undone` and `all_but_illumination`, seeds 1-5, on the
# same images. What these rows would read was written in
# `results/suite_leave_one_out/README.md` before the first of them ran: the target asks the
# default on `all` to lie within 5 points of its untransformed figure; if it lies more than 5
# points below even with the drawn light divided out, a correction of exactly the drawn light
# would not by itself meet the target. A bound, not a method: nothing is chosen from it (an
# estimate that normalises more than the drawn light is not bounded by it).

# %% tags=["hide-input"]
ORACLES = ["all_light_undone", "all_but_illumination"]
if pose_all is not None and pose_none is not None:
    default_oracles = oracle_table(DEFAULT_METHOD, ORACLES)
else:
    default_oracles = pd.DataFrame()
if default_oracles.empty:
    print(f"no rows of {DEFAULT_METHOD} in {shown_path(LOO)}'s oracle folders")
else:
    show_oracle_table(default_oracles, DEFAULT_METHOD)
    for name in sorted(set(ORACLES) - set(default_oracles.index)):
        print(f"no 5-shot rows of {DEFAULT_METHOD} in {shown_path(LOO / name)}")
    folders = {"untransformed": pose_none, "all": pose_all}
    folders |= {name: loo_all_rows[name] for name in default_oracles.index}
    cells = {
        name: rows[(rows["method"] == DEFAULT_METHOD) & (rows["shots"] == 5)].set_index(
            ["category", "seed"]
        )["accuracy"]
        for name, rows in folders.items()
    }
    per_seed = pd.DataFrame(cells).dropna()  # the (category, seed) cells every folder holds
    per_category = per_seed.groupby("category").mean().mul(100)
    n_seeds = per_seed.groupby("category").size()
    display(
        per_category.assign(seeds=n_seeds)
        .style.format("{:.1f}", subset=list(cells))
        .set_caption("accuracy (%) per category, mean over the seeds every folder holds")
    )
    lines = []
    for name, row in default_oracles.iterrows():
        verdict = "inside" if row["to go"] >= -5 else "outside"
        lines.append(
            f"- `{name}`: {row['without it']} against {row['untransformed']} untransformed "
            f"({row['to go']:+.2f} points, {verdict} the target's 5; {row['seeds']} seeds, "
            f"{row['queries']} queries per seed, chance {row['chance']:.1f} %); "
            f"{row['regained']:+.2f} over `all` ({row['all']})."
        )
        rows = loo_all_rows[name]
        rows = rows[(rows["method"] == DEFAULT_METHOD) & (rows["shots"] == 5)]
        varies = light_varied(rows)
        lines.append(
            f"  Its light test found the light varying in {varies} of {len(rows)} cells"
            + (" (so these rows are the gated default's: nothing undone)." if varies == 0 else ".")
        )
    fixed_oracle = oracle_table(FIXED_DEFAULT, ["all_light_undone"])
    if "all_light_undone" in default_oracles.index and not fixed_oracle.empty:
        preds = read_predictions(LOO / "all_light_undone")
        preds = preds[preds["shots"] == 5].set_index(["category", "seed", "query"])
        pair = pd.concat(
            [
                preds.loc[preds["method"] == m, "predicted_label"]
                for m in (DEFAULT_METHOD, FIXED_DEFAULT)
            ],
            axis=1,
            join="inner",
        )
        same = int((pair.iloc[:, 0] == pair.iloc[:, 1]).sum())
        shipped, fixed = default_oracles.loc["all_light_undone"], fixed_oracle.iloc[0]
        five = pose_none[pose_none["shots"] == 5]
        means = (
            five.groupby(["method", "seed"])["accuracy"].mean().mul(100).groupby("method").mean()
        )
        # the gated default without the light test: support as shot, no light undone
        turned_cost = means[GATED_DEFAULT] - means[FIXED_DEFAULT]
        light_part = means[DEFAULT_METHOD] - means[GATED_DEFAULT]
        lit = five[five["method"] == DEFAULT_METHOD]
        fired = light_varied(lit)
        pose_file = RESULTS / "explore" / "pose_test.csv"
        held = pd.Series(dtype=str)
        if pose_file.is_file():
            pose_tests = pd.read_csv(pose_file)
            pose_tests = pose_tests[pose_tests["shots"] == 5].groupby("folder")["holds_pose"]
            held = pose_tests.sum().astype(int).astype(str) + " of " + pose_tests.size().astype(str)
        lines.append(
            f"- On `all_light_undone` the default predicts what `{FIXED_DEFAULT}` (the support "
            f"always turned, the light never undone) predicts in {same} of {len(pair)} queries. "
            f"On the untransformed images it keeps the support as shot (its pose test finds "
            f"the pose fixed in {held.get('suite_none', 'no')} cells there, in "
            f"{held.get('suite_all', 'no')} of `all`, `results/explore/pose_test.csv`) "
            f"and scores {shipped['untransformed']} against `{FIXED_DEFAULT}`'s "
            f"{fixed['untransformed']}. So of the {-shipped['to go']:.2f} points to go, "
            f"{turned_cost:.2f} are what turning the support costs on images whose pose is "
            f"fixed (`{GATED_DEFAULT}`, the support as shot and no light undone, scores "
            f"{means[GATED_DEFAULT]:.2f} there), the choice its pose test makes on `all`; "
            f"{light_part:+.2f} is the default's own light correction on the untransformed "
            f"images (its light test finds their light varying in {fired} of {len(lit)} "
            f"cells); and {-fixed['to go']:.2f} is what is left to the turned support with the "
            "drawn light divided out."
        )
    display(Markdown("\n".join(lines)))

# %% [markdown]
# What this says (a bound, not a method): **no light correction alone meets the target for
# the shipped default.** With the drawn light divided out, or never drawn, it still lies
# well over 5 points below its untransformed figure, and on these images it behaves exactly
# as `_fixed` does (its light test holds, its pose test turns the support). Half to two
# thirds of what is left (the lines above) is the support turned for a pose the suite draws
# at random, a cost the untransformed images, whose pose is fixed, never pay.

# %% [markdown]
# ### Can each image's pose be read from its pixels?
#
# Most of what the exact light correction leaves is the turned support's cost on images
# whose pose is fixed (the line above). A method that brought every image back to its
# product's pose before the engines, and then kept the support as shot, could win that part
# back if the pose can be read. A label-free study asked only that
# (`research/pose_estimate_study.py`): each normal image of `all` registered onto reference
# normal images by SIFT keypoints and a similarity transform fitted by RANSAC (a fit counts
# only with 10 inliers or more and a scale between 0.5 and 2), its rotation set beside the
# one the generator drew. *one_reference*: the folder's first normal image, the estimator
# fixed before any row; *best_of*: the best-matching of the first ten, with more keypoints,
# designed after reading the first's rows (both corrected after a review had found collapsed
# fits counted as registrations; the module says how). The same on the oracle's copies
# (`all_light_undone`), to see what the light does to it. Bottle and transistor are
# photographed in one pose, so their rows judge (bottle seen from above is nearly round);
# in screw's source photographs the screw lies at varying angles and metal_nut has ten normal
# images, so their rows describe.

# %% tags=["hide-input"]
pose_reads = {
    name: RESULTS / "explore" / f"pose_estimate_{name}.csv" for name in ("all", "light_undone")
}
if all(f.is_file() for f in pose_reads.values()):
    pose_summary = pd.concat(
        {
            ("`all`" if name == "all" else "`all_light_undone`"): pose_estimate_summary(
                pd.read_csv(f, dtype={"image": str})
            ).set_index(["category", "estimator"])
            for name, f in pose_reads.items()
        },
        names=["folder"],
    )
    shown_pose = pose_summary[["images", "not_registered", "median_error", "within_10",
                               "within_20", "within_10_mod90"]]  # fmt: skip
    display(Markdown("Shares of the images; errors in degrees (over the registered images):"))
    display(Markdown(to_markdown(shown_pose.round(2))))
    near = pose_summary.xs("best_of", level="estimator")["within_10"].unstack("folder")
    display(
        Markdown(
            "Transistor, the product whose turned support costs most: the better estimator "
            f"reads the pose within 10 degrees for {near.loc['transistor', '`all`']:.0%} "
            "of its normal images in `all` and for "
            f"{near.loc['transistor', '`all_light_undone`']:.0%} with the drawn light "
            f"divided out; bottle's: {near.loc['bottle', '`all`']:.0%} and "
            f"{near.loc['bottle', '`all_light_undone`']:.0%}."
        )
    )
else:
    print("no pose estimate rows in results/explore: run research.pose_estimate_study")

# %% [markdown]
# What this says (a study: it chose nothing): keypoint registration reads transistor's pose
# exactly where it reads it at all, and for most images it does not. Every accepted fit on
# transistor lies within a few degrees of the drawn rotation, but *best_of* accepts one for
# about a third of its normal images in `all` and for under half with the drawn light
# divided out; bottle's images gave none. A method that turned images
# back by registration would leave most of transistor's images in their drawn pose, so the
# turned support's part of the gap is not within reach of this means alone. A next attempt
# would need a pose estimate for every image (from the engine's own features, say, or a
# registration that falls back to the turned support where it fails), judged first, as here,
# against the poses the generator drew.

# %% [markdown]
# ### Which estimate follows the drawn light?
#
# The oracle needs the generator's draws; a correction has only pixels. Before any further
# round, six per-image estimates were set beside the light the suite drew for the bank's
# normal images of `all` (`research/light_estimate_study.py`, label-free: it reads the
# generator's draws for normal images, never a defect type): none (the image as it is);
# round 8's fit of a gamma and a gain to the product's log-luminance quantiles; round 9's
# least-squares plane removed first; a plane read as the median gradient of the smoothed log
# image instead; the same with the quantile fit over the bright half only; and photometric
# round 11's whole-image reading of the gamma (the image's log spread against the product's).
# The suite lights `log y = gamma log x + log gain + plane`; each part is judged by the
# share of the drawn spread it *leaves* after the correction (1: no better than no
# correction; a constant offset, the reference's own light, is harmless), and the whole by
# `light_left`, the root mean square of the log pixels' light left after the correction
# (against the oracle's image, what is common to the product's images removed).

# %% tags=["hide-input"]
estimate_file = RESULTS / "explore" / "light_estimate.csv"
if estimate_file.is_file():
    estimates = light_estimate_summary(pd.read_csv(estimate_file, dtype={"image": str}))
    shown_est = estimates.set_index(["category", "estimator"]).round(2)
    display(Markdown(f"From `{estimate_file.name}` (normal images of `all`; rho: Spearman):"))
    display(Markdown(to_markdown(shown_est)))
    left = estimates.pivot(index="category", columns="estimator", values="light_left")
    best = left.drop(columns="none").min(axis=1)
    slope = estimates.set_index(["estimator", "category"]).loc["plane_gradient", "left_slope"]
    display(
        Markdown(
            "Light left by the best estimate, as a share of the uncorrected image's: "
            + ", ".join(f"{c} {best[c] / left.loc[c, 'none']:.2f}" for c in left.index)
            + "; the gradient-read plane's share of the drawn slope left: "
            + ", ".join(f"{c} {slope[c]:.2f}" for c in left.index)
            + "."
        )
    )

# %% [markdown]
# What this says (a study: it chose nothing): every estimate leaves much of the light. The
# best leaves a third to a half of the uncorrected images' light in the pixels. The parts
# read worst are the gain and the gradient, which the partial oracles above found worth more
# than the gamma (one seed): no estimate of the gain (`k`, the fit's log level of white at
# the frame's centre) leaves less than the drawn spread on bottle, transistor or metal_nut
# (a share above 1; `k` is extrapolated to white, so an error of the gamma moves it too, and
# the fit's level moves with how much of the frame the part fills), and round 9's
# least-squares plane leaves more slope than there was in every category (2.5-2.7 times the
# drawn spread, screw 1.1), as the content's own trend enters the fit. Reading the plane
# from the median gradient does better on screw and metal_nut and no better than none on
# bottle and transistor, whose parts shade smoothly over the whole frame. Photometric round
# 11's whole-image reading of the gamma (`spread_median`) follows the drawn gamma about as
# well as round 8's fit on bottle, transistor and metal_nut, and worse on screw, where it
# leaves more of the gamma's spread than no correction (its row's gain is a whole-image
# median, which the round does not use: it sets each crop's level from the crop itself).
# Metal_nut has 10 normal images only, so its correlations of 1.00 say little. So the
# oracle's distance from round 8's correction likely lies mostly in the gain and the
# gradient, which these single-image estimates do not separate from the content (a reading,
# not measured by a partial oracle of round 8's fit). Photometric round 11 (chapter 10)
# sidesteps them by setting the level crop by crop, around the defect.
