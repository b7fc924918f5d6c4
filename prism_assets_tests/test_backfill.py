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
from prism_assets.core.domain import all_signals, load_domains
from prism_assets.core.title_graph import TitleGraph
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


def _fanout(defs, instance, resources, cursor):
    """Both fan-out sensors over the same manifest materializations (each handles its own: the one-date runs' backfill,
    the others' runs), as one result."""
    from dagster import SensorResult

    results = []
    for name in ("manifest_fanout_sensor", "manifest_date_backfill_sensor"):
        with build_sensor_context(instance=instance, definitions=defs, sensor_name=name, resources=resources, cursor=cursor) as ctx:
            results.append(defs.get_sensor_def(name)(ctx))
    assert len({r.cursor for r in results}) == 1, [r.cursor for r in results]  # the same materializations seen by both
    return SensorResult(run_requests=[q for r in results for q in (r.run_requests or [])], cursor=results[0].cursor,
                        asset_events=[e for r in results for e in (r.asset_events or [])])


def requested(res) -> list[str]:
    """The titles a fan-out result launches: plain run requests (a manifest run inside a backfill, the schedule) or the
    one backfill of every per-title asset over the date's titles (a manifest materialized as a plain run)."""
    out = []
    for r in res.run_requests:
        if r.asset_graph_subset is None:
            out.append(r.partition_key)
            continue
        sub = r.asset_graph_subset
        per_asset = {tuple(sorted(sub.get_partitions_subset(k).get_partition_keys())) for k in sub.asset_keys}
        assert len(per_asset) == 1, per_asset  # every per-title asset over the same titles
        out += list(per_asset.pop())
    return sorted(out)


def _up_to_date(settings, title_id):
    """The catalog as it is after a successful run of every per-title step, at the current code versions."""
    from prism_assets.catalog import connect
    from prism_assets.core.domain import all_signals, load_domains

    cat = connect(settings.catalog_url)
    for sig in all_signals(load_domains(settings.domains)):
        if sig.partitions != "titles":
            continue
        cat.start_signal_run(partition_key=title_id, signal=sig.name, run_id="r-done", code_version=sig.code_version, title_id=title_id)
        cat.finish_signal_run(partition_key=title_id, signal=sig.name, run_id="r-done", status="success")
        for o in sig.outputs:
            cat.record_output(partition_key=title_id, signal=o.name, run_id="r-done", uri="x", fmt="json", size_bytes=1, schema_version="1.0",
                              code_version=sig.code_version)


def test_ui_path_manifest_backfill_fans_out_exact_titles(settings, synth):
    """UI path: a backfill of delivery_manifest over dates -> manifest_fanout_sensor requests exactly the
    titles of those manifests (the date folders' content), tagged with the backfill, the date and the
    manifest run; a title registered from elsewhere for that date is not one of them."""
    from datetime import date

    from prism_assets.catalog import DeliveryRecord, connect

    deliver(settings, synth)
    instance = DagsterInstance.ephemeral()
    resources = build_resources(settings)
    defs = build_definitions(settings)
    first = _fanout(defs, instance, resources, None)  # the first evaluation fans out nothing older than itself
    assert not first.run_requests and first.cursor == "0"
    # a title registered by `prism process --date` from a file outside the delivery root
    connect(settings.catalog_url).record_deliveries([DeliveryRecord("elsewhere", date(2026, 11, 1), "/tmp/elsewhere.mp4")])
    for day in ("2026-11-01", "2026-11-03"):
        res = materialize(signal_assets(settings, "delivery_manifest"), partition_key=day, instance=instance, resources=resources,
                          tags={"dagster/backfill": "abc"})
        assert res.success
        checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
        assert checks and all(checks.values()), checks
    df = resources["storage"].artifacts().read(ArtifactStore.base_key("delivery_manifest", "2026-11-03", daily=True))
    assert isinstance(df, pd.DataFrame) and sorted(df["title_id"]) == ["c1", "c2"]
    assert set(instance.get_dynamic_partitions("titles")) == {"a1", "a2", "c1", "c2"}
    result = _fanout(defs, instance, resources, first.cursor)
    assert sorted(r.partition_key for r in result.run_requests) == ["a1", "a2", "c1", "c2"]
    for r in result.run_requests:
        assert r.job_name == "process_title" and r.tags["dagster/backfill"] == "abc" and r.tags["prism/rerun"] == "stale"
        assert r.tags["prism/delivery_date"] in ("2026-11-01", "2026-11-03") and r.tags["prism/manifest_run"]
        assert r.tags["prism/delivery_uri"].endswith(f"/{r.partition_key}/{r.partition_key}.mp4")
    assert not _fanout(defs, instance, resources, result.cursor).run_requests  # each materialization once


def test_fanout_modes_catch_up_stale_all_and_active_runs(settings, synth):
    """Who materialized the manifest decides which of its titles run: the daily schedule only those never
    attempted for their delivery (a failed title is not relaunched), anyone else those not up to date
    (`prism/rerun=stale`, the default) or all of them (`prism/rerun=all`); a title with a run in the
    queue never gets a second."""
    from dagster import DagsterRunStatus

    from prism_assets.catalog import connect

    deliver(settings, synth)
    instance = DagsterInstance.ephemeral()
    resources = build_resources(settings)
    defs = build_definitions(settings)
    cursor = _fanout(defs, instance, resources, None).cursor
    day = "2026-11-03"  # c1, c2

    last = {}

    def fan(tags):
        nonlocal cursor
        run = materialize(signal_assets(settings, "delivery_manifest"), partition_key=day, instance=instance, resources=resources, tags=tags)
        assert run.success
        last.update(cursor_before=cursor)
        res = _fanout(defs, instance, resources, cursor)
        cursor = res.cursor
        last.update(result=res, run_id=run.run_id)
        return requested(res)

    assert fan({}) == ["c1", "c2"]  # one date from the UI: like a range of one
    # ... launched as ONE backfill of every per-title asset over the date's titles (the Backfills tab shows it), its runs
    # marked as title runs, with the manifest run, the date and the rerun choice
    (bf,) = last["result"].run_requests
    assert bf.requires_backfill_daemon() and not bf.partition_key
    assert {k.to_user_string() for k in bf.asset_graph_subset.asset_keys} == set(TitleGraph.from_signals(all_signals(load_domains(settings.domains))).outputs)
    assert bf.tags["prism/title_run"] == "1" and bf.tags["prism/manifest_run"] == last["run_id"] and bf.tags["prism/delivery_date"] == day
    assert bf.tags["prism/rerun"] == "stale" and "dagster/max_runtime" in bf.tags  # process_title's run time limit
    assert instance.get_run_by_id(last["run_id"]).tags["prism/fanout"].startswith("2 title(s) delivered 2026-11-03: 2 launched as one backfill")
    # as the sensor daemon evaluates it (Dagster validates a backfill request against the sensor's asset selection)
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="manifest_date_backfill_sensor", resources=resources,
                              cursor=last["cursor_before"]) as ctx:
        tick = defs.get_sensor_def("manifest_date_backfill_sensor").evaluate_tick(ctx)
    assert [r.requires_backfill_daemon() for r in tick.run_requests] == [True]
    cat = connect(settings.catalog_url)
    cat.start_signal_run(partition_key="c1", signal="source_video", run_id="r1", code_version="x", title_id="c1")
    cat.finish_signal_run(partition_key="c1", signal="source_video", run_id="r1", status="failed", error="bad")
    assert fan({"dagster/schedule_name": "daily_batch_schedule"}) == ["c2"]  # catch-up: c1 was attempted (and failed)
    _up_to_date(settings, "c2")
    assert fan({}) == ["c1"]  # stale: c2 is up to date, c1 failed
    assert fan({"prism/rerun": "all"}) == ["c1", "c2"]
    # nothing to run: the operator reads it on the manifest run and on the date's partition, with how to force a re-run
    _up_to_date(settings, "c1")
    assert fan({}) == []
    want = "2 title(s) delivered 2026-11-03: 0 launched, 2 up to date (rerun: stale); to re-run the up-to-date ones, materialize the date again with rerun: all (launchpad) or tag prism/rerun = all"
    assert instance.get_run_by_id(last["run_id"]).tags["prism/fanout"] == want
    assert f"fan-out: {want}" in [e.message for e in instance.all_logs(last["run_id"])]  # in the run page's events
    (obs,) = last["result"].asset_events
    assert obs.partition == day and obs.metadata["fanout"].value == want and obs.metadata["launched"].value == 0
    assert fan({"prism/rerun": "all"}) == ["c1", "c2"]
    assert instance.get_run_by_id(last["run_id"]).tags["prism/fanout"].startswith("2 title(s) delivered 2026-11-03: 2 launched as one backfill (Backfills tab), 0 up to date (rerun: all)")
    instance.create_run_for_job(defs.resolve_job_def("process_title"), tags={"dagster/partition": "c1"}, status=DagsterRunStatus.STARTED)
    assert fan({"prism/rerun": "all"}) == ["c2"]  # c1 already has a run in progress


def test_daily_schedule_targets_yesterdays_manifest(settings):
    from datetime import datetime, timezone

    from dagster import build_schedule_context

    defs = build_definitions(settings)
    sched = defs.get_schedule_def("daily_batch_schedule")
    ctx = build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc))
    req = sched(ctx)
    assert req.partition_key == "2026-11-20"



def test_the_rerun_choice_is_a_launch_option(settings, synth):
    """issue: 'the rerun choice (stale / all) is a visible option of the launch (config ...), not a hidden tag': the manifest
    asset's config `rerun` (shown in the launchpad, with its choices described) sets what the fan-out does."""
    from dagster import DagsterInvalidConfigError

    deliver(settings, synth)
    instance = DagsterInstance.ephemeral()
    resources = build_resources(settings)
    defs = build_definitions(settings)
    cursor = _fanout(defs, instance, resources, None).cursor
    assets = signal_assets(settings, "delivery_manifest")
    assert materialize(assets, partition_key="2026-11-03", instance=instance, resources=resources).success  # registers the deliveries
    cursor = _fanout(defs, instance, resources, cursor).cursor
    for t in ("c1", "c2"):
        _up_to_date(settings, t)  # processed since
    spec = defs.get_assets_def("delivery_manifest").op.config_schema.config_type.fields["rerun"]
    assert not spec.is_required and "Open launchpad" in spec.description
    run = materialize(assets, partition_key="2026-11-03", instance=instance, resources=resources,
                      run_config={"ops": {"delivery_manifest": {"config": {"rerun": "all"}}}})
    assert run.success and instance.get_run_by_id(run.run_id).tags["prism/rerun"] == "all"
    res = _fanout(defs, instance, resources, cursor)
    assert requested(res) == ["c1", "c2"]  # up to date, re-run all the same
    assert all(r.tags["prism/rerun"] == "all" for r in res.run_requests)
    run = materialize(assets, partition_key="2026-11-03", instance=instance, resources=resources)  # no option: stale
    assert run.success and "prism/rerun" not in instance.get_run_by_id(run.run_id).tags
    assert not _fanout(defs, instance, resources, res.cursor).run_requests
    with pytest.raises(DagsterInvalidConfigError):
        materialize(assets, partition_key="2026-11-03", instance=instance, resources=resources,
                    run_config={"ops": {"delivery_manifest": {"config": {"rerun": "everything"}}}})
