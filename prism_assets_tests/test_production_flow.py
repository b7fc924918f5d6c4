"""The production flow, run whole from what ships (e2e tier): the wheel installed non-editable in a
scratch venv runs every process of deploy/local_stack.py (`--installed`): a gRPC code server,
dagster-webserver and dagster-daemon on the production instance config (deploy/dagster.yaml:
PostgreSQL storage, queued run coordinator, pools, run monitoring), and two Celery workers (queues
`gpu` and `cpu` on the local RabbitMQ). Deliveries for two dates are dropped into an S3 bucket (moto's
server on loopback); from there nothing is driven by the test: the daemon's delivery_sensor lists the
bucket and launches the title runs, the run workers hand every step to the Celery workers, artifacts
land in S3 and the catalog in MariaDB. Then, as an operator does in the UI (its GraphQL API), a backfill
of the two dates' delivery_manifest and qc_report. No execute_in_process, no step driven by the test.
The catalog logs in with a password of its own: afterwards it appears in no log, compute log, event
log, run tag, snapshot, catalog row or artifact.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from .conftest import REPO
from .support import secrets
from .support.dagster_ui import gql, processed, runs, wait_until
from .support.wheel import build_wheel, install_venv

pytestmark = pytest.mark.e2e

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } }
}
"""


def load_local_stack():
    from .test_deploy import load_local_stack as load

    return load()


def clip(path: Path, source: str, tone: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=size=320x240:rate=25:duration=3", "-f", "lavfi",
                    "-i", f"sine=frequency={tone}:duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True, capture_output=True, timeout=120)
    return path


SECRET = f"Sx{uuid.uuid4().hex}"  # the catalog's password for this test


@pytest.fixture
def catalog_db():
    from .conftest import scratch_mariadb

    with scratch_mariadb("prism_flow", password=SECRET) as url:
        yield url


def title_runs(url: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in runs(url, job="process_title"):
        out.setdefault(r["tags"].get("dagster/partition"), r)  # newest first
    return out


def test_production_flow_s3_daemon_celery_mariadb(s3_env, catalog_db, tmp_path, monkeypatch):
    endpoint, bucket, s3 = s3_env
    stack = load_local_stack()
    venv_bin = install_venv(build_wheel(tmp_path / "dist"), tmp_path / "venv")
    d1, d2 = date.today() - timedelta(days=1), date.today()
    prefix = f"f{uuid.uuid4().hex[:8]}-"
    # production's queue-based delivery: the bucket's S3 events go to an SQS queue (DLQ after 2 receives), which the
    # delivery sensor in the daemon consumes (PRISM_DELIVERY_QUEUE_URL), as deploy/infra wires it on AWS
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    dlq = sqs.create_queue(QueueName=f"{prefix}dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"{prefix}delivery", Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "deliveries/"}]}}}]})
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
        "PRISM_DELIVERY_ROOT": f"s3://{bucket}/deliveries", "PRISM_ARTIFACT_ROOT": f"s3://{bucket}/artifacts",
        "PRISM_CATALOG_URL": catalog_db, "PRISM_EXECUTOR": "celery", "PRISM_CELERY_QUEUE_PREFIX": prefix,
        "PRISM_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//", "PRISM_CELERY_BACKEND_URL": "rpc://",
        "PRISM_DATA_DIR": str(tmp_path / "data"), "PRISM_SENSOR_INTERVAL_S": "5", "PRISM_STEP_RETRIES": "1",
        "PRISM_STEP_RETRY_DELAY_S": "1", "HF_HUB_OFFLINE": "1", "PRISM_DELIVERY_QUEUE_URL": queue,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    db = f"prism_flow_{uuid.uuid4().hex[:10]}"
    plan = stack.build_plan(tmp_path / "home", database=db, workers=True, bin_dir=venv_bin, installed=True)
    stack.prepare(plan)
    media = tmp_path / "media"
    media.mkdir()
    deliveries = {  # (date, title) -> local file
        (d1, "flow-one"): clip(media / "one.mp4", "testsrc2", 440),
        (d1, "flow-bad"): media / "bad.mp4",
        (d2, "flow-two"): clip(media / "two.mp4", "smptebars", 880),
    }
    (media / "bad.mp4").write_bytes(b"this is not a video\n" * 100)
    url = plan.webserver_url
    try:
        with stack.running(plan) as run:
            stack.wait_healthy(run, timeout=180)
            log = run.logs / "daemon.log"
            # the package the processes import is the wheel's, not the checkout's
            where = subprocess.run([str(venv_bin / "python"), "-c", "import prism_assets; print(prism_assets.__file__)"],
                                   cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **plan.env}, timeout=60)
            assert str(tmp_path / "venv") in where.stdout and str(REPO) not in where.stdout, where
            for (day, title), path in deliveries.items():  # a delivery: the video lands in the bucket
                s3.upload_file(str(path), bucket, f"deliveries/{day.isoformat()}/{title}/{title}.mp4")
            sqs.send_message(QueueUrl=queue, MessageBody="{not an S3 event")  # a poison message: it must block nothing
            t0 = time.monotonic()
            titles = {t for _, t in deliveries}

            def all_done():
                got = title_runs(url)
                return got if set(got) == titles and all(r["status"] in TERMINAL for r in got.values()) else None

            got = wait_until("the daemon to process every delivery", all_done, 600, every=3, log=log)
            took = time.monotonic() - t0
            run.check_alive()
            assert processed(got["flow-one"]) and processed(got["flow-two"]), got  # a QC fail verdict ends its run failed
            assert got["flow-bad"]["status"] == "FAILURE", got
            for r in got.values():  # launched by the daemon's sensor, nothing else
                assert r["tags"].get("dagster/sensor_name") == "delivery_sensor", r["tags"]
            assert len(runs(url, job="process_title")) == 3, "a delivery was launched twice"
            # the queue is drained (each message deleted after its run request was recorded); the poison message is in the DLQ
            def drained():
                q = {k: int(v) for k, v in sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"].items()
                     if k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")}
                d = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
                return (q, d) if not any(q.values()) and d == 1 else None
            wait_until("the delivery queue to drain and the poison message to reach the DLQ", drained, 180, every=3, log=log)
            body = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1)["Messages"][0]["Body"]
            assert body == "{not an S3 event"

            # the operator's backfill of both dates' manifest and QC report (the UI's API)
            res = gql(url, BACKFILL, {"params": {"assetSelection": [{"path": ["delivery_manifest"]}, {"path": ["qc_report"]}],
                                                 "partitionNames": [d1.isoformat(), d2.isoformat()],
                                                 "tags": [{"key": "prism/rerun", "value": "stale"}]}})["launchPartitionBackfill"]
            assert res["__typename"] == "LaunchBackfillSuccess", res
            backfill = res["backfillId"]

            def backfill_done():
                mine = runs(url, tags={"dagster/backfill": backfill})
                day_runs = [r for r in mine if r["tags"].get("dagster/partition") in (d1.isoformat(), d2.isoformat())]
                return mine if day_runs and all(r["status"] in TERMINAL for r in mine) and len(day_runs) >= 2 else None

            mine = wait_until("the manifest/QC report backfill", backfill_done, 400, every=3, log=log)
            time.sleep(20)  # the fan-out sensor's tick: the failed title is the only stale one
            mine = wait_until("the backfill's title runs", backfill_done, 400, every=3, log=log)
            fanned = {r["tags"]["dagster/partition"] for r in mine if r["jobName"] == "process_title"}
            run.check_alive()
            logs = {n: run.tail(n, 6000) for n in run.procs}
        # the catalog's password: in the processes' environment only, written nowhere
        leaks = secrets.in_files(SECRET, plan.home, tmp_path / "data") + secrets.in_postgres(SECRET, plan.env["DAGSTER_PG_DB"])
        leaks += secrets.in_mariadb(SECRET, catalog_db) + secrets.in_bucket(SECRET, s3, bucket)
        with stack.patched_env(plan.env):
            from dagster import AssetKey, DagsterEventType, DagsterInstance

            with DagsterInstance.get() as instance:
                ran_on: dict[str, str] = {}
                for rec in instance.all_logs(got["flow-one"]["runId"], of_type=DagsterEventType.ENGINE_EVENT):
                    ev = rec.dagster_event
                    meta = ev.engine_event_data.metadata if ev and ev.engine_event_data else {}
                    if "Celery worker" in meta:
                        ran_on[ev.step_key] = meta["Celery worker"].value
                manifests = instance.get_materialized_partitions(AssetKey("delivery_manifest"))
                reports = instance.get_materialized_partitions(AssetKey("qc_report"))
                slots = {p: instance.event_log_storage.get_concurrency_info(p) for p in ("gpu", "decode")}
    finally:
        stack.delete_queues([f"{prefix}cpu", f"{prefix}gpu"])
        stack.drop_database(plan.env)

    # every step of a title ran on a Celery worker, the steps of the `gpu` pool on the gpu worker
    from prism_assets.definitions import build_definitions
    from prism_assets.introspect import asset_rows

    gpu_steps = {r.step for r in asset_rows(build_definitions()) if r.pool == "gpu"}
    assert not leaks, f"the catalog password was written to: {leaks}"
    assert len(ran_on) >= 10 and gpu_steps <= set(ran_on), (ran_on, logs.get("worker-cpu", "")[-2000:])
    for step, worker in ran_on.items():
        kind = "gpu" if step in gpu_steps else "cpu"
        assert worker.startswith(f"prism-{kind}-{prefix[:-1]}@"), f"{step} ran on {worker}"
    # artifacts in S3, catalog in MariaDB
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="artifacts/") for o in page.get("Contents", [])}
    for title in ("flow-one", "flow-two"):
        for name in ("source_video.json", "shots.parquet", "embeddings.parquet", "qc.json"):
            assert f"artifacts/titles/{title}/{name}" in keys, sorted(k for k in keys if title in k)
    assert not [k for k in keys if "/flow-bad/" in k], "the bad delivery left an artifact"
    from prism_assets.catalog import Catalog

    cat = Catalog(catalog_db)
    assert cat.title("flow-one").status == "processed" and cat.title("flow-two").status == "processed"
    assert cat.title("flow-bad").status == "failed" and cat.qc_result("flow-one") is not None and cat.qc_result("flow-bad") is None
    bad = [r for r in cat.signal_runs("flow-bad") if r.status == "failed"]
    assert bad and "\n" not in bad[-1].error and not [r for r in cat.signal_runs("flow-one") if r.status == "started"]
    # the days' manifest and QC report
    assert {d1.isoformat(), d2.isoformat()} <= set(manifests) and {d1.isoformat(), d2.isoformat()} <= set(reports)
    from prism_assets.core.artifacts import ArtifactStore
    from prism_assets.definitions import build_resources
    from prism_assets.settings import PrismSettings

    arts = build_resources(PrismSettings.from_env())["storage"].artifacts()
    report = arts.read(ArtifactStore.base_key("qc_report", d1.isoformat(), daily=True))
    listed = dict(zip(report["title_id"], report["verdict"]))
    assert set(listed) == {"flow-one", "flow-bad"} and listed["flow-bad"] == "error", listed
    assert fanned <= {"flow-bad"}, f"the backfill re-ran up-to-date titles: {fanned}"
    # nothing holds a pool slot once the runs are over
    assert all(not info.active_run_ids for info in slots.values()), {p: i.active_run_ids for p, i in slots.items()}
    cat.dispose()
    print(json.dumps({"titles": 3, "seconds_to_all_done": round(took, 1)}))
