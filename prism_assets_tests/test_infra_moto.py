"""The estate proven against a real CloudFormation engine: deploy/infra's dev environment synthesized in
process (as test_infra.py does), its Network and Data stacks deployed into moto's CloudFormation running
as a server, then a delivery run end to end on the deployed resources: an object put into the deployed
media bucket under deliveries/ -> an S3 event notification on the deployed delivery queue -> the
delivery sensor's tick (queue mode) -> a run request -> the real `process_title` job (a 2-s lavfi clip,
~20-40 s) writing its artifacts into the deployed artifacts bucket and its catalog rows -> the message
deleted on the next tick; a poison message (a key outside the delivery layout) next to it blocks
nothing and lands in the deployed dead-letter queue after the deployed maxReceiveCount, one warning
line per receive.

What moto cannot do, and what the test does instead (each listed below with its reason):
- resource types moto's CloudFormation does not implement (UNSUPPORTED) are stripped from the templates,
  with every resource whose properties refer to one (the RDS instances: their master passwords resolve
  from the stripped Secrets Manager secrets); the test checks the list is exactly what moto lacks;
- moto's AWS::S3::Bucket ignores NotificationConfiguration (and versioning, lifecycle, public access
  block, logging): the media bucket's notification is applied through the S3 API from the template's own
  NotificationConfiguration (the queue ARN resolved from the deployed stack);
- moto's AWS::KMS::Key fails on CloudFormation's Tags shape (KeyError 'TagKey'): the key's Tags are dropped;
- the Compute and Ops stacks are not deployed (NOT_DEPLOYED).
The catalog is a scratch database on the real MariaDB server (moto's RDS is no database).
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import REPO, scratch_mariadb

pytestmark = pytest.mark.integration

INFRA = REPO / "deploy" / "infra"
ACCOUNT = "123456789012"  # moto's default account: the synthesized names and ARNs are the deployed ones
REGION = "us-east-1"
ENV = "dev"
DEPLOYED = ("Network", "Data")
NOT_DEPLOYED = {
    "Compute": "its ECS cluster needs AWS::ServiceDiscovery::PrivateDnsNamespace and the GPU AWS::ECS::CapacityProvider, the task "
    "definitions and services the Secrets Manager secrets (all unsupported by moto's CloudFormation), and moto's ELBv2 rejects "
    "the HTTPS listener's placeholder ACM certificate (CertificateNotFound)",
    "Ops": "its CloudWatch alarms and SNS topic policy are unsupported by moto's CloudFormation, and moto fails on what remains "
    "('string indices must be integers' creating the stack)",
}
UNSUPPORTED = {  # resource types of the deployed stacks that moto's CloudFormation does not implement (moto 5.2)
    "AWS::EC2::SecurityGroupEgress": "the ALB security group's egress rules (moto enforces no security group rules anyway)",
    "AWS::S3::BucketPolicy": "TLS-only, deny outside the account / outside the VPC endpoint (moto's server evaluates no bucket "
    "policy without IAM auth; the statements are checked on the templates in test_infra.py)",
    "AWS::SQS::QueuePolicy": "S3's sqs:SendMessage grant on the delivery queue (moto's S3 notifications need no grant)",
    "AWS::SecretsManager::Secret": "the generated RDS credentials",
    "AWS::SecretsManager::SecretTargetAttachment": "binds the credentials to the RDS instances",
    "AWS::SecretsManager::RotationSchedule": "hosted rotation (also the template's AWS::SecretsManager transform, which moto lacks)",
    "AWS::SecretsManager::ResourcePolicy": "the secrets' resource policies",
}
STRIPPED_DEPENDENTS = {"AWS::RDS::DBInstance"}  # their MasterUserPassword is {{resolve:secretsmanager:<stripped secret>}}
QUEUE, DLQ = f"prism-{ENV}-delivery", f"prism-{ENV}-delivery-dlq"


# -- synthesis and template surgery -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, dict]:
    """The dev environment synthesized in process, for moto's account: {stack kind: template}."""
    from .test_infra import _clean_env

    saved, clean = dict(os.environ), _clean_env()
    os.environ.clear()
    os.environ.update(clean)
    os.environ.update({f"PRISM_{ENV.upper()}_ACCOUNT_ID": ACCOUNT, f"PRISM_{ENV.upper()}_REGION": REGION})
    sys.path.insert(0, str(INFRA))
    try:
        from prism_infra.estate import build_app, new_app

        app, _ = build_app(new_app(str(tmp_path_factory.mktemp("cdk.out")), env=ENV))
        assembly = app.synth()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {s.stack_name.rsplit("-", 1)[1]: json.loads(Path(s.template_full_path).read_text()) for s in assembly.stacks}


def _refs(node) -> set[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, ${...} of Fn::Sub)."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                out |= _refs(v[1]) if isinstance(v, list) else set()
            else:
                out |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def for_moto(template: dict) -> tuple[dict, dict[str, str]]:
    """The template moto can deploy, and {logical id: why} of what was removed."""
    t = copy.deepcopy(template)
    res = t["Resources"]
    gone = {k: f"{r['Type']}: unsupported" for k, r in res.items() if r["Type"] in UNSUPPORTED}
    changed = True
    while changed:  # whatever refers to a removed resource goes too
        changed = False
        for k, r in res.items():
            if k not in gone and (hit := _refs(r.get("Properties", {})) & set(gone)):
                gone[k] = f"{r['Type']}: refers to {sorted(hit)[0]}"
                changed = True
    for k in gone:
        del res[k]
    for r in res.values():
        if "DependsOn" in r:
            deps = [r["DependsOn"]] if isinstance(r["DependsOn"], str) else r["DependsOn"]
            r["DependsOn"] = [d for d in deps if d not in gone]
        if r["Type"] == "AWS::KMS::Key":
            r["Properties"].pop("Tags", None)  # moto's CloudFormation KMS key expects the API's TagKey/TagValue
    t["Outputs"] = {k: o for k, o in t.get("Outputs", {}).items() if not (_refs(o) & set(gone))}
    t.pop("Transform", None)  # AWS::SecretsManager-*: only for the stripped hosted rotation
    return t, gone


# -- the deployment -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(templates, s3_server):
    """Network and Data deployed into moto's CloudFormation server: {"resources": {logical id: physical id}, ...}."""
    import boto3
    from moto.cloudformation.parsing import get_model_map

    env = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    kw = dict(endpoint_url=s3_server, region_name=REGION, **{k.lower(): v for k, v in env.items()})
    supported = set(get_model_map())
    types = {r["Type"] for kind in DEPLOYED for r in templates[kind]["Resources"].values()}
    assert types - supported == set(UNSUPPORTED), "UNSUPPORTED must list exactly what moto's CloudFormation lacks"
    boto3.client("ssm", **kw).put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="21", Type="String", Overwrite=True)  # `cdk bootstrap`
    cfn = boto3.client("cloudformation", **kw)
    out = {"resources": {}, "stripped": {}, "kw": kw, "seconds": {}}
    for kind in DEPLOYED:
        name = f"Prism-{ENV}-{kind}"
        body, gone = for_moto(templates[kind])
        assert {v.split(": ")[0] for v in gone.values() if "refers to" in v} <= STRIPPED_DEPENDENTS, gone
        out["stripped"][kind] = gone
        t0 = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))
            while (st := cfn.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith("_IN_PROGRESS"):
                time.sleep(0.2)
        assert st["StackStatus"] == "CREATE_COMPLETE", st.get("StackStatusReason")
        out["seconds"][kind] = round(time.monotonic() - t0, 2)
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
            for r in page["StackResourceSummaries"]:
                assert r["ResourceStatus"] == "CREATE_COMPLETE", r
                out["resources"][r["LogicalResourceId"]] = r.get("PhysicalResourceId")
        assert len(body["Resources"]) == sum(1 for k in body["Resources"] if k in out["resources"])
    yield out
    for kind in reversed(DEPLOYED):
        try:
            cfn.delete_stack(StackName=f"Prism-{ENV}-{kind}")
        except Exception:  # noqa: BLE001 - cleanup of a shared server
            pass


def _logical(template: dict, rtype: str, **props) -> str:
    (lid,) = [k for k, r in template["Resources"].items() if r["Type"] == rtype and all(r["Properties"].get(p) == v for p, v in props.items())]
    return lid


def test_the_data_stack_deploys_its_buckets_queue_and_dlq(templates, estate):
    import boto3

    data = templates["Data"]
    kw = estate["kw"]
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for kind in ("media", "artifacts", "index", "logs"):
        assert f"prism-{ENV}-{kind}-{ACCOUNT}" in buckets
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{estate['resources'][_logical(data, 'AWS::KMS::Key')]}"
    rule = s3.get_bucket_encryption(Bucket=f"prism-{ENV}-media-{ACCOUNT}")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    attrs = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert attrs["VisibilityTimeout"] == "300" and attrs["KmsMasterKeyId"] == key_arn
    stripped = {v.split(": ")[0] for g in estate["stripped"].values() for v in g.values()}
    assert stripped == set(UNSUPPORTED) | STRIPPED_DEPENDENTS, estate["stripped"]
    # moto's AWS::S3::Bucket does not apply NotificationConfiguration: the flow test configures it through the API
    assert not s3.get_bucket_notification_configuration(Bucket=f"prism-{ENV}-media-{ACCOUNT}").get("QueueConfigurations")


# -- the flow on the deployed resources -------------------------------------------------------------------
def _service_env(templates) -> dict[str, str]:
    """The code location's environment as the Compute stack's task definition sets it (storage and queue only)."""
    for r in templates["Compute"]["Resources"].values():
        if r["Type"] == "AWS::ECS::TaskDefinition":
            for c in r["Properties"]["ContainerDefinitions"]:
                if c["Name"] == "prism-code":
                    env = {e["Name"]: e["Value"] for e in c.get("Environment", [])}
                    return {k: env[k] for k in ("AWS_REGION", "PRISM_DELIVERY_ROOT", "PRISM_ARTIFACT_ROOT", "PRISM_DELIVERY_QUEUE_URL")}
    raise AssertionError("no prism-code container in the Compute stack")


def _notification_from_template(templates, estate, sqs) -> dict:
    """The media bucket's NotificationConfiguration of the template, in the S3 API's shape, on the deployed queue."""
    data = templates["Data"]
    media = data["Resources"][_logical(data, "AWS::S3::Bucket", BucketName=f"prism-{ENV}-media-{ACCOUNT}")]
    out = []
    for qc in media["Properties"]["NotificationConfiguration"]["QueueConfigurations"]:
        queue_url = sqs.get_queue_url(QueueName=data["Resources"][qc["Queue"]["Fn::GetAtt"][0]]["Properties"]["QueueName"])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rules = [{"Name": r["Name"], "Value": r["Value"]} for r in qc["Filter"]["S3Key"]["Rules"]]
        out.append({"QueueArn": arn, "Events": [qc["Event"]], "Filter": {"Key": {"FilterRules": rules}}})
    return {"QueueConfigurations": out}


def test_a_delivery_runs_end_to_end_through_the_deployed_queue(templates, estate, data_dir, monkeypatch, capfd, tmp_path):
    import boto3
    from dagster import DagsterInstance, build_sensor_context

    from prism_assets.catalog import Catalog
    from prism_assets.catalog.models import Delivery, SignalOutput, Title
    from prism_assets.cli.common import qc_gate_only
    from prism_assets.definitions import build_definitions, build_resources
    from prism_assets.settings import PrismSettings

    from .conftest import ffmpeg

    kw = estate["kw"]
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    media, artifacts = f"prism-{ENV}-media-{ACCOUNT}", f"prism-{ENV}-artifacts-{ACCOUNT}"
    s3.put_bucket_notification_configuration(Bucket=media, NotificationConfiguration=_notification_from_template(templates, estate, sqs))

    service = _service_env(templates)
    assert service["PRISM_DELIVERY_ROOT"] == f"s3://{media}/deliveries" and service["PRISM_ARTIFACT_ROOT"] == f"s3://{artifacts}/artifacts"
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
    assert urlsplit(service["PRISM_DELIVERY_QUEUE_URL"]).path == urlsplit(queue_url).path  # the services' queue is the deployed one
    for k, v in {**service, "PRISM_DELIVERY_QUEUE_URL": queue_url, "PRISM_S3_ENDPOINT_URL": estate["kw"]["endpoint_url"], "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "PRISM_SENSOR_INTERVAL_S": "1"}.items():
        monkeypatch.setenv(k, v)

    day, title = date.today().isoformat(), "infra_moto_1"
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=320x240:r=25:d=2", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=2", "-ac", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip))
    with scratch_mariadb("prism_infra_moto") as catalog_url:
        monkeypatch.setenv("PRISM_CATALOG_URL", catalog_url)
        settings = PrismSettings.from_env()
        defs = build_definitions(settings)
        resources = build_resources(settings)
        instance = DagsterInstance.ephemeral()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sensor = defs.get_sensor_def("delivery_sensor")
        sensor_resources = {k: v for k, v in resources.items() if k in sensor.required_resource_keys}

        def tick(cursor):
            with build_sensor_context(instance=instance, definitions=defs, sensor_name="delivery_sensor", cursor=cursor, resources=sensor_resources) as ctx:
                return sensor(ctx)

        s3.upload_file(str(clip), media, f"deliveries/{day}/{title}/{title}.mp4")
        s3.put_object(Bucket=media, Key="deliveries/incoming/readme.txt", Body=b"not a delivery")  # poison: outside the layout
        capfd.readouterr()
        first = tick(None)
        (req,) = first.run_requests
        assert req.partition_key == title and req.tags["prism/delivery_uri"] == f"s3://{media}/deliveries/{day}/{title}/{title}.mp4"
        poison_lines = [x for x in capfd.readouterr().err.splitlines() if "delivery queue: poison" in x]
        assert len(poison_lines) == 1 and "readme.txt" in poison_lines[0]

        instance.add_dynamic_partitions("titles", [title])
        t0 = time.monotonic()
        res = defs.resolve_job_def("process_title").execute_in_process(partition_key=title, instance=instance, tags=req.tags, raise_on_error=False)
        job_s = time.monotonic() - t0
        assert res.success or qc_gate_only(res)  # a test pattern fails content QC: everything ran, the release gate stops it
        keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=artifacts, Prefix=f"artifacts/titles/{title}/") for o in page.get("Contents", [])}
        assert f"artifacts/titles/{title}/source_video.json" in keys and len(keys) >= 10, keys
        source = json.loads(s3.get_object(Bucket=artifacts, Key=f"artifacts/titles/{title}/source_video.json")["Body"].read())
        assert source["frame_count"] == 50 and source["source_uri"] == req.tags["prism/delivery_uri"]
        cat = Catalog(catalog_url)
        assert cat.count(Title) == 1 and cat.count(Delivery) == 1 and cat.count(SignalOutput) >= 10
        assert all(o.uri.startswith(f"s3://{artifacts}/") for o in cat.outputs(title).values())

        # the next ticks delete the delivered message and, after maxReceiveCount receives, SQS moves the poison one to the DLQ
        cursor, receives = first.cursor, 1
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(1.1)
            result = tick(cursor)
            cursor = result.cursor
            assert not result.run_requests
            receives += sum("delivery queue: poison" in x for x in capfd.readouterr().err.splitlines())
            a = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if a == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
                break
        assert a == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages") or []
        assert len(dead) == 1 and "readme.txt" in dead[0]["Body"] and receives == 5  # the deployed maxReceiveCount

        # the catalog lost: rebuilt from the deployed artifacts bucket into an empty database, nothing of it missing
        from prism_assets.catalog.rebuild import apply_plan, plan_rebuild
        from prism_assets.core.domain import all_signals, load_domains

        def rows(c):
            with c.Session() as s:  # closed: an open transaction would hold the database's metadata lock (DROP DATABASE waits)
                return ({(t.title_id, t.series_id) for t in s.query(Title)}, {(d.title_id, d.delivery_date, d.uri, d.etag) for d in s.query(Delivery)},
                        {(o.partition_key, o.signal, o.uri, o.schema_version) for o in s.query(SignalOutput)})

        before = rows(cat)
        with scratch_mariadb("prism_infra_moto_rebuilt") as rebuilt_url:
            plan = plan_rebuild(resources["storage"], all_signals(load_domains(settings.domains)))
            rebuilt = Catalog(rebuilt_url)
            apply_plan(rebuilt, plan)
            after = rows(rebuilt)
            assert after == before and not plan.skipped, (plan.skipped, [a ^ b for a, b in zip(after, before)])
            rebuilt.dispose()
        cat.dispose()
        instance.dispose()
    print(f"deploy {estate['seconds']}, process_title {job_s:.1f}s")
    assert job_s < 60
