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
# # Residual representations: t-SNE and confusion matrices
#
# Does the contrastive encoder really organise defects by type? The paper answers with
# t-SNE plots of the query residuals of two categories at 2 shots, **before** the encoder
# (the residual maps themselves) and **after** it (the 128-dimensional embeddings), its
# Figures 7 and 8. t-SNE places points in 2-D so that neighbours in the high-dimensional
# space stay neighbours; if the encoder works, the defect types should form tighter,
# better separated groups after it.
#
# The second half shows **confusion matrices**: which defect types get mistaken for which,
# pooled over the query images of a small experiment grid, for the vanilla baseline and the
# contrastive classifier.

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
categories: list = []  # empty: the categories of the configuration (t-SNE: the first two)
shots: int = 2  # n, support images per defect type (the paper's figures: 2)
seeds: list = [1]  # seeds pooled in the confusion matrices
max_episodes: int = 100  # pretraining episode cap (paper: 1000; small for a quick book)
n_per_class: int = 4  # normal images per synthetic class (fsad default 16)
confusion_methods: list = ["contrastive"]  # methods of the confusion-matrix grid

# %%
import tempfile
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from fsad.cache import DiskCache
from fsad.chapter import chapter_setup, shown_path
from fsad.data import few_shot_split, load_category
from fsad.evaluate import (
    default_engine_factory,
    read_predictions,
    resolve_textures,
    run_grid,
)
from fsad.models import ContrastiveEncoder
from fsad.synth import PseudoClassDataset, TextureSource
from fsad.synth.pool import synthetic_residual_pool
from fsad.train import PretrainConfig, finetune_contrastive, finetune_epochs, pretrain
from fsad.utils import seed_everything
from fsad.viz.figures import show
from fsad.viz.results import confusion_matrix_figure

# %%
cfg, root, dataset_root, real = chapter_setup(config, data_root)  # rules: fsad.chapter
categories = categories or list(cfg.categories)
textures_root = resolve_textures(cfg, dataset_root)
textures = (
    TextureSource.from_dtd(textures_root) if textures_root else TextureSource.procedural(seed=0)
)
print(f"data {shown_path(root)}; categories {categories}; {shots}-shot")

# %% [markdown]
# ## Training the encoder
#
# For each category: pretrain the contrastive encoder on the synthetic classes, fine-tune
# it on the n-shot support (chapter 4), then collect, for every query image, its residual
# map (the encoder's input) and its embedding (the encoder's output).


# %%
def encode_category(category: str, seed: int) -> dict[str, object]:
    """Residual maps and embeddings of the queries of one category after training."""
    data = load_category(dataset_root, cfg.dataset, category)
    split = few_shot_split(data.test, shots)
    engine = default_engine_factory(data, cfg, seed)
    support, query = engine.residuals(split.support), engine.residuals(split.query)
    seed_everything(seed)
    model = ContrastiveEncoder(support.shape[1], tuple(support.shape[2:]))
    pseudo = PseudoClassDataset(
        data, textures, seed=seed, n_per_class=n_per_class, cache=DiskCache()
    )
    pool = synthetic_residual_pool(engine, pseudo, DiskCache(), dtype=torch.float16)
    pretrain(
        model, pool["residuals"], pool["labels"], seed, PretrainConfig(max_episodes=max_episodes)
    )
    finetune_contrastive(model, support, split.support_labels, finetune_epochs(shots))
    model.eval()
    with torch.no_grad():
        embeddings = model(query).numpy()
    return {"split": split, "before": query.flatten(1).numpy(), "after": embeddings}


encoded = {c: encode_category(c, seeds[0]) for c in categories[:2]}

# %% [markdown]
# ## t-SNE before and after the contrastive encoder (Figures 7 and 8)
#
# Left: query residual maps, flattened (D x 28 x 28 numbers each). Right: their embeddings.
# Colours are the true defect types (the encoder never saw these queries' labels). The
# *silhouette* score in each title summarises the grouping: +1 = tight, well separated
# groups, 0 = overlapping, negative = mixed up.

# %%
from sklearn.metrics import silhouette_score  # noqa: E402

for category, enc in encoded.items():
    split = enc["split"]
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, title in zip(
        axes,
        ("before", "after"),
        ("residual maps (encoder input)", "contrastive embeddings"),
        strict=True,
    ):
        x = enc[key]
        perplexity = float(min(30, max(5, (len(x) - 1) // 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
            x
        )
        sil = silhouette_score(x, split.query_labels, metric="cosine")
        for k, name in enumerate(split.classes):
            m = split.query_labels == k
            ax.scatter(xy[m, 0], xy[m, 1], s=28, label=name, color=f"C{k}")
        ax.set_title(f"{title}\nsilhouette (cosine) {sil:+.2f}")
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    axes[1].legend(title="defect type", fontsize="small", loc="best")
    fig.suptitle(f"{category}, {shots}-shot: query representations before and after the encoder")
    show(fig)

# %% [markdown]
# ## Confusion matrices
#
# A small grid with `fsad.evaluate.run_grid` (the engine of `fsad run`) for the methods in
# `confusion_methods` (default: the contrastive classifier; chapter 3 shows the RelationNet
# baseline's), on every category, pooled over the seeds. Rows are the true types,
# normalised so each row sums to 1 (the diagonal is each type's recall).

# %%
small = {"max_episodes": max_episodes, "n_per_class": n_per_class}
grid = cfg.replace(
    categories=categories,
    methods=["relationnet", "contrastive"],
    shots=[shots],
    seeds=seeds,
    options={m: small for m in ("relationnet", "contrastive")},
)
out = Path(tempfile.mkdtemp(prefix="fsad-confusion-"))
result = run_grid(grid, root, out)
preds = read_predictions(out)
for category in categories:
    classes = load_category(dataset_root, cfg.dataset, category).defect_types
    figs = []
    for method in confusion_methods:
        sel = preds[(preds["category"] == category) & (preds["method"] == method)]
        acc = float(np.mean(sel["true_label"] == sel["predicted_label"]))
        figs.append(
            confusion_matrix_figure(
                sel, classes, title=f"{category}: {method}, {shots}-shot\naccuracy {acc:.1%}"
            )
        )
    for fig in figs:
        show(fig)
