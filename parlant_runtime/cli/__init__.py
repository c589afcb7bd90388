"""The ``parlant-runtime`` command line: the edge where files are read and exit codes set.

Every command turns user errors (unreadable files, bad bundles, bad options) into a
clear message and an exit status; none of them ends with a traceback.
"""

from __future__ import annotations

import click

from parlant_runtime.cli.chat import chat
from parlant_runtime.cli.db import db
from parlant_runtime.cli.diagram import diagram
from parlant_runtime.cli.generate_tests import generate_tests_command
from parlant_runtime.cli.publish import export, publish
from parlant_runtime.cli.test_command import test
from parlant_runtime.cli.validate import validate

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="parlant-runtime", prog_name="parlant-runtime")
def cli() -> None:
    """Validate, draw and run Parlant-style agents from bundle files."""


cli.add_command(validate)
cli.add_command(diagram)
cli.add_command(db)
cli.add_command(publish)
cli.add_command(export)
cli.add_command(test)
cli.add_command(generate_tests_command)
cli.add_command(chat)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="parlant-runtime")
