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
# # Learning from synthetic defects that look like the real ones
#
# Twenty selection rounds on frozen descriptors (appendix, *Selection rounds*) reached a
# ceiling: the appendix shows that only an oracle choice among their candidates, made on
# the queries' own labels, would reach the 5-shot target on MVTec AD (seed 1). The paper
# names its own limitation: its synthetic defects (textures under Perlin masks) differ too
# much from real ones, which is why its pretraining stops helping at 4 shots. This chapter tries to learn past the ceiling in two
# ways, and reports a third, separately named protocol:
#
# 1. **Defect transplants** (`fsad.synth.transplant`, chapter 1 shows them): each support
#    image's defect is cut from its anomaly map (thresholded, refined by GrabCut; never its
#    ground-truth mask) and pasted into normal training images of the same product at
#    plausible places, scales, rotations and brightness. One real example becomes several
#    labelled ones on other backgrounds.
# 2. **Learners on them**, each fixed before it ran, with its rule:
#    - *(a) heads refitted on support + transplants* (`research/transplant_heads.py`);
#    - *(b) a light model*: a 64-d projection of `anomaly_lr`'s blocks, meta-trained with a
#      prototypical loss on the product's synthetic texture classes, then fine-tuned on
#      support + transplants (`research/meta_proto.py`), with its ablations.
# 3. **Leave-one-product-out**: a metric learnt on the *other* products' real labelled
#    defects. It reads labels the paper's protocol does not have, so it has a table of its
#    own and never shares a column with the paper's protocol.
#
# Everything here is read from committed records (`results/transplants/`,
# `results/explore/transplant_heads.csv`, `results/explore/meta_proto.csv`, `results/lopo/`
# and the grid's `results/beyond*`); nothing is computed from images. The protocol is the
# paper's (MVTec AD bottle, transistor, screw, metal_nut; MVTec 3D-AD tire, its RGB images;
# centre crop; EfficientNet-Lite0 where the paper has ResNet), seeds 1-5. The support set is
# the first n files of each type, so the seeds change the engine's coreset, the transplants'
# places and the learners' initialisation, not the images.

# %% tags=["parameters"]
config: str = ""  # unused here: the results files record their own settings
data_root: str = ""  # unused here: results come from the committed results folders
results_dir: str = ""  # empty: the results folder of this repository
grid_methods: list = ["hires_poe"]  # the grid's methods shown alongside the record's

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.figure import Figure

from fsad.chapter import shown_path
from fsad.report import (
    LEARNER_REFERENCES,
    LEARNING_TARGETS,
    augmentation_round,
    augmentation_verdicts,
    find_results_dir,
    learner_accuracy,
    learner_round,
    learner_rows,
    learner_verdicts,
    loo_sample,
    lopo_table,
    read_folders,
    round_shown,
    seed_differences,
    summarize,
    targets_table,
    to_markdown,
)
from fsad.viz.figures import show

RESULTS = find_results_dir(results_dir)
print(f"results folder: {shown_path(RESULTS)}")


def record(name: str) -> pd.DataFrame | None:
    """A committed record under the results folder, or None (said in the output)."""
    path = RESULTS / name
    if not path.is_file():
        display(Markdown(f"*{name} is not in {shown_path(RESULTS)}.*"))
        return None
    return pd.read_csv(path, dtype={"git_commit": str})


grid, notes = read_folders(RESULTS, ["beyond", "beyond_3d"])
for note in notes:
    print("note:", note)

# %% [markdown]
# ## How close are the transplants?
#
# `scripts/transplant_closeness.py` (5 shots, seed 1) compares the transplants of the
# support images with the held-out real defects of the same type (chapter 1 explains every
# column): anomaly-map peak and area against the real defects', and the cosine distance of
# the descriptor rows to the real defects' centroid of the *same* type (`dist_same`)
# against the *other* types (`dist_other`); `nn_type_acc` is how often a row's nearest
# real centroid is its own type. The query labels serve this table only.

# %% tags=["hide-input"]
closeness = record("transplants/closeness.csv")
if closeness is not None:
    cols = ["category", "source", "defect_type", "n", "peak_mean", "real_peak_mean"]
    cols += ["area_mean", "real_area_mean", "dist_same", "dist_other", "nn_type_acc"]
    display(Markdown(to_markdown(closeness[cols].round(3).set_index(["category", "source"]))))

# %% [markdown]
# ## Learner (a): heads refitted on support + transplants
#
# Each support image gives 6 transplants (Poisson or alpha blending) that join the support
# with its label; the probes are `anomaly_lr` and `residual_proto`. The signal is support
# leave-one-out at 5 shots (tire 4), an image leaving with its transplants; the rule adopts
# a variant that gains at least 1 point averaged over the five categories and seeds 1-5.
# *loo* and *query*: accuracy (%), mean ± sample std over seeds of the category mean.

# %% tags=["hide-input"]


def show_round(table: pd.DataFrame, verdicts: pd.DataFrame) -> None:
    """A round's table (:func:`fsad.report.augmentation_round`) and its rule's verdicts."""
    shown = round_shown(table)
    display(Markdown(to_markdown(shown.set_index(["probe", "variant"]))))
    display(Markdown("The rule's verdicts (gain: points of leave-one-out over the baseline):"))
    display(Markdown(to_markdown(verdicts.round(2).set_index(["probe", "variant"]))))


heads = record("explore/transplant_heads.csv")
if heads is not None:
    print("support leave-one-out:", loo_sample(heads[heads["variant"] == "baseline"]))
    heads_round = augmentation_round(heads)
    show_round(heads_round, augmentation_verdicts(heads_round, margin=1.0))

# %% [markdown]
# ## Learner (b): a projection meta-trained on synthetic defects
#
# The rows are `anomaly_lr`'s (1920 columns: residual and feature blocks of the most
# anomalous patches). One linear map to 64 dimensions is learnt in two stages, its settings
# fixed before the first run (`MetaConfig` in `research/meta_proto.py`):
#
# 1. *meta-training*, per category and seed, on the paper's synthetic classes made on that
#    product: its normal training images with a Perlin region pasted with one DTD texture
#    per class (22 classes, 8 images each), in 300 episodes of 5 classes (3 prototype rows
#    per class, the others queries), cosine prototypical loss. Every class pastes on the
#    same 8 images, so the map must read the pasted region, not the product;
# 2. *fine-tuning*: 50 episodes on the support rows and their Poisson transplants (6 per
#    support image), each class's rows split at random into prototype and query halves;
#
# then each query goes to the nearest class mean (cosine) of the support + transplant
# rows in the learnt space. The ablations switch one part off: `meta_no_tp` (no
# transplants), `scratch_tp` (no meta-training: the map starts random), `frozen_tp` (no
# fine-tuning). `hires_poe_proto_meta` adds `meta_tp`'s probabilities as one more expert to
# the recommended `hires_poe_proto`. The rule, committed before the run: `meta_tp` is adopted
# when its support leave-one-out (5 shots, tire 4; an image leaves with its transplants)
# beats `anomaly_lr`'s by at least 1 point over the five categories and seeds 1-5, and
# `hires_poe_proto_meta` replaces `hires_poe_proto` when it beats it by as much. Each variant
# is judged against the reference named in its `probe` column.

# %% tags=["hide-input"]
meta = record("explore/meta_proto.csv")
if meta is not None:
    print("variants and their references:", LEARNER_REFERENCES)
    meta_signal = learner_round(meta)
    print("support leave-one-out:", loo_sample(meta_signal[meta_signal["variant"] == "baseline"]))
    meta_round = augmentation_round(meta_signal)
    show_round(meta_round, learner_verdicts(meta_round, margin=1.0))

# %% [markdown]
# **Query accuracy, for the record** (the rule never reads it): mean ± sample std over seeds
# of the category mean (%), MVTec AD over its four categories, MVTec 3D-AD tire alone. The
# grid's `hires_poe` rows (`results/beyond*`) are added on the same cells; the record's own
# `hires_poe_proto` is the same method recomputed in the run, so it must agree with the
# grid's `hires_poe_proto` cell by cell (checked below).

# %% tags=["hide-input"]
if meta is not None:
    display(Markdown(to_markdown(learner_accuracy(meta, grid, grid_methods))))
    ref = meta[meta["variant"] == "anomaly_lr"].groupby(["dataset", "shots", "seed"])
    ref = ref.agg(queries=("n_query", "sum"), chance=("chance", "mean")).reset_index()
    shape = ref.groupby(["dataset", "shots"]).agg(
        queries=("queries", "first"), chance=("chance", "first"), seeds=("seed", "nunique")
    )
    display(Markdown("Queries per seed (summed over categories), seeds, and chance (majority "
                     "class, % averaged over categories): "
                     + "; ".join(f"{d} {k}-shot: {int(r.queries)} queries, {int(r.seeds)} seeds, "
                                 f"chance {100 * r.chance:.1f} %" for (d, k), r in shape.iterrows())))  # fmt: skip
    same = meta[meta["variant"] == "hires_poe_proto"].merge(
        grid[grid["method"] == "hires_poe_proto"], on=["dataset", "category", "shots", "seed"]
    )
    agree = int((same["query_acc"].round(6) == same["accuracy"].round(6)).sum())
    print(f"hires_poe_proto recomputed here equals the grid's in {agree} of {len(same)} cells")

# %% [markdown]
# Per category, against the grid's `hires_poe`: query accuracy (%, mean over seeds) at one
# shot and at the largest shot count.

# %% tags=["hide-input"]
if meta is not None:
    rows = learner_rows(meta, grid, grid_methods)
    per_cat = summarize(rows)
    wide = per_cat.pivot_table(index="method", columns=["category", "shots"], values="mean")
    wide.columns = [f"{c} {n}-shot" for c, n in wide.columns]
    order = [m for m in dict.fromkeys([*meta["variant"], *grid_methods]) if m in wide.index]
    display(Markdown(to_markdown(wide.loc[order].round(1))))
    largest = per_cat[per_cat["shots"] == per_cat.groupby("category")["shots"].transform("max")]
    bars = largest.pivot(index="category", columns="method", values="mean")[order]
    spread = largest.pivot(index="category", columns="method", values="std")[order]
    fig = Figure(figsize=(10, 3.6))
    ax = fig.subplots()
    bars.plot.bar(yerr=spread, ax=ax, rot=0, capsize=2, width=0.85)
    ax.set(ylabel="query accuracy (%)", xlabel="", ylim=(0, 100),
           title="Largest shot count (MVTec AD 5, tire 4): mean and std over seeds")  # fmt: skip
    ax.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    show(fig)

# %% [markdown]
# ## The targets
#
# Issue 23 asks, on the paper's protocol (inductive, seeds 1-5), for at least 85 % on MVTec
# AD at 5 shots, 75 % at 1 shot and 65 % on tire at 4 shots (`fsad.report.LEARNING_TARGETS`;
# its 1-shot bar is above the 72 % that the results chapter's targets set for the
# training-free methods, which `hires_poe` meets). Each variant's average over categories,
# with the grid's methods on the same cells:

# %% tags=["hide-input"]
if meta is not None:
    display(Markdown(to_markdown(targets_table(rows, order, LEARNING_TARGETS))))

# %% [markdown]
# ## Speed of each step
#
# Wall seconds per (category, seed) on the machine that ran the record (one core, one torch
# thread; the other core ran a second process). *synthetic rows*: the 176 synthetic images
# made and described once per engine (cached afterwards); *paste*: cutting the support
# defects and making their transplants; *meta-training*: the 300 episodes; *cell*:
# everything of one shot count, leave-one-out included, and the 448 px engine's tables where
# no earlier run had cached them (tire's 1-shot cells). Mean over seeds.

# %% tags=["hide-input"]
if meta is not None:
    steps = {"synth_seconds": "synthetic rows", "paste_seconds": "paste",
             "meta_seconds": "meta-training", "cell_seconds": "cell"}  # fmt: skip
    one = meta[meta["variant"] == "meta_tp"]
    speed = one.groupby(["category", "shots"])[list(steps)].mean().rename(columns=steps)
    display(Markdown(to_markdown(speed.round(1))))

# %% [markdown]
# ## A second protocol: leave-one-product-out
#
# For the evaluated category, a metric is learnt from every labelled defect image of the
# other three MVTec AD categories (never the evaluated one's), then the evaluated
# category's support fits a head in that metric (`research/lopo.py`; the results chapter
# describes its learners). Accuracy (%), mean ± sample std over seeds of the category mean;
# `none` is the same head on the same rows without any transfer.

# %% tags=["hide-input"]
lopo = record("lopo/results.csv")
if lopo is not None:
    lopo_shown, lopo_shape = lopo_table(lopo)
    display(Markdown(f"Leave-one-product-out ({lopo_shape}):"))
    display(Markdown(to_markdown(lopo_shown)))

# %% [markdown]
# ## What this shows
#
# Each part of learner (b), switched off in turn, on the query record (the rule never read
# it): the points of query accuracy that the first method gains over the second, paired by
# seed (the per-seed category means subtracted), mean ± sample std over the five seeds.

# %% tags=["hide-input"]
if meta is not None:
    effect_table = seed_differences(rows, {
        "meta-training: meta_tp - scratch_tp": ("meta_tp", "scratch_tp"),
        "transplants: meta_tp - meta_no_tp": ("meta_tp", "meta_no_tp"),
        "fine-tuning: meta_tp - frozen_tp": ("meta_tp", "frozen_tp"),
        "learner b: meta_tp - anomaly_lr": ("meta_tp", "anomaly_lr"),
        "as an expert: hires_poe_proto_meta - hires_poe_proto": (
            "hires_poe_proto_meta", "hires_poe_proto"),
    })  # fmt: skip
    effect_table.index.name = "what is compared"
    display(Markdown(to_markdown(effect_table)))

# %% [markdown]
# Neither learner passes its rule, and no variant reaches the targets; the
# recommended inductive method stays `hires_poe_proto`, and neither learner becomes a
# registered method: their code stays in the research wing (`research/transplant_heads.py`,
# `research/meta_proto.py`) with their records. What the record suggests about why (the
# causes are readings of these tables, not tested separately):
#
# - **The texture meta-training teaches nothing that transfers.** Started from a random
#   projection instead (`scratch_tp`), the same fine-tuning ends close to the meta-trained
#   one (a few points either way, of the size of their spread over seeds), and so does its
#   support leave-one-out. Separating pasted textures
#   on the product's own images is a task the projection learns; real defect types differ
#   in shape, extent and what is missing, not in texture, which is the paper's own
#   limitation seen again.
# - **Fine-tuning on the support is the one part that helps**, on MVTec AD; on tire it
#   changes nothing beyond the seeds' spread.
# - **The transplants hurt both learners.** With them the projection and the refitted heads
#   are worse on the queries than without. The closeness table shows part of why: for
#   transistor's bent and cut leads and for most of screw's types, a transplant's nearest
#   real type is most often another one, and screw is where the projection loses most to
#   its ablation without transplants. A second possible cause: the transplants are pasted
#   into training images, whose backgrounds are in the engine's memory bank and so leave
#   smaller residuals than a test image's would. Even where a transplant resembles its
#   type, it copies the support image's own defect and adds no new variation of it.
# - **A learnt metric loses to a regularised linear head.** On the average over categories
#   every variant of the projection stays below `anomaly_lr` or level with it; a single
#   category at one shot can go the other way. A 64-d metric fitted on a handful of images
#   may throw away more than it learns where the logistic regression keeps all 1920
#   columns (no run varied the width). As an extra expert, the learnt metric pulls
#   `hires_poe_proto` down at the largest shot count and leaves it level at one shot.
# - **The support signal is noisy where it has few images.** The ablation without
#   transplants gains on the support leave-one-out and loses on the queries. Only the two
#   candidates named before the run could be adopted, so the noise could not pick it.
#
# The leave-one-product-out protocol, which reads the other products' real labels, helps
# little: whitening by the other products' within-type spread gains a point or two at one
# shot, within about one seed's spread, and loses about a point at three and five shots,
# against the same head without transfer; the LDA metric loses badly. A likely reading is
# that real defects of other products differ from this product's much as textures do.
