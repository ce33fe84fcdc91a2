"""Benchmark ``fsad fit`` from an empty cache: the time to a saved model, and its size.

A product arranged as an inspection engineer has it (``scripts/mvtec_as_folders.py``
layout: ``normal/``, ``support/<defect type>/``): the first ``--normals`` normal images and
the first ``--shots`` images of each defect type. The fit runs with a fresh, empty
``FSAD_CACHE`` (nothing reused), the given method (default: ``fsad fit``'s,
:data:`fsad.inspector.DEFAULT_METHOD`) and whole-image framing (``fsad fit``'s defaults), on ``--threads``
threads. Prints one JSON line: wall and CPU seconds of the fit and of the save, the model
size, the bank sizes and the leave-one-out estimate.

Example::

    python scripts/mvtec_as_folders.py $FSAD_DATA/mvtec_ad bottle /tmp/bottle --shots 5
    python benchmarks/bench_fit.py --folders /tmp/bottle --normals 200 --threads 2
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
from fsad.cache import DiskCache
from fsad.inspector import DEFAULT_METHOD, Inspector, images_in, support_folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folders", type=Path, required=True, help="normal/ and support/")
    parser.add_argument("--normals", type=int, default=200)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--method", default=DEFAULT_METHOD)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    normal = images_in(args.folders / "normal", "normal folder")[: args.normals]
    support = {t: f[: args.shots] for t, f in support_folders(args.folders / "support").items()}
    scratch = Path(tempfile.mkdtemp(prefix="fsad_bench_fit_"))
    insp = Inspector(method=args.method, cache=DiskCache(scratch / "cache"))
    t0, c0 = time.perf_counter(), time.process_time()
    insp.fit(normal, support)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    model = insp.save(scratch / "model")
    summary = {
        "method": args.method,
        "threads": args.threads,
        "normals": len(normal),
        "support": {t: len(f) for t, f in support.items()},
        "fit_s": round(fit_s, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "save_s": round(time.perf_counter() - t0, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "model_mb": round(folder_size(model) / 1e6, 2),
        "bank_sizes": insp.info["bank_sizes"],
        "trust": insp.trust,
        "model": str(model),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
