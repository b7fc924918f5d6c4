"""Network: a VPC without NAT (no route out of the account for media), the S3 gateway endpoint,
interface endpoints for the AWS APIs the tasks call, flow logs, and the security groups every
other stack refers to (kept here so that the data stack can admit the cluster without a cycle)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import EnvConfig
from .nag import suppress

VPC_CIDR = "10.40.0.0/16"
# AWS APIs reached through interface endpoints (private DNS): images, logs, secrets, queues,
# parameters, the ECS agent, metrics, KMS and STS. Nothing else has a route out of the VPC.
INTERFACE_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "EcsAgent": ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
    "EcsTelemetry": ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}


class NetworkStack(Stack):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, **kw) -> None:
        super().__init__(scope, cid, **kw)
        self.cfg = cfg
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=cfg.prefix,
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=cfg.azs,
            nat_gateways=0,  # no NAT: tasks reach AWS through endpoints only
            subnet_configuration=[
                ec2.SubnetConfiguration(name="ingress", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, map_public_ip_on_launch=False),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            restrict_default_security_group=False,
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", log_group_name=f"/prism/{cfg.name}/vpc-flow", retention=retention(cfg), removal_policy=RemovalPolicy.RETAIN if cfg.prod else RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs), traffic_type=ec2.FlowLogTrafficType.REJECT)

        # S3 through the gateway endpoint only, and only to this account's buckets (no copy-out).
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[ec2.SubnetSelection(subnet_group_name="app"), ec2.SubnetSelection(subnet_group_name="data")]
        )
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="OnlyThisAccountsBuckets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=["arn:aws:s3:::*", "arn:aws:s3:::*/*"],
                conditions={"StringEquals": {"aws:ResourceAccount": cfg.account}},
            )
        )
        # ECR layers live in an AWS-owned bucket: allowed by name, read only.
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:aws:s3:::prod-{cfg.region}-starport-layer-bucket/*"],
            )
        )

        self.endpoints_sg = ec2.SecurityGroup(self, "EndpointsSg", vpc=self.vpc, description="interface endpoints: HTTPS from the VPC", allow_all_outbound=False)
        self.endpoints_sg.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from the VPC")
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name, service=service, private_dns_enabled=True, security_groups=[self.endpoints_sg], open=False, subnets=ec2.SubnetSelection(subnet_group_name="app")
            )

        # Security groups: ALB (HTTPS from users), services (every ECS task and GPU node), the
        # secret-rotation functions. The data stack lets only services + rotation into the databases.
        self.alb_sg = ec2.SecurityGroup(self, "AlbSg", vpc=self.vpc, description=f"{cfg.prefix} ALB: HTTPS in", allow_all_outbound=False)
        self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS from users (Cognito sign-in at the ALB)")
        self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP, redirected to HTTPS")
        suppress(self.alb_sg, "EC23", "The ALB is the only public entry: it terminates TLS and authenticates every webserver request with Cognito; the API behind it checks its own keys.")

        self.services_sg = ec2.SecurityGroup(self, "ServicesSg", vpc=self.vpc, description=f"{cfg.prefix} ECS tasks and GPU nodes", allow_all_outbound=True)
        self.services_sg.add_ingress_rule(self.services_sg, ec2.Port.all_tcp(), "tasks talk to each other (code server gRPC, Celery, Service Connect)")
        for port, what in ((3000, "webserver"), (8080, "API")):
            self.services_sg.add_ingress_rule(self.alb_sg, ec2.Port.tcp(port), f"ALB to the {what}")
            self.alb_sg.add_egress_rule(self.services_sg, ec2.Port.tcp(port), f"ALB to the {what}")
        self.alb_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "ALB to the Cognito token endpoint")

        self.rotation_sg = ec2.SecurityGroup(self, "RotationSg", vpc=self.vpc, description=f"{cfg.prefix} secret rotation functions", allow_all_outbound=True)

    @property
    def app_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_group_name="app")

    @property
    def data_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_group_name="data")


def retention(cfg: EnvConfig) -> logs.RetentionDays:
    return {30: logs.RetentionDays.ONE_MONTH, 90: logs.RetentionDays.THREE_MONTHS, 400: logs.RetentionDays.THIRTEEN_MONTHS}[cfg.log_retention_days]

