"""Entry point of the `mmtok` command.

Every user error surfaces as `MmtokError`; `run()` prints its one line to stderr and exits
with status 1 instead of a traceback. Anything else that escapes a command is a bug: the
last-resort boundary prints one line saying what was being done and how to see the
traceback (`--debug` or MMTOK_DEBUG=1), exits 1, and the run's output is cleaned up either
way (temp files by the atomic writers, empty output folders by `remove_created_dirs`).
Third-party warnings and progress bars are silenced unless debugging.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import click

from mmtok.cli.codes import decode, encode
from mmtok.cli.compare import compare
from mmtok.cli.detokenize import detokenize
from mmtok.cli.evaluate import evaluate
from mmtok.cli.extend import extend
from mmtok.cli.generate import generate
from mmtok.cli.info import info
from mmtok.cli.pretokenize import pretokenize
from mmtok.cli.train import train
from mmtok.errors import MmtokError, first_line
from mmtok.files import forget_created_dirs, remove_created_dirs

DEBUG_ENV = "MMTOK_DEBUG"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmtok")
@click.option("--debug", is_flag=True, help="Show tracebacks and third-party warnings (same as MMTOK_DEBUG=1).")
def main(debug: bool) -> None:
    """Discrete tokenizers for multimodal LLMs: train, encode, decode, inspect, evaluate; extend an LLM
    with media tokens, pre-tokenize datasets, generate and detokenize."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    quiet_third_parties()


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def quiet_third_parties() -> None:
    """transformers / huggingface_hub warnings and progress bars, and Python warnings of
    libraries, off unless debugging: a user sees our lines, not theirs. (Our own warnings
    are printed as `warning:` lines, not through `warnings`.)"""
    if debugging():
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    # The variables above take effect when the libraries are first imported, which commands do
    # inside their bodies. Where they are imported already (several runs in one process), the
    # settings are made directly.
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()


main.add_command(train)
main.add_command(encode)
main.add_command(decode)
main.add_command(info)
main.add_command(compare)
main.add_command(evaluate)
main.add_command(extend)
main.add_command(generate)
main.add_command(pretokenize)
main.add_command(detokenize)


def run(args: list[str] | None = None) -> int:
    """Run `mmtok ARGS` and return its exit status (what `cli()` exits with); usable in-process."""
    args = sys.argv[1:] if args is None else [str(a) for a in args]
    status = 0
    try:
        main(args=args, prog_name="mmtok", standalone_mode=False)
    except MmtokError as err:
        click.echo(f"error: {err}", err=True)
        status = 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        status = 130
    except click.UsageError as err:  # a bad option or argument: one line too, naming it
        command = err.ctx.command_path if err.ctx else "mmtok"
        message = " ".join(err.format_message().split()).rstrip(".")
        click.echo(f"error: {message}; see `{command} --help`", err=True)
        status = 1
    except click.ClickException as err:
        err.show()
        status = err.exit_code
    except BaseException as err:
        if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: not ours to judge
            remove_created_dirs()
            raise
        if debugging():  # the last-resort boundary: a bug, not a user error
            traceback.print_exc()
        click.echo(f"error: {unexpected_line(args, err)}", err=True)
        status = 1
    if status:
        remove_created_dirs()
    else:
        forget_created_dirs()
    return status


def unexpected_line(args: list[str], err: BaseException) -> str:
    """One line for an exception no check anticipated: what ran, what broke, how to see more."""
    command = " ".join(a for a in args[:2] if not a.startswith("-")) or "mmtok"
    see = "the traceback is above" if debugging() else f"rerun with --debug (or {DEBUG_ENV}=1) to see the traceback"
    return (f"unexpected {type(err).__name__} while running `mmtok {command}`: {first_line(err)}; "
            f"{see}, and please report it")


def cli() -> None:
    sys.exit(run())


if __name__ == "__main__":
    cli()
