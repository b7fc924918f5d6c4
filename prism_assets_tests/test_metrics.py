"""The `cloudwatch_metrics` sensor puts the metrics behind the deploy/infra alarms (moto's CloudWatch, in process)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from dagster import DagsterEvent, DagsterEventType, DagsterRunStatus, DefaultSensorStatus, build_sensor_context
from dagster._core.test_utils import create_run_for_test, instance_for_test
from moto import mock_aws

from prism_assets.core.metrics import GPU_POOL, SENSOR_NAME, build_metrics_sensor
from prism_assets.definitions import build_definitions
from prism_assets.settings import PrismSettings

REGION = "eu-west-1"
METRICS = ("DaemonHeartbeat", "RunsFailed", "RunsSucceeded", "GpuSlotsInUse")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for var in ("PRISM_METRICS_NAMESPACE", "PRISM_ENV", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def metrics_settings(settings):
    return settings.with_(metrics_namespace="Prism", metrics_environment="staging", s3_region=REGION)


def _finish(instance, status: DagsterRunStatus) -> str:
    """A run that started and then ended with `status`, through its events (as a run worker reports them)."""
    run = create_run_for_test(instance, job_name="process_title", status=DagsterRunStatus.STARTED)
    if status == DagsterRunStatus.FAILURE:
        instance.report_run_failed(run)
    else:
        instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.PIPELINE_SUCCESS.value, job_name=run.job_name),
                                      run_id=run.run_id)
    assert instance.get_run_by_id(run.run_id).status == status
    return run.run_id


def _stats(name: str, environment: str = "staging") -> dict:
    cw = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(timezone.utc)
    points = cw.get_metric_statistics(Namespace="Prism", MetricName=name, Dimensions=[{"Name": "Environment", "Value": environment}],
                                      StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=7200,
                                      Statistics=["Sum", "SampleCount", "Maximum"])["Datapoints"]
    return {"Sum": sum(p["Sum"] for p in points), "SampleCount": sum(p["SampleCount"] for p in points),
            "Maximum": max((p["Maximum"] for p in points), default=None)}


def test_a_tick_puts_heartbeat_finished_runs_and_gpu_slots_and_the_next_counts_only_new_runs(metrics_settings):
    sensor = build_metrics_sensor(metrics_settings)
    with mock_aws(), instance_for_test() as instance:  # SQLite storage: concurrency pools supported
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, 2)
        busy = create_run_for_test(instance, job_name="process_title", status=DagsterRunStatus.STARTED)
        instance.event_log_storage.claim_concurrency_slot(GPU_POOL, busy.run_id, "embeddings")
        failed = _finish(instance, DagsterRunStatus.FAILURE)
        _finish(instance, DagsterRunStatus.SUCCESS)
        _finish(instance, DagsterRunStatus.SUCCESS)

        first = sensor(build_sensor_context(instance=instance))
        assert first.skip_reason.skip_message == "put DaemonHeartbeat=1, RunsFailed=1, RunsSucceeded=2, GpuSlotsInUse=1"
        assert first.cursor and json.loads(first.cursor)["updated"] > 0
        cw = boto3.client("cloudwatch", region_name=REGION)
        listed = cw.list_metrics(Namespace="Prism")["Metrics"]
        assert {m["MetricName"] for m in listed} == set(METRICS)
        assert all(m["Dimensions"] == [{"Name": "Environment", "Value": "staging"}] for m in listed)
        assert _stats("DaemonHeartbeat")["SampleCount"] == 1
        assert _stats("RunsFailed")["Sum"] == 1 and _stats("RunsSucceeded")["Sum"] == 2
        assert _stats("GpuSlotsInUse")["Maximum"] == 1

        # the next tick: one new failure; the first failed run only got a tag (as the run retry daemon adds): not counted again
        instance.add_run_tags(failed, {"dagster/will_retry": "false"})
        _finish(instance, DagsterRunStatus.FAILURE)
        instance.event_log_storage.free_concurrency_slots_for_run(busy.run_id)
        second = sensor(build_sensor_context(instance=instance, cursor=first.cursor))
        assert second.skip_reason.skip_message == "put DaemonHeartbeat=1, RunsFailed=1, RunsSucceeded=0, GpuSlotsInUse=0"
        assert json.loads(second.cursor)["updated"] >= json.loads(first.cursor)["updated"]
        assert _stats("DaemonHeartbeat")["SampleCount"] == 2
        assert _stats("RunsFailed")["Sum"] == 2 and _stats("RunsSucceeded")["Sum"] == 2

        third = sensor(build_sensor_context(instance=instance, cursor=second.cursor))  # nothing new: zeros, still a heartbeat
        assert third.skip_reason.skip_message == "put DaemonHeartbeat=1, RunsFailed=0, RunsSucceeded=0, GpuSlotsInUse=0"
        assert _stats("RunsFailed")["Sum"] == 2 and _stats("DaemonHeartbeat")["SampleCount"] == 3


def test_the_first_tick_counts_only_the_last_interval(metrics_settings):
    sensor = build_metrics_sensor(metrics_settings)
    with mock_aws(), instance_for_test() as instance:
        _finish(instance, DagsterRunStatus.FAILURE)
        old = (datetime.now(timezone.utc) - timedelta(minutes=5)).timestamp()
        cursor = json.dumps({"updated": old})
        assert "RunsFailed=1" in sensor(build_sensor_context(instance=instance, cursor=cursor)).skip_reason.skip_message
        later = json.dumps({"updated": datetime.now(timezone.utc).timestamp() + 1})  # a cursor past every run
        assert "RunsFailed=0" in sensor(build_sensor_context(instance=instance, cursor=later)).skip_reason.skip_message


def test_no_gpu_slots_metric_without_concurrency_pools(metrics_settings):
    from dagster import DagsterInstance

    with mock_aws(), DagsterInstance.ephemeral() as instance:  # in-memory event log: no pools
        _finish(instance, DagsterRunStatus.SUCCESS)
        result = build_metrics_sensor(metrics_settings)(build_sensor_context(instance=instance))
        assert result.skip_reason.skip_message == "put DaemonHeartbeat=1, RunsFailed=0, RunsSucceeded=1"
        names = {m["MetricName"] for m in boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="Prism")["Metrics"]}
        assert names == {"DaemonHeartbeat", "RunsFailed", "RunsSucceeded"}


def test_a_cloudwatch_error_skips_the_tick_with_one_line_and_keeps_the_cursor(metrics_settings, monkeypatch, capsys):
    from botocore.exceptions import ClientError

    class Failing:
        def put_metric_data(self, **kw):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform\ncloudwatch:PutMetricData"}}, "PutMetricData")

    monkeypatch.setattr(boto3, "client", lambda *a, **kw: Failing())
    with instance_for_test() as instance:
        _finish(instance, DagsterRunStatus.FAILURE)
        result = build_metrics_sensor(metrics_settings)(build_sensor_context(instance=instance, cursor=json.dumps({"updated": 1.0})))
    message = result.skip_reason.skip_message
    assert message.startswith("metrics not put: ClientError: ") and "AccessDenied" in message and "\n" not in message
    assert result.cursor is None  # kept: the failed run is counted by the next tick that reaches CloudWatch
    log = capsys.readouterr().err  # the tick's log (Dagster's console handler)
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "CloudWatch PutMetricData failed (ClientError): " in warnings[0] and "AccessDenied" in warnings[0]


def test_an_unreachable_endpoint_is_a_skip_not_a_failure(metrics_settings, monkeypatch):
    """The client is made in the deployment's region; a connection error (simulated: unit tests open no sockets) is a skip."""
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def put_metric_data(self, **kw):
            raise EndpointConnectionError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com/")

    seen = {}
    monkeypatch.setattr(boto3, "client", lambda service, **kw: seen.update(service=service, **kw) or Down())
    with instance_for_test() as instance:
        result = build_metrics_sensor(metrics_settings)(build_sensor_context(instance=instance))
    assert seen == {"service": "cloudwatch", "region_name": REGION}
    assert result.skip_reason.skip_message.startswith("metrics not put: EndpointConnectionError: Could not connect")


def test_boto3_reads_the_cloudwatch_endpoint_itself(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:4566")
    assert boto3.client("cloudwatch", region_name=REGION).meta.endpoint_url == "http://127.0.0.1:4566"


def test_the_sensor_is_in_the_definitions_only_with_a_metrics_namespace(settings, metrics_settings):
    assert settings.metrics_namespace == "" and build_metrics_sensor(settings) is None
    assert SENSOR_NAME not in {s.name for s in build_definitions(settings).sensors}
    defs = build_definitions(metrics_settings)
    sensor = {s.name: s for s in defs.sensors}[SENSOR_NAME]
    assert sensor.default_status == DefaultSensorStatus.RUNNING and sensor.minimum_interval_seconds == 60
    assert "Environment=staging" in sensor.description and "PRISM_METRICS_NAMESPACE" in sensor.description


def test_settings_from_the_environment():
    s = PrismSettings.from_env(env={"PRISM_METRICS_NAMESPACE": " Prism ", "PRISM_ENV": "prod", "AWS_REGION": REGION}, data_dir="/tmp/prism-metrics")
    assert (s.metrics_namespace, s.metrics_environment, s.s3_region) == ("Prism", "prod", REGION)
    d = PrismSettings.from_env(env={}, data_dir="/tmp/prism-metrics")
    assert (d.metrics_namespace, d.metrics_environment) == ("", "dev")
