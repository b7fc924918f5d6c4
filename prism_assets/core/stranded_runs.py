"""The `enqueue_stranded_runs` sensor: a run created but never queued is queued.

Dagster's daemon creates a run, then queues it (the run coordinator writes its ENQUEUED event). If the
storage fails between the two (a dropped PostgreSQL connection), the run stays NOT_STARTED for ever:
nothing launches it and nothing fails it. Measured on the production flow
(`benchmarks/faults.py postgres_connections_dropped`): run retries created during the fault were
left NOT_STARTED ("Failed to retry run ...: server closed the connection"), so their titles never
ended. This sensor queues every run NOT_STARTED for longer than `STRANDED_AFTER_S`: the queued run
coordinator then launches it as any other, under the same run limits.
"""

from __future__ import annotations

import time

from dagster import DagsterEvent, DagsterEventType, DagsterRunStatus, DefaultSensorStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor

STRANDED_AFTER_S = 120.0
LIMIT = 100


def enqueue_stranded(instance, now: float | None = None, after_s: float = STRANDED_AFTER_S) -> list[str]:
    """Queue the runs NOT_STARTED for longer than `after_s`; their ids. Only where the daemon's queued
    run coordinator dequeues them: under another coordinator a queued run would wait for ever too."""
    from dagster._core.run_coordinator import QueuedRunCoordinator

    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        return []
    now = time.time() if now is None else now
    queued = []
    for rec in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED]), limit=LIMIT):
        if rec.create_timestamp.timestamp() > now - after_s:
            continue
        run = rec.dagster_run
        if run.remote_job_origin is None:  # a run the daemon cannot launch (e.g. the CLI's in-process runs)
            continue
        instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.PIPELINE_ENQUEUED.value, job_name=run.job_name),
                                      run_id=run.run_id)
        queued.append(run.run_id)
    return queued


@sensor(name="enqueue_stranded_runs", minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description=f"Queues runs left NOT_STARTED for over {STRANDED_AFTER_S:.0f} s (created, but queuing them failed).")
def enqueue_stranded_runs(context: SensorEvaluationContext):
    queued = enqueue_stranded(context.instance)
    for run_id in queued:
        context.log.warning(f"run {run_id} was created but never queued; queued it now")
    return SkipReason(f"{len(queued)} stranded run(s) queued" if queued else "no stranded runs")
