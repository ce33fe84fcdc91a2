"""fsad.viz: the figures the book's chapters draw, on small synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fsad.viz.overlay import top_patch_mask
from fsad.viz.results import accuracy_per_dataset, largest_shot_confusions


def _results() -> pd.DataFrame:
    rows = []
    for dataset, cats in (("mvtec_ad", ["bottle", "screw"]), ("mvtec_3d", ["tire"])):
        for cat in cats:
            for shots in (1, 2):
                for seed in (1, 2):
                    acc = 0.1 * shots + 0.05 * seed
                    rows.append(
                        dict(dataset=dataset, category=cat, method="contrastive", shots=shots,
                             seed=seed, accuracy=acc, chance=0.3)
                    )  # fmt: skip
    return pd.DataFrame(rows)


def test_accuracy_per_dataset_one_figure_each_with_paper_lines():
    paper = pd.DataFrame(
        dict(source_table="T1", method="contrastive", dataset="mvtec_ad",
             category=["bottle", "screw"], shots=1, accuracy=[40.0, 20.0],
             include_good=False, primary=True)
    )  # fmt: skip
    figs = accuracy_per_dataset(_results(), paper)
    assert [f.axes[0].get_title() for f in figs] == [
        "mvtec_3d: accuracy vs shots (mean over 1 categories)",
        "mvtec_ad: accuracy vs shots (mean over 2 categories)",
    ]
    labels = [line.get_label() for line in figs[1].axes[0].get_lines()]
    assert "contrastive (paper)" in labels  # mean of bottle and screw: 30 at 1 shot
    paper_line = figs[1].axes[0].get_lines()[labels.index("contrastive (paper)")]
    assert list(paper_line.get_ydata()) == [30.0]
    assert "contrastive (paper)" not in [ln.get_label() for ln in figs[0].axes[0].get_lines()]
    assert len(accuracy_per_dataset(_results())) == 2


def test_largest_shot_confusions_pools_seeds_at_the_largest_shot_count():
    preds = pd.DataFrame(
        dict(category="bottle", method=["a", "a", "a", "b", "a"], shots=[1, 2, 2, 2, 2],
             seed=[1, 1, 2, 1, 3], true_label=["x", "x", "y", "x", "y"],
             predicted_label=["y", "x", "x", "x", "y"])
    )  # fmt: skip
    figs = largest_shot_confusions(preds, methods=["a"], classes={"bottle": ["y", "x"]})
    assert len(figs) == 1
    ax = figs[0].axes[0]
    assert ax.get_title() == "bottle: a, 2-shot, 3 seed(s)\naccuracy 66.7%"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["y", "x"]
    assert len(largest_shot_confusions(preds)) == 2  # a and b


def test_top_patch_mask_marks_the_hottest_patches():
    amap = np.zeros((4, 4))
    amap[1, 2], amap[3, 0] = 5.0, 4.0
    mask = top_patch_mask(amap, 2 / 16, (10, 10))  # 2 of 16 patches, 2 px cells (8 of 10 px)
    assert mask.shape == (10, 10) and mask.sum() == 8
    assert mask[2:4, 4:6].all() and mask[6:8, 0:2].all() and not mask[8:, :].any()
    one = top_patch_mask(amap, 0.0, (8, 8))  # at least one patch
    assert one.sum() == 4 and one[2:4, 4:6].all()
