"""The light-descriptor study (research.light_descriptors): how far light moves a row against
the distance to the nearest other row, on small arrays whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fsad.errors import FsadError
from fsad.methods.anomaly_guided import RECIPES
from fsad.report import light_rows_summary
from research import light_descriptors
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


def test_a_zero_distance_to_the_nearest_row_is_refused_by_name() -> None:
    rows = pd.DataFrame({"category": ["screw"] * 2, "group": ["zoom"] * 2, "file": list("ab"),
                         "moved": [1.0, 1.0], "nearest": [0.0, 2.0]})  # fmt: skip
    with pytest.raises(FsadError, match=r"distance 0 .*'category': 'screw', 'group': 'zoom'"):
        light_rows_summary(rows)


def test_category_rows_pairs_each_file_with_itself_group_by_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    plain = [np.array([[0.0, 0.0], [3.0, 0.0]]), np.array([[0.0], [1.0]]), np.zeros((2, 1))]
    lit = [p + 1.0 for p in plain]
    rows = {"none": (["a/0", "b/0"], plain), "illumination": (["a/0", "b/0"], lit)}
    monkeypatch.setattr(light_descriptors, "group_rows", lambda _, suite, __: rows[suite])
    out = pd.DataFrame(light_descriptors.category_rows(tmp_path, "screw"))
    groups = [g.name for g in RECIPES[METHOD].groups]
    assert list(out["group"].unique()) == groups and len(out) == 6
    first = out[out["group"] == groups[0]]
    np.testing.assert_allclose(first["moved"], [np.sqrt(2)] * 2)  # each row moved by (1, 1)
    np.testing.assert_allclose(first["nearest"], [3.0, 3.0])
    rows["illumination"] = (["a/0", "c/0"], lit)
    with pytest.raises(SystemExit, match="screw: the none and illumination suites"):
        light_descriptors.category_rows(tmp_path, "screw")


def test_the_control_adds_the_zoom_views_cut_at_the_untransformed_peak_as_a_fourth_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    plain = [np.array([[0.0], [2.0]])] * 3
    rows = {"none": (["a/0", "b/0"], plain), "illumination": (["a/0", "b/0"], plain)}
    monkeypatch.setattr(light_descriptors, "group_rows", lambda _, suite, __: rows[suite])
    control = (np.array([[0.0], [2.0]]), np.array([[1.0], [2.0]]))
    monkeypatch.setattr(light_descriptors, "fixed_window_rows", lambda *_: control)
    out = pd.DataFrame(light_descriptors.category_rows(tmp_path, "screw", with_control=True))
    added = out[out["group"] == light_descriptors.CONTROL_GROUP]
    assert len(out) == 8 and added["moved"].tolist() == [1.0, 0.0]
    assert added["nearest"].tolist() == [2.0, 2.0]
    assert light_descriptors.CONTROL_GROUP not in set(
        pd.DataFrame(light_descriptors.category_rows(tmp_path, "screw"))["group"]
    )


def test_the_projected_zoom_views_come_last_unweighted_and_through_one_set_of_bases(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    plain = [np.array([[0.0, 1.0], [2.0, 0.0]])] * 3  # the zoom group (weight 2) is the third
    lit = [p + np.array([[4.0, 0.0], [0.0, 0.0]]) for p in plain]
    rows = {"none": (["a/0", "b/0"], plain), "illumination": (["a/0", "b/0"], lit)}
    monkeypatch.setattr(light_descriptors, "group_rows", lambda _, suite, __: rows[suite])
    seen = []

    def fake_bases(self, engine) -> list[np.ndarray]:
        seen.append(engine)  # the suite's name, from the stand-in suite_engine below
        return [np.array([[1.0], [0.0]], dtype=np.float32)]  # light moves the first column

    monkeypatch.setattr(light_descriptors.ProjectedZoom, "bases", fake_bases)
    monkeypatch.setattr(light_descriptors, "suite_engine", lambda s, suite, n: (suite, []))
    out = pd.DataFrame(light_descriptors.category_rows(tmp_path, "screw", with_projected=True))
    added = out[out["group"] == light_descriptors.PROJECTED_GROUP]
    assert len(out) == 8 and seen == ["illumination"]
    # without the first column both images are unit rows along the second: the light's move
    # of image a (along the first column) is gone; b's row (2, 0) has nothing left but 0
    assert added["moved"].tolist() == [0.0, 0.0]
    assert added["nearest"].tolist() == [1.0, 1.0]


def test_the_subspace_groups_come_last_and_read_the_light_subspace_engines_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    plain = [np.array([[0.0], [2.0]])] * 3
    moved = [np.array([[0.0], [5.0]])] * 3  # the subspace engines' rows: image b moves by 3
    rows = {
        ("none", False): (["a/0", "b/0"], plain),
        ("illumination", False): (["a/0", "b/0"], plain),
        ("none", True): (["a/0", "b/0"], plain),
        ("illumination", True): (["a/0", "b/0"], moved),
    }
    monkeypatch.setattr(
        light_descriptors,
        "group_rows",
        lambda _, suite, __, subspace=False: rows[(suite, subspace)],
    )
    out = pd.DataFrame(light_descriptors.category_rows(tmp_path, "screw", with_subspace=True))
    names = [g.name for g in RECIPES[METHOD].groups]
    assert list(out["group"].unique()) == names + [n + " light subspace" for n in names]
    added = out[out["group"].str.endswith(light_descriptors.SUBSPACE_SUFFIX)]
    assert added["moved"].tolist() == [0.0, 3.0] * 3
    assert out[~out.index.isin(added.index)]["moved"].tolist() == [0.0] * 6
