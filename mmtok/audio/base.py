"""What every audio tokenizer shares: bitrates, padding, and chunked / streaming coding.

Layout: audio `[B,C,T]` float in [-1,1] at `sample_rate`; codes `[B,K,t]` int64, `K`
residual levels (the first `k` alone are a valid lower-bitrate code), `t = ceil(T / hop)`.
Decoded audio is `[B,C,t*output_hop_length]` at `output_sample_rate`, which is `sample_rate`
unless the decoder writes another rate (NeuCodec reads 16 kHz and writes 24 kHz); whoever
writes or compares decoded audio uses the output rate and `output_length`.

Long audio and real-time use go through `StreamingEncoder` / `StreamingDecoder`: each step
codes a window made of the new material plus `history` of real left context (and, for
non-causal models, `lookahead` of right context) and keeps only the outputs whose context
was complete. For a causal model with finite history (our codec) that reproduces the
whole-signal result, so there is nothing at chunk seams to click or drift: no overlap-add,
no cross-fade. Memory is bounded by chunk + context, whatever the length of the input.
"""

from __future__ import annotations

import math

import torch

from mmtok.errors import MmtokError
from mmtok.layout import FrameMajorLayout
from mmtok.tokenizer import Tokenizer


class AudioTokenizer(Tokenizer):
    """Base of the audio kinds. Subclasses implement `_encode_frames` / `_decode_frames`
    and the facts below (properties or config fields)."""

    modality = "audio"

    # -- facts subclasses provide ------------------------------------------------------
    sample_rate: int
    channels: int
    hop_length: int            # samples per code frame
    num_quantizers: int        # K, the most levels the model has
    codebook_size: int         # entries per level
    # Which discriminators train this kind adversarially (names in train/audio_discriminators.py).
    discriminators: tuple[str, ...] = ("ms-stft",)

    @property
    def output_sample_rate(self) -> int:
        """Sample rate of decoded audio: `sample_rate` unless the decoder writes another."""
        return self.sample_rate

    @property
    def output_hop_length(self) -> int:
        """Decoded samples per code frame (at `output_sample_rate`)."""
        return self.hop_length * self.output_sample_rate // self.sample_rate

    def output_length(self, num_samples: int) -> int:
        """Decoded samples that span `num_samples` input samples (rounded up)."""
        return -(-num_samples * self.output_sample_rate // self.sample_rate)

    @property
    def encode_history(self) -> int:
        """Past samples (beyond the current frame) an encoded frame depends on."""
        raise NotImplementedError

    @property
    def encode_lookahead(self) -> int:
        """Future samples (beyond the current frame) an encoded frame depends on; 0 = causal."""
        return 0

    @property
    def decode_history(self) -> int:
        """Past frames an output sample depends on."""
        raise NotImplementedError

    @property
    def decode_lookahead(self) -> int:
        """Future frames an output sample depends on; 0 = causal."""
        return 0

    def _encode_frames(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        """`[B,C,T]`, T a multiple of `hop_length` -> codes `[B,levels,T/hop]`."""
        raise NotImplementedError

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,k,t]` -> audio `[B,C,t*output_hop_length]` (unclamped)."""
        raise NotImplementedError

    # -- bitrate -----------------------------------------------------------------------
    @property
    def codebook_sizes(self) -> list[int]:
        return [self.codebook_size] * self.num_quantizers

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_length

    def kbps(self, levels: int | None = None) -> float:
        """Bitrate of the first `levels` levels (all by default), in kbit/s."""
        levels = self.num_quantizers if levels is None else levels
        return self.frame_rate * levels * math.log2(self.codebook_size) / 1000

    def levels_for(self, kbps: float | None = None, num_quantizers: int | None = None) -> int:
        """Number of levels for a requested bitrate: `num_quantizers` directly, or the most
        levels whose bitrate does not exceed `kbps`; all levels when neither is given."""
        if num_quantizers is not None and kbps is not None:
            raise MmtokError("give --kbps or --num-quantizers, not both")
        if kbps is not None:
            levels = math.floor(kbps / self.kbps(1) + 1e-6)
            if levels < 1:
                raise MmtokError(f"{kbps} kbps is below this tokenizer's lowest bitrate {self.kbps(1):g} kbps (1 level)")
            return min(levels, self.num_quantizers)
        if num_quantizers is None:
            return self.num_quantizers
        if not 1 <= num_quantizers <= self.num_quantizers:
            raise MmtokError(f"--num-quantizers {num_quantizers} is outside 1..{self.num_quantizers} for this tokenizer")
        return num_quantizers

    def describe(self) -> dict:
        """Tokens first (per second of audio, for every level count), then bitrates and facts."""
        levels = self.bitrates()
        return {"tokens_per_second_by_levels": {k: self.tokens_per_second(k) for k in levels}, "kbps_by_levels": levels,
                **super().describe(), "sample_rate": self.sample_rate, "output_sample_rate": self.output_sample_rate,
                "channels": self.channels, "hop_length": self.hop_length, "frame_rate": self.frame_rate}

    def tokens_per_second(self, levels: int | None = None) -> float:
        """LLM tokens per second of audio with the first `levels` levels (all by default)."""
        return self.frame_rate * (self.num_quantizers if levels is None else levels)

    def bitrates(self) -> dict[int, float]:
        """Levels -> kbps, for every usable level count."""
        return {k: round(self.kbps(k), 3) for k in range(1, self.num_quantizers + 1)}

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    def token_layout(self, levels: int | None = None, *, media_type: str | None = None) -> FrameMajorLayout:
        """Frame-major interleave of the first `levels` levels (all by default), one id range per level."""
        self.media_type_of(media_type)
        levels = self.levels_for(num_quantizers=levels)
        return FrameMajorLayout(tuple(self.codebook_sizes[:levels]))

    # -- whole-signal coding -----------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """`[B,C,T]` float in [-1,1] -> codes `[B,k,ceil(T/hop)]` int64 (k = all levels by default).

        The end is padded with silence to a whole frame; `decode(codes, length=T)` crops it.
        """
        self._check_audio(x)
        levels = self.levels_for(num_quantizers=num_quantizers)
        pad = (-x.shape[-1]) % self.hop_length
        with self.eval_mode():
            return self._encode_frames(torch.nn.functional.pad(x.to(self.device), (0, pad)), levels)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """codes `[B,k,t]` (k <= K: the first k levels) -> audio `[B,C,t*output_hop_length]` in
        [-1,1] at `output_sample_rate`; with `length` (the encoded input's samples, at
        `sample_rate`), cropped to the `output_length(length)` samples that span it."""
        self._check_codes_layout(codes)
        with self.eval_mode():
            x = self._decode_frames(codes.to(self.device).long()).clamp(-1, 1)
        return x if length is None else x[..., : self.output_length(length)]

    def check_codes(self, codes: torch.Tensor, source: str = "codes") -> None:
        super().check_codes(codes, source)
        k = codes.shape[-2] if codes.ndim >= 2 else 0
        if codes.ndim not in (2, 3) or not 1 <= k <= self.num_quantizers:
            raise MmtokError(
                f"{source}: audio codes must be [K,t] or [B,K,t] with 1 <= K <= {self.num_quantizers}, "
                f"got shape {tuple(codes.shape)}; decode with the tokenizer that made them"
            )

    def _check_codes_layout(self, codes: torch.Tensor) -> None:
        if codes.ndim != 3:
            raise ValueError(f"expected codes [B,K,t], got shape {tuple(codes.shape)}")
        self.check_codes(codes)

    def _check_audio(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.channels:
            raise ValueError(f"expected audio [B,{self.channels},T], got shape {tuple(x.shape)}")

    # -- long and streaming coding ------------------------------------------------------
    def stream_encoder(self, num_quantizers: int | None = None, chunk_seconds: float = 10.0) -> StreamingEncoder:
        return StreamingEncoder(self, self.levels_for(num_quantizers=num_quantizers), chunk_seconds)

    def stream_decoder(self, chunk_seconds: float = 10.0) -> StreamingDecoder:
        return StreamingDecoder(self, chunk_seconds)

    @torch.no_grad()
    def encode_chunked(self, x: torch.Tensor, num_quantizers: int | None = None, chunk_seconds: float = 10.0) -> torch.Tensor:
        """`encode` in chunks of `chunk_seconds`: the same codes, memory bounded by the chunk."""
        self._check_audio(x)
        enc = self.stream_encoder(num_quantizers, chunk_seconds)
        step = enc.chunk_samples
        parts = [enc.push(x[..., i : i + step]) for i in range(0, x.shape[-1], step)]
        return torch.cat([*parts, enc.flush()], dim=-1)

    @torch.no_grad()
    def decode_chunked(self, codes: torch.Tensor, length: int | None = None, chunk_seconds: float = 10.0) -> torch.Tensor:
        """`decode` in chunks of `chunk_seconds` of audio: the same samples, bounded memory."""
        self._check_codes_layout(codes)
        dec = self.stream_decoder(chunk_seconds)
        step = dec.chunk_frames
        parts = [dec.push(codes[..., i : i + step]) for i in range(0, codes.shape[-1], step)]
        x = torch.cat([*parts, dec.flush()], dim=-1)
        return x if length is None else x[..., : self.output_length(length)]


class StreamingEncoder:
    """Feed audio `[B,C,n]` in pieces of any size, get codes `[B,k,m]` as soon as they are final.

        enc = tok.stream_encoder(num_quantizers=4)
        for piece in pieces:
            codes = enc.push(piece)     # [B,k,m], m may be 0
        codes = enc.flush()             # the rest (last frame padded with silence)

    The concatenated codes equal `tok.encode(whole)` for a causal tokenizer with finite
    history. A frame is emitted once `lookahead` samples after it have arrived (0 for ours),
    so latency is one hop plus the lookahead; each step recomputes `history` samples of
    context, which is the price of exactness without per-layer state.
    """

    def __init__(self, tok: AudioTokenizer, levels: int, chunk_seconds: float = 10.0):
        hop = tok.hop_length
        self.tok, self.levels, self.hop = tok, levels, hop
        self.chunk_samples = max(1, round(chunk_seconds * tok.sample_rate / hop)) * hop
        self.history = math.ceil(tok.encode_history / hop) * hop       # whole frames of context
        self.lookahead = math.ceil(tok.encode_lookahead / hop) * hop
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0      # sample index of buffer[..., 0]
        self.next_frame = 0        # first frame not yet emitted
        self.signal_end: int | None = None  # set by flush: padded length of the whole signal

    @torch.no_grad()
    def push(self, piece: torch.Tensor, final: bool = False) -> torch.Tensor:
        piece = piece.to(self.tok.device, torch.float32)
        self.buffer = piece if self.buffer is None else torch.cat([self.buffer, piece], dim=-1)
        end = self.buffer_start + self.buffer.shape[-1]
        if final:  # pad the last frame with silence, as whole-signal encoding does
            ready = math.ceil(end / self.hop)
            self.buffer = torch.nn.functional.pad(self.buffer, (0, ready * self.hop - end))
            self.signal_end = ready * self.hop
        else:
            ready = max((end - self.lookahead) // self.hop, self.next_frame)
        out = []
        while self.next_frame < ready:
            stop = min(ready, self.next_frame + self.chunk_samples // self.hop)
            out.append(self._code(stop))
        self._trim()
        if not out:
            return torch.zeros(self.buffer.shape[0], self.levels, 0, dtype=torch.long, device=self.buffer.device)
        return torch.cat(out, dim=-1)

    def flush(self) -> torch.Tensor:
        if self.buffer is None:
            raise MmtokError("no audio was pushed to the stream encoder")
        return self.push(self.buffer[..., :0], final=True)

    def _code(self, stop: int) -> torch.Tensor:
        """Encode frames `next_frame..stop-1` from a window with full context."""
        start = max(0, self.next_frame * self.hop - self.history)
        # The last windows end where the signal does: a non-causal model then pads its own
        # inputs at the edge exactly as in whole-signal coding (extra silence would not).
        window_end = min(stop * self.hop + self.lookahead, self.signal_end or math.inf)
        window = self.buffer[..., start - self.buffer_start : window_end - self.buffer_start]
        with self.tok.eval_mode():
            codes = self.tok._encode_frames(window, self.levels)
        first, count = self.next_frame - start // self.hop, stop - self.next_frame
        self.next_frame = stop
        return codes[..., first : first + count]

    def _trim(self) -> None:
        keep_from = max(0, self.next_frame * self.hop - self.history)
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[..., keep_from - self.buffer_start :]
            self.buffer_start = keep_from


class StreamingDecoder:
    """Feed codes `[B,k,m]` in pieces, get audio `[B,C,n]` as soon as it is final.

    The concatenated audio equals `tok.decode(all codes)` for a causal tokenizer (before
    cropping to the original length, which the caller does).
    """

    def __init__(self, tok: AudioTokenizer, chunk_seconds: float = 10.0):
        self.tok, self.hop = tok, tok.output_hop_length  # decoded samples per frame
        self.chunk_frames = max(1, round(chunk_seconds * tok.frame_rate))
        self.history, self.lookahead = tok.decode_history, tok.decode_lookahead
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0      # frame index of buffer[..., 0]
        self.next_frame = 0        # first frame whose samples are not yet emitted

    @torch.no_grad()
    def push(self, codes: torch.Tensor, final: bool = False) -> torch.Tensor:
        codes = codes.to(self.tok.device).long()
        self.buffer = codes if self.buffer is None else torch.cat([self.buffer, codes], dim=-1)
        end = self.buffer_start + self.buffer.shape[-1]
        ready = end if final else max(end - self.lookahead, self.next_frame)
        out = []
        while self.next_frame < ready:
            stop = min(ready, self.next_frame + self.chunk_frames)
            start = max(0, self.next_frame - self.history)
            window = self.buffer[..., start - self.buffer_start : min(end, stop + self.lookahead) - self.buffer_start]
            with self.tok.eval_mode():
                audio = self.tok._decode_frames(window).clamp(-1, 1)
            out.append(audio[..., (self.next_frame - start) * self.hop : (stop - start) * self.hop])
            self.next_frame = stop
        keep_from = max(0, self.next_frame - self.history)
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[..., keep_from - self.buffer_start :]
            self.buffer_start = keep_from
        if not out:
            return torch.zeros(codes.shape[0], self.tok.channels, 0, device=codes.device)
        return torch.cat(out, dim=-1)

    def flush(self) -> torch.Tensor:
        if self.buffer is None:
            raise MmtokError("no codes were pushed to the stream decoder")
        return self.push(self.buffer[..., :0], final=True)
