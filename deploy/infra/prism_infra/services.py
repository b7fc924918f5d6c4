"""Task definitions and ECS services, (they replaced the hand templates deploy/ecs/taskdef-*.json):
families prism-<env>-<name>, containers, commands, sizes and health checks as there; images are
``<account>.dkr.ecr.<region>.amazonaws.com/prism-{code,dagster,api}:<imageTag>`` (nothing is built
at synth time)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .config import EnvConfig
from .data import DataStack
from .nag import suppress
from .network import NetworkStack
from .roles import Roles

USER = "10001:10001"


class Services(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: EnvConfig, net: NetworkStack, data: DataStack, *, cluster: ecs.Cluster, roles: Roles,
                 log_group: logs.ILogGroup, gpu_capacity: ecs.AsgCapacityProvider, api_keys: sm.ISecret, broker_url: sm.ISecret) -> None:
        super().__init__(scope, cid)
        self.cfg, self.roles, self.log_group = cfg, roles, log_group
        p = cfg.prefix
        self.images = {name: ecs.ContainerImage.from_ecr_repository(ecr.Repository.from_repository_name(self, f"Repo{name.capitalize()}", repo), cfg.image_tag)
                       for name, repo in (("code", "prism-code"), ("dagster", "prism-dagster"), ("api", "prism-api"))}
        pg = data.dagster_secret
        self.env = {
            "DAGSTER_HOME": "/opt/dagster/ecs_home",
            "DAGSTER_PG_HOST": data.dagster_db.db_instance_endpoint_address,
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_DB": "dagster",
            "AWS_REGION": cfg.region,
            "PRISM_PROFILE": "prod",
            "PRISM_DELIVERY_ROOT": f"s3://{cfg.bucket('media')}/deliveries",
            "PRISM_DELIVERY_QUEUE_URL": f"https://sqs.{cfg.region}.amazonaws.com/{cfg.account}/{p}-delivery",
            "PRISM_ARTIFACT_ROOT": f"s3://{cfg.bucket('artifacts')}/artifacts",
            "PRISM_INDEX_URI": f"s3://{cfg.bucket('index')}/index",
            "PRISM_LOG_BUCKET": cfg.bucket("artifacts"),
            "PRISM_EXECUTOR": "ecs",
            "PRISM_ECS_GPU_CAPACITY_PROVIDER": gpu_capacity.capacity_provider_name,
            "PRISM_ECS_RUN_TASK_DEFINITION": f"{p}-run",
            "PRISM_SECRET_ARN_PG_PASSWORD": f"{pg.secret_arn}:password::",
            "PRISM_CATALOG_HOST": data.catalog_db.db_instance_endpoint_address,
            "PRISM_CATALOG_PORT": "3306",
            "PRISM_CATALOG_USER": "prism",
            "PRISM_CATALOG_DB": "catalog",
            "PRISM_SECRET_ARN_CATALOG_PASSWORD": f"{data.catalog_secret.secret_arn}:password::",
            "HF_HUB_OFFLINE": "1",
            "PRISM_METRICS_NAMESPACE": "Prism",  # the cloudwatch_metrics sensor (prism_assets/core/metrics.py) behind the Ops alarms
            "PRISM_ENV": cfg.name,
        }
        pg_password = {"DAGSTER_PG_PASSWORD": ecs.Secret.from_secrets_manager(pg, "password")}
        catalog_password = {"PRISM_CATALOG_PASSWORD": ecs.Secret.from_secrets_manager(data.catalog_secret, "password")}
        models = ecs.Volume(name="models", efs_volume_configuration=ecs.EfsVolumeConfiguration(file_system_id=data.models.file_system_id, root_directory="/models", transit_encryption="ENABLED"))

        # ---- task definitions (Fargate: code, webserver, daemon, api; EC2 on GPU nodes: run, worker-gpu)
        code = self._fargate("code", 1024, 4096, roles.task, "code",
                             ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "prism_assets.definitions", "-a", "defs", "--location-name", "prism"],
                             secrets={**pg_password, **catalog_password}, port=("grpc", 4000),
                             health=["CMD", "dagster", "api", "grpc-health-check", "-p", "4000"], container="prism-code")
        web = self._fargate("webserver", 1024, 2048, roles.dagster, "dagster", ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/workspace.yaml"],
                            secrets=pg_password, port=("http", 3000))
        daemon = self._fargate("daemon", 1024, 2048, roles.dagster, "dagster", ["dagster-daemon", "run", "-w", "/opt/dagster/workspace.yaml"], secrets=pg_password)
        api = self._fargate("api", 1024, 2048, roles.api, "api", ["prism", "serve", "--host", "0.0.0.0", "--port", "8080"], port=("http", 8080),
                            env={"AWS_REGION": cfg.region, "PRISM_PROFILE": "prod", "PRISM_ARTIFACT_ROOT": self.env["PRISM_ARTIFACT_ROOT"],
                                 "PRISM_INDEX_URI": self.env["PRISM_INDEX_URI"], "PRISM_API_KEYS_SECRET": api_keys.secret_arn, "HF_HUB_OFFLINE": "1"},
                            health=["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v1/health', timeout=4)"])
        run = self._ec2("run", 4096, 16384, None,  # the EcsRunLauncher sets the command
                        secrets={**pg_password, **catalog_password}, volume=models, gpus=0)
        celery = ["celery", "-A", "dagster_celery.app", "worker", "-Q", "gpu", "-n", "prism-gpu@%h", "--pool", "solo", "--prefetch-multiplier", "1", "--loglevel", "INFO"]
        worker = self._ec2("worker-gpu", 4096, 15360, celery,
                           secrets={**pg_password, **catalog_password, "PRISM_CELERY_BROKER_URL": ecs.Secret.from_secrets_manager(broker_url)},
                           volume=models, gpus=1, env={"PRISM_EXECUTOR": "celery", "PRISM_CELERY_BACKEND_URL": "rpc://"})
        self.task_definitions = {"code": code, "webserver": web, "daemon": daemon, "api": api, "run": run, "worker-gpu": worker}

        # ---- services
        common = dict(cluster=cluster, security_groups=[net.services_sg], vpc_subnets=net.app_subnets, assign_public_ip=False,
                      circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True), platform_version=ecs.FargatePlatformVersion.LATEST)
        client = ecs.ServiceConnectProps(log_driver=ecs.LogDrivers.aws_logs(stream_prefix="service-connect", log_group=log_group))
        self.code = ecs.FargateService(self, "CodeService", min_healthy_percent=100, max_healthy_percent=200, service_name=f"{p}-code", task_definition=code, desired_count=cfg.services["code"],
                                       service_connect_configuration=ecs.ServiceConnectProps(
                                           services=[ecs.ServiceConnectService(port_mapping_name="grpc", dns_name="prism-code", port=4000)],  # workspace.yaml: prism-code:4000
                                           log_driver=ecs.LogDrivers.aws_logs(stream_prefix="service-connect", log_group=log_group)),
                                       health_check_grace_period=None, **common)
        self.webserver = ecs.FargateService(self, "WebserverService", min_healthy_percent=100, max_healthy_percent=200, service_name=f"{p}-webserver",
                                            task_definition=web, desired_count=cfg.services["webserver"],
                                            service_connect_configuration=client, health_check_grace_period=Duration.minutes(2), **common)
        # the daemon is a singleton: never two at once (min 0 %, max 100 %); ECS restarts it when it exits
        self.daemon = ecs.FargateService(self, "DaemonService", service_name=f"{p}-daemon", task_definition=daemon, desired_count=1,
                                         min_healthy_percent=0, max_healthy_percent=100, service_connect_configuration=client, **common)
        self.api = ecs.FargateService(self, "ApiService", min_healthy_percent=100, max_healthy_percent=200, service_name=f"{p}-api", task_definition=api, desired_count=cfg.services["api"],
                                      health_check_grace_period=Duration.minutes(1), **common)
        for svc in (self.webserver, self.daemon):
            svc.node.add_dependency(code)  # the code location's first revision exists before its clients roll
        # Celery GPU workers (PRISM_EXECUTOR=celery): one per GPU of the always-on nodes (0 in dev/staging)
        self.worker_gpu = ecs.Ec2Service(
            self, "WorkerGpuService", service_name=f"{p}-worker-gpu", cluster=cluster, task_definition=worker, desired_count=cfg.gpu_workers_min,
            security_groups=[net.services_sg], vpc_subnets=net.app_subnets, min_healthy_percent=0, max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(capacity_provider=gpu_capacity.capacity_provider_name, weight=1)],
        )
        self.worker_gpu.auto_scale_task_count(min_capacity=cfg.gpu_workers_min, max_capacity=max(cfg.gpu_workers_max, 1))

    # ------------------------------------------------------------------------------------------
    def _fargate(self, name: str, cpu: int, mem: int, role, image: str, command: list[str], *, secrets=None, port=None, health=None, env=None, container=None) -> ecs.FargateTaskDefinition:
        td = ecs.FargateTaskDefinition(self, f"{_cid(name)}Task", family=f"{self.cfg.prefix}-{name}", cpu=cpu, memory_limit_mib=mem, task_role=role,
                                       execution_role=self.roles.execution, runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.X86_64,
                                                                                                                   operating_system_family=ecs.OperatingSystemFamily.LINUX))
        self._container(td, container or name, image, command, secrets=secrets, port=port, health=health, env=env)
        return td

    def _ec2(self, name: str, cpu: int, mem: int, command: list[str] | None, *, secrets, volume: ecs.Volume, gpus: int, env=None) -> ecs.Ec2TaskDefinition:
        td = ecs.Ec2TaskDefinition(self, f"{_cid(name)}Task", family=f"{self.cfg.prefix}-{name}", network_mode=ecs.NetworkMode.AWS_VPC,
                                   task_role=self.roles.task, execution_role=self.roles.execution, volumes=[volume])
        c = self._container(td, name, "code", command, secrets=secrets, env={**self.env, **(env or {})}, cpu=cpu, mem=mem, gpus=gpus)
        c.add_mount_points(ecs.MountPoint(source_volume="models", container_path="/models", read_only=True))
        return td

    def _container(self, td: ecs.TaskDefinition, name: str, image: str, command: list[str] | None, *, secrets=None, port=None, health=None, env=None, cpu=None, mem=None, gpus=0):
        c = td.add_container(
            name, container_name=name, image=self.images[image], command=command, user=USER, essential=True,
            environment=env if env is not None else self.env, secrets=secrets or {},
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self.log_group),
            cpu=cpu, memory_limit_mib=mem, gpu_count=gpus or None,
            linux_parameters=ecs.LinuxParameters(self, f"{_cid(name)}Linux", shared_memory_size=2048) if isinstance(td, ecs.Ec2TaskDefinition) else None,
            health_check=ecs.HealthCheck(command=health, interval=Duration.seconds(30), timeout=Duration.seconds(10), retries=3, start_period=Duration.seconds(120)) if health else None,
            port_mappings=[ecs.PortMapping(container_port=port[1], name=port[0], app_protocol=ecs.AppProtocol.http if port[0] == "http" else ecs.AppProtocol.grpc)] if port else None,
        )
        suppress(td, "ECS2", "Only non-secret configuration (hosts, bucket URIs, names) is in the environment; passwords and keys are injected from Secrets Manager.")
        return c


def _cid(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))

