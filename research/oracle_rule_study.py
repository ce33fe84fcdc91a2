"""Would the rounds' rule adopt a perfect light correction? (a study of the rule, not a
round: the candidate reads the generator's own light draws, which no user has)

Photometric rounds 8-10 each undid the light image by image and lost under the rule of
:func:`fsad.report.image_verdict` (support leave-one-out, seeds 1-3, the mean over the MVTec
protocol and the suite ``all``; random signs on the moved images had to reach the statistic
in at most 10 % of draws): round 8 moved the suite's leave-one-out by +5.0 points and random
signs reached it in 22 % of draws. The oracle (:mod:`research.light_oracle`), the drawn light
divided out of every image of ``all``, lifted the default's *queries* by +12.5 points over
seeds 1-5. Before another estimator is built, this study asks whether the rule could see
even that: the oracle's copies scored by the rounds' harness (:mod:`research.image_round`)
beside round 8's baseline rows.

- ``baseline``: ``fsad fit``'s default (``hires_lite0_poe_proto_rot4_fixed``) on ``all``
  as it is: photometric round 8's rows (``results/explore/log_light.csv``, at e64c5b3),
  copied, as round 9 copied them; the suite images regenerated for this study have those
  rows' data hashes in all four categories.
- ``light_oracle``: the same method on ``all_light_undone`` (:mod:`research.light_oracle`).

The MVTec protocol has no drawn light: the oracle is the identity there, so that protocol
adds 0 to the statistic and its null (as for robustness round 14), and the round's statistic
is half the suite's. What it would take is then the ceiling of any light estimate under this
rule and this light model.

**What it found** (``results/explore/oracle_rule.csv``: 738 oracle rows of the suite from a
clean clone at 3a5f95a beside round 8's 738 baseline rows, which equal robustness round
13's baseline in 12 of 12 cells; ``oracle_rule_cells.csv`` from it): **the rule would not
adopt it.** Support leave-one-out on the suite, seeds 1-3: 55.0 ± 1.3 -> 58.9 ± 3.2 %, +3.92
points (29 left-out images moved), +1.96 averaged with the unmoved MVTec protocol, which
random signs reach in 22 % of draws (10 % needed): the same p as round 8's +2.24, which
estimated the light. Per category the leave-one-out moves bottle 80.0 -> 66.7, transistor
40.0 -> 41.7, screw 53.3 -> 57.3, metal_nut 46.7 -> 70.0 (means over seeds). The queries of
the same cells, deciding nothing: 58.6 ± 2.7 -> 71.4 ± 1.9 %, +12.9 points (57 queries
moved; random signs never reach it in 10 000 draws), up in every category (bottle +11.1,
transistor +13.3, screw +14.7, metal_nut +12.3). So at five shots (seeds 1-3) this signal
did not adopt a correction worth about 13 points on the queries, though it moved the right
way on average: on bottle it calls the exact correction a loss of two left-out images a
seed. Oracle cells took 33-354 s on one core from an empty
cache.

Usage::

    python -m research.oracle_rule_study --copy "$SUITE/all" LO/all_light_undone
    python -m research.oracle_rule_study --variant light_oracle --protocols suite_all \\
        --suite LO/all_light_undone --out CSV
    python -m research.oracle_rule_study --out CSV --report
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from research import image_round
from research.light_oracle import write_category
from research.records import data_root

CANDIDATE = "light_oracle"


def copy_oracle(src: Path, dst: Path) -> int:
    """Write the oracle copy of every category of the suite ``all`` folder ``src``
    (:func:`research.light_oracle.write_category`, ``$FSAD_DATA`` the source images);
    returns the images written."""
    categories = sorted(p.name for p in src.iterdir() if p.is_dir())
    return sum(write_category(data_root(None), src, dst, c) for c in categories)


def main(argv: Sequence[str] | None = None) -> None:
    """The study's command line (:func:`research.image_round.main`; the MVTec protocol
    unmoved, the candidate the oracle's copies)."""
    image_round.main(argv, __doc__, CANDIDATE, copy_oracle, unchanged=("mvtec",))


if __name__ == "__main__":
    main()
