"""Synthetic defect classes from textures (paper section 3.5, Figure 4, Appendix C).

Normal images x texture classes -> pseudo-defect classes for the few-shot pretraining:

- :mod:`~fsad.synth.foreground`: foreground masks (GrabCut, corner flood fill, per category).
- :mod:`~fsad.synth.masks`: Perlin-noise and regular-polygon defect masks.
- :mod:`~fsad.synth.blend`: ``I*(1-M) + (1-beta)*T*M + beta*I*M``.
- :mod:`~fsad.synth.textures` / :mod:`~fsad.synth.procedural`: DTD folders or procedural
  textures.
- :mod:`~fsad.synth.pseudo`: the lazy :class:`PseudoClassDataset`.
- :mod:`~fsad.synth.pool`: the synthetic residual pool ``r = f(synthetic) - f(source)``.
"""

from fsad.synth.blend import blend, is_grey
from fsad.synth.foreground import foreground_mask, method_for
from fsad.synth.masks import perlin_mask, perlin_noise, polygon_mask
from fsad.synth.procedural import FAMILIES, procedural_texture
from fsad.synth.pseudo import PseudoClassDataset, SynthSample
from fsad.synth.textures import TextureSource

__all__ = [
    "FAMILIES",
    "PseudoClassDataset",
    "SynthSample",
    "TextureSource",
    "blend",
    "foreground_mask",
    "is_grey",
    "method_for",
    "perlin_mask",
    "perlin_noise",
    "polygon_mask",
    "procedural_texture",
]
