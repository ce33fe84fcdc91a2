"""The leave-one-product-out learner (research.lopo): the metric learnt on other products'
labelled defects separates the types of a new product that a raw metric confuses."""

from __future__ import annotations

import numpy as np

from research.lopo import fit_metric, fit_whitening, heads


def product(rng: np.random.Generator, offset: float, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Two defect types apart along axis 0 (by 1), a large nuisance spread along axis 1, the
    product's own offset along axis 2."""
    y = np.repeat([0, 1], n // 2)
    x = rng.normal(scale=0.1, size=(n, 3))
    x[:, 0] += y
    x[:, 1] += rng.normal(scale=5.0, size=n)
    x[:, 2] += offset
    return x, y


def test_metric_from_other_products_helps_the_new_one() -> None:
    rng = np.random.default_rng(0)
    pool = [product(rng, 10.0), product(rng, -10.0)]
    lda = fit_metric(pool)
    xt, yt = product(rng, 3.0, n=200)
    support = np.r_[0, 1, 100, 101]  # 2 shots per type
    query = np.setdiff1d(np.arange(200), support)
    centre = xt[support].mean(axis=0)
    xs, xq = xt[support] - centre, xt[query] - centre
    raw = heads(xs, yt[support], xq, 2)["proto"]
    learnt = heads(lda.transform(xs), yt[support], lda.transform(xq), 2)["proto"]
    assert (learnt == yt[query]).mean() > 0.95
    assert (raw == yt[query]).mean() < 0.8  # the nuisance axis dominates the raw distances


def test_metric_ignores_which_product_a_row_comes_from() -> None:
    rng = np.random.default_rng(1)
    # the products differ only by their offsets along axis 2: centring removes it, so the
    # discriminant direction is the type axis 0, not the product axis 2
    lda = fit_metric([product(rng, 10.0), product(rng, -10.0)])
    direction = np.abs(lda.scalings_[:, 0])
    assert direction.argmax() == 0


def test_whitening_damps_the_within_type_spread_of_other_products() -> None:
    rng = np.random.default_rng(2)
    w = fit_whitening([product(rng, 10.0), product(rng, -10.0)])
    assert w.shape == (3, 3) and np.allclose(w, w.T)
    xt, yt = product(rng, 3.0, n=200)

    def contrast(x: np.ndarray) -> float:
        """Distance of the two type means over the largest within-type spread."""
        gap = np.linalg.norm(x[yt == 1].mean(axis=0) - x[yt == 0].mean(axis=0))
        residual = np.concatenate([x[yt == t] - x[yt == t].mean(axis=0) for t in (0, 1)])
        return float(gap / residual.std(axis=0).max())

    assert contrast(xt) < 0.25  # the nuisance axis (std 5) swamps the type gap (1)
    assert contrast(xt @ w) > 4 * contrast(xt)  # learnt on other products, it carries over
