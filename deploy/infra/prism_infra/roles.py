"""Task roles, least privilege, written out statement by statement (no ``grant_*`` helpers: they
add wildcard actions such as ``s3:GetObject*``/``s3:List*``). Names are fixed (prism-<env>-<role>)
because bucket policies and the CI role's PassRole name them.

| role | used by | may |
|---|---|---|
| execution | every task (ECS agent) | pull the three images, write the log group, read the task secrets |
| task | code server, run/step tasks, Celery workers | read deliveries, read/write artifacts + index, consume the delivery queue, launch run/step tasks |
| dagster | webserver, daemon | launch/stop run tasks, compute logs, heartbeat metric |
| api | serving API | read artifacts and the index, its API keys; nothing else |
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .config import IMAGE_REPOS, EnvConfig
from .data import DataStack
from .nag import suppress

METRICS_NAMESPACE = "Prism"


class Roles(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, data: DataStack, *, log_group_arn: str, secrets: list[sm.ISecret]) -> None:
        super().__init__(scope, cid)
        acct, region, p = cfg.account, cfg.region, cfg.prefix
        trust = iam.ServicePrincipal("ecs-tasks.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": acct}})

        def role(name: str, what: str) -> iam.Role:
            return iam.Role(self, name.capitalize(), role_name=f"{p}-{name}", assumed_by=trust, description=f"{p}: {what}")

        self.execution = role("execution", "ECS agent: pull images, write logs, inject secrets")
        self.task = role("task", "code server, run/step tasks and Celery workers")
        self.dagster = role("dagster", "Dagster webserver and daemon")
        self.api = role("api", "serving API (read-only)")

        # ---- execution role
        self.execution.add_to_policy(iam.PolicyStatement(sid="EcrAuth", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.execution.add_to_policy(
            iam.PolicyStatement(
                sid="PullPrismImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[f"arn:aws:ecr:{region}:{acct}:repository/{r}" for r in IMAGE_REPOS.values()],
            )
        )
        self.execution.add_to_policy(iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group_arn}:*"]))
        self.execution.add_to_policy(iam.PolicyStatement(sid="InjectSecrets", actions=["secretsmanager:GetSecretValue"], resources=[s.secret_arn for s in secrets]))
        suppress(self.execution, "IAM5", "ecr:GetAuthorizationToken has no resource-level permissions; the log group statement covers its streams only.",
                 applies_to=["Resource::*", f"Resource::{log_group_arn}:*"])

        # ---- S3 access (per prefix, per role). Literal ARNs: the bucket names are fixed, and no
        # cross-stack export ties the data stack's buckets to this stack.
        def obj(kind: str, prefix: str) -> str:
            return f"arn:aws:s3:::{cfg.bucket(kind)}/{prefix}/*"

        def bucket(kind: str) -> str:
            return f"arn:aws:s3:::{cfg.bucket(kind)}"

        read = ["s3:GetObject", "s3:GetObjectVersion"]
        write = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        self.task.add_to_policy(iam.PolicyStatement(sid="ReadDeliveries", actions=read, resources=[obj("media", "deliveries")]))
        self.task.add_to_policy(_list(bucket("media"), ["deliveries", "deliveries/*"], "ListDeliveries"))
        self.task.add_to_policy(iam.PolicyStatement(sid="ReadWriteArtifacts", actions=read + write, resources=[
            obj("artifacts", "artifacts"), obj("artifacts", "dagster/compute-logs"), obj("artifacts", "scratch")]))
        self.task.add_to_policy(_list(bucket("artifacts"), ["artifacts", "artifacts/*", "dagster/*", "scratch/*"], "ListArtifacts"))
        self.task.add_to_policy(iam.PolicyStatement(sid="WriteIndex", actions=read + write, resources=[obj("index", "index")]))
        self.task.add_to_policy(_list(bucket("index"), ["index", "index/*"], "ListIndex"))
        self.task.add_to_policy(_kms(data.key, ["kms:Decrypt", "kms:GenerateDataKey"], f"s3.{region}.amazonaws.com", sid="BucketKeyViaS3"))
        # the delivery sensor (evaluated by the code server) consumes the queue: receive, then delete
        # only after the run request is recorded
        self.task.add_to_policy(iam.PolicyStatement(sid="ConsumeDeliveryQueue", actions=[
            "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"], resources=[f"arn:aws:sqs:{region}:{acct}:{p}-delivery"]))
        self.task.add_to_policy(_kms(data.key, ["kms:Decrypt"], f"sqs.{region}.amazonaws.com", sid="QueueKeyViaSqs"))

        self.dagster.add_to_policy(iam.PolicyStatement(sid="ComputeLogs", actions=["s3:GetObject", "s3:PutObject"], resources=[obj("artifacts", "dagster/compute-logs")]))
        self.dagster.add_to_policy(_list(bucket("artifacts"), ["dagster/*"], "ListComputeLogs"))
        self.dagster.add_to_policy(_kms(data.key, ["kms:Decrypt", "kms:GenerateDataKey"], f"s3.{region}.amazonaws.com", sid="BucketKeyViaS3"))

        self.api.add_to_policy(iam.PolicyStatement(sid="ReadArtifacts", actions=["s3:GetObject"], resources=[obj("artifacts", "artifacts")]))
        self.api.add_to_policy(iam.PolicyStatement(sid="ReadIndex", actions=["s3:GetObject"], resources=[obj("index", "index")]))
        self.api.add_to_policy(_list(bucket("artifacts"), ["artifacts", "artifacts/*"], "ListArtifacts"))
        self.api.add_to_policy(_list(bucket("index"), ["index", "index/*"], "ListIndex"))
        self.api.add_to_policy(_kms(data.key, ["kms:Decrypt"], f"s3.{region}.amazonaws.com", sid="BucketKeyDecryptViaS3"))

        objects = [f"Resource::{a}" for a in (obj("media", "deliveries"), obj("artifacts", "artifacts"), obj("artifacts", "dagster/compute-logs"), obj("artifacts", "scratch"), obj("index", "index"))]

        # ---- ECS: launch run (and step) tasks of this environment only; pass only the two roles
        for r in (self.task, self.dagster):
            r.add_to_policy(iam.PolicyStatement(sid="RunPrismTasks", actions=["ecs:RunTask"], resources=[f"arn:aws:ecs:{region}:{acct}:task-definition/{p}-run:*"],
                                                conditions={"ArnEquals": {"ecs:cluster": f"arn:aws:ecs:{region}:{acct}:cluster/{cfg.cluster}"}}))
            r.add_to_policy(iam.PolicyStatement(sid="ManagePrismTasks", actions=["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"],
                                                resources=[f"arn:aws:ecs:{region}:{acct}:task/{cfg.cluster}/*"]))
            r.add_to_policy(iam.PolicyStatement(sid="ReadTaskDefinitions", actions=["ecs:DescribeTaskDefinition", "ecs:ListTasks", "ec2:DescribeNetworkInterfaces"], resources=["*"]))
            r.add_to_policy(iam.PolicyStatement(sid="PassOnlyPrismTaskRoles", actions=["iam:PassRole"], resources=[self.task.role_arn, self.execution.role_arn],
                                                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}))
            # custom metrics (daemon heartbeat, run outcomes, GPU slots in use): the Prism namespace only
            r.add_to_policy(iam.PolicyStatement(sid="PrismMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                                                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}))
            suppress(r, "IAM5", "Object ARNs are limited to Prism prefixes of this environment's buckets; ecs:DescribeTaskDefinition/ListTasks, "
                     "ec2:DescribeNetworkInterfaces and cloudwatch:PutMetricData have no resource-level permissions (the latter is limited by namespace); "
                     "tasks and task-definition revisions are named by this cluster/family.",
                     applies_to=objects + ["Resource::*", f"Resource::arn:aws:ecs:{region}:{acct}:task-definition/{p}-run:*",
                                                        f"Resource::arn:aws:ecs:{region}:{acct}:task/{cfg.cluster}/*"])
        suppress(self.api, "IAM5", "Read-only object access limited to the artifacts/ and index/ prefixes of this environment's buckets.",
                 applies_to=[f"Resource::{obj('artifacts', 'artifacts')}", f"Resource::{obj('index', 'index')}"])


def _list(bucket_arn: str, prefixes: list[str], sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=["s3:ListBucket"], resources=[bucket_arn], conditions={"StringLike": {"s3:prefix": prefixes}})


def _kms(key: kms.IKey, actions: list[str], via: str, *, sid: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=[key.key_arn], conditions={"StringEquals": {"kms:ViaService": via}})

