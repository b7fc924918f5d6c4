"""A title whose run fails before its later steps leaves their checks planned, which Dagster shows as failed
("Execution failed") in the Checks list; `close_failed_runs` gives each of them an evaluation of its own: a warning
naming the title, the step that failed and why."""

import pytest
from dagster import AssetCheckResult, AssetCheckSpec, AssetKey, DagsterInstance, Failure, Output, StaticPartitionsDefinition, asset, materialize

from prism_assets.core.dead_run_sensor import report_unevaluated_checks

pytestmark = pytest.mark.unit

parts = StaticPartitionsDefinition(["t-bad", "t-good"])


@asset(partitions_def=parts, check_specs=[AssetCheckSpec("readable", asset="source")])
def source(context):
    if context.partition_key == "t-bad":
        raise Failure(description="t-bad: not a readable media file")
    yield Output(1)
    yield AssetCheckResult(check_name="readable", passed=True, description=f"{context.partition_key}: readable")


@asset(partitions_def=parts, check_specs=[AssetCheckSpec("covers_title", asset="shots")])
def shots(context, source):
    yield Output(2)
    yield AssetCheckResult(check_name="covers_title", passed=True, description=f"{context.partition_key}: covers")


def latest(instance, key, name):
    from dagster import AssetCheckKey

    rec = instance.event_log_storage.get_latest_asset_check_execution_by_key([AssetCheckKey(AssetKey(key), name)])
    return rec.get(AssetCheckKey(AssetKey(key), name))


def test_a_crashed_titles_unreached_checks_become_warnings_naming_it():
    instance = DagsterInstance.ephemeral()
    ok = materialize([source, shots], partition_key="t-good", instance=instance)
    assert ok.success and report_unevaluated_checks(instance, instance.get_run_by_id(ok.run_id)) == 0  # nothing planned unevaluated
    bad = materialize([source, shots], partition_key="t-bad", instance=instance, raise_on_error=False)
    assert not bad.success
    run = instance.get_run_by_id(bad.run_id)
    assert latest(instance, "shots", "covers_title").status.value == "PLANNED"  # what the Checks list resolves as "Execution failed"
    assert report_unevaluated_checks(instance, run) == 2  # source's own check (its step failed) and shots' (never reached)
    for key, name in (("shots", "covers_title"), ("source", "readable")):
        rec = latest(instance, key, name)
        ev = rec.event.dagster_event.event_specific_data
        assert rec.status.value == "FAILED" and ev.severity.value == "WARN" and ev.partition == "t-bad"
        assert ev.description == "t-bad: not evaluated: the run failed at source: t-bad: not a readable media file", ev.description
