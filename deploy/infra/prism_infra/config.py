"""One environment of deploy/environments.yaml, as the CDK app sees it.

The file's account ids are placeholders. The real ones come from the environment, never from a
file in the repository:

- ``PRISM_<ENV>_ACCOUNT_ID`` (e.g. ``PRISM_PROD_ACCOUNT_ID``) for that environment, else
- ``CDK_DEPLOY_ACCOUNT`` when only that environment is synthesized (``-c env=<name>``, what the
  deploy workflow does per GitHub environment), else the placeholder from the file.

The region likewise (``PRISM_<ENV>_REGION``, ``CDK_DEPLOY_REGION``, the file). Image tags, the
ALB certificate and host name come from context (``-c imageTag=...``) or the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

REPO = Path(__file__).resolve().parents[3]
ENVIRONMENTS_FILE = REPO / "deploy" / "environments.yaml"
IMAGE_REPOS = {"code": "prism-code", "dagster": "prism-dagster", "api": "prism-api"}  # ECR repository names
PLACEHOLDER_CERTIFICATE = "arn:aws:acm:{region}:{account}:certificate/00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class EnvConfig:
    name: str
    account: str
    region: str
    cluster: str
    gpu_instance_type: str
    gpus_per_node: int
    gpu_nodes_min: int
    gpu_nodes_max: int
    pools: Mapping[str, int]
    services: Mapping[str, int]
    approval_required: bool
    image_tag: str = "latest"
    domain: str = ""
    certificate_arn: str = ""
    account_from_env: bool = False
    alarm_email: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def prod(self) -> bool:
        return self.name == "prod"

    @property
    def prefix(self) -> str:
        """Name prefix of every named resource: prism-<env>."""
        return f"prism-{self.name}"

    @property
    def azs(self) -> list[str]:
        """Explicit AZs: no context lookup (synth stays offline), three in prod."""
        return [f"{self.region}{z}" for z in ("abc" if self.prod else "ab")]

    @property
    def log_retention_days(self) -> int:
        return {"prod": 400, "staging": 90}.get(self.name, 30)

    @property
    def backup_retention_days(self) -> int:
        return 35 if self.prod else 7

    @property
    def gpu_workers_min(self) -> int:
        """Celery GPU workers: one per GPU of the nodes always there (0 in dev: scale to zero)."""
        return self.gpu_nodes_min * self.gpus_per_node

    @property
    def gpu_workers_max(self) -> int:
        return self.gpu_nodes_max * self.gpus_per_node

    def bucket(self, kind: str) -> str:
        """prism-<env>-<kind>-<account>: media (deliveries), artifacts, index, logs."""
        return f"{self.prefix}-{kind}-{self.account}"

    def image(self, repo: str) -> tuple[str, str]:
        return IMAGE_REPOS[repo], self.image_tag


def _env(name: str, key: str) -> str | None:
    return os.environ.get(f"PRISM_{name.upper()}_{key}") or None


def load_environments(
    context: Mapping[str, object] | None = None,
    path: Path = ENVIRONMENTS_FILE,
) -> dict[str, EnvConfig]:
    """Every environment of the file (or only ``context['env']``), resolved for synthesis."""
    context = context or {}
    doc = yaml.safe_load(path.read_text())["environments"]
    only = context.get("env")
    if only and only not in doc:
        raise ValueError(f"unknown environment {only!r}; deploy/environments.yaml has {sorted(doc)}")
    names = [only] if only else list(doc)
    out: dict[str, EnvConfig] = {}
    for name in names:
        e = doc[name]
        single = bool(only)
        account = _env(name, "ACCOUNT_ID") or (os.environ.get("CDK_DEPLOY_ACCOUNT") if single else None)
        region = _env(name, "REGION") or (os.environ.get("CDK_DEPLOY_REGION") if single else None) or e["region"]
        acct = account or str(e["account_id"])
        domain = str(context.get("domain") or _env(name, "DOMAIN") or f"prism-{name}.example.com")
        cert = str(context.get("certificateArn") or _env(name, "CERTIFICATE_ARN") or PLACEHOLDER_CERTIFICATE.format(region=region, account=acct))
        out[name] = EnvConfig(
            name=name,
            account=acct,
            region=region,
            cluster=e["cluster"],
            gpu_instance_type=e["gpu_instance_type"],
            gpus_per_node=int(e["gpus_per_node"]),
            gpu_nodes_min=int(e["gpu_nodes"]["min"]),
            gpu_nodes_max=int(e["gpu_nodes"]["max"]),
            pools={k: int(v) for k, v in e["pools"].items()},
            services={k: int(v) for k, v in e["services"].items()},
            approval_required=bool(e.get("approval_required", False)),
            image_tag=str(context.get("imageTag") or os.environ.get("PRISM_IMAGE_TAG") or "latest"),
            domain=domain,
            certificate_arn=cert,
            account_from_env=account is not None,
            alarm_email=str(context.get("alarmEmail") or _env(name, "ALARM_EMAIL") or ""),
        )
    return out
