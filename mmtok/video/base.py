"""What every video tokenizer shares: the frame <-> latent-frame mapping, padding, and
windowed coding of long videos.

Layout: video `[B,3,T,H,W]` float in [-1,1]; codes `[B,t,h,w]` int64 with
`h = ceil(H / f)`, `w = ceil(W / f)` (f = `spatial_downsample`) and, for a temporal factor
`ft` (`temporal_downsample`):

- causal tokenizers (`first_frame_alone = True`, ours): `t = 1 + ceil((T - 1) / ft)`;
  latent frame 0 holds frame 0 alone (so an image is a 1-frame video), latent frame j >= 1
  holds frames `ft*j - ft + 1 .. ft*j`;
- group tokenizers (`first_frame_alone = False`, e.g. Emu3): `t = ceil(T / ft)`; latent
  frame j holds frames `ft*j .. ft*j + ft - 1`.

Inputs are padded to whole latent frames by repeating the last frame, and in space by
reflection (see `ImageTokenizer.pad`); `decode(codes, size=(T,H,W))` crops back.

Long videos go through `encode_windowed` / `decode_windowed` (and the streaming classes the
file path uses): windows of whole latent frames are coded one after another while the causal
layers carry their last frames from window to window (`mmtok.nn.conv3d.carrying`). For our
causal tokenizer this computes exactly what coding the whole video at once computes — codes
bit-exact, frames equal up to float rounding — so there is no seam at window borders by
construction, nothing is recomputed, and memory is bounded by the window. A tokenizer
without carried state (a non-causal pretrained one) codes the windows independently.
"""

from __future__ import annotations

import math

import torch

from mmtok.errors import MmtokError
from mmtok.layout import RasterLayout, VideoLayout
from mmtok.nn.conv3d import carrying
from mmtok.padding import pad_to_multiple
from mmtok.tokenizer import Tokenizer
from mmtok.video.as_images import FramesAsImages

COMMON_FPS = (12, 24)  # frame rates `mmtok info` states tokens per second for


class VideoTokenizer(Tokenizer):
    """Base of the video kinds. Subclasses implement `_encode_padded` / `_decode_latents`
    and provide the facts below (properties or config fields)."""

    modality = "video"
    first_frame_alone: bool = True

    @property
    def temporal_downsample(self) -> int:
        raise NotImplementedError

    @property
    def spatial_downsample(self) -> int:
        raise NotImplementedError

    @property
    def codebook_size(self) -> int:
        raise NotImplementedError

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.codebook_size]

    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,T,H,W]`, T a whole number of latent frames, H/W multiples of f -> `[B,t,h,w]`."""
        raise NotImplementedError

    def _decode_latents(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,t,h,w]` -> `[B,3,frames_for(t),h*f,w*f]` (unclamped)."""
        raise NotImplementedError

    # -- geometry ------------------------------------------------------------------------
    @property
    def _lead(self) -> int:
        return int(self.first_frame_alone)

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames `t` for a `num_frames`-frame video."""
        if num_frames < 1:
            raise ValueError("a video has at least one frame")
        ft, lead = self.temporal_downsample, self._lead
        return lead + math.ceil((num_frames - lead) / ft)

    def frames_for(self, latent_frames: int) -> int:
        """Frames decoded from `latent_frames` latent frames (the padded length)."""
        return self.temporal_downsample * (latent_frames - self._lead) + self._lead

    def first_frame_of(self, latent: int) -> int:
        """Index of the first frame latent frame `latent` holds."""
        return max(0, self.temporal_downsample * latent - (self.temporal_downsample - 1) * self._lead)

    def tokens_per_second(self, fps: float, height: int, width: int) -> float:
        """LLM tokens per second of a long `height x width` video at `fps` (the lone first
        frame's extra latent frame left out)."""
        _, h, w = self.grid_shape(1, height, width)
        return fps / self.temporal_downsample * h * w

    def describe(self) -> dict:
        """Tokens first (per second at common sizes and frame rates, per still image), then facts."""
        rates = {f"{n}x{n} at {fps} fps": self.tokens_per_second(fps, n, n) for n in (256, 512) for fps in COMMON_FPS}
        return {"tokens_per_second": rates, "tokens_per_image_256x256": math.prod(self.grid_shape(1, 256, 256)),
                **super().describe(), "spatial_downsample": self.spatial_downsample,
                "temporal_downsample": self.temporal_downsample, "first_frame_alone": self.first_frame_alone}

    def grid_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Code grid `(t, h, w)` that `encode` returns for a `T x H x W` video."""
        f = self.spatial_downsample
        return self.latent_frames(num_frames), math.ceil(height / f), math.ceil(width / f)

    def bits_per_pixel(self, num_frames: int, height: int, width: int) -> float:
        """Bits the codes spend per pixel of the original video (log2 of the codebook per code)."""
        t, h, w = self.grid_shape(num_frames, height, width)
        return t * h * w * math.log2(self.codebook_size) / (num_frames * height * width)

    def token_layout(
        self, row_separator: bool = False, frame_separator: bool = False, *, media_type: str | None = None,
    ) -> VideoLayout | RasterLayout:
        """Frame by frame, raster order, optional row / frame separator ids (see `VideoLayout`).

        `media_type="image"` (tokenizers that code images as one-frame videos, e.g. Emu3): the
        `RasterLayout` of one frame, no frame separator. It uses the video layout's ids (the
        same codes, the same row separator id), so one block of LLM ids serves both."""
        if self.media_type_of(media_type) == "image":
            return RasterLayout(self.codebook_size, row_separator)
        return VideoLayout(self.codebook_size, row_separator, frame_separator)

    def for_media(self, media_type: str | None = None):
        """Itself for video; for images (when `media_types` has "image") a view that codes them
        as one-frame videos (`FramesAsImages`)."""
        if self.media_type_of(media_type) == "image":
            return FramesAsImages(self)
        return self

    # -- whole-video coding --------------------------------------------------------------
    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad `[B,3,T,H,W]` to whole latent frames (last frame repeated) and to multiples of f
        in space (see `pad_space`)."""
        pt = self.frames_for(self.latent_frames(x.shape[2])) - x.shape[2]
        if pt:
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, pt, -1, -1)], dim=2)
        return self.pad_space(x)

    def pad_space(self, x: torch.Tensor) -> torch.Tensor:
        """Pad H and W on the bottom/right to multiples of f (see `pad_to_multiple`)."""
        return pad_to_multiple(x, self.spatial_downsample)

    def complete_latents(self, num_frames: int) -> int:
        """Latent frames whose input frames are all among the first `num_frames` frames."""
        lead = self._lead
        return max(0, (num_frames - lead) // self.temporal_downsample + lead) if num_frames else 0

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,T,H,W]` float in [-1,1] -> codes `[B,t,ceil(H/f),ceil(W/f)]` int64."""
        self._check_video(x)
        with self.eval_mode():
            return self._encode_padded(self.pad(x.to(self.device, torch.float32)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int, int] | None = None) -> torch.Tensor:
        """codes `[B,t,h,w]` -> video `[B,3,frames_for(t),h*f,w*f]` in [-1,1], cropped to
        `size=(T,H,W)` if given."""
        self._check_codes_layout(codes)
        with self.eval_mode():
            x = self._decode_latents(codes.to(self.device).long()).clamp(-1, 1)
        return x if size is None else x[:, :, : size[0], : size[1], : size[2]]

    def _check_video(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != 3 or x.shape[2] < 1:
            raise ValueError(f"expected video [B,3,T,H,W], got shape {tuple(x.shape)}")

    def _check_codes_layout(self, codes: torch.Tensor) -> None:
        if codes.ndim != 4:
            raise ValueError(f"expected codes [B,t,h,w], got shape {tuple(codes.shape)}")
        self.check_codes(codes)

    def check_codes(self, codes: torch.Tensor, source: str = "codes") -> None:
        super().check_codes(codes, source)
        if codes.ndim not in (3, 4) or codes.shape[-3] < 1:
            raise MmtokError(
                f"{source}: video codes must be [t,h,w] or [B,t,h,w], got shape {tuple(codes.shape)}; "
                "decode with the tokenizer that made them"
            )

    # -- windowed coding -----------------------------------------------------------------
    def stream_encoder(self, window: int = 4) -> StreamingVideoEncoder:
        return StreamingVideoEncoder(self, window)

    def stream_decoder(self, window: int = 4) -> StreamingVideoDecoder:
        return StreamingVideoDecoder(self, window)

    @torch.no_grad()
    def encode_windowed(self, x: torch.Tensor, window: int = 4) -> torch.Tensor:
        """`encode` in windows of `window` latent frames: the same codes, bounded memory."""
        self._check_video(x)
        enc = self.stream_encoder(window)
        step = self.frames_for(window + 1) - 1
        parts = [enc.push(x[:, :, i : i + step]) for i in range(0, x.shape[2], step)]
        return torch.cat([*parts, enc.flush()], dim=1)

    @torch.no_grad()
    def decode_windowed(self, codes: torch.Tensor, size: tuple[int, int, int] | None = None, window: int = 4) -> torch.Tensor:
        """`decode` in windows of `window` latent frames: the same frames, bounded memory."""
        self._check_codes_layout(codes)
        x = self.stream_decoder(window).push(codes)
        return x if size is None else x[:, :, : size[0], : size[1], : size[2]]


class StreamingVideoEncoder:
    """Feed frames `[B,3,n,H,W]` in pieces of any length, get codes `[B,m,h,w]` once final.

        enc = tok.stream_encoder(window=8)
        for block in blocks:
            codes = enc.push(block)      # [B,m,h,w], m may be 0
        codes = enc.flush()              # the rest (last latent frame padded by repetition)

    Latent frames are coded `window` at a time, as soon as all their frames have arrived,
    with the layers' carried state; the concatenated codes equal `tok.encode(whole)`. Only
    frames of latent frames not yet coded are buffered. Frames must all have the same size.
    """

    def __init__(self, tok: VideoTokenizer, window: int = 4):
        self.tok, self.window = tok, max(1, window)
        self.state: dict = {}
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0      # frame index of buffer[:, :, 0]
        self.next_latent = 0       # first latent frame not yet emitted

    @torch.no_grad()
    def push(self, frames: torch.Tensor, final: bool = False) -> torch.Tensor:
        tok = self.tok
        frames = tok.pad_space(frames.to(tok.device, torch.float32))
        self.buffer = frames if self.buffer is None else torch.cat([self.buffer, frames], dim=2)
        end = self.buffer_start + self.buffer.shape[2]  # frames received so far
        if final:  # pad the last latent frame by repeating the last frame, as `encode` does
            ready = tok.latent_frames(end)
            extra = tok.frames_for(ready) - end
            if extra:
                self.buffer = torch.cat([self.buffer, self.buffer[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)
        else:
            ready = tok.complete_latents(end)
        out = []
        while self.next_latent < ready:
            stop = min(ready, self.next_latent + self.window)
            start = tok.first_frame_of(self.next_latent) - self.buffer_start
            window = self.buffer[:, :, start : tok.frames_for(stop) - self.buffer_start]
            with tok.eval_mode(), carrying(self.state):
                out.append(tok._encode_padded(window))
            self.next_latent = stop
        keep_from = tok.first_frame_of(self.next_latent)
        self.buffer = self.buffer[:, :, keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        if not out:
            b, _, _, h, w = self.buffer.shape
            f = tok.spatial_downsample
            return torch.zeros(b, 0, h // f, w // f, dtype=torch.long, device=self.buffer.device)
        return torch.cat(out, dim=1)

    def flush(self) -> torch.Tensor:
        if self.buffer is None:
            raise MmtokError("no frames were pushed to the stream encoder")
        return self.push(self.buffer[:, :, :0], final=True)


class StreamingVideoDecoder:
    """Feed codes `[B,m,h,w]` in pieces, get frames `[B,3,n,H,W]` at once (decoding is
    causal: every latent frame's frames are final when it arrives). Codes are decoded
    `window` latent frames at a time with carried state; the concatenated frames equal
    `tok.decode(all codes)` (before cropping to the original size, which the caller does).
    """

    def __init__(self, tok: VideoTokenizer, window: int = 4):
        self.tok, self.window = tok, max(1, window)
        self.state: dict = {}

    @torch.no_grad()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        tok = self.tok
        codes = codes.to(tok.device).long()
        b, t, h, w = codes.shape
        out = [torch.zeros(b, 3, 0, h * tok.spatial_downsample, w * tok.spatial_downsample, device=codes.device)]
        for i in range(0, t, self.window):
            with tok.eval_mode(), carrying(self.state):
                out.append(tok._decode_latents(codes[:, i : i + self.window]).clamp(-1, 1))
        return torch.cat(out, dim=2)
