"""Training checkpoints without pickle: everything needed for an exact resume.

`OUT/checkpoints/last/` holds
- `model.safetensors` (and `disc.safetensors` with an adversarial loss),
- `optim.safetensors` / `optim.json`: optimizer tensors and the rest of its state dict,
- `rng-<rank>.safetensors`: torch (CPU and CUDA) RNG states per process,
- `state.json`: step, python / numpy RNG states.
It is written to a temp folder and renamed into place, so a crash mid-write leaves the
previous checkpoint intact. On `--resume` every file is checked (present, readable, from the
same recipe) and anything wrong is one MmtokError naming the file.
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

from mmtok.configs import KINDS, config_to_dict
from mmtok.errors import MmtokError, first_line
from mmtok.files import atomic_write, give_usual_mode, read_json
from mmtok.train.recipe import load_recipe


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


RESUME_FIX = "resume with the recipe that made it, or start again in a new --out folder"


def check_resume(out: Path, folder: Path, recipe) -> None:
    """Before anything is built: `folder` holds a checkpoint, and `OUT/recipe.yaml` (written
    by the run being resumed) describes the same tokenizer and training as `recipe` (only
    the number of steps may change)."""
    if not (folder / "state.json").is_file():
        raise MmtokError(f"{folder}: no training checkpoint to resume; run without --resume first")
    stored_file = out / "recipe.yaml"
    if not stored_file.is_file():
        raise MmtokError(f"{stored_file}: missing, so the checkpoint's recipe is unknown; {RESUME_FIX}")
    stored = load_recipe(stored_file, _modality(recipe))
    differ = [f"kind ({stored.kind} vs {recipe.kind})"] if stored.kind != recipe.kind else []
    differ += _differences("model", stored.model, recipe.model)
    differ += [d for d in _differences("train", stored.train, recipe.train) if not d.startswith("train.steps ")]
    if differ:
        raise MmtokError(f"{folder}: the checkpoint was made by another recipe ({'; '.join(differ[:3])}); {RESUME_FIX}")


def _modality(recipe) -> str:
    return KINDS[recipe.kind].modality


def _differences(prefix: str, old: Any, new: Any) -> list[str]:
    a, b = config_to_dict(old), config_to_dict(new)
    return [f"{prefix}.{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def load_train_state(
    folder: Path, models: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer], rank: int,
    steps: int | None = None,
) -> dict[str, Any]:
    """Restore models, optimizers and RNG in place; returns `state.json` (step, ...).

    A missing, truncated or foreign file is one MmtokError naming it (checked before any
    state is changed where it can be)."""
    if not (folder / "state.json").is_file():
        raise MmtokError(f"{folder}: no training checkpoint to resume; run without --resume first")
    state = read_json(folder / "state.json", "damaged checkpoint state", RESUME_FIX)
    step = state.get("step") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or (steps is not None and step > steps):
        raise MmtokError(f"{folder / 'state.json'}: damaged checkpoint state (step {step!r}); {RESUME_FIX}")
    for name, model in models.items():
        _load_module(model, _tensors(folder / f"{name}.safetensors"), folder / f"{name}.safetensors")
    for name, opt in optimizers.items():
        tensors = _tensors(folder / f"optim-{name}.safetensors")
        meta = read_json(folder / f"optim-{name}.json", "damaged optimizer state", RESUME_FIX)
        try:
            opt.load_state_dict(_unflatten_optimizer(tensors, meta))
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as err:
            raise MmtokError(f"{folder / f'optim-{name}.json'}: optimizer state does not fit this model ({first_line(err)}); {RESUME_FIX}") from None
    rng_file = folder / f"rng-{rank}.safetensors"
    try:
        if rng_file.is_file():
            rng = _tensors(rng_file)
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng["cuda"])
        random.setstate(_python_rng_from_json(state["python_rng"]))
        np.random.set_state(_numpy_rng_from_json(state["numpy_rng"]))
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise MmtokError(f"{folder}: damaged random-number state ({first_line(err)}); {RESUME_FIX}") from None
    return state


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MmtokError(f"{path}: missing from the checkpoint (it is incomplete); {RESUME_FIX}")
    try:
        return safetensors.torch.load_file(path)
    except Exception as err:  # safetensors raises several types for damaged files
        raise MmtokError(f"{path}: unreadable checkpoint file ({first_line(err)}); {RESUME_FIX}") from None


def _load_module(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = next((line.strip() for line in str(err).splitlines() if line.strip().startswith(("size mismatch", "Missing", "Unexpected"))), first_line(err))
        raise MmtokError(f"{path}: weights do not fit this recipe's model ({detail[:160]}); {RESUME_FIX}") from None


def trim_log(log_file: Path, step: int) -> None:
    """Keep only the log lines of steps <= `step` (whole, parseable lines): the steps after
    the checkpoint being resumed from are trained, and logged, again."""
    if not log_file.is_file():
        return
    lines = log_file.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the half-written last line of a kill
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line)
    if kept != lines:
        text = "".join(line + "\n" for line in kept)
        atomic_write(log_file, lambda tmp: tmp.write_text(text))


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
