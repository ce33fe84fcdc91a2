"""Figures of experiment results: accuracy vs shots (the paper's Figure 6) and confusion matrices.

Functions build :class:`matplotlib.figure.Figure` objects without pyplot (no global state);
callers display or save them. Inputs are the tidy frames of :mod:`fsad.evaluate`
(``results.csv`` and ``predictions.csv.gz``) or the paper's transcribed numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fsad.errors import FsadError
from fsad.report import average_over_categories, paper_subset_average


def accuracy_vs_shots(
    results: pd.DataFrame,
    metric: str = "accuracy",
    methods: Sequence[str] | None = None,
    paper: pd.DataFrame | None = None,
    title: str | None = None,
) -> Figure:
    """Mean over categories of the per-category mean ``metric`` against shots, one line per
    method, with a +- 1 sample-std band over seeds and the chance level (mean over categories
    of the majority-class rate); the paper's averages (``method, shots, accuracy`` in %) as
    dashed lines when ``paper`` is given.

    Args:
        results: tidy result rows (``method, category, shots, seed, <metric>, chance``).
        metric: column to plot (fractions in ``results``; plotted in %).
        methods: methods to draw (default: all, in order of appearance).
        paper: optional paper averages for the same methods.
        title: figure title.
    """
    if results.empty:
        raise FsadError("no result rows to plot")
    methods = list(methods or dict.fromkeys(results["method"]))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, method in enumerate(methods):
        rows = results[results["method"] == method]
        if rows.empty:
            raise FsadError(f"no rows for method '{method}'")
        avg = average_over_categories(rows, metric).sort_values("shots")
        color = f"C{i}"
        x, m, s = avg["shots"].to_numpy(), avg["mean"].to_numpy(), avg["std"].fillna(0).to_numpy()
        ax.plot(x, m, marker="o", color=color, label=method)
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, linewidth=0)
        if paper is not None:
            ref = paper[paper["method"] == method].sort_values("shots")
            if not ref.empty:
                ax.plot(
                    ref["shots"],
                    ref["accuracy"],
                    ls="--",
                    marker="x",
                    color=color,
                    label=f"{method} (paper)",
                )
    chance = results.groupby(["category", "shots"])["chance"].mean().groupby("shots").mean() * 100
    ax.plot(chance.index, chance.to_numpy(), ls=":", color="grey", label="chance (majority class)")
    ax.set_xticks(sorted(results["shots"].unique()))
    ax.set_xlabel("shots per defect type (n)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title or f"{metric} vs shots (mean over categories, ± std over seeds)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def confusion_frame(
    predictions: pd.DataFrame, classes: Sequence[str] | None = None
) -> pd.DataFrame:
    """Counts of (true, predicted) class pairs: rows = true, columns = predicted.

    Args:
        predictions: rows with ``true_label`` and ``predicted_label`` (already filtered to
            the runs to pool, e.g. one category, method and shots over all seeds).
        classes: class order (default: sorted labels seen).
    """
    labels = list(
        classes or sorted(set(predictions["true_label"]) | set(predictions["predicted_label"]))
    )
    table = pd.crosstab(predictions["true_label"], predictions["predicted_label"])
    return table.reindex(index=labels, columns=labels, fill_value=0)


def confusion_matrix_figure(
    predictions: pd.DataFrame,
    classes: Sequence[str] | None = None,
    normalize: bool = True,
    title: str | None = None,
) -> Figure:
    """A confusion-matrix heat map of pooled predictions (rows normalised to recall when
    ``normalize``), with counts or rates written in the cells."""
    counts = confusion_frame(predictions, classes)
    values = counts.to_numpy(dtype=float)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    n = len(counts)
    fig = Figure(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), counts.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), counts.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = values.max() if values.size else 1
    for r in range(n):
        for c in range(n):
            text = f"{values[r, c]:.2f}" if normalize else f"{int(values[r, c])}"
            ax.text(
                c,
                r,
                text,
                ha="center",
                va="center",
                fontsize="small",
                color="white" if values[r, c] > 0.6 * top else "black",
            )
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title or ("confusion (row-normalised)" if normalize else "confusion (counts)"))
    return fig


def accuracy_per_dataset(results: pd.DataFrame, paper: pd.DataFrame | None = None) -> list[Figure]:
    """:func:`accuracy_vs_shots` once per dataset of ``results``, each with the paper's
    per-category numbers averaged over the *same* categories as dashed lines.

    Args:
        results: tidy result rows of one or more datasets and methods.
        paper: the paper's per-category numbers (:func:`fsad.report.load_paper_numbers`);
            None: no paper lines.

    Returns:
        One figure per dataset, in sorted order.
    """
    figures = []
    for dataset, rows in results.groupby("dataset"):
        ref = None if paper is None else paper_subset_average(rows, paper)
        title = f"{dataset}: accuracy vs shots (mean over {rows['category'].nunique()} categories)"
        figures.append(accuracy_vs_shots(rows, paper=ref, title=title))
    return figures


def largest_shot_confusions(
    predictions: pd.DataFrame,
    methods: Sequence[str] | None = None,
    classes: dict[str, Sequence[str]] | None = None,
) -> list[Figure]:
    """One confusion matrix per (category, method) at that pair's largest shot count,
    predictions pooled over seeds, titled with the seeds and the pooled accuracy.

    Args:
        predictions: per-query rows (``category, method, shots, seed, true_label,
            predicted_label``), e.g. :func:`fsad.evaluate.read_predictions`.
        methods: methods drawn, in this order (default: all, as they appear).
        classes: per category, the class order (default: the sorted labels seen).

    Returns:
        Figures in the order (category, method) appear in ``predictions``.
    """
    sel = predictions if methods is None else predictions[predictions["method"].isin(methods)]
    order = list(methods or dict.fromkeys(sel["method"]))
    figures = []
    for category in dict.fromkeys(sel["category"]):
        for method in order:
            rows = sel[(sel["category"] == category) & (sel["method"] == method)]
            if rows.empty:
                continue
            n = int(rows["shots"].max())
            rows = rows[rows["shots"] == n]
            acc = float((rows["true_label"] == rows["predicted_label"]).mean())
            title = (
                f"{category}: {method}, {n}-shot, {rows['seed'].nunique()} seed(s)\n"
                f"accuracy {acc:.1%}"
            )
            figures.append(
                confusion_matrix_figure(rows, (classes or {}).get(category), title=title)
            )
    return figures
