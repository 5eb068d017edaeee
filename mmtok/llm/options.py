"""The choices a user makes on the LLM side, as plain values. Nothing here imports torch:
the CLI lists them in `--help`.

- `StreamOptions`: how a tokenizer's codes are laid out in the LLM sequence (`mmtok extend`);
- `INITS`: how the new embedding rows start (`mmtok.llm.init`);
- `POLICIES`: what parsing does with a malformed generated span (`mmtok.llm.parse`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_DIM = 256                          # largest grid side a header can state
INITS = ("mean-noise", "codebook", "mean")
POLICIES = ("strict", "repair", "drop")


@dataclass(frozen=True)
class StreamOptions:
    """How a tokenizer's codes are laid out in the LLM sequence (chosen at extension time)."""

    row_separator: bool = False     # image / video: an id ends every row of codes
    frame_separator: bool = False   # video: an id ends every latent frame
    levels: int | None = None       # audio: keep only the first `levels` RVQ levels (None: all)
    max_dim: int = DEFAULT_MAX_DIM  # image / video: header dims run 1..max_dim
