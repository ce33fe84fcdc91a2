"""``scripts/run_notebooks.py --workers 2``: papermill runs fanned out to a Dask LocalCluster,
every executed copy written by the client; a failing notebook stops the batch, named."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def run_notebooks():
    """The script as a module; its folder on sys.path, so that spawned workers import it."""
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("run_notebooks", SCRIPTS / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_notebooks"] = module
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(SCRIPTS))


def _notebook(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(f'# %% tags=["parameters"]\nshots = 1\n\n# %%\n{body}\n', encoding="utf-8")
    return path


def test_runs_fan_out_to_two_workers_and_the_client_writes(run_notebooks, tmp_path: Path):
    nb = _notebook(tmp_path, "01_square", "import os\nprint('square', shots * shots, os.getpid())")
    done = run_notebooks.batch([nb], "cfg", [1, 2, 3], tmp_path / "runs", workers=2)
    outs = sorted(p for p, _ in done)
    assert outs == [tmp_path / "runs" / "cfg" / f"01_square_shots{k}.ipynb" for k in (1, 2, 3)]
    for k, out in zip((1, 2, 3), outs, strict=True):
        cells = json.loads(out.read_text())["cells"]
        text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
        assert f"square {k * k} " in text
    assert not list((tmp_path / "runs" / "cfg").glob(".*.tmp"))


def test_a_failing_notebook_on_the_cluster_is_named(run_notebooks, tmp_path: Path):
    nb = _notebook(tmp_path, "02_fails", "raise ValueError(f'boom {shots}')")
    with pytest.raises(run_notebooks.NotebookError, match="02_fails.*ValueError: boom"):
        run_notebooks.batch([nb], "cfg", [1, 2], tmp_path / "runs", workers=2)
    assert not list((tmp_path / "runs").rglob("*.ipynb"))  # nothing written
