"""The audio evaluation report: what `mmtok.eval.audio_measure.measure` found, as sections,
tables, figures and `report.results["audio"]`."""

from __future__ import annotations

import math
import statistics
from typing import Any

from mmtok.eval.audio_figures import Curve, save_codebook_levels, save_rate_distortion, save_spectrograms
from mmtok.eval.audio_measure import AGREEMENT_ITEMS, AGREEMENT_SECONDS, DEFAULT_MAX_KBPS, EXAMPLE_SECONDS, OPUS, Measurements, level_stats
from mmtok.eval.audio_metrics import PESQ_RATE
from mmtok.eval.baselines.opus import APPLICATION, FRAME_MS, MIN_KBPS, opus_rate
from mmtok.eval.dnsmos import DNSMOS_RATE, EVAL_HOP_SECONDS, WINDOW_SECONDS
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report

ALL = "all files"
METRICS = (("mel_distance", "mel distance ↓"), ("si_sdr", "SI-SDR dB ↑"), ("stoi", "STOI ↑"), ("pesq", "PESQ (wb) ↑"),
           ("dnsmos_ovrl", "DNSMOS OVRL ↑"), ("dnsmos_sig", "DNSMOS SIG ↑"), ("dnsmos_bak", "DNSMOS BAK ↑"))
DNSMOS_KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
PLOTTED_DNSMOS = "dnsmos_ovrl"   # the rate–distortion figure shows OVRL; SIG and BAK are in the tables


def summarize(rows: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per (group, method, bitrate asked): tokens per second (None for Opus) and kbps
    spent over all the clips (total bits / total seconds) first, then clips, median and mean of each metric over the clips where it is defined
    (PESQ is not on silence, STOI and PESQ not on clips too short), and how many clips had it
    undefined."""
    folders = sorted({r["folder"] for r in rows})
    groups = [(ALL, rows)] + ([(f, [r for r in rows if r["folder"] == f]) for f in folders] if len(folders) > 1 else [])
    out = []
    for group, members in groups:
        keyed: dict[tuple, list[dict]] = {}
        for r in members:
            keyed.setdefault((r["method"], r["kbps_asked"]), []).append(r)
        for (method, asked), rs in keyed.items():
            seconds = sum(r["seconds"] for r in rs)
            s = {"method": method, "tokens_per_second": rs[0]["tokens_per_second"],
                 "kbps_spent": sum(r["kbps_spent"] * r["seconds"] for r in rs) / seconds, "kbps_asked": asked, "group": group,
                 "baseline": rs[0]["baseline"], "levels": rs[0].get("levels"), "clips": len(rs), "seconds": seconds}
            if rs[0]["baseline"]:
                s["bitrate_set_kbps"] = rs[0]["bitrate_set_kbps"]
            for key in metrics:
                values = [r[key] for r in rs if math.isfinite(r[key])]
                s[f"{key}_median"] = statistics.median(values) if values else math.nan
                s[f"{key}_mean"] = statistics.fmean(values) if values else math.nan
                s[f"{key}_undefined"] = len(rs) - len(values)
            out.append(s)
    return out


def method_label(s: dict[str, Any]) -> str:
    return f"Opus (asked {s['kbps_asked']:g})" if s["baseline"] else f"{s['method']} ({levels_text(s['levels'])})"


def tokens_text(tokens_per_second: float | None) -> str:
    """Tokens per second as the tables show it; n/a for a classic codec."""
    return "n/a" if tokens_per_second is None else f"{tokens_per_second:g}"


def original_dnsmos_text(m: Measurements, files: list[str]) -> str:
    """'; DNSMOS of the originals: OVRL .., SIG .., BAK ..' (medians over `files`), or ''."""
    scores = [m.original_dnsmos[f] for f in dict.fromkeys(files) if f in m.original_dnsmos]
    if not scores:
        return ""
    medians = {key: statistics.median([s[key] for s in scores if math.isfinite(s[key])] or [math.nan]) for key in DNSMOS_KEYS}
    return "; DNSMOS of the originals: " + ", ".join(f"{key.split('_')[1].upper()} {metric_text(key, v)}" for key, v in medians.items())


def levels_text(levels: int) -> str:
    return f"{levels} level{'s' * (levels != 1)}"


def metric_text(key: str, value: float) -> str:
    """A metric as the tables show it: mel distance and STOI to 3 decimals, dB and PESQ to 2."""
    return "n/a" if not math.isfinite(value) else f"{value:.3f}" if key in ("mel_distance", "stoi") else f"{value:.2f}"


def write_audio_report(report: Report, m: Measurements, options: EvalOptions) -> None:
    metrics = [key for key, _ in METRICS if (key != "pesq" or m.with_pesq) and (key not in DNSMOS_KEYS or m.with_dnsmos)]
    summary = summarize(m.rows, metrics)
    names = list(m.plans)
    setup_section(report, m, options)
    rd_section(report, m, summary, metrics)
    spectrogram_section(report, m, options)
    stats = {name: level_stats(m.counts[name], m.plans[name].tok.codebook_sizes) for name in names}
    codebook_section(report, stats)
    determinism_section(report, m)
    if m.alignment:
        alignment_section(report, m.alignment)
    speed_section(report, m)
    report.results["audio"] = {
        "sample_rate": m.rate, "files": [str(f) for f in m.files], "seconds": m.seconds, "metrics": metrics,
        "pesq": pesq_note(m), "dnsmos": dnsmos_note(m), "dnsmos_original": m.original_dnsmos, "tokenizers": {name: tokenizer_facts(name, m) for name in names},
        "opus": opus_facts() if m.opus_kbps else None, "summary": summary, "per_clip": m.rows,
        "codebook": stats, "determinism": m.agreement, "opus_alignment": m.alignment, "timings_seconds": m.timings,
    }


def tokenizer_facts(name: str, m: Measurements) -> dict[str, Any]:
    plan = m.plans[name]
    tok = plan.tok
    return {"tokens_per_second": [tok.tokens_per_second(k) for k in plan.levels], "kbps": [tok.kbps(k) for k in plan.levels],
            "kbps_asked": plan.asked, "levels": plan.levels, "kind": tok.kind, "fingerprint": tok.fingerprint,
            "sample_rate": tok.sample_rate, "channels": tok.channels, "frame_rate": tok.frame_rate, "codebook_sizes": tok.codebook_sizes}


def opus_facts() -> dict[str, Any]:
    return {"encoder": "libopus via PyAV (FFmpeg)", "vbr": "off (hard CBR)", "application": APPLICATION,
            "frame_ms": FRAME_MS, "kbps_spent": "packet payload bits / clip duration (no container)"}


def pesq_note(m: Measurements) -> str:
    if m.with_pesq:
        return f"wide-band PESQ (P.862.2) at {PESQ_RATE // 1000} kHz (soxr-resampled)"
    if m.rate < PESQ_RATE:
        return f"unavailable: the evaluation rate {m.rate} Hz is below the {PESQ_RATE} Hz wide-band PESQ needs"
    return "unavailable: the optional `pesq` package is not installed (pip install pesq)"


def dnsmos_note(m: Measurements) -> str:
    if m.with_dnsmos:
        return (f"DNSMOS P.835 (speechmos's ONNX model via onnxruntime) on the output alone, at {DNSMOS_RATE // 1000} kHz "
                f"(soxr-resampled), {WINDOW_SECONDS:g} s windows at most {EVAL_HOP_SECONDS:g} s apart")
    return "unavailable: the optional `speechmos` and `onnxruntime` packages are not installed (pip install mmtok[eval])"


def setup_section(report: Report, m: Measurements, options: EvalOptions) -> None:
    section = report.section("What was measured")
    folders = sorted({f.parent.name for f in m.files})
    rates = {p.tok.sample_rate for p in m.plans.values()}
    section.text(
        f"{len(m.files)} files, {m.seconds / 60:.1f} min of audio"
        + (f", from the folders {', '.join(f'`{f}`' for f in folders)}" if len(folders) > 1 else "")
        + f". Everything is compared as **mono at {m.rate} Hz**"
        + (" (the tokenizers' rate)." if len(rates) == 1 else
           f" (the lowest of the tokenizers' rates {', '.join(f'{r} Hz' for r in sorted(rates))}; the others' output is resampled "
           "with soxr, so each is judged on the band all of them carry).")
    )
    section.text(
        "Tokenizers code each whole file the way `mmtok encode` / `mmtok decode` do (streaming, resampled to the tokenizer's "
        "rate and channels); each file is encoded once with the most levels measured and each lower bitrate decodes the first "
        "k levels, which is the k-level code. Bitrates: "
        + ("`--kbps` " + ", ".join(f"{k:g}" for k in options.kbps) if options.kbps
           else f"every one each tokenizer offers up to {DEFAULT_MAX_KBPS:g} kbps")
        + ". **kbps spent** counts the bits of the codes (frames x levels x log2 codebook size, the last partial frame included)."
    )
    rows = [[name, ", ".join(f"{p.tok.tokens_per_second(k):g}" for k in p.levels), ", ".join(f"{p.tok.kbps(k):g}" for k in p.levels),
             f"{p.tok.tokens_per_second(1):g}", f"{p.tok.kbps(1):g}", p.tok.kind, p.tok.sample_rate, p.tok.channels,
             f"{len(p.tok.codebook_sizes)} x {p.tok.codebook_sizes[0]}"] for name, p in m.plans.items()]
    section.table(["tokenizer", "tokens/s measured", "kbps measured", "tokens/s per level", "kbps per level", "kind", "Hz",
                   "channels", "levels x codes"], rows,
                  "tokens/s: LLM tokens per second of audio (frames per second x levels, one token per code)")
    if m.opus_kbps:
        codec_rate = opus_rate(m.rate)
        section.text(
            f"**Opus** (libopus through PyAV, in memory): hard CBR, `application={APPLICATION}`, {FRAME_MS:g} ms frames, at the same "
            "asked bitrates; it is given the whole-byte packet size at or below the asked rate and plotted at the bitrate it really "
            "spent (packet payload, no container: an Ogg file would add about 0.75 kbps). "
            + (f"Not run at {', '.join(f'{k:g}' for k in m.opus_skipped)} kbps: below {MIN_KBPS:g} kbps an Opus packet is its "
               "1-byte header alone and decodes to silence. " if m.opus_skipped else "")
            + (f"Opus has no {m.rate} Hz mode: the audio is resampled (soxr) to {codec_rate} Hz for it and back. " if codec_rate != m.rate
               else f"Opus codes at {m.rate} Hz; its decoder's 48 kHz output is resampled (soxr) back. ")
            + "The decoder drops the encoder's look-ahead, so the output is sample-aligned (see the alignment check below)."
        )
    section.text(
        "Metrics, per file, then the median over files: **mel distance** (multi-scale log-mel L1, lower is better), **SI-SDR** "
        "(dB; scale-invariant waveform error, higher is better), **STOI** (intelligibility 0..1), "
        + (f"**PESQ** (wide-band, ITU-T P.862.2, on both signals resampled to {PESQ_RATE // 1000} kHz with soxr; MOS 1..4.6, "
           "higher is better; a speech metric, n/a on silence)." if m.with_pesq
           else f"PESQ {pesq_note(m)}.")
        + " They are the numbers `mmtok compare` prints for the same reconstruction. "
        + ("**DNSMOS** (P.835, Reddy et al. 2022: a network trained on listener ratings predicts, from the output alone with no "
           "reference, **OVRL** overall quality, **SIG** speech distortion and **BAK** background intrusiveness, each 1..5, "
           f"higher is better; {dnsmos_note(m)}; n/a on silence). It is made for speech: on music it says little. It falls with added noise, coarse quantisation "
           "and lower codec bitrates, but barely notices band-limiting (speech low-passed at 2 kHz scores like the original; "
           "`benchmarks/dnsmos_sanity.py`), so read it with mel distance and STOI, which do. "
           if m.with_dnsmos else f"DNSMOS {dnsmos_note(m)}. ")
        + "Per-file numbers are in `results.json`."
    )


def rd_section(report: Report, m: Measurements, summary: list[dict[str, Any]], metrics: list[str]) -> None:
    section = report.section("Rate–distortion")
    section.text("How to read this: each line is a method, each point a bitrate, placed at the bits it really spent; up and to "
                 "the left is better, except for mel distance (lower is better). SI-SDR punishes codecs that do not keep the "
                 "waveform (Opus's SILK speech mode, most neural codecs), so read it with the others.")
    groups = list(dict.fromkeys(s["group"] for s in summary))
    shown = groups[1:] if len(groups) > 1 else groups   # by folder when there are several
    curves = {}
    for group in shown:
        rows = [s for s in summary if s["group"] == group]
        curves[group] = []
        for method in dict.fromkeys(s["method"] for s in rows):
            points = sorted((s for s in rows if s["method"] == method), key=lambda s: s["kbps_spent"])
            baseline = points[0]["baseline"]
            curves[group].append(Curve(
                "Opus (at kbps spent; label: asked)" if baseline else method, [s["kbps_spent"] for s in points],
                {key: [s[f"{key}_median"] for s in points] for key in metrics},
                [f"{s['kbps_asked']:g}" for s in points] if baseline else None, baseline,
            ))
    labels = [(key, label + " (median)") for key, label in METRICS if key in metrics and (key not in DNSMOS_KEYS or key == PLOTTED_DNSMOS)]
    path = save_rate_distortion(curves, labels, report.figure_path("rate_distortion.png"))
    section.figure(path, "Medians over files" + (" per folder" if len(groups) > 1 else "") + "; Opus points labelled with the kbps asked.")
    columns = ["method", "tokens/s", "kbps spent", "kbps asked"] + [label for key, label in METRICS if key in metrics]
    for group in groups:
        rows = [[method_label(s), tokens_text(s["tokens_per_second"]), f"{s['kbps_spent']:.2f}", f"{s['kbps_asked']:g}"]
                + [metric_text(key, s[f"{key}_median"]) for key in metrics]
                for s in sorted((s for s in summary if s["group"] == group), key=lambda s: (s["kbps_asked"], s["baseline"]))]
        clips = next(s["clips"] for s in summary if s["group"] == group)
        undefined = {label: sum(s[f"{key}_undefined"] for s in summary if s["group"] == group) for key, label in METRICS if key in metrics}
        missing = ", ".join(f"{label.rsplit(' ', 1)[0]} in {n}" for label, n in undefined.items() if n)
        caption = (f"{group}: medians over {clips} files; tokens/s n/a for Opus (it makes no tokens)"
                   + (f"; undefined (silent or too short), left out: {missing} codings" if missing else "")
                   + original_dnsmos_text(m, [s["file"] for s in m.rows if group in (ALL, s["folder"])]))
        section.table(columns, rows, caption)


def spectrogram_section(report: Report, m: Measurements, options: EvalOptions) -> None:
    if not m.examples:
        return
    section = report.section("Spectrograms")
    section.text(f"The loudest {EXAMPLE_SECONDS:g} s of {len(m.examples)} files (spread over the list; `--examples`): the original "
                 "on top, then one row per method at its lowest, middle and highest bitrate. One dB scale per file (the original's "
                 "loudest mel bin down 80 dB), so a darker panel is quieter, and missing bands show as dark rows.")
    methods = list(m.plans) + ([OPUS] if m.opus_kbps else [])
    for i, (name, shown) in enumerate(m.examples.items()):
        grid = []
        for method in methods:
            cells = sorted(((k, v) for k, v in shown.items() if isinstance(k, tuple) and k[0] == method), key=lambda kv: kv[0][1])
            grid.append([(panel_title(method, row), audio) for (_, _), (audio, row) in cells])
        path = save_spectrograms(name, shown["original"], grid, m.rate, report.figure_path(f"spectrogram_{i + 1}.png"),
                                 start_seconds=shown["start_seconds"])
        section.figure(path, f"{name}: mel spectrograms of the original and the reconstructions")


def panel_title(method: str, row: dict[str, Any]) -> str:
    rate = (f"Opus asked {row['kbps_asked']:g}, spent {row['kbps_spent']:.2f} kbps" if row["baseline"]
            else f"{method} {row['tokens_per_second']:g} tokens/s, {row['kbps_nominal']:g} kbps ({levels_text(row['levels'])})")
    pesq = row.get("pesq", math.nan)
    scores = f"mel {row['mel_distance']:.3f}, STOI {row['stoi']:.2f}" + (f", PESQ {pesq:.2f}" if math.isfinite(pesq) else "")
    return f"{rate}\n{scores}"


def codebook_section(report: Report, stats: dict[str, list[dict[str, Any]]]) -> None:
    section = report.section("Codebook usage per residual level")
    section.text("How to read this: over all the codes of all files, how much of each level's codebook is used and its perplexity "
                 "(exp of the code entropy: the number of equally likely codes that would carry as much information). Low usage "
                 "or perplexity far below the codebook size means bits spent on codes that never come.")
    path = save_codebook_levels(stats, report.figure_path("codebook_levels.png"))
    section.figure(path, "Usage and perplexity per residual level")
    rows = [[name, s["level"], f"{s['used']} / {s['codebook_size']}", f"{100 * s['usage']:.1f}", f"{s['perplexity']:.0f}"]
            for name, levels in stats.items() for s in levels]
    counts = ", ".join(f"{name} {levels[0]['codes']:,}" for name, levels in stats.items())
    section.table(["tokenizer", "level", "codes used", "usage %", "perplexity"], rows,
                  f"Codes per level: {counts} (more audio uses more of a codebook, so compare levels, not runs of different length)")


def determinism_section(report: Report, m: Measurements) -> None:
    section = report.section("Determinism")
    section.text(f"Up to {AGREEMENT_ITEMS} windows of {AGREEMENT_SECONDS:g} s cut from the evaluated files (non-overlapping, "
                 "spread through each file, an equal share per file; one zero-padded window from a shorter file), at each "
                 "tokenizer's rate and channels, encoded with "
                 f"the most levels measured: as one batch of {AGREEMENT_ITEMS} twice (**repeat**), and each window alone vs inside "
                 "the batch (**alone vs batch**). 1.0 = every code identical.")
    rows = [[name, a["items"], a["levels"], a["positions"], a["repeat"], a["alone_vs_batch"]] for name, a in m.agreement.items()]
    section.table(["tokenizer", "windows", "levels", "codes compared", "repeat", "alone vs batch"], rows)


def alignment_section(report: Report, a: dict[str, Any]) -> None:
    section = report.section("Opus alignment check")
    ok = a["best_lag"] == 0 and a["si_sdr_lag+0"] > max(a["si_sdr_lag-1"], a["si_sdr_lag+1"])
    section.text(f"Opus at {a['kbps']:g} kbps on `{a['file']}`: the best cross-correlation lag is {a['best_lag']:+d} samples "
                 f"(searched ±{a['searched_lag']}), and SI-SDR peaks at lag 0. "
                 + ("The decoded Opus is sample-aligned, so its SI-SDR is meaningful." if ok
                    else "**Warning: the decoded Opus is not sample-aligned; its SI-SDR is off.**"))
    section.table(["lag (samples)", "-2", "-1", "0", "+1", "+2"],
                  [["SI-SDR dB"] + [a[f"si_sdr_lag{lag:+d}"] for lag in (-2, -1, 0, 1, 2)]])


def speed_section(report: Report, m: Measurements) -> None:
    section = report.section("Speed")
    rows = []
    for name, plan in m.plans.items():
        encode, decode = m.timings["encode"][name], m.timings["decode"][name]
        rows.append([name, m.seconds / encode if encode else math.nan, m.seconds * len(plan.levels) / decode if decode else math.nan])
    section.table(["tokenizer", "encode x real time", "decode x real time"], rows,
                  "Seconds of audio per second of wall time on this machine (the streaming path, as `mmtok encode` / `decode`; "
                  "decode averaged over the bitrates)")
