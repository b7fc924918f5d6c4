"""`prism`: the command line of the platform (process, export, backfill, demo, scan).

Every command runs the real Definitions on the persistent Dagster instance (DAGSTER_HOME,
default `<project>/.dagster_home` with the project's dagster.yaml), so what it does shows in the
UI's run list and asset lineage. Errors end in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prism: video preprocessing platform.")
# Piped output (CI logs, scripts, tests) is not squeezed into 80 columns: tables keep whole ids.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class CliError(Exception):
    pass


def _fail(msg: str, code: int = 1):
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _ensure_dagster_home() -> Path:
    from .settings import project_root

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(project_root() / ".dagster_home")
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "dagster.yaml"
    src = project_root() / "dagster.yaml"
    if not cfg.exists() and src.exists():
        shutil.copyfile(src, cfg)
    return path


def _setup(profile: str | None):
    if profile:
        if profile not in ("dev", "prod"):
            _fail(f"unknown profile {profile!r}: choose dev or prod")
        os.environ["PRISM_PROFILE"] = profile
    _ensure_dagster_home()
    from dagster import DagsterInstance

    from .definitions import build_definitions
    from .settings import PrismSettings

    try:
        settings = PrismSettings.from_env()
    except ValueError as exc:
        _fail(str(exc))
    defs = build_definitions(settings)
    instance = DagsterInstance.get()
    return settings, defs, instance


def _run_failure_line(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error:
                return data.error.message.strip().splitlines()[0]
    for event in result.all_events:
        if event.event_type_value == "RUN_FAILURE" and event.message:
            return event.message.strip().splitlines()[0]
    return "run failed"


def _qc_gate_only(result) -> bool:
    """True when a title's run failed only because its QC verdict is fail: the `qc` step's blocking
    check `qc_verdict_not_fail` (the verdict is materialized and in the catalog; every other step ran)."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return bool(failures) and all(
        e.step_key == "qc" and e.step_failure_data.error is not None and e.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
        for e in failures
    )


def _materialize_title(defs, instance, title_id: str, uri: str, delivery_date: str, extra_tags: dict | None = None):
    from .partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

    job = defs.resolve_job_def("process_title")
    tags = {TAG_DELIVERY_URI: uri, TAG_DELIVERY_DATE: delivery_date, "prism/launched_by": "cli", **(extra_tags or {})}
    return job.execute_in_process(partition_key=title_id, instance=instance, tags=tags, raise_on_error=False, run_config=QUIET_RUN_CONFIG)


def _title_id_from(path: Path) -> str:
    tid = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._-") or "title"
    return tid[:128]


@app.command()
def process(
    video: Path = typer.Argument(..., help="Video file to register as a delivery and process"),
    title_id: Optional[str] = typer.Option(None, "--title-id", help="Title id (default: from the file name)"),
    delivery_date: Optional[str] = typer.Option(None, "--date", help="Delivery date YYYY-MM-DD (default: today)"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod"),
):
    """Register VIDEO as a delivery and materialize every per-title asset for it."""
    from .catalog import DeliveryRecord
    from .deliveries.layout import DeliveryError, parse_date, validate_title_id
    from .partitions import TITLES_PARTITIONS_NAME

    video = video.expanduser()
    if not video.exists():
        _fail(f"no such file: {video}")
    if not video.is_file():
        _fail(f"not a regular file: {video}")
    try:
        tid = validate_title_id(title_id) if title_id else _title_id_from(video)
        day = parse_date(delivery_date) if delivery_date else date.today()
    except DeliveryError as exc:
        _fail(str(exc))
    settings, defs, instance = _setup(profile)
    from .resources import _catalog

    uri = str(video.resolve())
    stat = video.stat()
    _catalog(settings.catalog_url).record_deliveries([DeliveryRecord(tid, day, uri, f"{stat.st_mtime_ns}-{stat.st_size}", stat.st_size)])
    if not instance.has_dynamic_partition(TITLES_PARTITIONS_NAME, tid):
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, [tid])
    with err.status(f"processing {tid} ({video.name}, profile {settings.profile})", spinner="dots"):
        result = _materialize_title(defs, instance, tid, uri, day.isoformat())
    if not result.success and not _qc_gate_only(result):
        _fail(_run_failure_line(result))
    warns = [e for e in result.get_asset_check_evaluations() if not e.passed]
    for w in warns:
        err.print(f"[yellow]check {w.asset_key.to_user_string()}.{w.check_name} did not pass[/]", highlight=False)
    qc_row = _catalog(settings.catalog_url).qc_result(tid)
    if qc_row is not None and qc_row.dagster_run_id == result.run_id:
        out.print(f"QC verdict {qc_row.verdict} ({qc_row.profile})" + "".join(f"\n  {r}" for r in qc_row.reasons or []), highlight=False, soft_wrap=True)
    out.print(f"processed {tid} (run {result.run_id}); export with: prism export {tid} --to DIR", highlight=False, soft_wrap=True)


EXPORTS = [
    # (asset, file name in the export). Later signal domains add their files here.
    ("source_video", "title.json"),
    ("frame_stats", "frame_stats.parquet"),
    ("shots", "shots.parquet"),
    ("keyframes", "keyframes.parquet"),
    ("embeddings", "embeddings.parquet"),
    ("shot_embeddings", "shot_embeddings.parquet"),
    ("posters", "posters.parquet"),
    ("transcript", "transcript.json"),  # + transcript.srt, transcript.vtt (bundle files)
    ("audio_analysis", "audio.json"),
    ("qc", "qc.json"),
]


@app.command()
def export(
    title_id: str = typer.Argument(..., help="Title id"),
    to: Path = typer.Option(..., "--to", help="Destination folder"),
):
    """Write a title's whole index (title.json and every signal produced so far) to DIR."""
    from .core.artifacts import ArtifactStore, encode
    from .core.store import LocalStore, StoreError
    from .definitions import build_resources
    from .settings import PrismSettings

    settings = PrismSettings.from_env()
    storage = build_resources(settings)["storage"]
    artifacts = storage.artifacts()
    if not artifacts.exists(ArtifactStore.base_key("source_video", title_id)):
        _fail(f"title {title_id!r} has no source_video artifact under {settings.artifact_root} (run `prism process` first)")
    dest = LocalStore(to.expanduser())
    written = []
    for asset_name, filename in EXPORTS:
        base = ArtifactStore.base_key(asset_name, title_id)
        if not artifacts.exists(base):
            continue
        try:
            value = artifacts.read(base)
        except StoreError as exc:
            _fail(str(exc))
        dest.put_bytes(filename, encode(value)[1])
        written.append(filename)
        for name, key in artifacts.bundle_files(base).items():
            dest.put_bytes(name, artifacts.store.get_bytes(key))
            written.append(name)
    out.print(f"exported {title_id} to {dest.root}: {', '.join(written)}", highlight=False)


@app.command()
def backfill(
    start: str = typer.Option(..., "--from", help="First delivery date YYYY-MM-DD"),
    end: str = typer.Option(..., "--to", help="Last delivery date YYYY-MM-DD (inclusive)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the titles, run nothing"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod"),
):
    """Materialize exactly the titles delivered on dates FROM..TO (scanning those date folders)."""
    from .deliveries.layout import DeliveryError, parse_date
    from .deliveries.scan import scan_dates
    from .deliveries.sensors import register_deliveries
    from .partitions import TAG_REPROCESS, TITLES_PARTITIONS_NAME
    from .resources import _catalog

    try:
        d1, d2 = parse_date(start), parse_date(end)
    except DeliveryError as exc:
        _fail(str(exc))
    if d2 < d1:
        _fail(f"--to {end} is before --from {start}")
    settings, defs, instance = _setup(profile)
    storage = build_storage(settings)
    store = storage.deliveries()
    cat = _catalog(settings.catalog_url)
    found = scan_dates(store, d1, d2)
    _, new_titles = register_deliveries(instance, store, cat, found, only_changed=False)
    if new_titles:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, new_titles)
    deliveries = cat.deliveries_between(d1, d2)
    latest: dict[str, object] = {}
    for d in deliveries:  # ordered by date: the last one in range wins
        latest[d.title_id] = d
    if not latest:
        out.print(f"no titles delivered between {d1} and {d2}")
        return
    out.print(f"{len(latest)} title(s) delivered {d1}..{d2}: {', '.join(latest)}", highlight=False)
    if dry_run:
        return
    failed = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("backfill", total=len(latest))
        for tid, d in latest.items():
            progress.update(task, description=f"processing {tid}")
            result = _materialize_title(defs, instance, tid, d.uri, d.delivery_date.isoformat(), {TAG_REPROCESS: "true", "prism/backfill": f"{d1}..{d2}"})
            if not result.success and not _qc_gate_only(result):  # a QC fail verdict is a result, not a failed run
                failed.append((tid, _run_failure_line(result)))
            progress.advance(task)
    for tid, line in failed:
        err.print(f"[red]failed[/] {tid}: {line}", highlight=False)
    out.print(f"backfill {d1}..{d2}: {len(latest) - len(failed)} succeeded, {len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


def build_storage(settings):
    from .definitions import build_resources

    return build_resources(settings)["storage"]


@app.command()
def demo(
    media_dir: Optional[Path] = typer.Option(None, "--media", help="Folder with sample media (default ../shared/media)"),
    delivery_date: Optional[str] = typer.Option(None, "--date", help="Delivery date for the samples (default today)"),
):
    """Deliver sample titles, let the delivery sensor pick them up, materialize everything, summarize."""
    from .catalog import Catalog
    from .deliveries.layout import parse_date
    from .partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
    from .settings import project_root

    settings, defs, instance = _setup(None)
    day = parse_date(delivery_date) if delivery_date else date.today()
    media = (media_dir or project_root().parent / "shared" / "media").expanduser()
    samples = [
        ("qc_composite", "qc_composite.mp4", {"title": "QC composite (Big Buck Bunny + JFK)", "provider": "blender", "expected_languages": ["en"]}),
        ("big_buck_bunny", "big_buck_bunny_0_30.webm", {"title": "Big Buck Bunny (0-30 s)", "provider": "blender", "expected_languages": []}),
    ]
    store = build_storage(settings).deliveries()
    delivered = []
    for tid, fname, sidecar in samples:
        src = media / fname
        if not src.exists():
            err.print(f"[yellow]sample {src} missing, skipped[/]")
            continue
        key = f"{day.isoformat()}/{tid}/{fname}"
        if not store.exists(key):
            store.put_file(key, src)
        store.put_bytes(f"{day.isoformat()}/{tid}/sidecar.json", json.dumps(sidecar).encode())
        delivered.append(tid)
    synth = _synthetic_sample(settings.data_dir / "scratch" / "demo_bars.mp4")
    if synth:
        store.put_file(f"{day.isoformat()}/demo_bars/demo_bars.mp4", synth)
        delivered.append("demo_bars")
    if not delivered:
        _fail(f"no sample media found in {media}")
    out.print(f"delivered {len(delivered)} sample title(s) to {store.uri}/{day.isoformat()}/", highlight=False)

    result = _delivery_tick(defs, instance, settings)
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    requests = list(result.run_requests or [])
    out.print(f"delivery_sensor: {len(requests)} run request(s)")
    failed = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("titles", total=len(requests) + 1)
        for req in requests:
            progress.update(task, description=f"process_title {req.partition_key}")
            res = _materialize_title(defs, instance, req.partition_key, req.tags[TAG_DELIVERY_URI], req.tags[TAG_DELIVERY_DATE])
            failed += not res.success and not _qc_gate_only(res)
            progress.advance(task)
        progress.update(task, description=f"delivery_manifest {day}")
        defs.resolve_job_def("delivery_manifest_job").execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG)
        progress.advance(task)

    cat = Catalog(settings.catalog_url)
    storage = build_storage(settings)
    arts = storage.artifacts()
    from .core.artifacts import ArtifactStore

    table = Table(title=f"Prism demo: deliveries of {day}")
    for col in ("title", "duration s", "fps", "size", "audio", "flags", "shots", "keyframes", "posters", "language", "words", "QC", "status"):
        table.add_column(col)

    def count(asset: str, tid: str) -> str:
        base = ArtifactStore.base_key(asset, tid)
        return str(len(arts.read(base))) if arts.exists(base) else "-"

    def speech(tid: str) -> tuple[str, str]:
        base = ArtifactStore.base_key("transcript", tid)
        if not arts.exists(base):
            return "-", "-"
        tr = arts.read(base)
        words = sum(len(seg.get("words") or []) for seg in tr.get("segments") or [])
        return str(tr.get("language") or "-"), str(words)

    def verdict(tid: str) -> str:
        q = cat.qc_result(tid)
        return q.verdict if q is not None else "-"

    for tid in delivered:
        base = ArtifactStore.base_key("source_video", tid)
        latest = {r.signal: r for r in cat.signal_runs(tid)}  # ordered by id: the last run of each signal wins
        failed_runs = [r for r in latest.values() if r.status == "failed"]
        status = "ok" if not failed_runs else f"failed: {failed_runs[-1].signal}: {failed_runs[-1].error}"
        if arts.exists(base):
            t = arts.read(base)
            table.add_row(tid, f"{t['duration_s']:.2f}", f"{t['fps']:.3f}" if t["fps"] else "-", f"{t['width']}x{t['height']}" if t["width"] else "audio only", str(len(t["audio_tracks"])), ",".join(t["flags"]) or "-",
                          count("shots", tid), count("keyframes", tid), count("posters", tid), *speech(tid), verdict(tid), status)
        else:
            table.add_row(tid, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", verdict(tid), status)
    out.print(table)
    export_dir = settings.data_dir / "exports" / delivered[0]
    out.print(f"artifacts: {settings.artifact_root}\ncatalog:   {settings.catalog_url}\ndagster:   {os.environ['DAGSTER_HOME']}", highlight=False)
    out.print(f"next: prism export {delivered[0]} --to {export_dir}   |   make ui  (then open http://127.0.0.1:3000, Assets > Lineage)", highlight=False)
    out.print("QC verdicts and reasons: qc.json in the export, the daily qc_report asset (HTML + CSV) in the UI", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def search(
    title_id: str = typer.Argument(..., help="Title id"),
    query: str = typer.Argument(..., help="Text to look for, e.g. 'a rabbit in a meadow'"),
    top: int = typer.Option(5, "--top", min=1, help="How many moments to list"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod: the CLIP model to encode the query with"),
):
    """Find the moments of a title that best match a text, with the CLIP text encoder against its
    embeddings (cosine similarity). The query must use the model that made the embeddings."""
    import numpy as np

    from .core.artifacts import ArtifactStore
    from .definitions import build_resources
    from .settings import PrismSettings
    from .visual.clip import ClipLoadError, ClipModelResource
    from .resources import PrismProfile

    try:
        settings = PrismSettings.from_env(**({"profile": profile} if profile else {}))
    except ValueError as exc:
        _fail(str(exc))
    arts = build_resources(settings)["storage"].artifacts()
    base = ArtifactStore.base_key("embeddings", title_id)
    if not arts.exists(base):
        _fail(f"title {title_id!r} has no embeddings (run `prism process` first)")
    emb = arts.read(base)
    made_by = (emb.attrs.get("producer") or {}).get("model") or {}
    try:
        model = ClipModelResource(profile=PrismProfile(name=settings.profile)).get()
    except ClipLoadError as exc:
        _fail(str(exc))
    mine = {k: model.info.get(k) for k in ("model", "weights")}
    theirs = {k: made_by.get(k) for k in ("model", "weights")}
    if mine != theirs:
        _fail(f"embeddings of {title_id} were made by {theirs['model']}/{theirs['weights']}, the query model is {mine['model']}/{mine['weights']}: use the same profile")
    if not model.info.get("weights_trained"):
        err.print("[yellow]warning: random-init CLIP weights (dev profile): similarities are not meaningful[/]", highlight=False)
    q = model.encode_text([query])[0]
    m = np.stack(emb["embedding"].to_numpy())
    sims = m @ q
    order = np.argsort(-sims)[:top]
    table = Table(title=f"{title_id}: best matches for {query!r}")
    for col in ("rank", "t_s", "frame", "shot", "kind", "cosine"):
        table.add_column(col)
    for rank, i in enumerate(order):
        r = emb.iloc[int(i)]
        table.add_row(str(rank), f"{r['t_s']:.2f}", str(int(r["frame"])), str(int(r["shot_index"])), r["kind"], f"{sims[i]:.4f}")
    out.print(table)


def _delivery_tick(defs, instance, settings):
    """One evaluation of the real delivery_sensor with the code location's resources."""
    from dagster import build_sensor_context

    from .definitions import build_resources

    import warnings

    with warnings.catch_warnings():  # get_sensor_def's notice about unresolved resources: we pass them
        warnings.simplefilter("ignore", UserWarning)
        sensor_def = defs.get_sensor_def("delivery_sensor")
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="delivery_sensor", resources=build_resources(settings)) as ctx:
        return sensor_def(ctx)


def _synthetic_sample(dest: Path) -> Path | None:
    """A generated 5 s clip (colour bars + tone) with exact, known properties."""
    if not shutil.which("ffmpeg"):
        return None
    if dest.exists():
        return dest
    import subprocess

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp.mp4")
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=5", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=5",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tmp)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    tmp.replace(dest)
    return dest


@app.command()
def scan(profile: Optional[str] = typer.Option(None, "--profile")):
    """Evaluate the delivery sensor once: record new deliveries, print what it would launch (no runs)."""

    settings, defs, instance = _setup(profile)
    result = _delivery_tick(defs, instance, settings)
    for r in result.run_requests or []:
        out.print(f"{r.partition_key}\t{r.tags.get('prism/delivery_date')}\t{r.tags.get('prism/delivery_uri')}", highlight=False)
    out.print(f"{len(result.run_requests or [])} new or changed deliveries")


def main():
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
