"""The production deployment on this machine's real services (docs/deploy.md).

- deploy/dagster.yaml loads against the real PostgreSQL (fresh database per test) and a partitioned
  materialization of `source_video` lands its run and events there; the database password (a
  sentinel) appears in no event, run config or tag;
- the Celery scale-out path: two real Celery workers on the local RabbitMQ, queues `gpu` and `cpu`,
  a partitioned run of real Prism assets through `PRISM_EXECUTOR=celery` on the Postgres instance;
  the run's step events say which worker ran each step (GPU steps on the gpu worker);
- deploy/local_stack.py starts code server + webserver + daemon against Postgres and is healthy.
Static checks of the images, compose file, ECS manifests, IAM policies and CI live in
test_deploy_manifests.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, ffmpeg
from .support import signal_assets

DEPLOY = REPO / "deploy"


def load_local_stack():
    spec = importlib.util.spec_from_file_location("prism_local_stack", DEPLOY / "local_stack.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def pg_env(tmp_path, monkeypatch, data_dir):
    """A fresh database on the real PostgreSQL at 127.0.0.1:5432 and a DAGSTER_HOME holding
    deploy/dagster.yaml; the password is a sentinel (the server trusts loopback) to prove it is
    never written anywhere."""
    import psycopg2

    stack = load_local_stack()
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": f"sentinel-{uuid.uuid4().hex}", "DAGSTER_PG_DB": f"prism_test_{uuid.uuid4().hex[:10]}",
    }
    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc})")
    assert stack.create_database(env)
    home = tmp_path / "dagster_home_prod"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    for k, v in {**env, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(k, v)
    try:
        yield env
    finally:
        stack.drop_database(env)


def _title_video(tmp_path: Path) -> Path:
    p = tmp_path / "t_bars.mp4"  # 100 frames 320x240 + stereo tone: cheap for every visual step
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=4",
           "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(p))
    return p


def _db_text(env: dict, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]), user=env["DAGSTER_PG_USER"], dbname=env["DAGSTER_PG_DB"])
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_production_instance_on_postgres(pg_env, settings, tmp_path):
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus, materialize
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from prism_assets.catalog import Catalog, DeliveryRecord
    from prism_assets.definitions import build_resources
    from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        # sensors on threads: a long delivery tick does not hold up the run-failure and SLA sensors
        assert instance.get_settings("sensors") == {"use_threads": True, "num_workers": 4, "num_submit_workers": 4}
        assert instance.get_settings("backfills")["use_threads"] and instance.get_settings("schedules")["use_threads"]
        conc = instance.get_concurrency_config()
        assert conc.pool_config.default_pool_limit == 4 and conc.run_queue_config.max_concurrent_runs == 16  # one host (compose)
        # pools sized per deployment (gpu = GPUs per node x nodes), stored in Postgres
        instance.event_log_storage.set_concurrency_slots("gpu", 2)
        instance.event_log_storage.set_concurrency_slots("decode", 6)
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 2
        assert instance.event_log_storage.get_concurrency_info("decode").slot_count == 6

        title, video = "prod_t1", _title_video(tmp_path)
        instance.add_dynamic_partitions("titles", [title])
        Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title, date(2026, 11, 20), str(video))])
        res = materialize(signal_assets(settings, "source_video"), partition_key=title, instance=instance, resources=build_resources(settings),
                          tags={TAG_DELIVERY_URI: str(video), TAG_DELIVERY_DATE: "2026-11-20"})
        assert res.success
        run = instance.get_run_by_id(res.run_id)
        assert run.status == DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == title
        assert title in instance.get_materialized_partitions(AssetKey("source_video"))
        ev = instance.get_latest_materialization_event(AssetKey("source_video"))
        assert ev.run_id == res.run_id and ev.asset_materialization.partition == title
        assert ev.asset_materialization.metadata["frame_count"].value == 100
        checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
        assert checks["probe_complete"] and checks["has_audio"], checks

    # the rows are in this Postgres database (not a SQLite file somewhere)
    assert _db_text(pg_env, f"SELECT status FROM runs WHERE run_id = '{res.run_id}'") == [("SUCCESS",)]
    n_events = _db_text(pg_env, f"SELECT count(*) FROM event_logs WHERE run_id = '{res.run_id}'")[0][0]
    assert n_events > 10
    assert _db_text(pg_env, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'titles'") == [(title,)]
    # the password never lands in events, run config or tags
    leaked = _db_text(pg_env, f"SELECT count(*) FROM event_logs WHERE event LIKE '%{pg_env['DAGSTER_PG_PASSWORD']}%'")[0][0]
    leaked += _db_text(pg_env, f"SELECT count(*) FROM runs WHERE run_body LIKE '%{pg_env['DAGSTER_PG_PASSWORD']}%'")[0][0]
    assert leaked == 0


def _sessions(env: dict) -> int:
    """Connections ever opened to the test database (pg_stat_database.sessions, PostgreSQL 14+)."""
    return _db_text(env, f"SELECT sessions FROM pg_stat_database WHERE datname = '{env['DAGSTER_PG_DB']}'")[0][0]


def test_postgres_storage_reuses_connections_and_survives_dropped_ones(pg_env):
    """deploy/dagster.yaml's storage keeps a pooled engine per process: instances built per step
    (as dagster-celery does) reuse connections instead of opening one per statement, and a
    connection the server dropped is replaced, not handed out."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    from prism_assets.core.pg_storage import POOL_SIZE

    with DagsterInstance.get() as instance:
        run = create_run_for_test(instance, job_name="probe", status=DagsterRunStatus.STARTED)
    time.sleep(0.5)
    before = _sessions(pg_env)
    for i in range(5):  # a Celery worker: a new instance per task, each storing events
        with DagsterInstance.get() as inst:
            for j in range(10):
                inst.report_engine_event(f"probe {i}.{j}", inst.get_run_by_id(run.run_id))
    time.sleep(0.5)  # the statistics are flushed to pg_stat_database when a backend goes idle
    opened = _sessions(pg_env) - before
    # per instance: its table checks (schedule storage included) open a few; the 50 events reuse the pool.
    # dagster-postgres alone (NullPool) opens at least one per event: >= 50 here
    assert opened < 5 * 8, f"{opened} connections for 5 instances x 10 events"
    # the server drops every connection (a restart, a failover): the next event still lands
    _db_text(pg_env, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{pg_env['DAGSTER_PG_DB']}' "
                     "AND pid <> pg_backend_pid()")
    with DagsterInstance.get() as inst:
        inst.report_engine_event("after the drop", inst.get_run_by_id(run.run_id))
        assert any(e.message == "after the drop" for e in inst.all_logs(run.run_id))
    assert POOL_SIZE >= 1


def test_postgres_storage_tells_a_waiting_step_to_ask_again_soon(pg_env):
    """A step waiting for a pool slot is told to ask again after CLAIM_RETRY_S (Dagster's own
    back-off reaches 15 s, leaving a freed gpu slot idle that long)."""
    from dagster import DagsterInstance

    from prism_assets.core.pg_storage import CLAIM_RETRY_S

    with DagsterInstance.get() as inst:
        inst.event_log_storage.set_concurrency_slots("gpu", 1)
        first = inst.event_log_storage.claim_concurrency_slot("gpu", "run-a", "transcript")
        second = inst.event_log_storage.claim_concurrency_slot("gpu", "run-b", "transcript")
        assert first.is_claimed and not second.is_claimed
        assert second.sleep_interval == CLAIM_RETRY_S <= 2.0
        inst.event_log_storage.free_concurrency_slot_for_step("run-a", "transcript")
        assert inst.event_log_storage.claim_concurrency_slot("gpu", "run-b", "transcript").is_claimed
        inst.event_log_storage.free_concurrency_slot_for_step("run-b", "transcript")


def test_production_instance_on_mariadb(mariadb_url, data_dir, settings, tmp_path, monkeypatch):
    """The same instance on dagster-mysql (deploy/dagster.mysql.yaml) against the real MariaDB."""
    from dagster import AssetKey, DagsterInstance, materialize
    from dagster_mysql import MySQLEventLogStorage, MySQLRunStorage

    from prism_assets.catalog import Catalog, DeliveryRecord
    from prism_assets.definitions import build_resources
    from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

    prod = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    mysql = yaml.safe_load((DEPLOY / "dagster.mysql.yaml").read_text())
    assert {k: v for k, v in mysql.items() if k != "storage"} == {k: v for k, v in prod.items() if k != "storage"}
    import pymysql

    db = f"prism_dg_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    home = tmp_path / "dagster_home_mysql"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.mysql.yaml", home / "dagster.yaml")
    for k, v in {"DAGSTER_MYSQL_HOST": "127.0.0.1", "DAGSTER_MYSQL_PORT": "3306", "DAGSTER_MYSQL_USER": "root",
                 "DAGSTER_MYSQL_PASSWORD": "", "DAGSTER_MYSQL_DB": db, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(k, v)
    try:
        with DagsterInstance.get() as instance:
            assert isinstance(instance.run_storage, MySQLRunStorage) and isinstance(instance.event_log_storage, MySQLEventLogStorage)
            assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
            title, video = "mysql_t1", _title_video(tmp_path)
            instance.add_dynamic_partitions("titles", [title])
            Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title, date(2026, 11, 20), str(video))])
            res = materialize(signal_assets(settings, "source_video"), partition_key=title, instance=instance, resources=build_resources(settings),
                              tags={TAG_DELIVERY_URI: str(video), TAG_DELIVERY_DATE: "2026-11-20"})
            assert res.success
            assert title in instance.get_materialized_partitions(AssetKey("source_video"))
        with conn.cursor() as cur:
            cur.execute(f"SELECT status FROM {db}.runs WHERE run_id = %s", (res.run_id,))
            assert cur.fetchall() == (("SUCCESS",),)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


# --------------------------------------------------------------------------------------------
# Celery: real workers on RabbitMQ, GPU/CPU queues

BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"

RUN_DRIVER = textwrap.dedent("""
    import json, sys
    from dagster import AssetKey, DagsterInstance, execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    title, uri, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    repo = ReconstructableRepository.for_module("prism_assets.definitions", "defs", working_directory=sys.argv[4])
    job = repo.get_reconstructable_job("process_title")
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("titles", [title])
        res = execute_job(job, instance, tags={"dagster/partition": title, "prism/delivery_uri": uri,
                                               "prism/delivery_date": "2026-11-20"},
                          asset_selection=[AssetKey(k) for k in keys])
        print(json.dumps({"run_id": res.run_id, "success": res.success}))
""")

CELERY_ASSETS = ["source_video", "frame_stats", "frame_samples", "shots", "keyframes", "embeddings", "shot_embeddings"]
STEP_QUEUE = {"source_video": "cpu", "visual_pass": "cpu", "shots": "cpu", "keyframes": "cpu", "embeddings": "gpu", "shot_embeddings": "cpu"}


def _delete_queues(names: list[str]) -> None:
    load_local_stack().delete_queues(names, BROKER)


def _wait_ready(run, names: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.check_alive()
        if all(" ready." in run.tail(n, 100_000) for n in names):
            return
        time.sleep(0.5)
    pytest.fail("celery workers not ready: " + "\n".join(f"--- {n}:\n{run.tail(n)}" for n in names))


def test_celery_routes_gpu_and_cpu_steps(pg_env, settings, tmp_path, monkeypatch):
    from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

    from prism_assets.catalog import Catalog, DeliveryRecord

    stack = load_local_stack()
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    env = {"PRISM_EXECUTOR": "celery", "PRISM_CELERY_BROKER_URL": BROKER, "PRISM_CELERY_BACKEND_URL": "rpc://",
           "PRISM_CELERY_QUEUE_PREFIX": prefix, "PYTHONPATH": str(REPO), "PRISM_STEP_RETRIES": "0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    title, video = "celery_t1", _title_video(tmp_path)
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title, date(2026, 11, 20), str(video))])
    home = Path(os.environ["DAGSTER_HOME"])
    config_dir = stack.celery_config_module(home / "celery")
    workers = [stack.worker_proc("cpu", config_dir, prefix, f"-{prefix[:-1]}"), stack.worker_proc("gpu", config_dir, prefix, f"-{prefix[:-1]}")]
    procs = stack.start_procs(workers, {}, tmp_path / "worker_logs")
    run = stack.Running(plan=None, procs=procs, logs=tmp_path / "worker_logs")
    try:
        _wait_ready(run, ["worker-cpu", "worker-gpu"])
        drv = subprocess.run([sys.executable, "-c", RUN_DRIVER, title, str(video), ",".join(CELERY_ASSETS), str(REPO)],
                             cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=240)
        logs = "\n".join(f"--- {n}:\n{run.tail(n, 4000)}" for n in procs)
        assert drv.returncode == 0, f"run driver failed:\n{drv.stderr[-4000:]}\n{logs}"
        out = json.loads(drv.stdout.strip().splitlines()[-1])
        run.check_alive()
    finally:
        stack.stop_procs(procs)
        _delete_queues([f"{prefix}cpu", f"{prefix}gpu"])
    assert all(p.poll() is not None for p in procs.values()), "a celery worker outlived the test"

    with DagsterInstance.get() as instance:
        dagster_run = instance.get_run_by_id(out["run_id"])
        assert dagster_run.status == DagsterRunStatus.SUCCESS, logs
        assert dagster_run.tags["dagster/partition"] == title
        # which worker ran each step, from the run's own engine events (Postgres)
        ran_on: dict[str, str] = {}
        for rec in instance.all_logs(out["run_id"], of_type=DagsterEventType.ENGINE_EVENT):
            ev = rec.dagster_event
            meta = ev.engine_event_data.metadata if ev and ev.engine_event_data else {}
            if "Celery worker" in meta:
                ran_on[ev.step_key] = meta["Celery worker"].value
        assert set(ran_on) == set(STEP_QUEUE), ran_on
        for step, kind in STEP_QUEUE.items():
            assert ran_on[step].startswith(f"prism-{kind}-{prefix[:-1]}@"), f"{step} ran on {ran_on[step]}, expected the {kind} worker"
        for key in CELERY_ASSETS:
            assert title in instance.get_materialized_partitions(AssetKey(key)), key
        recs = instance.fetch_materializations(AssetKey("embeddings"), limit=1).records
        assert recs[0].run_id == out["run_id"]
    leaked = _db_text(pg_env, f"SELECT count(*) FROM event_logs WHERE event LIKE '%{pg_env['DAGSTER_PG_PASSWORD']}%'")[0][0]
    assert leaked == 0
    assert "guest:guest" not in json.dumps(dagster_run.run_config)


# --------------------------------------------------------------------------------------------
# the local production-like stack


@pytest.mark.integration
def test_local_stack_dry_run_redacts_secrets(monkeypatch, tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", secret)
    monkeypatch.setenv("PRISM_CELERY_BROKER_URL", f"pyamqp://prism:{secret}@rabbit:5672//")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    r = subprocess.run([sys.executable, str(DEPLOY / "local_stack.py"), "--dry-run", "--workers", "--home", str(tmp_path / "dry")],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout + r.stderr
    plan = json.loads(r.stdout)
    assert plan["env"]["DAGSTER_PG_PASSWORD"] == "***"
    assert plan["env"]["PRISM_CELERY_BROKER_URL"] == "pyamqp://prism:***@rabbit:5672//"
    names = [p["name"] for p in plan["processes"]]
    assert names == ["code-server", "webserver", "daemon", "worker-cpu", "worker-gpu"]
    queues = {p["name"]: p["argv"][p["argv"].index("-Q") + 1] for p in plan["processes"] if p["name"].startswith("worker")}
    assert queues == {"worker-cpu": "cpu", "worker-gpu": "gpu"}
    assert not (tmp_path / "dry").exists(), "--dry-run must not create anything"


@pytest.mark.e2e
def test_local_stack_starts_and_is_healthy(data_dir, tmp_path):
    db = f"prism_test_{uuid.uuid4().hex[:10]}"
    sentinel = f"pw{uuid.uuid4().hex}"  # a catalog URL with a password: the UI must mask it
    prefix = f"s{uuid.uuid4().hex[:8]}-"  # this stack's own queues on the shared broker
    env = {**os.environ, "DAGSTER_PG_DB": db, "DAGSTER_PG_PASSWORD": "", "PRISM_CELERY_QUEUE_PREFIX": prefix,
           "PRISM_CATALOG_URL": f"mysql+pymysql://prism:{sentinel}@127.0.0.1:3306/prism_absent"}
    try:
        r = subprocess.run([sys.executable, str(DEPLOY / "local_stack.py"), "--check", "--workers", "--drop-db", "--home", str(tmp_path / "stack")],
                           capture_output=True, text=True, timeout=240, env=env)
    finally:
        _delete_queues([f"{prefix}cpu", f"{prefix}gpu"])
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["healthy"] and "process_title" in seen["jobs"]
    assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= set(seen["daemons"])
    assert seen["workers_ready"] == ["worker-cpu", "worker-gpu"]
    assert seen["served_secrets"]["leaks"] == [] and "catalog.url" in seen["served_secrets"]["masked"]
    assert sentinel not in r.stdout + r.stderr
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
        assert cur.fetchone() is None, "--drop-db left the database"
    conn.close()


@pytest.mark.unit
def test_local_stack_runs_several_cpu_workers_with_their_own_names(monkeypatch, tmp_path):
    """PRISM_CPU_WORKERS=N: N Celery workers on the cpu queue, each with its own process and node name
    (a node name owns a pidbox queue on the broker), one gpu worker."""
    stack = load_local_stack()
    monkeypatch.setenv("PRISM_CPU_WORKERS", "3")
    plan = stack.build_plan(tmp_path / "home", workers=True, queue_prefix="p1-")
    workers = [p for p in plan.procs if p.name.startswith("worker")]
    assert [p.name for p in workers] == ["worker-cpu", "worker-cpu-2", "worker-cpu-3", "worker-gpu"]
    nodes = [p.argv[p.argv.index("-n") + 1] for p in workers]
    assert nodes == ["prism-cpu-p1@%h", "prism-cpu-p1-2@%h", "prism-cpu-p1-3@%h", "prism-gpu-p1@%h"]
    assert {p.argv[p.argv.index("-Q") + 1] for p in workers[:3]} == {"p1-cpu"}
