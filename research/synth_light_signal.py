"""Signal round 2 (issue #21): can synthetic tasks on the product's own normals see a
perfect light correction that the support leave-one-out cannot?

**Why.** The rounds' signal, support leave-one-out at five shots, does not adopt even the
exact light divided out of the suite ``all`` (:mod:`research.oracle_rule_study`: +3.92
points on the suite, reached by random signs in 22 % of draws, while the same cells' queries
rise +12.9). Signal round 1's synthetic tasks (:mod:`research.own_synth`: eight DTD textures
pasted on seven of the product's own normal images as the protocol reads them, sixty 4-way
5-shot tasks, 480 scored synthetic queries per cell) were rejected as the deciding signal
for the *pose* question (a pasted texture stays in its class when turned), not for light.
Under the suite their sources are the suite's normal images, lit as the queries are, so
they might see light where the leave-one-out does not.

**The test.** The same method on the same cells, once on ``all`` and once on the oracle's
copies (``all_light_undone``, :mod:`research.light_oracle`): same file names, so the same
sources, textures and tasks by seed; only the pixels' light differs. The method is signal
round 1's baseline, ``hires_lite0_poe_proto_rot4`` (:data:`research.ROUND_BASELINE`), so
its rows on ``all`` can be set beside that round's record
(``results/explore/own_synth.csv``, at 6e6b827) as a check that the harness reproduces it.
Suite ``all`` only (the oracle is the identity on the MVTec protocol), four categories,
seeds 1-2 (planned so for the session's time; signal round 1 also ran seeds 1-2 first).

**The rule, fixed before the first row.** The synthetic signal *sees* the exact light
correction when the method's synthetic accuracy on the oracle's copies exceeds that on
``all`` in every category (mean over the seeds run) and by at least 3 points averaged over
the four categories. If it sees it, a later light round on the suite may be judged by it,
under a rule fixed before that round (the leave-one-out stays for every other question);
otherwise neither signal can judge light corrections and the search for one goes on. The
same cells' leave-one-out and query accuracy are recorded beside it and decide nothing.

**What it found** (``results/explore/synth_light_signal.csv``, 16 rows from clean clones at
c5ca9ca, one process per folder, each on one core): **it does not see it.** Seeds 1-2, the
synthetic accuracy on the oracle's copies against ``all``: bottle +0.1, metal_nut +6.2,
screw -3.5, transistor +7.2 points, +2.5 averaged (3 needed, and a rise in every category).
The same cells' queries, deciding nothing, rise in every category (bottle +7.3, metal_nut
+8.9, screw +12.0, transistor +15.0; +10.8 averaged) and their leave-one-out by +4.1 (bottle
-10.0, transistor -5.0). The rows on ``all`` equal signal round 1's record in 8 of 8 cells
(synthetic accuracy, leave-one-out and query accuracy), so the harness reproduces it. A
reading, not tested: a pasted texture is not lit by the suite in either folder (it is pasted
on the written image), so the synthetic classes differ by what the correction does not
touch; the correction changes only their surround and the bank. A signal for light would
need synthetic defects lit as their image is. Cells took 20-225 s on one core (the
synthetic rows 79-148 s; two processes side by side, about 19 GB of the machine's 24 at
their peak).

Usage (one process per variant, each writing its own file)::

    python -m research.synth_light_signal --suite "$SUITE/all" --out all.csv
    python -m research.synth_light_signal --suite LO/all_light_undone --out oracle.csv
    # the record: both files' rows concatenated, each given an ``images`` column naming
    # its folder (:data:`IMAGES`; the runs do not write it: it was added when merging) and
    # a ``synthetic`` column (added to this round's record later, as signal rounds 3-5 write it)
    python -m research.synth_light_signal --report results/explore/synth_light_signal.csv
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fsad.engine import ResidualEngine
from fsad.evaluate import git_commit
from fsad.report import signal_sees
from fsad.synth import TextureSource
from research import ROUND_BASELINE
from research.own_synth import CELL, Relight, score_cell
from research.records import data_root
from research.robust import round_parser, run_paired_cells

#: the record's ``images`` column: the suite as written, the oracle's copies
IMAGES = ("all", "all_light_undone")
#: the seeds this round runs
SEEDS = (1, 2)
#: the least mean rise (points) over the four categories that counts as seeing it
MIN_RISE = 3.0
#: the ``synthetic`` column of this round's rows: DTD textures pasted as signal round 1 did
TEXTURES = "textures"


def check_maker(out: Path, maker: str) -> None:
    """Refuse to add ``maker``'s rows to a record another image maker wrote (a resumed run
    would otherwise skip the cells it holds as done).

    Raises:
        SystemExit: ``out`` holds rows whose ``synthetic`` is not ``maker`` (or none).
    """
    if not out.is_file():
        return
    held = pd.read_csv(out)
    makers = set(held["synthetic"]) if "synthetic" in held else {"(not recorded)"}
    if len(held) and makers != {maker}:
        raise SystemExit(f"{out}: its rows were made by {sorted(makers)}, not {maker!r}")


def signal_main(
    doc: str,
    relight: Relight | None = None,
    argv: Sequence[str] | None = None,
    maker: str = TEXTURES,
) -> None:
    """``--report RECORD_CSV`` prints :func:`fsad.report.signal_sees` of the record; otherwise
    the cells of ``--suite`` (one folder) are scored into ``--out``, resuming cell by cell,
    each synthetic image made by ``relight`` when given (:func:`research.own_synth.
    synthetic_images`; signal rounds 3-5), every row naming its image ``maker`` in a
    ``synthetic`` column (:func:`check_maker`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--report"]:
        if len(argv) != 2:
            raise SystemExit("usage: --report RECORD_CSV")
        rows = pd.read_csv(argv[1])
        print(signal_sees(rows, IMAGES, MIN_RISE).round(2).to_string())
        return
    ap = round_parser(doc)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = ap.parse_args([*argv, "--protocols", "suite_all"])
    textures = TextureSource.from_dtd(data_root(args.data) / "dtd")
    repo = Path(__file__).resolve().parents[1]

    check_maker(Path(args.out), maker)

    def score(engine: ResidualEngine) -> list[dict]:
        rows = score_cell(engine, textures, methods=(ROUND_BASELINE,), relight=relight)
        return [{**row, "synthetic": maker} for row in rows]

    run_paired_cells(args, score, CELL, git_commit(repo))


def main(argv: Sequence[str] | None = None) -> None:
    """:func:`signal_main` with the textures pasted as signal round 1 pasted them."""
    signal_main(__doc__, None, argv)


if __name__ == "__main__":
    main()
