"""Initial embedding rows for new media tokens, and the statistics that compare them.

Three choices (`mmtok extend --init`):

- `mean-noise` (default): the mean of the existing rows plus Gaussian noise with the
  existing rows' per-dimension standard deviation, so new rows look like text rows to the
  network (same norm, same spread) yet differ from each other from the first step.
- `codebook`: code rows are the tokenizer's codebook vectors, centred, mapped into the
  embedding space by a random orthonormal projection (distances kept up to one global
  scale) and scaled so their spread matches the text rows', then shifted to the text mean.
  Codes that are close in the tokenizer's latent space start close in the LLM. Rows that
  are not codes (start / end / header / separator) use `mean-noise`.
- `mean`: transformers' default (`resize_token_embeddings(mean_resizing=True)`): the mean
  plus noise with covariance scaled by 1e-9, so every new row is practically the same
  vector (pairwise cosine ~1.0). All media codes then produce identical logits and
  identical hidden states at the start of training, and the model has to break that
  symmetry from gradients alone; that is why it is not our default.
"""

from __future__ import annotations

import torch

from mmtok.llm.vocab import MediaVocab

INITS = ("mean-noise", "codebook", "mean")


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
