"""Start a causal video tokenizer from a trained image tokenizer (MAGVIT-v2's inflation).

Every 2-D conv of the image encoder / decoder becomes the matching causal 3-D conv with the
2-D kernel on the *last* temporal tap (the current frame) and zeros on the taps that look at
earlier frames; norms and the quantizer are copied. The inflated video model therefore starts
as the image tokenizer: with no temporal downsampling it codes every frame exactly as the
image tokenizer does (tested), and with temporal factor 4 each latent frame starts as the
image code of its group's last frame. Training then only has to learn what time adds,
instead of relearning images from noise on a few video clips.

MAGVIT-v2 compares "central" and zero ("last tap") inflation and keeps the latter for causal
models: a centred kernel would look at frames that a causal padding fills with copies of the
first frame, so it does not reproduce the image model even on a still video.

The two models must have the same stem, widths, blocks per level and latent size
(`VideoCausalVQConfig` fields matching `ImageVQConfig`); transitions may differ ("t" where the
image halves space starts from the image's strided kernel used at stride 1 in space).
"""

from __future__ import annotations

import torch
from torch import nn

from mmtok.errors import MmtokError
from mmtok.nn.conv3d import ChannelNorm3d


def _image_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.LayerNorm))]


def _video_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv3d, ChannelNorm3d))]


@torch.no_grad()
def _copy(src: nn.Module, dst: nn.Module, where: str) -> None:
    if isinstance(src, nn.LayerNorm) and isinstance(dst, ChannelNorm3d):
        if src.weight.shape != dst.weight.shape:
            raise MmtokError(f"cannot inflate {where}: norm over {src.weight.numel()} vs {dst.weight.numel()} channels")
        dst.weight.copy_(src.weight), dst.bias.copy_(src.bias)
        return
    if not (isinstance(src, nn.Conv2d) and isinstance(dst, nn.Conv3d)):
        raise MmtokError(f"cannot inflate {where}: {type(src).__name__} meets {type(dst).__name__}; the architectures differ")
    o, i, kh, kw = src.weight.shape
    if dst.weight.shape[:2] != (o, i) or dst.weight.shape[3:] != (kh, kw):
        raise MmtokError(f"cannot inflate {where}: kernel {tuple(src.weight.shape)} vs {tuple(dst.weight.shape)}")
    dst.weight.zero_()
    dst.weight[:, :, -1] = src.weight  # last temporal tap = the current frame (causal)
    if src.bias is not None:
        dst.bias.copy_(src.bias)


def inflate_image_to_video(image_tok: nn.Module, video_tok: nn.Module) -> None:
    """Overwrite `video_tok`'s (a `VideoCausalVQ`) weights with `image_tok`'s (an `ImageVQ`)
    inflated to causal 3-D. Raises `MmtokError` naming the first layer that does not match."""
    for part in ("encoder", "decoder"):
        src, dst = _image_layers(getattr(image_tok, part)), _video_layers(getattr(video_tok, part))
        if len(src) != len(dst):
            raise MmtokError(
                f"cannot inflate the {part}: the image tokenizer has {len(src)} conv / norm layers, the video one "
                f"{len(dst)}; use the same patch_size, channels, channel_mult and num_res_blocks"
            )
        for n, (s, d) in enumerate(zip(src, dst)):
            _copy(s, d, f"{part} layer {n}")
    try:
        video_tok.quantizer.load_state_dict(image_tok.quantizer.state_dict())
    except RuntimeError as err:
        raise MmtokError(f"cannot inflate the quantizer ({str(err).splitlines()[0]}); use the same quantizer and latent_dim") from None
