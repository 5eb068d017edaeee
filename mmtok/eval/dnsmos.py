"""DNSMOS P.835: a no-reference perceptual score for speech (Reddy et al., ICASSP 2022).

A network trained on listener ratings (ITU-T P.835) predicts three MOS values, each 1..5,
higher is better, from the degraded audio alone (no reference needed):

- `dnsmos_sig`: how natural the speech itself sounds (distortion of the voice);
- `dnsmos_bak`: how unobtrusive the background is (noise, hiss, artefacts between words);
- `dnsmos_ovrl`: overall quality.

The ONNX model is the one Microsoft's DNS challenge released, as shipped inside the PyPI
package `speechmos` (`speechmos/dnsmos_models/sig_bak_ovr.onnx`). It is read straight from
the installed package and run with onnxruntime: no download, nothing unpickled, and
`speechmos`'s own Python module (which imports librosa and requests) is never imported.
The scoring follows `speechmos.dnsmos`: 16 kHz mono, 9.01 s windows (a shorter clip is
repeated until it fills one), raw model outputs mapped through the published polynomials,
averaged over the windows. Only the window spacing is a choice here: windows are spread
evenly from the start to the end of the clip, at most `max_hop` seconds apart. speechmos
steps 1 s (`max_hop=1.0`), which costs about one 9 s model call per second of audio (about
0.9 s of CPU here); `mmtok eval` uses `EVAL_HOP_SECONDS` (windows that just tile the clip,
nine times cheaper; every sample is still scored). On one window the numbers are identical to
speechmos's (checked on 9.01 s of the committed speech sample). speechmos
also silently skips many windows (it computes a window's end as `int((i + 9.01) * 16000)`,
which float rounding makes one sample short); here none are skipped.

Optional: `dnsmos_available()` says whether `speechmos` and `onnxruntime` are installed
(`pip install mmtok[eval]`); reports say n/a otherwise.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

DNSMOS_RATE = 16000
WINDOW_SECONDS = 9.01
HOP_SECONDS = 1.0               # speechmos's window step
EVAL_HOP_SECONDS = WINDOW_SECONDS   # `mmtok eval`'s: windows tile the clip
KEYS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
# Raw network outputs -> P.835 MOS (speechmos.dnsmos, not personalised), highest power first.
POLYNOMIALS = {
    "dnsmos_sig": (-0.08397278, 1.22083953, 0.0052439),
    "dnsmos_bak": (-0.13166888, 1.60915514, -0.39604546),
    "dnsmos_ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
BATCH = 8            # windows per model call (8 x 9 s of float32: 4.6 MB)
SILENCE_RMS = 1e-5   # a clip quieter than this (digital silence) has no speech to score: NaN


def dnsmos_available() -> bool:
    """Whether `speechmos` (the model file) and `onnxruntime` are installed."""
    try:
        import onnxruntime  # noqa: F401
        import speechmos  # noqa: F401  (its __init__ is empty: imports nothing else)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _session():
    """The P.835 model as an onnxruntime session, on as many threads as torch uses (so
    OMP_NUM_THREADS / torch.set_num_threads bound it too)."""
    import importlib.resources

    import onnxruntime as ort

    path = importlib.resources.files("speechmos") / "dnsmos_models" / "sig_bak_ovr.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def dnsmos(audio: torch.Tensor, sample_rate: int, max_hop: float = HOP_SECONDS) -> dict[str, float]:
    """P.835 SIG / BAK / OVRL (each 1..5, higher is better) of one clip `[C,T]` or `[T]`
    float in [-1,1] at `sample_rate` (channels averaged, resampled to 16 kHz with soxr), from
    9.01 s windows at most `max_hop` seconds apart (see the module docstring). NaN for every
    key on a silent or empty clip (there is no speech to judge)."""
    import soxr

    x = audio.double().reshape(-1, audio.shape[-1]).mean(0).cpu().numpy() if audio.ndim > 1 else audio.double().cpu().numpy()
    if sample_rate != DNSMOS_RATE and x.size:
        x = soxr.resample(x, sample_rate, DNSMOS_RATE, quality="HQ")
    if not x.size or math.sqrt(float(np.mean(x**2))) < SILENCE_RMS:
        return dict.fromkeys(KEYS, math.nan)
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    length = int(WINDOW_SECONDS * DNSMOS_RATE)
    while x.size < length:           # as speechmos: repeat a short clip until it fills a window
        x = np.concatenate([x, x])
    count = math.ceil((x.size - length) / (max_hop * DNSMOS_RATE)) + 1
    starts = np.linspace(0, x.size - length, count).round().astype(int).tolist()
    raw = np.concatenate([  # [windows, 3]: sig, bak, ovrl; BATCH windows at a time bounds memory on long files
        _session().run(None, {"input_1": np.stack([x[s : s + length] for s in starts[i : i + BATCH]])})[0]
        for i in range(0, len(starts), BATCH)
    ])
    return {key: float(np.mean(np.polyval(POLYNOMIALS[key], raw[:, i]))) for i, key in enumerate(KEYS)}
