"""Dataset readers and the paper's few-shot split.

Readers return :class:`Sample` records; nothing is decoded until :func:`read_image` is
called. A layout is one reader function registered once with :func:`register_reader`;
:data:`DATASETS` (or :func:`available_datasets`) lists them for the command line, the
config check and the grid. Registered layouts (file extensions are free: png, jpg, jpeg,
bmp, tif, tiff):

- ``mvtec_ad``:  ``<root>/<category>/{train,test}/<label>/*`` and
  ``<root>/<category>/ground_truth/<defect>/<stem>_mask.*``
- ``mvtec_3d``:  ``<root>/<category>/{train,validation,test}/<label>/rgb/*`` and
  ``.../<label>/gt/<stem>.*`` (RGB only; train + validation normals form the bank)
- ``folder``:    ``<root>/<normal folder>/*`` plus one folder per defect type; every
  defect image is a test sample, every normal image a train sample.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fsad.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    Attributes:
        path: image file.
        category: product name (e.g. ``"bottle"``).
        split: ``"train"``, ``"validation"`` or ``"test"``.
        label: ``"good"`` or the defect type (e.g. ``"broken_large"``).
        mask_path: ground-truth mask file, when the dataset has one.
    """

    path: Path
    category: str
    split: str
    label: str
    mask_path: Path | None = None

    @property
    def is_good(self) -> bool:
        return self.label == GOOD


@dataclass
class CategoryData:
    """All samples of one category.

    Attributes:
        name: category name.
        dataset: a registered layout name (a key of :data:`DATASETS`).
        root: category folder.
        train: normal images for the memory bank (see ``bank_source``).
        test: test images, good and defective, in natural order per label.
        bank_source: ``"train"`` normally; ``"test/good"`` when the category has no train
            normals (the shared metal_nut) and the good test images stand in.
    """

    name: str
    dataset: str
    root: Path
    train: list[Sample]
    test: list[Sample]
    bank_source: str = "train"

    @property
    def defect_types(self) -> list[str]:
        """Defect types present in the test set, in natural order."""
        return sorted({s.label for s in self.test if not s.is_good}, key=natural_key)

    def count(self, split: str, label: str) -> int:
        return sum(1 for s in self.test + self.train if s.split == split and s.label == label)


@dataclass
class FewShotSplit:
    """The paper's split (section 4.1.3): first ``shots`` files per defect type = support.

    Attributes:
        classes: class names; labels index into it (defect types in natural order, then
            ``"good"`` last when ``include_good``).
        support / support_labels: ``shots * C`` samples and their int labels ``(S,)``.
        query / query_labels: every other test sample of those classes ``(Q,)``.
    """

    classes: list[str]
    shots: int
    support: list[Sample] = field(default_factory=list)
    support_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    query: list[Sample] = field(default_factory=list)
    query_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def chance(self) -> float:
        """Accuracy of always predicting the most frequent query class."""
        if len(self.query_labels) == 0:
            return 0.0
        return float(np.bincount(self.query_labels).max() / len(self.query_labels))


#: a reader: ``(folder, normal) -> CategoryData``; ``folder`` is the category folder (the
#: dataset root itself for a single-category layout), ``normal`` the normal folder's name
ReaderFn = Callable[[Path, str], CategoryData]


@dataclass(frozen=True)
class Reader:
    """A registered dataset layout.

    Attributes:
        name: the layout's name (``config.dataset``, ``--dataset``).
        read: the reader function.
        single: the dataset root is the one category (named after the root); otherwise the
            root holds one folder per category, each with a ``test`` sub-folder.
        signature: glob, relative to a category folder, that this layout's folders match
            (``fsad data check`` guesses the layout with it; deeper globs are tried first);
            None: a fallback guess when no signature matches.
    """

    name: str
    read: ReaderFn
    single: bool = False
    signature: str | None = None


#: the registered layouts, ``name -> Reader``, in registration order
DATASETS: dict[str, Reader] = {}


def register_reader(
    name: str, *, single: bool = False, signature: str | None = None
) -> Callable[[ReaderFn], ReaderFn]:
    """Decorator: register a reader function as the dataset layout ``name`` (names are unique).

    Args:
        name: the layout's name.
        single: see :attr:`Reader.single`.
        signature: see :attr:`Reader.signature`.
    """

    def deco(fn: ReaderFn) -> ReaderFn:
        if name in DATASETS and DATASETS[name].read is not fn:
            raise ValueError(f"dataset '{name}' is registered twice")
        DATASETS[name] = Reader(name, fn, single, signature)
        return fn

    return deco


def available_datasets() -> tuple[str, ...]:
    """Names of the registered dataset layouts, in registration order."""
    return tuple(DATASETS)


def get_reader(dataset: str) -> Reader:
    """The registered layout ``dataset``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ConfigError(f"unknown dataset '{dataset}' (known: {', '.join(DATASETS)})")
    return DATASETS[dataset]


def guess_dataset(path: Path) -> str:
    """The layout of the folder ``path`` (a dataset root or one category folder), from the
    registered signatures; the first layout without one when none matches.

    Raises:
        DataError: ``path`` is not a folder.
    """
    if not path.is_dir():
        raise DataError(f"dataset root not found: {path}")
    signed = {r.name: r.signature for r in DATASETS.values() if r.signature}
    for name, glob in sorted(signed.items(), key=lambda item: -item[1].count("/")):
        if any(path.glob(f"*/{glob}")) or any(path.glob(glob)):
            return name
    return next(r.name for r in DATASETS.values() if r.signature is None)


def natural_key(text: str | os.PathLike) -> list[object]:
    """Sort key that orders ``img2`` before ``img10`` (case-insensitive)."""
    name = Path(text).name if isinstance(text, Path) else str(text)
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (hidden files skipped)."""
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    ]
    return sorted(files, key=natural_key)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
        key=natural_key,
    )


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image as RGB ``(H, W, 3) uint8``; grey and RGBA become 3-channel RGB.

    Raises:
        DataError: the file is missing or cannot be decoded (the message names the path).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise DataError(f"cannot read image (corrupt or unsupported format): {path}")
    if img.dtype != np.uint8:  # 16-bit PNG/TIFF
        img = (img / (256.0 if img.dtype == np.uint16 else max(float(img.max()), 1.0))).astype(
            np.uint8
        )
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_image(image: np.ndarray, ext: str = ".png", params: Sequence[int] = ()) -> bytes:
    """The file bytes of an image, the inverse of :func:`read_image`.

    Args:
        image: RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 (RGB is stored as OpenCV's BGR).
        ext: the format, by file extension as OpenCV names it (``".png"``, ``".jpg"``).
        params: OpenCV ``imwrite`` flags and values, e.g.
            ``(cv2.IMWRITE_PNG_COMPRESSION, 1)``; empty: OpenCV's defaults.

    Raises:
        DataError: OpenCV cannot encode the image (the message names its shape and type).
    """
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(ext, bgr, list(params))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise DataError(f"cannot encode a {image.dtype} image of shape {image.shape} as {ext}")
    return buf.tobytes()


def read_mask(path: str | os.PathLike | None, shape: tuple[int, int]) -> np.ndarray:
    """Binary mask ``(H, W) bool`` resized (nearest) to ``shape``; all False when None."""
    import cv2

    if path is None:
        return np.zeros(shape, dtype=bool)
    m = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise DataError(f"cannot read mask: {path}")
    if m.shape != shape:
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return m > 127


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if not path.is_dir():
        raise DataError(f"{what} is not a folder: {path}")


def list_categories(root: str | os.PathLike, dataset: str) -> list[str]:
    """Category folders under ``root`` (those with a ``test`` folder) in natural order."""
    reader = get_reader(dataset)
    root = Path(root)
    _require_dir(root, "dataset root")
    if reader.single:
        return [root.name]
    cats = [p.name for p in _subdirs(root) if (p / "test").is_dir()]
    if not cats:
        raise DataError(f"no {dataset} categories (folders with a test/ sub-folder) in {root}")
    return cats


def load_category(
    root: str | os.PathLike, dataset: str, category: str | None = None, normal: str = GOOD
) -> CategoryData:
    """Read one category of a dataset with the reader registered as ``dataset``.

    Args:
        root: dataset root (the folder holding category folders; for a single-category
            layout such as ``folder``, the folder holding the normal and defect folders).
        dataset: a registered layout: ``"mvtec_ad"``, ``"mvtec_3d"``, ``"folder"``...
        category: category name (ignored for ``folder``, whose name is the root's name).
        normal: name of the normal folder in the ``folder`` layout.

    Raises:
        ConfigError: an unknown layout (the message lists the known ones).
        DataError: missing folders, no defect types, or a defect type without images.
    """
    reader = get_reader(dataset)
    root = Path(root)
    _require_dir(root, "dataset root")
    folder = root
    if not reader.single:
        if not category:
            raise DataError(f"a category is required for {dataset} (root {root})")
        folder = root / category
        _require_dir(folder, f"category '{category}'")
    data = reader.read(folder, normal)
    _validate(data)
    return data


@register_reader("mvtec_ad", signature="test")
def read_mvtec_ad(cat_root: Path, normal: str = GOOD) -> CategoryData:
    """An MVTec AD category folder (``normal`` is unused: its normal folders are ``good``)."""
    name = cat_root.name
    _require_dir(cat_root / "test", "test folder")
    train = [Sample(p, name, "train", GOOD) for p in list_images(cat_root / "train" / GOOD)]
    test: list[Sample] = []
    for label_dir in _subdirs(cat_root / "test"):
        label = label_dir.name
        for p in list_images(label_dir):
            mask = None if label == GOOD else _find_mask(cat_root / "ground_truth" / label, p.stem)
            test.append(Sample(p, name, "test", label, mask))
    return _with_bank(CategoryData(name, "mvtec_ad", cat_root, train, test))


@register_reader("mvtec_3d", signature="test/*/rgb")
def read_mvtec_3d(cat_root: Path, normal: str = GOOD) -> CategoryData:
    """An MVTec 3D-AD category folder, RGB only (``normal`` is unused, as for MVTec AD)."""
    name = cat_root.name
    _require_dir(cat_root / "test", "test folder")
    train = []
    for split in ("train", "validation"):
        rgb = cat_root / split / GOOD / "rgb"
        train += [Sample(p, name, split, GOOD) for p in list_images(rgb)]
    test = []
    for label_dir in _subdirs(cat_root / "test"):
        label = label_dir.name
        for p in list_images(label_dir / "rgb"):
            mask = None if label == GOOD else _find_mask(label_dir / "gt", p.stem)
            test.append(Sample(p, name, "test", label, mask))
    return _with_bank(CategoryData(name, "mvtec_3d", cat_root, train, test))


@register_reader("folder", single=True)
def read_folder(root: Path, normal: str = GOOD) -> CategoryData:
    """A folder of a normal folder (``normal``) and one folder per defect type."""
    name = root.name
    normal_dir = root / normal
    _require_dir(normal_dir, f"normal folder '{normal}'")
    train = [Sample(p, name, "train", GOOD) for p in list_images(normal_dir)]
    test = []
    for label_dir in _subdirs(root):
        if label_dir.name == normal:
            continue
        files = list_images(label_dir)
        if not files:
            raise DataError(f"defect type folder has no images: {label_dir}")
        test += [Sample(p, name, "test", label_dir.name) for p in files]
    return CategoryData(name, "folder", root, train, test)


def _find_mask(folder: Path, stem: str) -> Path | None:
    for suffix in ("_mask", ""):
        for ext in IMAGE_EXTENSIONS:
            p = folder / f"{stem}{suffix}{ext}"
            if p.is_file():
                return p
    return None


def _with_bank(data: CategoryData) -> CategoryData:
    """Use the good test images for the bank when a category has no train normals."""
    if not data.train:
        good = [s for s in data.test if s.is_good]
        if good:
            data.train, data.bank_source = good, "test/good"
    return data


def _validate(data: CategoryData) -> None:
    if not data.defect_types:
        raise DataError(f"category '{data.name}' has no defect types in {data.root}")
    if not data.train:
        raise DataError(f"category '{data.name}' has no normal images for the bank in {data.root}")


def few_shot_split(test: list[Sample], shots: int, include_good: bool = False) -> FewShotSplit:
    """The paper's n-shot split.

    Support = the first ``shots`` files (natural order) of every defect type; query = all
    other test images of those types. Good images join (as the last class, same rule) only
    with ``include_good`` (the paper's Appendix F).

    Raises:
        DataError: ``shots < 1``, or a class with ``<= shots`` images (no query left).
    """
    if not isinstance(shots, int | np.integer) or shots < 1:
        raise DataError(f"shots must be a positive integer, got {shots!r}")
    by_label: dict[str, list[Sample]] = {}
    for s in test:
        by_label.setdefault(s.label, []).append(s)
    classes = sorted((lab for lab in by_label if lab != GOOD), key=natural_key)
    if include_good and GOOD in by_label:
        classes.append(GOOD)
    if not classes:
        raise DataError("no defect types among the test samples")
    split = FewShotSplit(classes=classes, shots=int(shots))
    sup, sup_y, qry, qry_y = [], [], [], []
    for idx, label in enumerate(classes):
        files = sorted(by_label[label], key=lambda s: natural_key(s.path))
        if len(files) <= shots:
            raise DataError(
                f"shots={shots} leaves no query image for class '{label}' "
                f"({len(files)} images in {files[0].path.parent})"
            )
        sup += files[:shots]
        sup_y += [idx] * shots
        qry += files[shots:]
        qry_y += [idx] * (len(files) - shots)
    split.support, split.query = sup, qry
    split.support_labels = np.asarray(sup_y, dtype=np.int64)
    split.query_labels = np.asarray(qry_y, dtype=np.int64)
    return split


def default_data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """``explicit`` if given, else ``$FSAD_DATA``, else None (callers use the embedded set)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("FSAD_DATA")
    return Path(env).expanduser() if env else None
