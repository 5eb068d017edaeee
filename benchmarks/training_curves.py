"""Training curves and quality per hour of training for shipped tokenizers, side by side.

Reads each folder's `train_log.jsonl` (one row every `log_every` steps with the window's
`steps_per_s`), rebuilds the wall time of the run from it, and writes:

- `training_curves.png`: the training figure (PSNR for image / video, mel distance for
  audio) against wall-clock minutes and against steps, one line per tokenizer;
- `training_cost.md` / `.json`: per tokenizer the hardware (from `--hardware NAME=TEXT`),
  steps, wall minutes of training, the last logged training figure, and the held-out median
  from its `report/results.json` when `mmtok eval` wrote one there.

    python benchmarks/training_curves.py tokenizers_trained/mmtok-image-f8 tokenizers_trained/mmtok-image-f16 \
        --hardware mmtok-image-f16="1x H200" --out runs/training-curves

The wall time counts training steps only (data loading included, start-up and checkpoints
that fall between logged windows excluded), so it compares recipes, not whole jobs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURES = {"image": ("psnr", "training-crop PSNR (dB)"), "video": ("psnr", "training-clip PSNR (dB)"),
           "audio": ("mel", "training mel distance (lower is better)")}


def read_log(folder: Path) -> tuple[str, list[dict]]:
    """(modality, log rows with `minutes` added). The modality comes from `config.json`, or from
    the recipe's kind for a folder that keeps a recipe and its log but no weights."""
    if (folder / "config.json").is_file():
        modality = json.loads((folder / "config.json").read_text())["modality"]
    else:
        modality = yaml.safe_load((folder / "recipe.yaml").read_text())["kind"].split("-")[0]
    rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines() if line.strip()]
    seconds, last = 0.0, 0
    for row in rows:  # each row covers the steps since the previous one at its window's speed
        seconds += (row["step"] - last) / row["steps_per_s"]
        row["minutes"], last = seconds / 60, row["step"]
    return modality, rows


def heldout_median(folder: Path) -> str:
    """The held-out median figure of `folder`'s own `mmtok eval` report, as text ('' without
    one): image PSNR, video PSNR, audio mel distance at the tokenizer's highest bitrate. The
    tokenizer is found in the report by its fingerprint, whatever name it was given there."""
    path = folder / "report" / "results.json"
    if not path.is_file() or not (folder / "config.json").is_file():
        return ""
    fingerprint = json.loads((folder / "config.json").read_text()).get("fingerprint")
    (modality, results), = json.loads(path.read_text()).items()
    name = next((n for n, t in results["tokenizers"].items() if t.get("fingerprint") == fingerprint), None)
    if name is None:
        return ""
    if modality == "image":
        return f"PSNR {results['tokenizers'][name]['summary']['psnr_median']:.2f} dB"
    own = [r for r in results["summary"] if r["method"] == name and r.get("kind", "tokenizer") == "tokenizer"
           and not r.get("baseline", False)]
    if modality == "video":
        return f"PSNR {own[0]['psnr_median']:.2f} dB" if own else ""
    top = max(own, key=lambda r: r["kbps_asked"]) if own else None
    return f"mel {top['mel_distance_median']:.3f} at {top['kbps_asked']:g} kbps ({top['group']})" if top else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--hardware", action="append", default=[], help="NAME=TEXT: what a tokenizer was trained on")
    p.add_argument("--cpu-step", action="append", default=[],
                   help="NAME=SECONDS: measured seconds per training step of that recipe on the CPU, for a "
                        "CPU-hours column when it was trained elsewhere (a GPU)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    hardware = dict(h.split("=", 1) for h in args.hardware)
    cpu_step = {name: float(seconds) for name, seconds in (c.split("=", 1) for c in args.cpu_step)}
    args.out.mkdir(parents=True, exist_ok=True)

    runs = {f.name: read_log(f) for f in args.folders}
    modalities = sorted({m for m, _ in runs.values()})
    fig, axes = plt.subplots(len(modalities), 2, figsize=(11, 3.6 * len(modalities)), squeeze=False)
    table = []
    for row_axes, modality in zip(axes, modalities):
        key, label = FIGURES[modality]
        for name, (m, rows) in runs.items():
            if m != modality:
                continue
            for ax, x in zip(row_axes, ("minutes", "step")):
                ax.plot([r[x] for r in rows], [r[key] for r in rows], label=f"{name} ({hardware.get(name, '?')})")
            last = rows[-1]
            table.append({"tokenizer": name, "modality": m, "hardware": hardware.get(name, ""), "steps": last["step"],
                          "train_minutes": round(last["minutes"], 1),
                          # on the CPU the wall time is the CPU time; elsewhere, steps x the CPU's s/step
                          "cpu_hours": round(last["step"] * cpu_step[name] / 3600, 2) if name in cpu_step
                          else round(last["minutes"] / 60, 2) if "CPU" in hardware.get(name, "") else None,
                          f"last_{key}": round(last[key], 3),
                          "heldout": heldout_median(args.folders[list(runs).index(name)])})
        for ax, x in zip(row_axes, ("wall-clock minutes of training", "step")):
            ax.set_xlabel(x), ax.set_ylabel(label), ax.grid(alpha=0.3), ax.legend(fontsize=8)
            ax.set_xscale("log")
    fig.tight_layout()
    fig.savefig(args.out / "training_curves.png", dpi=110)
    (args.out / "training_cost.json").write_text(json.dumps(table, indent=1))
    lines = ["| tokenizer | hardware | steps | training minutes | 2-core CPU hours (or equivalent) | last training figure | held-out median |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in table:
        figure = next(f"{k[5:]} {v}" for k, v in r.items() if k.startswith("last_"))
        cpu = "" if r["cpu_hours"] is None else f"{r['cpu_hours']}" + ("" if "CPU" in r["hardware"] else " (est.)")
        lines.append(f"| {r['tokenizer']} | {r['hardware']} | {r['steps']} | {r['train_minutes']} | {cpu} | {figure} | {r['heldout']} |")
    (args.out / "training_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
