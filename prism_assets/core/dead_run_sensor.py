"""The `close_failed_runs` sensor: a failed per-title run leaves nothing unfinished in Prism's books
(see core/run_health.py for how dead runs are found and failed)."""

from __future__ import annotations

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

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
        if run.job_name != job_name:
            return
        why = (context.failure_event.message or "run failed").strip().splitlines()[0][:300]
        titles, removed = close_dead_run(catalog.get(), storage.scratch_dir, run.run_id, run.tags.get("dagster/partition"), why)
        if titles or removed:
            context.log.info(f"run {run.run_id[:8]}: {len(titles)} title(s) marked failed, {removed} scratch folder(s) removed")

    return close_failed_runs
