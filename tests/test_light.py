"""fsad.light: the relit copies a relit bank holds take the three lights in turn."""

from __future__ import annotations

import numpy as np

from fsad.light import N_VIEWS, lit_views, relit


def test_relit_takes_the_views_in_turn() -> None:
    image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    views = lit_views(image)
    assert len(views) == N_VIEWS == 3
    for index in range(7):
        assert np.array_equal(relit(image, index), views[index % 3])
    assert not np.array_equal(views[0], views[1]) and not np.array_equal(views[1], views[2])
