"""The research wing: selection tooling that imports :mod:`fsad` and is never imported by it.

- :mod:`research.synthtask`: synthetic few-shot tasks, a label-free selection signal;
- :mod:`research.own_synth`: signal round 1, synthetic tasks on the product's own normal
  images in each method's support poses, judged against the leave-one-out;
- :mod:`research.synth_light_signal` (signal round 2), :mod:`research.lit_synth_signal`
  (round 3, each texture lit as its image) and :mod:`research.intensity_synth_signal`
  (rounds 4-5, classes that differ only by a factor on a blob's pixels): whether synthetic
  tasks see the exact light correction; :mod:`research.oracle_rule_study`: whether the
  rounds' rule adopts it; :mod:`research.estimated_light_round`: photometric round 12, an
  estimated light judged by round 5;
- :mod:`research.selection`: scores candidate recipes on the label-free signals
  (``python -m research.selection --help``);
- :mod:`research.diagnose_prototypes`: a diagnosis of the paper method's prototypes;
- the rounds of issue #21 (``*_round.py``, :mod:`research.robust`, :mod:`research.pose_gate`):
  one module per round, its rule and what it found in its docstring, its record under
  ``results/explore``; :mod:`research.recipe_round` is the harness of the rounds whose
  variants are recipes (robustness rounds 6-12, photometric round 5),
  :mod:`research.image_round` the harness of the rounds recorded image by image and judged
  by :func:`fsad.report.image_verdict` (photometric rounds 8-11, robustness rounds 14-15), and
  :mod:`research.records` how every round resumes;
- studies that read query labels or defect locations and choose nothing
  (:mod:`research.shot_curve`, :mod:`research.support_draws`,
  :mod:`research.light_localisation`, :mod:`research.light_descriptors`), and the oracles and
  label-free studies of the suite's light (:mod:`research.light_oracle`,
  :mod:`research.light_fit_study`, :mod:`research.light_estimate_study`).

The selection rounds 1-20 and the descriptor kinds they rejected are kept at the git tag
``selection-rounds-1-20`` (commit 3480f9b); the book's appendix reads their committed results.
"""

#: ``fsad fit``'s default from speed round 1 until robustness round 11 (``fsad fit``'s default
#: since then is :data:`fsad.inspector.DEFAULT_METHOD`): the baseline of every round of that
#: time, so their records and reruns name it literally
ROUND_BASELINE = "hires_lite0_poe_proto_rot4"
