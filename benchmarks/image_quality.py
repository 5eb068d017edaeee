"""Image tokenizer quality vs. JPEG, WebP and patch k-means at the same bits, through `mmtok eval`.

Runs `mmtok eval` (in-process, `mmtok.cli.main.run`) on the held-out images of the tokenizer's
recipe (`--heldout`, default the tokenizer folder's recipe.yaml; `--all-files` for every image)
with its image baselines: JPEG and WebP matched to the tokenizer's bits on every file, patch
k-means with the same codebook size and token grid (fitted on the recipe's training images).
mmtok eval writes its report (report.html, report.md, results.json, figures/) into --out; this
script reads that results.json and prints, and writes as comparison.md next to it:

- per method: bpp, PSNR and SSIM median and mean, MS-SSIM median, codebook usage and perplexity;
- each tokenizer against each baseline at its rate, file by file: the bpp ratio, the median
  (and mean) PSNR and SSIM difference, and on how many files the tokenizer is better.

    python benchmarks/image_quality.py --tokenizer tokenizers_trained/mmtok-image-f8 \
        --data ../shared/corpus/images --limit 40 --out runs/bench-image-quality
"""

from __future__ import annotations

import sys
from typing import Any

from quality_common import check_dropped, drop_options, eval_parser, evaluate, num, paired, ratio, show, table

BASELINES = ("jpeg", "webp", "kmeans")
KMEANS = "patch k-means"
DROPPED = {
    "--kmeans-patches": "mmtok eval fits k-means with its own bounds (mmtok.eval.image_eval: KMEANS_MAX_PATCHES, KMEANS_ITERS)",
    "--kmeans-iters": "mmtok eval fits k-means with its own bounds (mmtok.eval.image_eval: KMEANS_ITERS)",
    "--kmeans-init": "mmtok eval seeds k-means with k-means++",
    "--grid-images": "use --examples (the files shown in the report's pictures)",
}


def parse_args(argv: list[str] | None = None):
    p = eval_parser(__doc__.split("\n\n")[0], "image", None, None)
    p.add_argument("--baseline", choices=BASELINES, action="append", default=None,
                   help="baseline to compare with (repeatable; default: all three)")
    drop_options(p, DROPPED)
    args = p.parse_args(argv)
    check_dropped(p, args, DROPPED)
    if not args.data and not args.from_report:
        p.error("--data is required (or --from-report DIR)")
    return args


def methods(res: dict[str, Any]) -> tuple[list[dict], list[str]]:
    """(the columns of the comparison, notes): each tokenizer; each codec matched to a
    tokenizer's bits (`matches`: the tokenizers whose budget it met); patch k-means, which
    matches the tokenizers with its codebook size and patch."""
    out, notes = [], []
    for name, tok in res["tokenizers"].items():
        out.append({"name": name, "family": "tokenizer", "summary": tok["summary"], "per_image": tok["per_image"], "matches": []})
    for family in ("jpeg", "webp"):
        codec = res["baselines"].get(family)
        for label, matched in (codec or {}).get("matched", {}).items():
            out.append({"name": f"{codec['codec']} @ {label}", "family": family, "summary": matched["summary"],
                        "per_image": matched["per_image"], "matches": label.split("/")})
    fit = res["baselines"].get("kmeans")
    if fit and "skipped" in fit:
        notes.append(f"{KMEANS} skipped by mmtok eval: {fit['skipped']}")
    elif fit:
        same = [name for name, tok in res["tokenizers"].items()
                if tok["codebook_sizes"][0] == fit["codebook_size"] and tok["downsample"] == fit["patch"]]
        out.append({"name": KMEANS, "family": "kmeans", "summary": fit["summary"], "per_image": fit["per_image"], "matches": same})
        where = ("the evaluated images themselves, which favours it" if fit["fitted_on_evaluated_files"] else
                 f"{fit['train_files']} training images (of {fit['train_files_available']}; "
                 f"{fit['train_files_evaluated']} of them evaluated)")
        notes.append(f"{KMEANS}: {fit['codebook_size']} codes on {fit['patch']}x{fit['patch']} patches, fitted by mmtok eval on "
                     f"{fit['patches']} patches of {where}, {fit['init']}, {fit['iters']} Lloyd steps")
    return out, notes


def method_table(columns: list[dict]) -> str:
    rows = []
    for m in columns:
        s = m["summary"]
        over = f"{s['over_target']}/{s['images']}" if "over_target" in s else ""
        rows.append([m["name"], s["images"], num(s["bpp_mean"], ".4f"), num(s["psnr_median"], ".2f"), num(s["psnr_mean"], ".2f"),
                     num(s["ssim_median"], ".4f"), num(s["ssim_mean"], ".4f"), num(s.get("ms_ssim_median"), ".4f"),
                     num(s.get("usage"), ".1%"), num(s.get("perplexity"), ".0f"), over])
    return table(["method", "images", "bpp mean", "PSNR median (dB)", "PSNR mean (dB)", "SSIM median", "SSIM mean",
                  "MS-SSIM median", "usage", "perplexity", "over target"], rows)


def comparison_table(columns: list[dict]) -> str:
    """Each tokenizer vs each baseline at its rate, paired file by file."""
    rows = []
    for tok in (m for m in columns if m["family"] == "tokenizer"):
        mine = {r["name"]: r for r in tok["per_image"]}
        for base in (m for m in columns if tok["name"] in m["matches"]):
            theirs = {r["name"]: r for r in base["per_image"]}
            both = [n for n in mine if n in theirs]
            d_psnr = paired((mine[n]["psnr"], theirs[n]["psnr"]) for n in both)
            d_ssim = paired((mine[n]["ssim"], theirs[n]["ssim"]) for n in both)
            rows.append([tok["name"], base["name"], num(ratio(tok["summary"]["bpp_mean"], base["summary"]["bpp_mean"]), ".3f"),
                         d_psnr.cell("+.2f"), num(d_psnr.mean, "+.2f"), d_ssim.cell("+.4f"), num(d_ssim.mean, "+.4f")])
    return table(["tokenizer", "baseline", "bpp ratio (tokenizer / baseline)", "PSNR diff median dB (tokenizer better on)",
                  "PSNR diff mean dB", "SSIM diff median (better on)", "SSIM diff mean"], rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra = [x for b in args.baseline or () for x in ("--baseline", b)]
    res, folder = evaluate(args, "image", args.data or [], extra)
    columns, notes = methods(res)
    tokenizers = ", ".join(f"{name} (K={t['codebook_sizes'][0]}, f={t['downsample']})" for name, t in res["tokenizers"].items())
    head = f"{tokenizers} on {len(res['files'])} images, at their native size"
    text = (f"{head}\n\n{method_table(columns)}\n\n"
            "Tokenizer vs. each baseline at its rate, file by file (tokenizer minus baseline; JPEG / WebP spend at most "
            "the tokenizer's bits on each file unless `over target`):\n\n"
            f"{comparison_table(columns)}\n" + "".join(f"\n- {line}" for line in notes))
    return show(args, folder, f"Image quality: {', '.join(res['tokenizers'])}", text)


if __name__ == "__main__":
    sys.exit(main())
