"""The generalisation suite: the shared categories re-shot the way factories shoot.

MVTec images are square, colour, one part centred on a plain background under a camera and
light that never turn (the part itself may: screw, metal_nut), defects well inside the frame. A factory's images often are not. The suite re-shoots every
image of a category with one transform (or all of them) and writes the result as a
``folder`` dataset (``good/`` for the bank, one folder per defect type, the MVTec file
stems kept so supports and queries stay traceable) that ``fsad run --dataset folder`` reads.
Nothing here is committed as images: the generator is seeded and deterministic per
(suite, category, file), so the same command gives the same bytes.

Transforms (:data:`TRANSFORMS`), applied in this order in the combined suite ``all``:

- ``pose``: rotation about the image centre and a scale of the part, normals and defects
  alike; the uncovered corners get the border colour estimated from the image corners. A
  defect keeps at least ``keep`` of its area inside the frame (redrawn otherwise).
- ``elongated``: a window of aspect ratio (width / height) in ``aspect`` that keeps the
  whole defect; normals get random windows of the same aspect and size distributions.
- ``border``: the window is placed so the defect's bounding box touches an edge of it.
- ``illumination``: gamma, gain, a smooth linear brightness gradient, a colour temperature
  shift (red against blue).
- ``grey``: a single-channel image (fsad reads it back as three equal channels).

``all_but_<transform>`` (:data:`LEAVE_ONE_OUT`) is ``all`` with one transform left out, each
kept step starting from the generator state it starts from in ``all`` (the file's generator
is ``all``'s, replayed step by step): leaving out ``illumination`` or ``grey`` gives ``all``'s
geometry pixel for pixel, so pairing its queries with ``all``'s says what that transform costs
among the others (an oracle that undoes it perfectly). Within the window step the same
numbers may serve other ends: without ``border`` a defect's window draws no edge, and
without ``pose`` they place the window around an unturned part.

The defect's extent is the ground-truth mask where the dataset has one (bottle, tire);
elsewhere it is the thresholded anomaly map of the normal residual engine (224 px, whole
image), used only to place the window, never the labels.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fsad.cache import files_fingerprint
from fsad.data import GOOD, CategoryData, Sample, encode_image, load_category, read_image, read_mask
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError, DataError
from fsad.features import FeatureConfig, placement
from fsad.utils import atomic_folder

# bump when the images a suite writes change for the same settings: finished folders of an
# older generator are then rewritten, never read as fresh
GENERATOR_VERSION = 2  # 2: windows one pixel off square at the engines' sides made square
#: input sides of the engines the registered methods use (224 px, and 448 px for hires_*)
ENGINE_SIDES = (224, 448)
TRANSFORMS = ("grey", "elongated", "border", "pose", "illumination")
#: ``none`` copies the images unchanged (the untransformed baseline); ``all`` combines all
SUITES = ("none", *TRANSFORMS, "all")
#: the order in which the combined suite applies its transforms
ORDER = ("pose", "elongated", "border", "illumination", "grey")
#: ``all`` with one transform left out (each kept step starting from ``all``'s generator state)
LEAVE_ONE_OUT = tuple(f"all_but_{t}" for t in ORDER)
#: the steps of :func:`transform`; ``window`` cuts for ``elongated`` and ``border`` together
_STEPS = ("pose", "window", "illumination", "grey")
STAMP = "suite.json"

#: ``(category, defect samples) -> {path: (H, W) bool region}`` where no mask says it
RegionFn = Callable[[CategoryData, Sequence[Sample]], dict[Path, np.ndarray]]


@dataclass(frozen=True)
class SuiteSettings:
    """Every setting of the generator (all of them enter the folder's stamp).

    Attributes:
        seed: base seed; each file draws from a generator seeded by (seed, suite,
            category, label, file name).
        aspect: range of window aspect ratios ``width / height`` (log-uniform).
        window: window size as a fraction of the largest window of its aspect that fits
            the image (uniform; a defect's window grows to hold the defect).
        rotation: largest rotation angle in degrees (uniform in ``[-rotation, rotation]``).
        scale: range of the part's scale factor.
        keep: fraction of a defect's area that must stay in the frame after ``pose``.
        gamma: range of the gamma exponent (log-uniform).
        gain: range of the global gain.
        gradient: largest relative brightness change of the linear gradient at the frame's
            edge.
        temperature: largest relative red/blue shift (red x (1 + t), blue x (1 - t)).
        map_threshold: a defect region without a mask is the connected part around the
            anomaly map's peak above ``median + map_threshold * (peak - median)``.
        quality: JPEG quality of the written images.
    """

    seed: int = 0
    aspect: tuple[float, float] = (0.4, 2.7)
    window: tuple[float, float] = (0.55, 1.0)
    rotation: float = 180.0
    scale: tuple[float, float] = (0.7, 1.0)
    keep: float = 0.9
    gamma: tuple[float, float] = (0.6, 1.6)
    gain: tuple[float, float] = (0.75, 1.25)
    gradient: float = 0.35
    temperature: float = 0.15
    map_threshold: float = 0.5
    quality: int = 95

    def __post_init__(self) -> None:
        for name in ("aspect", "window", "scale", "gamma", "gain"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(
                    f"suite setting {name} must satisfy 0 < low <= high, got {(lo, hi)}"
                )
        if self.window[1] > 1:
            raise ConfigError(f"suite setting window must be at most 1, got {self.window}")
        for name in ("keep", "gradient", "temperature", "map_threshold"):
            value = getattr(self, name)
            if not 0 <= value < 1 or (name == "keep" and value == 0):
                raise ConfigError(f"suite setting {name} must lie in (0, 1), got {value!r}")
        if not 0 <= self.rotation <= 180:
            raise ConfigError(
                f"suite setting rotation must lie in [0, 180] degrees, got {self.rotation!r}"
            )
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"suite setting quality must lie in [1, 100], got {self.quality!r}")


def steps(suite: str) -> tuple[str, ...]:
    """The transforms of ``suite`` in the order they apply (``none``: no transform).

    Raises:
        ConfigError: an unknown suite (the message lists the known ones).
    """
    if suite in LEAVE_ONE_OUT:
        return tuple(t for t in ORDER if t != left_out(suite))
    if suite not in SUITES:
        known = ", ".join(SUITES + LEAVE_ONE_OUT)
        raise ConfigError(f"unknown suite '{suite}' (choose from {known})")
    if suite == "all":
        return ORDER
    return () if suite == "none" else (suite,)


def left_out(suite: str) -> str:
    """The transform an ``all_but_<transform>`` suite leaves out of ``all``; ``""`` for
    every other suite."""
    return suite.removeprefix("all_but_") if suite in LEAVE_ONE_OUT else ""


def file_rng(
    settings: SuiteSettings, suite: str, category: str, label: str, name: str
) -> np.random.Generator:
    """The generator of one output file, seeded by (seed, suite, category, label, name);
    an ``all_but_<transform>`` suite gets ``all``'s."""
    text = f"{settings.seed}|{'all' if left_out(suite) else suite}|{category}|{label}|{name}"
    return np.random.default_rng(
        int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    )


# --------------------------------------------------------------------------- transforms
def corner_colour(image: np.ndarray) -> np.ndarray:
    """Border colour of an image: the median of its four corner squares.

    Args:
        image: ``(H, W, 3)`` uint8.

    Returns:
        ``(3,)`` float64.
    """
    h, w = image.shape[:2]
    s = max(2, min(h, w) // 16)
    corners = [image[:s, :s], image[:s, -s:], image[-s:, :s], image[-s:, -s:]]
    return np.median(np.concatenate([c.reshape(-1, image.shape[2]) for c in corners]), axis=0)


def pose(
    image: np.ndarray, region: np.ndarray | None, rng: np.random.Generator, settings: SuiteSettings
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate and scale the part about the image centre (same frame size).

    Args:
        image: ``(H, W, 3)`` uint8.
        region: ``(H, W)`` bool defect region, or None for a normal image.

    Returns:
        ``(image (H, W, 3) uint8, region (H, W) bool or None)``. A defect keeps at least
        ``settings.keep`` of its area in the frame (up to 20 draws; the best one otherwise).
    """
    import cv2

    h, w = image.shape[:2]
    fill = tuple(float(v) for v in corner_colour(image))
    best: tuple[float, np.ndarray] | None = None
    for _ in range(20):
        angle = rng.uniform(-settings.rotation, settings.rotation)
        scale = rng.uniform(*settings.scale)
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
        if region is None or not region.any():
            best = (1.0, m)
            break
        moved = cv2.warpAffine(region.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
        kept = moved.sum() / (region.sum() * scale**2)
        if best is None or kept > best[0]:
            best = (kept, m)
        if kept >= settings.keep:
            break
    assert best is not None
    m = best[1]
    out = cv2.warpAffine(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )
    if region is None:
        return out, None
    moved = cv2.warpAffine(region.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    return out, moved > 0


def _bbox(region: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(top, left, bottom, right)`` (exclusive ends) of a bool mask; None when empty."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _uniform_int(rng: np.random.Generator, lo: float, hi: float) -> int:
    """An integer drawn uniformly from ``[ceil(lo), floor(hi)]`` (``round(lo)`` if empty)."""
    a, b = math.ceil(lo), math.floor(hi)
    return int(rng.integers(a, b + 1)) if a <= b else round(lo)


def _near_square(h: int, w: int) -> tuple[int, int]:
    """``(h, w)``, made square (the longer side) when the engine's letterbox would frame it
    one pixel off square at one of :data:`ENGINE_SIDES`.

    Such a frame pads by less than one pixel a side, which the engine's preprocessing
    (``fsad.features.preprocess``, at this generator's version) takes for a centre crop and
    fails on; every other window keeps its drawn shape.
    """
    short, long = min(h, w), max(h, w)
    if any(round(side * short / long) == side - 1 for side in ENGINE_SIDES):
        return long, long
    return h, w


def _crop(image: np.ndarray, top: int, left: int, h: int, w: int, fill: np.ndarray) -> np.ndarray:
    """The ``h x w`` window at ``(top, left)``; parts outside the image get ``fill``."""
    out = np.empty((h, w, *image.shape[2:]), dtype=image.dtype)
    out[...] = fill.astype(image.dtype) if image.ndim == 3 else 0
    ih, iw = image.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + h, ih), min(left + w, iw)
    if y0 < y1 and x0 < x1:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def window(
    image: np.ndarray,
    region: np.ndarray | None,
    rng: np.random.Generator,
    settings: SuiteSettings,
    elongated: bool = True,
    border: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut a window out of the image that keeps the whole defect.

    Args:
        image: ``(H, W, 3)`` uint8.
        region: ``(H, W)`` bool defect region, or None (or empty) for a normal image.
        elongated: draw the window's aspect ratio ``w / h`` from ``settings.aspect``
            (log-uniform, narrowed where the defect would not fit); otherwise keep the
            image's aspect.
        border: place the window so the defect's bounding box touches one of its edges
            (an edge drawn among those where the window stays inside the image; a window
            that cannot is padded with the border colour). Normal images get windows at
            random positions.

    Returns:
        ``(image (h, w, 3) uint8, region (h, w) bool or None)``; the window's size is
        ``settings.window`` times the largest window of its aspect, grown to hold the defect.
    """
    ih, iw = image.shape[:2]
    box = _bbox(region) if region is not None else None
    lo, hi = settings.aspect if elongated else (iw / ih, iw / ih)
    if elongated and box is not None:  # aspects whose largest window holds the defect
        bh, bw = box[2] - box[0], box[3] - box[1]
        lo2, hi2 = max(lo, bw / ih), min(hi, iw / bh)
        lo, hi = (lo2, hi2) if lo2 <= hi2 else (float(np.clip(bw / bh, lo, hi)),) * 2
    aspect = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    h_max = min(ih, iw / aspect)
    h_target = rng.uniform(*settings.window) * h_max
    fill = corner_colour(image)
    if box is None:
        h = max(1, round(h_target))
        h, w = _near_square(h, max(1, min(iw, round(h * aspect))))
        top, left = _uniform_int(rng, 0, ih - h), _uniform_int(rng, 0, iw - w)
        cut = None if region is None else _crop(region, top, left, h, w, fill) > 0
        return _crop(image, top, left, h, w, fill), cut
    by0, bx0, by1, bx1 = box
    h_min = max(by1 - by0, (bx1 - bx0) / aspect)
    if border:
        # largest window height that lets the box touch each edge inside the image
        room = {"top": ih - by0, "bottom": by1, "left": (iw - bx0) / aspect, "right": bx1 / aspect}
        edges = [e for e in ("top", "bottom", "left", "right") if min(room[e], h_max) >= h_min]
        if edges:
            edge = edges[int(rng.integers(len(edges)))]
            h = float(np.clip(h_target, h_min, min(room[edge], h_max)))
        else:
            edge = max(room, key=room.__getitem__)
            h = h_min
    else:
        edge = ""
        h = float(np.clip(h_target, h_min, max(h_min, h_max)))
    h = max(by1 - by0, round(h))
    h, w = _near_square(h, max(bx1 - bx0, round(h * aspect)))
    top = _uniform_int(rng, max(0, by1 - h), min(by0, ih - h))
    left = _uniform_int(rng, max(0, bx1 - w), min(bx0, iw - w))
    top = {"top": by0, "bottom": by1 - h}.get(edge, top)
    left = {"left": bx0, "right": bx1 - w}.get(edge, left)
    return _crop(image, top, left, h, w, fill), _crop(region, top, left, h, w, fill) > 0


def illumination(
    image: np.ndarray, rng: np.random.Generator, settings: SuiteSettings
) -> np.ndarray:
    """Gamma, gain, a linear brightness gradient in a random direction and a colour
    temperature shift.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    h, w = image.shape[:2]
    gamma = math.exp(rng.uniform(math.log(settings.gamma[0]), math.log(settings.gamma[1])))
    gain = rng.uniform(*settings.gain)
    theta = rng.uniform(0, 2 * math.pi)
    amp = rng.uniform(0, settings.gradient)
    temp = rng.uniform(-settings.temperature, settings.temperature)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / max(w - 1, 1) - 0.5) * math.cos(theta) + (yy / max(h - 1, 1) - 0.5) * math.sin(
        theta
    )
    ramp = 1 + amp * ramp / max(float(np.abs(ramp).max()), 1e-6)  # in [1 - amp, 1 + amp]
    x = (image.astype(np.float32) / 255.0) ** gamma
    x *= (gain * ramp)[..., None] * np.array([1 + temp, 1.0, 1 - temp], dtype=np.float32)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def grey(image: np.ndarray) -> np.ndarray:
    """Luminance of an RGB image: ``(H, W, 3)`` uint8 -> ``(H, W)`` uint8 (one channel)."""
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def transform(
    image: np.ndarray,
    region: np.ndarray | None,
    suite: str,
    rng: np.random.Generator,
    settings: SuiteSettings = SuiteSettings(),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply a suite's transforms to one image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        region: ``(H, W)`` bool defect region, or None for a normal image.
        suite: a name of :data:`SUITES` or :data:`LEAVE_ONE_OUT`.
        rng: the file's generator (:func:`file_rng`).

    Returns:
        ``(image, region)``: ``(h, w, 3)`` uint8 RGB, or ``(h, w)`` uint8 when the suite
        includes ``grey``; the region follows the geometry (None for a normal image).

    Raises:
        ConfigError: an unknown suite, or an image that is not ``(H, W, 3)`` uint8.
    """
    todo = steps(suite)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ConfigError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if region is not None and region.shape != image.shape[:2]:
        raise ConfigError(f"region shape {region.shape} differs from the image's {image.shape[:2]}")
    if not left_out(suite):
        for step in _STEPS:
            image, region = _step(step, todo, image, region, rng, settings)
        return image, region
    # replay all's generator: each kept step starts from the state it starts from in all
    states, full, full_region = {}, image, region
    for step in _STEPS:
        states[step] = rng.bit_generator.state
        full, full_region = _step(step, ORDER, full, full_region, rng, settings)
    for step in _STEPS:
        rng.bit_generator.state = states[step]
        image, region = _step(step, todo, image, region, rng, settings)
    return image, region


def _step(
    step: str,
    todo: tuple[str, ...],
    image: np.ndarray,
    region: np.ndarray | None,
    rng: np.random.Generator,
    settings: SuiteSettings,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One step of :data:`_STEPS` when ``todo`` asks for it (else the input unchanged)."""
    if step == "pose" and "pose" in todo:
        return pose(image, region, rng, settings)
    if step == "window" and ("elongated" in todo or "border" in todo):
        return window(image, region, rng, settings, "elongated" in todo, "border" in todo)
    if step == "illumination" and "illumination" in todo:
        return illumination(image, rng, settings), region
    if step == "grey" and "grey" in todo:
        return grey(image), region
    return image, region


# --------------------------------------------------------------------------- defect regions
def map_region(
    amap: np.ndarray, shape: tuple[int, int], threshold: float, framing_crop: int = 224
) -> np.ndarray:
    """The defect region an anomaly map suggests, in the original image's pixels.

    Args:
        amap: ``(h, w)`` patch map of the whole image letterboxed into ``framing_crop`` px.
        shape: the original image's ``(H, W)``.
        threshold: relative level between the map's median (0) and peak (1).

    Returns:
        ``(H, W)`` bool: the connected part above the level that holds the peak.
    """
    import cv2

    p = placement(shape, FeatureConfig(crop=framing_crop, resize=framing_crop, framing="letterbox"))
    square = cv2.resize(
        amap.astype(np.float32), (framing_crop, framing_crop), interpolation=cv2.INTER_LINEAR
    )
    full = cv2.resize(
        square[p.dy : p.dy + p.nh, p.dx : p.dx + p.nw],
        (shape[1], shape[0]),
        interpolation=cv2.INTER_LINEAR,
    )
    return peak_part(full, threshold)


def peak_part(values: np.ndarray, threshold: float) -> np.ndarray:
    """The connected part of ``values`` ``(H, W)`` around its peak above
    ``median + threshold * (peak - median)``, ``(H, W)`` bool."""
    import cv2

    med, peak = float(np.median(values)), float(values.max())
    above = (values >= med + threshold * (peak - med)).astype(np.uint8)
    _, labels = cv2.connectedComponents(above)
    y, x = np.unravel_index(int(np.argmax(values)), values.shape)
    return labels == labels[y, x]


def engine_regions(settings: SuiteSettings) -> RegionFn:
    """Regions from the anomaly maps of the normal residual engine (224 px, whole image,
    seed 1, default cache): they place the window only; the labels are never read."""

    def regions(category: CategoryData, samples: Sequence[Sample]) -> dict[Path, np.ndarray]:
        config = EngineConfig(features=FeatureConfig(framing="letterbox"))
        engine = ResidualEngine(category, config, seed=1)
        maps = engine.anomaly_maps(list(samples)).numpy()
        out = {}
        for s, amap in zip(samples, maps, strict=True):
            shape = read_image(s.path).shape[:2]
            out[s.path] = map_region(amap, shape, settings.map_threshold, config.features.crop)
        return out

    return regions


# --------------------------------------------------------------------------- writing folders
def find_category(data: str | os.PathLike, category: str) -> CategoryData:
    """A shared category by name: ``data/mvtec_ad/<category>``, ``data/mvtec_3d/<category>``,
    or ``data/<category>`` when ``data`` is itself an MVTec AD or 3D-AD root.

    Raises:
        DataError: no such category (the message names the folders looked at).
    """
    root = Path(data).expanduser()
    bases = [root / "mvtec_ad", root / "mvtec_3d", root]
    for base in bases:
        test = base / category / "test"
        if test.is_dir():
            dataset = "mvtec_3d" if any(test.glob("*/rgb")) else "mvtec_ad"
            return load_category(base, dataset, category)
    tried = ", ".join(str(b / category) for b in bases)
    raise DataError(f"category '{category}' not found (no test/ folder in {tried})")


def out_name(sample: Sample, suite: str) -> str:
    """The file's name in the suite folder: the MVTec stem (a non-train normal prefixed by
    its split, e.g. tire's ``validation_000``), ``.jpg`` when re-encoded."""
    stem = (
        sample.path.stem
        if sample.split in ("train", "test")
        else f"{sample.split}_{sample.path.stem}"
    )
    return stem + (sample.path.suffix.lower() if suite == "none" else ".jpg")


def _stamp(suite: str, category: CategoryData, settings: SuiteSettings) -> dict[str, object]:
    """What determines a suite folder's files. OpenCV is part of it: another OpenCV build
    (warp rounding, JPEG encoder) writes pixels a grey level or two apart, so its files
    differ and the grids' data hash tells its rows apart."""
    import cv2

    sources = [s.path for s in category.train + category.test]
    sources += [s.mask_path for s in category.test if s.mask_path is not None]
    return {
        "generator_version": GENERATOR_VERSION,
        "opencv": cv2.__version__,
        "suite": suite,
        "category": category.name,
        "dataset": category.dataset,
        "settings": json.loads(json.dumps(asdict(settings))),
        "sources": files_fingerprint(sources),
    }


def is_finished(folder: Path, stamp: dict[str, object]) -> bool:
    """Whether ``folder`` holds a suite written with exactly this stamp."""
    try:
        return json.loads((folder / STAMP).read_text(encoding="utf-8")) == stamp
    except (OSError, ValueError):
        return False


def write_suite(
    data: str | os.PathLike,
    out: str | os.PathLike,
    suite: str,
    category: str,
    settings: SuiteSettings = SuiteSettings(),
    regions: RegionFn | None = None,
) -> tuple[Path, bool]:
    """Write one (suite, category) as a ``folder`` dataset at ``out/<suite>/<category>``.

    ``good/`` holds the category's bank normals, one folder per defect type its defective
    test images (good test images are left out: they are never queries), under their MVTec
    stems. The folder is built in a temporary sibling and renamed into place, with a
    ``suite.json`` stamp (generator version, settings, source fingerprint); a folder whose
    stamp matches is kept as it is, any other is replaced.

    Args:
        data: the shared data root (holding ``mvtec_ad/`` and ``mvtec_3d/``).
        out: where the suites go.
        suite: a name of :data:`SUITES` or :data:`LEAVE_ONE_OUT`.
        category: a shared category (``bottle``, ``tire``, ...).
        regions: defect regions where no mask gives them; None uses :func:`engine_regions`.

    Returns:
        ``(folder, written)``: ``written`` is False when a finished folder was kept.

    Raises:
        ConfigError: unknown suite.
        DataError: missing category, unreadable image or mask, ``out`` not a folder.
    """
    import cv2

    todo = steps(suite)
    source = find_category(data, category)
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"suite output is not a folder: {out}")
    dest = out / suite / source.name
    stamp = _stamp(suite, source, settings)
    if is_finished(dest, stamp):
        return dest, False
    defects = [s for s in source.test if not s.is_good]
    region_of = _regions(source, defects, todo, settings, regions)
    jpeg = (cv2.IMWRITE_JPEG_QUALITY, int(settings.quality))
    with atomic_folder(dest) as tmp:
        for s in source.train + defects:
            label = GOOD if s.is_good else s.label
            name = out_name(s, suite)
            target = tmp / label / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not todo:
                shutil.copyfile(s.path, target)
                continue
            rng = file_rng(settings, suite, source.name, label, name)
            image, _ = transform(read_image(s.path), region_of(s), suite, rng, settings)
            target.write_bytes(encode_image(image, ".jpg", jpeg))
        (tmp / STAMP).write_text(
            json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    return dest, True


def _regions(
    source: CategoryData,
    defects: list[Sample],
    todo: tuple[str, ...],
    settings: SuiteSettings,
    regions: RegionFn | None,
) -> Callable[[Sample], np.ndarray | None]:
    """``sample -> (H, W) bool region`` (None for a normal image): the ground-truth mask,
    else (also for an empty mask) the engine's map region, computed only when a geometric
    transform needs it."""
    if not {"pose", "elongated", "border"} & set(todo):
        return lambda s: None
    masks: dict[Path, np.ndarray] = {}
    for s in defects:
        if s.mask_path is not None:
            m = read_mask(s.mask_path, read_image(s.path).shape[:2])
            if m.any():
                masks[s.path] = m
    missing = [s for s in defects if s.path not in masks]
    if missing:
        masks.update((regions or engine_regions(settings))(source, missing))
    return lambda s: None if s.is_good else masks[s.path]
