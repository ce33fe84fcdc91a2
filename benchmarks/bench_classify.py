"""Benchmark (and check) ``fsad classify`` with a fitted model.

Measures, on ``--threads`` CPU threads (torch and faiss):

- model load time: :meth:`Inspector.load` (hash checks, banks) and the engines' backbone
  builds (the zoom encoders are built during the warm-up batch);
- classify throughput once loaded (decode + features + nearest neighbours + descriptors +
  head; ``--overlays`` adds the heat-map PNG writes), after one warm-up batch;
- the model folder size.

On a shared machine the wall-clock rate depends on the other load: the process CPU time
per image (``cpu_s_per_image``, all threads together) and the 1-minute load average are
printed too; on ``--threads`` idle cores the rate is about ``threads / cpu_s_per_image``
at best and ``1 / cpu_s_per_image`` at worst.

With ``--report`` the images' parent folder names are taken as the truth (``good`` =
normal): it prints scikit-learn's ``classification_report`` of the predictions (``good`` or
a defect type) and the normal-vs-defect AUROC of the anomaly scores.

Example (MVTec AD bottle arranged as folders with symlinks, see issue 8)::

    fsad fit --normal /tmp/bottle/normal --support /tmp/bottle/support --out /tmp/bottle_model
    python benchmarks/bench_classify.py --model /tmp/bottle_model --images /tmp/bottle/query \\
        --threads 2 --report
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from fsad.artifact import folder_size
from fsad.inspector import Inspector, collect_inputs
from fsad.viz.overlay import save_png


def _set_threads(n: int) -> None:
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def _report(results: list) -> dict:
    import numpy as np
    from sklearn.metrics import classification_report, roc_auc_score

    ok = [r for r in results if r.ok]
    truth = [Path(r.path).parent.name for r in ok]
    pred = [r.prediction for r in ok]
    print(classification_report(truth, pred, digits=3, zero_division=0))
    y = np.array([t != "good" for t in truth])
    scores = np.array([r.score for r in ok])
    auroc = float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")
    defect = [(t, r.defect_type) for t, r in zip(truth, ok) if t != "good"]
    acc = float(np.mean([t == p for t, p in defect])) if defect else float("nan")
    print(f"normal-vs-defect AUROC {auroc:.4f}; defect-type accuracy on defective {acc:.3f}")
    return {"auroc": auroc, "defect_type_accuracy": acc, "n_scored": len(ok)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overlays", action="store_true", help="also write overlay PNGs")
    parser.add_argument("--report", action="store_true", help="truth = parent folder name")
    args = parser.parse_args(argv)
    os.environ.setdefault("FSAD_NO_PROGRESS", "1")
    _set_threads(args.threads)

    t0 = time.perf_counter()
    insp = Inspector.load(args.model)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for engine in insp.engines():  # backbone builds + weights (zoom encoders: in the warm-up)
        _ = engine.extractor
    t_backbone = time.perf_counter() - t0

    paths = collect_inputs(args.images)
    insp.classify(paths[: args.batch_size], batch_size=args.batch_size, progress=False)  # warm-up
    out = Path(tempfile.mkdtemp(prefix="fsad_bench_"))
    t0, c0 = time.perf_counter(), time.process_time()
    results = []
    for res, image in insp.iter_classify(paths, batch_size=args.batch_size, progress=False):
        if args.overlays and res.ok:
            save_png(out / f"{len(results)}.png", insp.overlay(res, image))
        results.append(res)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = {
        "threads": args.threads,
        "images": len(paths),
        "classify_s": round(elapsed, 3),
        "images_per_s": round(len(paths) / elapsed, 2),
        "cpu_s_per_image": round(cpu / len(paths), 4),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "overlays": args.overlays,
        "model_load_s": round(t_load, 3),
        "backbone_load_s": round(t_backbone, 3),
        "model_mb": round(folder_size(args.model) / 1e6, 2),
        "bank_sizes": insp.info["bank_sizes"],
        "method": insp.config.method,
        "resolution": [insp.config.resize, insp.config.crop],
    }
    if args.report:
        summary.update(_report(results))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
