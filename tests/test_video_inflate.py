"""Inflating a trained image tokenizer into a causal video tokenizer (MAGVIT-v2 style)."""

from __future__ import annotations

import pytest
import torch

from mmtok.errors import MmtokError
from mmtok.image import ImageVQ, ImageVQConfig
from mmtok.quantize import QuantizerConfig
from mmtok.video import VideoCausalVQ, VideoCausalVQConfig
from mmtok.video.inflate import inflate_image_to_video

FSQ = QuantizerConfig(kind="fsq", fsq_levels=(5, 5, 5))
SHAPE = dict(patch_size=2, channels=8, channel_mult=(1, 2, 2), num_res_blocks=1, latent_dim=6, quantizer=FSQ)


def _image() -> ImageVQ:
    torch.manual_seed(0)
    tok = ImageVQ(ImageVQConfig(**SHAPE)).eval()
    with torch.no_grad():  # random norms too, so a swapped weight / bias would show
        for p in tok.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return tok


def _video(downsample, frame_levels=1, **changes) -> VideoCausalVQ:
    torch.manual_seed(1)
    return VideoCausalVQ(VideoCausalVQConfig(**{**SHAPE, **changes}, downsample=downsample, frame_levels=frame_levels)).eval()


def test_inflated_without_time_steps_codes_each_frame_like_the_image_tokenizer():
    image = _image()
    video = _video(("s", "s"))  # 3x3x3 kernels below the first level
    inflate_image_to_video(image, video)
    clip = torch.rand(2, 3, 5, 16, 24) * 2 - 1
    with torch.no_grad():
        frames = clip.transpose(1, 2).flatten(0, 1)
        expected = image.encode(frames).reshape(2, 5, 2, 3)
        assert torch.equal(video.encode(clip), expected)
        recon = video.decode(expected, size=(5, 16, 24))
        per_frame = image.decode(expected.flatten(0, 1), size=(16, 24)).reshape(2, 5, 3, 16, 24).transpose(1, 2)
        torch.testing.assert_close(recon, per_frame, atol=1e-5, rtol=1e-5)


def test_inflated_with_time_steps_starts_from_the_last_frame_of_each_group():
    image = _image()
    video = _video(("st", "t"))  # spatial factor 4 (image: 8), temporal 4
    inflate_image_to_video(image, video)
    clip = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    others = clip.clone()
    others[:, :, [1, 2, 3, 5, 6, 7]] = torch.rand(1, 3, 6, 16, 16) * 2 - 1
    group_end = clip.clone()
    group_end[:, :, 4] = -group_end[:, :, 4]
    with torch.no_grad():
        codes = video.encode(clip)
        assert codes.shape == (1, 3, 4, 4)
        # latent frame j starts as a function of frame 4j alone: the kernels sit on the last tap
        assert torch.equal(video.encode(others), codes)
        changed = video.encode(group_end)
    assert torch.equal(changed[:, [0, 2]], codes[:, [0, 2]]) and not torch.equal(changed[:, 1], codes[:, 1])


def test_mismatched_architectures_are_refused_with_the_layer_named():
    image = _image()
    with pytest.raises(MmtokError, match="conv / norm layers"):
        inflate_image_to_video(image, _video(("st", "t"), num_res_blocks=2))
    with pytest.raises(MmtokError, match="kernel"):
        inflate_image_to_video(image, _video(("st", "t"), channels=16))
