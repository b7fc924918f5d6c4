"""The daemon path against the CLI, per title, on the same clip and machine.

    PYTHONPATH=. .venv/bin/python -m benchmarks.daemon_path [--clip PATH] [--titles N] [--out FILE]

- **CLI**: `prism process CLIP` (a fresh process each time: imports, model loads, the run in process),
  wall clock of the command, twice; the median.
- **Daemon**: `dagster-daemon run` on a standing code server of the project (`dagster code-server start`, as
  production and `dagster dev` run it; `daemon_titles(standing_code_server=False)`: the python-module workspace,
  whose code server the daemon replaces every 60 s) and a temporary instance (the
  embedded dagster.yaml: SQLite, queued runs, pools), the delivery sensor every 2 s; N copies of the
  clip dropped into one date folder of the delivery root at once. Per title, from the instance:
  `drop -> run created` (the sensor's tick), `created -> started` (queue, launch, run worker start),
  `started -> done` (the run), and `created -> done`, the daemon's per-title wall, which is compared
  with the CLI's; for N > 1 also the batch's wall / N.

Writes `benchmarks/results/daemon_path.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
BIN = Path(sys.executable).parent


def _env(base: Path, sensor_s: int = 2, executor: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRISM_")}
    env.update(PRISM_DATA_DIR=str(base / "data"), DAGSTER_HOME=str(base / "home"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO),
               PRISM_SENSOR_INTERVAL_S=str(sensor_s))
    if executor:
        env["PRISM_EXECUTOR"] = executor
    (base / "home").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", base / "home" / "dagster.yaml")
    return env


def cli_seconds(clip: Path, work: Path, repeats: int = 2) -> list[float]:
    out = []
    for i in range(repeats):
        base = work / f"cli{i}"
        env = _env(base)
        t0 = time.perf_counter()
        proc = subprocess.run([str(BIN / "prism"), "process", str(clip), "--title-id", f"cli{i}"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=1800)
        out.append(round(time.perf_counter() - t0, 2))
        if proc.returncode != 0:
            raise RuntimeError(f"prism process failed: {proc.stderr[-2000:]}")
    return out


def code_server(base: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """A standing code server for the daemon, as production runs one (deploy/images/code.Dockerfile: `dagster code-server
    start`; `dagster dev` does the same for its daemon): a daemon given the python-module workspace instead starts its
    own and replaces it every 60 s (dagster/_daemon/controller.py RELOAD_WORKSPACE_INTERVAL), importing the project
    again each time, ~12 % of a core on an idle 2-core machine. Returns the process and a workspace file naming it."""
    from .faults import load_stack

    stack = load_stack()  # deploy/local_stack.py: the production stack's own port helpers
    port = stack.free_port()
    proc = subprocess.Popen([str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m", "prism_assets.definitions",
                             "-a", "defs", "--location-name", "prism"], cwd=REPO, env=env, stdout=open(base / "code_server.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    stack.wait_port(port, proc, timeout=180)
    ws = base / "workspace.yaml"
    ws.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: prism\n")
    return proc, ws


def daemon_titles(clip: Path, work: Path, n: int, executor: str, timeout_s: float = 1800, standing_code_server: bool = True) -> dict:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    base = work / f"daemon-{executor}"
    env = _env(base, executor=executor)
    server, workspace = code_server(base, env) if standing_code_server else (None, REPO / "workspace.yaml")
    log = open(base / "daemon.log", "wb")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            deadline = time.time() + 180
            while time.time() < deadline and not instance.get_daemon_heartbeats():
                time.sleep(1)
            time.sleep(5)  # the sensors' first ticks (nothing to do yet)
            day = date.today().isoformat()
            drop = time.time()
            for i in range(n):
                folder = base / "data" / "deliveries" / day / f"d{i}"
                folder.mkdir(parents=True)
                shutil.copyfile(clip, folder / clip.name)
            wanted = {f"d{i}" for i in range(n)}
            done: dict = {}
            while time.time() < drop + timeout_s and len(done) < n:
                for rec in instance.get_run_records(RunsFilter(job_name="process_title")):
                    r = rec.dagster_run
                    part = r.tags.get("dagster/partition")
                    if part in wanted and r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
                        done[part] = {"status": r.status.value, "created": rec.create_timestamp.timestamp(),
                                      "started": rec.start_time, "ended": rec.end_time, "run_id": r.run_id}
                time.sleep(1)
            if len(done) < n:
                raise RuntimeError(f"only {len(done)} of {n} titles done in {timeout_s}s; see {base / 'daemon.log'}")
            steps = {}
            for part, d in done.items():
                for ev in instance.all_logs(d["run_id"]):
                    de = ev.dagster_event
                    if de is not None and de.step_key and de.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
                        steps.setdefault(part, {}).setdefault(de.step_key, {})[de.event_type_value] = ev.timestamp
    finally:
        for proc in (daemon, server):
            if proc is None:
                continue
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        log.close()
    per = {}
    for part, d in sorted(done.items()):
        per[part] = {"status": d["status"], "drop_to_created_s": round(d["created"] - drop, 2), "created_to_started_s": round(d["started"] - d["created"], 2),
                     "started_to_done_s": round(d["ended"] - d["started"], 2), "created_to_done_s": round(d["ended"] - d["created"], 2),
                     "steps_s": {k: round(v["STEP_SUCCESS"] - v["STEP_START"], 2) for k, v in sorted(steps.get(part, {}).items())
                                 if "STEP_SUCCESS" in v and "STEP_START" in v}}
    batch = max(d["ended"] for d in done.values()) - drop
    return {"titles": per, "batch_drop_to_all_done_s": round(batch, 2), "batch_per_title_s": round(batch / n, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.daemon_path", description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=MEDIA / "qc_composite.mp4")
    ap.add_argument("--titles", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "daemon_path.json")
    ap.add_argument("--label", default="")
    ap.add_argument("--executors", default="inprocess,multiprocess", help="PRISM_EXECUTOR values to measure the daemon path with")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prism_daemon_bench_"))
    cli = cli_seconds(args.clip, work)
    cli_median = statistics.median(cli)
    daemon = {}
    for executor in args.executors.split(","):
        d = daemon_titles(args.clip, work, args.titles, executor)
        created_to_done = statistics.median(t["created_to_done_s"] for t in d["titles"].values())
        drop_to_done = statistics.median(t["drop_to_created_s"] + t["created_to_done_s"] for t in d["titles"].values())
        d["ratio_created_to_done_over_cli"] = round(created_to_done / cli_median, 3)
        d["ratio_drop_to_done_over_cli"] = round(drop_to_done / cli_median, 3)
        d["ratio_batch_per_title_over_cli"] = round(d["batch_per_title_s"] / cli_median, 3)
        daemon[executor] = d
    result = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "label": args.label,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
        "clip": args.clip.name, "titles": args.titles, "sensor_interval_s": 2,
        "cli_prism_process_s": cli, "cli_median_s": cli_median,
        "daemon_by_executor": daemon,
        "target_ratio": 1.5,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = prev.get("runs", []) if isinstance(prev, dict) else []
    runs.append(result)
    args.out.write_text(json.dumps({"latest": result, "runs": runs[-6:]}, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
