"""A title whose QC gate failed is indexed all the same.

With `qc.gate: block` (prod) a title with a `fail` verdict fails its blocking check `qc_verdict_not_fail`,
and Dagster holds back everything downstream of that title's `qc` in the run: `search_index` too. But the
index is where operators and the QC events feed see failures, so a failed title must be in it. This
run-failure sensor notices a `process_title` run whose gate failed after `qc` was materialized and
`search_index` was not, and launches `index_title_job` (search_index, then release) for that title: no check of
`qc` is evaluated in that run, so nothing holds it back (its release check fails: the title still cannot ship). Under `gate: warn` (dev) nothing is held back
and the sensor never acts.
"""

from __future__ import annotations

from dagster import DagsterEventType, DefaultSensorStatus, RunFailureSensorContext, RunRequest, define_asset_job, run_failure_sensor

from ..partitions import is_title_run, titles_partitions

INDEX_TITLE_JOB = "index_title_job"
GATE_CHECK = "qc_verdict_not_fail"


def build_index_title_job():
    return define_asset_job(INDEX_TITLE_JOB, selection=["search_index", "release"], partitions_def=titles_partitions,
                            description="search_index and release for one title (after a failed QC gate held them back; or to re-index a "
                                        "title)")


def held_back_by_gate(instance, run_id: str) -> bool:
    """qc was materialized in the run, its gate check failed, and search_index was not materialized."""
    mats = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1000).records
    keys = {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in mats if r.event_log_entry.dagster_event}
    if "qc" not in keys or "search_index" in keys:
        return False
    evals = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000).records
    for r in evals:
        data = r.event_log_entry.dagster_event.event_specific_data if r.event_log_entry.dagster_event else None
        if data is not None and data.check_name == GATE_CHECK and not data.passed:
            return True
    return False


def build_index_after_gate_sensor(process_job: str, index_job):
    @run_failure_sensor(name="index_after_qc_gate", default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                        monitor_all_code_locations=True, request_job=index_job,
                        description="A title held back by a failed QC gate (qc.gate: block) is still indexed: search_index alone is run "
                                    "for it, so the viewer and the QC events feed show the failure.")
    def index_after_qc_gate(context: RunFailureSensorContext):
        run = context.dagster_run
        partition = run.tags.get("dagster/partition")
        if not is_title_run(run, process_job) or not partition or not held_back_by_gate(context.instance, run.run_id):
            return None
        context.log.info(f"{partition}: QC gate failed in run {run.run_id[:8]}; indexing the title on its own")
        return RunRequest(run_key=f"index-after-gate:{run.run_id}", partition_key=partition, tags={"prism/after_gate_of": run.run_id})

    return index_after_qc_gate
