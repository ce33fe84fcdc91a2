"""Signal round 2's verdict (research wing): does the synthetic signal see the oracle?"""

import pandas as pd

from research import synth_light_signal as sl


def _rows(synth: list[float]) -> pd.DataFrame:
    cats = ["bottle", "screw"]
    return pd.DataFrame({
        "category": [c for c in cats for _ in (1, 2)], "seed": [1, 2, 1, 2],
        "synth_acc": synth, "support_loo": 0.5, "query_acc": 0.6,
    })  # fmt: skip


def test_it_sees_a_rise_in_every_category_of_at_least_the_margin() -> None:
    out = sl.verdict(_rows([0.5, 0.5, 0.6, 0.6]), _rows([0.6, 0.6, 0.65, 0.65]))
    assert out.loc["bottle", "synth_acc_change"] == 10.0
    assert out.loc["mean", "synth_acc_change"] == 7.5 and out.loc["mean", "sees"]
    assert out.loc["bottle", "seeds"] == 2


def test_a_fall_in_one_category_or_a_small_rise_is_not_seeing_it() -> None:
    assert not sl.verdict(_rows([0.5, 0.5, 0.6, 0.6]), _rows([0.8, 0.8, 0.55, 0.55])).loc[
        "mean", "sees"
    ]
    assert not sl.verdict(_rows([0.5, 0.5, 0.6, 0.6]), _rows([0.52, 0.52, 0.62, 0.62])).loc[
        "mean", "sees"
    ]


def test_only_the_seeds_both_hold_count() -> None:
    oracle = _rows([0.6, 0.6, 0.65, 0.65]).query("seed == 1")
    assert (sl.verdict(_rows([0.5, 0.9, 0.6, 0.9]), oracle)["seeds"].iloc[:2] == 1).all()
