"""Data: the KMS key, the buckets (media/deliveries, artifacts, index, access logs), the delivery
queue fed by S3 event notifications (with its dead-letter queue), the models file system, and the
two databases (MariaDB catalog, PostgreSQL Dagster storage) with rotated credentials."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import EnvConfig
from .nag import suppress
from .network import NetworkStack, retention

DELIVERY_PREFIX = "deliveries/"
SCRATCH_PREFIXES = ("scratch/", "tmp/")  # expire after a week in every bucket
# roles that may read media only through the VPC endpoint (created by the compute stack, named)
VPC_BOUND_ROLES = ("task", "dagster", "api")


class DataStack(Stack):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, net: NetworkStack, **kw) -> None:
        super().__init__(scope, cid, **kw)
        self.cfg = cfg
        keep = RemovalPolicy.RETAIN if cfg.prod else RemovalPolicy.SNAPSHOT
        self.key = kms.Key(self, "DataKey", alias=f"alias/{cfg.prefix}-data", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                           description=f"{cfg.prefix}: buckets, queues, databases, file system")
        # S3 (event notifications into the encrypted queue) and CloudWatch Logs may use the key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3NotificationsToEncryptedQueue",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cfg.account}},
            )
        )

        # ---- buckets
        self.logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=cfg.bucket("logs"),
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logs and ALB logs accept SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(cfg.log_retention_days), abort_incomplete_multipart_upload_after=Duration.days(1))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress(self.logs_bucket, "S1", "This is the access-log bucket itself; logging it into itself would loop, CloudTrail data events cover it.")
        self.media = self._bucket("Media", "media", versioned=True, extra_rules=[])
        self.artifacts = self._bucket(
            "Artifacts",
            "artifacts",
            versioned=True,
            extra_rules=[s3.LifecycleRule(id="expire-compute-logs", prefix="dagster/compute-logs/", expiration=Duration.days(cfg.log_retention_days))],
        )
        # the index is derived from the artifacts (rebuilt by search_index; LanceDB keeps its own versions)
        self.index = self._bucket("Index", "index", versioned=False, extra_rules=[])

        # ---- queue-based delivery: S3 ObjectCreated under deliveries/ -> SQS (-> DLQ after 5 receives)
        self.dlq = sqs.Queue(
            self,
            "DeliveryDlq",
            queue_name=f"{cfg.prefix}-delivery-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        suppress(self.dlq, "SQS3", "This queue is the dead-letter queue of the delivery queue; a DLQ of a DLQ would hide poison messages.")
        self.queue = sqs.Queue(
            self,
            "DeliveryQueue",
            queue_name=f"{cfg.prefix}-delivery",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(5),  # the sensor deletes a message only after its run request is recorded
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=5),
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3DeliveryEvents",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{cfg.bucket('media')}"}, "StringEquals": {"aws:SourceAccount": cfg.account}},
            )
        )
        # Plain CloudFormation notification configuration (no custom-resource Lambda): the bucket is
        # created after the queue and its policy, so S3's destination check passes.
        cfn_media: s3.CfnBucket = self.media.node.default_child
        cfn_media.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    queue=self.queue.queue_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=DELIVERY_PREFIX)])),
                )
            ]
        )
        self.media.node.add_dependency(self.queue.node.find_child("Policy"))  # the queue itself: by the GetAtt

        # Media and artifacts: nothing from outside the account, Prism roles read only via the VPC endpoint.
        for bucket in (self.media, self.artifacts, self.index):
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DenyOutsideAccount",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:PutBucketPolicy", "s3:PutReplicationConfiguration"],
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                    conditions={"StringNotEquals": {"aws:PrincipalAccount": cfg.account}, "Bool": {"aws:PrincipalIsAWSService": "false"}},
                )
            )
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DenyPrismRolesOutsideVpc",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[bucket.arn_for_objects("*")],
                    conditions={
                        "StringNotEquals": {"aws:SourceVpce": net.s3_endpoint.vpc_endpoint_id},
                        "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{cfg.account}:role/{cfg.prefix}-{r}" for r in VPC_BOUND_ROLES]},
                    },
                )
            )

        # ---- models file system (read-only mount in run tasks and GPU workers)
        self.models_sg = ec2.SecurityGroup(self, "ModelsSg", vpc=net.vpc, description=f"{cfg.prefix} models EFS: NFS from the cluster", allow_all_outbound=False)
        self.models_sg.add_ingress_rule(net.services_sg, ec2.Port.tcp(2049), "NFS from the cluster")
        self.models = efs.FileSystem(
            self,
            "Models",
            file_system_name=f"{cfg.prefix}-models",
            vpc=net.vpc,
            vpc_subnets=net.app_subnets,
            security_group=self.models_sg,
            encrypted=True,
            kms_key=self.key,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            removal_policy=keep if cfg.prod else RemovalPolicy.DESTROY,
        )

        # ---- databases: reached only from the cluster's security group (and the rotation functions)
        self.catalog_db, self.catalog_secret = self._database(
            "Catalog", net, engine=rds.DatabaseInstanceEngine.maria_db(version=rds.MariaDbEngineVersion.VER_10_11_9), port=3306,
            user="prism", db="catalog", rotation=sm.HostedRotation.maria_db_single_user, keep=keep,
        )
        self.dagster_db, self.dagster_secret = self._database(
            "Dagster", net, engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9), port=5432,
            user="dagster", db="dagster", rotation=sm.HostedRotation.postgre_sql_single_user, keep=keep,
        )

    # ------------------------------------------------------------------------------------------
    def _bucket(self, cid: str, kind: str, *, versioned: bool, extra_rules: list[s3.LifecycleRule]) -> s3.Bucket:
        rules = [s3.LifecycleRule(id=f"expire-{p.rstrip('/')}", prefix=p, expiration=Duration.days(7)) for p in SCRATCH_PREFIXES]
        rules.append(s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(2)))
        if versioned:
            rules.append(s3.LifecycleRule(id="noncurrent-versions", noncurrent_version_expiration=Duration.days(30 if self.cfg.prod else 7)))
        return s3.Bucket(
            self,
            cid,
            bucket_name=self.cfg.bucket(kind),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=versioned,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs_bucket,
            server_access_logs_prefix=f"s3/{kind}/",
            lifecycle_rules=rules + extra_rules,
            removal_policy=RemovalPolicy.RETAIN if versioned or self.cfg.prod else RemovalPolicy.DESTROY,
        )

    def _database(self, cid: str, net: NetworkStack, *, engine, port: int, user: str, db: str, rotation, keep: RemovalPolicy):
        cfg = self.cfg
        sg = ec2.SecurityGroup(self, f"{cid}DbSg", vpc=net.vpc, description=f"{cfg.prefix} {db} database: the cluster only", allow_all_outbound=False)
        sg.add_ingress_rule(net.services_sg, ec2.Port.tcp(port), "from the ECS tasks")
        sg.add_ingress_rule(net.rotation_sg, ec2.Port.tcp(port), "from the secret rotation function")
        exports = ["error", "slowquery"] if port == 3306 else ["postgresql"]
        # the exported log groups, made here with their retention (no log-retention custom resource Lambda)
        groups = [logs.LogGroup(self, f"{cid}DbLog{e.capitalize()}", log_group_name=f"/aws/rds/instance/{cfg.prefix}-{db}/{e}", retention=retention(cfg),
                                removal_policy=RemovalPolicy.RETAIN if cfg.prod else RemovalPolicy.DESTROY) for e in exports]
        instance = rds.DatabaseInstance(
            self,
            f"{cid}Db",
            instance_identifier=f"{cfg.prefix}-{db}",
            engine=engine,
            port=port,
            instance_type=ec2.InstanceType("r6g.large" if cfg.prod else "t4g.medium"),
            vpc=net.vpc,
            vpc_subnets=net.data_subnets,
            security_groups=[sg],
            multi_az=cfg.prod,
            allocated_storage=100 if cfg.prod else 20,
            max_allocated_storage=1000 if cfg.prod else 100,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            database_name=db,
            credentials=rds.Credentials.from_generated_secret(user, secret_name=f"prism/{cfg.name}/{db}-db"),
            iam_authentication=True,
            backup_retention=Duration.days(cfg.backup_retention_days),
            deletion_protection=cfg.prod,
            removal_policy=keep,
            auto_minor_version_upgrade=True,
            enable_performance_insights=cfg.prod,
            performance_insight_encryption_key=self.key if cfg.prod else None,
            cloudwatch_logs_exports=exports,
            publicly_accessible=False,
        )
        for g in groups:
            instance.node.add_dependency(g)
        instance.secret.add_rotation_schedule(
            "Rotation",
            hosted_rotation=rotation(vpc=net.vpc, vpc_subnets=net.app_subnets, security_groups=[net.rotation_sg], function_name=f"{cfg.prefix}-{db}-db-rotation"),
            automatically_after=Duration.days(30),
        )
        suppress(instance, "RDS11", "Default engine port kept: access is limited to the cluster's security group, and the clients (Dagster, the catalog) take the port from the environment.")
        if not cfg.prod:
            suppress(instance, "RDS3", f"{cfg.name} is a single-AZ environment by design (cost); prod is Multi-AZ.")
            suppress(instance, "RDS10", f"{cfg.name} databases are disposable (snapshot on delete); prod has deletion protection.")
        return instance, instance.secret

