"""The ``phantomchain`` console script: one click group, one module per command group.

Importing it stays cheap — ``phantomchain --help`` loads neither the audio stack nor a
database driver, and opens no connection: each command imports what it needs when it runs.
"""

from __future__ import annotations

import click

from app.cli.analyze import analyze
from app.cli.dev import dev
from app.cli.dlq import dlq
from app.cli.jobs import jobs
from app.cli.send import fetch, send, status
from app.cli.storage import storage
from app.cli.tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phantomchain")
def main() -> None:
    """PhantomChain: self-hosted audio analysis and transcoding."""


for command in (analyze, dev, dlq, fetch, jobs, send, status, storage, tokens):
    main.add_command(command)
