"""Synthetic defect classes on the shared real images (skipped without ``FSAD_DATA``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsad.data import load_category
from fsad.synth import PseudoClassDataset, TextureSource, is_grey

# (dataset, category) -> plausible foreground fraction at 256 x 256
FOREGROUND_RANGE = {
    ("mvtec_ad", "bottle"): (0.45, 0.8),  # round bottle seen from above
    ("mvtec_ad", "screw"): (0.04, 0.25),  # thin screw on a white plate
    ("mvtec_ad", "metal_nut"): (0.25, 0.7),  # nut with its hole removed
    ("mvtec_3d", "tire"): (1.0, 1.0),  # the authors made no mask for tire
}


@pytest.fixture(scope="module")
def dtd(real_data: Path) -> TextureSource:
    root = real_data / "dtd"
    if not root.is_dir():
        pytest.skip(f"no DTD folder in {real_data}")
    return TextureSource.from_dtd(root)


def test_shared_dtd_has_22_rgb_classes(dtd: TextureSource) -> None:
    assert len(dtd.classes) == 22 and "banded" in dtd.classes
    for name in dtd.classes:
        img = dtd.image(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        assert (
            dtd.files[name][0].name
            == sorted(p.name for p in dtd.files[name][0].parent.iterdir())[0]
        )


@pytest.mark.parametrize(("dataset", "category"), list(FOREGROUND_RANGE))
def test_real_categories_foreground_and_masks(
    real_data: Path, dtd: TextureSource, dataset: str, category: str, tmp_path: Path
) -> None:
    data = load_category(real_data / dataset, dataset, category)
    ds = PseudoClassDataset(data, dtd, seed=0, n_per_class=3)
    lo, hi = FOREGROUND_RANGE[(dataset, category)]
    for j in range(ds.n_sources):
        assert lo <= ds.source_foreground(j).mean() <= hi
    for i in range(0, len(ds), 7):
        s = ds[i]
        assert s.image.shape == (256, 256, 3)
        assert 0.1 <= s.raw_mask.mean() <= 0.4
        assert s.mask.any() and not (s.mask & ~s.foreground).any()
        if category == "screw":  # grey product: grey defects
            assert is_grey(s.image)


def test_figure4_on_real_data(real_data: Path, dtd: TextureSource) -> None:
    from fsad.viz.synth import COLUMNS, FIGURE_CATEGORIES, figure4

    fig = figure4(real_data, dtd, seed=0)
    assert len(fig.axes) == len(FIGURE_CATEGORIES) * len(COLUMNS)
    assert fig.axes[0].get_title() == "normal image"
