"""`prism catalog rebuild`: the catalog re-created from the artifact store (the source of truth), after its database
was lost (docs/deploy.md, Recovery). What comes back and what cannot: prism_assets/catalog/rebuild.py."""

from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .common import err, fail, out, resources, settings_or_fail

catalog_app = typer.Typer(no_args_is_help=True, help="The catalog database: rebuild it from the artifacts.")


@catalog_app.command()
def rebuild(
    dry_run: bool = typer.Option(False, "--dry-run", help="Read the artifacts and say what would be rebuilt; write nothing, open no catalog"),
    force: bool = typer.Option(False, "--force", help="Merge into a catalog that already has titles (the rebuilt rows replace theirs)"),
    workers: int = typer.Option(8, "--workers", min=1, max=64, help="Partitions read in parallel (S3 round trips dominate)"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod"),
):
    """Re-create the catalog's titles, deliveries, QC results, signal outputs and signal runs from every artifact under
    the artifact root (a folder or s3://), into an EMPTY catalog (PRISM_CATALOG_URL; migrated first). All rows are
    written in one transaction: on any error nothing is written. Exit status 0: rebuilt; 1: nothing written (an
    error, or a catalog that has titles); 2: rebuilt, but artifacts that could not be read were skipped (listed)."""
    import os

    from ..catalog.rebuild import CatalogNotEmpty, apply_plan, plan_rebuild
    from ..core.domain import all_signals, load_domains

    if profile:
        if profile not in ("dev", "prod"):
            fail(f"unknown profile {profile!r}: choose dev or prod")
        os.environ["PRISM_PROFILE"] = profile
    settings = settings_or_fail()
    from ..catalog import Catalog

    cat = None
    if not dry_run:  # refuse before reading every artifact
        cat = Catalog(settings.catalog_url)
        from ..catalog.rebuild import catalog_titles

        n = catalog_titles(cat)
        if n and not force:
            fail(f"the catalog already has {n} title(s): rebuild into an empty catalog, or add --force to merge")
    storage = resources(settings)["storage"]
    signals = all_signals(load_domains(settings.domains))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(f"reading {settings.artifact_root}", total=None)

        def step(description: str, total: int | None) -> None:
            if total is not None:
                progress.update(task, total=total, description=description)
            else:
                progress.update(task, description=f"reading {description}", advance=1)

        plan = plan_rebuild(storage, signals, progress=step, workers=workers)
    for what, why in plan.skipped:
        err.print(f"[yellow]skipped[/] {what}: {why}", highlight=False, soft_wrap=True)
    for uri in plan.without_etag:
        err.print(f"[yellow]no ETag[/] {uri}: the delivered file is gone or changed since it was processed", highlight=False, soft_wrap=True)
    if dry_run:
        out.print(f"dry run: {plan.summary('would be rebuilt')} from {settings.artifact_root}", highlight=False, soft_wrap=True)
        return
    if not plan.titles:
        fail(f"no titles found under {settings.artifact_root}: nothing rebuilt (is PRISM_ARTIFACT_ROOT right?)")
    with err.status("writing the catalog", spinner="dots"):
        try:
            apply_plan(cat, plan, force=force)
        except CatalogNotEmpty as exc:
            fail(str(exc))
    out.print(f"{plan.summary()} from {settings.artifact_root}", highlight=False, soft_wrap=True)
    if plan.skipped:
        raise typer.Exit(2)
