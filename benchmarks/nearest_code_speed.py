"""Nearest-code search: mmtok's exact chunked search vs vector-quantize-pytorch's
`VectorQuantize` (eval mode) vs a plain full-distance-matrix argmin, and all of them against
the machine's measured float32 matmul rate, in one run.

    python benchmarks/nearest_code_speed.py --threads 2

Every method gets the same float32 queries `[N,D]` and codebook `[K,D]` (default 16384 x
8192 x 256, Gaussian). Rounds interleave the methods so machine load hits all alike:
`--warmup` untimed rounds, then the median of `--repeats`. The matmul rate is the best of
`x @ codebook.T` (the GEMM every method has to do) and a square `--square`^3 product, in
GFLOP/s (2*M*N*K flops); a search's "effective rate" is the same 2*N*K*D flops divided by
its time, so "fraction of matmul rate" says how close to the hardware limit it runs. Codes are
compared: ours against the others, and every disagreement rescored in float64 to show which
side is the exact argmin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from vector_quantize_pytorch import VectorQuantize

from mmtok.quantize.nearest import BLOCK_ELEMENTS, MIN_BLOCK_ROWS, CodeIndex, exact_scores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=16384)
    p.add_argument("--codes", type=int, default=8192)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--square", type=int, default=4096, help="side of the square matmul that measures the machine's rate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def plain_argmin(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The textbook version: the whole [N,K] squared-distance matrix, then argmin."""
    d = x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.T + codebook.pow(2).sum(1)
    return d.argmin(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    g = torch.Generator().manual_seed(args.seed)
    n, k, d = args.queries, args.codes, args.dim
    x = torch.randn(n, d, generator=g)
    codebook = torch.randn(k, d, generator=g)
    a, b = torch.randn(args.square, args.square, generator=g), torch.randn(args.square, args.square, generator=g)

    vq = VectorQuantize(dim=d, codebook_size=k, kmeans_init=False).eval()
    vq.codebook = codebook  # setter: copies into the EMA buffer
    index = CodeIndex(codebook)

    results: dict[str, list[float]] = {}
    outputs: dict[str, torch.Tensor] = {}
    ops = {
        "matmul x @ codebook.T": lambda: x @ codebook.T,
        f"matmul {args.square}^3": lambda: a @ b,
        "mmtok CodeIndex.search": lambda: index.search(x),
        "mmtok search incl. index build": lambda: CodeIndex(codebook).search(x),
        "VectorQuantize (eval)": lambda: vq(x[None])[1][0],
        "plain full-matrix argmin": lambda: plain_argmin(x, codebook),
    }
    with torch.inference_mode():
        for round_ in range(args.warmup + args.repeats):
            for name, op in ops.items():
                start = time.perf_counter()
                out = op()
                seconds = time.perf_counter() - start
                if round_ >= args.warmup:
                    results.setdefault(name, []).append(seconds)
                if out.dtype == torch.int64:
                    outputs[name] = out

    median = {name: statistics.median(ts) for name, ts in results.items()}
    search_flops = 2 * n * k * d
    rates = {
        "matmul x @ codebook.T": search_flops / median["matmul x @ codebook.T"] / 1e9,
        f"matmul {args.square}^3": 2 * args.square**3 / median[f"matmul {args.square}^3"] / 1e9,
    }
    peak = max(rates.values())
    ours = median["mmtok CodeIndex.search"]

    print(f"nearest code: {n} queries x {k} codes x {d} dims, float32, {args.threads} threads, "
          f"median of {args.repeats} (torch {torch.__version__})")
    print(f"matmul rate: {rates['matmul x @ codebook.T']:.1f} GFLOP/s (same GEMM), "
          f"{rates[f'matmul {args.square}^3']:.1f} GFLOP/s ({args.square}^3); peak used: {peak:.1f}")
    print(f"{'method':34s} {'median s':>9s} {'GFLOP/s':>8s} {'of peak':>8s} {'ours faster':>11s}")
    table = []
    for name, seconds in median.items():
        flops = 2 * args.square**3 if name.startswith(f"matmul {args.square}") else search_flops
        row = {"method": name, "median_s": seconds, "gflops": flops / seconds / 1e9,
               "fraction_of_peak": flops / seconds / 1e9 / peak, "ours_speedup": seconds / ours, "all_s": results[name]}
        table.append(row)
        print(f"{name:34s} {seconds:9.3f} {row['gflops']:8.1f} {row['fraction_of_peak']:8.1%} {row['ours_speedup']:10.2f}x")

    # Agreement, and who is exact where the methods differ.
    mine = outputs["mmtok CodeIndex.search"]
    agreement = {}
    for name in ("VectorQuantize (eval)", "plain full-matrix argmin", "mmtok search incl. index build"):
        other = outputs[name]
        rows = (other != mine).nonzero().squeeze(1)
        ours_exact = 0
        for r in rows.tolist():
            s = exact_scores(x[r : r + 1].expand(2, d), codebook[torch.stack([mine[r], other[r]])], "euclidean")
            ours_exact += int(s[0] < s[1] or (s[0] == s[1] and mine[r] < other[r]))
        agreement[name] = {"differing_rows": rows.numel(), "ours_exact_on": ours_exact}
        print(f"codes vs {name}: {n - rows.numel()}/{n} identical; of the {rows.numel()} differing rows ours is the "
              f"exact argmin on {ours_exact}")
    rows = min(n, max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // index.size))
    memory = {"ours_block_mib": rows * index.size * 4 / 2**20, "full_matrix_mib": n * k * 4 / 2**20}
    print(f"score memory: ours {memory['ours_block_mib']:.0f} MiB per block, full matrix {memory['full_matrix_mib']:.0f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rates_gflops": rates,
                                         "methods": table, "agreement": agreement, "memory": memory}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
