"""The classic baseline a learned image tokenizer has to beat: k-means vector quantization of
non-overlapping image patches.

With `codebook_size = K` and `patch = f` it produces exactly the token grid and the bit rate
of an f-times-downsampling tokenizer with a K-entry codebook (`log2(K) / f**2` bits per
pixel), so quality differences are due to what the tokenizer learned, not to a different
budget. Each code stands for one `3 x f x f` block of pixels; decoding pastes the centroid.

    km = PatchKMeans(codebook_size=4375, patch=8).fit(train_images_u8)
    codes = km.encode(x)                 # x [B,3,H,W] in [-1,1] -> [B,ceil(H/8),ceil(W/8)]
    y = km.decode(codes, size=(H, W))    # -> [B,3,H,W] in [-1,1]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmtok.media.image import to_model
from mmtok.padding import pad_to_multiple
from mmtok.quantize.nearest import CodeIndex

# Rows whose distance to their centre is computed at once (bounds the [rows, D] temporary).
ROWS_AT_ONCE = 1 << 16


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """`[B,C,H,W]` (H, W multiples of `patch`) -> `[B, H/p * W/p, C*p*p]`, raster order.

    Same (C, dy, dx) element order as `F.unfold`; works on any dtype (uint8 too).
    """
    b, c, h, w = x.shape
    p = patch
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(patches: torch.Tensor, grid: tuple[int, int], patch: int) -> torch.Tensor:
    """Inverse of `patchify`: `[B, h*w, C*p*p]` -> `[B,C,h*p,w*p]`."""
    b, _, d = patches.shape
    (h, w), p = grid, patch
    c = d // (p * p)
    x = patches.reshape(b, h, w, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h * p, w * p)


class PatchKMeans:
    """k-means codebook over `3 x patch x patch` pixel blocks, with the tokenizers' interface
    (`encode`, `decode`, `codebook_sizes`, `downsample`, `grid_shape`).

    The codebook is `[codebook_size, 3*patch*patch]` float32 in [-1,1], element order (C, dy, dx).
    """

    def __init__(self, codebook_size: int, patch: int):
        if codebook_size < 1 or patch < 1:
            raise ValueError("codebook_size and patch must be >= 1")
        self.codebook_size, self.patch = codebook_size, patch
        self.codebook: torch.Tensor | None = None
        # Mean squared patch distance (sum over 3*p*p values in [-1,1]) before each Lloyd step.
        self.inertia: list[float] = []

    # -- tokenizer-like facts ------------------------------------------------------------
    @property
    def codebook_sizes(self) -> list[int]:
        return [self.codebook_size]

    @property
    def downsample(self) -> int:
        return self.patch

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        return -(-height // self.patch), -(-width // self.patch)

    # -- fitting -------------------------------------------------------------------------
    def fit(
        self, images: Sequence[torch.Tensor], max_patches: int = 200_000, iters: int = 20,
        seed: int = 0, init: str = "k-means++",
    ) -> PatchKMeans:
        """Fit on `[3,H,W]` uint8 images: sample up to `max_patches` grid-aligned patches,
        initialise (`"k-means++"` or `"random"` data points), then run `iters` Lloyd steps.

        Only whole patches are used (no padding) so the codebook learns image content, not
        reflection borders. Deterministic for a given `seed`.
        """
        if init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++' or 'random', got {init!r}")
        p, g = self.patch, torch.Generator().manual_seed(seed)
        # Patches stay uint8 until sampled: the whole pool is ~1/4 the size of a float copy.
        pool = [patchify(im[None, :, : im.shape[-2] // p * p, : im.shape[-1] // p * p], p)[0] for im in images]
        pool_u8 = torch.cat([t for t in pool if len(t)])
        if len(pool_u8) < self.codebook_size:
            raise ValueError(f"{len(pool_u8)} patches are fewer than the {self.codebook_size} codes to fit")
        pick = torch.randperm(len(pool_u8), generator=g)[:max_patches]
        data = to_model(pool_u8[pick])
        del pool, pool_u8
        if init == "k-means++":
            centers = self._init_plus_plus(data, g)
        else:
            centers = data[torch.randperm(len(data), generator=g)[: self.codebook_size]].clone()
        self.inertia = []
        for _ in range(iters):
            ids, dist = self._assign(data, centers)
            self.inertia.append(float(dist.mean()))
            sums = torch.zeros_like(centers).index_add_(0, ids, data)
            counts = torch.bincount(ids, minlength=self.codebook_size)
            used = counts > 0
            centers[used] = sums[used] / counts[used, None].to(sums.dtype)
            empty = (~used).nonzero().squeeze(1)
            if len(empty):
                # An empty cluster wastes a code; re-seed it on the worst-fitted points, where
                # a new centre lowers the error most (as scikit-learn does).
                centers[empty] = data[dist.topk(len(empty)).indices]
        self.codebook = centers
        return self

    def _init_plus_plus(self, data: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre is a data point
        drawn with probability proportional to its squared distance to the nearest centre."""
        centers = torch.empty(self.codebook_size, data.shape[1])
        centers[0] = data[torch.randint(len(data), (1,), generator=g)]
        nearest = (data - centers[0]).pow(2).sum(1)
        sq_norms = data.pow(2).sum(1)
        for k in range(1, self.codebook_size):
            weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
            centers[k] = data[torch.multinomial(weights, 1, generator=g)]
            # ||x - c||^2 via norms and one mat-vec: no [N,D] temporary per step.
            dist = (sq_norms - 2 * data @ centers[k] + centers[k].pow(2).sum()).clamp_min_(0)
            torch.minimum(nearest, dist, out=nearest)
        return centers

    def _assign(self, data: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest centre of each row of `data [N,D]`: `(ids [N] int64, squared distance [N])`,
        by the exact chunked search every VQ encoder uses (`mmtok.quantize.nearest`)."""
        ids = CodeIndex(centers).search(data)
        dist = torch.cat([
            (data[i : i + ROWS_AT_ONCE] - centers[ids[i : i + ROWS_AT_ONCE]]).pow_(2).sum(1)
            for i in range(0, len(data), ROWS_AT_ONCE)
        ])
        return ids, dist

    # -- codes ---------------------------------------------------------------------------
    def _checked_codebook(self) -> torch.Tensor:
        if self.codebook is None:
            raise RuntimeError("PatchKMeans is not fitted; call fit(images) first")
        return self.codebook

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1] -> codes `[B,ceil(H/p),ceil(W/p)]` int64.

        Pads bottom/right like the tokenizers (reflect; replicate when too small to reflect)
        so both methods see the same pixels in their edge tokens.
        """
        codebook = self._checked_codebook()
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {tuple(x.shape)}")
        p = self.patch
        x = pad_to_multiple(x, p)
        b, h, w = x.shape[0], x.shape[-2] // p, x.shape[-1] // p
        ids, _ = self._assign(patchify(x.float(), p).reshape(b * h * w, -1), codebook)
        return ids.reshape(b, h, w)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """codes `[B,h,w]` -> `[B,3,h*p,w*p]` in [-1,1], cropped to `size=(H,W)` if given."""
        codebook = self._checked_codebook()
        if codes.ndim != 3:
            raise ValueError(f"expected codes [B,h,w], got shape {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size - 1}]")
        b, h, w = codes.shape
        x = unpatchify(codebook[codes.reshape(b, h * w).long()], (h, w), self.patch).clamp(-1, 1)
        return x if size is None else x[..., : size[0], : size[1]]
