"""Reconstruction quality of an audio tokenizer vs. Opus at the same bitrates, on held-out audio.

Evaluates the tokenizer on the held-out clips of its recipe (files matching the recipe's
`exclude` globs: whole voices / pieces it never trained on) at 1.5 / 3 / 6 kbps (`--kbps`),
and Opus (libopus through PyAV, in memory, hard CBR by default; `mmtok.eval.baselines.opus`)
at the same requested bitrates on the same clips. Per clip and method: multi-scale mel
distance (lower is better), SI-SDR (dB), STOI and, with the optional `pesq` package,
wide-band PESQ. Writes results.json, results.md, rate_distortion.png, spectrograms.png and
the example clip's audio (examples/) into --out. (`mmtok eval` gives the same measurements
as a report for any audio; this script keeps the model card's speech / music split.)

    python benchmarks/audio_quality.py --tokenizer tokenizers_trained/mmtok-audio-24k \
        --data ../shared/corpus/audio --subset speech --out runs/bench-audio-quality
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import av
import torch

import mmtok
from mmtok.errors import MmtokError
from mmtok.eval.audio_figures import Curve, save_rate_distortion, save_spectrograms
from mmtok.eval.audio_metrics import best_lag, clip_scores, pesq_available, shifted
from mmtok.eval.baselines.opus import ALIGN_MAX_LAG_MS, check_opus, opus_alignment, opus_roundtrip
from mmtok.eval.selection import heldout_in, spread
from mmtok.files import atomic_write
from mmtok.media.audio import AUDIO_SUFFIXES, read_audio, write_audio
from mmtok.metrics import si_sdr

SUBSETS = ("speech", "music")
OURS, OPUS = "ours", "opus"


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
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--opus-vbr", choices=("off", "constrained", "on"), default="off", help="libopus rate control: off = hard CBR (default)")
    p.add_argument("--opus-application", choices=("auto", "voip", "audio", "lowdelay"), default="auto",
                   help="libopus application; auto = voip for speech clips, audio for music clips")
    p.add_argument("--opus-frame-ms", type=float, default=20.0, help="libopus frame_duration (2.5, 5, 10, 20, 40, 60 ms)")
    p.add_argument("--figure-clip", default=None, help="file name of the clip for spectrograms.png (default: the first evaluated clip)")
    p.add_argument("--figure-seconds", type=float, default=5.0, help="seconds of that clip to show")
    return p.parse_args(argv)


# -- held-out set -------------------------------------------------------------------------------
def heldout_clips(data: Path, recipe: Path, subset: str) -> dict[str, list[Path]]:
    """{subset: held-out files under `data/<subset>`} (see `mmtok.eval.selection.heldout_in`)."""
    out = {}
    for name in SUBSETS if subset == "all" else (subset,):
        folder = data / name
        if not folder.is_dir():
            raise MmtokError(f"{folder}: no such folder; --data must hold {' and '.join(SUBSETS)} folders")
        out[name] = heldout_in(folder, recipe, "audio", AUDIO_SUFFIXES)
    return out


# -- metrics ------------------------------------------------------------------------------------
def summarize_subsets(rows: list[dict], metrics: list[str]) -> list[dict]:
    """`mmtok.eval.audio_report.summarize` per subset (= folder), plus the cross-correlation lag
    (+ = late) of each method's output: median, min, max."""
    from mmtok.eval.audio_report import ALL, summarize

    subsets = {r["folder"] for r in rows}
    out = []
    for s in summarize(rows, metrics):
        if s["group"] == ALL and len(subsets) > 1:
            continue
        s["subset"] = next(iter(subsets)) if s["group"] == ALL else s["group"]
        lags = [r["best_lag"] for r in rows if (r["folder"], r["method"], r["kbps_asked"]) == (s["subset"], s["method"], s["kbps_asked"])]
        s["lag_median"], s["lag_min"], s["lag_max"] = statistics.median(lags), min(lags), max(lags)
        out.append(s)
    return out


def table(summary: list[dict], tok_name: str, metrics: list[str]) -> str:
    names = {"mel_distance": "mel dist.", "si_sdr": "SI-SDR (dB)", "stoi": "STOI", "pesq": "PESQ wb"}
    lines = [
        "| subset | method | kbps requested | kbps actual | " + " | ".join(f"{names[m]} median | {names[m]} mean" for m in metrics) + " |",
        "|---|---|---:|---:|" + "---:|---:|" * len(metrics),
    ]
    for s in summary:
        name = f"{tok_name} ({s['levels']} levels)" if s["method"] == OURS else "Opus"
        lines.append(f"| {s['subset']} | {name} | {s['kbps_asked']:g} | {s['kbps_spent']:.2f} | "
                     + " | ".join(f"{s[f'{m}_median']:.3f} | {s[f'{m}_mean']:.3f}" for m in metrics) + " |")
    return "\n".join(lines)


# -- pictures -----------------------------------------------------------------------------------
def save_rate_distortion_plot(summary: list[dict], tok_name: str, metrics: list[str], path: Path) -> None:
    """One row of panels per subset: ours and Opus (at the bitrate it spent, labelled with the one asked)."""
    labels = {"mel_distance": "mel distance ↓", "stoi": "STOI ↑", "si_sdr": "SI-SDR dB ↑", "pesq": "PESQ (wb) ↑"}
    groups = {}
    for subset in dict.fromkeys(s["subset"] for s in summary):
        groups[subset] = []
        for method in (OURS, OPUS):
            rs = sorted((s for s in summary if s["subset"] == subset and s["method"] == method), key=lambda s: s["kbps_spent"])
            groups[subset].append(Curve(tok_name if method == OURS else "Opus (kbps spent; label: asked)", [s["kbps_spent"] for s in rs],
                                        {m: [s[f"{m}_median"] for s in rs] for m in metrics},
                                        [f"{s['kbps_asked']:g}" for s in rs] if method == OPUS else None, method == OPUS))
    save_rate_distortion(groups, [(m, f"{labels[m]} (median)") for m in metrics], path)


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    torch.set_num_threads(args.threads)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    check_opus()
    tok = mmtok.load(args.tokenizer)
    if tok.modality != "audio":
        raise MmtokError(f"{args.tokenizer}: a {tok.modality} tokenizer; this benchmark needs an audio tokenizer")
    recipe = args.recipe or args.tokenizer / "recipe.yaml"
    heldout = heldout_clips(args.data, recipe, args.subset)
    evaluated = {name: spread(files, args.max_files) for name, files in heldout.items()}
    rate, channels = tok.sample_rate, tok.channels
    levels = {k: tok.levels_for(kbps=k) for k in args.kbps}
    with_pesq = pesq_available() and rate >= 16000
    metrics = ["mel_distance", "si_sdr", "stoi"] + (["pesq"] if with_pesq else [])
    timings["load"] = time.perf_counter() - start
    tok_name = args.tokenizer.resolve().name
    plan = ", ".join(f"{k:g} kbps -> {n} levels ({tok.kbps(n):g} kbps)" for k, n in levels.items())
    print(f"{tok_name}: {rate} Hz, {channels} channel(s), {plan}; PESQ {'on' if with_pesq else 'unavailable'}")
    application_text = args.opus_application + (" (voip for speech, audio for music)" if args.opus_application == "auto" else "")
    opus_text = (f"libopus via PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), vbr {args.opus_vbr} "
                 f"({'hard CBR' if args.opus_vbr == 'off' else 'VBR'}), application {application_text}, {args.opus_frame_ms:g} ms frames")
    print(f"Opus: {opus_text}; encoded from and decoded to {rate} Hz")
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
                opus = opus_roundtrip(x, rate, k, application, args.opus_frame_ms, args.opus_vbr)
                t2 = time.perf_counter()
                time_ours += t1 - t0
                time_opus += t2 - t1
                for method, y, extra in (
                    (OURS, ours, {"levels": levels[k], "kbps_spent": tok.kbps(levels[k])}),
                    (OPUS, opus.audio, {"kbps_spent": opus.kbps_spent, "payload_bytes": opus.payload_bytes,
                                        "bitrate_set_kbps": opus.bitrate_set / 1000, "application": application}),
                ):
                    lag = best_lag(y, x, max_lag)
                    row = {"folder": subset, "file": f.name, "seconds": seconds, "method": method, "baseline": method == OPUS,
                           "kbps_asked": k, **extra, **clip_scores(y, x, rate, with_pesq), "best_lag": lag}
                    if lag != 0:
                        row["si_sdr_at_best_lag"] = float(si_sdr(shifted(y, lag)[None], x[None])[0])
                    rows.append(row)
                    if f.name == figure_clip:
                        figure[(method, k)] = (y, row)
                time_metrics += time.perf_counter() - t2
            if not alignment:
                alignment = opus_alignment(x, rate, f.name)
            if f.name == figure_clip:
                figure["original"] = x
            last = [r for r in rows if r["file"] == f.name and r["kbps_asked"] == max(args.kbps)]
            print(f"  [{subset} {n}/{len(files)}] {f.name} ({seconds:.1f}s) at {max(args.kbps):g} kbps: "
                  + ", ".join(f"{r['method']} mel {r['mel_distance']:.3f} STOI {r['stoi']:.3f}" for r in last), flush=True)
    timings.update({"ours_encode_decode": time_ours, "opus_encode_decode": time_opus, "metrics": time_metrics})

    summary = summarize_subsets(rows, metrics)
    result_table = table(summary, tok_name, metrics)
    notes = []
    for s in summary:
        if s["method"] == OPUS and abs(s["kbps_spent"] - s["kbps_asked"]) > 0.1 * s["kbps_asked"]:
            notes.append(f"Opus ({s['subset']}) asked for {s['kbps_asked']:g} kbps spent {s['kbps_spent']:.2f} kbps of packets "
                         f"(given {s['bitrate_set_kbps']:g} kbps: whole-byte CBR packets at or below the asked rate)")
    a = alignment
    notes.append(f"Opus alignment check ({a['file']}, {a['kbps']:g} kbps, application audio): best cross-correlation lag "
                 f"{a['best_lag']:+d} samples (searched +-{a['searched_lag']}); "
                 "SI-SDR at lag -2..+2: " + " / ".join(f"{a[f'si_sdr_lag{lag:+d}']:.1f}" for lag in (-2, -1, 0, 1, 2)) + " dB")
    if a["best_lag"] != 0:
        notes.append("WARNING: the decoded Opus is not sample-aligned with its input (pre-skip / resampler delay); its scores are off")
    for s in summary:
        if s["method"] == OURS:
            notes.append(f"{tok_name} ({s['subset']}, {s['kbps_asked']:g} kbps): best cross-correlation lag (+ = late) median "
                         f"{s['lag_median']:+g} samples, range {s['lag_min']:+d}..{s['lag_max']:+d}")
    print()
    print(result_table)
    print()
    for line in notes:
        print(line)

    start = time.perf_counter()
    out = args.out
    save_rate_distortion_plot(summary, tok_name, metrics, out / "rate_distortion.png")
    written = [out / "results.json", out / "results.md", out / "rate_distortion.png"]
    if "original" in figure:
        limit = round(args.figure_seconds * rate)
        grid = []
        (out / "examples").mkdir(parents=True, exist_ok=True)
        stem = Path(figure_clip).stem
        write_audio(out / "examples" / f"{stem}_original.wav", figure["original"], rate)
        for k in args.kbps:
            cells = []
            for method in (OURS, OPUS):
                y, row = figure[(method, k)]
                label = (f"{tok_name} {k:g} kbps ({row['levels']} levels)" if method == OURS
                         else f"Opus asked {k:g}, spent {row['kbps_spent']:.2f} kbps")
                scores = f"mel {row['mel_distance']:.3f}, SI-SDR {row['si_sdr']:.1f} dB, STOI {row['stoi']:.3f}"
                cells.append((f"{label}\n{scores}", y[..., :limit]))
                write_audio(out / "examples" / f"{stem}_{method}_{k:g}kbps.wav", y, rate)
            grid.append(cells)
        save_spectrograms(figure_clip, figure["original"][..., :limit], grid, rate, out / "spectrograms.png")
        written += [out / "spectrograms.png", out / "examples"]
    results = {
        "command": command,
        "tokenizer": {"path": str(args.tokenizer), "kind": tok.kind, "fingerprint": tok.fingerprint, "sample_rate": rate,
                      "channels": channels, "levels": {f"{k:g}": n for k, n in levels.items()}},
        "data": str(args.data), "recipe": str(recipe), "subset": args.subset,
        "heldout_clips": {name: len(files) for name, files in heldout.items()},
        "evaluated": {name: [f.name for f in files] for name, files in evaluated.items()},
        "opus": {"encoder": opus_text, "vbr": args.opus_vbr, "application": args.opus_application, "frame_ms": args.opus_frame_ms,
                 "kbps_spent": "packet payload bits / clip duration (no container)"},
        "summary": summary, "alignment": alignment, "per_clip": rows, "notes": notes,
        "timings_seconds": timings, "threads": torch.get_num_threads(),
    }
    atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    markdown = (f"# Audio quality: {tok_name} vs. Opus\n\n`{command}`\n\n"
                + ", ".join(f"{len(files)} held-out {name} clips" for name, files in evaluated.items())
                + f"; Opus: {opus_text}. kbps actual for Opus = packet payload (no container).\n\n"
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
