"""Generated LLM ids -> text, media files and a transcript (`mmtok detokenize`).

    vocab = MediaVocab.load("llama-mm")
    sequences, batched = read_ids(Path("ids.json"))
    results = detokenize(vocab, sequences, Path("out/"), batched=batched)

For each sequence the output folder (one sub-folder `000/`, `001/`, ... per sequence of a
batch) holds

    text.txt        the text, decoded by the LLM's tokenizer (special tokens kept, media removed)
    media-000.png   each media span decoded by its tokenizer: images as PNG, audio as WAV
    media-001.wav   at the tokenizer's sample rate, video as MP4 at `fps`
    transcript.md   text and links to the media files, in order, then the problems found
    problems.txt    one problem per line (only when there were any)

Output is all or nothing: everything is written into a temporary folder that replaces
`out` at the end (an earlier detokenize output there is replaced as a whole).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.files import Progress, read_json, replace_directory
from mmtok.llm.parse import Parsed, Segment
from mmtok.llm.vocab import MediaVocab
from mmtok.modalities import named

TRANSCRIPT = "transcript.md"


@dataclass
class SequenceResult:
    """What was written for one sequence."""

    folder: Path                                   # where its files are (inside `out`)
    parsed: Parsed
    text: str
    media: list[tuple[Segment, str | None]] = field(default_factory=list)   # (segment, file name or None if empty)

    def summary(self) -> str:
        kinds = Counter(s.stream.name for s, _ in self.media)
        media = ", ".join(f"{n} {name}" for name, n in kinds.items()) or "no media"
        count = len(self.parsed.problems)
        text_tokens = self.parsed.text_ids.numel()
        return f"{text_tokens} text tokens, {media}, {count} problem{'s' if count != 1 else ''}"


def read_ids(path: Path) -> tuple[list[torch.Tensor], bool]:
    """`ids.json` -> (sequences as int64 tensors, whether it held a batch).

    Accepts a list of ints (one sequence), a list of lists of ints (a batch) or an object
    `{"ids": ...}` holding either; anything else is an MmtokError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise MmtokError(f"{path}: no such ids file; pass a JSON list of token ids")
    data = read_json(path, "not readable JSON", "pass a JSON list of token ids")
    if isinstance(data, dict):
        if "ids" not in data:
            raise MmtokError(f'{path}: JSON object without an "ids" key; pass a list of token ids or {{"ids": [...]}}')
        data = data["ids"]
    usage = "expected a list of token ids, a list of such lists, or {\"ids\": ...}"
    if not isinstance(data, list):
        raise MmtokError(f"{path}: {usage}; got a JSON {type(data).__name__}")
    batched = any(isinstance(row, list) for row in data)
    rows = data if batched else [data]
    sequences = []
    for i, row in enumerate(rows):
        where = f"sequence {i}: " if batched else ""
        if not isinstance(row, list):
            raise MmtokError(f"{path}: {where}{json.dumps(row)[:40]} is not a list of token ids; {usage}")
        bad = [v for v in row if isinstance(v, bool) or not isinstance(v, int)]
        if bad:
            raise MmtokError(f"{path}: {where}{json.dumps(bad[0])[:40]} is not a token id; {usage}")
        # ids beyond int64 are clipped: they are out of range either way (parse reports them)
        sequences.append(torch.tensor([max(min(v, 2**62), -(2**62)) for v in row], dtype=torch.long))
    return sequences, batched


def detokenize(
    vocab: MediaVocab, sequences: list[torch.Tensor], out: Path, policy: str = "repair", fps: float = 24.0,
    batched: bool | None = None, source: str = "ids", progress: Progress | None = None,
) -> list[SequenceResult]:
    """Parse each sequence with `policy` and write its text, media and transcript under `out`
    (sub-folders `000/`... when `batched`, default: more than one sequence). Every
    sequence is parsed and every tokenizer it needs loaded and checked before anything is
    written; `out` then appears whole or not at all. `progress` counts media spans."""
    out = Path(out)
    batched = len(sequences) > 1 if batched is None else batched
    if not fps > 0:
        raise MmtokError(f"--fps must be a positive frame rate, got {fps}")
    _check_out(out)
    parsed = []
    for i, ids in enumerate(sequences):
        try:
            parsed.append(vocab.parse(ids, policy))
        except MmtokError as err:
            raise MmtokError(f"{source}: {f'sequence {i}: ' if batched else ''}{err}") from None
    media_total = sum(len(p.media) for p in parsed)
    for name in sorted({s.stream.name for p in parsed for s in p.media}):
        vocab.tokenizer(name)   # load and check fingerprints before any decoding
    text_tok = vocab.text_tokenizer if any(p.text_ids.numel() for p in parsed) else None
    if progress is not None:
        progress.total = media_total
    results: list[SequenceResult] = []

    def fill(tmp: Path) -> None:
        for i, p in enumerate(parsed):
            folder = tmp / f"{i:03d}" if batched else tmp
            folder.mkdir(parents=True, exist_ok=True)  # inside the temp folder
            text = _decode_text(text_tok, p.text_ids)
            result = SequenceResult(out / folder.relative_to(tmp), p, text)
            for j, segment in enumerate(p.media):
                name = f"media-{j:03d}.{named(segment.media_type).default_format}"
                written = _write_media(vocab, segment, folder / name, fps)
                result.media.append((segment, name if written else None))
                if progress is not None:
                    progress.update(1)
            (folder / "text.txt").write_text(text)
            (folder / TRANSCRIPT).write_text(transcript(result, text_tok, policy, i if batched else None))
            if p.problems:
                (folder / "problems.txt").write_text("".join(f"{line}\n" for line in p.problems))
            results.append(result)

    replace_directory(out, fill, merge=False)
    return results


# -- output folder -------------------------------------------------------------------
def _is_earlier_output(folder: Path) -> bool:
    return (folder / TRANSCRIPT).is_file() or (folder / "000" / TRANSCRIPT).is_file()


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise MmtokError(f"{out}: exists and is not a folder; pick an output folder")
    if out.is_dir() and any(out.iterdir()) and not _is_earlier_output(out):
        raise MmtokError(f"{out}: folder exists and holds other files; pick a new or empty output folder")


# -- text ----------------------------------------------------------------------------
def _decode_text(text_tok, ids: torch.Tensor) -> str:
    if not ids.numel():
        return ""
    return text_tok.decode(ids.tolist(), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def transcript(result: SequenceResult, text_tok, policy: str, index: int | None = None) -> str:
    """Markdown: the text segments and links to the media files, in order, then the problems."""
    title = "# Detokenized sequence" + (f" {index:03d}" if index is not None else "")
    parts = [title]
    files = {id(s): (j, name) for j, (s, name) in enumerate(result.media)}
    for segment in result.parsed.segments:
        if segment.stream is None:
            parts.append(_decode_text(text_tok, segment.ids))
            continue
        stream = segment.stream
        modality = named(segment.media_type)
        j, name = files[id(segment)]
        label = f"{stream.name} {j}"
        if name is None and segment.codes.numel() == 0:
            line = f"*({label}: empty span at {segment.start})*"
        elif name is None:
            line = f"*({label}: not decoded, its tokenizer is encode-only)*"
        else:
            line = modality.markdown_link(label, name)
        shape = modality.grid_text(segment.grid)
        count = len(segment.problems)
        repaired = f", repaired: {count} problem{'s' if count > 1 else ''}" if count else ""
        parts.append(f"{line} *({segment.media_type}, {shape}{repaired})*")
    problems = result.parsed.problems
    if problems:
        parts.append(f"## Problems (policy: {policy})\n\n" + "\n".join(f"- {p}" for p in problems))
    return "\n\n".join(parts) + "\n"


# -- media ---------------------------------------------------------------------------
@torch.no_grad()
def _write_media(vocab: MediaVocab, segment: Segment, path: Path, fps: float) -> bool:
    """Decode one media segment to `path` (the media type's one decoder, at the tokenizer's
    own size / rate, video at `fps`); False (nothing written) for an empty audio span or an
    encode-only tokenizer."""
    tok = vocab.tokenizer(segment.stream.name, segment.media_type)   # Emu3 images: one-frame videos
    if not tok.can_decode:  # an encode-only tokenizer (LLM input only): the transcript says so
        return False
    return named(segment.media_type).write_codes(tok, segment.codes, path, fps)
