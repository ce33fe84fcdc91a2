"""Leave-one-product-out transfer (issue #23, item 3): a protocol of its own, reported apart.

A factory often holds labelled defects of its *other* products. Protocol ``lopo``: for the
evaluated category, a metric is learnt from every labelled defect image of the other
categories (never one of the evaluated category's), then the evaluated category's n-shot
support (the paper's split: first n files per type) fits a head in that metric and its
queries are scored. Its numbers are never put in a column of the paper's protocol, which
allows no labels beyond the support.

The learner, fixed before it ran (no setting was tried on these categories' queries):

- rows: ``anomaly_lr``'s descriptor (:data:`fsad.methods.anomaly_guided.ANOMALY_BLOCKS`) of
  the category's residual engine (centre crop, 224 px, the grid's seed);
- each training category's rows are centred on their mean, so what is learnt is how defect
  types differ *within* a product, not how products differ; the evaluated category's rows
  are centred on its support's mean (no query is read);
- the metric: scikit-learn's ``LinearDiscriminantAnalysis`` (eigen solver, Ledoit-Wolf
  shrinkage) on the pooled training rows with labels (category, type); the evaluated rows are
  projected on all its discriminant directions;
- heads: cosine prototypes (``lopo_lda_proto``) and logistic regression, C = 10
  (``lopo_lda_lr``). Both also run on the unprojected centred rows (``lopo_none_proto``,
  ``lopo_none_lr``, the same cells without the transfer), so the table shows what the learnt
  metric adds.

Second learner (``lopo_white_*``), added after the first one's rows showed it 15-20 points
below no transfer (its projection keeps only as many directions as the training products
have types, ~12), and fixed before it ran: no reduction, the rows whitened by the
within-type covariance of the training products (Ledoit-Wolf shrinkage), a Mahalanobis
metric that damps the directions in which defects of one type vary on other products.

Rows go to ``results/lopo/results.csv`` in the grid's column layout (``dataset = lopo``), a
finished (category, seed) replacing its earlier rows. Usage::

    python -m research.lopo --data "$FSAD_DATA" --out results/lopo/results.csv
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from fsad.data import few_shot_split, load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.evaluate import git_commit
from fsad.heads import cosine_prototypes, logistic_regression, predict
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, LR_C
from fsad.recipe import Group, Recipe, sample_rows
from fsad.utils import atomic_write_csv
from research.records import data_root, merged, record_parser

CATEGORIES = ("bottle", "transistor", "screw", "metal_nut")
SHOTS = (1, 3, 5)
RECIPE = Recipe((Group(ANOMALY_BLOCKS),), c=LR_C)
CELL = ["category", "seed"]


def defect_rows(engine: ResidualEngine) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(N, D)`` of every defective test image of the engine's category and their type
    labels ``(N,)``."""
    defects = [s for s in engine.category.test if not s.is_good]
    types = sorted({s.label for s in defects})
    x = sample_rows(engine, RECIPE, defects)[0]
    return x, np.asarray([types.index(s.label) for s in defects])


def fit_metric(pool: Sequence[tuple[np.ndarray, np.ndarray]]) -> LinearDiscriminantAnalysis:
    """LDA on the training categories' rows, each centred on its own mean; labels
    (category k, type t) become one class each."""
    xs, ys = [], []
    for k, (x, y) in enumerate(pool):
        xs.append(x - x.mean(axis=0))
        ys.append(k * 1000 + y)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")
    return lda.fit(np.concatenate(xs), np.concatenate(ys))


def fit_whitening(pool: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``(D, D)`` inverse square root of the training products' within-type covariance
    (each row minus its (category, type) mean; Ledoit-Wolf shrinkage)."""
    residual = []
    for x, y in pool:
        for t in np.unique(y):
            residual.append(x[y == t] - x[y == t].mean(axis=0))
    cov = LedoitWolf(assume_centered=True).fit(np.concatenate(residual)).covariance_
    values, vectors = np.linalg.eigh(cov)
    return (vectors / np.sqrt(values)) @ vectors.T


def heads(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Predicted labels ``(Q,)`` of each head."""
    return {
        "proto": predict(cosine_prototypes(xs, ys, xq, n)),
        "lr": predict(logistic_regression(xs, ys, xq, n, c=LR_C)),
    }


def evaluate(
    target: ResidualEngine, lda: LinearDiscriminantAnalysis, white: np.ndarray, shots: int
) -> list[dict]:
    """Rows of every method at one shot count for the target engine, in the metrics learnt
    on the other products (:func:`fit_metric`, :func:`fit_whitening`)."""
    split = few_shot_split(target.category.test, shots)
    xs = sample_rows(target, RECIPE, split.support)[0]
    xq = sample_rows(target, RECIPE, split.query)[0]
    centre = xs.mean(axis=0)  # the support's mean: no query is read
    xs, xq = xs - centre, xq - centre
    spaces = {
        "lda": (lda.transform(xs), lda.transform(xq)),
        "white": (xs @ white, xq @ white),
        "none": (xs, xq),
    }
    qy = np.asarray(split.query_labels)
    out = []
    for space, (s, q) in spaces.items():
        for head, pred in heads(s, np.asarray(split.support_labels), q, split.n_classes).items():
            out.append({
                "method": f"lopo_{space}_{head}", "shots": shots,
                "accuracy": float((pred == qy).mean()), "n_query": len(qy),
                "n_support": len(split.support), "n_classes": split.n_classes,
                "chance": float(np.bincount(qy).max() / len(qy)),
                "info": f"dim={s.shape[1]}",
            })  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = record_parser(__doc__).parse_args(argv)
    root = data_root(args.data)
    out, commit = Path(args.out), git_commit(Path(__file__).resolve().parents[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    cats = {c: load_category(Path(root) / "mvtec_ad", "mvtec_ad", c) for c in CATEGORIES}
    for seed in args.seeds:
        t0 = time.time()
        engines = {c: ResidualEngine(d, EngineConfig(), seed=seed) for c, d in cats.items()}
        rows_of = {c: defect_rows(e) for c, e in engines.items()}
        for name, engine in engines.items():
            pool = [rows_of[c] for c in CATEGORIES if c != name]  # never the evaluated one
            lda, white = fit_metric(pool), fit_whitening(pool)  # once per evaluated product
            rows = [r for k in SHOTS for r in evaluate(engine, lda, white, k)]
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for r in rows:
                r.update(dataset="lopo", category=name, seed=seed, git_commit=commit,
                         seconds=round(time.time() - t0, 1), timestamp=stamp)  # fmt: skip
                print(f"{name} seed {seed} {r['method']} {r['shots']}-shot: "
                      f"{r['accuracy']:.3f}", flush=True)  # fmt: skip
            atomic_write_csv(out, merged(out, rows, CELL))


if __name__ == "__main__":
    main()
