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
beyond_folders: list = ["beyond", "beyond_3d"]  # the methods of chapter 7 (beyond the paper)

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from fsad.errors import FsadError
from fsad.evaluate import read_predictions
from fsad.report import (
    TARGETS,
    average_over_categories,
    find_results_dir,
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


beyond = [r for r in (read_folder(f) for f in beyond_folders) if r is not None]
beyond = pd.concat(beyond, ignore_index=True) if beyond else None
curves = [r for r in (main, beyond) if r is not None]
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
# reference to our strongest method: `residual_proto` (the training-free reference: mean residual
# of the 2 % most anomalous patches, cosine prototypes) → `anomaly_lr` (residuals of the
# top 1/2/5/10 % patches plus centred features, and a logistic-regression head: two changes
# at once) → `zoom_lr` (plus zoom views: windows around the anomaly peak re-encoded at full
# resolution) → `zoom_rot_lr` (each window averaged over its 4 rotations, and C = 100
# instead of 10 in the logistic head: two changes at once) → `zoom2_rot_lr` (the same windows
# encoded by a second backbone, EfficientNet-Lite2, and the zoom blocks weighted x2: two
# changes at once) → `hires_lr` (plus the residual blocks of a second PatchCore engine at
# 448 px) → `hires_poe` (the same blocks, one logistic regression per block group, their
# probabilities multiplied) → `hires_poe_proto` (a cosine-prototype expert next to each
# regression: round 18's pick, below). Apart from the chain, three transductive variants use the
# unlabelled query images (never their labels): `zoom2_rot_skm` replaces `zoom2_rot_lr`'s
# logistic head by soft k-means over support and queries, `hires_poe_em` reweights
# `hires_poe`'s probabilities by the class proportions that EM estimates on the query set,
# and `hires_poe_st` refits `hires_poe`'s experts once with its most confident predictions
# (self-training).
# The descriptor's
# block set was first picked on query accuracy (one seed); a label-free check inside the
# support sets ranks it first too (chapter 7 says how each setting was chosen).

# %% tags=["hide-input"]
if beyond is not None:
    print(describe(beyond))
    for (dataset, method), rows in beyond.groupby(["dataset", "method"], sort=False):
        display(Markdown(f"**{method} on {dataset}**"))
        display(Markdown(to_markdown(compact(paper_table(rows, dataset, method, paper=paper)))))
    if main is not None:
        both = pd.concat([main, beyond], ignore_index=True)
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
    "zoom2_rot_lr",
    "hires_lr",
    "hires_poe",
    "hires_poe_proto",
]
#: steps off the chain: (reference, method)
SIDE_STEPS = [
    ("zoom2_rot_lr", "zoom2_rot_skm"),
    ("hires_poe", "hires_poe_em"),
    ("hires_poe", "hires_poe_st"),
]
if beyond is not None and main is not None:
    avg = average_over_categories(pd.concat([main, beyond], ignore_index=True))
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


if beyond is not None and main is not None:
    both = pd.concat([main, beyond], ignore_index=True)
    lines = [
        below(both, m)
        for m in ("residual_proto", "zoom2_rot_lr", "hires_lr", "hires_poe", "hires_poe_proto")
        if (both["method"] == m).any()
    ]
    display(Markdown("\n".join(lines)))

# %% [markdown]
# **Did the last selection rounds carry over to the queries?** `zoom2_rot_lr` differs from
# `zoom_rot_lr` by what rounds 3 and 4 of the label-free selection added (a second encoder
# and the zoom weight). Those rounds were won by a few support images at most (round 4 by
# one image more in two categories and one fewer in two others; the margins are in
# `results/explore/zoom.csv`). The row
# `zoom2_rot_lr vs zoom_rot_lr` of the gains table above and this count, over five seeds, say whether
# the queries agree:

# %% tags=["hide-input"]
if beyond is not None and {"zoom2_rot_lr", "zoom_rot_lr"} <= set(beyond["method"]):
    display(Markdown(below(beyond, "zoom2_rot_lr", reference="zoom_rot_lr")))

# %% [markdown]
# **The 448 px engine, category by category.** Round 6 added the residual blocks of a
# second PatchCore engine at twice the resolution (`hires_lr`); on seed 1 it won the support
# score by a near-tie (the appendix *Selection rounds* has the scores), so it was scored on seeds
# 2-5 too (the appendix's stability table). In how many cells do the queries agree, and
# on which ones not:

# %% tags=["hide-input"]
if beyond is not None and {"zoom2_rot_lr", "hires_lr"} <= set(beyond["method"]):
    display(Markdown(below(beyond, "hires_lr", reference="zoom2_rot_lr")))

# %% [markdown]
# **One regression per block group.** `hires_poe` keeps `hires_lr`'s blocks and replaces its
# head: a logistic regression per block group (the 224 px engine's residual blocks, the
# 448 px engine's, the Lite0 zoom windows, the Lite2 zoom windows), their probabilities
# multiplied. Each expert normalises its own group, so no group outweighs another by its
# size, and each fits far fewer dimensions from the same 3-25 support images. Round 8 chose
# it on synthetic tasks (the appendix). Cell by cell against `hires_lr`:

# %% tags=["hide-input"]
if beyond is not None and {"hires_poe", "hires_lr"} <= set(beyond["method"]):
    display(Markdown(below(beyond, "hires_poe", reference="hires_lr")))

# %% [markdown]
# **Prototype experts (round 18).** `hires_poe_proto` multiplies `hires_poe`'s product by
# one more expert per block group: the softmax of a fixed scale (`PROTO_SCALE`, printed in
# the appendix) times the cosine similarity to each type's mean support descriptor
# (`fsad.heads.prototype_expert`). Round 18 of the selection (the
# appendix) scored it above `hires_poe` on both label-free signals, the first candidate
# since round 8 to pass the rule, so it is the rule's pick; its support-score margin is thin
# (the appendix's verdicts). Do the queries agree, over five seeds?

# %% tags=["hide-input"]
if beyond is not None and {"hires_poe", "hires_poe_proto"} <= set(beyond["method"]):
    display(Markdown(below(beyond, "hires_poe_proto", reference="hires_poe")))
    avg = average_over_categories(beyond[beyond["dataset"] == "mvtec_ad"])
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
if beyond is not None:
    avg = average_over_categories(beyond)
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
    m for m in ("hires_poe_em", "hires_poe_st") if beyond is not None and m in set(beyond["method"])
]
if beyond is not None and "hires_poe" in set(beyond["method"]) and transductive:
    display(Markdown("\n".join(below(beyond, m, reference="hires_poe") for m in transductive)))
    tire = beyond[(beyond["category"] == "tire") & beyond["method"].isin(["hires_poe", *transductive])]
    if len(tire):
        table = summarize(tire).pivot_table(index="method", columns="shots", values="mean")
        display(Markdown("Tire, mean accuracy over seeds (%):"))
        display(table.rename(columns=lambda n: f"{n}-shot").style.format("{:.1f}"))

# %% [markdown]
# **How every setting was chosen.** The appendix chapter *Selection rounds* lists every
# candidate of every round with its label-free scores and the rule's verdicts, and asks how
# far any choice among the candidates of rounds 8 and later could have gone towards the
# targets above.

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
# `hires_poe_em` and `hires_poe_st`, at the largest shot count (`results/beyond`,
# `results/beyond_3d`): after the paper's method above, which types are still confused, and
# where the query set moves predictions (the tire's `combined` row and column).

# %% tags=["hide-input"]
ours = [p for p in (predictions(f) for f in beyond_folders) if p is not None]
if not ours:
    display(Markdown("*No predictions file in the results folders of chapter 7.*"))
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
