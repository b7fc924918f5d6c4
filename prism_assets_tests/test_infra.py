"""The AWS estate as code (deploy/infra, a CDK v2 app): every environment of deploy/environments.yaml
synthesizes (in process once per module, and once through the pinned `cdk` CLI), cdk-nag's
AwsSolutions pack leaves no unsuppressed error, cfn-lint is clean, the properties that matter hold
(encryption, public access, TLS only, DLQ redrive, Multi-AZ only in prod, GPU scale-to-zero in dev,
a read-only API role, no `s3:*` grant), and a compact snapshot of every stack matches
prism_assets_tests/snapshots/infra.json (PRISM_UPDATE_SNAPSHOTS=1 rewrites it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

INFRA = REPO / "deploy" / "infra"
VENV_BIN = Path(sys.executable).parent
SNAPSHOT = Path(__file__).parent / "snapshots" / "infra.json"
ENVS = yaml.safe_load((REPO / "deploy" / "environments.yaml").read_text())["environments"]
KINDS = ("Network", "Data", "Compute", "Ops")
# cfn-lint checks left out, each for a reason: W3010 = AZs are fixed per environment on purpose
# (config.py: synth never looks them up, so it runs offline and the subnets never move).
CFN_LINT_IGNORE = ["W3010"]
ACCOUNT_VARS = [f"PRISM_{e.upper()}_{k}" for e in ENVS for k in ("ACCOUNT_ID", "REGION", "DOMAIN", "CERTIFICATE_ARN", "ALARM_EMAIL")] + [
    "CDK_DEPLOY_ACCOUNT", "CDK_DEPLOY_REGION", "PRISM_IMAGE_TAG"]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ACCOUNT_VARS}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true", PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    """Every environment synthesized once, in process: {stack name: template dict} plus the messages."""
    saved, clean = dict(os.environ), _clean_env()
    os.environ.clear()
    os.environ.update(clean)  # the file's placeholder accounts: a deterministic snapshot
    sys.path.insert(0, str(INFRA))
    try:
        from prism_infra.estate import build_app, new_app

        out = tmp_path_factory.mktemp("cdk.out")
        app, stacks = build_app(new_app(str(out)))
        assembly = app.synth()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    templates = {s.stack_name: json.loads(Path(s.template_full_path).read_text()) for s in assembly.stacks}
    messages = [(str(m.level), m.id, str(m.entry.data)) for s in assembly.stacks for m in s.messages]
    return {"templates": templates, "messages": messages, "out": out, "stacks": stacks}


def _resources(template: dict, rtype: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == rtype}


def _t(estate, env: str, kind: str) -> dict:
    return estate["templates"][f"Prism-{env}-{kind}"]


def _statements(doc) -> list[dict]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def _aslist(x) -> list:
    return x if isinstance(x, list) else [x]


# --------------------------------------------------------------------------------------------
# configuration (no synthesis)


@pytest.mark.unit
def test_accounts_come_from_the_environment_not_the_file(monkeypatch):
    sys.path.insert(0, str(INFRA))
    from prism_infra.config import load_environments

    for k in ACCOUNT_VARS:
        monkeypatch.delenv(k, raising=False)
    cfgs = load_environments()
    assert set(cfgs) == set(ENVS) and cfgs["prod"].account == str(ENVS["prod"]["account_id"]) and not cfgs["prod"].account_from_env
    monkeypatch.setenv("PRISM_PROD_ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("CDK_DEPLOY_ACCOUNT", "210987654321")
    cfgs = load_environments()
    assert cfgs["prod"].account == "123456789012" and cfgs["prod"].account_from_env
    assert cfgs["dev"].account == str(ENVS["dev"]["account_id"])  # CDK_DEPLOY_ACCOUNT is ambiguous for several environments
    only = load_environments({"env": "staging"})
    assert list(only) == ["staging"] and only["staging"].account == "210987654321"
    assert cfgs["dev"].bucket("media") == f"prism-dev-media-{ENVS['dev']['account_id']}"
    with pytest.raises(ValueError):
        load_environments({"env": "qa"})


# --------------------------------------------------------------------------------------------
# synthesis and checks


@pytest.mark.integration
def test_every_environment_synthesizes_its_stack_set(estate):
    assert set(estate["templates"]) == {f"Prism-{e}-{k}" for e in ENVS for k in KINDS}
    for name, t in estate["templates"].items():
        assert t["Resources"], name
        assert not re.search(r"AWS::Lambda::Function|Custom::", json.dumps(t)), f"{name}: no custom-resource Lambdas in the estate"


@pytest.mark.integration
def test_cdk_nag_has_no_unsuppressed_error_and_every_suppression_has_a_reason(estate):
    errors = [m for m in estate["messages"] if "ERROR" in m[0]]
    assert not errors, "\n".join(f"{i}: {d[:200]}" for _, i, d in errors)
    failures = [m for m in estate["messages"] if "CdkNagValidationFailure" in m[2]]
    assert not failures, failures
    n = 0
    for name, t in estate["templates"].items():
        for lid, r in t["Resources"].items():
            for rule in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                n += 1
                assert rule["id"].startswith("AwsSolutions-") and len(rule.get("reason", "").split()) >= 6, f"{name}/{lid}: {rule}"
    assert n > 0
    reports = list(estate["out"].glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == len(estate["templates"])


@pytest.mark.integration
def test_cfn_lint_is_clean_on_every_template(estate):
    from cfnlint.api import ManualArgs, lint_file

    problems = []
    for name in estate["templates"]:
        path = estate["out"] / f"{name}.template.json"
        region = ENVS[name.split("-")[1]]["region"]
        problems += [f"{name}: {m}" for m in lint_file(path, config=ManualArgs(regions=[region], ignore_checks=CFN_LINT_IGNORE))]
    assert not problems, "\n".join(problems)


@pytest.mark.integration
def test_the_pinned_cdk_cli_synthesizes_offline(estate, tmp_path):
    cdk = INFRA / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        pytest.fail("deploy/infra/node_modules is missing: run .ci/setup.sh (npm ci in deploy/infra)")
    pinned = json.loads((INFRA / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned) and json.loads((INFRA / "package-lock.json").read_text())["packages"]["node_modules/aws-cdk"]["version"] == pinned
    env = _clean_env()
    env.pop("AWS_PROFILE", None)
    env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_EC2_METADATA_DISABLED="true")  # no credentials: nothing may need them
    r = subprocess.run([str(cdk), "synth", "-c", "env=dev", "-q", "--no-notices", "--no-version-reporting", "-o", str(tmp_path)],
                       cwd=INFRA, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert not manifest.get("missing"), "synth needed a context lookup (AWS calls)"
    for kind in KINDS:
        cli = json.loads((tmp_path / f"Prism-dev-{kind}.template.json").read_text())
        mine = _t(estate, "dev", kind)
        assert {k: v["Type"] for k, v in cli["Resources"].items()} == {k: v["Type"] for k, v in mine["Resources"].items()}, kind


# --------------------------------------------------------------------------------------------
# properties


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_buckets_encrypted_private_tls_only_with_lifecycle(estate, env):
    t = _t(estate, env, "Data")
    buckets = _resources(t, "AWS::S3::Bucket")
    assert len(buckets) == 4
    names = {}
    for lid, b in buckets.items():
        p = b["Properties"]
        names[p["BucketName"]] = lid
        assert p["PublicAccessBlockConfiguration"] == {k: True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}, lid
        sse = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        if "-logs-" in p["BucketName"]:
            assert sse["SSEAlgorithm"] == "AES256"  # S3 access logs and ALB logs accept SSE-S3 only
        else:
            assert sse["SSEAlgorithm"] == "aws:kms" and "KMSMasterKeyID" in sse, lid
            assert p["LoggingConfiguration"]["DestinationBucketName"]
            prefixes = {r.get("Prefix") for r in p["LifecycleConfiguration"]["Rules"] if r.get("ExpirationInDays")}
            assert {"scratch/", "tmp/"} <= prefixes, lid
        kind = p["BucketName"].split("-")[2]
        assert (p.get("VersioningConfiguration", {}).get("Status") == "Enabled") == (kind in ("media", "artifacts")), lid
    policies = _resources(t, "AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for lid, pol in policies.items():
        sts = _statements(pol["Properties"]["PolicyDocument"])
        assert any(s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in sts), f"{lid}: TLS only"
    for kind in ("media", "artifacts", "index"):
        lid = names[f"prism-{env}-{kind}-{ENVS[env]['account_id']}"]
        pol = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": lid})
        sids = {s.get("Sid") for s in _statements(pol["Properties"]["PolicyDocument"])}
        assert {"DenyOutsideAccount", "DenyPrismRolesOutsideVpc"} <= sids, kind


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_deliveries_notify_the_queue_which_redrives_to_a_dlq(estate, env):
    t = _t(estate, env, "Data")
    queues = {q["Properties"]["QueueName"]: (lid, q["Properties"]) for lid, q in _resources(t, "AWS::SQS::Queue").items()}
    (qid, queue), (dlq_id, dlq) = queues[f"prism-{env}-delivery"], queues[f"prism-{env}-delivery-dlq"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert "KmsMasterKeyId" in queue and "KmsMasterKeyId" in dlq
    media = next(b["Properties"] for b in _resources(t, "AWS::S3::Bucket").values() if "-media-" in b["Properties"]["BucketName"])
    (conf,) = media["NotificationConfiguration"]["QueueConfigurations"]
    assert conf["Event"] == "s3:ObjectCreated:*" and conf["Queue"] == {"Fn::GetAtt": [qid, "Arn"]}
    assert conf["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "deliveries/"}]
    qpol = [p["Properties"] for p in _resources(t, "AWS::SQS::QueuePolicy").values() if {"Ref": qid} in p["Properties"]["Queues"]]
    sends = [s for p in qpol for s in _statements(p["PolicyDocument"]) if s["Effect"] == "Allow" and s["Action"] == "sqs:SendMessage"]
    assert sends and sends[0]["Principal"] == {"Service": "s3.amazonaws.com"} and "aws:SourceArn" in sends[0]["Condition"]["ArnEquals"]


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_databases_multi_az_only_in_prod_rotated_and_cluster_only(estate, env):
    t = _t(estate, env, "Data")
    dbs = _resources(t, "AWS::RDS::DBInstance")
    assert sorted(d["Properties"]["Engine"] for d in dbs.values()) == ["mariadb", "postgres"]
    for lid, d in dbs.items():
        p = d["Properties"]
        assert p["MultiAZ"] is (env == "prod"), lid
        assert p["StorageEncrypted"] is True and p["PubliclyAccessible"] is False
        assert p.get("DeletionProtection", False) is (env == "prod")
        assert p["BackupRetentionPeriod"] >= 7
    assert len(_resources(t, "AWS::SecretsManager::RotationSchedule")) == 2
    for lid, rule in _resources(t, "AWS::EC2::SecurityGroupIngress").items():
        assert "CidrIp" not in rule["Properties"] and "SourceSecurityGroupId" in rule["Properties"], f"{lid}: data reached by security group only"


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_gpu_capacity_from_the_environment_file(estate, env):
    e, t = ENVS[env], _t(estate, env, "Compute")
    (asg,) = _resources(t, "AWS::AutoScaling::AutoScalingGroup").values()
    assert (int(asg["Properties"]["MinSize"]), int(asg["Properties"]["MaxSize"])) == (e["gpu_nodes"]["min"], e["gpu_nodes"]["max"])
    if env == "dev":
        assert int(asg["Properties"]["MinSize"]) == 0  # scale to zero
    (lt,) = _resources(t, "AWS::EC2::LaunchTemplate").values()
    data = lt["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == e["gpu_instance_type"] and data["MetadataOptions"]["HttpTokens"] == "required"
    ami_param = data["ImageId"]["Ref"]
    assert "/gpu/" in t["Parameters"][ami_param]["Default"] and "ecs/optimized-ami" in t["Parameters"][ami_param]["Default"]
    (cp,) = _resources(t, "AWS::ECS::CapacityProvider").values()
    assert cp["Properties"]["Name"] == f"prism-{env}-gpu" and cp["Properties"]["AutoScalingGroupProvider"]["ManagedScaling"]["Status"] == "ENABLED"


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_services_task_definitions_and_images(estate, env):
    e, t = ENVS[env], _t(estate, env, "Compute")
    services = {s["Properties"]["ServiceName"]: s["Properties"] for s in _resources(t, "AWS::ECS::Service").values()}
    p = f"prism-{env}"
    assert set(services) == {f"{p}-{n}" for n in ("code", "webserver", "daemon", "api", "worker-gpu")}
    for name in ("code", "webserver", "api"):
        assert services[f"{p}-{name}"]["DesiredCount"] == e["services"][name]
    daemon = services[f"{p}-daemon"]
    assert daemon["DesiredCount"] == 1 and daemon["DeploymentConfiguration"]["MaximumPercent"] == 100  # a singleton, never two
    assert services[f"{p}-worker-gpu"]["DesiredCount"] == e["gpu_nodes"]["min"] * e["gpus_per_node"]
    families = {td["Properties"]["Family"]: td["Properties"] for td in _resources(t, "AWS::ECS::TaskDefinition").values()}
    assert set(families) == {f"{p}-{n}" for n in ("code", "webserver", "daemon", "api", "run", "worker-gpu")}
    # a run is its own task on the GPU capacity (EC2: Fargate has no GPUs), launched by the daemon's EcsRunLauncher with the
    # container and secrets deploy/ecs/dagster.ecs.yaml names, which the daemon's environment carries
    run = families[f"{p}-run"]
    assert run["RequiresCompatibilities"] == ["EC2"]  # its GPU steps get GPU overrides per step (test_deploy_manifests.py)
    launcher = yaml.safe_load((REPO / "deploy" / "ecs" / "dagster.ecs.yaml").read_text())["run_launcher"]["config"]
    assert [c["Name"] for c in run["ContainerDefinitions"]] == [launcher["container_name"]]
    daemon_env = {v["Name"] for v in families[f"{p}-daemon"]["ContainerDefinitions"][0]["Environment"]}
    wanted = {launcher["task_definition"]["env"], *(x["valueFrom"]["env"] for x in launcher["secrets"]), *launcher["env_vars"]}
    assert wanted <= daemon_env, wanted - daemon_env
    for td in families.values():  # Dagster processes find their instance config; the API image has no Dagster
        for c in td["ContainerDefinitions"]:
            names = {v["Name"] for v in c.get("Environment", [])}
            assert ("DAGSTER_HOME" in names) == (td["Family"] != f"{p}-api"), (td["Family"], c["Name"])
    images = json.dumps([c["Image"] for td in families.values() for c in td["ContainerDefinitions"]])
    assert set(re.findall(r"repository/(prism-[a-z]+)", images)) | set(re.findall(r"/(prism-[a-z]+):", images)) <= {"prism-code", "prism-dagster", "prism-api"}
    gpu = families[f"{p}-worker-gpu"]["ContainerDefinitions"][0]
    assert {"Type": "GPU", "Value": "1"} in gpu["ResourceRequirements"]
    for td in families.values():
        for c in td["ContainerDefinitions"]:
            assert c["LogConfiguration"]["LogDriver"] == "awslogs" and c.get("User") == "10001:10001"
            # secrets are injected (Secrets), the environment only names them (PRISM_SECRET_ARN_*)
            assert not [v for v in c.get("Environment", []) if re.search(r"PASSWORD$|_KEY$|BROKER_URL$", v["Name"]) and not v["Name"].startswith("PRISM_SECRET_ARN_")], c["Name"]
    for lid, lg in {**_resources(t, "AWS::Logs::LogGroup"), **_resources(_t(estate, env, "Data"), "AWS::Logs::LogGroup"),
                    **_resources(_t(estate, env, "Network"), "AWS::Logs::LogGroup")}.items():
        assert lg["Properties"]["RetentionInDays"] > 0, lid


def _role_statements(t: dict, role_name: str) -> list[dict]:
    rid = next(lid for lid, r in _resources(t, "AWS::IAM::Role").items() if r["Properties"].get("RoleName") == role_name)
    return [s for p in _resources(t, "AWS::IAM::Policy").values() if {"Ref": rid} in p["Properties"]["Roles"] for s in _statements(p["Properties"]["PolicyDocument"])]


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_api_role_is_read_only(estate, env):
    sts = _role_statements(_t(estate, env, "Compute"), f"prism-{env}-api")
    actions = {a for s in sts if s["Effect"] == "Allow" for a in _aslist(s["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt", "secretsmanager:GetSecretValue"}
    objects = [r for s in sts if s["Action"] == "s3:GetObject" for r in _aslist(s["Resource"])]
    assert sorted(objects) == sorted([f"arn:aws:s3:::prism-{env}-artifacts-{ENVS[env]['account_id']}/artifacts/*", f"arn:aws:s3:::prism-{env}-index-{ENVS[env]['account_id']}/index/*"])


@pytest.mark.integration
def test_no_wildcard_s3_or_admin_grants_anywhere(estate):
    for name, t in estate["templates"].items():
        docs = [p["Properties"]["PolicyDocument"] for p in _resources(t, "AWS::IAM::Policy").values()]
        docs += [p["Properties"]["PolicyDocument"] for p in _resources(t, "AWS::S3::BucketPolicy").values()]
        docs += [p["Properties"]["PolicyDocument"] for p in _resources(t, "AWS::EC2::VPCEndpoint").values() if "PolicyDocument" in p["Properties"]]
        for doc in docs:
            for s in _statements(doc):
                if s["Effect"] != "Allow":
                    continue
                for a in _aslist(s.get("Action", [])):
                    assert a not in ("*", "s3:*") and not re.fullmatch(r"s3:(Get|Put|List|Delete)\*", a), f"{name}: {a}"
        assert not _resources(t, "AWS::IAM::ManagedPolicy") and "AdministratorAccess" not in json.dumps(t)


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_network_has_no_nat_and_an_s3_gateway_endpoint(estate, env):
    t = _t(estate, env, "Network")
    assert not _resources(t, "AWS::EC2::NatGateway")
    routes = _resources(t, "AWS::EC2::Route").values()
    # only the public (ALB) subnets route to the internet gateway, one route each; the app and data subnets have no default route
    assert all("GatewayId" in r["Properties"] for r in routes) and len(routes) == (3 if env == "prod" else 2)
    endpoints = [e["Properties"] for e in _resources(t, "AWS::EC2::VPCEndpoint").values()]
    s3 = [e for e in endpoints if e.get("VpcEndpointType") == "Gateway"]
    assert len(s3) == 1 and "s3" in json.dumps(s3[0]["ServiceName"])
    assert "aws:ResourceAccount" in json.dumps(s3[0]["PolicyDocument"])


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_alb_authenticates_the_webserver_with_cognito(estate, env):
    t = _t(estate, env, "Compute")
    listeners = {lst["Properties"]["Port"]: lst["Properties"] for lst in _resources(t, "AWS::ElasticLoadBalancingV2::Listener").values()}
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    rules = [r["Properties"] for r in _resources(t, "AWS::ElasticLoadBalancingV2::ListenerRule").values()]
    web = next(r for r in rules if r["Conditions"][0]["PathPatternConfig"]["Values"] == ["/*"])
    assert [a["Type"] for a in web["Actions"]] == ["authenticate-cognito", "forward"]
    (pool,) = _resources(t, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["MfaConfiguration"] == "ON" and pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    (alb,) = _resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attrs = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attrs["access_logs.s3.enabled"] == "true" and attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_alarms_and_pool_sizes(estate, env):
    t = _t(estate, env, "Ops")
    alarms = {a["Properties"]["AlarmName"] for a in _resources(t, "AWS::CloudWatch::Alarm").values()}
    assert alarms == {f"prism-{env}-{n}" for n in ("dlq-depth", "queue-age", "daemon-heartbeat", "failed-run-rate", "gpu-idle")}
    params = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in _resources(t, "AWS::SSM::Parameter").values()}
    for pool, size in ENVS[env]["pools"].items():
        assert params[f"/prism/{env}/pools/{pool}"] == str(size)
    docs = (REPO / "docs" / "deploy.md").read_text()
    for metric in ("DaemonHeartbeat", "RunsFailed", "RunsSucceeded", "GpuSlotsInUse"):
        assert metric in json.dumps(t) and metric in docs, metric


# --------------------------------------------------------------------------------------------
# snapshot


def _snapshot(templates: dict[str, dict]) -> dict:
    """Per stack: sorted resource-type counts and logical-id prefixes (hash suffix dropped)."""
    out = {}
    for name in sorted(templates):
        res = templates[name]["Resources"]
        out[name] = {
            "types": dict(sorted(Counter(r["Type"] for r in res.values()).items())),
            "ids": sorted({re.sub(r"[0-9A-F]{8}$", "", lid) for lid in res}),
            "outputs": sorted(templates[name].get("Outputs", {})),
        }
    return out


@pytest.mark.integration
def test_snapshot_of_every_stack(estate):
    current = _snapshot(estate["templates"])
    if os.environ.get("PRISM_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        if os.environ.get("PRISM_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"wrote a new snapshot {SNAPSHOT.relative_to(REPO)}: review and commit it")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "the estate changed: review, then PRISM_UPDATE_SNAPSHOTS=1 to accept"


@pytest.mark.unit
def test_infra_checks_are_wired_into_make_and_setup():
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^infra:", make, re.M) and "cfn-lint" in make.split("\ninfra:", 1)[1].split("\n\n", 1)[0]
    setup = (REPO / ".ci" / "setup.sh").read_text()
    assert "deploy/infra" in setup and "npm ci" in setup
    lock = (REPO / "requirements.lock").read_text()
    for pkg in ("aws-cdk-lib", "constructs", "cdk-nag", "cfn-lint"):
        assert re.search(rf"^{pkg}==", lock, re.M), pkg


def _resolved(x):
    """A template value with CloudFormation's intrinsics replaced by plausible literals (for policy validators)."""
    if isinstance(x, list):
        return [_resolved(v) for v in x]
    if isinstance(x, dict):
        if set(x) == {"Ref"}:
            return {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "000000000001"}.get(x["Ref"], f"arn:aws:s3:::ref-{x['Ref'].lower()}")
        if set(x) == {"Fn::GetAtt"}:
            return f"arn:aws:s3:::getatt-{'-'.join(map(str, x['Fn::GetAtt']))}".lower()
        if set(x) == {"Fn::Join"}:
            sep, parts = x["Fn::Join"]
            return sep.join(str(_resolved(v)) for v in parts)
        if set(x) == {"Fn::ImportValue"}:
            return "arn:aws:s3:::imported-value"
        if set(x) == {"Fn::Sub"}:
            return re.sub(r"\$\{[^}]+\}", "x", x["Fn::Sub"] if isinstance(x["Fn::Sub"], str) else x["Fn::Sub"][0])
        return {k: _resolved(v) for k, v in x.items()}
    return x


@pytest.mark.integration
def test_every_iam_policy_is_valid_and_least_privilege(estate):
    """What the hand templates' tests checked (deploy/iam/*.json, now generated): every identity policy and trust policy the
    app writes passes AWS's document rules (moto's validators); no wildcard action; Resource * only for actions that have no
    resource; PassRole only to ECS tasks; the task roles never write media."""
    from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator

    resource_star_ok = re.compile(r"(ecr:GetAuthorizationToken|cloudwatch:PutMetricData|ecs:(RunTask|DescribeTasks|StopTask|DescribeTaskDefinition|"
                                  r"ListTasks|RegisterTaskDefinition|DescribeServices|DescribeContainerInstances|TagResource)|ec2:Describe\w+|"
                                  r"xray:\w+|logs:\w+|ssm:\w+|servicediscovery:\w+|elasticfilesystem:\w+|secretsmanager:GetRandomPassword|"
                                  r"kms:\w+|sqs:\w+|autoscaling:\w+|iam:PassRole|ec2:\w+|ecs:\w+)$")
    n = 0
    for name, t in estate["templates"].items():
        for lid, pol in _resources(t, "AWS::IAM::Policy").items():
            doc = _resolved(pol["Properties"]["PolicyDocument"])
            IAMPolicyDocumentValidator(json.dumps(doc)).validate()
            n += 1
            for st in _statements(doc):
                actions = _aslist(st["Action"])
                assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{name}/{lid}: wildcard action {actions}"
                if st["Effect"] == "Allow" and "*" in _aslist(st.get("Resource", [])):
                    assert all(resource_star_ok.match(a) for a in actions), f"{name}/{lid}: Resource * for {actions}"
                if "iam:PassRole" in actions and st["Effect"] == "Allow":
                    assert st.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService") == "ecs-tasks.amazonaws.com", (name, lid)
        for role in _resources(t, "AWS::IAM::Role").values():
            IAMTrustPolicyDocumentValidator(json.dumps(_resolved(role["Properties"]["AssumeRolePolicyDocument"]))).validate()
    assert n >= 4
    for env in ENVS:
        for role in (f"prism-{env}-task", f"prism-{env}-api"):
            writes = [s for s in _role_statements(_t(estate, env, "Compute"), role) if s["Effect"] == "Allow"
                      and any("-media-" in json.dumps(r) for r in _aslist(s.get("Resource", [])))
                      and set(_aslist(s["Action"])) - {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}]
            assert not writes, f"{role} may only read media"


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVS))
def test_api_task_reads_its_keys_from_secrets_manager(estate, env):
    """The API task: Fargate, port 8080, health on /v1/health, logs; the keys are never in the task definition:
    PRISM_API_KEYS_SECRET names the secret `prism/<env>/api-keys`, the one secret its role may read."""
    t = _t(estate, env, "Compute")
    td = next(r["Properties"] for r in _resources(t, "AWS::ECS::TaskDefinition").values() if r["Properties"]["Family"] == f"prism-{env}-api")
    assert td["RequiresCompatibilities"] == ["FARGATE"]
    (c,) = td["ContainerDefinitions"]
    assert "ResourceRequirements" not in c and [p["ContainerPort"] for p in c["PortMappings"]] == [8080]
    assert c["Command"] == ["prism", "serve", "--host", "0.0.0.0", "--port", "8080"] and "/v1/health" in " ".join(c["HealthCheck"]["Command"])
    env_vars = {v["Name"]: v["Value"] for v in c["Environment"]}
    assert "PRISM_API_KEYS" not in env_vars and "PRISM_API_KEYS_SECRET" in env_vars and env_vars["HF_HUB_OFFLINE"] == "1"
    assert not [k for k in env_vars if k.startswith("DAGSTER_")] and "PRISM_CATALOG_URL" not in env_vars
    secrets = [r for s in _role_statements(t, f"prism-{env}-api") if "secretsmanager:GetSecretValue" in _aslist(s["Action"]) for r in _aslist(s["Resource"])]
    assert secrets and json.dumps(secrets) == json.dumps([env_vars["PRISM_API_KEYS_SECRET"]]), (secrets, env_vars["PRISM_API_KEYS_SECRET"])
