"""Paper-style tables from a results folder: categories x shots, mean +- sample std over seeds.

Every function returns a DataFrame so the book can show or plot it; :func:`format_report`
renders the text that ``fsad report`` prints. Percentages are used throughout, as in the
paper's tables. The paper's own numbers (transcribed in ``results/paper/``) can be put next
to ours for the same categories.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fsad.errors import FsadError
from fsad.evaluate import RESULTS_FILE, read_results

METRICS = ("accuracy", "macro_f1")
AVERAGE = "Average"
PAPER_FILE = "paper_per_category.csv"
PAPER_AVERAGES_FILE = "paper_averages.csv"
#: the project's accuracy targets (issue 7): (dataset, shots, least mean accuracy in %) of
#: the average over the dataset's evaluated categories, means over seeds 1-5
TARGETS = (("mvtec_ad", 1, 72.0), ("mvtec_ad", 5, 85.0), ("mvtec_3d", 4, 65.0))


def paper_dir() -> Path:
    """``$FSAD_PAPER_RESULTS`` if set, else the repository's ``results/paper``."""
    env = os.environ.get("FSAD_PAPER_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "results" / "paper"


def find_results_dir(explicit: str | os.PathLike = "", start: Path | None = None) -> Path:
    """``explicit`` if given, else the first ``results/`` folder holding ``paper/`` at or
    above ``start`` (default: the working directory), as a book chapter looks for it.

    Raises:
        FsadError: no such folder.
    """
    if explicit:
        return Path(explicit)
    start = start or Path.cwd()
    for folder in [start, *start.parents]:
        if (folder / "results" / "paper").is_dir():
            return folder / "results"
    raise FsadError(f"no results/ folder found at or above {start}; set results_dir")


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Rows of a results folder (or of a ``results.csv`` given directly).

    Raises:
        FsadError: no results file there, or it holds no rows.
    """
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not (folder / RESULTS_FILE).is_file():
        raise FsadError(f"no {RESULTS_FILE} in {folder} (run `fsad run --out {folder}` first)")
    frame = read_results(folder)
    if frame.empty:
        raise FsadError(f"{folder / RESULTS_FILE} holds no rows")
    return frame


def latest_config(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep, per (dataset, method), only the rows of the most recent config hash.

    A folder can hold rows of several configurations (an option changed between runs);
    mixing them in one mean would be wrong.

    Returns:
        The kept rows and one note per dropped configuration.
    """
    keep, notes = [], []
    for (dataset, method), group in results.groupby(["dataset", "method"], sort=False):
        latest = group.groupby("config_hash")["timestamp"].max().sort_values()
        chosen = latest.index[-1]
        keep.append(group[group["config_hash"] == chosen])
        for old in latest.index[:-1]:
            n = int((group["config_hash"] == old).sum())
            notes.append(f"{dataset}/{method}: ignored {n} rows of older config {old}")
    return pd.concat(keep, ignore_index=True), notes


def summarize(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per (dataset, method, category, shots): mean and sample std (ddof=1) over seeds, in %.

    Returns:
        Columns ``dataset, method, category, shots, mean, std, n_seeds, n_query, chance``
        (``chance`` = majority-class rate in %; ``std`` is NaN with one seed).
    """
    _check_metric(results, metric)
    keys = ["dataset", "method", "category", "shots"]
    frame = results.assign(
        value=100.0 * results[metric].astype(float), chance=100.0 * results["chance"]
    )
    out = frame.groupby(keys, sort=False).agg(
        mean=("value", "mean"),
        std=("value", lambda v: v.std(ddof=1)),
        n_seeds=("seed", "nunique"),
        n_query=("n_query", "first"),
        chance=("chance", "first"),
    )
    return out.reset_index()


def average_over_categories(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """The paper's Average row: per (dataset, method, shots), the mean over categories of the
    per-category means (each over all of that category's seeds); ``std`` is the sample std over seeds of the per-seed category mean,
    taken over the seeds that every category has (a seed some categories lack would average
    a different set of categories), and ``n_seeds`` counts those complete seeds.

    Returns:
        Columns ``dataset, method, shots, mean, std, n_categories, n_seeds`` (in %).
    """
    _check_metric(results, metric)
    frame = results.assign(value=100.0 * results[metric].astype(float))
    keys = ["dataset", "method", "shots"]
    per_cat = frame.groupby(keys + ["category"], sort=False)["value"].mean().reset_index()
    mean = per_cat.groupby(keys, sort=False).agg(
        mean=("value", "mean"), n_categories=("category", "nunique")
    )
    per_seed = (
        frame.groupby(keys + ["seed"], sort=False)
        .agg(value=("value", "mean"), cats=("category", "nunique"))
        .reset_index()
        .merge(mean["n_categories"].reset_index(), on=keys)
    )
    per_seed = per_seed[per_seed["cats"] == per_seed["n_categories"]]  # complete seeds only
    spread = per_seed.groupby(keys, sort=False).agg(
        std=("value", lambda v: v.std(ddof=1)), n_seeds=("seed", "nunique")
    )
    out = mean.join(spread)
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    return out.reset_index()[
        ["dataset", "method", "shots", "mean", "std", "n_categories", "n_seeds"]
    ]


def load_paper_numbers(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's per-category numbers (tidy: ``source_table, method, dataset, include_good,
    category, shots, accuracy, primary``; accuracy in %).

    Raises:
        FsadError: the transcription file is missing.
    """
    path = Path(folder or paper_dir()) / PAPER_FILE
    if not path.is_file():
        raise FsadError(f"paper numbers not found: {path}")
    return pd.read_csv(path)


def paper_reference(
    paper: pd.DataFrame, dataset: str, method: str, include_good: bool = False
) -> pd.DataFrame:
    """The paper's main numbers for ``(dataset, method)`` as ``category, shots, paper``."""
    sel = paper[
        (paper["dataset"] == dataset)
        & (paper["method"] == method)
        & (paper["include_good"].astype(bool) == bool(include_good))
        & paper["primary"].astype(bool)
    ]
    return sel[["category", "shots", "accuracy"]].rename(columns={"accuracy": "paper"})


def _cell(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.2f}" if std is None or math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _span(values: pd.Series, fmt: str = "{:.0f}") -> str:
    lo, hi = float(values.min()), float(values.max())
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"


def paper_table(
    results: pd.DataFrame,
    dataset: str,
    method: str,
    metric: str = "accuracy",
    paper: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The paper-style table of one (dataset, method).

    Rows: categories then ``Average``; columns ``"<n>-shot"`` with ``"mean ± std"`` in %,
    ``seeds``, ``queries`` and ``chance`` (%; ranges over shots); with ``paper`` (from
    :func:`load_paper_numbers`), a ``"paper <n>-shot"`` column after each of ours, the
    Average being the paper's mean over the same categories.
    """
    rows = results[(results["dataset"] == dataset) & (results["method"] == method)]
    if rows.empty:
        raise FsadError(f"no rows for method '{method}' on dataset '{dataset}'")
    summ = summarize(rows, metric)
    avg = average_over_categories(rows, metric)
    shots = sorted(summ["shots"].unique())
    categories = list(dict.fromkeys(summ["category"]))
    ref = None
    if paper is not None:
        include_good = (
            bool(rows["include_good"].astype(bool).any()) if "include_good" in rows else False
        )
        ref = paper_reference(paper, dataset, method, include_good)
        if ref.empty:  # the paper has no numbers for this method: no empty columns
            ref = None
    table = pd.DataFrame(index=pd.Index(categories + [AVERAGE], name="category"))
    for n in shots:
        s = summ[summ["shots"] == n].set_index("category")
        a = avg[avg["shots"] == n].iloc[0]
        table[f"{n}-shot"] = [
            _cell(s.at[c, "mean"], s.at[c, "std"]) if c in s.index else "-" for c in categories
        ] + [_cell(a["mean"], a["std"])]
        if ref is not None:
            r = ref[ref["shots"] == n].set_index("category")["paper"]
            vals = [r.get(c, np.nan) for c in categories]
            known = [v for v in vals if not np.isnan(v)]
            mean_known = float(np.mean(known)) if len(known) == len(categories) else np.nan
            table[f"paper {n}-shot"] = [_cell(v, np.nan) for v in vals] + [
                _cell(mean_known, np.nan)
            ]
    by_cat = summ.groupby("category", sort=False)
    table["seeds"] = [_span(by_cat.get_group(c)["n_seeds"]) for c in categories] + [
        _span(avg["n_seeds"])
    ]
    table["queries"] = [_span(by_cat.get_group(c)["n_query"]) for c in categories] + [""]
    table["chance"] = [_span(by_cat.get_group(c)["chance"], "{:.1f}") for c in categories] + [""]
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub/MyST markdown table of ``table`` (its index becomes the first column)."""
    frame = table.reset_index()
    head = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in frame.itertuples(index=False):
        cells = [f"**{v}**" if v == AVERAGE else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(
    results: pd.DataFrame,
    metric: str = "accuracy",
    with_paper: bool = False,
    markdown: bool = False,
) -> str:
    """The text ``fsad report`` prints: one paper-style table per (dataset, method)."""
    results, notes = latest_config(results)
    paper = load_paper_numbers() if with_paper else None
    blocks = []
    for (dataset, method), rows in results.groupby(["dataset", "method"], sort=False):
        table = paper_table(rows, dataset, method, metric, paper)
        config = ", ".join(sorted(rows["config_hash"].astype(str).unique()))
        backbone = (
            ", ".join(sorted(rows["backbone"].astype(str).unique())) if "backbone" in rows else "?"
        )
        title = (
            f"{method} on {dataset}: {metric} (%), mean ± sample std over seeds; "
            f"backbone {backbone}; config {config}"
        )
        body = to_markdown(table) if markdown else table.to_string()
        blocks.append(f"{'### ' if markdown else ''}{title}\n\n{body}")
    text = "\n\n".join(blocks)
    if with_paper and "paper " in text:
        text += (
            "\n\npaper: the authors' numbers for the same categories (ResNet-50 on the full "
            "datasets); our backbone and data differ, compare trends, not decimals."
        )
    if notes:
        text += "\n\n" + "\n".join(f"note: {n}" for n in notes)
    return text


def _check_metric(results: pd.DataFrame, metric: str) -> None:
    if metric not in results.columns:
        raise FsadError(
            f"unknown metric '{metric}' (results have: {', '.join(m for m in METRICS if m in results)})"
        )
