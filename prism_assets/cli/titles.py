"""`prism process`, `prism backfill`, `prism scan`: titles through the real Definitions on the
persistent instance (so the runs show in the UI)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .common import delivery_tick, err, fail, materialize_title, out, qc_gate_only, run_failure_line, setup, update_seasons


def title_id_from(path: Path) -> str:
    tid = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._-") or "title"
    return tid[:128]


def process(
    video: Path = typer.Argument(..., help="Video file to register as a delivery and process"),
    title_id: Optional[str] = typer.Option(None, "--title-id", help="Title id (default: from the file name)"),
    delivery_date: Optional[str] = typer.Option(None, "--date", help="Delivery date YYYY-MM-DD (default: today)"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod"),
):
    """Register VIDEO as a delivery and materialize every per-title asset for it."""
    from ..catalog import DeliveryRecord, connect
    from ..deliveries.layout import DeliveryError, not_in_future, parse_date, validate_title_id
    from ..partitions import TITLES_PARTITIONS_NAME

    video = video.expanduser()
    if not video.exists():
        fail(f"no such file: {video}")
    if not video.is_file():
        fail(f"not a regular file: {video}")
    try:
        tid = validate_title_id(title_id) if title_id is not None else title_id_from(video)
        day = not_in_future(parse_date(delivery_date), "--date") if delivery_date else date.today()
    except DeliveryError as exc:
        fail(str(exc))
    settings, defs, instance = setup(profile)
    cat = connect(settings.catalog_url)
    uri = str(video.resolve())
    stat = video.stat()
    cat.record_deliveries([DeliveryRecord(tid, day, uri, f"{stat.st_mtime_ns}-{stat.st_size}", stat.st_size)])
    if not instance.has_dynamic_partition(TITLES_PARTITIONS_NAME, tid):
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, [tid])
    with err.status(f"processing {tid} ({video.name}, profile {settings.profile})", spinner="dots"):
        result = materialize_title(defs, instance, tid, uri, day.isoformat())
    if not result.success and not qc_gate_only(result):
        fail(run_failure_line(result))
    for w in [e for e in result.get_asset_check_evaluations() if not e.passed]:
        err.print(f"[yellow]check {w.asset_key.to_user_string()}.{w.check_name} did not pass[/]", highlight=False)
    qc_row = cat.qc_result(tid)
    if qc_row is not None and qc_row.dagster_run_id == result.run_id:
        out.print(f"QC verdict {qc_row.verdict} ({qc_row.profile})" + "".join(f"\n  {r}" for r in qc_row.reasons or []), highlight=False, soft_wrap=True)
    out.print(f"processed {tid} (run {result.run_id}); export with: prism export {tid} --to DIR", highlight=False, soft_wrap=True)
    update_seasons(defs, instance, settings, [tid])


def backfill(
    start: str = typer.Option(..., "--from", help="First delivery date YYYY-MM-DD"),
    end: str = typer.Option(..., "--to", help="Last delivery date YYYY-MM-DD (inclusive)"),
    rerun: str = typer.Option("stale", "--rerun", help="stale: titles not up to date (missing, failed, older code or delivery); all: every title"),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the titles, record and run nothing"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod"),
):
    """Materialize exactly the titles delivered on dates FROM..TO: the content of those date folders
    of the delivery root, each title once (its latest delivery in the range)."""
    from ..catalog import connect
    from ..core.domain import all_signals, load_domains
    from ..core.title_graph import TitleGraph
    from ..deliveries.fanout import RERUN_MODES, wanted
    from ..deliveries.layout import DeliveryError, not_in_future, parse_date
    from ..deliveries.registry import register_deliveries
    from ..deliveries.scan import scan_dates
    from ..partitions import TAG_RERUN
    from .common import resources

    try:
        d1, d2 = parse_date(start), parse_date(end)
        if d2 < d1:
            fail(f"--to {end} is before --from {start}")
        not_in_future(d1, "--from")
        not_in_future(d2, "--to")
    except DeliveryError as exc:
        fail(str(exc))
    if rerun not in RERUN_MODES:
        fail(f"--rerun {rerun!r}: choose {' or '.join(RERUN_MODES)}")
    settings, defs, instance = setup(profile)
    store = resources(settings)["storage"].deliveries()
    found = scan_dates(store, d1, d2)
    latest = {}
    for d in sorted(found, key=lambda d: (d.delivery_date, d.key)):  # the last delivery of a title in the range wins
        latest[d.title_id] = d
    if not latest:
        out.print(f"no titles delivered between {d1} and {d2}")
        return
    out.print(f"{len(latest)} title(s) delivered {d1}..{d2}: {', '.join(latest)}", highlight=False)
    if dry_run:
        return
    cat = connect(settings.catalog_url)
    register_deliveries(instance, store, cat, found)
    graph = TitleGraph.from_signals(all_signals(load_domains(settings.domains)))
    todo = {tid: d for tid, d in latest.items() if wanted(cat, graph, tid, rerun)}
    if len(todo) < len(latest):
        out.print(f"{len(latest) - len(todo)} title(s) already up to date, skipped (--rerun all runs them too)", highlight=False)
    failed = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("backfill", total=len(todo))
        for tid, d in todo.items():
            progress.update(task, description=f"processing {tid}")
            result = materialize_title(defs, instance, tid, store.uri_for(d.key), d.delivery_date.isoformat(),
                                       {TAG_RERUN: rerun, "prism/backfill": f"{d1}..{d2}"})
            if not result.success and not qc_gate_only(result):  # a QC fail verdict is a result, not a failed run
                failed.append((tid, run_failure_line(result)))
            progress.advance(task)
    update_seasons(defs, instance, settings, [tid for tid in todo if tid not in dict(failed)])
    for tid, line in failed:
        err.print(f"[red]failed[/] {tid}: {line}", highlight=False)
    out.print(f"backfill {d1}..{d2}: {len(todo) - len(failed)} succeeded, {len(failed)} failed, {len(latest) - len(todo)} up to date", highlight=False)
    if failed:
        raise typer.Exit(1)


def scan(profile: Optional[str] = typer.Option(None, "--profile")):
    """Evaluate the delivery sensor once (a first listing): print the deliveries it would launch; records nothing, launches nothing."""
    settings, defs, instance = setup(profile)
    result = delivery_tick(defs, instance, settings)
    for r in result.run_requests or []:
        out.print(f"{r.partition_key}\t{r.tags.get('prism/delivery_date')}\t{r.tags.get('prism/delivery_uri')}", highlight=False)
    out.print(f"{len(result.run_requests or [])} new or changed deliveries")
