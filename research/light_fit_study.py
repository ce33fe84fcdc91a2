"""Does photometric round 8's fit recover the light the suite drew? (label-free: it reads
the generator's own light draws for the product's normal images, never a defect type)

Round 8 (:mod:`research.log_light_round`) fitted each image's gamma ``g`` and log gain ``k``
from its log-luminance quantiles against its product's normal images. Its suite record split
by product (metal_nut and screw up, bottle and transistor down), and the weakness named
before it ran was that a window showing more or less of the part moves the quantiles as
light would. This study asks how much of the fit is light: for every normal image of the
suite ``all`` (the bank's images, whose transforms need no defect region), it replays the
generator's draws (:func:`fsad.suite.transform` with the file's own generator,
:func:`fsad.suite.file_rng`) to read the gamma, gain and gradient the suite applied, and
sets them beside the fit of the written image. It chooses nothing.

Per category (:func:`fsad.report.light_fit_summary`): Spearman's rho between the fitted ``g``
and the drawn gamma, and between ``k`` and the drawn log gain; the median absolute error of
``g``; the share of fits at the clip.

Usage::

    python -m research.light_fit_study --data "$FSAD_DATA" --suite "$SUITE/all" \\
        --out results/explore/log_light_fit.csv
    python -m research.light_fit_study --out results/explore/log_light_fit.csv --report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from fsad import suite as fs
from fsad.data import GOOD, read_image
from fsad.report import light_fit_summary
from fsad.utils import atomic_write_csv
from research import log_light_round as ll
from research.image_round import tree_commit
from research.records import data_root
from research.robust import CATEGORIES


def light_draws(rng: np.random.Generator, settings: fs.SuiteSettings) -> dict[str, float]:
    """The numbers :func:`fsad.suite.illumination` draws from ``rng``, in its order: gamma,
    gain, the gradient's angle and amplitude, the colour temperature."""
    lo, hi = np.log(settings.gamma[0]), np.log(settings.gamma[1])
    names = ("gamma", "gain", "angle", "gradient", "temperature")
    values = (
        float(np.exp(rng.uniform(lo, hi))), rng.uniform(*settings.gain),
        rng.uniform(0, 2 * np.pi), rng.uniform(0, settings.gradient),
        rng.uniform(-settings.temperature, settings.temperature),
    )  # fmt: skip
    return dict(zip(names, map(float, values), strict=True))


#: the generator's settings the suites were written with (its defaults)
SETTINGS = fs.SuiteSettings()


def replay_all(
    image: np.ndarray,
    category: str,
    name: str,
    settings: fs.SuiteSettings = SETTINGS,
    label: str = GOOD,
    region: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """The light the suite ``all`` drew for one file and the image it made: the file's
    generator (:func:`fsad.suite.file_rng`) replayed through :func:`fsad.suite.transform`,
    the illumination step's draws read (:func:`light_draws`) just before it runs.

    Args:
        image: the source image ``(H, W, 3)`` uint8.
        name: the file's name in the suite folder; ``label`` its folder.
        region: a defect's ``(H, W)`` bool region as the generator placed it (None: normal).

    Returns:
        ``(light, out)``: the drawn numbers and ``all``'s image ``(h, w)`` uint8.
    """
    seen: dict[str, float] = {}
    real = fs.illumination

    def reading(img: np.ndarray, rng: np.random.Generator, s: fs.SuiteSettings) -> np.ndarray:
        state = rng.bit_generator.state
        seen.update(light_draws(rng, s))
        rng.bit_generator.state = state  # the real step draws the same numbers
        return real(img, rng, s)

    rng = fs.file_rng(settings, "all", category, label, name)
    with mock.patch.object(fs, "illumination", reading):
        out, _ = fs.transform(image, region, "all", rng, settings)
    return seen, out


def drawn_light(
    image: np.ndarray, category: str, name: str, settings: fs.SuiteSettings = SETTINGS
) -> dict[str, float]:
    """The light the suite ``all`` drew for one normal image (``name``: its file name in the
    suite folder): :func:`replay_all`'s draws."""
    return replay_all(image, category, name, settings)[0]


def default_folder(suite: Path, category: str) -> Path:
    """``suite/category``, after checking it was written with :data:`SETTINGS` (the drawn
    light is replayed with them); exits naming the folder otherwise."""
    folder = suite / category
    written = json.loads((folder / fs.STAMP).read_text())["settings"]
    if written != json.loads(json.dumps(dataclasses.asdict(SETTINGS))):
        raise SystemExit(f"{folder} was not written with the generator's default settings")
    return folder


def category_rows(data: Path, suite: Path, category: str) -> list[dict]:
    """One row per normal image of ``category``: drawn light and round 8's fit of the
    written image (against the suite folder's normal reference)."""
    source = fs.find_category(data, category)
    folder = default_folder(suite, category)
    reference = ll.log_reference(folder)
    rows = []
    for sample in source.train:
        name = fs.out_name(sample, "all")
        image = read_image(folder / GOOD / name)
        g, k = ll.fit_light(ll.log_quantiles(image), reference)
        clipped = g in ll.GAMMA_RANGE or k in ll.LOG_GAIN_RANGE
        drawn = drawn_light(read_image(sample.path), category, name)
        rows.append({"category": category, "image": Path(name).stem, "g": g, "k": k,
                     "clipped": clipped, **drawn})  # fmt: skip
    return rows


def study_main(
    argv: Sequence[str] | None,
    doc: str,
    rows_of: Callable[[Path, Path, str], list[dict]],
    summary: Callable[[pd.DataFrame], pd.DataFrame],
) -> None:
    """The command line of a study of the suite ``all``'s normal images against the drawn
    light (this one and :mod:`research.light_estimate_study`): ``--suite`` and ``--out``
    write one CSV of ``rows_of(data, suite, category)`` for every category, stamped with
    the commit; ``--report`` prints ``summary`` of it."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--suite", help="the suite `all` folder (fsad data suite)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    if args.report:
        table = summary(pd.read_csv(args.out, dtype={"image": str}))
        print(table.round(3).to_string(index=False))
        return
    if args.suite is None:
        ap.error("--suite is needed")
    rows = []
    for category in args.categories:
        rows += rows_of(data_root(args.data), Path(args.suite), category)
        print(category, len(rows), flush=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_csv(args.out, pd.DataFrame(rows).assign(git_commit=tree_commit(), timestamp=stamp))


def main(argv: Sequence[str] | None = None) -> None:
    """The study's command line (:func:`study_main`)."""
    study_main(argv, __doc__, category_rows, light_fit_summary)


if __name__ == "__main__":
    main()
