"""The ``phantomchain`` console script.

Sub-commands live in their own modules and are attached here, so that importing the CLI
stays cheap: ``phantomchain --help`` must not load the audio stack or open a connection.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phantomchain")
def main() -> None:
    """PhantomChain: self-hosted audio analysis and transcoding."""


def _attach() -> None:
    from app.cli_analyze import analyze
    from app.cli_dlq import dlq
    from app.cli_jobs import jobs
    from app.dev import dev

    main.add_command(analyze)
    main.add_command(dev)
    main.add_command(dlq)
    main.add_command(jobs)


_attach()


if __name__ == "__main__":
    main()
