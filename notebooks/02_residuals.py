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
# # PatchCore features and residuals
#
# Everything the paper's classifiers see is computed by **PatchCore**, an anomaly detector
# that needs only normal images (paper sections 3.2 and 3.4):
#
# 1. a CNN pretrained on ImageNet describes every image as a grid of **patch features**
#    f (one vector per 8 x 8 pixel patch, each summarising its 3 x 3 neighbourhood, from two
#    depths of the network);
# 2. the patch features of all normal training images form a **memory bank**, thinned to
#    10 % by a *coreset* that keeps patches covering the whole feature space;
# 3. each patch of a new image is compared with its **nearest normal patch** m*: the
#    distance is the **anomaly map**, and its maximum the image's anomaly score;
# 4. the paper's addition: the difference vector itself, the **residual** r = f - m*
#    (its Eq. 2), is what the defect-type classifier receives.
#
# This chapter computes each quantity with `fsad.engine.ResidualEngine` and shows why the
# residual is a better input for telling defect types apart than the raw feature.

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
category: str = ""  # empty: the first category of the configuration
seed: int = 1  # coreset seed (the paper averages seeds 1-5)
n_per_type: int = 2  # defect images shown per type in the anomaly-map figure

# %%
import time

import numpy as np
import torch
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from fsad.chapter import chapter_setup, shown_path
from fsad.data import load_category, read_image, read_mask
from fsad.evaluate import default_engine_factory
from fsad.memory import flatten_patches
from fsad.viz.figures import heatmap_overlay, image_grid, overlay_mask, show
from fsad.viz.overlay import crop_box

# %% [markdown]
# ## Which data?
#
# Without `FSAD_DATA` (or with `data_root = "embedded"`) the chapter runs on the embedded
# dataset with the `ci` configuration; with real data, on the first category of the
# `quick` configuration (MVTec AD bottle).

# %%
cfg, root, dataset_root, real = chapter_setup(config, data_root)  # rules: fsad.chapter
category = category or cfg.categories[0]
data = load_category(dataset_root, cfg.dataset, category)
engine = default_engine_factory(data, cfg, seed)  # the engine the experiment grid uses
engine_config = engine.config
fc = engine_config.features
print(f"{cfg.dataset}/{category} from {shown_path(root)} (config {cfg.name})")
print(f"normal training images: {len(data.train)} (bank source: {data.bank_source})")
print(f"test images: {len(data.test)}; defect types: {data.defect_types}")
print(
    f"backbone {fc.backbone}, layers {fc.layers}, resize {fc.resize}, crop {fc.crop}, "
    f"feature dim {fc.dim}, coreset ratio {engine_config.coreset_ratio}"
)

# %% [markdown]
# ## Step 1: patch features
#
# The paper uses an ImageNet ResNet-50 and its layer 2 and layer 3 feature maps (strides 8
# and 16). Here the backbone is ImageNet **EfficientNet-Lite0** (the only pretrained CNN
# weights available offline), whose stride-8 and stride-16 maps play the same roles. Each
# map is averaged over 3 x 3 neighbourhoods (so a patch "sees" a little context), the deeper
# one is upsampled to the 28 x 28 grid of the shallower one, and both are pooled to a fixed
# dimension D and averaged: one D-dimensional vector per patch, (N, D, 28, 28) per batch.
# Features are cached on disk, so later chapters never recompute them.

# %%
start = time.perf_counter()
f_train = engine.features(data.train)
f_test = engine.features(data.test)
print(f"train features f: {tuple(f_train.shape)}  (N, D, h, w)")
print(f"test features:    {tuple(f_test.shape)}  in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Step 2: the coreset memory bank
#
# All normal patches together would make a large bank (N x 28 x 28 vectors) and a slow
# nearest-neighbour search. PatchCore keeps a **coreset**: greedily, the patch farthest from
# everything chosen so far, until 10 % are kept (on a random 128-dimensional projection, for
# speed). The kept patches cover the whole normal feature space, including rare normal
# appearances, which random sampling would miss. The seed picks the random projection and
# start points: the paper's five seeds give five banks.

# %%
start = time.perf_counter()
bank = engine.bank
patches = flatten_patches(f_train)
print(
    f"{len(patches)} normal patches -> bank of {len(bank)} ({len(bank) / len(patches):.1%}), "
    f"D = {bank.dim}, built in {time.perf_counter() - start:.1f} s"
)

# two principal directions of the normal patches; a random 10 % sample crowds the dense
# region, the coreset spreads over all of it, rare normal appearances included
gen = torch.Generator().manual_seed(0)
sub = patches[torch.randperm(len(patches), generator=gen)[:20000]]
rand = patches[torch.randperm(len(patches), generator=gen)[: len(bank)]]
mean = sub.mean(0)
_, _, v = torch.pca_lowrank(sub - mean, q=2, center=False)
p_all = ((sub - mean) @ v).numpy()
fig = Figure(figsize=(11, 4.4), layout="constrained")
axes = fig.subplots(1, 2, sharex=True, sharey=True)
for ax, pts, name in zip(
    axes, (rand, bank.features), ("random 10 % of the patches", "coreset bank (10 %)"), strict=True
):
    p_sel = ((pts - mean) @ v).numpy()
    ax.scatter(p_all[:, 0], p_all[:, 1], s=2, alpha=0.25, color="grey", label="normal patches")
    ax.scatter(p_sel[:, 0], p_sel[:, 1], s=2, color="C3", label=f"{name}: {len(pts)}")
    ax.set_xlabel("principal direction 1")
    ax.set_title(name)
    ax.legend(markerscale=5, loc="lower left", fontsize="small")
axes[0].set_ylabel("principal direction 2")
fig.suptitle(f"{category}: normal patch features, projected on two principal directions")
show(fig)

# %% [markdown]
# ## Step 3: anomaly maps
#
# For every patch of a test image, the distance to its nearest bank patch is its anomaly
# score: normal-looking patches find a close match, defective ones do not. Below, test
# images of each defect type with their anomaly map (computed on the 224 x 224 centre crop
# the backbone sees; one colour scale for all images, blue = 0, red = the largest distance
# in the test set) and, where the dataset has one, the ground-truth defect mask.

# %%
maps = engine.anomaly_maps(data.test)
vmax = float(maps.max())
panels, titles = [], []
for label in data.defect_types:
    picks = [i for i, s in enumerate(data.test) if s.label == label][:n_per_type]
    for i in picks:
        s = data.test[i]
        img = read_image(s.path)
        t, left, b, r = crop_box(*img.shape[:2], fc.resize, fc.crop, fc.framing)
        crop = img[t:b, left:r]
        heat = maps[i].numpy()
        panels += [crop, heatmap_overlay(crop, heat, alpha=0.5, vmin=0.0, vmax=vmax)]
        titles += [f"{label}", f"anomaly map (max {heat.max():.2f})"]
        if s.mask_path is not None:
            mask = read_mask(s.mask_path, img.shape[:2])[t:b, left:r]
            panels[-2] = overlay_mask(crop, mask > 0, alpha=0.35)
            titles[-2] = f"{label} (red: true defect)"
show(image_grid(panels, titles, ncols=4, suptitle=f"{category}: defects and their anomaly maps"))

# %% [markdown]
# **Detection sanity check.** The paper assumes PatchCore has already separated defective
# from normal images (its task starts after detection). The image score is the largest
# patch distance; the AUROC below measures how well it ranks defective above normal test
# images (1.0 = perfect).

# %%
scores = engine.scores(data.test).numpy()
is_defect = np.array([not s.is_good for s in data.test])
fig = Figure(figsize=(6.5, 3.6), layout="constrained")
ax = fig.add_subplot()
if (~is_defect).any():
    auroc = roc_auc_score(is_defect, scores)
    ax.hist(scores[~is_defect], bins=15, alpha=0.7, label="good test images")
    title = f"{category}: image anomaly scores, AUROC {auroc:.3f}"
else:
    title = f"{category}: image anomaly scores (no good test images)"
ax.hist(scores[is_defect], bins=15, alpha=0.7, label="defective test images")
ax.set_xlabel("image score = max patch distance to the bank")
ax.set_ylabel("images")
ax.set_title(title)
ax.legend()
show(fig)

# %% [markdown]
# ## Step 4: residuals, and why they help
#
# The residual of a patch is r = f - m*, the part of its feature that the closest normal
# patch does not explain. On normal-looking patches r is close to zero; on the defect it is
# large and points in a direction that depends on *what* is wrong, not on what the product
# looks like. A raw feature map, in contrast, is dominated by the product itself, which is
# the same in every image of a category.
#
# A simple test: describe each defective image by one vector, the average of its patches
# weighted by the anomaly map, once from raw features f and once from residuals r, and
# compare images by cosine similarity. Sorted by defect type, a good representation shows
# bright blocks on the diagonal (same type similar) and darker ones elsewhere.

# %%
defects = [i for i, s in enumerate(data.test) if not s.is_good]
labels = np.array([data.defect_types.index(data.test[i].label) for i in defects])
r_test = engine.residuals([data.test[i] for i in defects])
w = maps[defects] / maps[defects].sum(dim=(1, 2), keepdim=True)  # anomaly-map weights


def describe(x: torch.Tensor) -> torch.Tensor:
    """Anomaly-weighted mean over patches, L2-normalised: (N, D, h, w) -> (N, D)."""
    v = (x * w[:, None]).sum(dim=(2, 3))
    return torch.nn.functional.normalize(v, dim=1)


def separation(sim: np.ndarray) -> float:
    """Mean similarity within a type minus mean similarity across types."""
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


sims = {
    name: (describe(x) @ describe(x).T).numpy()
    for name, x in (("raw features f", f_test[defects]), ("residuals r = f - m*", r_test))
}
fig = Figure(figsize=(10, 4.6), layout="constrained")
axes = fig.subplots(1, 2)
edges = np.flatnonzero(np.diff(labels)) + 0.5
for ax, (name, sim) in zip(axes, sims.items(), strict=True):
    im = ax.imshow(sim, cmap="viridis")
    for e in edges:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    ax.set_title(f"{name}\nwithin - across type similarity: {separation(sim):+.3f}")
    ticks = [np.mean(np.flatnonzero(labels == k)) for k in range(len(data.defect_types))]
    ax.set_xticks(ticks, data.defect_types, rotation=30, ha="right")
    ax.set_yticks(ticks, data.defect_types)
    fig.colorbar(im, ax=ax, shrink=0.8, label="cosine similarity")
fig.suptitle(f"{category}: similarity of defective images, sorted by defect type")
show(fig)

# %%
gain = separation(sims["residuals r = f - m*"]) - separation(sims["raw features f"])
verdict = "separate the defect types better" if gain > 0 else "do not separate the types better"
display(
    Markdown(
        f"On **{category}**, residuals {verdict} than raw features in this simple test "
        f"(within-minus-across similarity {gain:+.3f}). Chapter 5 measures the same question "
        "with the full classifier (the paper's Table 5)."
    )
)
