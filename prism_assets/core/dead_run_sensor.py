"""The `close_failed_runs` sensor: a failed per-title run leaves nothing unfinished in Prism's books
(see core/run_health.py for how dead runs are found and failed), and no check of it "Failed" that
never ran: Dagster resolves a check planned in a run that failed before reaching it as failed
("Execution failed"), so one crashed title turns every later check of the code location red in the
Checks list although no evaluation failed. Each such check gets an evaluation of its own for that
title: severity WARN, "<title>: not evaluated: the run failed at <step>: <error>"."""

from __future__ import annotations

import re

from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterEventType, DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from ..partitions import is_title_run
from ..resources import CatalogResource, PrismStorage
from .tracking import close_dead_run


def build_close_failed_runs_sensor(job_name: str):
    """A run-failure sensor: every failed run of the per-title job has its unfinished signal runs marked
    failed in the catalog and its step scratch removed (see `close_dead_run`)."""
    # every code location: the CLI's runs (execute_in_process on the same instance) carry no code-location origin
    @run_failure_sensor(name="close_failed_runs", default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                        monitor_all_code_locations=True,
                        description="A failed per-title run (killed, crashed, failed by run monitoring) leaves no signal run "
                                    "'started' in the catalog and no step scratch behind.")
    def close_failed_runs(context: RunFailureSensorContext, catalog: CatalogResource, storage: PrismStorage):
        run = context.dagster_run
        if not is_title_run(run, job_name):
            return
        why = (context.failure_event.message or "run failed").strip().splitlines()[0][:300]
        unevaluated = report_unevaluated_checks(context.instance, run)
        if unevaluated:
            context.log.info(f"run {run.run_id[:8]}: {unevaluated} check(s) never evaluated, reported as not evaluated (warning)")
        titles, removed = close_dead_run(catalog.get(), storage.scratch_dir, run.run_id, run.tags.get("dagster/partition"), why)
        if titles or removed:
            context.log.info(f"run {run.run_id[:8]}: {len(titles)} title(s) marked failed, {removed} scratch folder(s) removed")

    return close_failed_runs


def report_unevaluated_checks(instance, run) -> int:
    """For each check planned in the failed run that never got an evaluation: a WARN evaluation naming the title, the
    failed step and its error (one line). Returns how many were reported."""
    planned, done = {}, set()
    for rec in instance.all_logs(run.run_id, of_type={DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION}):
        ev = rec.dagster_event
        data = ev.event_specific_data
        key = (data.asset_key, data.check_name)
        if ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            done.add(key)
        else:
            planned[key] = data
    missing = [k for k in planned if k not in done]
    if not missing:
        return 0
    failures = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    why = "the run failed"
    if failures:
        ev = failures[0].dagster_event
        data = ev.step_failure_data
        user = getattr(getattr(data, "user_failure_data", None), "description", None)  # a Failure's own words
        err = getattr(data, "error", None)
        text = user or re.sub(r"^[A-Za-z_][\w.]*: ", "", err.message if err else "")  # without the exception's class path
        line = text.strip().splitlines()
        why = f"the run failed at {ev.step_key}" + (f": {line[0][:200]}" if line else "")
    title = run.tags.get("dagster/partition")
    for asset_key, check_name in missing:
        instance.report_runless_asset_event(AssetCheckEvaluation(
            asset_key=asset_key, check_name=check_name, passed=False, severity=AssetCheckSeverity.WARN, partition=title,
            description=f"{title}: not evaluated: {why}", metadata={"run_id": run.run_id, "not_evaluated": True}))
    return len(missing)
