"""Training checkpoints without pickle: everything needed for an exact resume.

`OUT/checkpoints/last/` holds
- `model.safetensors` (and `disc.safetensors` with an adversarial loss),
- `optim.safetensors` / `optim.json`: optimizer tensors and the rest of its state dict,
- `rng-<rank>.safetensors`: torch (CPU and CUDA) RNG states per process,
- `state.json`: step, python / numpy RNG states.
It is written to a temp folder and renamed into place, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from mmtok.errors import MmtokError
from mmtok.files import give_usual_mode


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_train_state(
    folder: Path, step: int, models: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
    is_main: bool, rank: int,
) -> None:
    """Write the checkpoint (main process writes shared files, every rank its RNG)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, model in models.items():
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            safetensors.torch.save_file(state, tmp / f"{name}.safetensors")
        for name, opt in optimizers.items():
            tensors, meta = _flatten_optimizer(opt.state_dict())
            safetensors.torch.save_file(tensors, tmp / f"optim-{name}.safetensors")
            (tmp / f"optim-{name}.json").write_text(json.dumps(meta))
        state = {
            "step": step,  # the learning rate is a pure function of the step: no scheduler state
            "python_rng": _json_python_rng(),
            "numpy_rng": _json_numpy_rng(),
        }
        (tmp / "state.json").write_text(json.dumps(state))
    _barrier()
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    safetensors.torch.save_file(rng, tmp / f"rng-{rank}.safetensors")
    _barrier()
    if is_main:
        give_usual_mode(tmp)
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    _barrier()


def load_train_state(
    folder: Path, models: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer], rank: int,
) -> dict[str, Any]:
    """Restore models, optimizers and RNG in place; returns `state.json` (step, ...)."""
    if not (folder / "state.json").is_file():
        raise MmtokError(f"{folder}: no training checkpoint to resume; run without --resume first")
    for name, model in models.items():
        model.load_state_dict(safetensors.torch.load_file(folder / f"{name}.safetensors"), strict=True)
    for name, opt in optimizers.items():
        tensors = safetensors.torch.load_file(folder / f"optim-{name}.safetensors")
        meta = json.loads((folder / f"optim-{name}.json").read_text())
        opt.load_state_dict(_unflatten_optimizer(tensors, meta))
    state = json.loads((folder / "state.json").read_text())
    rng_file = folder / f"rng-{rank}.safetensors"
    if rng_file.is_file():
        rng = safetensors.torch.load_file(rng_file)
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
    random.setstate(_python_rng_from_json(state["python_rng"]))
    np.random.set_state(_numpy_rng_from_json(state["numpy_rng"]))
    return state


def _json_python_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_rng_from_json(value: list) -> tuple:
    return (value[0], tuple(value[1]), value[2])


def _json_numpy_rng() -> list:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return [name, keys.tolist(), pos, has_gauss, gauss]


def _numpy_rng_from_json(value: list) -> tuple:
    return (value[0], np.array(value[1], dtype=np.uint32), value[2], value[3], value[4])


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
