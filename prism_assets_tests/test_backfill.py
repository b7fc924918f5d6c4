"""Backfill by date launches exactly the titles delivered on those dates, nothing else."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_definitions, build_resources

from .support import signal_assets

PRISM = str(Path(sys.executable).parent / "prism")
DAYS = {"2026-11-01": ["a1", "a2"], "2026-11-02": ["b1"], "2026-11-03": ["c1", "c2"], "2026-11-04": ["d1"]}


def deliver(settings, synth):
    src = synth("bars_25fps_4s.mp4").read_bytes()
    for day, titles in DAYS.items():
        for t in titles:
            folder = settings.data_dir / "deliveries" / day / t
            folder.mkdir(parents=True)
            (folder / f"{t}.mp4").write_bytes(src)
            (folder / "sidecar.json").write_text(json.dumps({"title": t.upper()}))


@pytest.mark.e2e
def test_cli_backfill_runs_exactly_the_dates(settings, synth):
    deliver(settings, synth)
    env = os.environ.copy()
    dry = subprocess.run([PRISM, "backfill", "--from", "2026-11-02", "--to", "2026-11-03", "--dry-run"], capture_output=True, text=True, env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert "3 title(s)" in dry.stdout and "b1, c1, c2" in dry.stdout
    assert not (settings.data_dir / "artifacts" / "titles").exists()
    from prism_assets.catalog import connect
    from prism_assets.catalog.models import Delivery

    assert connect(settings.catalog_url).count(Delivery) == 0  # a dry run records nothing
    run = subprocess.run([PRISM, "backfill", "--from", "2026-11-02", "--to", "2026-11-03"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    done = sorted(p.name for p in (settings.data_dir / "artifacts" / "titles").iterdir())
    assert done == ["b1", "c1", "c2"]
    with DagsterInstance.get() as inst:
        parts = sorted({r.tags.get("dagster/partition") for r in inst.get_runs() if r.job_name == "process_title"})
    assert parts == ["b1", "c1", "c2"]


@pytest.mark.e2e
def test_cli_backfill_empty_range(settings, synth):
    deliver(settings, synth)
    proc = subprocess.run([PRISM, "backfill", "--from", "2026-10-01", "--to", "2026-10-31"], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert proc.returncode == 0 and "no titles delivered" in proc.stdout


def test_ui_path_manifest_backfill_fans_out_exact_titles(settings, synth):
    """UI path: backfill delivery_manifest over dates -> manifest_fanout_sensor requests those titles."""
    deliver(settings, synth)
    instance = DagsterInstance.ephemeral()
    resources = build_resources(settings)
    for day in ("2026-11-01", "2026-11-03"):
        res = materialize(signal_assets(settings, "delivery_manifest"), partition_key=day, instance=instance, resources=resources, tags={"dagster/backfill": "abc"})
        assert res.success
        checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
        assert checks and all(checks.values()), checks
    df = resources["storage"].artifacts().read(ArtifactStore.base_key("delivery_manifest", "2026-11-03", daily=True))
    assert isinstance(df, pd.DataFrame) and sorted(df["title_id"]) == ["c1", "c2"]
    assert set(instance.get_dynamic_partitions("titles")) == {"a1", "a2", "c1", "c2"}
    defs = build_definitions(settings)
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="manifest_fanout_sensor", resources=resources) as ctx:
        result = defs.get_sensor_def("manifest_fanout_sensor")(ctx)
    assert sorted(r.partition_key for r in result.run_requests) == ["a1", "a2", "c1", "c2"]
    assert all(r.job_name == "process_title" and r.tags["prism/reprocess"] == "true" for r in result.run_requests)
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="manifest_fanout_sensor", resources=resources, cursor=result.cursor) as ctx:
        again = defs.get_sensor_def("manifest_fanout_sensor")(ctx)
    assert not again.run_requests


def test_daily_schedule_targets_yesterdays_manifest(settings):
    from datetime import datetime, timezone

    from dagster import build_schedule_context

    defs = build_definitions(settings)
    sched = defs.get_schedule_def("daily_batch_schedule")
    ctx = build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc))
    req = sched(ctx)
    assert req.partition_key == "2026-11-20"
