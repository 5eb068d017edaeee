"""Tokenizer folders that lie: `config.json` of the wrong shape, types, signs or sizes
(checked against the config dataclasses before any tensor is allocated: a config asking for
360 GB must not start allocating), weights that are truncated, from another config, edited
or NaN. `mmtok info` and `mmtok encode -t` must print one `error:` line naming the file
(tests/hostile.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import make_tokenizer, sample_image, write_image
from hostile import check, make_fifo

CLASS = "tokenizer folders"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _config(folder: Path, change) -> Path:
    """Rewrite config.json: `change(meta)` edits the parsed JSON in place or returns a new value."""
    path = folder / "config.json"
    meta = json.loads(path.read_text())
    new = change(meta)
    path.write_text(json.dumps(meta if new is None else new))
    return path


def _model(meta: dict) -> dict:
    return meta["config"]


@case
def config_is_a_list(d):
    return _config(d, lambda m: [m])


@case
def config_is_null(d):
    (d / "config.json").write_text("null")
    return d / "config.json"


@case
def config_not_json(d):
    (d / "config.json").write_text("{format_version: 1,")
    return d / "config.json"


@case
def config_nested_deeply(d):
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    return d / "config.json"


@case
def channels_is_a_string(d):
    return _config(d, lambda m: _model(m).update(channels="eight"))


@case
def channels_negative(d):
    return _config(d, lambda m: _model(m).update(channels=-8))


@case
def channels_huge(d):
    return _config(d, lambda m: _model(m).update(channels=10**6))


@case
def channels_float(d):
    return _config(d, lambda m: _model(m).update(channels=8.5))


@case
def channels_bool(d):
    return _config(d, lambda m: _model(m).update(channels=True))


@case
def channel_mult_is_a_number(d):
    return _config(d, lambda m: _model(m).update(channel_mult=2))


@case
def channel_mult_huge(d):
    return _config(d, lambda m: _model(m).update(channel_mult=[1, 2, 4096]))


@case
def patch_size_zero(d):
    return _config(d, lambda m: _model(m).update(patch_size=0))


@case
def quantizer_is_a_list(d):
    return _config(d, lambda m: _model(m).update(quantizer=[1, 2]))


@case
def quantizer_kind_unknown(d):
    return _config(d, lambda m: _model(m)["quantizer"].update(kind="magic"))


@case
def fsq_levels_huge(d):
    return _config(d, lambda m: _model(m)["quantizer"].update(fsq_levels=[10**6, 10**6, 10**6]))


@case
def fsq_levels_text(d):
    return _config(d, lambda m: _model(m)["quantizer"].update(fsq_levels="555"))


@case
def unknown_config_field(d):
    return _config(d, lambda m: _model(m).update(wings=2))


@case
def unknown_kind(d):
    return _config(d, lambda m: m.update(kind="image-magic"))


@case
def kind_is_a_list(d):
    return _config(d, lambda m: m.update(kind=["image-vq"]))


@case
def format_version_99(d):
    return _config(d, lambda m: m.update(format_version=99))


@case
def config_missing(d):
    (d / "config.json").unlink()
    return d


@case
def config_is_a_fifo(d):
    (d / "config.json").unlink()
    return make_fifo(d / "config.json")


@case
def weights_missing(d):
    (d / "model.safetensors").unlink()
    return d / "model.safetensors"


@case
def weights_truncated(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    return d / "model.safetensors"


@case
def weights_from_another_config(d):
    other = make_tokenizer("vq")  # another quantizer: other tensor names and shapes
    safetensors.torch.save_file({k: v.contiguous() for k, v in other.state_dict().items()}, d / "model.safetensors")
    return d / "model.safetensors"


@case
def weights_nan(d):
    state = safetensors.torch.load_file(d / "model.safetensors")
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name] = torch.full_like(state[name], float("nan"))
    safetensors.torch.save_file(state, d / "model.safetensors")
    return d / "model.safetensors"


@case
def weights_edited(d):
    state = safetensors.torch.load_file(d / "model.safetensors")
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name] = state[name] + 0.5
    safetensors.torch.save_file(state, d / "model.safetensors")
    return d  # the fingerprint names the folder


@case
def pickled_weights_only(d):
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + bytes(64))  # a pickle header: never loaded
    return d / "model.safetensors"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return write_image(tmp_path_factory.mktemp("hostile-tok") / "x.png", sample_image(16, 16))


@pytest.mark.parametrize("command", ["info", "encode"])
@pytest.mark.parametrize("name", CASES)
def test_hostile_tokenizer_folder(name, command, tok_dir, image, tmp_path):
    folder = shutil.copytree(tok_dir, tmp_path / "tok")
    named = CASES[name](folder)
    args = ["info", folder] if command == "info" else ["encode", image, "-t", folder, "-o", tmp_path / "out"]
    check(CLASS, f"{name} ({command})", args, str(named.relative_to(tmp_path)), tmp_path, timeout=60)
