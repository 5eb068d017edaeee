"""Audio files <-> token files, streamed in chunks so file length does not matter.

    written = encode_audio_files(tok, ["speech/"], Path("tokens/"), kbps=3.0)
    decode_audio_files(tok, ["tokens/"], Path("recon/"))

Encoding reads blocks (resampled to the tokenizer's rate, mixed to its channels) into a
`StreamingEncoder`; decoding feeds a `StreamingDecoder` (audio at the tokenizer's
`output_sample_rate`) into an `AudioWriter` (inside `atomic_write`) that resamples to the
file's original sample rate, trimmed to its original length. Peak memory is a few chunks,
not the file. The token file's `original` records `sample_rate`, `channels`,
`num_samples` (at the original rate) and `codec_samples` (at the tokenizer's input rate).
Decoded files have the tokenizer's channel count (a mono codec gives mono files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.errors import MmtokError
from mmtok.files import Progress, Transaction, atomic_write, collect, output_paths, start_progress
from mmtok.media.audio import AUDIO_SUFFIXES, WRITE_SUFFIXES, AudioBlocks, AudioWriter, audio_info, check_write_suffix
from mmtok.tokens_file import SUFFIX, TokenFile

CHUNK_SECONDS = 10.0


def encode_audio(
    tok: AudioTokenizer, path: str | Path, levels: int | None = None, chunk_seconds: float = CHUNK_SECONDS,
    on_progress: Callable[[float], None] | None = None,
) -> TokenFile:
    """Encode one audio file to a `TokenFile` (codes `[levels,t]`); `on_progress(seconds)`
    is called after each block with the seconds of audio it held."""
    blocks = AudioBlocks(path, tok.sample_rate, tok.channels, block_seconds=chunk_seconds)
    codes = encode_blocks(tok, blocks, levels, chunk_seconds, on_progress)
    info = blocks.info
    original = {
        "sample_rate": info.sample_rate, "channels": info.channels, "num_samples": blocks.samples_in,
        "codec_samples": blocks.samples_out,
    }
    return TokenFile.from_codes(tok, codes, original, Path(path).name)


def encode_blocks(
    tok: AudioTokenizer, blocks: Iterable[torch.Tensor], levels: int | None = None, chunk_seconds: float = CHUNK_SECONDS,
    on_progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Codes `[levels,t]` of audio given as blocks `[C,n]` at the tokenizer's rate and
    channels, in the order read: the one streaming encoder every audio file goes through
    (the codes depend on the block boundaries only through the encoder's exact chunking)."""
    stream = tok.stream_encoder(levels, chunk_seconds)
    parts = []
    for block in blocks:
        parts.append(stream.push(block[None]))
        if on_progress:
            on_progress(block.shape[-1] / tok.sample_rate)
    return torch.cat([*parts, stream.flush()], dim=-1)[0]


def decode_audio(
    tok: AudioTokenizer, tf: TokenFile, out: Path, source: str = "codes", chunk_seconds: float = CHUNK_SECONDS,
    on_progress: Callable[[float], None] | None = None,
) -> Path:
    """Decode a `TokenFile` to `out` (wav/flac) at its original sample rate and length,
    atomically; `on_progress(seconds)` is called with the seconds of audio each piece adds."""
    out = Path(out)
    rate, length, codec_samples = _original(tf, source, tok)
    check_write_suffix(out)
    decoded_samples = tok.output_length(codec_samples)  # the encoded samples, at the decoder's rate

    def write(tmp: Path) -> None:
        decoder = tok.stream_decoder(chunk_seconds)
        emitted = 0
        with AudioWriter(tmp, tok.output_sample_rate, rate, tok.channels, num_samples=length) as writer:
            for piece in _decoded_pieces(decoder, tf.codes, decoder.chunk_frames):
                piece = piece[0, :, : max(decoded_samples - emitted, 0)]  # drop the padding of the last frame
                emitted += piece.shape[-1]
                writer.write(piece)
                if on_progress:
                    on_progress(piece.shape[-1] / tok.output_sample_rate)

    atomic_write(out, write)
    return out


def _decoded_pieces(decoder, codes: torch.Tensor, step: int):
    """Audio `[1,C,n]` pieces of codes `[K,t]`, `step` frames at a time, then the flushed rest."""
    for i in range(0, codes.shape[-1], step):
        yield decoder.push(codes[None, :, i : i + step])
    yield decoder.flush()


def _original(tf: TokenFile, source: str, tok: AudioTokenizer) -> tuple[int, int, int]:
    """(sample rate, length at that rate, length at the codec's rate), checked against the
    codes: a recorded length the codes cannot cover is refused before anything is written
    (a file claiming 1e12 samples would otherwise allocate TiB)."""
    o = tf.checked_original(source)
    rate, length, codec_samples = o["sample_rate"], o["num_samples"], o["codec_samples"]
    frames = tf.codes.shape[-1]
    expected = codec_samples * rate / tok.sample_rate
    if tf.codes.ndim != 2 or not (frames - 1) * tok.hop_length < codec_samples <= frames * tok.hop_length \
            or abs(length - expected) > 0.01 * expected + 2:
        raise MmtokError(
            f"{source}: recorded lengths ({length} samples at {rate} Hz, {codec_samples} at {tok.sample_rate} Hz) do not "
            f"match the codes' {frames} frames of {tok.hop_length} samples; re-encode the audio"
        )
    return rate, length, codec_samples


def encode_audio_files(
    tok: AudioTokenizer, inputs: Iterable[str | Path], out: Path, levels: int | None = None,
    progress: Progress | None = None, chunk_seconds: float = CHUNK_SECONDS,
) -> list[Path]:
    """Encode audio files/folders to `.mmtok` files under `out` (or to `out` for one file).

    Every header is checked before any output is written; if a file turns out corrupt
    mid-way, everything this call wrote is removed. `progress` (e.g. a tqdm bar) gets its
    `total` set to the seconds of audio and is `update`d as blocks are coded.
    """
    files, roots = collect(inputs, AUDIO_SUFFIXES, "audio")
    targets = output_paths(files, roots, out, SUFFIX, single_file_ok=out.suffix == SUFFIX)
    seconds = sum(audio_info(f).seconds for f in files)
    update = start_progress(progress, seconds)
    with Transaction() as tx:
        for f, target in zip(files, targets):
            tx.add(encode_audio(tok, f, levels, chunk_seconds, update).save(target))
    return targets


def decode_audio_files(
    tok: AudioTokenizer, inputs: Iterable[str | Path], out: Path, audio_suffix: str = ".wav",
    progress: Progress | None = None, chunk_seconds: float = CHUNK_SECONDS,
) -> list[Path]:
    """Decode `.mmtok` files/folders to audio under `out` (or to `out` for one file).

    Every token file is checked (tokenizer fingerprint, code range, levels) before any
    audio is written. `progress` as in `encode_audio_files`.
    """
    if out.suffix.lower() in AUDIO_SUFFIXES:
        check_write_suffix(out)  # OUT.mp3 is a wish for an mp3 file, not a folder name
    files, roots = collect(inputs, {SUFFIX}, "token")
    targets = output_paths(files, roots, out, audio_suffix, single_file_ok=out.suffix.lower() in WRITE_SUFFIXES)
    loaded = [TokenFile.load(f) for f in files]
    codec_samples = 0
    for tf, f in zip(loaded, files):
        tf.check_tokenizer(tok, f)
        codec_samples += _original(tf, str(f), tok)[2]
    update = start_progress(progress, codec_samples / tok.sample_rate)
    with Transaction() as tx:
        for tf, f, target in zip(loaded, files, targets):
            tx.add(decode_audio(tok, tf, target, str(f), chunk_seconds, update))
    return targets
