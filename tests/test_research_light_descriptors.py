"""The light-descriptor study (research.light_descriptors): how far light moves a row against
the distance to the nearest other row, on small arrays whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fsad.errors import FsadError
from fsad.report import light_rows_summary
from research.light_descriptors import METHOD, moved_and_nearest


def test_moved_is_row_by_row_and_nearest_skips_the_row_itself() -> None:
    plain = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 10.0]])
    lit = plain + np.array([[0.0, 1.0], [0.0, 0.0], [6.0, 8.0]])
    moved, nearest = moved_and_nearest(plain, lit)
    np.testing.assert_allclose(moved, [1.0, 0.0, 10.0])
    np.testing.assert_allclose(nearest, [3.0, 3.0, 10.0])


def test_the_summary_gives_the_median_ratio_and_the_share_beyond_the_nearest() -> None:
    rows = pd.DataFrame({
        "category": ["screw"] * 4, "group": ["zoom"] * 4, "file": list("abcd"),
        "moved": [1.0, 2.0, 6.0, 8.0], "nearest": [2.0, 2.0, 3.0, 2.0],
    })  # fmt: skip
    out = light_rows_summary(rows).loc[("screw", "zoom")]
    assert out["images"] == 4 and out["median_ratio"] == 1.5 and out["beyond_nearest"] == 0.5
    with pytest.raises(FsadError, match=r"lacks columns \['nearest'\]"):
        light_rows_summary(rows.drop(columns="nearest"))


def test_the_study_reads_the_default_it_names() -> None:
    from fsad.methods.anomaly_guided import RECIPES

    assert METHOD == "hires_lite0_poe_proto_rot4_fixed" and len(RECIPES[METHOD].groups) == 3
