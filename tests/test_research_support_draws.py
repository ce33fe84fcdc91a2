"""Support draws: draw 0 is the paper's split, a drawn support never meets its queries, the
same draw gives the same images, and two folders with the same file names get the same
support images (so the suite's gap stays paired)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data import Sample, few_shot_split
from research.support_draws import drawn_split


def _test_set(root: str) -> list[Sample]:
    """Two defect types of 8 and 7 images, and 3 good ones, listed out of order."""
    counts = {"crack": 8, "dent": 7, "good": 3}
    samples = [
        Sample(path=Path(root) / label / f"{i:03d}.png", category="part", split="test",
               label=label)
        for label, n in counts.items()
        for i in range(n)
    ]  # fmt: skip
    return samples[::-1]


def test_draw_zero_is_the_papers_split() -> None:
    test = _test_set("/a")
    paper, drawn = few_shot_split(test, 3), drawn_split(test, 3, 0)
    assert [s.path for s in drawn.support] == [s.path for s in paper.support]
    assert [s.path for s in drawn.query] == [s.path for s in paper.query]


def test_a_drawn_support_never_meets_its_queries_and_repeats_by_draw() -> None:
    test = _test_set("/a")
    one, again, two = (drawn_split(test, 3, d) for d in (1, 1, 2))
    assert not {s.path for s in one.support} & {s.path for s in one.query}
    assert len(one.support) == 6 and len(one.query) == 15 - 6  # good images stay out
    np.testing.assert_array_equal(one.support_labels, [0, 0, 0, 1, 1, 1])
    assert all(s.label == one.classes[y] for s, y in zip(one.query, one.query_labels, strict=True))
    assert [s.path for s in one.support] == [s.path for s in again.support]
    assert [s.path for s in one.support] != [s.path for s in two.support]
    assert [s.path for s in one.support] != [s.path for s in drawn_split(test, 3, 0).support]


def test_two_folders_with_the_same_names_draw_the_same_images() -> None:
    a, b = drawn_split(_test_set("/all"), 3, 4), drawn_split(_test_set("/none")[::-1], 3, 4)
    assert [s.path.relative_to("/all") for s in a.support] == [
        s.path.relative_to("/none") for s in b.support
    ]
