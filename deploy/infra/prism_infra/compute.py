"""Compute: the ECS cluster (Fargate + the GPU capacity provider), its log group and task secrets,
the roles, the ALB (TLS, Cognito sign-in for the webserver, the API's /v1 routes) and the services
(services.py)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_actions as elbv2_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .config import EnvConfig
from .data import DataStack
from .nag import suppress
from .network import NetworkStack, retention
from .roles import Roles
from .services import Services


class ComputeStack(Stack):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, net: NetworkStack, data: DataStack, **kw) -> None:
        super().__init__(scope, cid, **kw)
        self.cfg = cfg
        p = cfg.prefix
        self.log_group = logs.LogGroup(self, "LogGroup", log_group_name=f"/prism/{cfg.name}", retention=retention(cfg),
                                       removal_policy=RemovalPolicy.RETAIN if cfg.prod else RemovalPolicy.DESTROY)

        # secrets the stack creates (the database ones come from the data stack, rotated there)
        self.api_keys = sm.Secret(self, "ApiKeys", secret_name=f"prism/{cfg.name}/api-keys",
                                  description="serving API keys (JSON list), read by the API at start",
                                  generate_secret_string=sm.SecretStringGenerator(secret_string_template='{"keys": []}', generate_string_key="bootstrap", exclude_punctuation=True))
        suppress(self.api_keys, "SMG4", "API keys are issued to clients by the operator and rotated with them (prism serve reloads the secret); an automatic rotation would lock clients out.")
        self.broker_url = sm.Secret(self, "CeleryBrokerUrl", secret_name=f"prism/{cfg.name}/celery-broker-url",
                                    description="amqps:// URL of the Celery broker (PRISM_EXECUTOR=celery only); set by the operator")
        suppress(self.broker_url, "SMG4", "The broker URL is set by the operator with the broker's own credential rotation; only used with PRISM_EXECUTOR=celery.")

        self.roles = Roles(self, "Roles", cfg, data, log_group_arn=f"arn:aws:logs:{cfg.region}:{cfg.account}:log-group:/prism/{cfg.name}",
                           secrets=[data.dagster_secret, data.catalog_secret, self.api_keys, self.broker_url])
        self.roles.api.add_to_policy(iam.PolicyStatement(sid="ReadApiKeys", actions=["secretsmanager:GetSecretValue"], resources=[self.api_keys.secret_arn]))

        # ---- cluster: Fargate for the services, an EC2 Auto Scaling group of GPU nodes for GPU work
        self.cluster = ecs.Cluster(self, "Cluster", cluster_name=cfg.cluster, vpc=net.vpc, enable_fargate_capacity_providers=True,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED,
                                   default_cloud_map_namespace=ecs.CloudMapNamespaceOptions(name=f"{p}.internal", use_for_service_connect=True))
        instance_role = iam.Role(self, "GpuInstanceRole", role_name=f"{p}-gpu-instance", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                                 description=f"{p}: GPU container instances (ECS agent)")
        user_data = ec2.UserData.for_linux()
        user_data.add_commands("echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config", "echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=false >> /etc/ecs/ecs.config")
        template = ec2.LaunchTemplate(
            self, "GpuLaunchTemplate", launch_template_name=f"{p}-gpu",
            instance_type=ec2.InstanceType(cfg.gpu_instance_type),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),  # the ECS GPU-optimized AMI (SSM parameter, resolved at deploy)
            role=instance_role, security_group=net.services_sg, user_data=user_data, require_imdsv2=True, detailed_monitoring=True,
            block_devices=[ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume.ebs(200, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3))],
        )
        self.gpu_asg = autoscaling.AutoScalingGroup(
            self, "GpuAsg", auto_scaling_group_name=f"{p}-gpu", vpc=net.vpc, vpc_subnets=net.app_subnets, launch_template=template,
            min_capacity=cfg.gpu_nodes_min, max_capacity=cfg.gpu_nodes_max,  # 0 in dev: nodes exist only while GPU tasks wait or run
            new_instances_protected_from_scale_in=True, group_metrics=[autoscaling.GroupMetrics.all()],
        )
        suppress(self.gpu_asg, "AS3", "Scaling is driven by the ECS capacity provider and watched by the GPU-idle alarm of the ops stack; per-instance launch notifications would be noise.")
        self.gpu_capacity = ecs.AsgCapacityProvider(
            self, "GpuCapacity", capacity_provider_name=f"{p}-gpu", auto_scaling_group=self.gpu_asg,
            enable_managed_scaling=True, enable_managed_termination_protection=True, target_capacity_percent=100,
            machine_image_type=ecs.MachineImageType.AMAZON_LINUX_2,
        )
        self.cluster.add_asg_capacity_provider(self.gpu_capacity)
        suppress(instance_role, "IAM5", "The ECS agent's own calls (ecs:Poll, Submit*State, logs) are scoped by CDK to this cluster where the API allows; the rest has no resource-level permissions.",
                 applies_to=["Resource::*", "Action::ecs:Submit*"])

        # ---- ALB: TLS, Cognito sign-in in front of the Dagster webserver; /v1/* to the API (its own keys)
        self.alb = elbv2.ApplicationLoadBalancer(self, "Alb", load_balancer_name=p, vpc=net.vpc, internet_facing=True, security_group=net.alb_sg,
                                                 vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC), drop_invalid_header_fields=True)
        self.alb.log_access_logs(data.logs_bucket, prefix="alb")
        pool = cognito.UserPool(
            self, "Users", user_pool_name=p, self_sign_up_enabled=False, sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED, mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(min_length=14, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY, removal_policy=RemovalPolicy.RETAIN if cfg.prod else RemovalPolicy.DESTROY,
        )
        for rule in ("COG3", "COG8"):  # threat protection (COG3) is a Plus-plan feature (COG8)
            suppress(pool, rule, "Threat protection needs the Cognito Plus plan; the pool has no self sign-up, MFA is required and users are created by an administrator.")
        domain = pool.add_domain("Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=f"{p}-{cfg.account}"))
        client = pool.add_client(
            "AlbClient", user_pool_client_name=f"{p}-alb", generate_secret=True, prevent_user_existence_errors=True,
            o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(authorization_code_grant=True), scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                                         callback_urls=[f"https://{cfg.domain}/oauth2/idpresponse"]),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
        )
        self.https = self.alb.add_listener("Https", port=443, open=False, ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                                           certificates=[elbv2.ListenerCertificate.from_arn(cfg.certificate_arn)],
                                           default_action=elbv2.ListenerAction.fixed_response(404, content_type="text/plain", message_body="not found"))
        self.alb.add_listener("Http", port=80, open=False, default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port="443", permanent=True))

        # ---- services and task definitions
        self.services = Services(self, "Services", cfg, net, data, cluster=self.cluster, roles=self.roles, log_group=self.log_group,
                                 gpu_capacity=self.gpu_capacity, api_keys=self.api_keys, broker_url=self.broker_url)
        web_tg = elbv2.ApplicationTargetGroup(self, "WebTargets", target_group_name=f"{p}-web", vpc=net.vpc, port=3000, protocol=elbv2.ApplicationProtocol.HTTP,
                                              target_type=elbv2.TargetType.IP, health_check=elbv2.HealthCheck(path="/server_info", healthy_http_codes="200"),
                                              deregistration_delay=Duration.seconds(30))
        api_tg = elbv2.ApplicationTargetGroup(self, "ApiTargets", target_group_name=f"{p}-api", vpc=net.vpc, port=8080, protocol=elbv2.ApplicationProtocol.HTTP,
                                              target_type=elbv2.TargetType.IP, health_check=elbv2.HealthCheck(path="/v1/health", healthy_http_codes="200"),
                                              deregistration_delay=Duration.seconds(30))
        self.services.webserver.attach_to_application_target_group(web_tg)
        self.services.api.attach_to_application_target_group(api_tg)
        self.https.add_action("Api", priority=10, conditions=[elbv2.ListenerCondition.path_patterns(["/v1/*"])], action=elbv2.ListenerAction.forward([api_tg]))
        self.https.add_action("Webserver", priority=20, conditions=[elbv2.ListenerCondition.path_patterns(["/*"])],
                              action=elbv2_actions.AuthenticateCognitoAction(user_pool=pool, user_pool_client=client, user_pool_domain=domain,
                                                                             next=elbv2.ListenerAction.forward([web_tg]), session_timeout=Duration.hours(8)))

        CfnOutput(self, "AlbDnsName", value=self.alb.load_balancer_dns_name, description=f"CNAME target of {cfg.domain}")
        CfnOutput(self, "GpuCapacityProvider", value=self.gpu_capacity.capacity_provider_name)
        CfnOutput(self, "UserPoolId", value=pool.user_pool_id, description="create users here (no self sign-up)")
