"""The candidate heads of scripts/explore_synth.py on small fake rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
explore_synth = pytest.importorskip("explore_synth")

from fsad.heads import product_of_experts  # noqa: E402


def _rows(seed: int = 0) -> tuple[dict[str, slice], np.ndarray, np.ndarray, np.ndarray]:
    """Four-column blocks for every row group, three classes of four support rows."""
    names = (*explore_synth.GROUPS, *explore_synth.GEO_GROUPS)
    slices = {g: slice(4 * i, 4 * (i + 1)) for i, g in enumerate(names)}
    rng = np.random.default_rng(seed)
    ys = np.repeat(np.arange(3), 4)
    centres = rng.normal(size=(3, 4 * len(names))) * 3
    xs = centres[ys] + rng.normal(size=(len(ys), 4 * len(names)))
    xq = centres[np.arange(3)] + rng.normal(size=(3, 4 * len(names)))
    return slices, xs, ys, xq


@pytest.mark.parametrize("name", ["hires_poe4", "r11_poe+geo2", "r13_poe_loo_geo", "hires_lr"])
def test_candidate_heads_score_every_query(name: str) -> None:
    slices, xs, ys, xq = _rows()
    scores = explore_synth.make_head(explore_synth.CANDIDATES[name], slices)(xs, ys, xq, 3)
    assert scores.shape == (3, 3) and np.isfinite(scores).all()


def test_poe_candidate_is_the_product_of_its_experts() -> None:
    slices, xs, ys, xq = _rows(1)
    cand = explore_synth.CANDIDATES["hires_poe4"]
    own = {g: w / explore_synth.ROW_WEIGHTS[g] for g, w in cand.groups.items()}
    groups = [(own[g] * xs[:, slices[g]], own[g] * xq[:, slices[g]]) for (g,) in cand.experts]
    expected = product_of_experts(groups, ys, 3, c=cand.c)
    np.testing.assert_allclose(explore_synth.make_head(cand, slices)(xs, ys, xq, 3), expected)


def test_round_18_scale_is_the_registered_methods() -> None:
    """hires_poe_proto must compute what round 18 scored: the same prototype scale."""
    from fsad.methods.anomaly_guided import PROTO_SCALE

    assert explore_synth.PROTO_T == PROTO_SCALE


def test_loo_only_accepts_candidates_on_hires_lr_groups_only() -> None:
    ok = explore_synth.loo_only_ok
    assert ok(explore_synth.CANDIDATES["hires_poe4"])
    assert ok(explore_synth.CANDIDATES["r18_poe+proto"])
    assert not ok(explore_synth.CANDIDATES["r14_poe+dn4r"])  # needs patch-set rows
    assert not ok(explore_synth.CANDIDATES["r15_poe_whiten"])  # needs normal images' rows
    assert not ok(explore_synth.CANDIDATES["r12_poe+geo"])  # other synthetic tasks


def test_round_19_candidates_must_beat_round_18s_pick(capsys) -> None:
    """Round 19's incumbent is round 18's pick: beating only hires_poe4 is not enough."""
    import pandas as pd

    scores = {  # variant: (synthetic, support LOO), fractions
        "hires_poe4": (0.80, 0.70),
        "r18_poe+proto": (0.81, 0.74),
        "r19_poe+dino": (0.805, 0.72),  # above hires_poe4 on both, not above round 18
        "r19_proto+dino": (0.82, 0.73),  # above round 18 on one signal only
    }
    rows = [
        {"variant": v, "seed": s, "category": c, "synth_1shot": syn, "synth_5shot": syn,
         "support_loo": loo if s == 1 else 0.0}
        for v, (syn, loo) in scores.items() for c in ("a", "b") for s in (1, 2)
    ]  # fmt: skip
    explore_synth.print_verdicts(pd.DataFrame(rows), Path("synth.csv"))
    out = capsys.readouterr().out
    assert "round 19 rule, both signals against r18_poe+proto: r18_poe+proto stays" in out
    rows += [{**r, "variant": "r19_both", "synth_1shot": 0.9, "synth_5shot": 0.9,
              "support_loo": 0.9} for r in rows[:4]]  # fmt: skip
    explore_synth.print_verdicts(pd.DataFrame(rows), Path("synth.csv"))
    assert "against r18_poe+proto: r19_both" in capsys.readouterr().out


def test_append_group_records_where_the_new_block_lies() -> None:
    slices: dict[str, slice] = {}
    rows = np.arange(6.0).reshape(2, 3)
    extra = -np.arange(4.0).reshape(2, 2)
    out = explore_synth.append_group(rows, slices, "bd", extra)
    assert out.shape == (2, 5)
    np.testing.assert_array_equal(out[:, slices["bd"]], extra)
    np.testing.assert_array_equal(out[:, :3], rows)
