"""Anomaly-map geometry (fsad.geometry): known values on tiny maps, invariances, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.errors import ConfigError
from fsad.geometry import GeometryConfig, map_geometry, region_shape, ring_index

CFG = GeometryConfig(levels=(0.25, 0.5, 0.75), rings=3)


def _raw(m: np.ndarray, config: GeometryConfig = CFG) -> np.ndarray:
    """The (L2-normalised) geometry row of one ``(h, w)`` map."""
    return map_geometry(torch.tensor(m[None], dtype=torch.float32), config)[0].numpy()


def _unit(v: list[float]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_one_hot_map_has_known_geometry() -> None:
    """A single hot cell at the centre of a 5 x 5 map: extent 1/5 at every level, peak in the
    central ring, a round region of length 0 and one component, median 0."""
    m = np.zeros((5, 5))
    m[2, 2] = 3.0
    expected = [0.2, 0.2, 0.2, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert CFG.dim == len(expected)
    np.testing.assert_allclose(_raw(m), _unit(expected), atol=1e-6)


def test_rows_are_unit_norm_and_scale_invariant() -> None:
    a = torch.rand(4, 7, 9, generator=torch.Generator().manual_seed(0))
    x = map_geometry(a, CFG)
    assert x.shape == (4, CFG.dim) and x.dtype == torch.float32
    np.testing.assert_allclose(x.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(map_geometry(5.0 * a, CFG).numpy(), x.numpy(), atol=1e-6)


def test_geometry_is_invariant_to_quarter_turns_of_a_square_map() -> None:
    a = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(
        map_geometry(torch.rot90(a, 1, dims=(1, 2)), CFG).numpy(),
        map_geometry(a, CFG).numpy(),
        atol=1e-6,
    )


def test_region_shape_tells_lines_blobs_and_scattered_spots_apart() -> None:
    line = np.zeros((16, 16))
    line[8, 2:14] = 1.0
    blob = np.zeros((16, 16))
    blob[6:10, 6:10] = 1.0
    spots = np.zeros((16, 16))
    spots[1, 1] = spots[14, 14] = 1.0
    round_line, len_line, comp_line = region_shape(line, 0.5)
    round_blob, len_blob, comp_blob = region_shape(blob, 0.5)
    assert round_line == pytest.approx(0.0, abs=1e-9) and round_blob == pytest.approx(1.0)
    assert len_line > 2 * len_blob
    # a 12-cell line has variance (12^2 - 1) / 12 along it; half side 8
    assert len_line == pytest.approx(np.sqrt(143 / 12) / 8)
    assert comp_line == comp_blob == 1.0
    assert region_shape(spots, 0.5)[2] == 0.5


def test_rings_grow_from_the_centre() -> None:
    rings = ring_index((5, 5), 3)
    assert rings[2, 2] == 0 and rings[0, 0] == rings[4, 4] == 2
    assert set(np.unique(rings)) == {0, 1, 2}


def test_rim_and_centre_defects_differ_in_the_radial_profile() -> None:
    centre, rim = np.zeros((9, 9)), np.zeros((9, 9))
    centre[4, 4] = 1.0
    rim[0, 4] = 1.0
    assert not np.allclose(_raw(centre), _raw(rim))


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"levels": ()}, "levels"),
        ({"levels": (0.5, 1.0)}, "levels"),
        ({"rings": 0}, "ring"),
        ({"shape_level": 0.0}, "shape_level"),
    ],
)
def test_config_rejects_bad_values(bad: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GeometryConfig(**bad)


def test_bad_maps_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\(N, h, w\)"):
        map_geometry(torch.ones(4, 4))
    maps = torch.ones(3, 4, 4)
    maps[1] = 0.0
    with pytest.raises(ConfigError, match="anomaly map 1 has no positive value"):
        map_geometry(maps)
