"""The worked examples of docs/architecture.md run as written: a new block kind listed in a
recipe and registered as a method, and a new dataset reader registered once."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad import data, methods
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.engine import ResidualEngine
from fsad.errors import DataError
from fsad.recipe import image_rows, sample_rows
from tests.test_recipe import SMALL

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def snippets() -> list[str]:
    """The page's python code blocks, in order."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def namespace():
    """The snippets executed in one namespace; their registrations are removed afterwards."""
    ns: dict = {}
    for code in snippets():
        exec(compile(code, str(DOC), "exec"), ns)
    yield ns
    methods._REGISTRY.pop("quantile_lr", None)
    methods._DESCRIPTIONS.pop("quantile_lr", None)
    data.DATASETS.pop("labelled_csv", None)


def test_the_page_has_the_three_snippets() -> None:
    assert len(snippets()) == 3


def test_new_block_kind_in_a_recipe(namespace, tiny_category, tmp_path: Path) -> None:
    recipe = namespace["QUANTILE_LR"]
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    test = list(tiny_category.test)
    rows = sample_rows(engine, recipe, test)
    assert rows[1].shape == (len(test), 3)
    np.testing.assert_allclose(np.linalg.norm(rows[1], axis=1), 1.0, rtol=1e-5)
    assert list((tmp_path / "map_quantiles").glob("*.pt"))  # its own cached table
    in_memory = image_rows(engine, recipe, [read_image(s.path) for s in test])
    np.testing.assert_allclose(in_memory[1], rows[1], atol=1e-4)
    assert "quantile_lr" in methods.available_methods()


def test_new_dataset_reader(namespace, tmp_path: Path) -> None:
    root = tmp_path / "widget"
    root.mkdir()
    lines = ["file,label"]
    rng = np.random.default_rng(0)
    for i, label in enumerate(["good"] * 3 + ["dent", "dent", "scratch", "scratch"]):
        cv2.imwrite(str(root / f"{i}.png"), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
        lines.append(f"{i}.png,{label}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    cat = data.load_category(root, "labelled_csv")
    assert len(cat.train) == 3 and cat.defect_types == ["dent", "scratch"]
    assert data.guess_dataset(root) == "labelled_csv"
    split = data.few_shot_split(cat.test, 1)
    assert len(split.support) == 2 and len(split.query) == 2
    (root / "labels.csv").write_text("file,label\n3.png,\n")
    with pytest.raises(DataError, match="every row needs a file and a label"):
        data.load_category(root, "labelled_csv")
    (root / "labels.csv").unlink()
    with pytest.raises(DataError, match="no labels.csv"):
        data.load_category(root, "labelled_csv")
