"""Training-free and light few-shot heads on fixed image descriptors.

Every head takes support descriptors ``(S, D)`` with labels ``(S,)`` and query descriptors
``(Q, D)`` and returns class scores ``(Q, C)`` (higher = more likely). Inductive heads
(:func:`cosine_prototypes`, :func:`logistic_regression`, :func:`product_of_experts`, and the
experts that join a product: :func:`prototype_expert`, :func:`patch_expert`,
:func:`jackknife_logistic`, multiplied by :func:`multiply_proba`) look at one query at a
time; the transductive heads (:func:`soft_kmeans`, :func:`em_prior`,
:func:`self_trained_experts`) also use the unlabelled query set as a whole, never its labels
(they have no argument through which they could enter).
"""

from __future__ import annotations

import numpy as np

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
    from sklearn.linear_model import LogisticRegression

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
    return _softmax(log_p)


def image_to_class(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    dim: int,
) -> np.ndarray:
    """Image-to-class similarity of patch sets (DN4, Li et al. 2019).

    Each row is an image's ``k`` patch vectors flattened (:mod:`fsad.patchsets`). A query's
    score for class c is the mean, over its patches, of the largest cosine similarity to any
    patch of any support image of class c: every query patch finds its nearest counterpart in
    the class's pool, so classes whose images differ among themselves are not averaged away.

    Args:
        support: ``(S, k * dim)``; labels ``(S,)`` in ``range(n_classes)``.
        query: ``(Q, k' * dim)`` (k' may differ from the support's k).
        dim: D, the length of one patch vector.

    Returns:
        ``(Q, C)`` mean best-match cosine similarities in [-1, 1].

    Raises:
        ValueError: a row's length is not a multiple of ``dim``, or a class has no support.
    """
    labels = np.asarray(labels)
    if support.shape[1] % dim or query.shape[1] % dim:
        raise ValueError(f"rows of {support.shape[1]} / {query.shape[1]} values are not "
                         f"sets of {dim}-dim patches")  # fmt: skip
    counts = np.bincount(labels, minlength=n_classes)
    if counts.shape[0] != n_classes or (counts == 0).any():
        raise ValueError(f"every class needs a support image, got counts {counts.tolist()}")
    sp = l2_normalise(support.reshape(-1, dim)).reshape(len(support), -1, dim)  # (S, k, D)
    qp = l2_normalise(query.reshape(-1, dim)).reshape(len(query), -1, dim)  # (Q, k', D)
    out = np.zeros((len(query), n_classes))
    for c in range(n_classes):
        pool = sp[labels == c].reshape(-1, dim)  # (S_c * k, D)
        out[:, c] = (qp @ pool.T).max(2).mean(1)  # (Q, k', S_c k) -> (Q,)
    return out


def patch_expert(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    dim: int,
    scale: float,
) -> np.ndarray:
    """Class probabilities ``(Q, C)`` of :func:`image_to_class`: softmax of ``scale`` times
    the similarities, so it can join a product of experts."""
    return _softmax(scale * image_to_class(support, labels, query, n_classes, dim))


def jackknife_logistic(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    c: float = 10.0,
) -> np.ndarray:
    """Jackknife-bagged :func:`logistic_regression`: the mean of the class probabilities of
    the regressions fitted on the support without one image, over every image whose class
    keeps another (the plain regression when none does, e.g. at one shot). No single support
    image then decides a boundary alone.

    Args:
        support: ``(S, D)``; labels ``(S,)`` in ``range(n_classes)``; query ``(Q, D)``.

    Returns:
        ``(Q, C)`` class probabilities.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=n_classes)
    left_out = [i for i in range(len(support)) if counts[labels[i]] >= 2]
    if not left_out:
        return logistic_regression(support, labels, query, n_classes, c=c)
    keep = np.ones(len(support), dtype=bool)
    total = np.zeros((len(query), n_classes))
    for i in left_out:
        keep[i] = False
        total += logistic_regression(support[keep], labels[keep], query, n_classes, c=c)
        keep[i] = True
    return total / len(left_out)


def prototype_expert(
    support: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    n_classes: int,
    scale: float,
) -> np.ndarray:
    """Class probabilities ``(Q, C)`` of :func:`cosine_prototypes`: softmax of ``scale``
    times the cosine similarities to the class means, so it can join a product of experts."""
    return _softmax(scale * cosine_prototypes(support, labels, query, n_classes))


def multiply_proba(probas: list[np.ndarray]) -> np.ndarray:
    """The product of experts' class probabilities, each ``(Q, C)``, renormalised over
    classes ``(Q, C)``."""
    if not probas:
        raise ValueError("multiply_proba needs at least one expert")
    return _softmax(sum(np.log(p + EPS) for p in probas))


def loo_log_proba(support: np.ndarray, labels: np.ndarray, n_classes: int, c: float) -> np.ndarray:
    """Leave-one-out log-probabilities ``(S, C)`` of :func:`logistic_regression` on the
    support: row ``i`` comes from the regression fitted on every support row but ``i``."""
    labels = np.asarray(labels)
    out = np.zeros((len(support), n_classes))
    for i in range(len(support)):
        keep = np.arange(len(support)) != i
        proba = logistic_regression(support[keep], labels[keep], support[i : i + 1], n_classes, c)
        out[i] = np.log(proba[0] + EPS)
    return out


def loo_choice(
    support_groups: list[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    options: list[tuple[int, ...]],
    c: float = 10.0,
) -> int:
    """Which set of experts to multiply, chosen inside the support set.

    Each option is a tuple of indices into ``support_groups`` (rows ``(S, D_g)`` per block
    group). Its leave-one-out accuracy on the support is that of the product of its experts'
    leave-one-out probabilities (:func:`loo_log_proba`, computed once per expert). Query
    rows and labels are never an input.

    Returns:
        the index of the option with the highest leave-one-out accuracy, the first of equals;
        0 when a class has fewer than 2 support images (leaving one out would remove it).

    Raises:
        ValueError: no option, or an option names no expert or a missing group.
    """
    if not options or any(not o or not set(o) <= set(range(len(support_groups))) for o in options):
        raise ValueError(f"options must be non-empty tuples of group indices, got {options}")
    labels = np.asarray(labels)
    if np.bincount(labels, minlength=n_classes).min() < 2:
        return 0
    needed = sorted(set().union(*options))
    loo = {g: loo_log_proba(support_groups[g], labels, n_classes, c) for g in needed}
    accuracy = [float((sum(loo[g] for g in o).argmax(1) == labels).mean()) for o in options]
    return int(np.argmax(accuracy))  # the first of equals


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
    assign = _softmax(temperature * (xq @ protos.T))
    for _ in range(iterations):
        weights = np.concatenate([onehot, query_weight * assign])  # (S + Q, C)
        points = np.concatenate([xs, xq])
        protos = l2_normalise(weights.T @ points / np.maximum(weights.sum(0)[:, None], EPS))
        assign = _softmax(temperature * (xq @ protos.T))
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


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
