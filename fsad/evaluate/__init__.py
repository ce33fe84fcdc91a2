"""The experiment grid: (dataset x category x method x shots x seed) -> tidy result rows.

For every (category, seed) the runner builds one residual engine (the coreset bank depends on
the seed); for every method and shot count it builds the paper's few-shot split (first n files
per defect type = support, section 4.1.3), hands the method a :class:`~fsad.task.FewShotTask`
*without* query labels, and scores the returned predictions itself.

Output folder (every file written atomically, rows written as they finish)::

    <out>/results.csv         one row per (dataset, category, method, shots, seed,
                              config_hash)
    <out>/predictions.csv.gz  one row per query image of every run (confusion matrices;
                              read it with :func:`read_predictions`)
    <out>/config.yaml         the latest run configuration; its categories, methods, shots
                              and seeds cover every call of that configuration

Rerunning with the same output folder skips finished rows (resumable); everything that can
be checked before the first computation (data folders, splits, method names) is checked
first, so a bad request writes nothing.

Modules, one responsibility each:

- :mod:`~fsad.evaluate.sources`: dataset and texture folders, categories, engines;
- :mod:`~fsad.evaluate.plan`: the checks before any work, the jobs left, a method's task;
- :mod:`~fsad.evaluate.execute`: one job into its rows; jobs in order;
- :mod:`~fsad.evaluate.cluster`: (category, seed) groups on a Dask cluster (``--workers``,
  ``--scheduler``);
- :mod:`~fsad.evaluate.estimate`: the measured figures behind ``--dry-run``'s time estimate;
- :mod:`~fsad.evaluate.store`: the results folder's files, columns and atomic writes;
- :mod:`~fsad.evaluate.provenance`: git commit and version of a row;
- :mod:`~fsad.evaluate.run`: :func:`run_grid`, which ties them together.
"""

from fsad.evaluate.cluster import Cluster, open_client, submit_groups
from fsad.evaluate.estimate import Estimate, estimate
from fsad.evaluate.execute import Finished, run_job, run_sequential, score
from fsad.evaluate.plan import HIDDEN, Job, Plan, build_task, data_hash, group_jobs, hide_label
from fsad.evaluate.provenance import git_commit, run_context
from fsad.evaluate.run import GridResult, run_grid
from fsad.evaluate.sources import (
    EngineFactory,
    LazyEngine,
    default_engine_factory,
    engine_config_from_dict,
    resolve_categories,
    resolve_dataset_root,
    resolve_textures,
)
from fsad.evaluate.store import (
    CONFIG_FILE,
    KEY_COLUMNS,
    LEGACY_PREDICTIONS_FILE,
    PREDICTION_COLUMNS,
    PREDICTIONS_FILE,
    RESULT_COLUMNS,
    RESULTS_FILE,
    ResultStore,
    read_predictions,
    read_results,
    row_key,
    widened_config,
)

__all__ = [
    "CONFIG_FILE",
    "HIDDEN",
    "KEY_COLUMNS",
    "LEGACY_PREDICTIONS_FILE",
    "PREDICTIONS_FILE",
    "PREDICTION_COLUMNS",
    "RESULTS_FILE",
    "RESULT_COLUMNS",
    "Cluster",
    "EngineFactory",
    "Estimate",
    "Finished",
    "GridResult",
    "Job",
    "LazyEngine",
    "Plan",
    "ResultStore",
    "build_task",
    "data_hash",
    "default_engine_factory",
    "engine_config_from_dict",
    "estimate",
    "git_commit",
    "group_jobs",
    "hide_label",
    "open_client",
    "read_predictions",
    "read_results",
    "resolve_categories",
    "resolve_dataset_root",
    "resolve_textures",
    "row_key",
    "run_context",
    "run_grid",
    "run_job",
    "run_sequential",
    "score",
    "submit_groups",
    "widened_config",
]
