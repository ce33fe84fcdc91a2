"""The book's notebooks: parameters cells are plain literals, and every notebook runs.

The smoke run executes each notebook through papermill (as ``make book`` does) with the
``ci`` configuration on the embedded dataset, so a notebook broken by a library change
fails CI. It is marked slow (about 2-3 minutes for all notebooks on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


run_notebooks = _load("run_notebooks")
NOTEBOOKS = run_notebooks.list_notebooks()

#: smallest settings of each notebook's own parameters (only names a notebook has are used)
SMOKE = {
    "config": "ci",
    "data_root": "embedded",
    "category": "washer",
    "categories": ["washer"],
    "seeds": [1],
    "max_episodes": 3,
    "n_per_class": 2,
}
#: per-notebook overrides on top of SMOKE (fewer methods and shots)
SMOKE_BY_NOTEBOOK = {
    "03_vanilla_baseline": {"shots": 1},
    "04_contrastive": {"shots": 1},
    "05_ablations": {"methods": ["direct", "contrastive"], "appendix": ["polygon"], "shots": [1]},
    "06_representations": {"shots": 1},
    "07_beyond_the_paper": {"methods": ["contrastive", "anomaly_lr"], "shots": [1]},
    "08_own_product": {"shots": 2, "folds": 2, "method": "residual_proto"},
}


def test_notebooks_exist_in_order() -> None:
    stems = [p.stem for p in NOTEBOOKS]
    assert stems[:2] == ["01_data_generation", "02_residuals"]
    assert stems == sorted(stems)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_literals(source: Path) -> None:
    params = run_notebooks.default_parameters(source)
    assert {"config", "data_root"} <= set(params), params
    assert all(isinstance(v, str | int | float | bool | list | tuple) for v in params.values())
    text = source.read_text(encoding="utf-8")
    assert "pip install" not in text
    import jupytext

    first_code = next(c for c in jupytext.read(source).cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), "first code cell: parameters"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(source: Path, tmp_path: Path) -> None:
    import papermill

    ipynb = run_notebooks.to_ipynb(source, tmp_path / "nb.ipynb")
    assert set(papermill.inspect_notebook(str(ipynb))) == set(
        run_notebooks.default_parameters(source)
    )


def test_default_parameters_refuses_code(tmp_path: Path) -> None:
    nb = tmp_path / "01_bad.py"
    nb.write_text('# %% tags=["parameters"]\nshots = int("2")\n', encoding="utf-8")
    with pytest.raises(run_notebooks.NotebookError, match="shots is not a literal"):
        run_notebooks.default_parameters(nb)
    nb.write_text("# %%\nshots = 2\n", encoding="utf-8")
    with pytest.raises(run_notebooks.NotebookError, match="no cell tagged 'parameters'"):
        run_notebooks.default_parameters(nb)


def test_unknown_notebook_and_parameter_are_refused(tmp_path: Path) -> None:
    with pytest.raises(run_notebooks.NotebookError, match="no notebook matches '99'"):
        run_notebooks.list_notebooks(["99"])
    with pytest.raises(run_notebooks.NotebookError, match=r"unknown parameter\(s\) \['nope'\]"):
        run_notebooks.execute(NOTEBOOKS[0], tmp_path / "x.ipynb", {"nope": 1})
    assert not (tmp_path / "x.ipynb").exists()


def test_failing_cell_fails_loudly(tmp_path: Path) -> None:
    nb = tmp_path / "01_fails.py"
    nb.write_text(
        '# %% tags=["parameters"]\nx = 1\n\n# %%\nraise ValueError(f"boom {x}")\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.ipynb"
    with pytest.raises(run_notebooks.NotebookError, match="ValueError: boom 3"):
        run_notebooks.execute(nb, out, {"x": 3}, progress=False)
    assert not out.exists()  # no partial output


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(source: Path, tmp_path: Path) -> None:
    defaults = run_notebooks.default_parameters(source)
    params = {k: v for k, v in SMOKE.items() if k in defaults}
    params.update(SMOKE_BY_NOTEBOOK.get(source.stem, {}))
    out = tmp_path / f"{source.stem}.ipynb"
    run_notebooks.execute(source, out, params, env={"FSAD_NO_PROGRESS": "1"}, progress=False)
    nb = json.loads(out.read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert outputs, "the notebook produced no output at all"
