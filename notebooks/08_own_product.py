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
# # Use it on your own product
#
# An inspection engineer has three things: a folder of **normal images** of the product, a
# folder per **defect type** with a few examples each, and **new images** to sort. No
# notebook, no MVTec layout, no training script: `fsad` fits a model from the folders and
# classifies new images, from Python or from the command line:
#
# ```
# fsad fit --normal normal/ --support support/ --out model/
# fsad classify new/ --model model/ --out verdicts/ --explain
# ```
#
# `fit` builds the PatchCore memory banks of the normal images (chapter 2), a
# normal-vs-defect **threshold** on the anomaly score (a high quantile of the scores of normal
# images left out of the bank, so it reflects unseen normals), and the defect-type classifier
# the last round picked (`hires_lite0_poe_proto_rot4_gated_fixed_light`: anomaly-guided
# descriptors of a 224 and a 448 px engine and rotated zoom views through EfficientNet-Lite0,
# one logistic regression and one prototype expert per block group; the 448 px engine sees
# every image at the product's scale, the longest side of its normal images filling its
# square; chapter 7's `hires_poe_proto` adds zoom views through Lite2, which the appendix's
# speed round dropped as not worth their cost). The head is fitted on every support image in
# 4 poses, unless a *pose test* of the support finds that the product holds a pose (its
# support images look more anomalous turned than as shot; 7 or more support images are
# needed to find that), then on the support as shot: the results chapter's *Support images
# in four poses* shows what the poses cost where the camera and light never turn, as on
# MVTec. Every image is first seen with its own light undone (its gamma, gain and gradient,
# estimated from its pixels against the normals) where a *light test* of the support finds
# that the product's light varies (undone, its support images look more normal than as
# shot, again with 7 or more support images). `fit` prints both tests' verdicts. All of it
# is computed by **the same code as the grid**
# (`fsad run`):
# a model fitted on a category's files gives every query the grid's prediction
# (`tests/test_inspector_grid.py` checks it on bottle, whose light holds; the undone path is
# checked on a synthetic product whose light varies, `tests/test_light_test.py`).
# `residual_proto` is the fast option.
# `fit` also says **how far to trust it**, from the support images alone: each one is
# classified by the model fitted on the others (leave-one-out). `classify` gives every image
# its anomaly score, whether it is normal and, if not, its most likely defect type with the
# probability of every type, a low-confidence flag and a heat map over the whole image. This
# chapter walks through it with the Python API, `fsad.inspector.Inspector`, which follows
# scikit-learn: settings in the constructor, `fit(normal, support)`, `predict` and
# `predict_proba`.

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
category: str = ""  # empty: the first category of the configuration
shots: int = 5  # example images per defect type in the support folder
method: str = (
    "hires_lite0_poe_proto_rot4_gated_fixed_light"  # fsad.inspector.METHODS; residual_proto: fast
)
folds: int = 3  # leave-out folds of the threshold estimate (fsad default 10)
n_overlays: int = 8  # heat-map overlays shown

# %%
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from sklearn.metrics import classification_report, roc_auc_score

from fsad.chapter import chapter_setup
from fsad.data import few_shot_split, load_category
from fsad.inspector import Inspector, trust_text
from fsad.report import find_results_dir
from fsad.viz.figures import image_grid, show

# %% [markdown]
# ## The engineer's folders
#
# We build them from a category of the dataset: the normal training images become
# `normal/`, the first `shots` test images of each defect type become `support/<type>/`,
# and every other test image, **good ones included**, goes into `new/`, shuffled under
# neutral names. (Links, not copies: nothing is duplicated.)

# %%
cfg, root, dataset_root, real = chapter_setup(config, data_root)  # rules: fsad.chapter
category = category or cfg.categories[0]
data = load_category(dataset_root, cfg.dataset, category)
split = few_shot_split(data.test, shots)
work = Path(tempfile.mkdtemp(prefix="fsad-own-product-"))
(work / "normal").mkdir()
for k, s in enumerate(data.train):
    (work / "normal" / f"{k:04d}{s.path.suffix}").symlink_to(s.path)
for s in split.support:
    folder = work / "support" / s.label
    folder.mkdir(parents=True, exist_ok=True)
    (folder / s.path.name).symlink_to(s.path)
support = set(split.support)
new = [s for s in data.test if s not in support]
order = np.random.default_rng(0).permutation(len(new))
truth = {}
(work / "new").mkdir()
for k, i in enumerate(order):
    link = work / "new" / f"img_{k:04d}{new[i].path.suffix}"
    link.symlink_to(new[i].path)
    truth[str(link)] = new[i].label
# the folders live in a temporary directory: shown as WORK/ (its name is machine-specific)
print(f"WORK/normal: {len(data.train)} images")
for t in split.classes:
    print(f"WORK/support/{t}: {shots} images")
print(
    f"WORK/new: {len(new)} images ({sum(s.is_good for s in new)} good, "
    f"{sum(not s.is_good for s in new)} defective)"
)

# %% [markdown]
# ## Fit, save, load
#
# The model is one folder: each engine's bank and the support rows as safetensors,
# everything else (the recipe, class names, threshold, settings, the leave-one-out estimate,
# fsad version, checksums) as JSON. Loading refuses a model from an incompatible version or
# one that was tampered with; nothing is unpickled.

# %%
start = time.perf_counter()
inspector = Inspector(method=method, folds=folds).fit(work / "normal", work / "support")
fit_seconds = time.perf_counter() - start
model_dir = inspector.save(work / "model")
inspector = Inspector.load(model_dir)
files = {p.name: f"{p.stat().st_size / 1e6:.2f} MB" for p in sorted(Path(model_dir).iterdir())}
banks = " + ".join(str(n) for n in inspector.info["bank_sizes"])
print(
    f"fitted in {fit_seconds:.1f} s: classes {inspector.classes}, method "
    f"{inspector.config.method}, threshold {inspector.threshold:.3f}, banks of {banks} patches"
)
print(trust_text(inspector.trust))
print("model folder:", files)

# %% [markdown]
# ## Classify the new images
#
# One result per image. `prediction` is `good` when the score is below the threshold, else
# the most likely defect type; `defect_type` and its probability are given either way, for
# an engineer who disagrees with the threshold.

# %%
start = time.perf_counter()
results = inspector.classify([work / "new"])
seconds = time.perf_counter() - start
table = pd.DataFrame([r.row() for r in results])
table["truth"] = table["path"].map(truth)
table["path"] = table["path"].map(lambda p: Path(p).name)
print(f"{len(results)} images in {seconds:.1f} s ({len(results) / seconds:.1f} images/s)")
display(table.drop(columns=["error"]).head(10).style.format(precision=3).hide(axis="index"))

# %% [markdown]
# ## How good is it?
#
# Normal against defective: the AUROC of the anomaly score (1.0 = every defective image
# scores above every normal one). Then, per class (good included), precision and recall of
# the final prediction.

# %%
is_defect = table["truth"] != "good"
auroc = roc_auc_score(is_defect, table["score"]) if (~is_defect).any() else float("nan")
accuracy = float((table["prediction"] == table["truth"]).mean())
defect_acc = float((table.loc[is_defect, "defect_type"] == table.loc[is_defect, "truth"]).mean())
trust = inspector.trust
estimate = "not available" if trust["accuracy"] is None else f"{trust['accuracy']:.1%}"
display(
    Markdown(
        f"- normal vs defect AUROC: **{auroc:.3f}**\n"
        f"- final prediction correct (good or the right type): **{accuracy:.1%}**\n"
        f"- defect type correct on the {int(is_defect.sum())} defective images (ignoring the "
        f"threshold): **{defect_acc:.1%}**; the leave-one-out estimate `fit` gave without "
        f"these labels: **{estimate}** (on {trust['n_images']} support images; chance "
        f"{trust['chance']:.0%})"
    )
)
report = classification_report(
    table["truth"], table["prediction"], output_dict=True, zero_division=0
)
display(pd.DataFrame(report).T.style.format(precision=2))

# %% [markdown]
# ## Heat-map overlays and explanations
#
# The overlay colours the anomaly map over the image, with the verdict in the caption. The
# inspector frames the *whole* image by default (`framing="letterbox"`: the longer side
# resized, the rest padded), so the map covers all of it, borders included; with the paper's
# centre crop (`framing="crop"`) what lies outside the crop is dimmed.

# %%
defects = [r for r in results if r.ok and truth[r.path] != "good"]
right = [r for r in defects if r.defect_type == truth[r.path]][: n_overlays // 2]
wrong = [r for r in defects if r.defect_type != truth[r.path]][: n_overlays // 2]
picks = right + wrong
show(
    image_grid(
        [inspector.overlay(r) for r in picks],
        [f"{'right' if r in right else 'WRONG'}: true {truth[r.path]}" for r in picks],
        ncols=4,
        suptitle=f"{category}: right and wrong defect-type calls",
    )
)

# %%
defective = (wrong or right)[0]
print(inspector.explain(defective).replace(str(work), "WORK"))  # no machine path

# %% [markdown]
# ## How far the leave-one-out estimate can be trusted
#
# The estimate rests on few images (3 defect types x 5 shots = 15 at most here) and each of
# its fits has one image fewer than the model, so it is rough, and it can miss either way:
# where the camera and light never turn (as on MVTec), turned support images look alike in
# the leave-one-out and unlike the queries, and the estimate runs high.
# `scripts/trust_vs_grid.py` fitted this chapter's method (when the file has its rows, else
# every method it holds) on each real category's grid support (the paper's centre crop,
# seed 1) and put its estimate next to the accuracy the grid measured on the queries of the
# same cell (`results/trust/trust.csv`; with one image per type there is nothing to leave
# out).

# %%
trust_csv = find_results_dir() / "trust" / "trust.csv"
if trust_csv.exists():
    frame = pd.read_csv(trust_csv)
    frame = frame[frame["method"] == method] if (frame["method"] == method).any() else frame
    frame["estimate (LOO)"] = [
        "n/a" if pd.isna(a) else f"{100 * a:.0f} +- {100 * e:.0f} (n={n})"
        for a, e, n in zip(frame.loo_accuracy, frame.loo_stderr, frame.loo_images)
    ]
    frame["grid accuracy"] = [
        f"{100 * a:.1f} (n={q})" for a, q in zip(frame.grid_accuracy, frame.grid_queries)
    ]
    frame["chance"] = (100 * frame.uniform_chance).round(0)
    cols = ["category", "method", "shots", "estimate (LOO)", "grid accuracy", "chance"]
    display(frame[cols].style.hide(axis="index"))
else:
    print("no results/trust/trust.csv yet: run scripts/trust_vs_grid.py")

# %% [markdown]
# ## The scikit-learn view
#
# `predict` gives `good` or a defect type per image, `predict_proba` the defect-type
# probabilities (one column per class of `inspector.classes`); both take files, folders or
# RGB arrays.

# %%
few = [r.path for r in picks[:4]]
proba = pd.DataFrame(inspector.predict_proba(few), columns=inspector.classes)
# -- with adapt=True the class proportions are re-estimated over the batch (transductive)
proba.insert(0, "prediction", inspector.predict(few))
proba.insert(0, "image", [Path(p).name for p in few])
display(proba.style.format(precision=2).hide(axis="index"))
