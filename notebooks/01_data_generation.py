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
# # Data generation: synthetic defect classes
#
# A few-shot classifier is normally *pretrained* on many classes and then adapted to new
# classes from a few examples. In a factory there are no "many classes" of defects to
# pretrain on: the few real defect images of each type are all we have, and they are the
# test. The paper (section 3.5) therefore **invents defect classes**: it pastes a texture
# onto a normal image of the product, under a random blob-shaped mask that stays on the
# product, and calls the texture's name the defect class. Pretraining on this *proxy task*
# teaches the classifier to tell one kind of "something odd on the part" from another
# before it ever sees a real defect.
#
# This chapter builds such synthetic defects step by step, with the functions of
# `fsad.synth`:
#
# 1. a **foreground mask** of the normal image (GrabCut or a flood fill from the corners),
#    so defects land on the product and not on the background;
# 2. a **Perlin-noise mask** (random smooth blobs), intersected with the foreground: the
#    paper's defect mask M_a; or, in the paper's Appendix C variant, a **regular polygon**;
# 3. a **texture** (from the DTD texture dataset, or fsad's procedural texture bank);
# 4. the **blend** I_syn = I (1 - M) + (1 - beta) T M + beta I M, with beta drawn from
#    U[0, 0.5): inside the mask the texture T shows through with opacity 1 - beta.

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
categories: list = []  # dataset/category or category names; empty: the default figure rows
seed: int = 0  # draws the source images, masks, beta and textures
n_textures_shown: int = 12  # texture classes shown in the texture gallery

# %%
import time

import numpy as np

from fsad.cache import DiskCache
from fsad.chapter import chapter_setup, shown_path
from fsad.data import load_category, read_image
from fsad.evaluate import resolve_dataset_root, resolve_textures
from fsad.synth import (
    PseudoClassDataset,
    TextureSource,
    blend,
    foreground_mask,
    method_for,
    perlin_mask,
    perlin_noise,
    polygon_mask,
)
from fsad.synth.masks import spot_mask, stroke_mask
from fsad.synth.pseudo import resize_square
from fsad.utils import progress
from fsad.viz.figures import image_grid, overlay_mask, show
from fsad.viz.synth import plot_synthesis

# %% [markdown]
# ## Which data?
#
# Without `FSAD_DATA` this notebook runs on fsad's small **embedded dataset**: procedurally
# drawn products (a washer, a pill, a fabric, tiles) in the MVTec AD folder layout, made so
# the book builds anywhere without downloads. With `FSAD_DATA` pointing at the real images
# it uses MVTec AD bottle, transistor, screw and MVTec 3D-AD tire, the rows of the paper's
# Figure 4, and the DTD textures next to them.

# %%
cfg, root, _, real = chapter_setup(config, data_root)  # rules: fsad.chapter
embedded = not real
if not categories:
    categories = (
        ["washer", "pill", "fabric", "tiles"]
        if embedded
        else ["mvtec_ad/bottle", "mvtec_ad/transistor", "mvtec_ad/screw", "mvtec_3d/tire"]
    )
rows = []
for name in categories:
    dataset, _, category = name.rpartition("/")
    dataset = dataset or cfg.dataset
    rows.append(load_category(resolve_dataset_root(root, dataset), dataset, category))
textures_root = resolve_textures(cfg, resolve_dataset_root(root, cfg.dataset))
textures = (
    TextureSource.from_dtd(textures_root) if textures_root else TextureSource.procedural(seed=seed)
)
cache = DiskCache()
print(f"data: {shown_path(root)} ({'embedded' if embedded else 'real'}), config: {cfg.name}")
for data in rows:
    print(
        f"  {data.dataset}/{data.name}: {len(data.train)} normal images, "
        f"defect types {data.defect_types}"
    )
print(
    f"textures: {'DTD ' + shown_path(textures_root) if textures_root else 'procedural bank'}, "
    f"{len(textures)} classes"
)

# %% [markdown]
# ## Step 1: the foreground mask
#
# Industrial photos mostly show one product on a plain background. The authors segment it
# with classic algorithms, chosen per category: a **flood fill** from the image corners
# (everything the fill reaches is background) for products on a uniform background such as
# bottle, screw or transistor; **GrabCut** for cable and hazelnut; and no mask at all
# (the whole image) for textures such as carpet or tile, which fill the frame. For a
# product it does not know, fsad picks the flood fill when the image border is uniform and
# the whole image otherwise.

# %%
SIZE = 256  # the paper resizes normal images to 256 x 256 before generating defects
normals = [resize_square(read_image(d.train[0].path), SIZE) for d in rows]
fgs = [foreground_mask(img, d.name, d.dataset) for img, d in zip(normals, rows, strict=True)]
panels, titles = [], []
for img, fg, d in zip(normals, fgs, rows, strict=True):
    panels += [img, overlay_mask(img, ~fg, color=(40, 90, 255), alpha=0.55)]
    titles += [f"{d.name}: normal image", f"{method_for(d.name, d.dataset)} (blue = background)"]
show(image_grid(panels, titles, ncols=4, suptitle="Foreground masks of normal images"))

# %% [markdown]
# ## Step 2: Perlin-noise masks
#
# Real defects are irregular blobs, so the mask comes from **Perlin noise**: smooth random
# noise whose lattice has 2^a x 2^b cells (a, b drawn from 0..5, so blobs range from one
# covering the image to many small ones). Thresholding the noise at 0.35 gives a binary
# mask; it is redrawn until it covers 10-40 % of the image, then intersected with the
# foreground. Below: noise at three scales, its thresholded mask, and the final mask M_a.

# %%
rng = np.random.default_rng(seed)
scales = [(2, 2), (4, 8), (16, 16)]
noise = [perlin_noise((SIZE, SIZE), s, rng) for s in scales]
panels = noise + [n > 0.35 for n in noise]
titles = [f"noise, {s[0]}x{s[1]} cells" for s in scales] + [
    f"threshold 0.35: {float((n > 0.35).mean()):.0%} of image" for n in noise
]
show(
    image_grid(
        panels, titles, ncols=3, suptitle="Perlin noise and its thresholded masks", cmap="viridis"
    )
)

# %%
panels, titles = [], []
for img, fg, d in zip(normals, fgs, rows, strict=True):
    raw, mask = perlin_mask((SIZE, SIZE), np.random.default_rng([seed, 1]), fg)
    panels += [raw, mask, overlay_mask(img, mask)]
    titles += [
        f"{d.name}: raw mask {raw.mean():.0%}",
        f"on foreground (M_a) {mask.mean():.0%}",
        "M_a on the image",
    ]
show(image_grid(panels, titles, ncols=3, suptitle="Perlin masks intersected with the foreground"))

# %% [markdown]
# **Polygon masks (Appendix C).** The paper also tried regular 3-, 4- and 5-gons of diameter
# min(H, W)/5 at a random position and rotation, making each (texture, polygon) pair a
# class. They gave worse accuracy than Perlin blobs (the paper's Appendix C), but fsad
# offers them (`generator="polygon"`) for the ablations of chapter 5.

# %%
img, fg, d = normals[0], fgs[0], rows[0]
panels, titles = [], []
for sides in (3, 4, 5):
    raw, mask = polygon_mask((SIZE, SIZE), np.random.default_rng([seed, sides]), sides, fg)
    panels.append(overlay_mask(img, mask))
    titles.append(f"{sides}-gon on {d.name}")
show(image_grid(panels, titles, ncols=3, suptitle="Regular polygon masks (Appendix C)"))

# %% [markdown]
# **Strokes and spots (not in the paper).** Real defect types differ in extent and shape as
# much as in appearance: a thin scratch, a small hole, a large broken region. With
# `generator="shapes"`, the texture classes take their masks in turn from a large Perlin
# blob, a thin bent stroke (`stroke_mask`) or a small ellipse (`spot_mask`), so the
# synthetic classes differ in shape too. The book uses them twice: as synthetic tasks that
# score a classifier without labels (round 12, in the appendix *Selection rounds*) and as
# pretraining classes of the paper's method (`contrastive_shapes`).

# %%
panels, titles = [], []
for name, make in (("stroke", stroke_mask), ("spot", spot_mask)):
    for k in range(3):
        raw, mask = make((SIZE, SIZE), np.random.default_rng([seed, k, len(name)]), fg)
        panels.append(overlay_mask(img, mask))
        titles.append(f"{name}: {mask.mean():.1%} of the image")
show(
    image_grid(
        panels, titles, ncols=3, suptitle=f"Stroke and spot masks on {d.name} (generator 'shapes')"
    )
)

# %% [markdown]
# ## Step 3: textures
#
# Each texture class becomes one synthetic defect class. The paper uses the first image of
# each of DTD's 47 texture classes, *without* augmentation ("we should keep the generation
# method naive to preserve the original texture"). With no DTD folder, fsad draws
# textures from its procedural bank (stripes, dots, cracks, weaves, ...).

# %%
shown = textures.classes[:n_textures_shown]
show(
    image_grid(
        [resize_square(np.asarray(textures.image(c)), 128) for c in shown],
        shown,
        ncols=6,
        panel_inches=1.8,
        suptitle=f"Texture classes ({len(textures)} in all)",
    )
)

# %% [markdown]
# ## Step 4: blending
#
# Inside the mask the texture replaces the image with opacity 1 - beta; beta is drawn
# from U[0, 0.5), so the texture always dominates but some of the product shows through.
# A grey product (screw, metal nut) gets a grey texture: colour alone would otherwise give
# the class away. Below, the same mask and texture at three values of beta.

# %%
raw, mask = perlin_mask((SIZE, SIZE), np.random.default_rng([seed, 2]), fgs[0])
tex = textures.image(textures.classes[0])
panels = [blend(normals[0], tex, mask, beta) for beta in (0.0, 0.25, 0.49)]
show(
    image_grid(
        panels,
        [f"beta = {b}" for b in (0.0, 0.25, 0.49)],
        ncols=3,
        suptitle=f"Blending texture '{textures.classes[0]}' into {rows[0].name}",
    )
)

# %% [markdown]
# ## The whole pipeline: the paper's Figure 4
#
# `PseudoClassDataset` chains the four steps for one category: item i pastes texture class
# i // n_sources onto source normal image i % n_sources, deterministically from
# (seed, i). Each row below shows, for one product: the normal image, its foreground,
# the Perlin mask (grey: raw noise off the product, white: M_a), the texture and the
# synthetic defect.

# %%
datasets = [PseudoClassDataset(d, textures, seed=seed, cache=cache, n_per_class=4) for d in rows]
pick = np.random.default_rng([seed, 4]).choice(len(textures), size=len(rows))
fig4 = plot_synthesis(
    [(d.name, ds, int(k) * ds.n_sources) for d, ds, k in zip(rows, datasets, pick, strict=True)]
)
fig4.suptitle("Synthetic defect generation (the paper's Figure 4)", y=1.01)
show(fig4)

# %% [markdown]
# ## A pseudo-class dataset
#
# For pretraining, every texture is pasted on several normal images, so each synthetic
# class has several examples that share the texture but differ in product image, mask shape
# and blend. These examples are what the pretraining episodes of chapter 4 draw from. Below,
# four classes of the first product, four examples each; the timing shows that generation
# is cheap enough to stay lazy (items are rendered on access, never stored).

# %%
ds = datasets[0]
classes_shown = list(range(min(4, len(ds.classes))))
start = time.perf_counter()
items = [
    ds[c * ds.n_sources + j]
    for c in progress(classes_shown, desc="render")
    for j in range(ds.n_sources)
]
elapsed = time.perf_counter() - start
print(
    f"{rows[0].name}: {len(ds.classes)} classes x {ds.n_sources} source images = {len(ds)} "
    f"synthetic images; rendered {len(items)} in {elapsed:.2f} s"
)
show(
    image_grid(
        [s.image for s in items],
        [s.class_name for s in items],
        ncols=ds.n_sources,
        suptitle=f"Synthetic classes of {rows[0].name} (one row per texture class)",
    )
)

# %% [markdown]
# **What to take away.** The synthetic classes differ in *texture*, while real defect
# types differ in shape, size, position and texture at once; the paper itself notes (its
# Limitations) that this gap hurts from four shots on. Chapter 4 measures how much the
# pretraining on these classes helps the real task, and chapter 7 revisits the question.

# %% [markdown]
# ## Defect transplants: real defects on other backgrounds
#
# Textures under random masks differ from real defects in shape, size and look (the
# paper's own limitation, above). The few real support images carry exactly what the
# textures lack, and `fsad.synth.transplant` multiplies them: each support image's defect
# is **cut** out and **pasted** into normal training images of the same product, so one
# labelled example becomes many labelled ones on other backgrounds.
#
# - **The cut** uses no ground truth: the support image's anomaly map from the category's
#   residual engine (28 x 28 cells on the 224 px crop) is placed back on the image's
#   pixels (`map_to_image`, through the engine's centre crop or letterbox), thresholded at
#   `max(0.5 x peak, normal level)`, the normal level being the 99th percentile of normal
#   images' scores (fixed in advance), and refined by GrabCut, initialised from the
#   thresholded map and kept on the product's foreground.
# - **The paste** draws a scale (0.8-1.25), a rotation (+-30 degrees), a brightness gain
#   (0.9-1.1) and 16 places on the normal image's foreground where at least 95 % of the
#   defect lies on the product; it keeps the place whose surroundings look most like the
#   defect's surroundings in the support image (so a defect on a rim lands on a rim), and
#   blends by Poisson editing (`cv2.seamlessClone`) or a feathered alpha mask; every draw
#   is seeded. The transplant carries the support's label and the pasted mask.
#
# Below, one support image per defect type (MVTec AD bottle on the real data, the embedded
# washer otherwise): the support, its cut (red), and three transplants into normal images
# (Poisson; the pasted mask outlined in yellow).

# %%
from fsad.blocks import Inputs
from fsad.data import few_shot_split
from fsad.evaluate import default_engine_factory
from fsad.synth.transplant import cut_support, normal_level, transplants

tp_dataset, tp_name = ("mvtec_ad", "bottle") if real else (cfg.dataset, "washer")
tp_data = load_category(resolve_dataset_root(root, tp_dataset), tp_dataset, tp_name)
start = time.perf_counter()
tp_engine = default_engine_factory(tp_data, cfg, seed=1)  # the grid's engine, seed 1
tp_split = few_shot_split(tp_data.test, 1)  # one support image per defect type
tp_normals = [read_image(s.path) for s in tp_data.train[:4]]
tp_fgs = [foreground_mask(img, tp_name, tp_dataset) for img in tp_normals]
tp_level = normal_level(Inputs(tp_engine, images=tp_normals).anomaly_maps())
tp_images = [read_image(s.path) for s in tp_split.support]
tp_cuts = [
    cut_support(
        img,
        amap.numpy(),
        tp_split.classes[k],
        tp_engine.config.features,
        tp_level,
        foreground_mask(img, tp_name, tp_dataset),
    )
    for img, amap, k in zip(
        tp_images, tp_engine.anomaly_maps(tp_split.support), tp_split.support_labels, strict=True
    )
]
tp_made = transplants(tp_cuts, tp_normals, 3, seed, tp_fgs)
print(
    f"{tp_name}: normal level {tp_level:.1f}; {len(tp_cuts)} cuts, {len(tp_made)} transplants "
    f"in {time.perf_counter() - start:.1f} s"
)


# %%
def _outline(image: np.ndarray, mask: np.ndarray, color=(255, 230, 0)) -> np.ndarray:
    """The image with the mask's contour drawn on it."""
    import cv2

    out = image.copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, max(1, image.shape[0] // 200))
    return out


panels, titles = [], []
for i, (img, cut) in enumerate(zip(tp_images, tp_cuts, strict=True)):
    full = np.zeros(img.shape[:2], bool)
    top, left, bottom, right = cut.box
    full[top:bottom, left:right] = cut.mask
    panels += [img, overlay_mask(img, full, alpha=0.5)]
    titles += [f"support: {cut.label}", f"cut: {full.mean():.1%} of the image"]
    for t in tp_made[3 * i : 3 * i + 3]:
        panels.append(_outline(t.image, t.mask))
        titles.append(f"x{t.params['scale']:.2f}, {t.params['angle']:+.0f} deg")
show(
    image_grid(
        panels, titles, ncols=5, suptitle=f"Defect transplants on {tp_name} (one row per type)"
    )
)

# %% [markdown]
# **How close are they?** `scripts/transplant_closeness.py` (5 shots, seed 1) compares the
# transplants of the 5 support images per type with the held-out real defects of the same
# category: anomaly-map statistics (peak score, share of map cells above the normal level)
# and the cosine distance of the anomaly-guided descriptor rows to the real defects'
# centroid of the *same* type (`dist_same`) versus the *other* types (`dist_other`);
# `nn_type_acc` is how often a row's nearest real centroid is its own type. The real
# support images give the reference (what a real defect of the type scores), the paste
# targets without a defect the floor. The query labels serve this table only;
# `dist_support_loo` (distance to the *other* support images of the type) needs none, and
# is the column a method may choose on. In the committed run, alpha-blended transplants of
# bottle come about as close to the real defects of their type as the real supports do,
# and Poisson-blended ones less close (Poisson editing darkens a broken rim to its new
# surroundings); on transistor, whose types are mostly missing or moved parts (a bent or
# cut lead, a misplaced part), pasted pieces stay far from the real defects.

# %%
from pathlib import Path

import pandas as pd

from fsad.errors import FsadError
from fsad.report import find_results_dir

try:
    closeness_csv = find_results_dir() / "transplants" / "closeness.csv"
except FsadError:  # run outside the repository: no committed results to show
    closeness_csv = Path("results/transplants/closeness.csv")
if closeness_csv.is_file():
    closeness = pd.read_csv(closeness_csv)
    shown_cols = ["category", "source", "defect_type", "n", "peak_mean", "real_peak_mean"]
    shown_cols += ["area_mean", "real_area_mean", "dist_same", "dist_other", "nn_type_acc"]
    print(closeness[shown_cols].round(3).to_string(index=False))
else:
    print(f"no {closeness_csv} yet: run scripts/transplant_closeness.py on the real data")
