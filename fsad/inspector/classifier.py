"""The defect-type classifier of an inspector: a grid method's recipe, its head on the
support rows, and the leave-one-out estimate of how far to trust it.

The inspector offers the grid's inductive methods by name (:data:`METHODS`); each is a
:class:`fsad.recipe.Recipe` of :mod:`fsad.methods.anomaly_guided` and goes through the same
block and recipe code as ``fsad run``, so a fitted model answers as the grid does. The
recipe is stored in the model as JSON (:func:`fsad.recipe.recipe_to_json`), so a model keeps
its meaning when the library's defaults change.

Probabilities: logistic heads give them; the cosine head's similarities go through a softmax
whose temperature T is fitted by leave-one-out on the support set (:func:`fit_temperature`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fsad.errors import ConfigError
from fsad.heads import em_prior, softmax
from fsad.methods.anomaly_guided import DESCRIPTIONS, RECIPES
from fsad.poses import image_labels
from fsad.recipe import Recipe, leave_one_out, recipe_proba, task_framed

#: the recipe ``fsad fit`` ships by default: the last round's pick (robustness round 17, book
#: appendix): ``hires_poe_proto`` without the Lite2 zoom views (speed round 1), its 448 px
#: engine framing whole images at the product's scale (robustness round 11), fitted on every
#: support image in 4 poses unless the support's pose test finds that the product holds a
#: pose (:func:`fsad.poses.pose_test`, robustness round 16), and seeing every image with its
#: own light undone where the support's light test finds the product's light varying
#: (:mod:`fsad.light_test`, robustness round 17)
DEFAULT_METHOD = "hires_lite0_poe_proto_rot4_gated_fixed_light"
#: the grid's inductive methods an inspector can fit (``residual_proto_rb`` needs the random
#: bank of a dataset's files, which a fitted model does not keep)
METHODS: dict[str, str] = {
    name: DESCRIPTIONS[name] for name in RECIPES if name != "residual_proto_rb"
}
#: softmax temperature on cosine similarities when it cannot be fitted (one image per type)
DEFAULT_TEMPERATURE = 0.05


def method_recipe(method: str | Recipe, framing: str) -> Recipe:
    """The recipe of a method name (or a recipe as is), every engine seeing ``framing`` (an
    engine framed ``"fixed"`` keeps it under a whole-image framing:
    :func:`fsad.recipe.task_framed`).

    Raises:
        ConfigError: an unknown method (the message lists the known ones).
    """
    if isinstance(method, Recipe):
        recipe = method
    elif method in METHODS:
        recipe = RECIPES[method]
    else:
        raise ConfigError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    return replace(recipe, engines=tuple(task_framed(e, framing, 0) for e in recipe.engines))


def method_name(method: str | Recipe) -> str:
    """The method's name, or ``"custom"`` for a recipe given directly."""
    return method if isinstance(method, str) else "custom"


def fit_temperature(
    recipe: Recipe,
    rows: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    source: np.ndarray | None = None,
) -> float:
    """Softmax temperature T of a cosine head: minimises the leave-one-out log-loss on the
    support set (a grid of T); :data:`DEFAULT_TEMPERATURE` for a probabilistic head or when
    no class has two images.

    Args:
        rows: per group, support rows ``(R, D_g)``; labels ``(R,)``.
        source: ``(R,)`` each row's support image (:func:`fsad.recipe.support_rows`).
    """
    if recipe.head != "cosine":
        return DEFAULT_TEMPERATURE
    index, sims = leave_one_out(recipe, rows, labels, n_classes, source)
    if not len(index):
        return DEFAULT_TEMPERATURE
    y = labels[index]
    grid = np.geomspace(0.005, 1.0, 40)
    nll = [-np.log(softmax(sims / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def probabilities(
    recipe: Recipe,
    support: Sequence[np.ndarray],
    labels: np.ndarray,
    query: Sequence[np.ndarray],
    n_classes: int,
    temperature: float,
) -> np.ndarray:
    """Class probabilities ``(Q, C)``: the recipe's head (:func:`fsad.recipe.recipe_proba`),
    a softmax of cosine similarities divided by ``temperature`` for the cosine head."""
    scores = recipe_proba(recipe, support, labels, query, n_classes)
    return softmax(scores / temperature) if recipe.head == "cosine" else scores


def adapt(proba: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Transductive: the class prior re-estimated by EM over a batch of unlabelled images
    (:func:`fsad.heads.em_prior`, as the grid's ``hires_poe_em``), ``(Q, C)``.

    Args:
        proba: ``(Q, C)`` probabilities of the batch's defective images.
        labels: ``(S,)`` support labels (their counts are the prior the head learnt).
    """
    return em_prior(proba, np.bincount(labels, minlength=n_classes))


def trust_estimate(
    recipe: Recipe,
    rows: Sequence[np.ndarray],
    labels: np.ndarray,
    classes: Sequence[str],
    source: np.ndarray | None = None,
) -> dict[str, Any]:
    """How far to trust the classifier, from the support images alone (no extra labels).

    Every support image whose type keeps another image is classified by the head fitted on
    all the others (leave-one-out; an image leaves with its poses, ``source`` as for
    :func:`fit_temperature`). With few images this is a rough estimate, off by up to 30
    points either way on the shared data (``results/trust``: above the grid's accuracy where
    turned support images do not match a fixed camera); its binomial standard error is given
    with it.

    Returns:
        JSON-able ``{"accuracy", "stderr", "n_images", "n_correct", "chance",
        "types_without_estimate"}``; ``accuracy`` is None when every type has one image.
    """
    n_classes = len(classes)
    index, scores = leave_one_out(recipe, rows, labels, n_classes, source)
    counts = np.bincount(image_labels(labels, source), minlength=n_classes)
    alone = [c for c, n in zip(classes, counts, strict=True) if n < 2]
    n = len(index)
    correct = int((scores.argmax(1) == labels[index]).sum()) if n else 0
    acc = correct / n if n else None
    return {
        "accuracy": acc,
        "stderr": None if acc is None else float(np.sqrt(acc * (1 - acc) / n)),
        "n_images": n,
        "n_correct": correct,
        "chance": 1.0 / n_classes,
        "types_without_estimate": alone,
    }


def trust_text(trust: dict[str, Any]) -> str:
    """One line: the leave-one-out estimate, what it rests on, and chance level."""
    chance = f"chance {100 * trust['chance']:.0f} %"
    if trust["accuracy"] is None:
        return (
            f"leave-one-out estimate: not available (one support image per defect type; {chance})"
        )
    line = (
        f"leave-one-out estimate: {100 * trust['accuracy']:.0f} % +- "
        f"{100 * trust['stderr']:.0f} ({trust['n_correct']}/{trust['n_images']} support "
        f"images; {chance})"
    )
    if trust["types_without_estimate"]:
        line += f"; not covered (one image each): {', '.join(trust['types_without_estimate'])}"
    return line


def framing_text(framing: str, crop: int, recipe: Recipe) -> str:
    """One line: how a fitted model's engines see an image.

    Args:
        framing, crop: the first engine's framing and input side (px).
        recipe: the fitted recipe; its engines framed ``"fixed"`` carry the side resolved
            from the normal images, the others are framed as the first engine.

    Returns:
        e.g. ``"framing: letterbox (the whole image, 224 px engine); the 448 px engine at the
        product's scale (the longest side of the normal images, 512 px, fills its square)"``.
    """
    whole = {"letterbox": "the whole image", "crop": "the centre crop"}.get(framing, framing)
    line = f"framing: {framing} ({whole}, {crop} px engine)"
    for engine in recipe.engines:
        f = engine.features
        if f.framing == "fixed":
            line += (
                f"; the {f.crop} px engine at the product's scale (the longest side of the "
                f"normal images, {f.side} px, fills its square)"
            )
        else:
            line += f"; the {f.crop} px engine framed as the first"
    return line
