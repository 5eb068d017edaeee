"""`PackedTokens`: rows packed from real `mmtok pretokenize` shards of tests/media (the shipped
image and audio tokenizers on a tiny Llama): every item exactly once, labels per
modality and role, packed rows attend within items only, order fixed by seed and epoch,
ranks disjoint, resume exact; a few real optimizer steps through transformers' `Trainer` and
through a plain accelerate loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_mmtok

from mmtok.errors import MmtokError
from mmtok.llm import MediaVocab, PackedTokens, TokenShards
from mmtok.llm.dataset import IGNORE, Piece

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
SHIPPED = [REPO / "tokenizers_trained" / n for n in ("mmtok-image-f16", "mmtok-audio-vocos-fsq")]


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def made(llm_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(extended tiny Llama, shards of tests/media), both made by the console script.
    Image spans have row separators, so every role of a span is present."""
    root = tmp_path_factory.mktemp("packed")
    extended, shards = root / "tiny-mm", root / "shards"
    tokenizers = [arg for t in SHIPPED for arg in ("-t", t)]
    # a random-init Llama cannot keep its text behaviour (mmtok.llm.preservation): --allow-drift
    ok(run_mmtok("extend", "--llm", llm_dir, "-o", extended, "--row-separators", "--allow-drift", *tokenizers))
    ok(run_mmtok("pretokenize", MEDIA, "--vocab", extended, "-o", shards))
    return extended, shards


@pytest.fixture(scope="module")
def shards(made) -> TokenShards:
    return TokenShards(made[1], vocab=made[0])


@pytest.fixture(scope="module")
def vocab(made) -> MediaVocab:
    return MediaVocab.load(made[0])


def test_every_item_appears_once_and_whole(shards):
    lengths = shards.item_lengths()
    assert len(lengths) == 6 and lengths.sum() == shards.num_tokens()   # 4 images, 2 audio clips (no video stream)
    seq_len = int(np.sort(lengths)[-3])   # the two longest items are cut into pieces
    for split in (False, True):
        data = PackedTokens(shards, seq_len, seed=3, split_items=split)
        got: dict[int, list[np.ndarray]] = {}
        rows = list(data)
        assert len(rows) == len(data.rows(0))
        for row, plan in zip(rows, data.rows(0)):
            ids = row["input_ids"].numpy()
            at = 0
            for piece in plan:
                n = piece.stop - piece.start
                got.setdefault(piece.item, []).append((piece.start, ids[at : at + n]))
                assert np.array_equal(row["position_ids"][at : at + n].numpy(), np.arange(piece.start, piece.stop))
                at += n
            assert (row["labels"][at:] == IGNORE).all() and (ids[at:] == data.pad_id).all()
        assert sorted(got) == list(range(len(shards)))
        for item, parts in got.items():
            whole = np.concatenate([p for _, p in sorted(parts, key=lambda x: x[0])])
            assert np.array_equal(whole, np.asarray(shards[item][0], dtype=np.int64)), item
        padding = sum(int((r["labels"] == IGNORE).sum()) for r in rows)
        if split:   # no padding except after the very last item
            assert sum(r["input_ids"].numel() for r in rows) - int(lengths.sum()) < seq_len
        else:       # whole items: an item that fits is never cut
            assert all(len(parts) == 1 for item, parts in got.items() if lengths[item] <= seq_len)
        assert padding > 0


def test_labels_follow_modality_and_roles(shards, vocab):
    names = shards.modality_names
    assert names == ["text", "image", "audio"]
    seq_len = int(shards.item_lengths().max())
    roles = {}
    for s in vocab.streams:   # the roles, from the vocab's own stream geometry
        roles.update({s.start_id: "start", s.end_id: "end", **{i: "header" for i in range(s.dim_id, s.code_offset)}})
        codes = {i for lo, hi in s.code_ranges() for i in range(lo, hi)}
        roles.update({i: "separator" for i in range(s.code_offset, s.stop_id) if i not in codes})
    cases = [("media", (), lambda m, r: m > 0), ("text", (), lambda m, r: m == 0),
             (("image",), ("header", "separator"), lambda m, r: m == 1 and r not in ("header", "separator")),
             ("all", ("start", "end"), lambda m, r: r not in ("start", "end"))]
    for train_on, mask, wanted in cases:
        data = PackedTokens(shards, seq_len, train_on=train_on, mask=mask, shuffle=False)
        seen_roles = set()
        for row, plan in zip(data, data.rows(0)):
            at = 0
            for piece in plan:
                ids, modality = (np.asarray(a[piece.start : piece.stop]) for a in shards[piece.item])
                labels = row["labels"][at : at + len(ids)].numpy()
                expect = np.array([wanted(int(m), roles.get(int(i), "code" if m else "text")) for i, m in zip(ids, modality)])
                expect[0] = False   # predicted from the previous item: never a target
                assert np.array_equal(labels != IGNORE, expect), (train_on, mask, piece)
                assert np.array_equal(labels[expect], ids[expect])
                seen_roles |= {roles.get(int(i)) for i in ids}
                at += len(ids)
        assert {"start", "end", "header", "separator"} <= seen_roles


def test_packed_rows_attend_within_items(shards, made):
    """Logits of an item packed after another equal its logits alone (use_cache=False, no
    attention_mask); an attention_mask of ones, or the default use_cache=True, lets it see
    the item before it."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(made[0]).eval()
    order = np.argsort(shards.item_lengths())
    a, b = (np.asarray(shards[int(i)][0], dtype=np.int64) for i in order[:2])
    data = PackedTokens(shards, len(a) + len(b) + 7, shuffle=False)
    row = data.row([Piece(int(i), 0, int(shards.item_lengths()[i])) for i in order[:2]])
    assert torch.equal(row["input_ids"][: len(a) + len(b)], torch.from_numpy(np.concatenate([a, b])))
    with torch.no_grad():
        packed = model(input_ids=row["input_ids"][None], position_ids=row["position_ids"][None], use_cache=False).logits[0]
        alone = model(input_ids=torch.from_numpy(b)[None]).logits[0]
        ones = model(input_ids=row["input_ids"][None], attention_mask=torch.ones(1, data.seq_len, dtype=torch.long),
                     position_ids=row["position_ids"][None], use_cache=False).logits[0]
        cached = model(input_ids=row["input_ids"][None], position_ids=row["position_ids"][None]).logits[0]
    torch.testing.assert_close(packed[len(a) : len(a) + len(b)], alone, atol=1e-5, rtol=1e-4)
    for leaky in (ones, cached):   # why the docs say: no attention_mask, use_cache=False
        assert (leaky[len(a) : len(a) + len(b)] - alone).abs().max() > 1e-3


def test_order_is_fixed_by_seed_and_epoch(shards):
    seq_len = int(shards.item_lengths().max())

    def order(seed, epoch):
        data = PackedTokens(shards, seq_len, seed=seed)
        return [p.item for row in data.rows(epoch) for p in row]

    assert order(0, 0) == order(0, 0) and order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)
    assert sorted(order(0, 1)) == list(range(len(shards)))
    data = PackedTokens(shards, seq_len, seed=0)
    first = [r["input_ids"] for r in data]           # a whole pass moves to the next epoch
    assert data.state_dict()["epoch"] == 1 and data.state_dict()["position"] == 0
    second = [r["input_ids"] for r in data]
    data.set_epoch(0)
    assert all(torch.equal(x, y["input_ids"]) for x, y in zip(first, data))
    assert not all(torch.equal(x, y) for x, y in zip(first, second))


def test_ranks_share_the_rows_without_overlap(shards):
    seq_len = int(np.sort(shards.item_lengths())[-3])
    whole = PackedTokens(shards, seq_len, seed=5, split_items=True).rows(2)
    ranks = [PackedTokens(shards, seq_len, seed=5, split_items=True, rank=r, world_size=3).rows(2) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(whole) // 3
    assert [row for k in range(len(ranks[0])) for r in ranks for row in r[k : k + 1]] == whole[: 3 * len(ranks[0])]


def test_loader_workers_share_the_rows(shards):
    seq_len = int(np.sort(shards.item_lengths())[-3])
    data = PackedTokens(shards, seq_len, seed=2, split_items=True)
    alone = sorted(tuple(r["input_ids"].tolist()) for r in data.__iter__())
    data.set_epoch(0)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
    assert sorted(tuple(r["input_ids"].tolist()) for r in loader) == alone


def test_resume_continues_exactly(shards):
    seq_len = int(np.sort(shards.item_lengths())[-3])
    full = PackedTokens(shards, seq_len, seed=1, split_items=True)
    expected = [r["input_ids"] for r in full] + [r["input_ids"] for r in full]   # epochs 0 and 1
    data = PackedTokens(shards, seq_len, seed=1, split_items=True)
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    first = next(iter(loader))["input_ids"]
    state = data.state_dict()
    assert state["position"] == 2 and state["epoch"] == 0
    resumed = PackedTokens(shards, seq_len, seed=1, split_items=True)
    resumed.load_state_dict(state)
    rest = [r["input_ids"] for r in resumed] + [r["input_ids"] for r in resumed]
    got = [*first, *rest]
    assert len(got) == len(expected) and all(torch.equal(x, y) for x, y in zip(got, expected))
    with pytest.raises(MmtokError, match="seed"):
        PackedTokens(shards, seq_len, seed=2, split_items=True).load_state_dict(state)


def test_bad_options_are_one_error(shards):
    for kwargs, match in [({"train_on": "pixels"}, "train_on"), ({"mask": ("code",)}, "mask"),
                          ({"rank": 2, "world_size": 2}, "rank"), ({"seq_len": 1}, "seq_len")]:
        with pytest.raises(MmtokError, match=match):
            PackedTokens(shards, **{"seq_len": 64, **kwargs})


def test_trainer_runs_real_steps(made, shards, tmp_path):
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(made[0])
    model.config.use_cache = False
    before = model.model.embed_tokens.weight.detach().clone()
    data = PackedTokens(shards, 256, train_on="all", split_items=True, pad_id=model.config.pad_token_id)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=2,
                             learning_rate=1e-2, logging_steps=1, report_to=[], save_strategy="no",
                             use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data)
    result = trainer.train()
    assert trainer.state.global_step == 3
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[0] > 1.0
    assert np.isfinite(result.training_loss)
    changed = (model.model.embed_tokens.weight.detach() != before).any(dim=1)
    assert changed[: shards.info["vocab"]["vocab_size"]].any()


def test_plain_accelerate_loop_lowers_the_loss(made, shards):
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    model = AutoModelForCausalLM.from_pretrained(made[0])
    model.config.use_cache = False
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model, opt = accelerator.prepare(model, opt)
    data = PackedTokens(shards, 256, train_on="media", split_items=True, rank=accelerator.process_index,
                        world_size=accelerator.num_processes)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))
    batch = {k: v.to(accelerator.device) for k, v in batch.items()}
    losses = []
    for _ in range(3):
        loss = model(**batch).loss
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(model(**batch).loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_hf_datasets_view(shards):
    pytest.importorskip("datasets")
    data = PackedTokens(shards, 512, split_items=True, seed=4)
    view = data.to_hf_dataset(epoch=1)
    assert len(view) == len(data.rows(1)) and view.column_names == ["input_ids", "labels", "position_ids"]
    rows = list(PackedTokens(shards, 512, split_items=True, seed=4).__iter__())  # epoch 0
    data.set_epoch(1)
    for got, want in zip(view, data):
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert not torch.equal(view[0]["input_ids"], rows[0]["input_ids"])
