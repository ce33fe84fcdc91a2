"""Robustness round 18's record (research.light_loo_round): the committed checks are what the
grid's rows say, and the rule's verdict on them is the one the book reports."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fsad.evaluate import read_predictions
from research.light_loo_round import BASELINE, CANDIDATE, decisions, verdict

ROOT = Path(__file__).resolve().parents[1]
LIT, GATED = BASELINE, "hires_lite0_poe_proto_rot4_gated_fixed"


def test_the_committed_checks_are_read_from_the_grids_rows() -> None:
    committed = pd.read_csv(ROOT / "results/explore/light_loo.csv", dtype={"git_commit": str})
    now = decisions(ROOT).reset_index(drop=True)
    pd.testing.assert_frame_equal(now, committed, check_dtype=False)
    varied = committed[committed["varies"]]
    assert len(committed) == 60 and len(varied) == 24
    assert committed.loc[~committed["varies"], "loo_shot"].isna().all()  # nothing to check
    kept = varied[~varied["undone"].astype(bool)]
    assert len(kept) == 8 and (kept["loo_undone"] < kept["loo_shot"]).all()  # a loss vetoes
    undone = varied[varied["undone"].astype(bool)]
    assert (undone["loo_undone"] >= undone["loo_shot"]).all()  # a tie or a gain undoes


def test_every_checked_cell_predicts_as_the_method_its_check_chose() -> None:
    """Where the check let the light be undone, the candidate's queries are round 17's
    method's; where it kept the images as shot (or the light held), the gated default's
    (where it held, round 17's equals it too)."""
    for folder in ("mvtec", "suite_all", "suite_none"):
        pred = read_predictions(ROOT / "results/poses" / folder)
        pred = pred[pred["shots"] == 5]
        checks = decisions(ROOT)
        for _, c in checks[checks["folder"] == folder].iterrows():
            chose = LIT if c["undone"] else GATED
            cell = pred[(pred["category"] == c["category"]) & (pred["seed"] == c["seed"])]
            got, want = (
                cell[cell["method"] == m].set_index("query")["predicted_label"].sort_index()
                for m in (CANDIDATE, chose)
            )
            assert len(got) > 0 and got.equals(want), (folder, c["category"], c["seed"])


def test_the_rule_rejects_the_check_below_the_guard_on_the_suite() -> None:
    table, text = verdict(ROOT)
    table = table.set_index("folder")
    assert table["complete"].all()
    assert table["below_guard"].tolist() == [False, True, False]  # mvtec, suite_all, suite_none
    assert table.loc["suite_all", "change"] == -1.65 and table.loc["suite_all", "guard"] == 1.61
    assert table.loc["suite_all", CANDIDATE] == "57.92 ± 3.73"
    assert table.loc["suite_all", BASELINE] == "59.57 ± 1.61"
    assert text.startswith("not adopted: below the guard")
