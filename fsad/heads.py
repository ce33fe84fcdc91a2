"""Training-free and light few-shot heads on fixed image descriptors.

Every head takes support descriptors ``(S, D)`` with labels ``(S,)`` and query descriptors
``(Q, D)`` and returns class scores ``(Q, C)`` (higher = more likely). Inductive heads
(:func:`cosine_prototypes`, :func:`logistic_regression`, :func:`product_of_experts`, and
:func:`prototype_expert`, which joins a product through :func:`multiply_proba`) look at one
query at a time; the transductive heads (:func:`soft_kmeans`, :func:`em_prior`,
:func:`self_trained_experts`) also use the unlabelled query set as a whole, never its labels
(they have no argument through which they could enter).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

EPS = 1e-12


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` ``(N, D)`` scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)


def class_means(x: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class-mean prototypes ``(C, D)`` of descriptors ``x`` ``(S, D)``.

    Raises:
        ValueError: a class in ``range(n_classes)`` has no support descriptor.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=n_classes)
    if counts.shape[0] != n_classes or (counts == 0).any():
        raise ValueError(f"every class needs a support descriptor, got counts {counts.tolist()}")
    protos = np.zeros((n_classes, x.shape[1]), dtype=np.float64)
    np.add.at(protos, labels, x)
    return protos / counts[:, None]


def cosine_prototypes(
    support: np.ndarray, labels: np.ndarray, query: np.ndarray, n_classes: int
) -> np.ndarray:
    """Cosine similarity of each query to the mean of each class's normalised support.

    Args:
        support: ``(S, D)`` descriptors; labels ``(S,)`` in ``range(n_classes)``.
        query: ``(Q, D)`` descriptors.
        n_classes: C.

    Returns:
        ``(Q, C)`` cosine similarities.
    """
    protos = l2_normalise(class_means(l2_normalise(support), labels, n_classes))
    return l2_normalise(query) @ protos.T


def logistic_regression(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    c: float = 10.0,
    seed: int = 0,
) -> np.ndarray:
    """Multinomial logistic regression (L2 penalty, inverse strength ``c``) on L2-normalised
    descriptors; returns class probabilities ``(Q, C)``."""
    xs, xq = l2_normalise(support), l2_normalise(query)
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(xs, labels)
    proba = np.zeros((xq.shape[0], n_classes))
    proba[:, clf.classes_] = clf.predict_proba(xq)
    return proba


def product_of_experts(
    groups: list[tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    n_classes: int,
    c: float = 10.0,
) -> np.ndarray:
    """One logistic regression per block group, their probabilities multiplied.

    Each expert sees one group (e.g. one engine's residual blocks, one encoder's zoom
    windows), L2-normalised on its own, so no group can dominate by its dimension; the
    product ``prod_g p_g(c | x)`` is renormalised over classes.

    Args:
        groups: per group, support ``(S, D_g)`` and query ``(Q, D_g)`` rows.
        labels: ``(S,)`` in ``range(n_classes)``.
        c: each expert's inverse L2 strength.

    Returns:
        ``(Q, C)`` class probabilities.
    """
    if not groups:
        raise ValueError("product_of_experts needs at least one block group")
    log_p = sum(
        np.log(logistic_regression(xs, labels, xq, n_classes, c=c) + EPS) for xs, xq in groups
    )
    return softmax(log_p)


def prototype_expert(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    scale: float,
) -> np.ndarray:
    """Class probabilities ``(Q, C)`` of :func:`cosine_prototypes`: softmax of ``scale``
    times the cosine similarities to the class means, so it can join a product of experts."""
    return softmax(scale * cosine_prototypes(support, labels, query, n_classes))


def multiply_proba(probas: list[np.ndarray]) -> np.ndarray:
    """The product of experts' class probabilities, each ``(Q, C)``, renormalised over
    classes ``(Q, C)``."""
    if not probas:
        raise ValueError("multiply_proba needs at least one expert")
    return softmax(sum(np.log(p + EPS) for p in probas))


def soft_kmeans(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    temperature: float = 20.0,
    iterations: int = 10,
    query_weight: float = 1.0,
) -> np.ndarray:
    """Transductive refinement: soft k-means on the sphere initialised from prototypes.

    Prototypes start as class means of the normalised support. Each iteration assigns
    every query softly (softmax of ``temperature * cosine``) and recomputes each prototype
    as the mean of its support (hard labels) plus the queries weighted by their soft
    assignment times ``query_weight``. Query labels are never an input.

    Returns:
        ``(Q, C)`` soft assignments after the last iteration.
    """
    xs, xq = l2_normalise(support), l2_normalise(query)
    onehot = np.eye(n_classes)[np.asarray(labels)]  # (S, C)
    protos = l2_normalise(class_means(xs, labels, n_classes))
    assign = softmax(temperature * (xq @ protos.T))
    for _ in range(iterations):
        weights = np.concatenate([onehot, query_weight * assign])  # (S + Q, C)
        points = np.concatenate([xs, xq])
        protos = l2_normalise(weights.T @ points / np.maximum(weights.sum(0)[:, None], EPS))
        assign = softmax(temperature * (xq @ protos.T))
    return assign


def em_prior(
    proba: np.ndarray,
    support_prior: np.ndarray,
    iterations: int = 100,
    tol: float = 1e-6,
) -> np.ndarray:
    """Transductive prior adjustment (Saerens, Latinne and Decaestecker, 2002).

    A head fitted on the support assumes its class frequencies ``pi_s``; the query set may
    hold the classes in other proportions ``pi`` (a type with few images, such as tire's
    ``combined``, gets as many support images as the others). EM on the unlabelled queries
    alternates ``p(c | x) ∝ p_s(c | x) pi(c) / pi_s(c)`` and ``pi = mean_x p(c | x)`` from
    ``pi = pi_s`` until ``pi`` moves less than ``tol``. Query labels are never an input.

    Args:
        proba: ``(Q, C)`` class probabilities of a head fitted on the support.
        support_prior: ``(C,)`` class frequencies of the support, positive.

    Returns:
        ``(Q, C)`` adjusted probabilities.

    Raises:
        ValueError: ``support_prior`` does not match ``proba`` or is not positive.
    """
    proba = np.asarray(proba, dtype=np.float64)
    base = np.asarray(support_prior, dtype=np.float64)
    if base.shape != proba.shape[1:] or (base <= 0).any():
        raise ValueError(
            f"support_prior must be {proba.shape[1]} positive frequencies, got {base.tolist()}"
        )
    base = base / base.sum()
    prior, adjusted = base, proba
    for _ in range(iterations):
        adjusted = proba * (prior / base)
        adjusted /= np.maximum(adjusted.sum(1, keepdims=True), EPS)
        new = adjusted.mean(0)
        done = np.abs(new - prior).max() < tol
        prior = new
        if done:
            break
    return adjusted


def confident_queries(proba: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced pseudo-labels: for each class, the (at most) ``per_class`` queries predicted
    as that class with the highest probability.

    Args:
        proba: ``(Q, C)`` class probabilities.

    Returns:
        query indices ``(K,)`` and their pseudo-labels ``(K,)``, both int64.
    """
    pred = predict(proba)
    picked, labels = [], []
    for c in range(proba.shape[1]):
        rows = np.flatnonzero(pred == c)
        rows = rows[np.argsort(-proba[rows, c], kind="stable")][:per_class]
        picked.append(rows)
        labels.append(np.full(len(rows), c))
    return np.concatenate(picked).astype(np.int64), np.concatenate(labels).astype(np.int64)


def self_trained_experts(
    groups: list[tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    n_classes: int,
    c: float = 10.0,
    per_class: int | None = None,
) -> np.ndarray:
    """Transductive self-training of :func:`product_of_experts`, one round.

    The product fitted on the support labels the queries; for each class, the ``per_class``
    queries it predicts as that class most confidently (default: as many as the class's
    support images; :func:`confident_queries`) join the support with those pseudo-labels,
    and the experts are fitted again on the enlarged set. Query labels are never an input.

    Returns:
        ``(Q, C)`` class probabilities of the refitted product.
    """
    labels = np.asarray(labels)
    first = product_of_experts(groups, labels, n_classes, c=c)
    k = int(np.bincount(labels, minlength=n_classes).min()) if per_class is None else per_class
    rows, pseudo = confident_queries(first, k)
    enlarged = [(np.concatenate([xs, xq[rows]]), xq) for xs, xq in groups]
    return product_of_experts(enlarged, np.concatenate([labels, pseudo]), n_classes, c=c)


def predict(scores: np.ndarray) -> np.ndarray:
    """Arg-max class per row of ``scores`` ``(Q, C)`` as int64."""
    return np.asarray(scores).argmax(1).astype(np.int64)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(Q, C)`` scores; returns ``(Q, C)``."""
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
