"""Guarantees of the pretrained image tokenizers (Janus, Chameleon, GLM-Image), measured: codes
equal to transformers' own quantizer, batch invariance, half precision, and what happens to
sizes other than the model's one resolution (GLM-Image: its processor's dynamic one). Prints a
markdown table.

The hub is unreachable here, so the models are random-init at the published architecture
(`--size full`: JanusVQVAEConfig with num_patches 24 and Janus' 384 px processor;
ChameleonVQVAEConfig defaults and Chameleon's 512 px processor; GLM-Image's published widths,
a 1536-wide ViT and a 16,384 x 2048 codebook, with `--glm-depth` of its 40 ViT blocks, and its
processor) or the tests' tiny configs (`--size tiny`). Random weights exercise the code path
and the arithmetic (rounding, batch shapes), not the trained codebook's margins: agreement
figures for trained weights may differ. Images: the committed photos under
tests/media/images (each of its own size; the processor resizes them all).

    python benchmarks/pretrained_image_guarantees.py --size full              # 384 / 512 px: slow on CPU
    python benchmarks/pretrained_image_guarantees.py --size full --side 128   # same layers, fewer pixels

Columns: `tokens / image`: at 1024x1024; `= reference`: codes of mmtok's exact nearest-code
search vs the family's own search done the plain way (full distance matrix, argmin) on the
same pixels (%); `= transformers encode`: vs transformers' `encode` (Chameleon: the same thing;
Janus: transformers searches by Euclidean distance where Janus searches by cosine, see
mmtok/pretrained/janus.py; GLM-Image: `get_image_features` + `get_image_tokens`, the same
thing); `batch`: codes of all photos in one batch vs one at a time (%; GLM-Image: the photos'
patches packed into one ViT call, as the GLM-Image model does with several images); `fp16` /
`bf16`: codes with the model in that dtype vs float32 (%; "not run" for the full architectures
on CPU, where half-precision convolutions take ~200x float32's time on this machine: 46 s vs
0.2 s for one 128-channel 3x3 conv at 128x128, 1 thread); `large`: a 4000x3000 image: its grid,
encode time and peak memory above the loaded model (the processor shrinks it first: no tiling).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import measure_peak  # noqa: E402

import mmtok.pretrained.chameleon as chameleon  # noqa: E402
import mmtok.pretrained.glm_image as glm_image  # noqa: E402
import mmtok.pretrained.janus as janus  # noqa: E402
from mmtok.errors import first_line  # noqa: E402
from mmtok.media.image import read_image, to_model  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "media" / "images"
SIDES = ((256, 256), (512, 512), (1024, 1024), (1080, 1920))


def models(size: str, side: int | None, glm_depth: int) -> dict[str, tuple[type, object, dict]]:
    """name -> (adapter class, transformers model, processor settings or None for the default);
    `side`: the processors' resolution instead of the published one (Janus, Chameleon; full
    architectures only); `glm_depth`: GLM-Image's ViT blocks (full architecture)."""
    from transformers import ChameleonVQVAE, ChameleonVQVAEConfig, GlmImageConfig, JanusVQVAE, JanusVQVAEConfig

    torch.manual_seed(0)
    glm_model = glm_image.tokenizer_model_class()
    if size == "full":
        janus_side, chameleon_side = side or 384, side or 512
        return {
            "janus": (janus.JanusImageTokenizer, JanusVQVAE(JanusVQVAEConfig(num_patches=janus_side // 16)),
                      None if side is None else {**janus.JanusImageTokenizer.default_processor, "size": {"height": side, "width": side}}),
            "chameleon": (chameleon.ChameleonImageTokenizer, ChameleonVQVAE(ChameleonVQVAEConfig(resolution=chameleon_side)),
                          None if side is None else {"size": {"shortest_edge": side}, "crop_size": {"height": side, "width": side}}),
            "glm-image": (glm_image.GlmImageTokenizer, glm_model(GlmImageConfig(vision_config={"depth": glm_depth})), None),
        }
    small = dict(embed_dim=4, num_embeddings=64, latent_channels=32, base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1)
    return {
        "janus": (janus.JanusImageTokenizer, JanusVQVAE(JanusVQVAEConfig(**small, num_patches=16)),
                  {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "size": {"height": 32, "width": 32}}),
        "chameleon": (chameleon.ChameleonImageTokenizer, ChameleonVQVAE(ChameleonVQVAEConfig(**small, resolution=32)),
                      {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}),
        # tests/test_image_glm.py's: 4 px patches, short side >= 32 px, long side <= 128 px (before halving)
        "glm-image": (glm_image.GlmImageTokenizer,
                      glm_model(GlmImageConfig(vision_config=dict(depth=1, hidden_size=32, num_heads=2, intermediate_size=64, image_size=32,
                                                                  patch_size=4),
                                               vq_config=dict(embed_dim=8, num_embeddings=64, latent_channels=32))),
                      {**glm_image.GLM_IMAGE_PROCESSOR, "min_pixels": 32 * 32, "max_pixels": 128 * 128, "patch_size": 4}),
    }


def percent_equal(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"{100 * (a == b).float().mean().item():.2f}"


@torch.no_grad()
def reference(name: str, model: torch.nn.Module, values: torch.Tensor, n: int) -> torch.Tensor:
    """The family's own codes by a plain (full distance matrix) search: Chameleon's is
    transformers' encode; Janus searches by cosine (see mmtok/pretrained/janus.py), which
    transformers' GLM-Image quantizer does, given Janus' codebook."""
    if name == "chameleon":
        return model.encode(values, return_dict=True).image_tokens.reshape(-1, n, n)
    from transformers import GlmImageVQVAEConfig
    from transformers.models.glm_image.modeling_glm_image import GlmImageVQVAEVectorQuantizer

    search = GlmImageVQVAEVectorQuantizer(GlmImageVQVAEConfig(embed_dim=model.config.embed_dim, num_embeddings=model.config.num_embeddings))
    search.embedding.weight.copy_(model.quantize.embedding.weight)
    return search(model.quant_conv(model.encoder(values)))[2].reshape(-1, n, n)


@torch.no_grad()
def glm_tokens(model: torch.nn.Module, photos: list[torch.Tensor], processor, device: str) -> torch.Tensor:
    """GLM-Image's image token ids of all `photos`, concatenated: the processor on them all,
    their patches packed into one `get_image_features` call, then `get_image_tokens`."""
    inputs = processor(images=[p.numpy() for p in photos], return_tensors="pt")
    features = model.get_image_features(inputs.pixel_values.to(device), inputs.image_grid_thw.to(device)).pooler_output
    return model.get_image_tokens(features).cpu()


@torch.no_grad()
def measure(name: str, cls: type, model: torch.nn.Module, processor: dict | None, half: bool, device: str) -> dict[str, str]:
    reference_model = copy.deepcopy(model).eval()  # transformers' own quantizer (the adapter installs mmtok's search)
    tok = cls.from_model(model.eval(), processor=cls.canonical_processor(processor)).to(device)
    reference_model.to(device)
    photos = [read_image(p) for p in sorted(PHOTOS.iterdir()) if p.suffix.lower() in (".jpg", ".png")]
    alone = torch.cat([tok.encode(to_model(p[None])).flatten() for p in photos]).cpu()  # every photo's codes, one after another
    if name == "glm-image":  # GLM-Image's own search is transformers' (cosine, full distance matrix)
        theirs = glm_tokens(reference_model, photos, tok.processor, device)
        own = theirs
        batch = glm_tokens(tok.model, photos, tok.processor, device)
    else:
        values = torch.cat([tok.pixel_values(to_model(p[None])) for p in photos]).to(device)
        n = tok.grid_shape(1, 1)[0]
        theirs = reference_model.encode(values, return_dict=True).image_tokens.cpu()
        own = reference(name, reference_model, values, n).cpu().flatten()
        # batch: every photo's pixel_values in one encode call (what mmtok does for a same-size batch)
        batch = tok.model.encode(values, return_dict=True).image_tokens.cpu()
    resolution = f"{tok.resolution} px" if tok.fixed_resolution else "dynamic"
    row = {"model": name, "resolution": resolution, "tokens / image": str(math.prod(tok.grid_shape(1024, 1024))),
           "codebook": str(tok.codebook_sizes[0]), "= reference": percent_equal(alone, own),
           "= transformers encode": percent_equal(alone, theirs), "batch": percent_equal(batch, alone)}
    for dtype, label in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        if not half:
            row[label] = "not run"
            continue
        try:
            tok.model.to(dtype)
            row[label] = percent_equal(torch.cat([tok.encode(to_model(p[None])).flatten() for p in photos]).cpu(), alone)
        except RuntimeError as err:
            row[label] = f"n/a ({first_line(err, 40)})"
        finally:
            tok.model.float()
    big = torch.nn.functional.interpolate(to_model(photos[0][None]), size=(3000, 4000), mode="bilinear")
    out = {}
    peak = measure_peak(lambda: out.setdefault("codes", tok.encode(big)))
    grid = out["codes"].shape[1:]
    row["large 4000x3000"] = f"{grid[0]}x{grid[1]}, {peak['wall_s']:.1f} s, +{peak['peak_above_baseline_mib']:.0f} MiB"
    row["grid at " + ", ".join(f"{w}x{h}" for h, w in SIDES)] = ", ".join("x".join(map(str, tok.grid_shape(h, w))) for h, w in SIDES)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--half", choices=("auto", "yes", "no"), default="auto",
                        help="measure fp16 / bf16 (auto: on CUDA, or for --size tiny; CPU half-precision convs are ~200x slower than float32 here)")
    parser.add_argument("--side", type=int, help="full architectures at this resolution (a multiple of 16) instead of 384 / 512 px: faster")
    parser.add_argument("--glm-depth", type=int, default=2,
                        help="GLM-Image's ViT blocks in the full architecture (published: 40; ~28M parameters each)")
    parser.add_argument("--only", nargs="+", choices=("janus", "chameleon", "glm-image"), help="measure these families only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    half = args.half == "yes" or (args.half == "auto" and (args.device != "cpu" or args.size == "tiny"))
    chosen = {name: spec for name, spec in models(args.size, args.side, args.glm_depth).items() if not args.only or name in args.only}
    rows = [measure(name, *spec, half, args.device) for name, spec in chosen.items()]
    header = list(rows[0])
    at = f" at {args.side} px" if args.side and args.size == "full" else ""
    at += f", GLM-Image ViT {args.glm_depth} of 40 blocks" if args.size == "full" and "glm-image" in chosen else ""
    print(f"pretrained image VQs, random init ({args.size} architecture{at}), {len(list(PHOTOS.iterdir()))} photos, {args.device}, {args.threads} thread(s)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row[h] for h in header) + " |")


if __name__ == "__main__":
    main()
