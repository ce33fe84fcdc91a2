"""Named run configurations: YAML files -> a validated :class:`RunConfig` with a stable hash.

A run configuration fixes one experiment grid (dataset x categories x methods x shots x
seeds) and everything else that determines its numbers (engine settings, method options,
texture source, whether good images form a class). Named configurations live in the
repository's ``configs/`` folder (``ci``, ``quick``, ``paper``, ``ablation``); any other
YAML file can be given by path.

The *config hash* (:meth:`RunConfig.config_hash`) covers only what changes a result row's
numbers, not the grid's extent: adding a shot count or a seed to a grid keeps the hash, so
finished rows are reused; changing an engine setting or a method option changes it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsad.cache import fingerprint
from fsad.data import get_reader
from fsad.errors import ConfigError

#: bump when the meaning of a config field changes (invalidates every stored row)
CONFIG_FORMAT = 1
ALL = "all"


def config_dirs() -> list[Path]:
    """Folders searched for named configs: ``$FSAD_CONFIGS``, the repository's ``configs/``,
    and ``fsad/configs`` (package data of an installed wheel)."""
    dirs = []
    if os.environ.get("FSAD_CONFIGS"):
        dirs.append(Path(os.environ["FSAD_CONFIGS"]).expanduser())
    here = Path(__file__).resolve().parent
    dirs += [here.parent / "configs", here / "configs"]
    return dirs


def available_configs() -> dict[str, Path]:
    """Named configurations found in :func:`config_dirs` (first folder wins)."""
    found: dict[str, Path] = {}
    for folder in config_dirs():
        if folder.is_dir():
            for p in sorted(folder.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


@dataclass(frozen=True)
class RunConfig:
    """One experiment grid and everything that determines its numbers.

    Attributes:
        name: configuration name (``"paper"``, ...); not part of the hash.
        description: one line for humans; not part of the hash.
        dataset: dataset layout, a registered reader (:func:`fsad.data.available_datasets`).
        categories: category names, or ``("all",)`` for every category under the root.
        methods: registered method names (see :func:`fsad.methods.available_methods`).
        shots: n values of the n-shot tasks.
        seeds: run seeds (coreset, synthetic draws, network initialisation).
        include_good: good test images join as an extra class (the paper's Appendix F).
        textures: DTD root for synthetic pretraining classes; None = procedural textures.
        engine: residual-engine settings (``fsad.engine.EngineConfig`` fields).
        options: per-method options, ``{method: {option: value}}``.
        data: default data root when the command line gives none: ``"embedded"`` (the
            embedded procedural dataset), a path (``$VARS`` expanded), or None
            (``$FSAD_DATA``, else the embedded dataset). Not part of the hash: each row
            records a fingerprint of its images instead.
    """

    name: str = "custom"
    description: str = ""
    dataset: str = "mvtec_ad"
    categories: tuple[str, ...] = (ALL,)
    methods: tuple[str, ...] = ("contrastive",)
    shots: tuple[int, ...] = (1, 2, 3, 4, 5)
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    include_good: bool = False
    textures: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (None values are ignored) and validated again."""
        changes = {k: v for k, v in changes.items() if v is not None}
        for key in ("categories", "methods", "shots", "seeds"):
            if key in changes:
                changes[key] = _as_tuple(changes[key], key)
        return dataclasses.replace(self, **changes)

    def method_options(self, method: str) -> dict[str, Any]:
        """Options of ``method`` (empty when the config sets none)."""
        return dict(self.options.get(method, {}))

    def config_hash(self, method: str | None = None) -> str:
        """Stable short hash of what determines a result row of ``method``.

        Covers the dataset layout, ``include_good``, the texture source, the engine settings
        and the options of ``method`` (of every method when None). Excludes the grid's
        extent (categories, methods, shots, seeds) and the name, so growing a grid keeps
        finished rows valid.
        """
        opts = self.options if method is None else {method: self.options.get(method, {})}
        return fingerprint(
            {
                "format": CONFIG_FORMAT,
                "dataset": self.dataset,
                "include_good": self.include_good,
                "textures": self.textures,
                "engine": self.engine,
                "options": opts,
            }
        )[:12]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (lists, not tuples)."""
        d = dataclasses.asdict(self)
        for key in ("categories", "methods", "shots", "seeds"):
            d[key] = list(d[key])
        return d

    def to_yaml(self) -> str:
        """The configuration as YAML text (what ``fsad run`` saves as ``config.yaml``)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _as_tuple(value: Any, key: str) -> tuple:
    if isinstance(value, str | int):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise ConfigError(f"config field '{key}' must be a list, got {value!r}") from None


def _validate(cfg: RunConfig) -> None:
    get_reader(cfg.dataset)  # an unknown layout: ConfigError listing the registered ones
    for key in ("categories", "methods"):
        values = getattr(cfg, key)
        if not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"config field '{key}' must be a non-empty list of names: {values!r}")
    for key in ("shots", "seeds"):
        values = getattr(cfg, key)
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigError(
                f"config field '{key}' must be a non-empty list of integers: {values!r}"
            )
        if len(set(values)) != len(values):
            raise ConfigError(f"config field '{key}' repeats a value: {list(values)}")
    if min(cfg.shots) < 1:
        raise ConfigError(f"shots must be >= 1, got {list(cfg.shots)}")
    if not isinstance(cfg.include_good, bool):
        raise ConfigError(f"include_good must be true or false, got {cfg.include_good!r}")
    if not isinstance(cfg.engine, dict):
        raise ConfigError(f"config field 'engine' must be a mapping, got {cfg.engine!r}")
    if not isinstance(cfg.options, dict) or not all(
        isinstance(v, dict) for v in cfg.options.values()
    ):
        raise ConfigError("config field 'options' must map method names to option mappings")


def config_from_dict(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from a mapping (e.g. parsed YAML).

    Raises:
        ConfigError: unknown keys or invalid values (the message names ``source``).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    values = dict(data)
    for key in ("categories", "methods", "shots", "seeds"):
        if key in values:
            values[key] = _as_tuple(values[key], key)
    for key in ("engine", "options"):
        if values.get(key) is None:
            values.pop(key, None)
    try:
        return RunConfig(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(name_or_path: str | os.PathLike) -> RunConfig:
    """Load a named configuration (``"paper"``) or a YAML file given by path.

    Raises:
        ConfigError: unknown name (the message lists the known ones), unreadable or invalid
            YAML, or invalid values.
    """
    import yaml

    text = str(name_or_path)
    path = Path(text).expanduser()
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        known = available_configs()
        if text not in known:
            raise ConfigError(
                f"unknown config '{text}' (known: {', '.join(known) or 'none'}; or give a .yaml path)"
            )
        path = known[text]
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConfigError(f"cannot parse config {path}: {first}") from None
    data = data or {}
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return config_from_dict(data, source=str(path))
