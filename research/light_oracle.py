"""How much of the light's cost in the suite `all` could a perfect estimate of the light undo?
(an oracle study: it reads the generator's own light draws, never a defect type; it chooses
nothing)

The suite ``all_but_illumination`` (:data:`fsad.suite.LEAVE_ONE_OUT`) is ``all`` without
the light: its images are what a correction could at best give back. A correction works on
the written image, though, where a bright light has clipped highlights, a dark one has
crushed the shadows into few grey levels, and JPEG has coded the result. This study undoes,
on every image of ``all`` as written, the very light the generator drew for it (gamma, gain,
gradient and colour temperature, read by replaying the file's generator): a correction
that knows the light exactly (for grey parts: on a coloured part the gamma bent each
channel before the grey step mixed them, which the inverse below cannot separate). Running
the default on these copies sets it beside ``all`` (no correction) and
``all_but_illumination`` (no light at all).

**What it showed** (``results/suite_leave_one_out``, book chapter 11): seed 1, 166 queries
paired with ``all``'s (58.4 %): +15.7 points (``all_but_illumination`` +12.7); seeds 1-5,
70.83 ± 1.99 % against 74.19 ± 2.03 % untransformed. Against ``all_but_illumination``
query by query, seeds 1-3: +3.0, +4.2, 0.0 points (p 0.33, 0.14, 1.00): not
distinguishable. Only the gamma undone: +5.4; only the gain with gradient and tint: +8.4
(seed 1). Every file is checked against the generator replayed: the 928 files of the four
categories' ``all`` are reproduced byte for byte before their light is read (a file that is
not stops the copy, naming it).

The inverse, per pixel of the grey image ``y`` (the colour temperature enters through the
luminance weights, exact for grey parts):
``x = 255 * (y / (255 * gain * ramp * (0.299 (1 + t) + 0.587 + 0.114 (1 - t)))) ** (1 / gamma)``,
clipped to ``[0, 255]``.

Usage::

    python -m research.light_oracle --data "$FSAD_DATA" --suite "$SUITE/all" --out "$OUT"
    fsad run --dataset folder --data "$OUT/<category>" --methods <default> --shots 5 --seeds 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fsad import suite as fs
from fsad.data import GOOD, encode_image, read_image
from fsad.utils import atomic_folder
from research.light_fit_study import SETTINGS, replay_all
from research.records import data_root
from research.robust import CATEGORIES

#: luminance weights of OpenCV's RGB -> grey conversion (the suite's ``grey`` step)
LUMA = (0.299, 0.587, 0.114)


#: which parts of the drawn light :func:`undo_light` divides out
PARTS = {
    "light": ("gamma", "gain"),  # everything: all_light_undone
    "gamma": ("gamma",),  # the power only: the gain, gradient and tint stay (raised to 1/gamma)
    "gain": ("gain",),  # gain, gradient and tint only: the gamma stays
}


def oracle_copy(oracle: Path, suite: Path, path: Path) -> Path:
    """The oracle's copy (under ``oracle``, written by :func:`write_category`) of the suite's
    image ``path`` (under ``suite``): the same path relative to either root.

    Raises:
        SystemExit: the copy is missing (the message names it and the image).
    """
    copy = oracle / Path(path).relative_to(suite)
    if not copy.is_file():
        raise SystemExit(f"{copy}: no oracle copy of {path}")
    return copy


def undo_light(
    grey: np.ndarray, light: dict[str, float], parts: Sequence[str] = PARTS["light"]
) -> np.ndarray:
    """The written grey image with the drawn light divided out.

    The suite lights ``y = G x ** gamma`` with ``G = gain * ramp * tint``; ``parts``
    ``("gamma", "gain")`` returns ``x``, ``("gamma",)`` ``G ** (1 / gamma) x``, ``("gain",)``
    ``x ** gamma``.

    Args:
        grey: ``(h, w)`` uint8, the suite ``all``'s image.
        light: :func:`research.light_fit_study.light_draws`' numbers for that file.
        parts: ``"gamma"`` and/or ``"gain"`` (the gain with the gradient and the tint).

    Returns:
        ``(h, w)`` uint8.
    """
    h, w = grey.shape
    x = grey.astype(np.float32) / 255.0
    if "gain" in parts:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = light["angle"]
        ramp = (xx / max(w - 1, 1) - 0.5) * math.cos(theta) + (yy / max(h - 1, 1) - 0.5) * math.sin(
            theta
        )
        ramp = 1 + light["gradient"] * ramp / max(float(np.abs(ramp).max()), 1e-6)
        t = light["temperature"]
        tint = LUMA[0] * (1 + t) + LUMA[1] + LUMA[2] * (1 - t)
        x = x / (light["gain"] * tint * ramp)
    if "gamma" in parts:
        x = np.clip(x, 0, None) ** (1.0 / light["gamma"])
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def write_category(
    data: Path, suite: Path, out: Path, category: str, parts: Sequence[str] = PARTS["light"]
) -> int:
    """Write ``out/<category>``: every image of ``suite/<category>`` with the ``parts`` of
    its light undone (:func:`undo_light`).

    Returns:
        The number of images written.
    """
    source = fs.find_category(data, category)
    folder = suite / category
    stamp = json.loads((folder / fs.STAMP).read_text())
    if (
        stamp["settings"] != json.loads(json.dumps(dataclasses.asdict(SETTINGS)))
        or stamp["suite"] != "all"
    ):
        raise SystemExit(f"{folder} is not the suite `all` with the generator's default settings")
    defects = [s for s in source.test if not s.is_good]
    region_of = fs._regions(source, defects, fs.ORDER, SETTINGS, None)
    jpeg = (cv2.IMWRITE_JPEG_QUALITY, SETTINGS.quality)
    with atomic_folder(out / category) as tmp:
        for s in source.train + defects:
            label = GOOD if s.is_good else s.label
            name = fs.out_name(s, "all")
            light, image = replay_all(read_image(s.path), category, name, SETTINGS, label,
                                      region_of(s))  # fmt: skip
            written = folder / label / name
            if not written.is_file() or written.read_bytes() != encode_image(image, ".jpg", jpeg):
                raise SystemExit(f"{written}: not the file the replayed generator writes")
            grey = cv2.imread(str(written), cv2.IMREAD_GRAYSCALE)
            target = tmp / label / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encode_image(undo_light(grey, light, parts), ".jpg", jpeg))
        (tmp / "light_oracle.json").write_text(
            json.dumps({"from": stamp, "undone": list(parts)}, indent=1) + "\n"
        )
    return len(source.train) + len(defects)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root (default: $FSAD_DATA)")
    ap.add_argument("--suite", required=True, type=Path, help="the suite `all` folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    ap.add_argument("--undo", choices=sorted(PARTS), default="light", help="what to divide out")
    args = ap.parse_args(argv)
    for category in args.categories:
        n = write_category(data_root(args.data), args.suite, args.out, category, PARTS[args.undo])
        print(category, n, "images", flush=True)


if __name__ == "__main__":
    main()
