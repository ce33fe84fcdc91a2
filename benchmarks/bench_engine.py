"""Benchmark of the residual engine (issue 3): cold/warm time, peak memory, profile, reference.

Usage::

    python benchmarks/bench_engine.py --data $FSAD_DATA/mvtec_ad --category bottle

Reports, for one category, one seed and a fresh cache folder:
- cold: train + test features (backbone), coreset bank, residuals of every test image;
- warm: the same request from a new engine on the filled cache;
- peak RSS (resource.getrusage) and CPU seconds next to wall seconds (the machine may be shared);
- the plain reference side by side: greedy coreset as one full distance pass per selected
  point (on the first ``--ref-images`` train images, the full set takes many minutes),
  selection equality and time ratio; fsad's exact search and faiss IndexFlatL2 against a
  float64 brute force for the fixed bank (agreement must be 1.0 for exact search).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace

import torch


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


@contextmanager
def timed(name: str, table: list[tuple[str, float, float]]):
    w, c = time.perf_counter(), _cpu()
    yield
    table.append((name, time.perf_counter() - w, _cpu() - c))


def brute_force_nn(q: torch.Tensor, bank: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Reference nearest neighbour indices ``(P,)`` of ``q (P, D)`` in ``bank (M, D)``.

    Plain brute force in float64 (``||q - m||^2`` expanded; float64 rounding is far below any
    real gap between neighbours), one chunk of queries at a time.
    """
    b = bank.double()
    sq = (b * b).sum(1)[None]
    out = []
    for s in range(0, len(q), chunk):
        out.append(torch.addmm(sq, q[s : s + chunk].double(), b.T, alpha=-2.0).argmin(dim=1))
    return torch.cat(out)


def faiss_flat_nn(q: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """faiss ``IndexFlatL2`` nearest neighbour indices ``(P,)`` (the previous search)."""
    import faiss

    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(bank.numpy())
    return torch.from_numpy(index.search(q.numpy(), 1)[1][:, 0]).long()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset root (e.g. $FSAD_DATA/mvtec_ad)")
    ap.add_argument("--dataset", default="mvtec_ad")
    ap.add_argument("--category", default="bottle")
    ap.add_argument("--ratio", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--ref-images", type=int, default=26, help="train images for the reference")
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()

    from fsad.cache import DiskCache
    from fsad.data import load_category
    from fsad.engine import EngineConfig, ResidualEngine
    from fsad.features import FeatureConfig
    from fsad.memory import MemoryBank, flatten_patches, greedy_coreset, greedy_coreset_reference

    cat = load_category(args.data, args.dataset, args.category)
    fcfg = FeatureConfig() if args.dim is None else replace(FeatureConfig(), dim=args.dim)
    config = EngineConfig(features=fcfg, coreset_ratio=args.ratio)
    print(
        f"{cat.name}: {len(cat.train)} train + {len(cat.test)} test images, {fcfg.backbone}, "
        f"D={fcfg.dim}, ratio={args.ratio}, seed={args.seed}, torch threads "
        f"{torch.get_num_threads()}"
    )
    table: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = DiskCache(tmp)
        eng = ResidualEngine(cat, config, seed=args.seed, cache=cache)
        with timed("cold total", table):
            with timed("  backbone: load", table):
                eng.extractor  # noqa: B018
            with timed("  backbone+patches: train", table):
                f_train = eng.features(cat.train)
            with timed("  backbone+patches: test", table):
                eng.features(cat.test)
            with timed("  coreset bank", table):
                bank = eng.bank
            with timed("  search + residuals: test", table):
                r = eng.residuals(cat.test)
                eng.anomaly_maps(cat.test)
        warm = ResidualEngine(cat, config, seed=args.seed, cache=cache)
        with timed("warm: residuals + maps of test", table):
            r2 = warm.residuals(cat.test)
            warm.anomaly_maps(cat.test)
        assert torch.equal(r, r2), "warm residuals differ from cold ones"
        print(
            f"bank: {len(bank)} x {bank.dim} from {f_train.shape[0] * f_train.shape[2] * f_train.shape[3]} patches; residuals {tuple(r.shape)}"
        )

        if not args.skip_reference:
            x = flatten_patches(f_train[: args.ref_images])
            with timed(f"coreset fast ({len(x)} patches)", table):
                a = greedy_coreset(x, args.ratio, args.seed)
            with timed(f"coreset reference ({len(x)} patches)", table):
                b = greedy_coreset_reference(x, args.ratio, args.seed)
            same = torch.equal(a, b)
            q = flatten_patches(eng.features(cat.test))
            fixed = MemoryBank(bank.features)
            with timed(f"NN fsad exact ({len(q)} queries)", table):
                _, idx = fixed.search(q)
            with timed(f"NN faiss IndexFlatL2 ({len(q)} queries)", table):
                faiss_idx = faiss_flat_nn(q, fixed.features)
            with timed(f"NN reference float64 ({len(q)} queries)", table):
                ref_idx = brute_force_nn(q, fixed.features)
            agree = float((idx[:, 0] == ref_idx).float().mean())
            agree_faiss = float((faiss_idx == ref_idx).float().mean())

    print(f"\n{'step':<44}{'wall s':>9}{'cpu s':>9}")
    for name, w, c in table:
        print(f"{name:<44}{w:>9.2f}{c:>9.2f}")
    print(f"peak RSS {_peak_gb():.2f} GiB")
    if not args.skip_reference:
        t = {n: (w, c) for n, w, c in table}
        fast = next(v for k, v in t.items() if k.startswith("coreset fast"))
        ref = next(v for k, v in t.items() if k.startswith("coreset reference"))
        print(
            f"coreset: same selection as reference: {same}; reference/fast time "
            f"{ref[0] / fast[0]:.1f}x wall, {ref[1] / max(fast[1], 1e-9):.1f}x cpu"
        )
        print(
            f"nearest neighbours vs float64 brute force: fsad exact {agree:.6f}, "
            f"faiss IndexFlatL2 {agree_faiss:.6f}"
        )


if __name__ == "__main__":
    main()
