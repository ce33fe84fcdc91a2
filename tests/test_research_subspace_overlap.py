"""The subspace-overlap study (research.subspace_overlap): the mean squared cosine between
one basis's directions and another's subspace, on bases whose answer is known."""

from __future__ import annotations

import math

import torch

from research.subspace_overlap import overlap

E = torch.eye(4)


def test_a_subspace_holds_itself_and_nothing_orthogonal_to_it() -> None:
    assert overlap(E[:, :2], E[:, :2]) == 1.0
    assert overlap(E[:, :2], E[:, 2:]) == 0.0
    assert overlap(E, E[:, 1:3]) == 1.0  # the whole space holds every direction


def test_a_direction_at_45_degrees_is_half_inside_and_the_mean_is_over_the_basis() -> None:
    diagonal = ((E[:, 0] + E[:, 2]) / math.sqrt(2)).unsqueeze(1)
    assert math.isclose(overlap(E[:, :1], diagonal), 0.5, rel_tol=1e-6)
    both = torch.cat([diagonal, E[:, 1:2]], dim=1)  # one half inside, one fully inside
    assert math.isclose(overlap(E[:, :2], both), 0.75, rel_tol=1e-6)
    assert math.isclose(overlap(both, E[:, :2]), 0.75, rel_tol=1e-6)  # symmetric in size


def test_the_two_readings_share_one_sum_so_they_differ_by_the_sizes_alone() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.linalg.qr(torch.randn(8, 3, generator=generator)).Q
    b = torch.linalg.qr(torch.randn(8, 5, generator=generator)).Q
    assert math.isclose(overlap(a, b) * 5, overlap(b, a) * 3, rel_tol=1e-5)
    assert 0 < overlap(a, b) < overlap(b, a) < 1  # the smaller basis lies more inside
