"""`prism`: the command line of the platform (process, export, search, backfill, demo, scan).

Every command runs the real Definitions on the persistent Dagster instance (DAGSTER_HOME,
default `<project>/.dagster_home` with the project's dagster.yaml), so what it does shows in the
UI's run list and asset lineage. Errors end in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import sys

import typer

from .common import err
from .demo import demo
from .export import export, search
from .titles import backfill, process, scan

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prism: video preprocessing platform.")
for command in (process, export, backfill, demo, search, scan):
    app.command()(command)


def main():
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
