"""How long a grid takes: the measured figures behind ``fsad run --dry-run``'s estimate.

Every figure below was measured on one machine: 2 CPU cores (Intel, AVX-512/AMX), no GPU,
EfficientNet-Lite0, the committed engine settings. They are kept here, in one place, with
the measurement that produced them; update them when a benchmark is rerun.

- Engines from an empty cache, seconds per *normal training image* of a category (the
  coreset bank dominates and grows with the bank): the 224 px engine from
  ``benchmarks/bench_engine.py`` (bottle, 209 training images, 24.7-29.5 s, one process with
  2 threads); the 448 px engine of the ``hires_*`` methods (1 % coreset) from the README's
  speed table (per seed, one process: bottle 75-87 s, transistor 196-244 s, screw 209-320 s,
  tire 263-351 s for 209-250 training images; about 1 s per image but bottle's 0.4 s).
- Runs, seconds per run of one worker process with 1 thread: the mean (cold: first runs
  build the methods' cached tables and pretraining) and the median (warm) of the ``seconds``
  column of the committed results (``results/*/results.csv`` at commit 5f27a72, computed
  with ``--jobs 2`` on the 2 cores), except ``contrastive``: its committed rows are older
  and slower than today's code, so its cold figure is the README's cold rerun of the main
  grid (120 runs in 46.0 min wall on 2 workers, engines included: 46 s a run) and its warm
  one the median of ``results/main_3d`` (35 s: fine-tuning; the pretraining is cached).
  Methods not listed count :data:`OTHER_RUN`.

The estimate is rough (a factor of 2 either way): images of other categories differ in size
and defect area, and the cold run means already include some engine work.
"""

from __future__ import annotations

from dataclasses import dataclass

from fsad.config import RunConfig
from fsad.evaluate.plan import Plan, group_jobs

#: seconds per normal training image to build an engine from an empty cache, by crop size
ENGINE_COLD_PER_IMAGE = {224: 0.13, 448: 1.0}
#: methods whose names start with this also build the 448 px engine
HIRES_PREFIX = "hires"
#: methods whose names end with this build relit banks (:attr:`fsad.recipe.Recipe.relit_bank`)
RELIT_SUFFIX = "_relit"
#: a relit engine's cold cost over a plain one's, taken from whole fits (engines, support rows
#: and threshold): ``benchmarks/bench_fit.py`` on bottle (200 normal images, one thread, same
#: machine and hour), the relit default 850 s against the default's 458 s
RELIT_ENGINE_FACTOR = 1.9
#: (cold mean, warm median) seconds per run of the committed results
RUN_SECONDS: dict[str, tuple[float, float]] = {
    "random": (0.0, 0.0),
    "residual_proto": (4.42, 0.03),
    "residual_proto_rb": (4.59, 0.03),
    "anomaly_lr": (0.10, 0.05),
    "zoom_lr": (7.75, 0.07),
    "zoom_rot_lr": (10.43, 0.08),
    "zoom2_rot_lr": (8.25, 0.10),
    "zoom2_rot_skm": (0.06, 0.05),
    "hires_lr": (0.18, 0.14),
    "hires_poe": (0.21, 0.16),
    "hires_poe_em": (0.18, 0.14),
    "hires_poe_st": (0.30, 0.25),
    "hires_poe_proto": (0.50, 0.27),
    # the turned support images' rows (results/poses, cold); warm: the twin's figure (cached
    # posed rows are read, not measured apart)
    "residual_proto_rot4": (3.76, 0.03),
    "anomaly_lr_rot4": (3.85, 0.05),
    "hires_poe_proto_rot4": (127.5, 0.27),
    # measured on one core with every engine warm (its twin's 1-shot cells built engines)
    "hires_lite0_poe_proto_rot4": (24.5, 0.27),
    # the same computation with its 448 px engine at one scale (its own cache entries)
    "hires_lite0_poe_proto_rot4_fixed": (24.5, 0.27),
    # the same; the pose test adds the turned support's anomaly maps on the 224 px engine
    "hires_lite0_poe_proto_rot4_gated_fixed": (24.5, 0.27),
    # the same; the light test adds the first engine on the images with their light undone
    # (and, where the light varies, every engine on them: their own cache entries)
    "hires_lite0_poe_proto_rot4_gated_fixed_light": (24.5, 0.27),
    "direct": (6.46, 2.82),
    "contrastive": (46.0, 35.3),
    "contrastive_nopretrain": (43.46, 31.83),
    "contrastive_raw": (349.06, 152.23),
    "contrastive_shapes": (72.92, 68.27),
    "relationnet": (420.71, 288.80),
}
#: a method without figures: a trained network's cost, to err on the long side
OTHER_RUN = (60.0, 30.0)


@dataclass(frozen=True)
class Estimate:
    """Worker-seconds (one worker process, 1 thread) for a grid's pending rows.

    Attributes:
        runs: pending rows.
        groups: pending (category, seed) groups (the tasks a cluster schedules).
        cold: seconds from an empty cache (engines built, tables and pretraining computed).
        warm: seconds when every cache is warm.
    """

    runs: int
    groups: int
    cold: float
    warm: float

    def describe(self, workers: int = 2) -> str:
        """Two lines: the estimate in worker-hours, and the wall time on ``workers``."""
        h = 3600.0
        return (
            f"estimated compute: {self.cold / h:.1f} worker-hours from an empty cache, "
            f"{self.warm / h:.2f} with warm caches ({self.runs} run(s) in {self.groups} "
            f"(category, seed) group(s); figures: fsad/evaluate/estimate.py, rough, x2 either way)\n"
            f"wall time with {workers} workers of 1 core: about {self.cold / workers / h:.1f} h "
            f"cold, {self.warm / workers / h:.2f} h warm (more workers than groups do not help)"
        )


def estimate(config: RunConfig, plan: Plan) -> Estimate:
    """The estimate of ``plan``'s pending jobs from the figures of this module."""
    groups = group_jobs(plan.jobs)
    cold = sum(_engine_seconds(config, plan, group[0].category, group) for group in groups)
    cold += sum(RUN_SECONDS.get(job.method, OTHER_RUN)[0] for job in plan.jobs)
    warm = sum(RUN_SECONDS.get(job.method, OTHER_RUN)[1] for job in plan.jobs)
    return Estimate(len(plan.jobs), len(groups), cold, warm)


def _engine_seconds(config: RunConfig, plan: Plan, category: str, group: list) -> float:
    """Cold engine seconds of one group: the config's engine, plus 448 px for hires methods,
    times :data:`RELIT_ENGINE_FACTOR` when a method builds relit banks."""
    methods = {job.method for job in group}
    if methods <= {"random"}:
        return 0.0
    n_train = len(plan.categories[category].train)
    crop = int(config.engine.get("crop", 224))
    seconds = ENGINE_COLD_PER_IMAGE.get(crop, ENGINE_COLD_PER_IMAGE[224]) * n_train
    if any(m.startswith(HIRES_PREFIX) for m in methods):
        seconds += ENGINE_COLD_PER_IMAGE[448] * n_train
    if config.engine.get("relit_bank") or any(m.endswith(RELIT_SUFFIX) for m in methods):
        seconds *= RELIT_ENGINE_FACTOR
    return seconds
