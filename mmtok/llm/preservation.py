"""Does an extended LLM still behave like its base model on ordinary text?

`mmtok extend` records the base model's behaviour on the built-in sample
(`mmtok.llm.sample_text`) before it adds any row (`reference`), and measures the extended
model against it before writing anything (`measure`):

- mean KL(base ‖ extended) of the next-token distributions, nats per position;
- mean probability mass the extended model puts on the new ids (media and pad rows);
- greedy continuations (`CONTINUATION_TOKENS` tokens after every sample text) that are
  identical token for token. The base model generates them once; the extended model is
  then run once over text + continuation, and its continuation is identical exactly when
  its argmax equals the base model's at every continuation position (by induction: equal
  prefixes give equal next tokens). One forward instead of a second `generate`.

On text-only input the hidden states of the two models are the same (the text rows are
untouched), so the extended distribution is the base one with the new ids' logits appended:
p_ext(text i) = p_base(i) * (1 - m) with m the mass on new ids, hence KL = -log(1 - m) ≈ m.
The two bounds are one; both are printed because the mass is the easier one to read.

The bounds (`MAX_KL`, `MAX_NEW_MASS`, all continuations identical) are those of issue 13.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmtok.llm.sample_text import SAMPLE_TEXTS
from mmtok.llm.sequence import left_padded, pad_id_of

MAX_KL = 1e-3              # nats per position
MAX_NEW_MASS = 1e-3        # probability on new ids, mean over positions
CONTINUATION_TOKENS = 16   # greedy tokens compared after each sample text


@dataclass
class Reference:
    """The base model on the sample: what the extended one must reproduce."""

    ids: list[torch.Tensor]          # per text: [L_i + CONTINUATION_TOKENS] text + greedy continuation
    hidden: torch.Tensor             # [P,D] float32 input of the output layer (P = sum of lengths)
    log_probs: torch.Tensor          # [P,N] float32 next-token log-probabilities, N text ids
    log_normaliser: torch.Tensor     # [P] log-sum-exp of the base logits
    greedy_at: torch.Tensor          # [texts, CONTINUATION_TOKENS] positions (in P) predicting the continuation


@dataclass
class Preservation:
    """The checked figures."""

    kl: float               # mean KL(base ‖ extended), nats per position
    new_mass: float         # mean probability on new ids
    max_new_mass: float     # the largest at any position
    identical: int          # greedy continuations identical token for token
    prompts: int            # of this many
    positions: int

    @property
    def ok(self) -> bool:
        return self.kl <= MAX_KL and self.new_mass <= MAX_NEW_MASS and self.identical == self.prompts

    def describe(self) -> str:
        return (
            f"text behaviour on the built-in sample ({self.prompts} texts, {self.positions} positions): "
            f"KL(base||extended) {self.kl:.2e} nats/position (bound {MAX_KL:.0e}), "
            f"mass on new ids {self.new_mass:.2e} (bound {MAX_NEW_MASS:.0e}; max at one position {self.max_new_mass:.2e}), "
            f"greedy continuations identical {self.identical}/{self.prompts}"
        )


def _encode(text_tok, texts) -> list[torch.Tensor]:
    # split_special_tokens: the sample is plain text, whatever strings it holds
    return [torch.tensor(text_tok(t, split_special_tokens=True)["input_ids"], dtype=torch.long) for t in texts]


@torch.no_grad()
def _forward(model, ids: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(what enters the output layer `[P,D]`, logits `[P,V]`) of every text, one forward each.
    The output layer's input is caught by a hook: it is what multiplies the new rows, in
    every architecture (a final norm, a projection, ...)."""
    hidden, logits = [], []
    hook = model.get_output_embeddings().register_forward_pre_hook(lambda _, args: hidden.append(args[0][0].float()))
    try:
        for x in ids:
            logits.append(model(x[None]).logits[0].float())
    finally:
        hook.remove()
    return torch.cat(hidden), torch.cat(logits)


@torch.no_grad()
def _greedy(model, ids: list[torch.Tensor], pad_id: int) -> torch.Tensor:
    """`[texts, CONTINUATION_TOKENS]` greedy continuations, all texts in one left-padded batch."""
    batch = left_padded(ids, pad_id)
    out = model.generate(
        **batch, do_sample=False, max_new_tokens=CONTINUATION_TOKENS,
        min_new_tokens=CONTINUATION_TOKENS, pad_token_id=pad_id, eos_token_id=None,
        temperature=None, top_p=None, top_k=None,
    )
    return out[:, batch["input_ids"].shape[1]:]


def reference(model, text_tok, texts: tuple[str, ...] = SAMPLE_TEXTS) -> Reference:
    """Record the base `model` on `texts` and their greedy continuations (call before
    adding any row)."""
    model.eval()
    prompts = _encode(text_tok, texts)
    continuations = _greedy(model, prompts, pad_id_of(text_tok))
    ids = [torch.cat([p, c]) for p, c in zip(prompts, continuations)]
    hidden, logits = _forward(model, ids)
    ends = torch.cumsum(torch.tensor([x.numel() for x in ids]), 0)
    # position L-1+k of a text of L tokens predicts continuation token k
    greedy_at = ends[:, None] - 1 - CONTINUATION_TOKENS + torch.arange(CONTINUATION_TOKENS)[None]
    return Reference(ids, hidden, logits.log_softmax(-1), logits.logsumexp(-1), greedy_at)


def measure(model, ref: Reference, text_vocab_size: int) -> Preservation:
    """Compare the extended `model` with the base model's `ref` on the same token ids."""
    model.eval()
    _, logits = _forward(model, ref.ids)
    log_probs = logits.log_softmax(-1)
    base = ref.log_probs
    kl = (base.exp() * (base - log_probs[:, :text_vocab_size])).sum(-1)
    new_mass = log_probs[:, text_vocab_size:].exp().sum(-1)
    same = (log_probs.argmax(-1)[ref.greedy_at] == base.argmax(-1)[ref.greedy_at]).all(-1)
    return Preservation(
        kl=float(kl.mean()), new_mass=float(new_mass.mean()), max_new_mass=float(new_mass.max()),
        identical=int(same.sum()), prompts=len(ref.ids), positions=int(kl.numel()),
    )


def predicted_new_mass(ref: Reference, new_logits: torch.Tensor, total: int | None = None) -> float:
    """Mean mass on new ids if their logits at the sample's positions were `new_logits
    [P,k]` (from `ref.hidden` and candidate rows): cheap enough to try many
    initialisations. `k` may be a sample of `total` ids (default k), all sharing a logit
    when k is 1: their exp-sum is then scaled by total / k."""
    total = total or new_logits.shape[1]
    log_new = new_logits.float().logsumexp(-1) + torch.log(torch.tensor(total / new_logits.shape[1]))
    return float(torch.sigmoid(log_new - ref.log_normaliser).mean())
