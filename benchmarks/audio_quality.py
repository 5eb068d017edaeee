"""Audio tokenizer quality vs. Opus at the same bitrates, through `mmtok eval`.

Runs `mmtok eval` (in-process, `mmtok.cli.main.run`) on the held-out clips of the tokenizer's
recipe (`--heldout`, default the tokenizer folder's recipe.yaml; `--all-files` for every clip)
under --data (or only its `--subset` folders) at the `--kbps` bitrates, with Opus at the same
requested bitrates. mmtok eval writes its report (report.html, report.md, results.json,
figures/) into --out; this script reads that results.json and prints, and writes as
comparison.md next to it:

- per group (all files, then each folder, e.g. speech / voice / music when --data holds
  several), method and bitrate: kbps asked and spent, median and mean of each metric;
- each tokenizer against Opus at the same asked bitrate, clip by clip: kbps spent by each, and
  per metric the median difference (tokenizer minus Opus) and on how many clips it is better;
- the Opus alignment check.

    python benchmarks/audio_quality.py --tokenizer tokenizers_trained/mmtok-audio-24k \
        --data ../shared/corpus/audio --subset speech voice music --limit 24 --out runs/bench-audio-quality
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quality_common import check_dropped, drop_options, eval_parser, evaluate, num, paired, show, table

OPUS = "opus"
ALL = "all files"
NAMES = {"mel_distance": "mel dist.", "si_sdr": "SI-SDR (dB)", "stoi": "STOI", "pesq": "PESQ wb",
         "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK"}
LOWER_IS_BETTER = {"mel_distance"}
SHOWN = ("mel_distance", "si_sdr", "stoi", "pesq", "dnsmos_ovrl")   # DNSMOS SIG / BAK: in the report
DROPPED = {
    "--max-files": "use --limit (N files over all of --data, spread over the sorted list, not N per subset)",
    "--opus-vbr": "mmtok eval runs Opus in hard CBR (mmtok.eval.baselines.opus)",
    "--opus-application": "mmtok eval runs Opus with application=audio for every clip",
    "--opus-frame-ms": "mmtok eval runs Opus with 20 ms frames",
    "--figure-clip": "use --examples (mmtok eval's spectrograms show that many files, spread over the list)",
    "--figure-seconds": "mmtok eval's spectrograms show the loudest 4 s of each example",
}


def parse_args(argv: list[str] | None = None):
    p = eval_parser(__doc__.split("\n\n")[0], "audio", Path("../shared/corpus/audio"), Path("runs/bench-audio-quality"))
    p.add_argument("--subset", nargs="+", default=None, metavar="FOLDER",
                   help="measure only these folders of --data (e.g. speech voice music; default: all of --data); "
                        "`all` is accepted for all of --data")
    p.add_argument("--kbps", type=float, nargs="+", default=[1.5, 3.0, 6.0],
                   help="bitrates to compare (mmtok eval --kbps; default 1.5 3 6)")
    p.add_argument("--no-opus", action="store_true", help="measure the tokenizers only (no comparison)")
    drop_options(p, DROPPED)
    args = p.parse_args(argv)
    check_dropped(p, args, DROPPED)
    return args


def data_paths(args) -> list[Path]:
    data = args.data or [Path("../shared/corpus/audio")]
    if not args.subset or args.subset == ["all"]:
        return data
    paths = [folder / subset for folder in data for subset in args.subset]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing and not args.from_report:
        sys.exit(f"error: --subset: no such folder: {', '.join(missing)}")
    return paths


def spec(metric: str, sign: str = "") -> str:
    """Mel distance and STOI to 3 decimals, dB, PESQ and DNSMOS to 2 (as mmtok eval's tables)."""
    return sign + (".3f" if metric in ("mel_distance", "stoi") else ".2f")


def method_text(row: dict[str, Any]) -> str:
    """'Opus', or the tokenizer and its levels, of a summary or per-clip row."""
    if row["baseline"]:
        return "Opus"
    return f"{row['method']} ({row['levels']} level{'s' * (row['levels'] != 1)})"


def summary_table(res: dict[str, Any], metrics: list[str]) -> str:
    rows = []
    for s in sorted(res["summary"], key=lambda s: (s["group"] != ALL, s["group"], s["kbps_asked"], s["baseline"], s["method"])):
        rows.append([s["group"], method_text(s), f"{s['kbps_asked']:g}", num(s["kbps_spent"], ".2f"), s["clips"]]
                    + [num(s.get(f"{m}_{stat}"), spec(m))
                       for m in metrics for stat in ("median", "mean")])
    return table(["group", "method", "kbps asked", "kbps spent", "clips"]
                 + [f"{NAMES[m]} {stat}" for m in metrics for stat in ("median", "mean")], rows)


def comparison_table(res: dict[str, Any], metrics: list[str]) -> str:
    """Each tokenizer vs Opus at the same asked bitrate, paired clip by clip, per group."""
    clips = res["per_clip"]
    groups = [ALL] + sorted({r["folder"] for r in clips}) if len({r["folder"] for r in clips}) > 1 else [ALL]
    opus = {(r["file"], r["kbps_asked"]): r for r in clips if r["baseline"]}
    rows = []
    for group in groups:
        for name in res["tokenizers"]:
            for asked in sorted({r["kbps_asked"] for r in clips if r["method"] == name}):
                mine = [r for r in clips if r["method"] == name and r["kbps_asked"] == asked and group in (ALL, r["folder"])]
                pairs = [(r, opus[(r["file"], asked)]) for r in mine if (r["file"], asked) in opus]
                if not pairs:
                    continue
                spent = sum(a["kbps_spent"] * a["seconds"] for a, _ in pairs) / sum(a["seconds"] for a, _ in pairs)
                spent_opus = sum(b["kbps_spent"] * b["seconds"] for _, b in pairs) / sum(b["seconds"] for _, b in pairs)
                cells = [paired(((a.get(m), b.get(m)) for a, b in pairs), m not in LOWER_IS_BETTER)
                         .cell(spec(m, "+")) for m in metrics]
                rows.append([group, f"{asked:g}", method_text(mine[0]), f"{spent:.2f} / {spent_opus:.2f}", *cells])
    return table(["group", "kbps asked", "tokenizer", "kbps spent (tokenizer / Opus)"]
                 + [f"{NAMES[m]} diff median (better on)" for m in metrics], rows)


def notes(res: dict[str, Any]) -> list[str]:
    out = [f"PESQ: {res['pesq']}"]
    if "dnsmos" in res:
        out.append(f"DNSMOS: {res['dnsmos']}")
    opus = res.get("opus")
    if opus:
        out.append(f"Opus: {opus['encoder']}, vbr {opus['vbr']}, application {opus['application']}, {opus['frame_ms']:g} ms frames; "
                   f"kbps spent = {opus['kbps_spent']}")
        asked = {r["kbps_asked"] for r in res["per_clip"] if not r["baseline"]}
        ran = {r["kbps_asked"] for r in res["per_clip"] if r["baseline"]}
        if asked - ran:
            out.append(f"Opus not run at {', '.join(f'{k:g}' for k in sorted(asked - ran))} kbps (below the lowest rate it "
                       "codes; see the report)")
        for s in res["summary"]:
            if s["baseline"] and s["group"] == ALL and abs(s["kbps_spent"] - s["kbps_asked"]) > 0.1 * s["kbps_asked"]:
                out.append(f"Opus asked for {s['kbps_asked']:g} kbps spent {s['kbps_spent']:.2f} kbps (given "
                           f"{s['bitrate_set_kbps']:g} kbps: whole-byte CBR packets at or below the asked rate)")
    a = res.get("opus_alignment")
    if a:
        out.append(f"Opus alignment check ({a['file']}, {a['kbps']:g} kbps): best cross-correlation lag {a['best_lag']:+d} samples "
                   f"(searched +-{a['searched_lag']}); SI-SDR at lag -2..+2: "
                   + " / ".join(f"{a[f'si_sdr_lag{lag:+d}']:.1f}" for lag in (-2, -1, 0, 1, 2)) + " dB")
        if a["best_lag"] != 0:
            out.append("WARNING: the decoded Opus is not sample-aligned with its input; its SI-SDR is off")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra = [x for k in args.kbps for x in ("--kbps", f"{k:g}")] + (["--no-baselines"] if args.no_opus else ["--baseline", OPUS])
    res, folder = evaluate(args, "audio", data_paths(args), extra)
    metrics = [m for m in SHOWN if m in res["metrics"]]
    folders = sorted({r["folder"] for r in res["per_clip"]})
    head = (f"{', '.join(res['tokenizers'])} on {len(res['files'])} clips ({res['seconds'] / 60:.1f} min; folders "
            f"{', '.join(folders)}), compared as mono at {res['sample_rate']} Hz")
    text = f"{head}\n\nMedians and means over clips:\n\n{summary_table(res, metrics)}\n"
    if any(r["baseline"] for r in res["per_clip"]):
        text += ("\nTokenizer vs. Opus at the same asked bitrate, clip by clip (tokenizer minus Opus; mel distance: lower "
                 f"is better):\n\n{comparison_table(res, metrics)}\n")
    text += "".join(f"\n- {line}" for line in notes(res))
    return show(args, folder, f"Audio quality: {', '.join(res['tokenizers'])} vs. Opus", text)


if __name__ == "__main__":
    sys.exit(main())
