"""`mmtok train <modality>`: train a tokenizer from a recipe on a folder of media."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click


@click.group()
def train() -> None:
    """Train a tokenizer (runs unchanged under `accelerate launch` for several processes)."""


def _train_options(what: str):
    def wrap(fn):
        for option in reversed([
            click.option("--data", required=True, type=click.Path(path_type=Path), help=f"Folder of training {what}."),
            click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder for the tokenizer."),
            click.option("--config", "config", type=click.Path(path_type=Path), help="Recipe YAML (kind, model, train)."),
            click.option("--steps", type=click.IntRange(min=1), help="Override the recipe's number of steps."),
            click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last exactly."),
            click.option("--stop-after", type=click.IntRange(min=1), help="Stop this run after N more steps (checkpointed; continue with --resume)."),
            click.option("--no-progress", is_flag=True, help="Hide the progress bar."),
        ]):
            fn = option(fn)
        return fn
    return wrap


@train.command("image")
@_train_options("images")
def train_image(**options) -> None:
    """Train an image tokenizer (VQ or dVAE) on the images under DATA."""
    _train("image", **options)


@train.command("audio")
@_train_options("audio (wav, flac, ogg, mp3; any rate, mono or stereo)")
def train_audio(**options) -> None:
    """Train an audio codec (audio-codec: SEANet + residual VQ; audio-vocos-fsq: frame-rate FSQ) on the audio files under DATA."""
    _train("audio", **options)


@train.command("video")
@_train_options("videos (mp4, webm, mov, mkv, avi, gif)")
def train_video(**options) -> None:
    """Train a causal video tokenizer (3-D conv + FSQ/VQ) on the videos under DATA."""
    _train("video", **options)


def _train(
    modality: str, data: Path, out: Path, config: Path | None, steps: int | None, resume: bool, stop_after: int | None,
    no_progress: bool,
) -> None:
    from accelerate import PartialState

    from mmtok.train.loop import train_tokenizer
    from mmtok.train.recipe import load_recipe

    recipe = load_recipe(config, modality)
    if steps is not None:  # (>= 1: see the option's type)
        recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=steps))
    done = train_tokenizer(recipe, data, out, resume=resume, progress=not no_progress, stop_after=stop_after)
    if not PartialState().is_main_process:  # under `accelerate launch`, report once
        return
    if done:
        click.echo(f"saved {recipe.kind} tokenizer to {out}")
    else:
        click.echo(f"stopped with a checkpoint in {out / 'checkpoints' / 'last'}; continue with --resume")
