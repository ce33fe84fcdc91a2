"""Build the HTML book: execute the notebooks, then render them with Jupyter Book (v1).

What ``make book`` runs. Two stages, so heavy work happens apart from the Sphinx build:

1. every ``notebooks/NN_*.py`` is executed with papermill (see ``run_notebooks.py``) into
   ``book/_executed/NN_*.ipynb`` with its default parameters: the embedded dataset, unless
   ``FSAD_DATA`` points at real data. The first failing cell stops the build.
2. ``jupyter-book build book/ -W --keep-going`` renders them (``execute_notebooks: off``);
   any Sphinx warning fails the build, and every executed notebook is checked for error
   outputs.

Usage::

    python scripts/build_book.py [--only 01 02] [--reuse] [--no-html] [--set NAME=VALUE ...]

``--only`` executes just those notebooks (the others must already be executed, e.g. by an
earlier build); ``--reuse`` skips notebooks whose executed copy is newer than their source
and than the fsad library.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_notebooks import (
    ROOT,
    NotebookError,
    default_parameters,
    execute,
    list_notebooks,
    parse_set,
)  # noqa: E402

BOOK = ROOT / "book"
EXECUTED = BOOK / "_executed"
HTML = BOOK / "_build" / "html"


def toc_files(book: Path = BOOK) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (paths relative to the book, no suffix)."""
    import yaml

    toc = yaml.safe_load((book / "_toc.yml").read_text(encoding="utf-8"))
    found = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return found


def newest_library_mtime() -> float:
    """Latest modification time of the fsad package and the configs (for ``--reuse``)."""
    files = [*(ROOT / "fsad").rglob("*.py"), *(ROOT / "configs").glob("*.yaml")]
    return max((f.stat().st_mtime for f in files), default=0.0)


def execute_all(
    notebooks: Sequence[Path], reuse: bool, extra: dict[str, object]
) -> list[tuple[str, float]]:
    """Execute ``notebooks`` into ``book/_executed``; return ``(stem, seconds)`` per notebook."""
    for leftover in EXECUTED.glob(".run-*"):  # scratch folders of an interrupted run
        shutil.rmtree(leftover, ignore_errors=True)
    timings = []
    library = newest_library_mtime()
    env = {"FSAD_NO_PROGRESS": "1"}  # progress bars go to the terminal, not into the HTML
    for nb in notebooks:
        out = EXECUTED / f"{nb.stem}.ipynb"
        if reuse and out.exists() and out.stat().st_mtime > max(nb.stat().st_mtime, library):
            print(f"[book] {nb.stem}: up to date, reused", flush=True)
            continue
        params = {k: v for k, v in extra.items() if k in default_parameters(nb)}
        print(f"[book] executing {nb.stem} {params or ''}", flush=True)
        seconds = execute(nb, out, params, env=env)
        print(f"[book] {nb.stem}: {seconds:.1f} s", flush=True)
        timings.append((nb.stem, seconds))
    return timings


def error_outputs(executed: Path) -> list[str]:
    """Descriptions of the error outputs in an executed notebook (none expected)."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    errors = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"{executed.name} cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return errors


def check_sources() -> None:
    """Every toc entry must exist (executed notebook or markdown page) before Sphinx runs.

    Raises:
        NotebookError: a toc entry has no file.
    """
    missing = []
    for entry in toc_files():
        if not any((BOOK / f"{entry}{ext}").exists() for ext in (".md", ".ipynb", ".rst")):
            missing.append(entry)
    if missing:
        raise NotebookError(f"_toc.yml entries without a file: {missing} (execute them first)")
    errors = [e for f in sorted(EXECUTED.glob("*.ipynb")) for e in error_outputs(f)]
    if errors:
        raise NotebookError("error outputs in executed notebooks:\n  " + "\n  ".join(errors))


def build_html() -> float:
    """Run ``jupyter-book build book/ -W --keep-going --all``; return seconds.

    Raises:
        NotebookError: non-zero exit, or warnings/errors in the log.
    """
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [
        str(exe) if exe.exists() else "jupyter-book",
        "build",
        str(BOOK),
        "-W",
        "--keep-going",
        "--all",
    ]
    print("[book] " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    problems = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln]
    if proc.returncode != 0 or problems:
        print(log[-6000:], file=sys.stderr)
        raise NotebookError(
            f"jupyter-book failed (exit {proc.returncode}, {len(problems)} warning/error lines)"
        )
    reports = HTML / "reports"
    if reports.is_dir() and any(reports.iterdir()):
        raise NotebookError(f"execution reports found in {reports}: a notebook failed")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the notebooks and build the HTML book.")
    parser.add_argument("--only", nargs="*", default=None, help="notebook stems/prefixes to run")
    parser.add_argument("--reuse", action="store_true", help="skip up-to-date executed notebooks")
    parser.add_argument("--no-html", action="store_true", help="execute only, no Sphinx build")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="parameter overrides (Python literals) for notebooks that have them",
    )
    args = parser.parse_args(argv)
    data = os.environ.get("FSAD_DATA")
    print(f"[book] data: {data or 'embedded dataset (FSAD_DATA unset)'}", flush=True)
    start = time.perf_counter()
    try:
        notebooks = list_notebooks(args.only or ())
        timings = execute_all(notebooks, args.reuse, parse_set(args.set))
        if args.no_html:
            return 0
        check_sources()
        if HTML.parent.exists():
            shutil.rmtree(HTML.parent)
        sphinx = build_html()
    except NotebookError as exc:
        print(f"[book] FAILED: {exc}", file=sys.stderr)
        return 1
    for stem, seconds in timings:
        print(f"[book]   {stem:28s} {seconds:6.1f} s")
    total = time.perf_counter() - start
    print(f"[book]   {'jupyter-book build':28s} {sphinx:6.1f} s")
    print(f"[book] done in {total:.0f} s: open {HTML / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
