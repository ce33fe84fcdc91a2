"""Few-shot heads: known values, separable toy data, transductive isolation, determinism."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fsad.heads import (
    class_means,
    confident_queries,
    cosine_prototypes,
    em_prior,
    l2_normalise,
    logistic_regression,
    predict,
    product_of_experts,
    self_trained_experts,
    soft_kmeans,
)


def _toy(n_classes: int = 4, shots: int = 2, queries: int = 10, dim: int = 16, seed: int = 0):
    """Well-separated clusters around random class directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 5
    ys = np.repeat(np.arange(n_classes), shots)
    yq = np.repeat(np.arange(n_classes), queries)
    xs = centres[ys] + rng.normal(scale=0.3, size=(len(ys), dim))
    xq = centres[yq] + rng.normal(scale=0.3, size=(len(yq), dim))
    return xs, ys, xq, yq


def test_l2_normalise_unit_rows_and_zero_row() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalise(x)
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    np.testing.assert_allclose(out[1], [0.0, 0.0])


def test_class_means_known_values_and_missing_class() -> None:
    x = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(class_means(x, np.array([0, 0, 1]), 2), [[2.0, 0.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="every class"):
        class_means(x, np.array([0, 0, 0]), 2)


def test_cosine_prototypes_known_scores() -> None:
    xs = np.array([[1.0, 0.0], [0.0, 1.0]])
    scores = cosine_prototypes(xs, np.array([0, 1]), np.array([[2.0, 0.0], [1.0, 1.0]]), 2)
    np.testing.assert_allclose(scores, [[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])


@pytest.mark.parametrize("shots", [1, 3])
@pytest.mark.parametrize(
    "head",
    [
        cosine_prototypes,
        logistic_regression,
        soft_kmeans,
    ],
)
def test_heads_classify_separable_data_perfectly(head, shots: int) -> None:
    xs, ys, xq, yq = _toy(shots=shots)
    scores = head(xs, ys, xq, 4)
    assert scores.shape == (len(yq), 4)
    assert (predict(scores) == yq).all()


def test_soft_kmeans_moves_prototypes_towards_query_clusters() -> None:
    # one support per class sits off-centre; the queries pull the prototypes back
    xs = np.array([[1.0, 0.6], [0.6, 1.0]])
    xq = np.array([[1.0, 0.1]] * 5 + [[0.1, 1.0]] * 5 + [[0.75, 0.7]])
    inductive = predict(cosine_prototypes(xs, np.array([0, 1]), xq, 2))
    transductive = predict(soft_kmeans(xs, np.array([0, 1]), xq, 2, temperature=10))
    assert (transductive[:10] == [0] * 5 + [1] * 5).all()
    assert (inductive[:10] == transductive[:10]).all()


def test_transductive_head_cannot_receive_query_labels() -> None:
    params = set(inspect.signature(soft_kmeans).parameters)
    assert params == {
        "support",
        "labels",
        "query",
        "n_classes",
        "temperature",
        "iterations",
        "query_weight",
    }


def test_heads_are_deterministic() -> None:
    xs, ys, xq, _ = _toy(seed=3)
    for head in (cosine_prototypes, logistic_regression, soft_kmeans):
        np.testing.assert_array_equal(head(xs, ys, xq, 4), head(xs, ys, xq, 4))


def test_logistic_regression_probabilities_sum_to_one() -> None:
    xs, ys, xq, _ = _toy(shots=1)
    proba = logistic_regression(xs, ys, xq, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)


def test_product_of_experts_multiplies_each_groups_probabilities() -> None:
    xs, ys, xq, yq = _toy(n_classes=3, shots=2, queries=4, dim=12)
    a, b = (xs[:, :6], xq[:, :6]), (xs[:, 6:], xq[:, 6:])
    pa = logistic_regression(a[0], ys, a[1], 3, c=10.0)
    pb = logistic_regression(b[0], ys, b[1], 3, c=10.0)
    both = product_of_experts([a, b], ys, 3, c=10.0)
    expected = pa * pb / (pa * pb).sum(1, keepdims=True)
    np.testing.assert_allclose(both, expected, rtol=1e-6)
    np.testing.assert_allclose(both.sum(1), 1.0)
    # one group: logistic regression itself; each group normalised on its own, so scaling
    # one group changes nothing (concatenating the groups would change)
    np.testing.assert_allclose(product_of_experts([a], ys, 3, c=10.0), pa, rtol=1e-6)
    scaled = product_of_experts([a, (10 * b[0], 10 * b[1])], ys, 3, c=10.0)
    np.testing.assert_allclose(scaled, both, rtol=1e-6)
    assert (predict(both) == yq).mean() == 1.0
    with pytest.raises(ValueError, match="at least one block group"):
        product_of_experts([], ys, 3)


def test_em_prior_recovers_a_skewed_query_prior() -> None:
    """Queries drawn 80/20 from two overlapping Gaussians, posteriors of the balanced model:
    EM moves the prior towards 80/20 and shifts the ambiguous queries to the common class."""
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    lik = np.stack([np.exp(-((x + 1) ** 2) / 2), np.exp(-((x - 1) ** 2) / 2)], axis=1)
    balanced = lik / lik.sum(1, keepdims=True)
    adjusted = em_prior(balanced, np.array([3, 3]))
    assert adjusted.mean(0)[1] == pytest.approx(0.2, abs=0.03)
    np.testing.assert_allclose(adjusted.sum(1), 1.0)
    assert (predict(adjusted) == y).mean() > (predict(balanced) == y).mean()


def test_em_prior_keeps_a_query_set_that_matches_the_support_prior() -> None:
    proba = np.array([[0.9, 0.1], [0.1, 0.9]])  # mean = the support's 50/50: a fixed point
    np.testing.assert_allclose(em_prior(proba, np.array([2, 2])), proba)
    assert set(inspect.signature(em_prior).parameters) == {
        "proba", "support_prior", "iterations", "tol"
    }  # fmt: skip
    with pytest.raises(ValueError, match="2 positive frequencies"):
        em_prior(proba, np.array([1, 0]))
    with pytest.raises(ValueError, match="2 positive frequencies"):
        em_prior(proba, np.array([1, 1, 1]))


def test_confident_queries_are_balanced_and_most_confident_first() -> None:
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05], [0.2, 0.8], [0.45, 0.55]])
    rows, labels = confident_queries(proba, per_class=2)
    assert rows.tolist() == [2, 0, 3, 4] and labels.tolist() == [0, 0, 1, 1]
    rows, labels = confident_queries(proba, per_class=5)  # at most what is predicted
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4] and labels.tolist() == [0, 0, 0, 1, 1]


def test_self_training_refits_the_experts_with_pseudo_labelled_queries() -> None:
    xs, ys, xq, yq = _toy(n_classes=3, shots=1, queries=6, dim=12)
    groups = [(xs[:, :6], xq[:, :6]), (xs[:, 6:], xq[:, 6:])]
    first = product_of_experts(groups, ys, 3, c=10.0)
    rows, pseudo = confident_queries(first, 1)
    enlarged = [(np.concatenate([s, q[rows]]), q) for s, q in groups]
    expected = product_of_experts(enlarged, np.concatenate([ys, pseudo]), 3, c=10.0)
    got = self_trained_experts(groups, ys, 3, c=10.0)
    np.testing.assert_allclose(got, expected)
    assert not np.allclose(got, first)  # the pseudo-labelled queries moved the experts
    assert (predict(got) == yq).all()
    assert set(inspect.signature(self_trained_experts).parameters) == {
        "groups", "labels", "n_classes", "c", "per_class"
    }  # fmt: skip


def test_prototype_expert_is_the_softmax_of_scaled_cosines() -> None:
    from fsad.heads import prototype_expert

    support = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    query = np.array([[1.0, 1.0], [0.0, 5.0]])
    p = prototype_expert(support, np.array([0, 0, 1]), query, 2, scale=10.0)
    cos = np.array([[np.sqrt(0.5), np.sqrt(0.5)], [0.0, 1.0]])
    expected = np.exp(10 * cos) / np.exp(10 * cos).sum(1, keepdims=True)
    np.testing.assert_allclose(p, expected)
