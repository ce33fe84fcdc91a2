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
# # The vanilla baseline: RelationNet on residuals
#
# The paper's first few-shot classifier (section 3.3, Appendix B) adapts **RelationNet**
# (Sung et al., 2018). A RelationNet does not learn a fixed set of classes; it learns a
# *comparison*: given a query and one support example, it outputs a relation score in
# [0, 1], "how likely are these two the same class?". A query is assigned to the class
# whose support examples it relates to best, so new classes need no new output layer.
#
# The paper's changes to the original: the inputs are PatchCore **residual maps**
# (chapter 2) instead of images; support and query maps are **concatenated on the channel
# axis** and compared by a small convolutional network; and the loss is a **weighted binary
# cross-entropy** instead of the mean squared error, because in a C-way episode each query
# has one matching class and C - 1 non-matching ones: positives are weighted C - 1 so both
# kinds count equally (the paper's Eq. 1).
#
# Training has two stages: **pretraining** on the synthetic texture classes of chapter 1
# (episodes of 10 pseudo classes, stopped as soon as an episode's accuracy exceeds 0.4), then
# **fine-tuning** on the real n-shot support (one support image per class as the
# "support", the other n - 1 as queries, 45 passes).

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
category: str = ""  # empty: the first category of the configuration
shots: int = 2  # n, support images per defect type
seed: int = 1  # coreset seed, synthetic draws and network initialisation
max_episodes: int = 100  # pretraining episode cap (paper: 1000; small for a quick book)
n_per_class: int = 4  # normal images per synthetic class (fsad default 16)

# %%

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from matplotlib.figure import Figure

from fsad.chapter import chapter_setup
from fsad.data import few_shot_split, load_category
from fsad.evaluate import build_task, default_engine_factory, resolve_textures
from fsad.methods import get_method
from fsad.models import RelationNet, weighted_bce
from fsad.report import paper_dir
from fsad.viz.figures import show
from fsad.viz.results import confusion_matrix_figure

# %% [markdown]
# ## The task
#
# The paper's protocol (section 4.1.3): for each defect type, the first n images (by file
# name) form the support set; every other defective image of the category is a query.

# %%
cfg, root, dataset_root, real = chapter_setup(config, data_root)  # rules: fsad.chapter
category = category or cfg.categories[0]
data = load_category(dataset_root, cfg.dataset, category)
split = few_shot_split(data.test, shots)
engine = default_engine_factory(data, cfg, seed)
options = {
    **cfg.method_options("relationnet"),
    "max_episodes": max_episodes,
    "n_per_class": n_per_class,
}
task = build_task(
    cfg, data, split, seed, engine, "relationnet", resolve_textures(cfg, dataset_root)
)
task.options = options
counts = pd.Series(split.query_labels).value_counts().sort_index()
display(
    pd.DataFrame(
        {
            "defect type": split.classes,
            "support": shots,
            "queries": [int(counts.get(i, 0)) for i in range(split.n_classes)],
        }
    )
    .set_index("defect type")
    .T
)
print(
    f"{category}: {split.n_classes}-way {shots}-shot, {len(split.query)} queries, "
    f"chance (majority class) {split.chance:.1%}"
)

# %% [markdown]
# ## The relation module
#
# For a support map s and a query map q (each D x 28 x 28), the network sees their
# concatenation (2D x 28 x 28): two 1 x 1 convolutions (2D -> 512 -> 128 channels, with
# batch normalisation and ReLU) compare the two residuals patch by patch, a linear layer
# flattens the grid into 128 numbers and a last one outputs the relation logit.

# %%
r_support = engine.residuals(split.support)
model = RelationNet(r_support.shape[1], tuple(r_support.shape[2:]))
print(model)
print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")

# %% [markdown]
# ## The weighted binary cross-entropy
#
# Each query is paired with all C classes; the targets are 1 for its own class and 0 for
# the others. With C = 5, an untrained model that says 0.5 everywhere and a lazy model that
# says "different" (0) everywhere would both look fine under a plain BCE dominated by
# negatives. Weighting positives by C - 1 makes the lazy answer expensive:

# %%
C = 5
targets = torch.zeros(4, C)
targets[torch.arange(4), torch.tensor([0, 1, 2, 3])] = 1.0
cases = {
    "perfect (right class high)": targets * 8 - 4,
    "uncertain (0.5 everywhere)": torch.zeros(4, C),
    "lazy (always 'different')": torch.full((4, C), -4.0),
}
rows = []
for name, logits in cases.items():
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    rows.append(
        {
            "prediction": name,
            "plain BCE": float(plain),
            "weighted BCE (Eq. 1)": float(weighted_bce(logits, targets, C)),
        }
    )
display(pd.DataFrame(rows).set_index("prediction").style.format("{:.3f}"))

# %% [markdown]
# ## Pretraining, fine-tuning and prediction
#
# `fsad.methods.get_method("relationnet")` runs the whole recipe on the task: it pretrains
# on the synthetic pseudo classes (cached per category and seed, so another shot count
# reuses it), fine-tunes on the support set and scores every query against every class as
# the mean relation to that class's support images. The method never sees the query
# labels: the task carries none, and we score the predictions here.
#
# For a quick book the pretraining is capped at `max_episodes` (the paper: 1000).

# %%
prediction = get_method("relationnet")(task)
info = prediction.info
pre = info.get("pretrain", {})
print(
    f"pretraining: {pre.get('episodes')} episodes, stop rule fired: {pre.get('stopped')}, "
    f"last episode accuracy {pre.get('final_accuracy')}, cached: {pre.get('cached')}"
)
print(
    f"fine-tuning: {info['finetune']['epochs']} passes, {info['finetune']['steps']} steps; "
    f"total {info['seconds']} s"
)
accuracy = float(np.mean(prediction.labels == split.query_labels))
display(
    Markdown(
        f"**Accuracy on {len(split.query)} queries: {accuracy:.1%}** (chance: {split.chance:.1%})"
    )
)

# %% [markdown]
# **Relation scores.** Each row is a query (sorted by its true type), each column a class;
# a good model lights up the block diagonal.

# %%
order = np.argsort(split.query_labels, kind="stable")
fig = Figure(figsize=(5.5, 5), layout="constrained")
ax = fig.add_subplot()
im = ax.imshow(prediction.scores[order], aspect="auto", cmap="magma")
ax.set_xticks(range(split.n_classes), split.classes, rotation=30, ha="right")
edges = np.flatnonzero(np.diff(split.query_labels[order])) + 0.5
for e in edges:
    ax.axhline(e, color="white", lw=0.8)
ax.set_yticks(
    [np.mean(np.flatnonzero(split.query_labels[order] == k)) for k in range(split.n_classes)],
    split.classes,
)
ax.set_xlabel("class (support)")
ax.set_ylabel("query, by true type")
ax.set_title(f"{category}: relation scores, {shots}-shot")
fig.colorbar(im, ax=ax, label="mean relation score")
show(fig)

# %%
preds = pd.DataFrame(
    {
        "true_label": [split.classes[i] for i in split.query_labels],
        "predicted_label": [split.classes[i] for i in prediction.labels],
    }
)
show(
    confusion_matrix_figure(
        preds, split.classes, title=f"{category}: RelationNet baseline, {shots}-shot"
    )
)

# %% [markdown]
# How does this compare with the paper's contrastive classifier? The paper's averages over
# 14 MVTec AD categories at 2 shots (Table 4, read from `results/paper/`):

# %%
paper = pd.read_csv(paper_dir() / "paper_averages.csv")
t4 = paper[(paper["source_table"] == "Table 4")].set_index("method")["accuracy"]
display(
    Markdown(
        f"RelationNet baseline {t4['relationnet']:.2f} %, contrastive classifier "
        f"{t4['contrastive']:.2f} %. Chapter 4 builds the contrastive classifier; the results "
        "chapter compares both on the real categories."
    )
)
