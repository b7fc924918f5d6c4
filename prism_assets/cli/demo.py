"""`prism demo`: deliver sample titles, let the delivery sensor pick them up, materialize every
per-title asset, the day's manifest and QC report, and summarize."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import QUIET_RUN_CONFIG, delivery_tick, err, fail, materialize_title, out, qc_gate_only, resources, setup

SAMPLES = [
    ("qc_composite", "qc_composite.mp4", {"title": "QC composite (Big Buck Bunny + JFK)", "provider": "blender", "expected_languages": ["en"]}),
    ("big_buck_bunny", "big_buck_bunny_0_30.webm", {"title": "Big Buck Bunny (0-30 s)", "provider": "blender", "expected_languages": []}),
]


def synthetic_sample(dest: Path) -> Path | None:
    """A generated 5 s clip (colour bars + tone) with exact, known properties."""
    if not shutil.which("ffmpeg"):
        return None
    if dest.exists():
        return dest
    import subprocess

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp.mp4")
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=5", "-f", "lavfi", "-i",
           "sine=frequency=1000:sample_rate=48000:duration=5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", str(tmp)]
    if subprocess.run(cmd, capture_output=True, timeout=120).returncode != 0:
        return None
    tmp.replace(dest)
    return dest


def language_cell(audio_doc: dict | None) -> str:
    """The summary's language column from audio.json: the languages its tracks decided on speech (track order),
    `none` when no track has enough speech to decide, `-` without audio.json or without audio."""
    if not audio_doc or audio_doc.get("no_audio") or not audio_doc.get("tracks"):
        return "-"
    langs = list(dict.fromkeys(str(t["language"]) for t in audio_doc["tracks"] if t.get("language")))
    return ",".join(langs) if langs else "none"


def _summary(settings, delivered: list[str], day: date) -> Table:
    from ..catalog import connect
    from ..core.artifacts import ArtifactStore

    cat = connect(settings.catalog_url)
    arts = resources(settings)["storage"].artifacts()
    table = Table(title=f"Prism demo: deliveries of {day}")
    for col in ("title", "duration s", "fps", "size", "audio", "flags", "shots", "keyframes", "posters", "language", "words", "QC", "status"):
        table.add_column(col)

    def count(asset: str, tid: str) -> str:
        base = ArtifactStore.base_key(asset, tid)
        return str(len(arts.read(base))) if arts.exists(base) else "-"

    def speech(tid: str) -> tuple[str, str]:
        base = ArtifactStore.base_key("transcript", tid)
        tr = arts.read(base) if arts.exists(base) else None
        words = str(sum(len(seg.get("words") or []) for seg in tr.get("segments") or [])) if tr is not None else "-"
        # the language audio.json decided on speech (a transcript's language is the recogniser's guess, also without speech)
        base = ArtifactStore.base_key("audio_analysis", tid)
        return language_cell(arts.read(base) if arts.exists(base) else None), words

    def verdict(tid: str) -> str:
        q = cat.qc_result(tid)
        return q.verdict if q is not None else "-"

    for tid in delivered:
        base = ArtifactStore.base_key("source_video", tid)
        latest = {r.signal: r for r in cat.signal_runs(tid)}  # ordered by id: the last run of each signal wins
        failed_runs = [r for r in latest.values() if r.status == "failed"]
        status = "ok" if not failed_runs else f"failed: {failed_runs[-1].signal}: {failed_runs[-1].error}"
        if status == "ok" and verdict(tid) == "fail":  # every step ran, and `release` held the title back: not "ok"
            status = "held: QC fail"
        if arts.exists(base):
            t = arts.read(base)
            table.add_row(tid, f"{t['duration_s']:.2f}", f"{t['fps']:.3f}" if t["fps"] else "-", f"{t['width']}x{t['height']}" if t["width"] else "audio only",
                          str(len(t["audio_tracks"])), ",".join(t["flags"]) or "-",
                          count("shots", tid), count("keyframes", tid), count("posters", tid), *speech(tid), verdict(tid), status)
        else:
            table.add_row(tid, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", verdict(tid), status)
    return table


def demo(
    media_dir: Optional[Path] = typer.Option(None, "--media", help="Folder with sample media (default ../shared/media)"),
    delivery_date: Optional[str] = typer.Option(None, "--date", help="Delivery date for the samples (default today)"),
):
    """Deliver sample titles, let the delivery sensor pick them up, materialize everything, summarize."""
    from ..core.artifacts import ArtifactStore
    from ..deliveries.layout import DeliveryError, parse_date
    from ..partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
    from ..settings import project_root, redact_url

    settings, defs, instance = setup(None)
    try:
        day = parse_date(delivery_date) if delivery_date else date.today()
    except DeliveryError as exc:
        fail(str(exc))
    media = (media_dir or project_root().parent / "shared" / "media").expanduser()
    store = resources(settings)["storage"].deliveries()
    delivered = []
    for tid, fname, sidecar in SAMPLES:
        src = media / fname
        if not src.exists():
            err.print(f"[yellow]sample {src} missing, skipped[/]")
            continue
        key = f"{day.isoformat()}/{tid}/{fname}"
        if not store.exists(key):
            store.put_file(key, src)
        store.put_bytes(f"{day.isoformat()}/{tid}/sidecar.json", json.dumps(sidecar).encode())
        delivered.append(tid)
    synth = synthetic_sample(settings.data_dir / "scratch" / "demo_bars.mp4")
    if synth:
        store.put_file(f"{day.isoformat()}/demo_bars/demo_bars.mp4", synth)
        delivered.append("demo_bars")
    if not delivered:
        fail(f"no sample media found in {media}")
    out.print(f"delivered {len(delivered)} sample title(s) to {store.uri}/{day.isoformat()}/", highlight=False)

    result = delivery_tick(defs, instance, settings, since=day)  # the samples' date, however old
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    requests = list(result.run_requests or [])
    out.print(f"delivery_sensor: {len(requests)} run request(s)")
    failed = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("titles", total=len(requests) + 2)
        for req in requests:
            progress.update(task, description=f"process_title {req.partition_key}")
            res = materialize_title(defs, instance, req.partition_key, req.tags[TAG_DELIVERY_URI], req.tags[TAG_DELIVERY_DATE],
                                    extra_tags=req.tags)  # the sensor's run, as the daemon would launch it
            failed += not res.success and not qc_gate_only(res)
            progress.advance(task)
        for job in ("delivery_manifest_job", "qc_report_job"):
            progress.update(task, description=f"{job} {day}")
            defs.resolve_job_def(job).execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG)
            progress.advance(task)

    out.print(_summary(settings, delivered, day))
    arts = resources(settings)["storage"].artifacts()
    report = arts.bundle_files(ArtifactStore.base_key("qc_report", day.isoformat(), daily=True)).get("qc_report.html")
    export_dir = settings.data_dir / "exports" / delivered[0]
    out.print(f"artifacts: {settings.artifact_root}\ncatalog:   {redact_url(settings.catalog_url)}\ndagster:   {os.environ['DAGSTER_HOME']}", highlight=False)
    if report:
        out.print(f"QC report: {arts.store.uri_for(report)}  (also: asset qc_report, partition {day}, in the UI)", highlight=False)
    out.print(f"next: prism export {delivered[0]} --to {export_dir}   |   make ui  (then open http://127.0.0.1:3000, Assets > Lineage)", highlight=False)
    out.print(f"viewer: make serve  (then open {settings.api_public_url}/titles/{delivered[0]}; API docs at {settings.api_public_url}/v1/docs; "
              f"index: {settings.index_location})", highlight=False)
    if failed:
        raise typer.Exit(1)
