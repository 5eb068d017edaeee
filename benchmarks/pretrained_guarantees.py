"""What the pretrained audio adapters guarantee, measured: codes equal to transformers', chunked
(bounded-memory) coding vs whole-file coding, batch invariance, half precision.

For each family (EnCodec, DAC, Mimi, WavTokenizer, X-Codec, X-Codec 2, NeuCodec) a tiny random-init model
(tests/tiny_audio_codecs.py, the test suite's) is loaded through `mmtok.load` from a folder
written by transformers' `save_pretrained`, and run on the committed speech / music samples
(tests/media/audio, resampled to the model's rate). Columns, all in % of codes (or max |diff|):

- `= hf`: codes of `tok.encode` equal to the transformers model's own `encode` (explicit levels).
- `chunked enc`: `encode_chunked(x, chunk_seconds=--chunk)` vs `encode(x)`, with each family's
  default context; `enc 10 s`: the same with 10 s chunks, what `mmtok encode` and `pretokenize`
  use (`mmtok.audio.files.CHUNK_SECONDS`); `chunked dec`: max |decode_chunked - decode| of the
  same codes (audio in [-1,1]); `long enc` / `long dec`: the same at 10 s chunks on a long
  input (both samples, three times: 44 s), longer than the 20 s context of the families whose
  codes depend on the whole signal (WavTokenizer, X-Codec, X-Codec 2, NeuCodec).
- `batch`: both files in one zero-padded batch vs one at a time, over each file's own frames.
- `fp16` / `bf16`: codes with the model cast to that dtype vs float32 (CPU; "error" when the
  CPU kernels refuse the dtype).

    python benchmarks/pretrained_guarantees.py            # prints a markdown table
    python benchmarks/pretrained_guarantees.py --chunk 2 --families xcodec,dac

The weights are random: the figures show what the code paths do (exactness, agreement), not
what a trained checkpoint's codes would do, where near-ties are rarer or commoner.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # mmtok from this checkout; the tiny builders

import mmtok  # noqa: E402
from mmtok.audio.files import CHUNK_SECONDS  # noqa: E402
from mmtok.media.audio import read_audio  # noqa: E402
from mmtok.pretrained.kaldi_fbank import semantic_features  # noqa: E402
from tiny_audio_codecs import BUILDERS  # noqa: E402

SAMPLES = sorted((ROOT / "tests" / "media" / "audio").glob("*.flac"))


def percent_equal(a: torch.Tensor, b: torch.Tensor) -> float:
    return 100.0 * (a == b).float().mean().item()


def transformers_encode(name: str, model, x: torch.Tensor, tok) -> torch.Tensor:
    """The model's own encode with the adapter's (all) levels; x padded to whole frames."""
    levels = tok.num_quantizers
    if name == "encodec":
        return model.encode(x, bandwidth=tok.bitrates()[levels]).audio_codes[0]
    if name == "dac":
        return model.encode(x, n_quantizers=levels).audio_codes
    if name == "mimi":
        return model.encode(x, num_quantizers=levels).audio_codes
    if name == "xcodec":
        return model.encode(x, bandwidth=tok.bitrates()[levels]).audio_codes
    if name == "xcodec2":  # with the adapter's Kaldi fbank (torchaudio's cannot be installed here)
        return model.encode(x, semantic_features(x, pad=tok.hop_length // 2)).audio_codes
    if name == "neucodec":  # as NeuCodecFeatureExtractor pads x of whole frames: one frame of silence more
        x = torch.nn.functional.pad(x, (0, tok.hop_length))
        return model.encode(x, semantic_features(x, pad=0)).audio_codes
    return model.encode(x).audio_codes  # wavtokenizer


def whole_frames(x: torch.Tensor, hop: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, (-x.shape[-1]) % hop))


@torch.no_grad()
def measure(name: str, folder: Path, model, chunk: float) -> dict:
    tok = mmtok.load(folder)
    clips = [read_audio(path, tok.sample_rate, tok.channels)[None] for path in SAMPLES]  # [1,C,T] each
    rate = tok.sample_rate if tok.output_sample_rate == tok.sample_rate else f"{tok.sample_rate} -> {tok.output_sample_rate}"
    row: dict = {"family": tok.kind, "tokens/s": tok.tokens_per_second(), "rate": rate}
    start = time.perf_counter()
    alone = [tok.encode(x) for x in clips]
    row["= hf"] = min(percent_equal(c, transformers_encode(name, model, whole_frames(x, tok.hop_length), tok)) for c, x in zip(alone, clips))
    row["chunked enc"] = min(percent_equal(tok.encode_chunked(x, chunk_seconds=chunk), c) for c, x in zip(alone, clips))
    row["enc 10 s"] = min(percent_equal(tok.encode_chunked(x, chunk_seconds=CHUNK_SECONDS), c) for c, x in zip(alone, clips))
    row["chunked dec"] = max((tok.decode_chunked(c, chunk_seconds=chunk) - tok.decode(c)).abs().max().item() for c in alone)
    long = torch.cat(clips * 3, dim=-1)
    whole = tok.encode(long)
    row["long enc"] = percent_equal(tok.encode_chunked(long, chunk_seconds=CHUNK_SECONDS), whole)
    row["long dec"] = (tok.decode_chunked(whole, chunk_seconds=CHUNK_SECONDS) - tok.decode(whole)).abs().max().item()
    longest = max(x.shape[-1] for x in clips)
    batch = tok.encode(torch.cat([torch.nn.functional.pad(x, (0, longest - x.shape[-1])) for x in clips]))
    same = [(batch[i, :, : c.shape[-1]] == c[0]).float() for i, c in enumerate(alone)]
    row["batch"] = 100.0 * torch.cat([s.flatten() for s in same]).mean().item()
    for dtype, label in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        tok.model.to(dtype)
        try:
            row[label] = min(percent_equal(tok.encode(x), c) for c, x in zip(alone, clips))
        except Exception as err:  # CPU kernels that do not exist for the dtype
            row[label] = f"error ({type(err).__name__})"
        finally:
            tok.model.to(torch.float32)
    row["seconds"] = time.perf_counter() - start
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk", type=float, default=1.0, help="chunk length of the chunked coding, seconds")
    parser.add_argument("--families", default=",".join(BUILDERS), help="comma-separated: " + ",".join(BUILDERS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    seconds = [f"{p.name} {read_audio(p, 24000, 1).shape[-1] / 24000:.2f} s" for p in SAMPLES]
    print(f"samples: {', '.join(seconds)}; chunks of {args.chunk:g} s; torch {torch.__version__}, CPU, {args.threads} thread(s)\n")
    columns = ["family", "rate", "tokens/s", "= hf", "chunked enc", "enc 10 s", "chunked dec", "long enc", "long dec", "batch", "fp16", "bf16", "seconds"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families.split(","):
            model = BUILDERS[name]()
            model.save_pretrained(Path(tmp) / name)
            row = measure(name, Path(tmp) / name, model, args.chunk)
            cells = []
            for column in columns:
                value = row[column]
                if column in ("chunked dec", "long dec"):
                    cells.append(f"{value:.1e}")
                elif isinstance(value, float) and column not in ("tokens/s", "seconds"):
                    cells.append(f"{value:.2f}%")
                elif isinstance(value, float):
                    cells.append(f"{value:g}" if column == "tokens/s" else f"{value:.1f}")
                else:
                    cells.append(str(value))
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
