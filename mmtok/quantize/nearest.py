"""Exact nearest-code search by chunked matrix multiplication.

Every VQ encode path (image and video VQ, each residual level of the audio codec, the k-means
baseline, the pretrained EnCodec / Mimi / DAC / Emu3 quantizers) asks the same question: for
each of N vectors, which of K codes is closest? A plain answer materialises the N x K
distance matrix (16k x 8192 floats = 512 MiB) and makes several passes over it. Here

    score[n, k] = bias[k] - 2 * x[n] . c[k]       bias = |c|^2 (euclidean) or 0 (dot)

is one `addmm` per block of rows (the GEMM adds the precomputed bias for free), reduced to
its row minimum while the block is still in cache; memory stays at one block whatever N.
`|x|^2` is the same for every code of a row, so it is left out.

Exactness. Float32 rounding can reorder two codes whose scores are closer than the rounding
error, so the raw argmin could differ from the exhaustive one. A rigorous bound on that error
(`_tolerance`) marks the rare rows whose runner-up lies within twice the bound of the
minimum; for those, every code within the band is rescored exactly (float64, from the
vectors) and the lowest index among the exact minima wins, as `torch.argmin` breaks ties.
The result equals `exhaustive_nearest` (float64 scores over all codes), ties included.

    index = CodeIndex(codebook, metric="euclidean")    # codebook [K,D]; bias computed once
    ids = index.search(x)                              # x [N,D] -> [N] int64 in [0, K)
"""

from __future__ import annotations

import torch

METRICS = ("euclidean", "dot")
# Score-block size in elements: 512 x 8192 float32 = 16 MiB, reused for every block. Large
# enough for the GEMM to run at full speed, small enough that memory does not grow with N;
# 2-16 MiB blocks measured within noise of each other (benchmarks/nearest_code_speed.py).
BLOCK_ELEMENTS = 1 << 22
MIN_BLOCK_ROWS = 16
# Rows rescored exactly at once: bounds the float64 [rows, candidates, D] temporaries.
EXACT_ELEMENTS = 1 << 22


class CodeIndex:
    """A codebook `[K,D]` ready for exact nearest-code search.

    `metric="euclidean"`: nearest by squared L2 distance. `metric="dot"`: largest inner
    product (cosine similarity when codes and queries are l2-normalised, as cosine VQ does).
    The codebook is used in float32 on its own device; `bias` (`|c|^2`) is computed once.
    """

    def __init__(self, codebook: torch.Tensor, metric: str = "euclidean"):
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r} is not one of {METRICS}")
        if codebook.ndim != 2 or codebook.shape[0] == 0:
            raise ValueError(f"codebook must be [K,D] with K >= 1, got {tuple(codebook.shape)}")
        self.metric = metric
        self.codebook = codebook.detach().float().contiguous()
        k = self.codebook.shape[0]
        # |c|^2 summed in float64 and rounded once: the bias then errs by one rounding, not D
        # of them, which keeps `_tolerance`'s band (and the rows rescored exactly) narrow.
        self.bias = self.codebook.double().pow(2).sum(1).float() if metric == "euclidean" else self.codebook.new_zeros(k)
        self.max_norm = float(self.codebook.norm(dim=1).max())

    @property
    def size(self) -> int:
        return self.codebook.shape[0]

    @torch.no_grad()
    def search(self, x: torch.Tensor, block_rows: int | None = None) -> torch.Tensor:
        """`x [N,D]` (any float dtype; compared in float32) -> ids `[N]` int64, the exact argmin."""
        if x.ndim != 2 or x.shape[1] != self.codebook.shape[1]:
            raise ValueError(f"queries must be [N,{self.codebook.shape[1]}], got {tuple(x.shape)}")
        x = x.detach().to(self.codebook.device, torch.float32)
        rows = min(block_rows or max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // self.size), max(x.shape[0], 1))
        ids = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
        # One score buffer reused by every block: no allocator traffic inside the loop.
        buffer = torch.empty(rows, self.size, device=x.device)
        codes_t = self.codebook.T
        for start in range(0, x.shape[0], rows):
            block = x[start : start + rows]
            scores = buffer[: block.shape[0]]
            torch.addmm(self.bias, block, codes_t, alpha=-2.0, out=scores)
            best, best_ids = scores.min(dim=1)
            # Rows whose runner-up lies within 2 tol of the best are decided exactly: hide
            # each row's best, take the minimum of the rest (one cheap pass, no index).
            band = best + 2 * _tolerance(block, self.max_norm, self.codebook.shape[1], self.metric)
            scores.scatter_(1, best_ids[:, None], float("inf"))
            crowded = (scores.amin(dim=1) <= band).nonzero().squeeze(1)
            if crowded.numel():
                candidates = scores[crowded] <= band[crowded, None]
                candidates.scatter_(1, best_ids[crowded, None], True)
                best_ids[crowded] = self._exact(block[crowded], candidates)
            ids[start : start + rows] = best_ids
        return ids

    def _exact(self, queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """For each query, the lowest index among the candidates with the exact smallest score.

        `queries [R,D]`, `candidates [R,K]` bool (at least one True per row) -> `[R]` int64."""
        out = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
        row_of, code_of = candidates.nonzero(as_tuple=True)
        per_slice = max(1, EXACT_ELEMENTS // queries.shape[1])
        exact = torch.cat([
            exact_scores(queries[row_of[i : i + per_slice]], self.codebook[code_of[i : i + per_slice]], self.metric)
            for i in range(0, row_of.numel(), per_slice)
        ])
        lowest = torch.full((queries.shape[0],), float("inf"), dtype=torch.float64, device=queries.device)
        lowest.scatter_reduce_(0, row_of, exact, reduce="amin")
        winner = torch.where(exact == lowest[row_of], code_of, torch.iinfo(torch.long).max)
        out.fill_(torch.iinfo(torch.long).max).scatter_reduce_(0, row_of, winner, reduce="amin")
        return out


def exact_scores(x: torch.Tensor, codes: torch.Tensor, metric: str) -> torch.Tensor:
    """Float64 score of each pair of rows: `|x - c|^2` (euclidean) or `-2 x.c` (dot), `[P]`.

    Differences and products of float32 values are exact in float64, so these scores order
    codes as the exhaustive search does."""
    x, codes = x.double(), codes.double()
    if metric == "euclidean":
        return (x - codes).pow(2).sum(-1)
    return -2 * (x * codes).sum(-1)


@torch.no_grad()
def exhaustive_nearest(x: torch.Tensor, codebook: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """Reference: float64 scores of every (query, code) pair, argmin with the lowest index
    on ties. `x [N,D]`, `codebook [K,D]` -> `[N]` int64. Slow; for tests and checks."""
    x, codebook = x.float(), codebook.float()
    per = max(1, EXACT_ELEMENTS // (codebook.shape[0] * codebook.shape[1]))
    return torch.cat([
        exact_scores(x[i : i + per, None], codebook[None], metric).argmin(1) for i in range(0, x.shape[0], per)
    ]) if x.shape[0] else torch.empty(0, dtype=torch.long)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """One-off search: `x [N,D]`, `codebook [K,D]` -> `[N]` int64 (see `CodeIndex`)."""
    return CodeIndex(codebook, metric).search(x)


def _unit_roundoff(device: torch.device) -> float:
    """Largest relative rounding of one float32 matmul step on `device`: 2^-24 in full
    float32; TF32 (CUDA) or bf16 passes (`set_float32_matmul_precision`) round far more."""
    reduced = torch.get_float32_matmul_precision() != "highest"
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        reduced = True
    return 2.0**-8 if reduced else 2.0**-24


def _tolerance(block: torch.Tensor, max_norm: float, dim: int, metric: str) -> torch.Tensor:
    """Per row, a bound on |computed score - exact score| for every code.

    A dot product of length D accumulated in any order errs by at most gamma_D * sum|x_i c_i|
    <= gamma_D |x| |c| (Higham, Accuracy and Stability, 3.1), gamma_D = D u / (1 - D u); the
    bias |c|^2 is rounded once (u |c|^2), and adding the two rounds once more
    (u (|c|^2 + 2 |x| |c|)). Two extra units in D and a 1% margin cover kernels that round
    intermediate sums differently."""
    u = _unit_roundoff(block.device)
    gamma = (dim + 2) * u / (1 - (dim + 2) * u)
    cross = 2 * block.norm(dim=1) * max_norm
    bound = (gamma + u) * cross
    if metric == "euclidean":
        bound = bound + 2 * u * max_norm**2
    return bound * 1.01


def cached_index(owner: object, codebook: torch.Tensor, metric: str = "euclidean") -> CodeIndex:
    """The `CodeIndex` of `codebook`, kept on `owner` (e.g. the codebook's module) and rebuilt
    only when the codebook changes: new storage, device, shape or an in-place update (EMA
    step, `load_state_dict`), which bumps the tensor's version counter."""
    key = (codebook.data_ptr(), codebook._version, tuple(codebook.shape), codebook.device, codebook.dtype, metric)
    cached = owner.__dict__.get("_mmtok_code_index")  # a plain attribute: not in any state_dict
    if cached is None or cached[0] != key:
        cached = (key, CodeIndex(codebook, metric))
        owner.__dict__["_mmtok_code_index"] = cached
    return cached[1]
