"""Faults on the production flow: what an operator sees and what is lost when a piece fails mid-run.

    PYTHONPATH=. .venv/bin/python -m benchmarks.faults [--only NAME ...] [--titles N] [--out FILE]

Each scenario starts the production stack from processes (deploy/local_stack.py: code server,
webserver, daemon on PostgreSQL with deploy/dagster.yaml, Celery `gpu`/`cpu` workers on RabbitMQ,
PRISM_EXECUTOR=celery), with S3 (moto's server) and the MariaDB catalog reached through TCP proxies
on loopback that the benchmark controls (pass / black hole / refuse). N short clips are delivered
to S3 for today; the daemon's sensor launches them; the fault is injected while runs are under way;
then the benchmark waits until every title's runs have ended (or gives up) plus the monitoring window.

Per scenario: titles delivered, completed (a successful run), failed (runs ended, none successful),
lost (no run, or a run still not ended at the deadline), duplicated (more than one successful run),
partial artifacts visible (catalog outputs whose object is missing in S3, or objects without a
catalog output for a title whose run failed), pool slots still held after the window, seconds from
the fault's end until every run had ended, and the one line an operator sees for a failed title.

Writes `benchmarks/results/faults.json`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def load_stack():
    spec = importlib.util.spec_from_file_location("prism_local_stack", REPO / "deploy" / "local_stack.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


class Proxy:
    """A TCP proxy on loopback: `pass` forwards, `blackhole` accepts and forwards nothing (data held,
    as a network that drops packets), `refuse` closes every new and open connection at once."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.mode = "pass"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode == "refuse":
            with self.lock:
                for c in self.conns:
                    try:
                        c.close()
                    except OSError:
                        pass
                self.conns.clear()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, up]
            threading.Thread(target=self._pump, args=(client, up), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.closed:
                if self.mode == "blackhole":
                    time.sleep(0.1)
                    continue
                r, _, _ = select.select([a, b], [], [], 0.5)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        self.set("refuse")


def clip(path: Path, i: int) -> Path:
    sources = ["testsrc2", "smptebars", "rgbtestsrc", "testsrc", "smptehdbars"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{sources[i % len(sources)]}=size=320x240:rate=25:duration=3",
                    "-f", "lavfi", "-i", f"sine=frequency={300 + 110 * i}:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, capture_output=True, timeout=120)
    return path


class Flow:
    """One scenario's stack and what the benchmark can do to it."""

    def __init__(self, stack, run, plan, s3, bucket, proxies: dict[str, Proxy], work: Path):
        self.stack, self.run, self.plan, self.s3, self.bucket, self.proxies, self.work = stack, run, plan, s3, bucket, proxies, work
        self.url = plan.webserver_url
        self.fault_end = None
        self.titles = 0
        self.extra: dict = {}

    def title_runs(self) -> list[dict]:
        from prism_assets_tests.support.dagster_ui import runs

        return runs(self.url, job="process_title")

    def wait(self, what: str, probe, timeout: float, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"timed out waiting for {what}")

    def wait_step_started(self, timeout: float = 300) -> None:
        """Until a Celery worker has received a step (its log says so)."""
        self.wait("a step on a Celery worker", lambda: "received" in self.run.tail("worker-cpu", 100_000).lower()
                  or "received" in self.run.tail("worker-gpu", 100_000).lower(), timeout, 0.5)

    def restart(self, name: str, after_s: float) -> None:
        """SIGKILL a process of the stack (its group: children too), start it again `after_s` later."""
        proc = self.run.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(after_s)
        spec = next(p for p in self.plan.procs if p.name == name)
        fresh = self.stack.start_procs([spec], self.plan.env, self.run.logs / "restarted", cwd=self.plan.cwd)
        self.run.procs[name] = fresh[name]

    def instance(self):
        from dagster import DagsterInstance

        with self.stack.patched_env(self.plan.env):
            return DagsterInstance.get()


# ------------------------------------------------------------------------------------------------
# the faults


def celery_worker_killed(f: Flow) -> str:
    f.wait_step_started()
    time.sleep(2)
    f.restart("worker-cpu", 5)
    return "SIGKILL of the cpu Celery worker while it ran a step; started again 5 s later"


def run_worker_killed(f: Flow) -> str:
    inst = f.instance()
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    def worker():
        for rec in inst.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
            for e in inst.all_logs(rec.dagster_run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
                pid = e.dagster_event.engine_event_data.metadata.get("pid") if e.dagster_event.engine_event_data else None
                if pid is not None and "Started process for run" in (e.message or ""):
                    return int(pid.value)
        return None

    f.wait_step_started()
    pid = f.wait("a run worker", worker, 120)
    os.kill(pid, signal.SIGKILL)
    return f"SIGKILL of a run worker (pid {pid}) mid-run"


def daemon_restarted(f: Flow) -> str:
    f.wait_step_started()
    f.restart("daemon", 10)
    return "SIGKILL of dagster-daemon mid-run, started again 10 s later"


BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
BACKFILL_STATUS = """query B($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } } }"""


def daemon_restarted_mid_backfill(f: Flow) -> str:
    """The operator's backfill of the day's manifest and QC report (what the UI's dialog sends), with
    the daemon killed once the backfill has started its run and started again 10 s later."""
    from prism_assets_tests.support.dagster_ui import gql, runs

    day = date.today().isoformat()
    def titles_ended():
        rs = f.title_runs()
        done = rs and all(r["status"] in TERMINAL for r in rs) and len({r["tags"].get("dagster/partition") for r in rs}) >= f.titles
        return rs if done else None

    titles = f.wait("the day's title runs to end", titles_ended, 600, 3)
    res = gql(f.url, BACKFILL, {"params": {"assetSelection": [{"path": ["delivery_manifest"]}, {"path": ["qc_report"]}],
                                           "partitionNames": [day]}})["launchPartitionBackfill"]
    if res["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {res}")
    bid = res["backfillId"]
    f.wait("the backfill's first run", lambda: runs(f.url, tags={"dagster/backfill": bid}), 300, 1)
    f.restart("daemon", 10)
    f.fault_end = time.monotonic()

    def status():
        st = gql(f.url, BACKFILL_STATUS, {"id": bid})["partitionBackfillOrError"].get("status")
        return st if st and st != "REQUESTED" else None

    try:
        final = f.wait("the backfill to end", status, 600, 3)
    except TimeoutError:
        final = "REQUESTED (not ended after 600 s)"
    mine = runs(f.url, tags={"dagster/backfill": bid})
    day_runs = [r for r in mine if r["tags"].get("dagster/partition") == day]
    with f.instance() as inst:
        from dagster import AssetKey

        materialized = {k: day in inst.get_materialized_partitions(AssetKey(k)) for k in ("delivery_manifest", "qc_report")}
    f.extra = {"backfill": {"status": final, "seconds_fault_end_to_ended": round(time.monotonic() - f.fault_end, 1),
                            "runs": len(mine), "day_runs": len(day_runs),
                            "day_runs_succeeded": sum(r["status"] == "SUCCESS" for r in day_runs),
                            "title_runs_relaunched": len(f.title_runs()) - len(titles), "materialized": materialized}}
    return "SIGKILL of dagster-daemon while a backfill of the day's manifest + QC report was running, started again 10 s later"


def _proxy_outage(f: Flow, which: str, mode: str, seconds: float) -> str:
    f.wait_step_started()
    f.proxies[which].set(mode)
    time.sleep(seconds)
    f.proxies[which].set("pass")
    f.fault_end = time.monotonic()
    return f"{which} {'black-holed' if mode == 'blackhole' else 'refusing connections'} for {seconds:.0f} s mid-run"


def s3_unreachable_30s(f: Flow) -> str:
    return _proxy_outage(f, "s3", "refuse", 30)


def s3_blackhole_30s(f: Flow) -> str:
    return _proxy_outage(f, "s3", "blackhole", 30)


def mariadb_down_10s(f: Flow) -> str:
    return _proxy_outage(f, "mariadb", "refuse", 10)


def mariadb_down_120s(f: Flow) -> str:
    return _proxy_outage(f, "mariadb", "refuse", 120)


def postgres_connections_dropped(f: Flow) -> str:
    """Every connection of the Dagster storage's database is terminated, over and over, for 20 s (the
    storage pools connections per process and checks each before use: prism_assets/core/pg_storage.py)."""
    import psycopg2

    f.wait_step_started()
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    n, end = 0, time.monotonic() + 20
    with conn.cursor() as cur:
        while time.monotonic() < end:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (f.plan.database,))
            n += cur.fetchone()[0]
            time.sleep(0.2)
    conn.close()
    f.fault_end = time.monotonic()
    return f"every PostgreSQL connection of the Dagster storage terminated, every 0.2 s for 20 s mid-run ({n} connections)"


SCENARIOS = {fn.__name__: fn for fn in (celery_worker_killed, run_worker_killed, daemon_restarted, daemon_restarted_mid_backfill, s3_unreachable_30s,
                                        s3_blackhole_30s, mariadb_down_10s, mariadb_down_120s, postgres_connections_dropped)}


# ------------------------------------------------------------------------------------------------


def failure_line(url: str, run_id: str) -> str | None:
    from prism_assets_tests.support.dagster_ui import gql

    q = """query F($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events { __typename
      ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } }
      ... on RunFailureEvent { message error { message causes { message } } } } } } }"""
    events = gql(url, q, {"runId": run_id})["logsForRun"].get("events") or []
    for e in events:
        if e["__typename"] == "ExecutionStepFailureEvent" and e.get("error"):
            line = e["error"]["message"].strip().splitlines()[0][:300]
            causes = [c["message"].strip().splitlines()[0][:300] for c in e["error"].get("causes") or [] if c.get("message")]
            return f"{e['stepKey']}: {line}" + (f" <- caused by: {causes[-1]}" if causes else "")
    for e in events:
        if e["__typename"] == "RunFailureEvent":
            line = (e.get("message") or "").strip().splitlines()[0][:300]
            err = e.get("error") or {}
            # the UI shows the run failure's error under its message: its last cause is the reason
            why = [m.strip().splitlines()[0][:300] for m in [err.get("message"), *[c.get("message") for c in err.get("causes") or []]] if m and m.strip()]
            return line + (f" <- {why[-1]}" if why else "")
    return None


def measure(name: str, titles: int, work: Path, s3_endpoint: str, deadline_s: float) -> dict:
    import boto3
    import pymysql

    stack = load_stack()
    tag = uuid.uuid4().hex[:8]
    bucket, db, pgdb, prefix = f"faults-{tag}", f"prism_faults_{tag}", f"prism_faults_{tag}", f"q{tag}-"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    s3_port = int(s3_endpoint.rsplit(":", 1)[1])
    proxies = {"s3": Proxy(("127.0.0.1", s3_port)), "mariadb": Proxy(("127.0.0.1", 3306))}
    home = work / name / "home"
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "PRISM_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxies['s3'].port}",
        "PRISM_DELIVERY_ROOT": f"s3://{bucket}/deliveries", "PRISM_ARTIFACT_ROOT": f"s3://{bucket}/artifacts",
        "PRISM_CATALOG_URL": f"mysql+pymysql://root@127.0.0.1:{proxies['mariadb'].port}/{db}",
        "PRISM_EXECUTOR": "celery", "PRISM_CELERY_QUEUE_PREFIX": prefix,
        "PRISM_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//", "PRISM_CELERY_BACKEND_URL": "rpc://",
        "PRISM_DATA_DIR": str(work / name / "data"), "PRISM_SENSOR_INTERVAL_S": "5", "HF_HUB_OFFLINE": "1",
    }
    result: dict = {"scenario": name, "titles_delivered": titles}
    with stack.patched_env(env):
        plan = stack.build_plan(home, database=pgdb, workers=True)
        stack.prepare(plan)
        media = work / name / "media"
        media.mkdir(parents=True, exist_ok=True)
        clips = [clip(media / f"c{i}.mp4", i) for i in range(titles)]
        try:
            with stack.running(plan) as run:
                stack.wait_healthy(run, timeout=180)
                flow = Flow(stack, run, plan, s3, bucket, proxies, work)
                flow.titles = titles
                day = date.today().isoformat()
                names = [f"fault-{i}" for i in range(titles)]
                t0 = time.monotonic()
                for tid, path in zip(names, clips):
                    s3.upload_file(str(path), bucket, f"deliveries/{day}/{tid}/{tid}.mp4")
                print(f"[{name}] delivered {titles} title(s); injecting", flush=True)
                result["fault"] = SCENARIOS[name](flow)
                result.update(flow.extra)
                fault_end = flow.fault_end or time.monotonic()
                print(f"[{name}] {result['fault']}", flush=True)

                def ended():
                    rs = flow.title_runs()
                    by: dict[str, list] = {}
                    for r in rs:
                        by.setdefault(r["tags"].get("dagster/partition"), []).append(r)
                    done = set(by) == set(names) and all(r["status"] in TERMINAL for r in rs)
                    return by if done else None

                by = None
                try:
                    by = flow.wait("every run to end", ended, deadline_s, 3)
                    result["seconds_fault_end_to_all_ended"] = round(time.monotonic() - fault_end, 1)
                except TimeoutError:
                    result["seconds_fault_end_to_all_ended"] = None
                    rs = flow.title_runs()
                    by = {}
                    for r in rs:
                        by.setdefault(r["tags"].get("dagster/partition"), []).append(r)
                result["seconds_drop_to_all_ended"] = round(time.monotonic() - t0, 1) if result["seconds_fault_end_to_all_ended"] is not None else None
                completed = [t for t in names if any(r["status"] == "SUCCESS" for r in by.get(t, []))]
                failed = [t for t in names if by.get(t) and t not in completed and all(r["status"] in TERMINAL for r in by[t])]
                lost = [t for t in names if t not in completed and t not in failed]
                dup = [t for t in names if sum(r["status"] == "SUCCESS" for r in by.get(t, [])) > 1]
                result.update(titles_completed=len(completed), titles_failed=len(failed), titles_lost=len(lost), titles_duplicated=len(dup),
                              runs=sum(len(v) for v in by.values()), lost=lost, failed=failed)
                lines = {}
                for t in failed:
                    last = by[t][0]
                    lines[t] = failure_line(flow.url, last["runId"])
                result["operator_lines"] = lines
                # the monitoring window (deploy/dagster.yaml: poll 60 s, free slots 300 s after a run ends)
                inst = flow.instance()
                window_end = time.monotonic() + 330
                held = None
                while time.monotonic() < window_end:
                    held = {p: sorted(inst.event_log_storage.get_concurrency_info(p).active_run_ids) for p in ("gpu", "decode")}
                    if not any(held.values()):
                        break
                    time.sleep(10)
                result["pool_slots_held_after_window"] = sum(len(v) for v in held.values())
                # partial artifacts: catalog outputs without their object, objects of titles without a success
                keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="artifacts/")
                        for o in page.get("Contents", [])}
                from sqlalchemy import create_engine, text

                eng = create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{db}")
                with eng.connect() as c:
                    outs = c.execute(text("SELECT partition_key, `signal`, uri FROM signal_outputs")).all()
                    started = c.execute(text("SELECT count(*) FROM signal_runs WHERE status = 'started'")).scalar()
                eng.dispose()
                missing = [u for _, _, u in outs if u.startswith("s3://") and u.split("/", 3)[3] not in keys
                           and not any(k.startswith(u.split("/", 3)[3].rstrip("/") + "/") for k in keys)]
                result["partial_artifacts_visible"] = len(missing)
                result["catalog_signal_runs_left_started"] = int(started)
                inst.dispose()
                result["processes_alive"] = {n: p.poll() is None for n, p in run.procs.items()}
        finally:
            for p in proxies.values():
                p.close()
            stack.drop_database(plan.env)
            with my.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {db}")
            my.close()
            stack.delete_queues([f"{prefix}cpu", f"{prefix}gpu"])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    ap.add_argument("--titles", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=600.0, help="seconds after the fault to wait for every run to end")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "faults.json")
    args = ap.parse_args(argv)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"prism-faults-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    port = load_stack().free_port()
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        time.sleep(3)
        for name in args.only or list(SCENARIOS):
            t0 = time.monotonic()
            try:
                r = measure(name, args.titles, work, f"http://127.0.0.1:{port}", args.deadline)
            except Exception as exc:  # a scenario that could not be run is reported, not hidden
                r = {"scenario": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            r["scenario_seconds"] = round(time.monotonic() - t0, 1)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    doc = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "setup": "deploy/local_stack.py (code server, webserver, daemon on PostgreSQL with deploy/dagster.yaml + PrismRunLauncher; "
                    "Celery gpu/cpu workers on RabbitMQ; PRISM_EXECUTOR=celery); S3 = moto server and catalog = MariaDB, each behind a "
                    "TCP proxy the benchmark controls; 3-s generated clips delivered to S3 for today, launched by the daemon's sensor",
           "scenarios": results}
    if args.only and args.out.exists():  # keep the other scenarios' last results
        old = {r["scenario"]: r for r in json.loads(args.out.read_text()).get("scenarios", [])}
        old.update({r["scenario"]: r for r in results})
        doc["scenarios"] = list(old.values())
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
