"""Operations: the alarm topic, the alarms, and the concurrency pool sizes of the environment file
as SSM parameters (read by the deploy workflow's `dagster instance concurrency set`) and outputs.

Custom metrics (namespace ``Prism``, dimension ``Environment``), published by the Dagster daemon and
the code location (cloudwatch:PutMetricData, limited to this namespace in roles.py):

| metric | unit | published | alarm |
|---|---|---|---|
| ``DaemonHeartbeat`` | count | 1 a minute by the daemon | missing for 10 minutes |
| ``RunsFailed`` / ``RunsSucceeded`` | count | per finished run | failed share > 10 % over an hour (at least 5 runs) |
| ``GpuSlotsInUse`` | count | the gpu pool's claimed slots, a minute | GPU nodes in service but no slot in use for an hour |
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .compute import ComputeStack
from .config import EnvConfig
from .data import DataStack
from .roles import METRICS_NAMESPACE


class OpsStack(Stack):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, data: DataStack, compute: ComputeStack, **kw) -> None:
        super().__init__(scope, cid, **kw)
        p = cfg.prefix
        key = kms.Key(self, "AlarmsKey", alias=f"alias/{p}-alarms", enable_key_rotation=True, description=f"{p}: alarm topic")
        key.add_to_resource_policy(iam.PolicyStatement(sid="CloudWatchAlarms", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                                                       actions=["kms:GenerateDataKey*", "kms:Decrypt"], resources=["*"],
                                                       conditions={"StringEquals": {"aws:SourceAccount": cfg.account}}))
        self.topic = sns.Topic(self, "Alarms", topic_name=f"{p}-alarms", master_key=key, enforce_ssl=True)
        if cfg.alarm_email:
            sns.Subscription(self, "AlarmEmail", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL, endpoint=cfg.alarm_email)
        action = cw_actions.SnsAction(self.topic)
        dims = {"Environment": cfg.name}

        def alarm(cid: str, metric: cw.IMetric, threshold: float, periods: int, what: str, *, op=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                  missing=cw.TreatMissingData.NOT_BREACHING) -> cw.Alarm:
            a = cw.Alarm(self, cid, alarm_name=f"{p}-{cid}", alarm_description=what, metric=metric, threshold=threshold, evaluation_periods=periods,
                         comparison_operator=op, treat_missing_data=missing)
            a.add_alarm_action(action)
            a.add_ok_action(action)
            return a

        five = Duration.minutes(5)
        self.alarms = {
            "dlq-depth": alarm("dlq-depth", data.dlq.metric_approximate_number_of_messages_visible(period=five, statistic="Maximum"), 1, 1,
                               "poison delivery messages in the DLQ: read one, fix or delete it (docs/deploy.md)"),
            "queue-age": alarm("queue-age", data.queue.metric_approximate_age_of_oldest_message(period=five, statistic="Maximum"), 900 if cfg.prod else 3600, 3,
                               "the delivery sensor is not draining the delivery queue"),
            "daemon-heartbeat": alarm("daemon-heartbeat", cw.Metric(namespace=METRICS_NAMESPACE, metric_name="DaemonHeartbeat", dimensions_map=dims, period=five, statistic="SampleCount"),
                                      1, 2, "no daemon heartbeat for 10 minutes (sensors, schedules, run queue stopped)",
                                      op=cw.ComparisonOperator.LESS_THAN_THRESHOLD, missing=cw.TreatMissingData.BREACHING),
        }
        failed = cw.Metric(namespace=METRICS_NAMESPACE, metric_name="RunsFailed", dimensions_map=dims, period=Duration.hours(1), statistic="Sum")
        ok = cw.Metric(namespace=METRICS_NAMESPACE, metric_name="RunsSucceeded", dimensions_map=dims, period=Duration.hours(1), statistic="Sum")
        self.alarms["failed-run-rate"] = alarm(
            "failed-run-rate", cw.MathExpression(expression="IF((f + s) >= 5, 100 * f / (f + s), 0)", using_metrics={"f": failed, "s": ok}, period=Duration.hours(1), label="failed runs %"),
            10, 1, "more than 10 % of the last hour's runs failed")
        nodes = cw.Metric(namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances", dimensions_map={"AutoScalingGroupName": f"{p}-gpu"}, period=Duration.minutes(15), statistic="Minimum")
        busy = cw.Metric(namespace=METRICS_NAMESPACE, metric_name="GpuSlotsInUse", dimensions_map=dims, period=Duration.minutes(15), statistic="Maximum")
        self.alarms["gpu-idle"] = alarm(
            "gpu-idle",
            cw.MathExpression(expression=f"IF(n > {cfg.gpu_nodes_min} AND FILL(b, 0) == 0, 1, 0)", using_metrics={"n": nodes, "b": busy}, period=Duration.minutes(15), label="idle GPU nodes"),
            1, 4, "GPU nodes above the floor but no GPU slot in use for an hour (scale-in stuck?)")

        # ---- concurrency pools (deploy/environments.yaml), for `dagster instance concurrency set`
        for pool, size in sorted(cfg.pools.items()):
            ssm.StringParameter(self, f"Pool{pool.capitalize()}", parameter_name=f"/prism/{cfg.name}/pools/{pool}", string_value=str(size),
                                description=f"{p}: size of the Dagster concurrency pool '{pool}' (deploy/environments.yaml)")
            CfnOutput(self, f"Pool{pool.capitalize()}Size", value=str(size), description=f"concurrency pool {pool}")
        ssm.StringParameter(self, "PoolIndex", parameter_name=f"/prism/{cfg.name}/pools/index", string_value="1", description=f"{p}: the index has one writer")
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "DeliveryQueueUrl", value=f"https://sqs.{cfg.region}.amazonaws.com/{cfg.account}/{p}-delivery")
