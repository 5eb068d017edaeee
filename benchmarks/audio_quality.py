"""Reconstruction quality of an audio tokenizer vs. Opus at the same bitrates, on held-out audio.

Evaluates the tokenizer on the held-out clips of its recipe (files matching the recipe's
`exclude` globs: whole voices / pieces it never trained on) at 1.5 / 3 / 6 kbps (`--kbps`),
and Opus (ffmpeg + libopus, hard CBR by default) at the same requested bitrates on the same
clips. Per clip and method: multi-scale mel distance (lower is better), SI-SDR (dB) and STOI.
Writes results.json, results.md, rate_distortion.png, spectrograms.png and the example clip's
audio (examples/) into --out. ffmpeg is installed with apt-get when it is missing.

    python benchmarks/audio_quality.py --tokenizer tokenizers_trained/mmtok-audio-24k \
        --data ../shared/corpus/audio --subset speech --out runs/bench-audio-quality
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import heldout_files, spread

import mmtok
from mmtok.errors import MmtokError
from mmtok.eval.audio_metrics import mel_distance, si_sdr, stoi
from mmtok.files import atomic_write
from mmtok.media.audio import AUDIO_SUFFIXES, read_audio, write_audio

SUBSETS = ("speech", "music")
OURS, OPUS = "ours", "opus"
ALIGN_MAX_LAG_MS = 50.0   # cross-correlation search range of the alignment checks
ALIGN_KBPS = 64.0         # Opus bitrate of the alignment check: transparent enough that any offset shows in SI-SDR


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="audio tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--data", type=Path, default=Path("../shared/corpus/audio"), help="audio corpus with speech/ and music/ folders")
    p.add_argument("--recipe", type=Path, default=None,
                   help="recipe.yaml; its train.exclude globs are the held-out set (default: <tokenizer>/recipe.yaml)")
    p.add_argument("--subset", choices=(*SUBSETS, "all"), default="speech", help="which held-out clips (all = speech and music, reported apart)")
    p.add_argument("--kbps", type=float, nargs="+", default=[1.5, 3.0, 6.0], help="bitrates to compare")
    p.add_argument("--max-files", type=int, default=None, help="evaluate at most N held-out clips per subset (evenly spread over voices / pieces)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-audio-quality"), help="folder for results and pictures")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (ffmpeg runs with one thread)")
    p.add_argument("--opus-vbr", choices=("off", "constrained", "on"), default="off", help="libopus rate control: off = hard CBR (default)")
    p.add_argument("--opus-application", choices=("auto", "voip", "audio", "lowdelay"), default="auto",
                   help="libopus -application; auto = voip for speech clips, audio for music clips")
    p.add_argument("--opus-frame-ms", type=float, default=20.0, help="libopus -frame_duration (2.5, 5, 10, 20, 40, 60 ms)")
    p.add_argument("--figure-clip", default=None, help="file name of the clip for spectrograms.png (default: the first evaluated clip)")
    p.add_argument("--figure-seconds", type=float, default=5.0, help="seconds of that clip to show")
    return p.parse_args(argv)


# -- held-out set -------------------------------------------------------------------------------
def heldout_clips(data: Path, recipe: Path, subset: str) -> dict[str, list[Path]]:
    """{subset: held-out files under `data/<subset>`} (see `bench_common.heldout_files`)."""
    out = {}
    for name in SUBSETS if subset == "all" else (subset,):
        folder = data / name
        if not folder.is_dir():
            raise MmtokError(f"{folder}: no such folder; --data must hold {' and '.join(SUBSETS)} folders")
        out[name] = heldout_files(folder, recipe, "audio", AUDIO_SUFFIXES)
    return out


# -- Opus through ffmpeg ------------------------------------------------------------------------
def ensure_ffmpeg() -> str:
    """Path of an ffmpeg with the libopus encoder, installing Debian's ffmpeg if there is none."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        apt = shutil.which("apt-get")
        if apt is None:
            raise MmtokError("ffmpeg is not installed and there is no apt-get to install it; install ffmpeg (with libopus) and retry")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in ([*sudo, apt, "update", "-q"], [*sudo, apt, "install", "-y", "-q", "--no-install-recommends", "ffmpeg"]):
            print(f"ffmpeg not found; running: {shlex.join(cmd)}", flush=True)
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
                raise MmtokError(f"`{shlex.join(cmd)}` failed: {tail[0]}; install ffmpeg (with libopus) and retry")
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if " libopus " not in encoders:
        raise MmtokError("this ffmpeg has no libopus encoder; install an ffmpeg built with libopus")
    return " ".join(subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()[:3])


def _ffmpeg(cmd: list[str], data: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=data, capture_output=True)
    if proc.returncode != 0:
        raise MmtokError(f"`{shlex.join(cmd)}` failed: {proc.stderr.decode(errors='replace').strip()[-500:]}")
    return proc.stdout


def opus_roundtrip(x: torch.Tensor, rate: int, kbps: float, application: str, vbr: str, frame_ms: float, tmp: Path) -> dict:
    """Encode `[C,T]` at `rate` with libopus at `kbps`, decode back to `rate`; the decoded
    `[C,T]` (cropped / zero-padded to T) and the bitrate really spent."""
    channels, length = x.shape
    pcm = np.ascontiguousarray(x.numpy().T, dtype="<f4").tobytes()
    path = tmp / "clip.opus"
    _ffmpeg(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-threads", "1",
             "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
             "-c:a", "libopus", "-b:a", f"{kbps * 1000:.0f}", "-vbr", vbr, "-application", application,
             "-frame_duration", f"{frame_ms:g}", "-map_metadata", "-1", "-fflags", "+bitexact", str(path)], pcm)
    probe = _ffmpeg(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=size", "-of", "json", str(path)])
    payload = sum(int(packet["size"]) for packet in json.loads(probe)["packets"])
    # The decoder applies the stream's pre-skip and the end trim of the last granule position.
    raw = _ffmpeg(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1", "-i", str(path),
                   "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "pipe:1"])
    y = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy()).reshape(-1, channels).T
    seconds = length / rate
    decoded_length = y.shape[-1]
    y = torch.nn.functional.pad(y[..., :length], (0, max(length - y.shape[-1], 0))).clamp(-1, 1)
    return {"audio": y, "payload_kbps": payload * 8 / seconds / 1000, "file_kbps": path.stat().st_size * 8 / seconds / 1000,
            "payload_bytes": payload, "file_bytes": path.stat().st_size, "decoded_length": decoded_length}


# -- metrics ------------------------------------------------------------------------------------
def best_lag(estimate: torch.Tensor, reference: torch.Tensor, max_lag: int) -> int:
    """Lag (samples, + = estimate late) in [-max_lag, max_lag] maximising the cross-correlation of the channel means."""
    est, ref = estimate.mean(0).double(), reference.mean(0).double()
    n = est.shape[-1] + ref.shape[-1]
    corr = torch.fft.irfft(torch.fft.rfft(est, n) * torch.fft.rfft(ref, n).conj(), n)
    lags = torch.arange(-max_lag, max_lag + 1)
    return int(lags[corr[lags % n].argmax()])


def shifted(x: torch.Tensor, lag: int) -> torch.Tensor:
    """`x` moved `lag` samples earlier (zero-filled), same length."""
    if lag == 0:
        return x
    if lag > 0:
        return torch.nn.functional.pad(x[..., lag:], (0, lag))
    return torch.nn.functional.pad(x[..., :lag], (-lag, 0))


def alignment_check(x: torch.Tensor, rate: int, name: str, tmp: Path, frame_ms: float) -> dict:
    """Is the decoded Opus sample-aligned with the input (pre-skip removed, resampler delay
    compensated)? At ALIGN_KBPS with `-application audio` (CELT, waveform-matching) SI-SDR
    is high at lag 0 and falls off sharply one sample away, so an offset cannot hide."""
    opus = opus_roundtrip(x, rate, ALIGN_KBPS, "audio", "off", frame_ms, tmp)
    y, max_lag = opus["audio"], round(ALIGN_MAX_LAG_MS * rate / 1000)
    check = {"file": name, "kbps": ALIGN_KBPS, "application": "audio", "samples": x.shape[-1],
             "decoded_samples": opus["decoded_length"], "best_lag": best_lag(y, x, max_lag), "searched_lag": max_lag}
    for lag in (-2, -1, 0, 1, 2):
        check[f"si_sdr_lag{lag:+d}"] = float(si_sdr(shifted(y, lag)[None], x[None])[0])
    return check


def metrics(estimate: torch.Tensor, reference: torch.Tensor, rate: int) -> dict:
    e, r = estimate[None], reference[None]
    return {"mel_distance": float(mel_distance(e, r, rate)[0]), "si_sdr": float(si_sdr(e, r)[0]), "stoi": float(stoi(e, r, rate)[0])}


def summarize(rows: list[dict]) -> list[dict]:
    """Median and mean of every metric per (subset, method, requested kbps)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["subset"], r["method"], r["kbps_requested"]), []).append(r)
    out = []
    for (subset, method, kbps), rs in groups.items():
        s = {"subset": subset, "method": method, "kbps_requested": kbps, "clips": len(rs)}
        seconds = sum(r["seconds"] for r in rs)
        if method == OPUS:
            s["kbps_actual"] = sum(r["payload_bytes"] for r in rs) * 8 / seconds / 1000
            s["kbps_file"] = sum(r["file_bytes"] for r in rs) * 8 / seconds / 1000
        else:
            s["kbps_actual"] = rs[0]["kbps_actual"]
            s["levels"] = rs[0]["levels"]
        for m in ("mel_distance", "si_sdr", "stoi"):
            values = [r[m] for r in rs]
            s[f"{m}_median"], s[f"{m}_mean"] = statistics.median(values), statistics.fmean(values)
        lags = [r["best_lag"] for r in rs]
        s["lag_median"], s["lag_min"], s["lag_max"] = statistics.median(lags), min(lags), max(lags)
        out.append(s)
    return out


def table(summary: list[dict], tok_name: str) -> str:
    lines = [
        "| subset | method | kbps requested | kbps actual | mel dist. median | mel dist. mean | SI-SDR median (dB) | SI-SDR mean (dB) "
        "| STOI median | STOI mean |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        name = f"{tok_name} ({s['levels']} levels)" if s["method"] == OURS else "Opus"
        lines.append(
            f"| {s['subset']} | {name} | {s['kbps_requested']:g} | {s['kbps_actual']:.2f} | {s['mel_distance_median']:.3f} "
            f"| {s['mel_distance_mean']:.3f} | {s['si_sdr_median']:.2f} | {s['si_sdr_mean']:.2f} | {s['stoi_median']:.3f} | {s['stoi_mean']:.3f} |"
        )
    return "\n".join(lines)


# -- pictures -----------------------------------------------------------------------------------
def save_rate_distortion(summary: list[dict], tok_name: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("mel_distance", "mel distance (lower is better)"), ("stoi", "STOI (higher is better)"), ("si_sdr", "SI-SDR dB (higher is better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    styles = {"speech": "-", "music": "--"}
    for ax, (metric, label) in zip(axes, panels):
        for subset in dict.fromkeys(s["subset"] for s in summary):
            for method, color in ((OURS, "tab:blue"), (OPUS, "tab:orange")):
                rs = sorted((s for s in summary if s["subset"] == subset and s["method"] == method), key=lambda s: s["kbps_actual"])
                name = tok_name if method == OURS else "Opus (actual bitrate)"
                ax.plot([s["kbps_actual"] for s in rs], [s[f"{metric}_median"] for s in rs], styles.get(subset, ":"),
                        marker="o", color=color, label=f"{name}, {subset}")
                if method == OPUS:
                    for s in rs:
                        ax.annotate(f"asked {s['kbps_requested']:g}", (s["kbps_actual"], s[f"{metric}_median"]), fontsize=7,
                                    textcoords="offset points", xytext=(4, 4), color=color)
        ax.set_xlabel("kbps")
        ax.set_title(f"{label}, median")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


def log_mel_db(x: torch.Tensor, rate: int, n_fft: int = 1024, n_mels: int = 80) -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    fb = torch.from_numpy(mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, rate / 2, rate, norm="slaney", mel_scale="slaney")).float().T
    spec = torch.stft(x.mean(0), n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs().pow(2)
    return (10 * torch.log10((fb @ spec).clamp(min=1e-10))).numpy()


def save_spectrograms(name: str, original: torch.Tensor, versions: list[tuple[str, torch.Tensor, str]], rate: int, path: Path) -> None:
    """Original on top, then one row per bitrate: ours left, Opus right. `versions`: (method, audio, title) in kbps order."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = log_mel_db(original, rate)
    vmax = float(ref.max())
    vmin = vmax - 80
    rows = len(versions) // 2
    fig = plt.figure(figsize=(13, 2.6 * (rows + 1)), layout="constrained")
    grid = fig.add_gridspec(rows + 1, 2)
    extent = (0, original.shape[-1] / rate, 0, ref.shape[0])
    ax = fig.add_subplot(grid[0, :])
    image = ax.imshow(ref, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, extent=extent)
    ax.set_title(f"original: {name}", fontsize=9)
    ax.set_ylabel("mel bin")
    for i, (method, audio, title) in enumerate(versions):
        ax = fig.add_subplot(grid[1 + i // 2, 0 if method == OURS else 1])
        ax.imshow(log_mel_db(audio, rate), origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, extent=extent)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("mel bin")
        if i >= len(versions) - 2:
            ax.set_xlabel("seconds")
    fig.colorbar(image, ax=fig.axes, shrink=0.5, label="dB")
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    torch.set_num_threads(args.threads)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    ffmpeg_version = ensure_ffmpeg()
    tok = mmtok.load(args.tokenizer)
    if tok.modality != "audio":
        raise MmtokError(f"{args.tokenizer}: a {tok.modality} tokenizer; this benchmark needs an audio tokenizer")
    recipe = args.recipe or args.tokenizer / "recipe.yaml"
    heldout = heldout_clips(args.data, recipe, args.subset)
    evaluated = {name: spread(files, args.max_files) for name, files in heldout.items()}
    rate, channels = tok.sample_rate, tok.channels
    levels = {k: tok.levels_for(kbps=k) for k in args.kbps}
    timings["load"] = time.perf_counter() - start
    tok_name = args.tokenizer.resolve().name
    plan = ", ".join(f"{k:g} kbps -> {n} levels ({tok.kbps(n):g} kbps)" for k, n in levels.items())
    print(f"{tok_name}: {rate} Hz, {channels} channel(s), {plan}")
    application_text = args.opus_application + (" (voip for speech, audio for music)" if args.opus_application == "auto" else "")
    print(f"{ffmpeg_version}; Opus: libopus, -vbr {args.opus_vbr} ({'hard CBR' if args.opus_vbr == 'off' else 'VBR'}), "
          f"-application {application_text}, {args.opus_frame_ms:g} ms frames; encoded from and decoded to {rate} Hz")
    for name, files in heldout.items():
        print(f"held-out {name}: {len(files)} clips (recipe {recipe}), evaluating {len(evaluated[name])}")

    figure_clip = args.figure_clip or next(iter(evaluated.values()))[0].name
    if figure_clip not in {f.name for files in evaluated.values() for f in files}:
        raise MmtokError(f"--figure-clip {figure_clip}: not among the evaluated held-out clips; name one of them (see --max-files)")
    figure: dict = {}
    rows: list[dict] = []
    max_lag = round(ALIGN_MAX_LAG_MS * rate / 1000)
    alignment: dict = {}
    time_ours = time_opus = time_metrics = 0.0
    with tempfile.TemporaryDirectory(prefix="mmtok-opus-") as tmp_name:
        tmp = Path(tmp_name)
        for subset, files in evaluated.items():
            application = args.opus_application if args.opus_application != "auto" else ("voip" if subset == "speech" else "audio")
            for n, f in enumerate(files, 1):
                x = read_audio(f, rate, channels)
                seconds = x.shape[-1] / rate
                for k in args.kbps:
                    t0 = time.perf_counter()
                    codes = tok.encode(x[None], num_quantizers=levels[k])
                    ours = tok.decode(codes, length=x.shape[-1])[0]
                    t1 = time.perf_counter()
                    opus = opus_roundtrip(x, rate, k, application, args.opus_vbr, args.opus_frame_ms, tmp)
                    t2 = time.perf_counter()
                    time_ours += t1 - t0
                    time_opus += t2 - t1
                    for method, y, extra in (
                        (OURS, ours, {"levels": levels[k], "kbps_actual": tok.kbps(levels[k])}),
                        (OPUS, opus["audio"], {"kbps_actual": opus["payload_kbps"], "kbps_file": opus["file_kbps"],
                                               "payload_bytes": opus["payload_bytes"], "file_bytes": opus["file_bytes"],
                                               "decoded_length": opus["decoded_length"], "application": application}),
                    ):
                        lag = best_lag(y, x, max_lag)
                        row = {"subset": subset, "file": f.name, "seconds": seconds, "method": method, "kbps_requested": k,
                               **extra, **metrics(y, x, rate), "best_lag": lag}
                        if lag != 0:
                            row["si_sdr_at_best_lag"] = float(si_sdr(shifted(y, lag)[None], x[None])[0])
                        rows.append(row)
                        if f.name == figure_clip:
                            figure[(method, k)] = (y, row)
                    time_metrics += time.perf_counter() - t2
                if not alignment:
                    alignment = alignment_check(x, rate, f.name, tmp, args.opus_frame_ms)
                if f.name == figure_clip:
                    figure["original"] = x
                last = [r for r in rows if r["file"] == f.name and r["kbps_requested"] == max(args.kbps)]
                print(f"  [{subset} {n}/{len(files)}] {f.name} ({seconds:.1f}s) at {max(args.kbps):g} kbps: "
                      + ", ".join(f"{r['method']} mel {r['mel_distance']:.3f} STOI {r['stoi']:.3f}" for r in last), flush=True)
    timings.update({"ours_encode_decode": time_ours, "opus_encode_decode": time_opus, "metrics": time_metrics})

    summary = summarize(rows)
    result_table = table(summary, tok_name)
    notes = []
    for s in summary:
        if s["method"] == OPUS and abs(s["kbps_actual"] - s["kbps_requested"]) > 0.1 * s["kbps_requested"]:
            notes.append(f"Opus ({s['subset']}) asked for {s['kbps_requested']:g} kbps spent {s['kbps_actual']:.2f} kbps "
                         f"of packets ({s['kbps_file']:.2f} kbps with the Ogg container)")
    a = alignment
    notes.append(f"Opus alignment check ({a['file']}, {a['kbps']:g} kbps, -application audio): {a['samples']} samples in, "
                 f"{a['decoded_samples']} decoded; best cross-correlation lag {a['best_lag']:+d} samples (searched +-{a['searched_lag']}); "
                 "SI-SDR at lag -2..+2: " + " / ".join(f"{a[f'si_sdr_lag{lag:+d}']:.1f}" for lag in (-2, -1, 0, 1, 2)) + " dB")
    if a["best_lag"] != 0 or a["decoded_samples"] != a["samples"]:
        notes.append("WARNING: the decoded Opus is not sample-aligned with its input (pre-skip / resampler delay); its scores are off")
    for s in summary:
        if s["method"] == OURS:
            notes.append(f"{tok_name} ({s['subset']}, {s['kbps_requested']:g} kbps): best cross-correlation lag (+ = late) median "
                         f"{s['lag_median']:+g} samples, range {s['lag_min']:+d}..{s['lag_max']:+d}")
    print()
    print(result_table)
    print()
    for line in notes:
        print(line)

    start = time.perf_counter()
    out = args.out
    save_rate_distortion(summary, tok_name, out / "rate_distortion.png")
    written = [out / "results.json", out / "results.md", out / "rate_distortion.png"]
    if "original" in figure:
        limit = round(args.figure_seconds * rate)
        versions = []
        (out / "examples").mkdir(parents=True, exist_ok=True)
        stem = Path(figure_clip).stem
        write_audio(out / "examples" / f"{stem}_original.wav", figure["original"], rate)
        for k in args.kbps:
            for method in (OURS, OPUS):
                y, row = figure[(method, k)]
                label = (f"{tok_name} {k:g} kbps ({row['levels']} levels)" if method == OURS
                         else f"Opus asked {k:g}, spent {row['kbps_actual']:.2f} kbps")
                scores = f"mel {row['mel_distance']:.3f}, SI-SDR {row['si_sdr']:.1f} dB, STOI {row['stoi']:.3f}"
                versions.append((method, y[..., :limit], f"{label}\n{scores}"))
                write_audio(out / "examples" / f"{stem}_{method}_{k:g}kbps.wav", y, rate)
        save_spectrograms(figure_clip, figure["original"][..., :limit], versions, rate, out / "spectrograms.png")
        written += [out / "spectrograms.png", out / "examples"]
    results = {
        "command": command,
        "tokenizer": {"path": str(args.tokenizer), "kind": tok.kind, "fingerprint": tok.fingerprint, "sample_rate": rate,
                      "channels": channels, "levels": {f"{k:g}": n for k, n in levels.items()}},
        "data": str(args.data), "recipe": str(recipe), "subset": args.subset,
        "heldout_clips": {name: len(files) for name, files in heldout.items()},
        "evaluated": {name: [f.name for f in files] for name, files in evaluated.items()},
        "opus": {"ffmpeg": ffmpeg_version, "vbr": args.opus_vbr, "application": args.opus_application, "frame_ms": args.opus_frame_ms,
                 "kbps_actual": "packet payload bits / clip duration (kbps_file: whole Ogg file)"},
        "summary": summary, "alignment": alignment, "per_clip": rows, "notes": notes,
        "timings_seconds": timings, "threads": torch.get_num_threads(),
    }
    atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    markdown = (f"# Audio quality: {tok_name} vs. Opus\n\n`{command}`\n\n"
                + ", ".join(f"{len(files)} held-out {name} clips" for name, files in evaluated.items())
                + f"; Opus: {ffmpeg_version}, libopus -vbr {args.opus_vbr}, -application {application_text}, {args.opus_frame_ms:g} ms frames."
                + " kbps actual for Opus = packet payload (without the Ogg container).\n\n"
                + result_table + "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n")
    atomic_write(out / "results.md", lambda tmp: tmp.write_text(markdown))
    timings["write_outputs"] = time.perf_counter() - start
    print("\ntimings: " + ", ".join(f"{key} {value:.1f}s" for key, value in timings.items()))
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MmtokError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
