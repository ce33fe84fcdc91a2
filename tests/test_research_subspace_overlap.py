"""The subspace-overlap study (research.subspace_overlap): the mean squared cosine between
one basis's directions and another's subspace, on bases whose answer is known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from fsad.data import Sample
from fsad.features import FeatureConfig
from research.subspace_overlap import overlap, peak_moved, peak_shares, peaks_in_masks

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


class _Engine:
    """Residuals whose peak patch is known: image 0 peaks at (0, 1), image 1 at (1, 0)."""

    def residuals(self, samples: list) -> torch.Tensor:
        r = torch.zeros(2, 3, 2, 2)
        r[0, :, 0, 1] = torch.tensor([3.0, 4.0, 0.0])  # at the peak: 9 / 25 along e0
        r[0, :, 1, 1] = torch.tensor([0.0, 0.0, 1.0])  # elsewhere: ignored
        r[1, :, 1, 0] = torch.tensor([0.0, 0.0, 2.0])  # at the peak: none along e0
        return r

    def anomaly_maps(self, samples: list) -> torch.Tensor:
        return self.residuals(samples).norm(dim=1)


def test_peak_shares_read_the_residual_at_each_maps_peak_only() -> None:
    share = peak_shares(_Engine(), ["a", "b"], E[:3, :1])
    assert math.isclose(share, (9 / 25 + 0.0) / 2, rel_tol=1e-6)
    assert math.isnan(peak_shares(_Engine(), [], E[:3, :1]))


def test_a_peak_moves_only_beyond_its_neighbouring_patches() -> None:
    plain = torch.zeros(3, 4, 4)
    plain[:, 1, 1] = 1.0  # every plain map peaks at (1, 1)
    projected = torch.zeros(3, 4, 4)
    projected[0, 1, 1] = projected[1, 2, 2] = projected[2, 3, 1] = 1.0  # same, diagonal, 2 away
    assert math.isclose(peak_moved(plain, projected), 1 / 3, rel_tol=1e-6)


def test_peaks_in_masks_lay_each_mask_on_the_grid_and_need_every_mask(tmp_path) -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 255  # the top-left quarter of a square image
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    sample = Sample(tmp_path / "x.png", "widget", "test", "cut", tmp_path / "m.png")
    maps = torch.zeros(2, 8, 8)
    maps[0, 1, 1] = 1.0  # inside the quarter
    maps[1, 6, 6] = 1.0  # far outside
    config = FeatureConfig(resize=64, crop=64, framing="letterbox")
    assert peaks_in_masks(maps, [sample, sample], config) == 0.5
    no_mask = Sample(tmp_path / "x.png", "widget", "test", "cut")
    assert math.isnan(peaks_in_masks(maps, [sample, no_mask], config))
