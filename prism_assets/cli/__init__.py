"""`prism`: the command line of the platform (process, export, search, backfill, demo, scan, serve, index-remove,
catalog rebuild).

Every command runs the real Definitions on the persistent Dagster instance (DAGSTER_HOME,
default `<project>/.dagster_home` with the project's dagster.yaml), so what it does shows in the
UI's run list and asset lineage. Errors end in one line on stderr and a non-zero exit: bad input,
the catalog database, S3, the Dagster storage, files. `--debug` anywhere on the command line (or
PRISM_DEBUG=1) prints the full traceback too.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from .catalog import catalog_app
from .common import err
from .demo import demo
from .export import export, search
from .serve import index_remove, serve
from .titles import backfill, process, scan

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prism: video preprocessing platform. Errors are one line; add --debug for the full traceback.")
for command in (process, export, backfill, demo, search, scan, serve):
    app.command()(command)
app.command(name="index-remove")(index_remove)
app.add_typer(catalog_app, name="catalog")


def main(argv: list[str] | None = None):
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("PRISM_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="prism")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last resort: storage, network, database, files
        from ..core.errors import describe

        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {describe(exc)}" + ("" if debug else "  (--debug for details)"), highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
