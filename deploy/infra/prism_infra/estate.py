"""The stack set of one environment, and the app of every environment, with cdk-nag applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from aws_cdk import App, Environment, Stack, Tags

from .compute import ComputeStack
from .config import EnvConfig, load_environments
from .data import DataStack
from .nag import apply_checks
from .network import NetworkStack
from .ops import OpsStack

STACK_KINDS = ("Network", "Data", "Compute", "Ops")
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def new_app(outdir: str | None = None, **context: object) -> App:
    """An App with cdk.json's feature flags (what the CLI passes), for in-process synthesis (tests)."""
    ctx = {**json.loads(CDK_JSON.read_text())["context"], **context}
    return App(outdir=outdir, context=ctx) if outdir else App(context=ctx)


def stack_name(cfg: EnvConfig, kind: str) -> str:
    return f"Prism-{cfg.name}-{kind}"


def build_environment(app: App, cfg: EnvConfig) -> dict[str, Stack]:
    env = Environment(account=cfg.account, region=cfg.region)
    common = dict(env=env, termination_protection=cfg.prod)
    net = NetworkStack(app, stack_name(cfg, "Network"), cfg, description=f"Prism {cfg.name}: VPC, endpoints, security groups", **common)
    data = DataStack(app, stack_name(cfg, "Data"), cfg, net, description=f"Prism {cfg.name}: KMS, buckets, delivery queue, databases, models EFS", **common)
    compute = ComputeStack(app, stack_name(cfg, "Compute"), cfg, net, data, description=f"Prism {cfg.name}: ECS cluster, GPU capacity, services, ALB", **common)
    ops = OpsStack(app, stack_name(cfg, "Ops"), cfg, data, compute, description=f"Prism {cfg.name}: alarms, pool sizes", **common)
    ops.add_stack_dependency(compute) if hasattr(ops, "add_stack_dependency") else ops.add_dependency(compute)
    stacks = {"Network": net, "Data": data, "Compute": compute, "Ops": ops}
    for stack in stacks.values():
        Tags.of(stack).add("prism:environment", cfg.name)
        Tags.of(stack).add("prism:managed-by", "deploy/infra")
    return stacks


def build_app(app: App | None = None, context: Mapping[str, object] | None = None) -> tuple[App, dict[str, dict[str, Stack]]]:
    """Every environment (or only ``-c env=<name>``) into one app, the AwsSolutions checks on all."""
    app = app or App()
    ctx = dict(context or {})
    for k in ("env", "imageTag", "domain", "certificateArn", "alarmEmail"):
        v = app.node.try_get_context(k)
        if v is not None and k not in ctx:
            ctx[k] = v
    cfgs = load_environments(ctx)
    for cfg in cfgs.values():
        # the AZs are fixed per environment (config.py): answer CDK's lookup here, so synth never calls AWS
        app.node.set_context(f"availability-zones:account={cfg.account}:region={cfg.region}", cfg.azs)
    envs = {name: build_environment(app, cfg) for name, cfg in cfgs.items()}
    apply_checks(app)
    return app, envs
