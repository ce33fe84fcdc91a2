"""The zoom look study's pieces (research wing): the zoom block with the windows centred on
one version's peaks and cut from another's pixels, the check of each version's own block and
the heads it scores a pair with."""

import numpy as np
import pandas as pd
import pytest

from fsad.inspector.classifier import DEFAULT_METHOD
from fsad.methods.anomaly_guided import RECIPES
from fsad.zoom import ZoomConfig, zoom_encoder, zoom_images
from research import zoom_look_study as zl
from research.light_rows_study import VERSIONS

#: a small stand-in for the default's rotated zoom views (the same code, 32 px windows)
SMALL = ZoomConfig(windows=(0.25, 0.5), size=32, rotations=True)
#: the default's weight of its zoom group (its rows carry it)
WEIGHT = RECIPES[DEFAULT_METHOD].groups[zl.ZOOM_GROUP].weight


@pytest.fixture(autouse=True)
def _small_zoom(monkeypatch) -> None:
    monkeypatch.setattr(zl, "ROT_ZOOM", SMALL)


def _views() -> dict[str, dict]:
    """Three versions of two 96 x 128 images: each version's pixels a different gradient and
    its peaks in a different corner; rows hold each version's own zoom block."""
    rng = np.random.default_rng(0)
    views = {}
    for k, v in enumerate(VERSIONS):
        images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(2)]
        centres = [(10.0 + 30 * k, 12.0 + 40 * k), (80.0 - 30 * k, 100.0 - 40 * k)]
        zoom = WEIGHT * zoom_images(zoom_encoder(SMALL), images, centres, SMALL).numpy()
        views[v] = {"images": images, "centres": centres,
                    "rows": [np.full((2, 3), k, float), np.zeros((2, 4)), zoom]}  # fmt: skip
    return views


def test_each_pair_cuts_one_versions_pixels_around_anothers_peaks() -> None:
    views = _views()
    pairs = zl.pair_rows(views)
    assert set(pairs) == {(c, p) for c in VERSIONS for p in VERSIONS}
    want = WEIGHT * zoom_images(zoom_encoder(SMALL), views["library"]["images"],
                       views["oracle"]["centres"], SMALL).numpy()  # fmt: skip
    rows = pairs["oracle", "library"]
    np.testing.assert_allclose(rows[zl.ZOOM_GROUP], want, atol=1e-6)
    # the anomaly blocks are the pixels' version's own
    assert rows[0][0, 0] == VERSIONS.index("library")
    assert not np.allclose(rows[zl.ZOOM_GROUP], views["library"]["rows"][zl.ZOOM_GROUP])


def test_a_versions_own_block_must_equal_the_librarys_rows() -> None:
    views = _views()
    views["shot"]["rows"][zl.ZOOM_GROUP] = views["shot"]["rows"][zl.ZOOM_GROUP] + 0.01
    with pytest.raises(SystemExit, match="shot: the zoom block differs"):
        zl.pair_rows(views)


def test_the_zoom_head_reads_the_zoom_block_alone() -> None:
    rows = [np.zeros((4, 2)), np.ones((4, 3)), np.eye(4)]
    heads = zl.heads(rows)
    recipe, x = heads["zoom"]
    assert len(recipe.groups) == 1 and recipe.groups[0] == heads["all"][0].groups[zl.ZOOM_GROUP]
    assert len(x) == 1 and x[0] is rows[zl.ZOOM_GROUP]
    assert heads["all"][1] is rows


def test_each_category_is_appended_once_with_its_data_hash(tmp_path, monkeypatch) -> None:
    calls, hashes = [], {"a": "h1", "b": "h2"}

    def tables(suite, oracle, name, n_draws):
        calls.append(name)
        return [{"category": name, "k": k} for k in range(2)], [{"category": name}], [
            {"category": name}]  # fmt: skip

    monkeypatch.setattr(zl, "category_tables", tables)
    monkeypatch.setattr(zl, "load_category", lambda root, kind: root.name)
    monkeypatch.setattr(zl, "data_hash", lambda category: hashes[category])
    outs = tuple(tmp_path / f"{k}.csv" for k in ("loo", "splits", "peaks"))
    for name in ("a", "b", "a"):
        zl.write_category(tmp_path, tmp_path, name, 3, outs)
    assert calls == ["a", "b"]
    loo = pd.read_csv(outs[0])
    assert loo["category"].tolist() == ["a", "a", "b", "b"]
    assert loo["data_hash"].tolist() == ["h1", "h1", "h2", "h2"]
    assert {"git_commit", "timestamp"} <= set(loo.columns)
    assert pd.read_csv(outs[2])["category"].tolist() == ["a", "b"]
    # a CSV that lost a category's rows (a fresh --out beside old ones) gets them again
    outs[0].unlink()
    zl.write_category(tmp_path, tmp_path, "a", 3, outs)
    assert calls == ["a", "b", "a"]
    assert pd.read_csv(outs[1])["category"].tolist() == ["b", "a"]
    # rows on other images are never mixed in
    hashes["a"] = "h9"
    with pytest.raises(SystemExit, match="holds a rows on other images"):
        zl.write_category(tmp_path, tmp_path, "a", 3, outs)
