#!/usr/bin/env python
"""The production stack of deploy/compose.yaml, started from processes on one machine.

Same instance config (deploy/dagster.yaml: Postgres storage, queued runs, pools, run monitoring),
same topology: a gRPC code server for the `prism` location, dagster-webserver and dagster-daemon
talking to it, and optionally two Celery workers (queues `gpu` and `cpu`, broker RabbitMQ) for
`PRISM_EXECUTOR=celery`. It uses the PostgreSQL / RabbitMQ / MariaDB / S3 endpoints given in the
environment (defaults: the services of a dev/CI machine on 127.0.0.1) instead of containers.

    python deploy/local_stack.py --dry-run          # print the plan (secrets redacted), start nothing
    python deploy/local_stack.py                    # start, Ctrl-C stops everything
    python deploy/local_stack.py --check            # start, wait until healthy, stop; exit 0/1
    python deploy/local_stack.py --workers --check  # ... with the two Celery workers
    python deploy/local_stack.py --installed ...    # run the prism_assets installed in this Python (the
                                                    # wheel, as the images do), not the checkout

Environment read (all optional): DAGSTER_PG_HOST/PORT/USER/PASSWORD/DB, PRISM_CELERY_BROKER_URL,
PRISM_CELERY_BACKEND_URL, PRISM_CELERY_QUEUE_PREFIX, PRISM_GPU_SLOTS, PRISM_DECODE_SLOTS, PRISM_CPU_WORKERS
(Celery workers on the cpu queue, default 1), plus the
code location's own PRISM_* settings (README "Configuration"). Secrets are passed to the child
processes through their environment only and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
BIN = Path(sys.executable).parent
LOCATION = "prism"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY(_ID)?$", re.I)
URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@]*)(:(?P<pw>[^@/]*))?@", re.I)


def redact(name: str, value: str) -> str:
    """A value safe to print: secret-named variables hidden, passwords in URLs masked."""
    if SECRET_NAME.search(name):
        return "***" if value else ""
    return URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}{':***' if m['pw'] is not None else ''}@", value)


# The default run launcher plus a worker health check (prism_assets/core/run_health.py): on one host,
# run monitoring can see that a run worker died and fail its run instead of leaving it STARTED with its
# pool slots held. (The images' dagster.yaml keeps the default launcher: the webserver/daemon image does
# not carry prism_assets, and across containers a pid means nothing; ECS's launcher checks its tasks.)
LOCAL_LAUNCHER = """
run_launcher:
  module: prism_assets.core.run_health
  class: PrismRunLauncher
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    argv: list[str]
    env_extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    home: Path
    env: dict[str, str]  # variables set for every process (on top of os.environ)
    procs: list[Proc]
    webserver_url: str
    grpc_port: int
    pools: dict[str, int]
    database: str
    cwd: Path = REPO  # the processes' working directory (the home when running an installed package)

    def describe(self) -> dict:
        return {
            "dagster_home": str(self.home),
            "database": self.database,
            "webserver": self.webserver_url,
            "code_server": f"127.0.0.1:{self.grpc_port}",
            "pools": self.pools,
            "env": {k: redact(k, v) for k, v in sorted(self.env.items())},
            "processes": [{"name": p.name, "argv": [redact("", a) for a in p.argv],
                           "env": {k: redact(k, v) for k, v in p.env_extra.items()}} for p in self.procs],
        }


def delete_queues(names: list[str], broker_url: str | None = None) -> None:
    """Remove a stack's Celery queues from the broker (a stack run with its own PRISM_CELERY_QUEUE_PREFIX)."""
    from kombu import Connection

    url = broker_url or os.environ.get("PRISM_CELERY_BROKER_URL", "pyamqp://guest:guest@127.0.0.1:5672//")
    with Connection(url, connect_timeout=5) as conn:
        ch = conn.default_channel
        for name in names:
            try:
                ch.queue_delete(name)
            except Exception:  # noqa: BLE001 - a queue that was never declared
                ch = conn.channel()


def celery_config_module(directory: Path) -> Path:
    """A folder holding deploy/images/dagster_celery_config.py (the module the images ship; what
    `dagster-celery worker start -y` would generate): broker and backend URLs come from the
    environment at import, so no credential is written to disk. Put it on the workers' PYTHONPATH."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY / "images" / "dagster_celery_config.py", directory / "dagster_celery_config.py")
    return directory


def worker_proc(kind: str, config_dir: Path, prefix: str = "", name_suffix: str = "", bin_dir: Path | None = None,
                tree: bool = True, number: int = 1) -> Proc:
    """One Celery worker listening on the `gpu` or `cpu` queue, one step at a time (solo pool:
    a GPU step owns the process and its CUDA context; scale with more workers, not threads).
    `tree`: import prism_assets from the checkout (PYTHONPATH); else the installed package."""
    queue = f"{prefix}{kind}"
    nth = f"-{number}" if number > 1 else ""  # the second cpu worker of a host: worker-cpu-2, prism-cpu-2@host
    return Proc(
        name=f"worker-{kind}{nth}",
        argv=[str((bin_dir or BIN) / "celery"), "-A", "dagster_celery.app", "worker", "-Q", queue, "-n", f"prism-{kind}{name_suffix}{nth}@%h",
              "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
              "--without-heartbeat", "--loglevel", "INFO"],
        env_extra={"PYTHONPATH": os.pathsep.join([str(config_dir), str(REPO)] if tree else [str(config_dir)]), "PRISM_CELERY_QUEUE_PREFIX": prefix},
    )


def build_plan(home: Path, *, database: str | None = None, webserver_port: int | None = None, grpc_port: int | None = None,
               workers: bool = False, queue_prefix: str | None = None, bin_dir: Path | None = None, installed: bool = False) -> Plan:
    """`installed`: every process imports the prism_assets installed in `bin_dir`'s environment (a wheel,
    as in the images): no PYTHONPATH to the checkout, working directory the home."""
    env = os.environ
    bin_ = bin_dir or BIN
    pg = {
        "DAGSTER_PG_HOST": env.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": env.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_USER": env.get("DAGSTER_PG_USER", "postgres"),
        "DAGSTER_PG_PASSWORD": env.get("DAGSTER_PG_PASSWORD", ""),
        "DAGSTER_PG_DB": database or env.get("DAGSTER_PG_DB", "prism_dagster"),
    }
    prefix = env.get("PRISM_CELERY_QUEUE_PREFIX", "") if queue_prefix is None else queue_prefix
    common = {
        **pg,
        "DAGSTER_HOME": str(home),
        "PRISM_CELERY_BROKER_URL": env.get("PRISM_CELERY_BROKER_URL", "pyamqp://guest:guest@127.0.0.1:5672//"),
        "PRISM_CELERY_BACKEND_URL": env.get("PRISM_CELERY_BACKEND_URL", "rpc://"),
        "PRISM_CELERY_QUEUE_PREFIX": prefix,
        "PYTHONPATH": "" if installed else str(REPO),
    }
    wport = webserver_port or free_port()
    gport = grpc_port or free_port()
    procs = [
        Proc("code-server", [str(bin_ / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(gport),
                             "-m", "prism_assets.definitions", "-a", "defs", "--location-name", LOCATION, "-d", str(home if installed else REPO)]),
        Proc("webserver", [str(bin_ / "dagster-webserver"), "-w", str(home / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(wport)]),
        Proc("daemon", [str(bin_ / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")]),
    ]
    if workers:
        # a queue prefix marks a stack sharing the broker with others: its workers' node names carry it too
        # (a Celery node name owns an exclusive pidbox queue on the broker; two `prism-cpu@host` collide)
        suffix = f"-{prefix.rstrip('-')}" if prefix else ""
        cpu_workers = int(env.get("PRISM_CPU_WORKERS", "1"))  # more than one: steps of other titles overlap a step's I/O waits
        procs += [worker_proc("cpu", home / "celery", prefix, suffix, bin_dir=bin_, tree=not installed, number=n + 1) for n in range(cpu_workers)]
        procs += [worker_proc("gpu", home / "celery", prefix, suffix, bin_dir=bin_, tree=not installed)]
    pools = {"gpu": int(env.get("PRISM_GPU_SLOTS", "1")), "decode": int(env.get("PRISM_DECODE_SLOTS", "2")), "index": 1}
    return Plan(home=home, env=common, procs=procs, webserver_url=f"http://127.0.0.1:{wport}/graphql", grpc_port=gport,
                pools=pools, database=pg["DAGSTER_PG_DB"], cwd=home if installed else REPO)


def prepare(plan: Plan, *, create_db: bool = True) -> None:
    """DAGSTER_HOME (deploy/dagster.yaml + a gRPC workspace), the database, the pool limits."""
    plan.home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY / "dagster.yaml", plan.home / "dagster.yaml")
    with open(plan.home / "dagster.yaml", "a") as f:  # every process of this stack runs on this host, with prism_assets
        f.write(LOCAL_LAUNCHER)
    (plan.home / "workspace.yaml").write_text(
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
        f"      port: {plan.grpc_port}\n      location_name: {LOCATION}\n"
    )
    if any(p.name.startswith("worker-") for p in plan.procs):
        celery_config_module(plan.home / "celery")
    if create_db:
        create_database(plan.env)
    with patched_env(plan.env):
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            for pool, slots in plan.pools.items():
                instance.event_log_storage.set_concurrency_slots(pool, slots)


def create_database(env: dict[str, str]) -> bool:
    import psycopg2

    conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]), user=env["DAGSTER_PG_USER"],
                            password=env["DAGSTER_PG_PASSWORD"] or None, dbname="postgres", connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (env["DAGSTER_PG_DB"],))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{env["DAGSTER_PG_DB"]}"')
            return True
    finally:
        conn.close()


def drop_database(env: dict[str, str]) -> None:
    import psycopg2

    conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]), user=env["DAGSTER_PG_USER"],
                            password=env["DAGSTER_PG_PASSWORD"] or None, dbname="postgres", connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (env["DAGSTER_PG_DB"],))
            cur.execute(f'DROP DATABASE IF EXISTS "{env["DAGSTER_PG_DB"]}"')
    finally:
        conn.close()


@contextmanager
def patched_env(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Running:
    plan: Plan
    procs: dict[str, subprocess.Popen]
    logs: Path

    def tail(self, name: str, n: int = 3000) -> str:
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace")[-n:] if p.exists() else ""

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with code {p.returncode}:\n{self.tail(name)}")


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def start_procs(procs: list[Proc], env: dict[str, str], logs: Path, grpc_port: int | None = None, cwd: Path = REPO) -> dict[str, subprocess.Popen]:
    logs.mkdir(parents=True, exist_ok=True)
    out: dict[str, subprocess.Popen] = {}
    try:
        for proc in procs:
            penv = {**os.environ, **env, **proc.env_extra}
            with open(logs / f"{proc.name}.log", "wb") as log:
                # own process group: stop() ends the process and its children (run workers), nothing else
                out[proc.name] = subprocess.Popen(proc.argv, cwd=cwd, env=penv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if grpc_port and proc.name == "code-server":  # webserver and daemon connect to it at start
                wait_port(grpc_port, out[proc.name], timeout=120)
    except Exception:
        stop_procs(out)
        raise
    return out


def stop_procs(procs: dict[str, subprocess.Popen], timeout: float = 20.0) -> None:
    for p in procs.values():
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


@contextmanager
def running(plan: Plan, logs: Path | None = None):
    logs = logs or plan.home / "stack_logs"  # not DAGSTER_HOME/logs: Dagster clears that folder
    procs = start_procs(plan.procs, plan.env, logs, plan.grpc_port, cwd=plan.cwd)
    try:
        yield Running(plan, procs, logs)
    finally:
        stop_procs(procs)


LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } } }
  ... on PythonError { message } } } } } }"""


RELOAD_MUTATION = f'mutation {{ reloadRepositoryLocation(repositoryLocationName: "{LOCATION}") {{ __typename }} }}'


def graphql(url: str, query: str, timeout: float = 10.0) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = json.loads(r.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


RESOURCES_QUERY = f"""{{ allTopLevelResourceDetailsOrError(repositorySelector: {{repositoryLocationName: "{LOCATION}",
  repositoryName: "__repository__"}}) {{ __typename ... on ResourceDetailsList {{ results {{ name configuredValues {{ key value type }} }} }} }} }}"""


def secret_values(env: dict[str, str]) -> set[str]:
    """Values that must never be served or logged: secret-named variables and URL passwords."""
    out = set()
    for k, v in env.items():
        if not v:
            continue
        if SECRET_NAME.search(k):
            out.add(v)
        for m in URL_USERINFO.finditer(v):
            if m["pw"] and m["pw"] not in ("guest",):
                out.add(m["pw"])
    return {v for v in out if len(v) >= 6}


def served_secrets(run: Running) -> dict:
    """Asks the webserver for every resource's configured values (what the UI's Resources page
    shows) and reports secret values found in the answer, and which values are masked."""
    data = graphql(run.plan.webserver_url, RESOURCES_QUERY)["allTopLevelResourceDetailsOrError"]
    text = json.dumps(data)
    env = {**os.environ, **run.plan.env}
    leaks = [k for k, v in env.items() if any(secret in text for secret in secret_values({k: v}))]
    masked = sorted(f"{r['name']}.{c['key']}" for r in data.get("results", []) for c in r["configuredValues"] if c["type"] in ("SECRET", "ENV_VAR"))
    return {"leaks": sorted(set(leaks)), "masked": masked}


def wait_healthy(run: Running, timeout: float = 150.0) -> dict:
    """Until the webserver serves the `prism` location (through the code server) and every daemon
    has sent a heartbeat to the instance. Returns what was seen."""
    from dagster import DagsterInstance

    deadline = time.monotonic() + timeout
    last = "nothing yet"
    seen: dict = {}
    while time.monotonic() < deadline:
        run.check_alive()
        if "jobs" not in seen:
            try:
                ws = graphql(run.plan.webserver_url, LOCATION_QUERY)["workspaceOrError"]
                entry = next((e for e in ws.get("locationEntries", []) if e["name"] == LOCATION), None)
                loc = entry and entry["locationOrLoadError"]
                if loc and loc["__typename"] == "PythonError":
                    # the code server may still be importing the code location: ask for a reload
                    last = f"location error: {loc['message'][:300]}"
                    graphql(run.plan.webserver_url, RELOAD_MUTATION)
                elif loc and loc.get("repositories"):
                    seen["jobs"] = sorted(j["name"] for r in loc["repositories"] for j in r["jobs"])
                else:
                    last = f"location status {entry and entry['loadStatus']}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = f"webserver: {type(exc).__name__}: {exc}"
        if "jobs" in seen:
            with patched_env(run.plan.env), DagsterInstance.get() as instance:
                beats = instance.get_daemon_heartbeats()
                required = set(instance.get_required_daemon_types())
                seen["daemons"] = sorted(beats)
                workers = [n for n in run.procs if n.startswith("worker-")]
                ready = [n for n in workers if " ready." in run.tail(n, 200_000)]
                if required <= set(beats) and len(ready) == len(workers):
                    seen["required_daemons"] = sorted(required)
                    seen["workers_ready"] = sorted(ready)
                    return seen
                last = f"daemons without heartbeat: {sorted(required - set(beats))}, workers not ready: {sorted(set(workers) - set(ready))}"
        time.sleep(1.0)
    raise TimeoutError(f"stack not healthy after {timeout:.0f}s ({last})\n" + "\n".join(
        f"--- {n}:\n{run.tail(n, 1500)}" for n in run.procs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="DAGSTER_HOME to create (default: a temporary folder)")
    ap.add_argument("--database", help="Postgres database for the instance (default: $DAGSTER_PG_DB or prism_dagster)")
    ap.add_argument("--webserver-port", type=int, default=None)
    ap.add_argument("--grpc-port", type=int, default=None)
    ap.add_argument("--workers", action="store_true", help="also start the Celery workers (queues gpu and cpu)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan as JSON (secrets redacted) and exit")
    ap.add_argument("--check", action="store_true", help="start, wait until healthy, print what was seen, stop")
    ap.add_argument("--drop-db", action="store_true", help="with --check: drop the database afterwards")
    ap.add_argument("--installed", action="store_true", help="run the prism_assets installed in this Python (the wheel), not the checkout")
    args = ap.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="prism-stack-"))
    plan = build_plan(home.resolve(), database=args.database, webserver_port=args.webserver_port, grpc_port=args.grpc_port, workers=args.workers,
                      installed=args.installed)
    print(json.dumps(plan.describe(), indent=1))
    if args.dry_run:
        return 0
    try:
        prepare(plan)
        with running(plan) as run:
            try:
                seen = wait_healthy(run)
            except (TimeoutError, RuntimeError) as exc:
                print(f"local stack: not healthy: {exc}", file=sys.stderr)
                return 1
            seen["served_secrets"] = served_secrets(run)
            print(json.dumps({"healthy": True, **seen}))
            if seen["served_secrets"]["leaks"]:
                print(f"local stack: the webserver serves secret values: {seen['served_secrets']['leaks']}", file=sys.stderr)
                return 1
            if args.check:
                return 0
            print(f"local stack up: UI {plan.webserver_url.removesuffix('/graphql')} (Ctrl-C stops)", flush=True)
            try:
                while True:
                    run.check_alive()
                    time.sleep(2)
            except KeyboardInterrupt:
                return 0
    finally:
        if args.check and args.drop_db:
            drop_database(plan.env)


if __name__ == "__main__":
    sys.exit(main())
