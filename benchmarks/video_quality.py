"""Video tokenizer quality vs. H.264 at the same bits, through `mmtok eval`.

Runs `mmtok eval` (in-process, `mmtok.cli.main.run`) on the held-out clips of the tokenizer's
recipe (`--heldout`, default the tokenizer folder's recipe.yaml; `--all-files` for every clip)
with H.264 (libx264) matched to the tokenizer's bits on every clip and swept over CRFs. mmtok
eval writes its report (report.html, report.md, results.json, figures/) into --out; this
script reads that results.json and prints, and writes as comparison.md next to it:

- per method: clips, bpp, PSNR, SSIM and temporal flicker (median and mean over clips), and
  for H.264 the CRF and the bits it spent against the tokenizer's;
- each tokenizer against H.264 at its bits, clip by clip: the bpp ratio, the median PSNR /
  SSIM / flicker difference and on how many clips the tokenizer is better, and (from the CRF
  sweep) the bpp at which H.264 reaches the tokenizer's mean PSNR;
- with `--image-tokenizer`, each video tokenizer against that image tokenizer coding every
  frame alone (mmtok eval's per-frame baseline): bits ratio, PSNR and flicker differences.

    python benchmarks/video_quality.py --tokenizer tokenizers_trained/mmtok-video-f8t4 \
        --image-tokenizer tokenizers_trained/mmtok-image-f16 --data ../shared/corpus/video --out runs/bench-video-quality
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quality_common import check_dropped, drop_options, eval_parser, evaluate, num, paired, ratio, show, table

from mmtok.eval.video_report import h264_note

DROPPED = {
    "--x264-preset": "mmtok eval runs libx264 with preset medium (mmtok.eval.baselines.h264.PRESET)",
    "--h264-iters": "mmtok eval bisects the CRF with its own trial count (mmtok.eval.baselines.h264.ITERATIONS)",
    "--figure-clips": "use --examples (mmtok eval's frame strips show that many clips, spread over the list)",
    "--strip-frames": "mmtok eval's strips show 5 frames per clip",
}


def parse_args(argv: list[str] | None = None):
    p = eval_parser(__doc__.split("\n\n")[0], "video", Path("../shared/corpus/video"), Path("runs/bench-video-quality"),
                    limit_aliases=("--clips",))
    p.add_argument("--no-h264", action="store_true", help="measure the tokenizers only (no comparison)")
    p.add_argument("--image-tokenizer", action="append", default=[], metavar="[NAME=]PATH",
                   help="an image tokenizer coded frame by frame, the baseline a video tokenizer must beat (repeatable)")
    drop_options(p, DROPPED)
    args = p.parse_args(argv)
    check_dropped(p, args, DROPPED)
    return args


def summary_table(res: dict[str, Any]) -> str:
    rows = [[s["method"], s["clips"], num(s["bpp_median"], ".4f"), num(s["bpp_mean"], ".4f"), num(s["psnr_median"], ".2f"),
             num(s["psnr_mean"], ".2f"), num(s["ssim_median"], ".4f"), num(s["ssim_mean"], ".4f"),
             num(s["flicker_median"], ".4f"), num(s["flicker_mean"], ".4f"), h264_note(s)] for s in res["summary"]]
    return table(["method", "clips", "bpp median", "bpp mean", "PSNR median (dB)", "PSNR mean (dB)", "SSIM median", "SSIM mean",
                  "flicker median", "flicker mean", "H.264"], rows)


def comparison_table(res: dict[str, Any]) -> str:
    """Each tokenizer vs H.264 at its bits, paired clip by clip."""
    clips = res["per_clip"]
    rows = []
    for s in (s for s in res["summary"] if s["kind"] == "tokenizer"):
        h = next((t for t in res["summary"] if t.get("matches") == s["method"]), None)
        if h is None:
            continue
        pairs = [(r["methods"][s["method"]], r["methods"][h["method"]]) for r in clips]
        d_psnr = paired((a["psnr"], b["psnr"]) for a, b in pairs)
        d_ssim = paired((a["ssim"], b["ssim"]) for a, b in pairs)
        d_flicker = paired(((a["flicker"], b["flicker"]) for a, b in pairs), higher_is_better=False)
        same = s.get("h264_bpp_at_same_psnr")
        rows.append([s["method"], num(ratio(s["bpp_mean"], h["bpp_mean"]), ".3f"), d_psnr.cell("+.2f"), num(d_psnr.mean, "+.2f"),
                     d_ssim.cell("+.4f"), d_flicker.cell("+.4f"), num(same, ".4f"), num(ratio(s["bpp_mean"], same), ".1f")])
    return table(["tokenizer", "bpp ratio (tokenizer / H.264)", "PSNR diff median dB (tokenizer better on)", "PSNR diff mean dB",
                  "SSIM diff median (better on)", "flicker diff median (better on)", "H.264 bpp at the same mean PSNR",
                  "bits ratio at the same PSNR (tokenizer / H.264)"], rows)


def per_frame(res: dict[str, Any], name: str) -> bool:
    return res["tokenizers"][name]["kind"].endswith("(per frame)")


def per_frame_table(res: dict[str, Any]) -> str:
    """Each video tokenizer vs each image tokenizer coding every frame alone, paired clip by clip."""
    clips = res["per_clip"]
    names = [s["method"] for s in res["summary"] if s["kind"] == "tokenizer"]
    rows = []
    for v in (n for n in names if not per_frame(res, n)):
        for i in (n for n in names if per_frame(res, n)):
            pairs = [(r["methods"][v], r["methods"][i]) for r in clips]
            bpp = ratio(sum(a["bits"] for a, _ in pairs), sum(b["bits"] for _, b in pairs))
            d_psnr = paired((a["psnr"], b["psnr"]) for a, b in pairs)
            d_flicker = paired(((a["flicker"], b["flicker"]) for a, b in pairs), higher_is_better=False)
            rows.append([v, i, num(bpp, ".3f"), d_psnr.cell("+.2f"), num(d_psnr.mean, "+.2f"), d_flicker.cell("+.4f")])
    return table(["video tokenizer", "image tokenizer per frame", "bits ratio (video / per frame)",
                  "PSNR diff median dB (video better on)", "PSNR diff mean dB", "flicker diff median (video better on)"], rows)


def notes(res: dict[str, Any]) -> list[str]:
    out = []
    cut = [r for r in res["per_clip"] if r["frames"] < r["source_frames"]]
    if cut:
        out.append(f"{len(cut)} clip(s) measured on their first frames only (mmtok eval reads at most {res['max_frames']} frames, "
                   f"{res['max_pixels'] / 1e6:.0f} M pixels per clip): " + ", ".join(f"{r['file']} ({r['frames']} of "
                                                                                      f"{r['source_frames']})" for r in cut))
    h = res.get("h264")
    if h:
        out.append(f"H.264: {h['encoder']} (libavcodec {h['libavcodec']}), preset {h['preset']}, {h['pix_fmt']}; {h['matched']}; "
                   f"bits: {h['bits']}")
    sweep = res.get("sweep") or []
    for s in res["summary"]:
        if s["kind"] == "tokenizer" and sweep and s.get("h264_bpp_at_same_psnr") is None:
            coarsest = max(sweep, key=lambda p: p["crf"])
            if s["psnr_mean"] < coarsest["psnr"]:
                out.append(f"{s['method']} ({s['psnr_mean']:.2f} dB mean PSNR): even H.264 at CRF {coarsest['crf']:g} is better "
                           f"({coarsest['psnr']:.2f} dB at {coarsest['bpp']:.4f} bpp, "
                           f"{num(ratio(s['bpp_mean'], coarsest['bpp']), '.1f')}x fewer bits)")
            else:
                out.append(f"{s['method']}: H.264 needs more bits than the sweep's finest CRF for its mean PSNR")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra = ["--no-baselines"] if args.no_h264 else ["--baseline", "h264"]
    for spec in args.image_tokenizer:
        extra += ["-t", spec]
    res, folder = evaluate(args, "video", args.data or [Path("../shared/corpus/video")], extra)
    rows = res["per_clip"]
    tokenizers = "; ".join(f"{name} ({'per frame, ' * per_frame(res, name)}f={t['spatial_downsample']}, "
                           f"ft={t['temporal_downsample']}, K={t['codebook_size']})" for name, t in res["tokenizers"].items())
    head = f"{tokenizers} on {len(rows)} clips, {sum(r['frames'] for r in rows)} frames, each at its own size and frame rate"
    text = f"{head}\n\nMedians and means over clips:\n\n{summary_table(res)}\n"
    if res.get("h264"):
        text += f"\nTokenizer vs. H.264 at its bits, clip by clip (tokenizer minus H.264):\n\n{comparison_table(res)}\n"
    if any(per_frame(res, n) for n in res["tokenizers"]):
        text += f"\nVideo tokenizer vs. an image tokenizer frame by frame, clip by clip (video minus per frame):\n\n{per_frame_table(res)}\n"
    text += "".join(f"\n- {line}" for line in notes(res))
    return show(args, folder, f"Video quality: {', '.join(res['tokenizers'])} vs. H.264", text)


if __name__ == "__main__":
    sys.exit(main())
