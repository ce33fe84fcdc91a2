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
suite_baseline: str = "suite/none"  # chapter 11: the shared images, whole image (letterbox)
suite_combined: str = "suite/all"  # chapter 11: every transform of the suite combined
poses_folders: list = [
    "poses/mvtec",
    "poses/mvtec_3d",
    "poses/suite_none",
    "poses/suite_all",
]  # support poses

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from fsad.chapter import shown_path
from fsad.evaluate import read_predictions
from fsad.report import (
    ablation_table,
    average_wide,
    chain_gains,
    compare_cells,
    describe_runs,
    find_results_dir,
    fold_paper_columns,
    headline_table,
    ingredient_gains,
    load_paper_numbers,
    lopo_table,
    paper_gaps,
    paper_table,
    poses_table,
    read_folders,
    side_by_side,
    suite_table,
    summarize,
    support_by_seed,
    targets_table,
    to_markdown,
)
from fsad.viz.figures import show
from fsad.viz.results import accuracy_per_dataset, largest_shot_confusions

RESULTS = find_results_dir(results_dir)
paper = load_paper_numbers(RESULTS / "paper")
paper_avg = pd.read_csv(RESULTS / "paper" / "paper_averages.csv")
print(f"results folder: {shown_path(RESULTS)}")
print(
    "result folders present:",
    sorted(p.name for p in RESULTS.iterdir() if (p / "results.csv").is_file()),
)


def read(names: list) -> pd.DataFrame | None:
    """The rows of ``results/<name>`` for each name (latest configuration), notes printed."""
    rows, notes = read_folders(RESULTS, names)
    for note in notes:
        print("note:", note)
    return rows


def paper_tables(rows: pd.DataFrame, caption: str = "**{method} on {dataset}**") -> None:
    """One paper-style table per (dataset, method) of ``rows``, the paper's number folded in;
    ``caption`` may name ``{method}``, ``{dataset}`` and ``{seeds}``."""
    for (dataset, method), group in rows.groupby(["dataset", "method"], sort=False):
        if method == "random":
            continue
        seeds = group["seed"].nunique()
        display(Markdown(caption.format(method=method, dataset=dataset, seeds=seeds)))
        table = paper_table(group, dataset, method, paper=paper)
        display(Markdown(to_markdown(fold_paper_columns(table))))


main = read(main_folders)
beyond = read(beyond_folders)
ablation = read([ablation_folder])

# %% [markdown]
# ## In one table
#
# The paper's method as the paper reports it (its per-category numbers averaged over the
# categories we have: the four MVTec AD categories, and the tire of MVTec 3D-AD), our
# faithful reproduction of it (`contrastive`), and two methods of chapter 7:
# `hires_poe_proto`, the pick of the label-free selection rule, and `hires_poe`, which the
# rule did not pick and which is above it on the queries in most cells (the sections below
# say why both are reported). Accuracy in %, mean ± sample std over seeds 1-5 of the
# average over categories (`fsad.report.headline_table`; the README quotes this table).

# %% tags=["hide-input"]
HEADLINE = {
    "reproduction (contrastive)": "contrastive",
    "ours: hires_poe_proto (round 18's pick)": "hires_poe_proto",
    "ours: hires_poe": "hires_poe",
}
if main is not None and beyond is not None:
    headline = headline_table(pd.concat([main, beyond], ignore_index=True), paper, HEADLINE)
    display(Markdown(to_markdown(headline)))

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
if main is not None:
    print(describe_runs(main))
    paper_tables(
        main,
        "**{method} on {dataset}**: accuracy %, ours as mean ± std over {seeds} seed(s), the "
        "paper's number for the same category in parentheses; `queries`: query images per "
        "run, `chance`: majority-class rate %",
    )

# %% [markdown]
# ### How far from the paper, and why
#
# The differences per category and shot count, ours minus the paper's, and whether each is
# larger than two of our seed standard deviations:


# %% tags=["hide-input"]
if main is not None and (main["method"] == "contrastive").any():
    display(
        Markdown(
            "Ours minus the paper's accuracy, in points (`*`: larger than two of our seed "
            "standard deviations; no mark with a single seed):\n\n"
            + to_markdown(paper_gaps(main, "contrastive", paper))
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
# `research/diagnose_prototypes.py` trains the model as the grid does and scores the queries
# three ways; its committed output is shown below. All three scorings fail alike, so the
# embeddings themselves do not separate screw defect types: a small defect on a screw lying
# at a random angle seems to be learned as pose, not defect (a hypothesis, not yet tested).

# %% tags=["hide-input"]
diagnosis = RESULTS / "explore" / "screw_prototypes_seed1.txt"
print(diagnosis.read_text() if diagnosis.exists() else f"(no {shown_path(diagnosis)})")

# %% [markdown]
# ## Figure 6: accuracy against the number of shots
#
# Mean over our categories, with a band of one standard deviation over seeds; dashed lines
# are the paper's numbers averaged over the **same** categories, and the dotted line is the
# chance level (always answering the most frequent class).


# %% tags=["hide-input"]
curves = [r for r in (main, beyond) if r is not None]
if curves:
    for fig in accuracy_per_dataset(pd.concat(curves, ignore_index=True), paper):
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
if ablation is not None:
    print(describe_runs(ablation))
    cats = sorted(ablation.loc[ablation["shots"] == 2, "category"].unique())
    table = ablation_table(ablation, paper, paper_avg, ORDER)
    display(Markdown(f"Average over {', '.join(cats)} (accuracy %):\n\n" + to_markdown(table)))

# %% [markdown]
# **What each ingredient adds, ours against the paper's.** Each row is the full method
# minus the variant that lacks one ingredient, in points of the 2-shot average above (the
# paper's on the same categories), with the spread of our difference over seeds:


# %% tags=["hide-input"]
if ablation is not None:
    points = {"ours": "{:+.1f}", "std": "{:.1f}", "paper": "{:+.1f}"}
    display(ingredient_gains(ablation, paper).style.format(points, na_rep="-"))

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
if ablation is not None:
    for methods, source in (
        (["contrastive", "contrastive_raw"], "Table 5"),
        (["contrastive", "relationnet"], "Table 6"),
    ):
        t = side_by_side(ablation, methods, paper, source)
        if t is None:
            display(Markdown(f"*{source}: the ablation folder lacks one of {methods}.*"))
        else:
            display(Markdown(f"**{source}** (2-shot accuracy %)"))
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
    seeds = ", ".join(str(int(x)) for x in sorted(pair["seed"].unique()))
    display(
        Markdown(f"**Pretraining on shape-varying classes**, 2-shot accuracy (%), seeds {seeds}:")
    )
    styled = wide.style.format("{:+.2f}", subset=["difference"])
    display(styled.format("{:.2f}", subset=["contrastive", "contrastive_shapes"]))

if ablation is not None:
    extra = ablation[~ablation["method"].isin(ORDER) | (ablation["shots"] != 2)]
    if extra.empty:
        display(Markdown("*No appendix variants in the ablation folder.*"))
    paper_tables(extra)

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
    print(describe_runs(beyond))
    paper_tables(beyond)
    if main is not None:
        display(Markdown("**Average accuracy (%) over categories, all methods**"))
        wide = average_wide(pd.concat([main, beyond], ignore_index=True))
        display(wide.style.format("{:.2f}", na_rep="-"))

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
    gains = chain_gains(pd.concat([main, beyond], ignore_index=True), CHAIN, SIDE_STEPS)
    display(Markdown("Gain of each step over the step before it (points):"))
    display(gains.style.format("{:+.2f}", na_rep="-"))

# %% [markdown]
# **Where the paper's trained pipeline lands against the training-free methods**, per
# category and shot count (means over seeds), computed from the same files:


# %% tags=["hide-input"]
def below(rows: pd.DataFrame, method: str, reference: str = "contrastive") -> str:
    """:func:`fsad.report.compare_cells` as one markdown line."""
    return compare_cells(rows, method, reference).markdown()


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
# `results/explore/zoom.csv`). The row `zoom2_rot_lr vs zoom_rot_lr` of the gains table
# above and this count, over five seeds, say whether the queries agree:

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
# one more expert per block group: the softmax of a fixed scale (20, the temperature of
# round 8's prototype head) times the cosine similarity to each type's mean support descriptor
# (`fsad.heads.prototype_expert`). Round 18 of the selection (the
# appendix) scored it above `hires_poe` on both label-free signals, the first candidate
# since round 8 to pass the rule, so it is the rule's pick; its support-score margin is thin
# (the appendix's verdicts). Do the queries agree, over five seeds?

# %% tags=["hide-input"]
if beyond is not None and {"hires_poe", "hires_poe_proto"} <= set(beyond["method"]):
    display(Markdown(below(beyond, "hires_poe_proto", reference="hires_poe")))
    wide = average_wide(beyond[beyond["dataset"] == "mvtec_ad"], index=["method"])
    display(Markdown("MVTec AD, mean over the four categories (%):"))
    display(wide.loc[["hires_poe", "hires_poe_proto"]].style.format("{:.2f}"))

# %% [markdown]
# Is round 18's support-score margin an accident of seed 1's coreset? The two heads were
# scored again by support leave-one-out on the engines of seeds 2-5
# (`scripts/explore_synth.py --loo-only`, at the git tag `selection-rounds-1-20`; the
# support images stay the first n files):

# %% tags=["hide-input"]
synth_rows = RESULTS / "explore" / "synth.csv"
if synth_rows.exists():
    per_seed = support_by_seed(pd.read_csv(synth_rows), ["hires_poe", "r18_poe+proto"])
    per_seed = per_seed.rename(index={"r18_poe+proto": "hires_poe_proto"})
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
    methods = ["hires_poe", "hires_poe_proto", "hires_poe_em", "hires_poe_st"]
    display(Markdown(to_markdown(targets_table(beyond, methods))))

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
    tire = beyond[
        (beyond["category"] == "tire") & beyond["method"].isin(["hires_poe", *transductive])
    ]
    if len(tire):
        table = summarize(tire).pivot_table(index="method", columns="shots", values="mean")
        display(Markdown("Tire, mean accuracy over seeds (%):"))
        display(table.rename(columns=lambda n: f"{n}-shot").style.format("{:.1f}"))

# %% [markdown]
# ## Which methods transfer: MVTec protocol against the generalisation suite
#
# Chapter 11 re-shoots the four MVTec AD categories the way factories shoot (grey, any pose
# and scale, elongated windows, defects at the border, uneven light: the suite `all`) and runs
# the same protocol on them. Per method and shot count: *MVTec protocol* is the paper's
# centre-cropped images (`results/beyond`, every seed it has); *untransformed* the same images
# seen whole (letterbox, `results/suite/none`) and *suite* the re-shot ones
# (`results/suite/all`), both over exactly the (category, seed) cells that both folders hold
# (`fsad.report.suite_table`); *change*: suite minus untransformed, in points; *queries*:
# per seed, summed over categories; *chance*: the majority class's share. A method whose
# MVTec number is high and whose suite number falls is one that learnt the MVTec framing.
# The `hires_*` rows of these two folders were computed before a fix (commit 603b987): their
# 448 px engine still centre-cropped the whole-image data (`results/suite/README.md`); the
# next section's suite rows have every engine see the whole image.

# %% tags=["hide-input", "full-width"]
combined, untransformed = read([suite_combined]), read([suite_baseline])
if combined is None or untransformed is None or beyond is None:
    display(Markdown("*No generalisation-suite results (chapter 11) in this results folder.*"))
else:
    transfer = suite_table(combined, untransformed, CHAIN[1:], beyond)
    order = {m: k for k, m in enumerate(CHAIN)}
    transfer = transfer[transfer["shots"].isin([1, 5])]
    transfer = transfer.sort_values(["shots", "method"], key=lambda c: c.map(order).fillna(c))
    cols = ["method", "shots", "MVTec protocol", "untransformed", "suite", "change"]
    cols += ["seeds", "categories", "queries", "chance"]
    display(Markdown(to_markdown(transfer[cols].set_index(["shots", "method"]))))

# %% [markdown]
# ## Support images in four poses
#
# A product shot in any pose shows its few support images in few poses. The `*_rot4` methods
# fit the same recipe's head on every support image turned by 0, 90, 180 and 270 degrees
# (`fsad.poses`; the queries, the bank and the descriptors are unchanged), round 1 of the
# appendix's robustness rounds having picked the turns by support leave-one-out. *without* /
# *with*: query accuracy (%) of the recipe without and with the poses, mean ± sample std over
# seeds of the mean over categories, on the (category, seed) cells both hold; the MVTec
# protocol is `results/poses/mvtec` (centre crop; MVTec 3D-AD tire in
# `results/poses/mvtec_3d`, shots 1 and 4), the whole untransformed images
# `results/poses/suite_none` (the suite `none`, 5 shots only) and the suite
# `results/poses/suite_all` (the suite `all`; both regenerated for this comparison, every
# method on the same images; chapter 11). The appendix's round 2 gives the label-free verdict.
# The next four tables follow `fsad fit`'s default on the same cells: `hires_lite0_poe_proto_rot4`
# (the appendix's speed round dropped the Lite2 zoom views as not worth their cost) next to
# the default it replaced, then `hires_lite0_poe_proto_rot4_fixed` (robustness round 11: its
# 448 px engine sees whole images at the product's scale; under the centre crop, and where a
# product's images share one size, it is the same method) next to the one it replaced, and
# last `hires_lite0_poe_proto_rot4_gated_fixed` (robustness round 16: the support is turned
# only where its own pose test finds the product free) next to the method it gates, and
# `hires_lite0_poe_proto_rot4_gated_fixed_light` (robustness round 17: every image's own
# light undone where the support's light test finds it varying) next to the gated method.

# %% tags=["hide-input", "full-width"]
pose_rows = {name: read([name]) for name in poses_folders}
if any(rows is None for rows in pose_rows.values()):
    display(Markdown("*No support-pose results (`results/poses`) in this results folder.*"))
else:
    pairs = [(m, f"{m}_rot4") for m in ("residual_proto", "anomaly_lr", "hires_poe_proto")]
    labels = {
        "poses/mvtec": "MVTec protocol",
        "poses/mvtec_3d": "tire (MVTec protocol)",
        "poses/suite_none": "untransformed",
        "poses/suite_all": "suite all",
    }
    table = poses_table({labels.get(k, k): v for k, v in pose_rows.items()}, pairs)
    table = table.set_index(["method", "protocol", "shots"])
    display(Markdown(to_markdown(table)))
    # fsad fit's defaults against the ones they replaced (speed round 1, robustness round 11),
    # then the gated candidate against the method it gates (robustness round 16)
    swaps = {
        ("hires_poe_proto_rot4", "hires_lite0_poe_proto_rot4"): "no Lite2 zoom views",
        ("hires_lite0_poe_proto_rot4", "hires_lite0_poe_proto_rot4_fixed"): "448 px engine fixed",
        ("hires_lite0_poe_proto_rot4_fixed", "hires_lite0_poe_proto_rot4_gated_fixed"): (
            "support turned only where its pose test finds the product free"
        ),
        (
            "hires_lite0_poe_proto_rot4_gated_fixed",
            "hires_lite0_poe_proto_rot4_gated_fixed_light",
        ): "each image's light undone where the support's light test finds it varying",
    }
    for (old, new), change in swaps.items():
        pair = [(old, new)]
        swap = poses_table({labels.get(k, k): v for k, v in pose_rows.items()}, pair)
        if len(swap):
            swap = swap.drop(columns="method").rename(columns={"without": old, "with": new})
            display(Markdown(f"`{new}` ({change}) against `{old}`:"))
            display(Markdown(to_markdown(swap.set_index(["protocol", "shots"]))))

# %% [markdown]
# ## A second protocol: leave one product out
#
# A factory often holds labelled defects of its *other* products. Protocol `lopo`
# (`research/lopo.py`, issue 23): for the evaluated category, a metric is learnt from every
# labelled defect image of the other three MVTec AD categories (never the evaluated one's),
# then the evaluated category's support (the paper's split) fits a head in that metric.
# Reading other products' labels is outside the paper's protocol, so these numbers stand in
# a table of their own. Two learners, each fixed before it ran: `lda` (linear discriminant
# directions of (product, type) classes, rows centred per product) and `white` (rows whitened
# by the other products' within-type covariance); `none` is the same head on the same
# centred rows without any transfer, the like-for-like reference. Rows: `anomaly_lr`'s
# descriptor; heads: cosine prototypes (`proto`) or logistic regression (`lr`). Accuracy (%),
# mean ± sample std over seeds of the mean over the four categories.

# %% tags=["hide-input"]
lopo_file = RESULTS / "lopo" / "results.csv"
if lopo_file.exists():
    lopo_shown, lopo_shape = lopo_table(pd.read_csv(lopo_file))
    display(Markdown(f"Leave-one-product-out ({lopo_shape}):"))
    display(Markdown(to_markdown(lopo_shown)))
else:
    display(Markdown("*No leave-one-product-out results (`results/lopo`) here.*"))

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
def predictions(folders: list) -> pd.DataFrame | None:
    """The per-query predictions of ``results/<folder>`` for each folder (None: none)."""
    preds = [read_predictions(RESULTS / f) for f in folders if (RESULTS / f).is_dir()]
    preds = [p for p in preds if len(p)]
    return pd.concat(preds, ignore_index=True) if preds else None


preds = predictions(main_folders)
if preds is None:
    display(Markdown("*No predictions file in the main results folders.*"))
else:
    for fig in largest_shot_confusions(preds, methods=["contrastive"]):
        show(fig)

# %% [markdown]
# The same for `hires_poe`, the selection rule's pick of round 18, `hires_poe_proto`, and
# `hires_poe`'s transductive variants
# `hires_poe_em` and `hires_poe_st`, at the largest shot count (`results/beyond`,
# `results/beyond_3d`): after the paper's method above, which types are still confused, and
# where the query set moves predictions (the tire's `combined` row and column).

# %% tags=["hide-input"]
ours = predictions(beyond_folders)
if ours is None:
    display(Markdown("*No predictions file in the results folders of chapter 7.*"))
else:
    methods = ["hires_poe", "hires_poe_proto", "hires_poe_em", "hires_poe_st"]
    for fig in largest_shot_confusions(ours, methods=methods):
        show(fig)
