"""A title held back by a failed QC gate (qc.gate: block) is indexed all the same (prism_assets/index/gate.py):
a stand-in graph with the same asset and check names, run on an ephemeral instance, then the sensor."""

import pytest
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetIn, DagsterEventType, DagsterInstance, DagsterRunStatus, Output, asset, build_run_status_sensor_context, materialize

from prism_assets.index.gate import build_index_after_gate_sensor, build_index_title_job, held_back_by_gate
from prism_assets.partitions import TITLES_PARTITIONS_NAME, titles_partitions

pytestmark = pytest.mark.unit


def graph(verdict: str):
    @asset(name="qc", partitions_def=titles_partitions,
           check_specs=[AssetCheckSpec("qc_verdict_not_fail", asset="qc", blocking=True)])
    def qc():
        yield Output({"verdict": verdict})
        yield AssetCheckResult(check_name="qc_verdict_not_fail", passed=verdict != "fail", severity=AssetCheckSeverity.ERROR)

    @asset(name="search_index", partitions_def=titles_partitions, ins={"qc": AssetIn("qc")})
    def search_index(qc):
        return qc

    return [qc, search_index]


@pytest.mark.parametrize("verdict, expect", [("fail", True), ("pass", False)])
def test_a_title_held_back_by_the_gate_is_indexed_on_its_own(verdict, expect):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, ["t1"])
        result = materialize(graph(verdict), instance=instance, partition_key="t1", raise_on_error=False,
                             tags={"dagster/partition": "t1"})
        run = instance.get_run_by_id(result.run_id)
        assert held_back_by_gate(instance, result.run_id) is expect
        # the sensor, as the daemon calls it for a failed run of the per-title job
        index_job = build_index_title_job()
        sensor = build_index_after_gate_sensor(run.job_name, index_job)
        failure = next((e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_FAILURE), None)
        if failure is None:  # a passing gate: the run succeeded, nothing to do
            assert not expect and run.status == DagsterRunStatus.SUCCESS
            return
        ctx = build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
                                              dagster_event=failure.dagster_event).for_run_failure()
        req = sensor(ctx)
        assert req is not None and req.partition_key == "t1" and req.run_key == f"index-after-gate:{result.run_id}"

