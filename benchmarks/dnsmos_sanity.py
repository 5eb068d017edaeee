"""Does DNSMOS (`mmtok.eval.dnsmos`, the P.835 ONNX model from `speechmos`) behave? Scores
clean speech and degraded versions of it; within each kind of damage the scores must fall
as the damage grows.

Degradations of each clip (all at 24 kHz, then scored at 16 kHz like any eval output):
white noise at 20 / 10 / 0 dB SNR (clip power, silences included), low-pass at 4 / 2 / 1
kHz (soxr down to twice the cut-off and back), uniform quantisation to 8 / 6 / 4 bits, and
our codecs: mmtok-audio-24k at 6 / 3 / 1.5 / 0.75 kbps, mmtok-audio-vocos-fsq (1.2 kbps).
Prints medians over the clips of SIG / BAK / OVRL, and for every ladder whether OVRL (and
each of the three) falls monotonically.

    python benchmarks/dnsmos_sanity.py --data tests/media/audio/espeak-en-gb-x-rp_en_001.flac
    python benchmarks/dnsmos_sanity.py --data ../shared/corpus/audio/voice --limit 24
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soxr
import torch

import mmtok
from mmtok.eval.dnsmos import EVAL_HOP_SECONDS, HOP_SECONDS, KEYS, dnsmos, dnsmos_available
from mmtok.eval.selection import spread
from mmtok.files import expand_inputs
from mmtok.media.audio import AUDIO_SUFFIXES, read_audio

RATE = 24000
LADDERS = {   # name -> ordered steps, mildest first; "clean" heads every ladder
    "white noise": ["noise 20 dB", "noise 10 dB", "noise 0 dB"],
    "low-pass": ["low-pass 4 kHz", "low-pass 2 kHz", "low-pass 1 kHz"],
    "quantisation": ["8 bits", "6 bits", "4 bits"],
    "mmtok-audio-24k": ["24k 6 kbps", "24k 3 kbps", "24k 1.5 kbps", "24k 0.75 kbps"],
}
SHORT = {"sig": "SIG", "bak": "BAK", "ovrl": "OVRL"}


def degrade(x: torch.Tensor, step: str, codecs: dict, generator: torch.Generator) -> torch.Tensor:
    """`x [1,T]` at 24 kHz with the damage `step` names; `codecs`: name -> (tokenizer, codes of `x`
    with all the levels used; a lower bitrate decodes the first levels)."""
    if step.startswith("noise"):
        snr = float(step.split()[1])
        noise = torch.randn(x.shape, generator=generator)
        return x + noise * (x.pow(2).mean() / 10 ** (snr / 10)).sqrt()
    if step.startswith("low-pass"):
        cut = int(float(step.split()[1]) * 1000)
        low = soxr.resample(x[0].double().numpy(), RATE, 2 * cut, quality="VHQ")
        return torch.from_numpy(soxr.resample(low, 2 * cut, RATE, quality="VHQ")[: x.shape[-1]].copy()).float()[None]
    if step.endswith("bits"):
        steps = 2 ** (int(step.split()[0]) - 1)
        return (x * steps).round().clamp(-steps, steps - 1) / steps
    name, rate = (step.split()[0], float(step.split()[1])) if step.startswith("24k") else (step, None)
    tok, codes = codecs[name]
    levels = tok.levels_for(kbps=rate) if rate else codes.shape[1]
    return tok.decode_chunked(codes[:, :levels], length=x.shape[-1])[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", type=Path, required=True, help="speech files or folders")
    p.add_argument("--limit", type=int, default=None, help="at most N files, spread over the sorted list")
    p.add_argument("--tokenizers", type=Path, default=Path("tokenizers_trained"), help="folder holding the shipped audio tokenizers")
    p.add_argument("--max-hop", type=float, default=EVAL_HOP_SECONDS,
                   help=f"seconds between DNSMOS windows (default: as mmtok eval, {EVAL_HOP_SECONDS}; speechmos: {HOP_SECONDS})")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not dnsmos_available():
        sys.exit("dnsmos_sanity: install speechmos and onnxruntime (pip install mmtok[eval])")
    files = spread(sorted(expand_inputs(args.data, AUDIO_SUFFIXES, "audio")), args.limit)
    tokenizers = {"24k": mmtok.load(args.tokenizers / "mmtok-audio-24k"), "vocos-fsq": mmtok.load(args.tokenizers / "mmtok-audio-vocos-fsq")}
    most = {"24k": tokenizers["24k"].levels_for(kbps=6.0), "vocos-fsq": None}
    steps = ["clean"] + [s for ladder in LADDERS.values() for s in ladder] + ["vocos-fsq"]
    scores: dict[str, list[dict[str, float]]] = {s: [] for s in steps}
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    seconds = 0.0
    with torch.inference_mode():
        for path in files:
            x = read_audio(path, RATE, 1)
            seconds += x.shape[-1] / RATE
            codecs = {n: (t, t.encode_chunked(x[None], num_quantizers=most[n])) for n, t in tokenizers.items()}
            for step in steps:
                y = x if step == "clean" else degrade(x, step, codecs, generator)
                scores[step].append(dnsmos(y.clamp(-1, 1), RATE, args.max_hop))
    took = time.perf_counter() - start
    print(f"DNSMOS P.835 on {len(files)} files ({seconds:.0f} s of audio) from {', '.join(map(str, args.data))}; "
          f"medians over files; windows at most {args.max_hop:g} s apart; {took:.0f} s in all")
    print(f"| degradation | {' | '.join(SHORT[k.split('_')[1]] for k in KEYS)} |")
    print("|---|" + "---|" * len(KEYS))
    median = {s: {k: statistics.median(r[k] for r in scores[s]) for k in KEYS} for s in steps}
    for step in steps:
        print(f"| {step} | " + " | ".join(f"{median[step][k]:.3f}" for k in KEYS) + " |")
    print()
    failed = 0
    for ladder, rungs in LADDERS.items():
        chain = ["clean"] + rungs
        for key in KEYS:
            values = [median[s][key] for s in chain]
            falls = all(a > b for a, b in zip(values, values[1:]))
            # per file too: the share of files whose score falls at every step
            per_file = np.mean([all(scores[a][i][key] > scores[b][i][key] for a, b in zip(chain, chain[1:])) for i in range(len(files))])
            failed += key == "dnsmos_ovrl" and not falls
            print(f"{ladder:16s} {SHORT[key.split('_')[1]]:4s} medians {' > '.join(f'{v:.2f}' for v in values)}: "
                  f"{'falls' if falls else 'NOT monotonic'}; every step falls in {100 * per_file:.0f} % of files")
    print(f"\nOVRL monotonic on {len(LADDERS) - failed} of {len(LADDERS)} ladders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
