"""Initial embedding rows for new media tokens, and the statistics that compare them.

Two jobs pull in opposite directions. The *input* rows must tell the media tokens apart
(identical rows give identical hidden states, and the model has to break that symmetry from
gradients alone). The *output* rows must leave the base model's text predictions alone: a
new id's logit is h·w for the hidden state h, and with thousands of new ids the largest of
thousands of such logits wins whenever w varies (issue 13: text-mean + full-spread noise on
SmolLM2 put 27 % of the next-token mass on media ids and broke greedy text).

Input rows (`mmtok extend --init`):

- `mean-noise` (default): the mean of the existing rows plus Gaussian noise with the
  existing rows' per-dimension standard deviation, so new rows look like text rows to the
  network (same norm, same spread) yet differ from each other from the first step.
- `codebook`: code rows are the tokenizer's codebook vectors, centred, mapped into the
  embedding space by a random orthonormal projection (distances kept up to one global
  scale) and scaled so their spread matches the text rows', then shifted to the text mean.
  Codes that are close in the tokenizer's latent space start close in the LLM. Rows that
  are not codes (start / end / header / separator) use `mean-noise`.
- `mean`: transformers' default (`resize_token_embeddings(mean_resizing=True)`, see
  `_init_added_embeddings_weights_with_mean`): the mean plus noise with covariance scaled by
  1e-9, so every new row is practically the same vector (pairwise cosine ~1.0). All media
  codes then produce identical hidden states at the start of training; that is why it is
  not our default.

Output rows. Hewitt ("Initializing new word embeddings for pretrained language models",
2021; the reason for transformers' `mean_resizing`) observes that a new output row equal to
the mean of the existing ones gets a logit h·mean = the mean text logit, which by Jensen's
inequality is at most log(mean(exp(text logits))): each new id gets at most 1/N of the
text mass (N text ids), and in a trained model far less, because its distribution is
peaked (SmolLM2: the mean logit lies ~20 nats below the log-normaliser). Identical output
rows cost nothing for learning: the gradient of an output row is sum_t (p - y) h_t, which
differs between ids as soon as they are targets in different contexts.

- Untied models: input rows as chosen by `--init`, output rows all equal to the text mean,
  moved by `shift` along minus the mean direction of the hidden states (`calibrate`).
- Tied models (SmolLM2) have one row for both jobs: the rows are the shifted mean plus the
  `--init` deviations scaled by `noise_scale` <= 1, the largest scale whose predicted mass on
  the built-in sample stays under `TARGET_MASS` (a tenth of the bound, for text the sample
  does not cover; when not even identical rows would keep the bound, the `--init` rows are
  kept whole and `mmtok extend` refuses). The cost is distinguishability: on SmolLM2 with 8,732 new rows the scale
  is 0.5 for mean-noise and 0.2 for codebook, the new rows' mean pairwise cosine 0.76 / 0.96
  instead of the text rows' 0.44 (transformers' `mean`: 1.0 to nine digits), their norm
  ~0.7-0.8x the text rows' (benchmarks/extend_preservation.py).

The shift is chosen on the base model's hidden states for the built-in sample
(`mmtok.llm.preservation`): try a few values, keep the one with the least predicted mass.
A random-init model (mmtok.llm.tiny) cannot meet the bound at all: its next-token
distribution is flat (log-normaliser - mean logit = log N) and its hidden states point every
way (the origin lies inside their convex hull), so no output row has a low logit at every
position; `mmtok extend` refuses it unless `--allow-drift`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmtok.llm.preservation import MAX_NEW_MASS, Reference, predicted_new_mass
from mmtok.llm.vocab import MediaVocab

TARGET_MASS = MAX_NEW_MASS / 10      # what calibration aims at on the sample
SHIFTS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0)     # x the mean text-row norm
NOISE_SCALES = (1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01, 0.0)


def mean_noise(existing: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` rows of mean + N(0, std^2) per dimension of `existing [N,D]` -> `[count,D]`."""
    mean, std = existing.mean(0), existing.std(0)
    return mean + torch.randn(count, existing.shape[1], generator=generator, dtype=existing.dtype) * std


def mean_only(existing: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """transformers' `mean_resizing`: mean + N(0, 1e-9 * covariance) -> `[count,D]`."""
    mean = existing.double().mean(0)
    centred = existing.double() - mean
    covariance = centred.T @ centred / existing.shape[0]
    # Eigen-decomposition instead of Cholesky: the covariance is often only semi-definite.
    values, vectors = torch.linalg.eigh(covariance * 1e-9)
    root = vectors * values.clamp_min(0).sqrt()
    noise = torch.randn(count, existing.shape[1], generator=generator, dtype=torch.float64) @ root.T
    return (mean + noise).to(existing.dtype)


def project_codebook(vectors: torch.Tensor, existing: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Codebook `vectors [n,d]` -> embedding rows `[n,D]` next to `existing [N,D]`.

    A random matrix with orthonormal rows (d <= D) or columns (d > D) keeps the centred
    codebook's geometry; one global scale makes the mean squared distance from the text mean
    equal to the text rows' own.
    """
    d, dim = vectors.shape[1], existing.shape[1]
    gaussian = torch.randn(max(d, dim), min(d, dim), generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(gaussian)                    # orthonormal columns
    projection = q.T if d <= dim else q                 # [d, D]
    centred = vectors.double() - vectors.double().mean(0)
    projected = centred @ projection
    mean = existing.double().mean(0)
    target = (existing.double() - mean).pow(2).sum(1).mean().sqrt()
    scale = target / projected.pow(2).sum(1).mean().sqrt().clamp_min(1e-12)
    return (mean + projected * scale).to(existing.dtype)


def new_rows(
    vocab: MediaVocab, existing: torch.Tensor, method: str, seed: int = 0,
) -> torch.Tensor:
    """Rows for ids `text_vocab_size .. embedding_rows` given the text rows `existing [N,D]`.

    Pad rows (beyond `vocab_size`) are initialised like the others: they are masked at
    generation but must be finite.
    """
    generator = torch.Generator().manual_seed(seed)
    existing = existing.detach().float()
    count = vocab.embedding_rows - vocab.text_vocab_size
    if method == "mean":
        return mean_only(existing, count, generator)
    rows = mean_noise(existing, count, generator)
    if method == "codebook":
        for stream in vocab.streams:
            vectors = vocab.tokenizer(stream.name).code_vectors()
            for (start, stop), v in zip(stream.code_ranges(), vectors):
                rows[start - vocab.text_vocab_size : stop - vocab.text_vocab_size] = project_codebook(v, existing, generator)
    return rows


@dataclass(frozen=True)
class Calibration:
    """How the new output rows were placed: `centre` `[D]` (the text mean moved by `shift`
    x the mean text-row norm along minus the hidden states' mean direction), the scale of
    the `--init` deviations kept in the output rows (tied models; 0 for untied output rows)
    and the mass on new ids predicted on the sample."""

    centre: torch.Tensor
    shift: float
    noise_scale: float
    predicted_mass: float


def calibrate(
    existing: torch.Tensor, count: int, ref: Reference, deviations: torch.Tensor | None = None,
    bias: float = 0.0,
) -> Calibration:
    """Place `count` new output rows next to the text rows `existing [N,D]`: the centre with
    the least predicted mass on new ids on the sample and, when `deviations [count,D]` (the
    `--init` rows minus the text mean) must be kept (tied embeddings), the largest scale for
    them whose predicted mass stays under `TARGET_MASS`. `bias`: the new ids' output bias."""
    existing = existing.detach().float()
    mean = existing.mean(0)
    direction = torch.nn.functional.normalize(ref.hidden.mean(0), dim=0)
    norm = existing.norm(dim=1).mean()

    def centre(shift: float) -> torch.Tensor:
        return mean - shift * norm * direction

    def shared_logit(shift: float) -> torch.Tensor:   # [P,1]: every row at the centre
        return (ref.hidden @ centre(shift) + bias)[:, None]

    best = min(SHIFTS, key=lambda s: predicted_new_mass(ref, shared_logit(s), count))
    if deviations is None:
        return Calibration(centre(best), best, 0.0, predicted_new_mass(ref, shared_logit(best), count))
    # logits are linear in the scale: one [P,count] product serves every candidate
    spread = ref.hidden @ deviations.float().T
    if predicted_new_mass(ref, shared_logit(best), count) > MAX_NEW_MASS:
        # Not even identical rows keep the bound (a random-init model, see above): keep the
        # --init rows whole rather than give up their differences for nothing.
        return Calibration(mean, 0.0, 1.0, predicted_new_mass(ref, shared_logit(0.0) + spread))
    for scale in NOISE_SCALES:
        mass = predicted_new_mass(ref, shared_logit(best) + scale * spread)
        if mass <= TARGET_MASS:
            break
    return Calibration(centre(best), best, scale, mass)


def embedding_stats(weight: torch.Tensor, rows: slice, reference: slice, sample: int = 2048, seed: int = 0) -> dict[str, float]:
    """How `weight[rows]` compares with `weight[reference]` (text rows): mean pairwise cosine
    among (up to `sample`) new rows and among reference rows, and the ratio of their mean
    L2 norms."""
    generator = torch.Generator().manual_seed(seed)

    def pick(part: torch.Tensor) -> torch.Tensor:
        if part.shape[0] <= sample:
            return part
        return part[torch.randperm(part.shape[0], generator=generator)[:sample]]

    def mean_cosine(part: torch.Tensor) -> float:
        unit = torch.nn.functional.normalize(part.double(), dim=1)
        sims = unit @ unit.T
        n = sims.shape[0]
        return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))

    new, text = pick(weight[rows].detach()), pick(weight[reference].detach())
    return {
        "new_mean_cosine": mean_cosine(new),
        "text_mean_cosine": mean_cosine(text),
        "norm_ratio": float(new.double().norm(dim=1).mean() / text.double().norm(dim=1).mean()),
    }
