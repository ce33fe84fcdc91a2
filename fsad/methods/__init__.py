"""Registry of few-shot methods: ``name -> callable(FewShotTask) -> Prediction``.

A method module registers itself with :func:`register`; :func:`get_method` imports the
known method modules lazily so importing fsad stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from fsad.errors import ConfigError
from fsad.task import FewShotTask, Prediction

MethodFn = Callable[[FewShotTask], Prediction]

_REGISTRY: dict[str, MethodFn] = {}
_DESCRIPTIONS: dict[str, str] = {}
# modules (in fsad.methods) whose import registers methods
METHOD_MODULES = ("baselines", "paper", "anomaly_guided")


def register(name: str, description: str = "") -> Callable[[MethodFn], MethodFn]:
    """Decorator: register ``fn`` under ``name`` (names are unique)."""

    def deco(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"method '{name}' is registered twice")
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().splitlines()[0:1][0]
        return fn

    return deco


def _load_all() -> None:
    for mod in METHOD_MODULES:
        importlib.import_module(f"fsad.methods.{mod}")


def available_methods() -> dict[str, str]:
    """Registered method names and their one-line descriptions."""
    _load_all()
    return dict(sorted(_DESCRIPTIONS.items()))


def get_method(name: str) -> MethodFn:
    """Return the method registered as ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    _load_all()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ConfigError(f"unknown method '{name}' (known: {known})")
    return _REGISTRY[name]
