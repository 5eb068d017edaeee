"""What a media type is to the rest of mmtok: the `Modality` contract.

One object per media type, defined beside its code (`mmtok.image.modality.IMAGE`,
`mmtok.audio.modality.AUDIO`, `mmtok.video.modality.VIDEO`) and found by name or by file
suffix through `mmtok.modalities`. The command line, pre-tokenization, detokenization and
evaluation ask it instead of branching on the media-type string:

    modality = modality_of(tok)                                  # mmtok.modalities
    modality.encode_files(tok, ["clips/"], Path("tokens/"), progress=bar, fps=12)
    modality.decode_files(tok, ["tokens/"], Path("recon/"), fmt="mp4", progress=bar)
    modality.write_codes(tok, codes, Path("media-000.mp4"), fps=24.0)   # codes without a token file
    modality.scores(Path("a.mp4"), Path("recon/a.mp4"))          # {"PSNR": ..., "SSIM": ..., ...}

Each media type streams its files through one implementation (its `files` module), whose
block, window and chunk sizes the object names; `encode_file` is what every encoder of a
file gives, so codes agree by construction. The `original` facts a token file records are
the media type's part of the token-file schema (`mmtok.tokens_file.ORIGINAL_SCHEMA`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmtok.errors import MmtokError
from mmtok.files import Progress
from mmtok.layout import Layout
from mmtok.tokens_file import ORIGINAL_SCHEMA, TokenFile


@dataclass
class Held:
    """A media file read whole, exactly as its encoder takes it (see each `Modality.hold`)."""

    data: torch.Tensor              # image [3,H,W] uint8; audio [C,T] float32 at the tokenizer's rate; video [3,T,H,W] uint8
    blocks: tuple[int, ...] = ()    # audio: samples per block as read (the encoder sees the same pieces)


class Modality(ABC):
    """One media type: its files, how one file becomes a `TokenFile` and back, its quality metrics."""

    name: str                              # "image" | "audio" | "video", as `Tokenizer.modality`
    suffixes: frozenset[str]               # media files it reads (lower case, with the dot)
    formats: tuple[str, ...]               # formats `decode` writes; the first is the default
    encode_options: frozenset[str] = frozenset()   # `mmtok encode` options that apply (kbps, fps, ...)
    decode_options: frozenset[str] = frozenset()   # `mmtok decode` options that apply (batch_size)
    progress_unit: str                     # what `progress` counts: "file", "s" of audio, "frame"
    progress_unit_scale = False            # True: show k / M prefixes (hours of audio in seconds)
    baselines: tuple[str, ...] = ()        # classic codecs `mmtok eval` compares with
    also_evaluates: frozenset[str] = frozenset()  # tokenizers of these media types `evaluate` takes too (as baselines)
    batched = False                        # held files are coded in batches of one size (images), not one by one

    @property
    def default_format(self) -> str:
        return self.formats[0]

    @property
    def original_schema(self) -> dict[str, tuple[type, float, float, bool]]:
        """The `original` facts a token file of this media type records: name -> (type, min,
        max, required); `TokenFile.load` checks them."""
        return ORIGINAL_SCHEMA[self.name]

    def progress_label(self, tok: Any, **options: Any) -> str:
        """The progress bar's title for `mmtok encode` with these options."""
        return "encode"

    def check_format(self, fmt: str) -> None:
        if fmt not in self.formats:
            raise MmtokError(f"--format {fmt} does not fit a {self.name} tokenizer; use one of {self.formats}")

    @abstractmethod
    def encode_file(self, tok: Any, path: str | Path, **options: Any) -> TokenFile:
        """One media file -> its `TokenFile` (the codes every encoder of this file gives)."""

    @abstractmethod
    def encode_files(
        self, tok: Any, inputs: Iterable[str | Path], out: Path, progress: Progress | None = None, **options: Any,
    ) -> list[Path]:
        """Media files / folders -> `.mmtok` files under `out` (or `out` for one file); all
        inputs checked before anything is written, nothing left behind on failure."""

    @abstractmethod
    def decode_files(
        self, tok: Any, inputs: Iterable[str | Path], out: Path, fmt: str | None = None,
        progress: Progress | None = None, **options: Any,
    ) -> list[Path]:
        """`.mmtok` files / folders -> media files in `fmt` (default `default_format`) under `out`."""

    # -- files read in one process, coded in another (pre-tokenization) ------------------
    def reading(self, tok: Any) -> dict[str, Any]:
        """What `hold` needs to know of the tokenizer, for a process that holds no model."""
        return {}

    def coding_options(self, stream_options: Any) -> dict[str, Any]:
        """The `encode_file` / `encode_held` options an LLM stream's layout fixes (audio: `levels`)."""
        return {}

    @abstractmethod
    def stream_options(self, name: str, tok: Any, options: Any) -> tuple[Any, dict[str, Any]]:
        """For the LLM stream `name` of `tok` (`mmtok.llm.streams.make_stream`): the
        `StreamOptions` that apply to this media type (`options` with the others reset, so
        equal streams compare equal) and the `tok.token_layout` arguments they mean."""

    @abstractmethod
    def implied_layout(self, codebook_sizes: tuple[int, ...], options: Any) -> Layout:
        """The layout of a vocab stream entry written before layouts were recorded, from its
        codebook sizes and `StreamOptions` (what `token_layout` gives for them)."""

    @abstractmethod
    def hold(self, path: str | Path, **reading: Any) -> Held | None:
        """The file's media read whole, as `encode_held` takes it (`reading`: `reading(tok)`
        and the file's own options, e.g. video `fps`); None when too big to hold: the caller
        then streams the file with `encode_file`."""

    @abstractmethod
    def encode_held(self, tok: Any, held: Held, **coding: Any) -> torch.Tensor:
        """Codes of held media, equal to `encode_file`'s for the same file."""

    def held_grid(self, tok: Any, held: Held) -> tuple[int, ...] | None:
        """The code grid `held` will get, if it is known before encoding (to refuse early)."""
        return None

    # -- codes without a token file ------------------------------------------------------
    @abstractmethod
    def write_codes(self, tok: Any, codes: torch.Tensor, path: Path, fps: float) -> bool:
        """Decode bare codes (no token file: e.g. generated by an LLM) to `path` in the
        default format at the tokenizer's own size / rate (`fps` for video); False, nothing
        written, when there is nothing to decode."""

    @abstractmethod
    def scores(self, original: Path, reconstruction: Path) -> dict[str, float]:
        """Quality of `reconstruction` against `original` (`mmtok compare`)."""

    @abstractmethod
    def evaluate(self, tokenizers: dict[str, Any], files: list[Path], report: Any, options: Any) -> None:
        """`mmtok eval`: measure the tokenizers (and baselines) on `files` into `report`."""

    def baseline_training_files(self, files: list[Path], held_out: list[Path]) -> tuple[str, ...]:
        """Files a trained baseline learns from when `held_out` are evaluated (none by default)."""
        return ()

    # -- presentation (detokenize transcripts) ---------------------------------------
    def grid_text(self, grid: tuple[int, ...]) -> str:
        """A code grid in words, e.g. `16x16`."""
        return "x".join(map(str, grid))

    def markdown_link(self, label: str, name: str) -> str:
        return f"[{label}]({name})"

    def __repr__(self) -> str:
        return f"<{self.name} modality>"
