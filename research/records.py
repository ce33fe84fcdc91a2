"""The research wing's records: CSV files of rounds, one row per cell, rerun cells replaced."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fsad.data import default_data_root


def merged(
    path: Path, rows: list[dict], cell: Sequence[str], text: Sequence[str] = ("git_commit",)
) -> pd.DataFrame:
    """Earlier rows of ``path`` with the cells (keyed by the ``cell`` columns) of ``rows``
    replaced; every other earlier row is kept (the ``text`` columns read as strings, so a
    file name such as ``000`` keeps its zeros)."""
    new = pd.DataFrame(rows)
    if not path.exists():
        return new
    old = pd.read_csv(path, dtype=dict.fromkeys(text, str))
    done = old.set_index(list(cell)).index.isin(new.set_index(list(cell)).index)
    return pd.concat([old[~done], new], ignore_index=True)


def done_cells(path: Path, cell: Sequence[str]) -> set[tuple]:
    """The cells ``path`` already holds (a rerun skips them); empty when it does not exist."""
    if not path.exists():
        return set()
    old = pd.read_csv(path)
    return set(old[list(cell)].itertuples(index=False, name=None))


def data_root(explicit: str | None) -> Path:
    """The shared data (``--data`` or ``$FSAD_DATA``), or exit with the way to give it."""
    root = default_data_root(explicit)
    if root is None:
        raise SystemExit("set FSAD_DATA or pass --data")
    return Path(root)


def study_parser(doc: str, categories: Sequence[str], control: str) -> argparse.ArgumentParser:
    """The arguments of a study on the suites (the light studies): ``--suites`` (the folder
    holding the ``none`` and ``illumination`` suites), ``--out`` (the CSV it writes),
    ``--categories`` (default ``categories``) and ``--control`` (``control``: what the
    study's control adds); ``doc``'s first line describes the study."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument(
        "--suites", required=True, help="folder holding the none and illumination suites"
    )
    ap.add_argument("--out", required=True, help="CSV to write")
    ap.add_argument("--categories", nargs="+", default=list(categories))
    ap.add_argument("--control", action="store_true", help=control)
    return ap


def oracle_study_parser(
    doc: str, categories: Sequence[str], out_help: str = "the per-image CSV to write"
) -> argparse.ArgumentParser:
    """The arguments of a study of the suite `all` against the oracle's exactly undone copies
    (:mod:`research.light_oracle`): ``--suite``, ``--oracle``, ``--categories`` (default
    ``categories``), ``--out`` (``out_help``) and ``--summary`` (print the
    summary of a CSV); ``doc``'s first line describes the study."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--suite", type=Path, help="the suite `all` (one folder per category)")
    ap.add_argument("--oracle", type=Path, help="the oracle's copies of it, the same layout")
    ap.add_argument("--categories", nargs="+", default=list(categories))
    ap.add_argument("--out", type=Path, help=out_help)
    ap.add_argument("--summary", type=Path, help="print the summary of this CSV")
    return ap


def record_parser(doc: str, categories: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The arguments of a round that writes one record over seeds: ``--data``, ``--out``,
    ``--seeds`` (1-5) and, when ``categories`` are given, ``--categories`` (default all of
    them); ``doc``'s first line describes the round."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--out", required=True, help="CSV to add rows to")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    if categories:
        ap.add_argument("--categories", nargs="+", default=list(categories), choices=categories)
    return ap
