"""Entry point of the `mmtok` command.

Every user error surfaces as `MmtokError`; `cli()` prints its one line to stderr and exits
with status 1 instead of a traceback.
"""

from __future__ import annotations

import sys

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
from mmtok.errors import MmtokError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmtok")
def main() -> None:
    """Discrete tokenizers for multimodal LLMs: train, encode, decode, inspect, evaluate; extend an LLM
    with media tokens, pre-tokenize datasets, generate and detokenize."""


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


def cli() -> None:
    try:
        main(standalone_mode=False)
    except MmtokError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)


if __name__ == "__main__":
    cli()
