"""Execute the book's notebooks with papermill: batch reruns per shot count.

The notebooks are jupytext percent ``.py`` files in ``notebooks/``; papermill needs ``.ipynb``,
so each one is converted with jupytext, parameterised (papermill injects a cell after the
cell tagged ``parameters``) and executed in the venv's own ``python3`` kernel. The first
failing cell stops everything with a non-zero exit and the cell's error.

Usage (``make runs SHOTS="1 2 3 4 5" CONFIG=quick`` runs the second line)::

    python scripts/run_notebooks.py --list
    python scripts/run_notebooks.py --config quick --shots 1 2 3 4 5 [--notebooks 03 04]
        [--out runs/] [--set data_root='"/data"'] [--workers N | --scheduler ADDRESS]

Every notebook whose ``parameters`` cell has an integer ``shots`` runs once per shot count
into ``<out>/<config>/<stem>_shots<k>.ipynb``; the others run once into
``<out>/<config>/<stem>.ipynb``. By default the runs go one after the other in this process;
``--workers N`` fans them out to a Dask LocalCluster of N workers and ``--scheduler ADDRESS``
to a running cluster (as ``fsad run`` does, :mod:`fsad.evaluate.cluster`): each worker
executes a notebook and returns it, and this process (the client) writes every executed
copy, atomically. Remote workers need the repository at the same path (a shared
filesystem), since a notebook runs in its own folder. ``scripts/build_book.py`` and
``tests/test_notebooks.py`` reuse :func:`execute`.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsad.errors import FsadError
from fsad.utils import atomic_write_text, environment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"


class NotebookError(RuntimeError):
    """A notebook failed: names the notebook, the cell and the error."""


def list_notebooks(select: Sequence[str] = (), folder: Path = NOTEBOOKS) -> list[Path]:
    """Notebook sources ``NN_name.py`` in order; ``select`` keeps those whose stem starts with
    one of its entries (``"03"`` or ``"03_vanilla_baseline"``).

    Raises:
        NotebookError: an entry of ``select`` matches no notebook.
    """
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.py"))
    if not select:
        return found
    chosen = []
    for key in select:
        hits = [p for p in found if p.stem.startswith(key)]
        if not hits:
            names = ", ".join(p.stem for p in found)
            raise NotebookError(f"no notebook matches {key!r} (have: {names})")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def parameters_cell(source: Path) -> str:
    """Source code of the cell tagged ``parameters`` (the first code cell by convention).

    Raises:
        NotebookError: the notebook has no ``parameters`` cell.
    """
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise NotebookError(f"{source}: no cell tagged 'parameters'")


def default_parameters(source: Path) -> dict[str, Any]:
    """Names and literal default values of the notebook's ``parameters`` cell.

    Raises:
        NotebookError: an assignment there is not a plain literal.
    """
    params: dict[str, Any] = {}
    for node in ast.parse(parameters_cell(source)).body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if not isinstance(target, ast.Name) or node.value is None:
            raise NotebookError(f"{source}: parameters cell must hold only `name = literal` lines")
        try:
            params[target.id] = ast.literal_eval(node.value)
        except ValueError as exc:
            raise NotebookError(f"{source}: parameter {target.id} is not a literal") from exc
    return params


def to_ipynb(source: Path, dest: Path) -> Path:
    """Convert a jupytext percent ``.py`` notebook into ``dest`` (``.ipynb``, no outputs)."""
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def execute(
    source: Path,
    out: Path,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    progress: bool = True,
    timeout: int | None = None,
) -> float:
    """Run one notebook through papermill into ``out``; return the wall time in seconds.

    Args:
        source: jupytext percent ``.py`` notebook.
        out: executed ``.ipynb`` (written atomically: a failed run leaves the previous file).
        parameters: overrides of the ``parameters`` cell; unknown names are refused.
        env: extra environment variables for the kernel.
        progress: show papermill's per-cell progress bar.
        timeout: per-cell timeout in seconds (None: no limit).

    Raises:
        NotebookError: unknown parameter, or a cell raised (message names notebook and cell).
    """
    text, seconds = execute_text(source, parameters, env, progress, timeout)
    atomic_write_text(out, text)
    return seconds


def execute_text(
    source: Path,
    parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    progress: bool = True,
    timeout: int | None = None,
) -> tuple[str, float]:
    """Run one notebook through papermill in a temporary folder; return the executed
    notebook's text and the wall time in seconds (what a cluster worker sends back).

    Raises:
        NotebookError: see :func:`execute`.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(default_parameters(source)))
    if unknown:
        raise NotebookError(f"{source.name}: unknown parameter(s) {unknown}")
    start = time.perf_counter()
    with environment(env or {}), tempfile.TemporaryDirectory(prefix="fsad-run-") as tmp:
        src = to_ipynb(source, Path(tmp) / "in.ipynb")
        dst = Path(tmp) / "out.ipynb"
        try:
            papermill.execute_notebook(
                str(src),
                str(dst),
                parameters=parameters,
                kernel_name=KERNEL,
                cwd=str(source.parent),
                progress_bar=progress,
                execution_timeout=timeout,
            )
        except PapermillExecutionError as exc:
            raise NotebookError(
                f"{source.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}"
            ) from exc
        text = dst.read_text(encoding="utf-8")
    return text, time.perf_counter() - start


@dataclass(frozen=True)
class Run:
    """One execution of a notebook: its source, parameters and executed copy."""

    source: Path
    parameters: dict[str, Any]
    out: Path

    @property
    def name(self) -> str:
        return self.out.stem


def plan_runs(
    notebooks: Sequence[Path],
    config: str,
    shots: Sequence[int],
    out_root: Path,
    extra: dict[str, Any] | None = None,
) -> list[Run]:
    """Each notebook once per shot count (when it has an int ``shots``), else once."""
    runs = []
    for nb in notebooks:
        defaults = default_parameters(nb)
        params = {k: v for k, v in (extra or {}).items() if k in defaults}
        if "config" in defaults:
            params["config"] = config
        per_shot = isinstance(defaults.get("shots"), int) and not isinstance(
            defaults.get("shots"), bool
        )
        for k in shots if per_shot else [None]:
            run_params = dict(params) if k is None else {**params, "shots": k}
            name = nb.stem if k is None else f"{nb.stem}_shots{k}"
            runs.append(Run(nb, run_params, out_root / config / f"{name}.ipynb"))
    return runs


def batch(
    notebooks: Sequence[Path],
    config: str,
    shots: Sequence[int],
    out_root: Path,
    extra: dict[str, Any] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
) -> list[tuple[Path, float]]:
    """Run each notebook once per shot count (when it has an int ``shots``), else once: in
    this process, or on a Dask cluster (``workers`` > 1 local processes, or ``scheduler``).

    Returns:
        ``(executed notebook, seconds)`` per finished run, in order of completion. Stops at
        the first failure (on a cluster the runs not finished yet are cancelled).
    """
    from fsad.evaluate.cluster import Cluster

    runs = plan_runs(notebooks, config, shots, out_root, extra)
    cluster = Cluster(workers, scheduler)
    finished = _in_process(runs) if cluster.in_process else _on_cluster(runs, cluster)
    done = []
    for run, text, seconds in finished:
        if text is not None:  # from a worker: only this process writes the executed copy
            atomic_write_text(run.out, text)
        print(f"[runs] {run.name}: {seconds:.1f} s -> {run.out}", flush=True)
        done.append((run.out, seconds))
    return done


def _in_process(runs: list[Run]) -> Iterator[tuple[Run, str | None, float]]:
    """The runs one after the other, each written by :func:`execute`."""
    for run in runs:
        print(f"[runs] {run.name} ...", flush=True)
        yield run, None, execute(run.source, run.out, run.parameters)


def _on_cluster(runs: list[Run], cluster: Any) -> Iterator[tuple[Run, str | None, float]]:
    """The runs as cluster tasks; each executed notebook's text comes back as it finishes."""
    from distributed import as_completed

    from fsad.evaluate.cluster import describe, open_client

    with open_client(cluster) as client:
        print(describe(client, local=cluster.scheduler is None), flush=True)
        futures = {
            client.submit(
                execute_text, r.source, r.parameters, None, False, key=f"nb-{r.name}", pure=False
            ): r  # fmt: skip
            for r in runs
        }
        try:
            for future in as_completed(futures):
                yield futures[future], *_result(future, futures[future])
        finally:
            client.cancel([f for f in futures if not f.done()])


def _result(future: Any, run: Run) -> tuple[str, float]:
    """A finished task's notebook text and seconds; any failure becomes a NotebookError."""
    try:
        return future.result()
    except NotebookError:
        raise
    except Exception as exc:  # a worker lost, the cluster gone, an unpicklable value...
        raise NotebookError(f"{run.name}: {type(exc).__name__}: {exc}") from exc


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        default="",
        help="run configuration name (empty: ci on embedded data, quick on real)",
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--notebooks", nargs="*", default=[], help="stems or prefixes (03 04)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs", help="output folder")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="extra parameters (Python literals) for notebooks that have them",
    )
    parser.add_argument("--list", action="store_true", help="list notebooks and parameters")
    parser.add_argument(
        "--workers", type=int, default=1, help="local Dask workers (default 1: in this process)"
    )
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="a running Dask scheduler"
    )
    args = parser.parse_args(argv)
    try:
        notebooks = list_notebooks(args.notebooks)
        if args.list:
            for nb in notebooks:
                print(f"{nb.stem}: {default_parameters(nb)}")
            return 0
        start = time.perf_counter()
        done = batch(
            notebooks, args.config, args.shots, args.out, parse_set(args.set),
            workers=args.workers, scheduler=args.scheduler,
        )  # fmt: skip
    except (NotebookError, FsadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[runs] {len(done)} run(s) in {time.perf_counter() - start:.0f} s under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
