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
# # Ablations: which ingredient matters?
#
# The paper's method stacks three ideas on a few-shot classifier: **residual**
# representations (chapter 2), **pretraining** on synthetic classes (chapter 1) and the
# **contrastive** head (chapter 4). Its ablation (Table 4, at 2 shots) adds them one at a
# time:
#
# | method (fsad name) | residual | pretraining | head |
# |---|---|---|---|
# | direct classification (`direct`) | no | no (ImageNet only) | new last layer of the CNN |
# | vanilla baseline (`relationnet`) | yes | yes | RelationNet |
# | contrastive on raw features (`contrastive_raw`) | no | yes | contrastive |
# | contrastive without pretraining (`contrastive_nopretrain`) | yes | no | contrastive |
# | the full method (`contrastive`) | yes | yes | contrastive |
#
# Tables 5 and 6 break two of these comparisons down per category, and the appendices try
# variants: polygon-shaped synthetic defects (Appendix C), first-order MAML pretraining
# (Appendix G), and the authors' released code with its two bugs (the `code_bugs` option).
#
# This chapter runs the ablation as a small experiment grid with `fsad.evaluate.run_grid`,
# the same runner as `fsad run`, on the configured categories, and prints the tables in the
# paper's layout. On the embedded dataset the numbers only illustrate the mechanics; the
# results chapter shows the real-data ablation (`results/ablation`).

# %% tags=["parameters"]
config: str = ""  # run configuration name; empty: ci on the embedded data, quick on real data
data_root: str = ""  # empty: $FSAD_DATA if set, else the embedded dataset; embedded forces it
categories: list = []  # empty: the first category of the configuration
shots: list = [2]  # the paper ablates at 2 shots
seeds: list = [1]  # coreset / network seeds (the paper: 1-5)
methods: list = [
    "direct",
    "relationnet",
    "contrastive_raw",
    "contrastive_nopretrain",
    "contrastive",
]
appendix: list = []  # contrastive variants to run too, e.g. ["polygon", "maml", "code_bugs"] (slow)
max_episodes: int = 100  # pretraining episode cap (paper: 1000; small for a quick book)
n_per_class: int = 4  # normal images per synthetic class (fsad default 16)

# %%
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fsad.chapter import chapter_setup, shown_path
from fsad.evaluate import run_grid
from fsad.report import average_over_categories, paper_dir, summarize, to_markdown

# %%
cfg, root, dataset_root, real = chapter_setup(config, data_root)  # rules: fsad.chapter
small = {"max_episodes": max_episodes, "n_per_class": n_per_class}
grid = cfg.replace(
    categories=categories or list(cfg.categories[:1]),
    methods=methods,
    shots=shots,
    seeds=seeds,
    options={m: {**cfg.method_options(m), **small} for m in methods},
)
out = Path(tempfile.mkdtemp(prefix="fsad-ablation-"))
print(
    f"data {shown_path(root)}; categories {list(grid.categories)}; shots {list(grid.shots)}; "
    f"seeds {list(grid.seeds)}; options {small}"
)

# %% [markdown]
# ## Running the grid
#
# One row per (category, method, shots, seed). Pretrained weights and residuals are cached
# on disk, so the contrastive variants share work.

# %%
result = run_grid(grid, root, out / "table4")
rows = result.results
print(f"{len(rows)} runs in {rows['seconds'].sum():.0f} s of method time")

# %% [markdown]
# ## Table 4: the 2-shot ablation
#
# Accuracy in %, averaged over categories (mean ± sample std over seeds when several),
# next to the paper's average over its 14 MVTec AD categories.

# %%
paper_avg = pd.read_csv(paper_dir() / "paper_averages.csv")
t4 = paper_avg[paper_avg["source_table"] == "Table 4"].set_index("method")["accuracy"]
avg = average_over_categories(rows)
table = []
for _, r in avg.iterrows():
    std = "" if pd.isna(r["std"]) else f" ± {r['std']:.2f}"
    table.append(
        {
            "method": r["method"],
            "shots": int(r["shots"]),
            "ours": f"{r['mean']:.2f}{std}",
            "paper (Table 4)": f"{t4[r['method']]:.2f}"
            if r["method"] in t4 and r["shots"] == 2
            else "-",
        }
    )
display(Markdown(to_markdown(pd.DataFrame(table).set_index("method"))))

# %% [markdown]
# ## Tables 5 and 6, per category
#
# Table 5: the contrastive classifier on residuals against raw features. Table 6: the
# contrastive head against the vanilla RelationNet baseline (both on residuals, pretrained).

# %%
per_cat = summarize(rows).pivot_table(index=["category", "shots"], columns="method", values="mean")
for name, pair in (
    ("Table 5", ["contrastive", "contrastive_raw"]),
    ("Table 6", ["contrastive", "relationnet"]),
):
    have = [m for m in pair if m in per_cat.columns]
    if len(have) == 2:
        t = per_cat[have].copy()
        t["difference"] = t[have[0]] - t[have[1]]
        display(Markdown(f"**{name}** (accuracy %)"))
        display(t.style.format("{:.2f}"))

# %% [markdown]
# ## Appendix variants
#
# - **polygon** (Appendix C): synthetic defects shaped as regular 3-, 4- and 5-gons, each
#   (texture, polygon) pair a class, instead of Perlin blobs;
# - **maml** (Appendix G): first-order MAML episodes for pretraining;
# - **code_bugs**: the authors' released code, with its unpermuted reshape (1 x 1
#   convolutions then mix patches) and BatchNorm frozen after the first evaluation.
#
# Each variant is the `contrastive` method with one option changed (or the registered
# `contrastive_maml`), run on the same grid.

# %%
variants = {
    "polygon": ("contrastive", {"generator": "polygon"}),
    "maml": ("contrastive_maml", {}),
    "code_bugs": ("contrastive", {"code_bugs": True}),
}
summaries = [
    average_over_categories(rows[rows["method"] == "contrastive"]).assign(
        variant="contrastive (main)"
    )
]
for name in appendix:
    method, extra = variants[name]
    g = grid.replace(methods=[method], options={method: {**small, **extra}})
    res = run_grid(g, root, out / name).results
    summaries.append(average_over_categories(res).assign(variant=name))
both = pd.concat(summaries, ignore_index=True)
display(Markdown("Average accuracy (%) over categories, contrastive variants:"))
display(
    both[["variant", "shots", "mean", "std"]]
    .set_index("variant")
    .style.format({"mean": "{:.2f}", "std": "{:.2f}"}, na_rep="-")
)

# %% [markdown]
# On the embedded dataset, with one seed and capped pretraining, differences of a few
# points are noise: a single query changes accuracy by 100 / (number of queries) points.
# The results chapter shows the same tables on the real categories with five seeds.
