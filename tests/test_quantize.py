"""The quantizer table: every kind the config accepts has its class, and each class codes."""

import pytest
import torch

from mmtok.quantize import QUANTIZERS, QuantizerConfig, build_quantizer
from mmtok.quantize.base import QUANTIZER_KINDS

CONFIGS = {"fsq": QuantizerConfig("fsq", fsq_levels=(5, 4, 3)), "vq": QuantizerConfig("vq", codebook_size=32, kmeans_init=False),
           "lfq": QuantizerConfig("lfq", codebook_size=16)}


def test_every_configurable_kind_has_a_class():
    assert sorted(QUANTIZERS) == sorted(QUANTIZER_KINDS) == sorted(CONFIGS)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_codes_embed_back_to_what_forward_quantizes(kind):
    torch.manual_seed(0)
    q = build_quantizer(4, CONFIGS[kind]).eval()
    assert type(q) is QUANTIZERS[kind]
    z = torch.randn(2, 4, 3, 5)
    zq, ids, aux = q(z)
    assert ids.shape == (2, 3, 5) and ids.dtype == torch.int64 and aux.shape == ()
    assert 0 <= ids.min() and ids.max() < q.codebook_size
    assert torch.equal(q.encode(z), ids)
    assert torch.allclose(q.embed(ids), zq, atol=1e-5)
    assert q.code_vectors().shape[0] == q.codebook_size
