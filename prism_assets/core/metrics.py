"""The `cloudwatch_metrics` sensor: the custom metrics behind the alarms of deploy/infra (prism_infra/ops.py).

Once a minute it puts, in the namespace PRISM_METRICS_NAMESPACE (deploy/infra: `Prism`) with the
dimension `Environment=<PRISM_ENV>`:

- `DaemonHeartbeat` = 1: a sensor tick proves the daemon (and the code location) runs;
- `RunsFailed` / `RunsSucceeded`: the runs that reached FAILURE / SUCCESS since the last tick (the
  cursor holds the last run update seen; the first tick counts the runs of the last interval only);
- `GpuSlotsInUse`: the claimed slots of the `gpu` concurrency pool (omitted where the instance's
  storage has no concurrency pools).

The sensor is in the Definitions only when PRISM_METRICS_NAMESPACE is set (dev and tests have none).
The client is boto3's `cloudwatch` in the deployment's region (AWS_REGION); boto3 itself reads an
optional AWS_ENDPOINT_URL_CLOUDWATCH (e.g. a VPC endpoint or a local emulator). A CloudWatch error is
one warning line and a skipped tick, never a failed one; the cursor is kept, so the run counts are
put on the next tick that reaches CloudWatch.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from dagster import DagsterRunStatus, DefaultSensorStatus, RunsFilter, SensorEvaluationContext, SensorResult, sensor

from ..settings import PrismSettings

SENSOR_NAME = "cloudwatch_metrics"
INTERVAL_S = 60
GPU_POOL = "gpu"
RUN_PAGE = 1000  # runs read per tick and status; more are counted on the next tick


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def finished_runs(instance, since: float) -> tuple[dict[str, int], float]:
    """The runs that reached FAILURE / SUCCESS after `since` (epoch seconds): ({"RunsFailed": n,
    "RunsSucceeded": n}, the last run update read: the next `since`).

    A run is read when its record was updated after `since` and counted when it also ENDED after it: its
    end time is the update of its last status event, so a run that only got tags later (the run retry
    daemon tags every failed run) is not counted twice."""
    counts, last = {}, since
    for metric, status in (("RunsFailed", DagsterRunStatus.FAILURE), ("RunsSucceeded", DagsterRunStatus.SUCCESS)):
        records = instance.get_run_records(RunsFilter(statuses=[status], updated_after=_utc(since)), limit=RUN_PAGE,
                                           order_by="update_timestamp", ascending=True)
        n = 0
        for rec in records:
            updated = rec.update_timestamp.timestamp()
            ended = rec.end_time if rec.end_time is not None else updated
            n += ended > since
            last = max(last, updated)
        counts[metric] = n
    return counts, last


def gpu_slots_in_use(instance) -> int | None:
    """Claimed slots of the `gpu` pool; None where the storage has no concurrency pools."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    return len(storage.get_concurrency_info(GPU_POOL).claimed_slots)


def metric_data(instance, since: float, environment: str) -> tuple[list[dict], float]:
    """This tick's PutMetricData entries, and the cursor for the next one."""
    now = _utc(time.time())
    dims = [{"Name": "Environment", "Value": environment}]
    counts, last = finished_runs(instance, since)
    values = {"DaemonHeartbeat": 1, **counts}
    slots = gpu_slots_in_use(instance)
    if slots is not None:
        values["GpuSlotsInUse"] = slots
    return [{"MetricName": k, "Dimensions": dims, "Timestamp": now, "Value": float(v), "Unit": "Count"} for k, v in values.items()], last


def build_metrics_sensor(settings: PrismSettings):
    """The `cloudwatch_metrics` sensor for these settings; None without a metrics namespace."""
    namespace, environment, region = settings.metrics_namespace, settings.metrics_environment, settings.s3_region
    if not namespace:
        return None

    @sensor(name=SENSOR_NAME, minimum_interval_seconds=INTERVAL_S, default_status=DefaultSensorStatus.RUNNING,
            description=f"Puts the CloudWatch metrics behind the deploy/infra alarms (namespace {namespace}, Environment={environment}) "
                        "once a minute: DaemonHeartbeat, RunsFailed / RunsSucceeded since the last tick, GpuSlotsInUse "
                        "(claimed slots of the gpu pool). Only in the Definitions when PRISM_METRICS_NAMESPACE is set.")
    def cloudwatch_metrics(context: SensorEvaluationContext):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        since = float(json.loads(context.cursor)["updated"]) if context.cursor else time.time() - INTERVAL_S
        data, last = metric_data(context.instance, since, environment)
        try:
            boto3.client("cloudwatch", region_name=region).put_metric_data(Namespace=namespace, MetricData=data)
        except (BotoCoreError, ClientError) as e:
            why = " ".join(str(e).split())[:300]
            context.log.warning(f"CloudWatch PutMetricData failed ({type(e).__name__}): {why}")
            return SensorResult(skip_reason=f"metrics not put: {type(e).__name__}: {why}")  # cursor kept: counted next tick
        summary = ", ".join(f"{d['MetricName']}={d['Value']:g}" for d in data)
        return SensorResult(skip_reason=f"put {summary}", cursor=json.dumps({"updated": last}))

    return cloudwatch_metrics


def metrics_sensors(settings: PrismSettings) -> list:
    """The platform's metrics sensor as a list (empty without PRISM_METRICS_NAMESPACE), for the Definitions."""
    s = build_metrics_sensor(settings)
    return [s] if s else []
