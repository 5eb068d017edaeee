"""Exact nearest-code search: equal to the exhaustive float64 argmin (ties to the lowest
index), and the codes every VQ encode path picks with it."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from vector_quantize_pytorch import ResidualVQ, VectorQuantize

from mmtok.eval.kmeans_baseline import PatchKMeans
from mmtok.quantize import QuantizerConfig, VQQuantizer
from mmtok.quantize.nearest import CodeIndex, cached_index, exhaustive_nearest, nearest_code
from mmtok.quantize.residual import ResidualQuantizer
from mmtok.quantize.vq_search import vq_ids


@pytest.mark.parametrize("metric", ["euclidean", "dot"])
@pytest.mark.parametrize(("n", "k", "d", "rows"), [(1000, 300, 16, None), (257, 64, 3, 16), (50, 1, 8, None), (0, 5, 4, None)])
def test_equals_the_exhaustive_argmin(metric, n, k, d, rows):
    g = torch.Generator().manual_seed(n + k)
    x, codes = torch.randn(n, d, generator=g) * 3, torch.randn(k, d, generator=g)
    ids = CodeIndex(codes, metric).search(x, block_rows=rows)
    assert ids.dtype == torch.int64 and ids.shape == (n,)
    assert torch.equal(ids, exhaustive_nearest(x, codes, metric))


def test_ties_go_to_the_lowest_index():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(-3, 4, (200, 6), generator=g).float()
    codes = torch.cat([codes, codes.flip(0)])                  # every code twice
    x = torch.randint(-6, 7, (5000, 6), generator=g).float() / 2  # many exact midpoints
    ids = nearest_code(x, codes)
    assert torch.equal(ids, exhaustive_nearest(x, codes))
    # the reference really had ties to break, and they went to the first of equal codes
    d = ((x[:, None] - codes[None]) ** 2).sum(-1)
    tied = (d == d.min(1, keepdim=True).values).sum(1) > 1
    assert tied.float().mean() > 0.5
    assert torch.equal(ids, d.argmin(1))
    assert nearest_code(x[:10], torch.zeros(7, 6)).eq(0).all()  # all codes equal


def test_near_ties_beyond_float32_matmul_resolution():
    # Two codes one float32 ulp apart on a large vector: the matmul scores cannot tell them
    # apart reliably; the exact rescoring must pick the truly nearest one.
    g = torch.Generator().manual_seed(1)
    base = torch.randn(64, generator=g) * 100
    twin = base.clone()
    twin[0] = torch.nextafter(base[0], torch.tensor(float("inf")))
    codes = torch.stack([torch.randn(64, generator=g), twin, base])
    x = base[None] + torch.randn(300, 64, generator=g) * 1e-3
    x[:, 0] = base[0] + torch.linspace(-1e-5, 1e-5, 300)  # queries on both sides of the two
    ids = nearest_code(x, codes)
    assert torch.equal(ids, exhaustive_nearest(x, codes))
    assert set(ids.tolist()) == {1, 2}


def test_half_precision_queries_and_codebook():
    g = torch.Generator().manual_seed(2)
    x, codes = torch.randn(400, 32, generator=g).half(), torch.randn(100, 32, generator=g).bfloat16()
    assert torch.equal(nearest_code(x, codes), exhaustive_nearest(x.float(), codes.float()))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\[N,4\]"):
        CodeIndex(torch.randn(3, 4)).search(torch.randn(2, 5))
    with pytest.raises(ValueError, match="metric"):
        CodeIndex(torch.randn(3, 4), "cosine")
    with pytest.raises(ValueError, match="K >= 1"):
        CodeIndex(torch.randn(0, 4))


def test_cached_index_follows_in_place_updates():
    holder = torch.nn.Linear(1, 1)
    codes = torch.randn(10, 4)
    first = cached_index(holder, codes)
    assert cached_index(holder, codes) is first
    codes.mul_(2)  # an EMA step or load_state_dict writes in place
    second = cached_index(holder, codes)
    assert second is not first and torch.equal(second.codebook, codes)
    assert "_mmtok_code_index" not in holder.state_dict()


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("codebook_dim", [None, 8])
def test_vector_quantize_codes(cosine, codebook_dim):
    torch.manual_seed(0)
    vq = VectorQuantize(dim=16, codebook_size=256, codebook_dim=codebook_dim, use_cosine_sim=cosine,
                        kmeans_init=False).eval()
    x = torch.randn(4, 300, 16)
    with torch.no_grad():
        _, expected, _ = vq(x)
        projected = vq._codebook.transform_input(vq.project_in(x)).reshape(-1, vq.codebook.shape[-1])
    ids = vq_ids(vq, x)
    metric = "dot" if cosine else "euclidean"
    assert torch.equal(ids.reshape(-1), exhaustive_nearest(projected, vq.codebook, metric))
    # VectorQuantize's own float32 distance matrix agrees except on float32 near-ties
    assert (ids == expected).float().mean() >= 0.999


def test_quantizer_vq_eval_uses_the_search_and_leaves_state_alone():
    torch.manual_seed(0)
    q = VQQuantizer(8, QuantizerConfig(kind="vq", codebook_size=64, codebook_dim=4, kmeans_init=True)).eval()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(2, 8, 5, 7)
    zq, ids, aux = q(z)
    assert ids.shape == (2, 5, 7) and torch.equal(ids, q.encode(z)) and float(aux) == 0.0
    assert torch.allclose(zq, q.embed(ids))
    after = q.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "encoding must not run k-means init"
    projected = F.normalize(q.impl.project_in(z.permute(0, 2, 3, 1).reshape(-1, 8)), dim=-1)
    assert torch.equal(ids.reshape(-1), exhaustive_nearest(projected, q.impl.codebook, "dot"))


def test_residual_levels_are_exact_nearest_codes():
    torch.manual_seed(0)
    rq = ResidualQuantizer(dim=12, num_quantizers=3, codebook_size=128, kmeans_init=False).eval()
    z = torch.randn(2, 12, 40)
    ids = rq.encode(z)
    residual = z.transpose(1, 2).reshape(-1, 12)
    for level, layer in enumerate(rq.rvq.layers):
        assert torch.equal(ids[:, level].reshape(-1), exhaustive_nearest(residual, layer.codebook))
        residual = residual - layer.codebook[ids[:, level].reshape(-1)]
    assert torch.equal(rq.encode(z, levels=2), ids[:, :2])
    reference = ResidualVQ(dim=12, num_quantizers=3, codebook_size=128, kmeans_init=False).eval()
    reference.load_state_dict(rq.rvq.state_dict())
    with torch.no_grad():
        _, expected, _ = reference(z.transpose(1, 2))
    assert (ids == expected.transpose(1, 2)).float().mean() >= 0.999


def test_patch_kmeans_assigns_exact_nearest_centres():
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 32, 48), generator=g, dtype=torch.uint8) for _ in range(3)]
    km = PatchKMeans(codebook_size=16, patch=4).fit(images, iters=3)
    x = images[0][None].float() / 127.5 - 1
    codes = km.encode(x)
    patches = x.reshape(1, 3, 8, 4, 12, 4).permute(0, 2, 4, 1, 3, 5).reshape(-1, 48)
    assert torch.equal(codes.reshape(-1), exhaustive_nearest(patches, km.codebook))
