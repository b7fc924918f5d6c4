"""Load: many small deliveries in one day through the daemon on the production instance config.

    PYTHONPATH=. .venv/bin/python -m benchmarks.load [--titles 300] [--runs 3] [--executor inprocess] [--out FILE]

deploy/local_stack.py (code server, webserver, daemon on PostgreSQL with deploy/dagster.yaml, queued
runs, pools gpu=1/decode=2, run monitoring), deliveries and artifacts on S3 (moto's server), catalog
on MariaDB. `--titles` generated clips of 2-5 s (picture + tone) are put into one date folder of the
bucket at once; the daemon's delivery sensor lists them and launches one process_title run per
title. The instance runs at most `--runs` runs at a time (deploy/dagster.yaml allows 200, which is
sized for a fleet, not for one 2-core host: each run worker holds its imports and models).

Recorded (`benchmarks/results/load.json`): titles delivered / processed / failed / launched twice;
the highest number of `gpu`-pool steps running at once against the pool's slots (from the step
events); the delivery sensor's evaluation times (its own log line, in the code server's log) and the
daemon's ticks of it (evaluation plus submitting each requested run, from the daemon's log); titles per hour; the fixed cost per
title (the intercept of run time against clip duration, least squares) and the marginal cost per
second of media.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from .faults import REPO, load_stack

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def clip(path: Path, seconds: float, i: int) -> Path:
    sources = ["testsrc2", "smptebars", "rgbtestsrc", "testsrc"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{sources[i % 4]}=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency={300 + 50 * i}:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, capture_output=True, timeout=120)
    return path


ANSI = re.compile(r"\x1b\[[0-9;]*m")
DAEMON_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000 - [\w.]+ - \w+ - (.*)$")


def daemon_ticks(daemon_log: str, sensor: str = "delivery_sensor") -> list[dict]:
    """The sensor's ticks as the daemon ran them (its log): start, seconds until the tick's last run
    was submitted, runs submitted. The sensor's own evaluation is only the first part of a tick: the
    daemon then creates and submits each requested run."""
    ticks: list[dict] = []
    for line in ANSI.sub("", daemon_log).splitlines():
        m = DAEMON_LINE.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        msg = m.group(2)
        if msg == f"Checking for new runs for sensor: {sensor}":
            ticks.append({"start": at, "end": at, "runs": 0})
        elif ticks and msg.startswith("Completed launch of run ") and msg.endswith(f" for {sensor}"):
            ticks[-1]["end"], ticks[-1]["runs"] = at, ticks[-1]["runs"] + 1
        elif ticks and (msg.startswith("Skipping ") and f" runs for sensor {sensor} " in msg or msg.startswith(f"Sensor {sensor} skipped")):
            ticks[-1]["end"] = at  # a tick that launched nothing (run keys already used, or a skip)
    return [{"seconds": round(t["end"] - t["start"], 1), "runs": t["runs"]} for t in ticks]


def tick_summary(ticks: list[dict]) -> dict:
    with_runs = [t for t in ticks if t["runs"]]
    return {"ticks": len(ticks), "ticks_with_runs": len(with_runs), "runs_submitted": sum(t["runs"] for t in ticks),
            "longest_tick_seconds": max((t["seconds"] for t in ticks), default=None),
            "median_tick_without_runs_seconds": statistics.median([t["seconds"] for t in ticks if not t["runs"]] or [0]),
            "seconds_per_submitted_run": round(sum(t["seconds"] for t in with_runs) / max(1, sum(t["runs"] for t in with_runs)), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--titles", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3, help="max concurrent runs of the instance")
    ap.add_argument("--executor", default="celery", choices=["inprocess", "celery"],
                    help="celery (production: workers keep their models loaded between titles) or inprocess (models per run)")
    ap.add_argument("--cpu-workers", type=int, default=1, help="Celery workers on the cpu queue (celery executor)")
    ap.add_argument("--deadline", type=float, default=5400.0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "load.json")
    ap.add_argument("--ticks-from", type=Path, help="only add the daemon's sensor ticks, read from this daemon.log of a finished run, to --out")
    ap.add_argument("--note", help="only set the result's `note` (the operator's reading of the run) in --out")
    args = ap.parse_args(argv)
    if args.note:
        doc = json.loads(args.out.read_text())
        doc["note"] = args.note
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    if args.ticks_from:
        doc = json.loads(args.out.read_text())
        doc["daemon_sensor_ticks"] = tick_summary(daemon_ticks(args.ticks_from.read_text(errors="replace")))
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(json.dumps(doc["daemon_sensor_ticks"]))
        return 0
    # a SIGTERM (or `kill`) stops the run the way Ctrl-C does: the stack, its databases and the bucket go
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import boto3
    import pymysql

    from prism_assets_tests.support.dagster_ui import runs

    stack = load_stack()
    tag = uuid.uuid4().hex[:8]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"prism-load-{tag}"
    work.mkdir(parents=True)
    port = stack.free_port()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bucket, db, pgdb = f"load-{tag}", f"prism_load_{tag}", f"prism_load_{tag}"
    time.sleep(3)
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "PRISM_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "PRISM_DELIVERY_ROOT": f"s3://{bucket}/deliveries",
        "PRISM_ARTIFACT_ROOT": f"s3://{bucket}/artifacts", "PRISM_CATALOG_URL": f"mysql+pymysql://root@127.0.0.1:3306/{db}",
        "PRISM_EXECUTOR": args.executor, "PRISM_CELERY_QUEUE_PREFIX": f"l{tag}-",
        "PRISM_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//", "PRISM_CELERY_BACKEND_URL": "rpc://",
        "PRISM_DATA_DIR": str(work / "data"), "PRISM_SENSOR_INTERVAL_S": "10", "HF_HUB_OFFLINE": "1",
        "PRISM_GPU_SLOTS": "1", "PRISM_DECODE_SLOTS": "2", "PRISM_CPU_WORKERS": str(args.cpu_workers),
    }
    result: dict = {"titles_delivered": args.titles, "max_concurrent_runs": args.runs, "executor": args.executor,
                    "cpu_workers": args.cpu_workers if args.executor == "celery" else None}
    try:
        with stack.patched_env(env):
            plan = stack.build_plan(work / "home", database=pgdb, workers=args.executor == "celery")
            stack.prepare(plan)
            from prism_assets.definitions import build_definitions
            from prism_assets.introspect import asset_rows

            gpu_steps = {r.step for r in asset_rows(build_definitions()) if r.pool == "gpu"}
            cfg = plan.home / "dagster.yaml"
            cfg.write_text(re.sub(r"max_concurrent_runs: \d+", f"max_concurrent_runs: {args.runs}", cfg.read_text()))
            # the clips: 12 distinct files of 2-5 s, each delivered under many title folders
            durations = [2.0 + 3.0 * k / 11 for k in range(12)]
            files = [clip(work / f"c{k}.mp4", round(d, 2), k) for k, d in enumerate(durations)]
            lengths = {}
            with stack.running(plan) as run:
                stack.wait_healthy(run, timeout=240)
                day = date.today().isoformat()
                t0 = time.monotonic()
                for i in range(args.titles):
                    k = i % len(files)
                    tid = f"load-{i:04d}"
                    lengths[tid] = round(durations[k], 2)
                    s3.upload_file(str(files[k]), bucket, f"deliveries/{day}/{tid}/{tid}.mp4")
                result["seconds_to_deliver"] = round(time.monotonic() - t0, 1)
                print(f"delivered {args.titles} titles in {result['seconds_to_deliver']} s", flush=True)
                by: dict[str, list] = {}
                deadline = t0 + args.deadline
                last = 0
                while time.monotonic() < deadline:
                    rs = runs(plan.webserver_url, job="process_title")
                    by = {}
                    for r in rs:
                        by.setdefault(r["tags"].get("dagster/partition"), []).append(r)
                    done = sum(1 for v in by.values() if all(r["status"] in TERMINAL for r in v))
                    if done != last:
                        print(f"{done}/{args.titles} titles ended after {time.monotonic() - t0:.0f} s", flush=True)
                        last = done
                    if len(by) == args.titles and done == args.titles:
                        break
                    run.check_alive()
                    time.sleep(10)
                wall = time.monotonic() - t0
                sensor_log = run.tail("code-server", 50_000_000)  # sensors are evaluated in the code server
                daemon_log = run.tail("daemon", 200_000_000)
            with stack.patched_env(plan.env):
                from dagster import DagsterEventType, DagsterInstance

                with DagsterInstance.get() as inst:
                    intervals, run_secs, step_secs = [], [], {}
                    for tid, rs in by.items():
                        for r in rs:
                            rec = inst.get_run_record_by_id(r["runId"])
                            if rec and rec.start_time and rec.end_time and r["status"] == "SUCCESS":
                                run_secs.append((lengths.get(tid), rec.end_time - rec.start_time))
                            starts = {}
                            for e in inst.all_logs(r["runId"], of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                                                                          DagsterEventType.STEP_FAILURE}):
                                step = e.step_key
                                if e.dagster_event_type == DagsterEventType.STEP_START:
                                    starts[step] = e.timestamp
                                elif step in starts:
                                    a = starts.pop(step)
                                    step_secs.setdefault(step, []).append(e.timestamp - a)
                                    if step in gpu_steps:
                                        intervals.append((a, e.timestamp))
                    held = {p: sorted(inst.event_log_storage.get_concurrency_info(p).active_run_ids) for p in ("gpu", "decode")}
                    # a slot held by a run still in progress is in use; one held by an ended run is leaked
                    leaked = sum(1 for ids in held.values() for rid in ids if (r := inst.get_run_by_id(rid)) is None or r.is_finished)
    finally:
        stack.drop_database(env | {"DAGSTER_PG_DB": pgdb})
        with my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
        my.close()
        moto.terminate()
        moto.wait(timeout=10)
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda x: (x[0], x[1]))
    cur_n = peak = 0
    for _, d in events:
        cur_n += d
        peak = max(peak, cur_n)
    ticks = [float(m) for m in re.findall(r"delivery_sensor - listed .*?; (\d+\.\d+)s", sensor_log)]
    processed = sum(1 for v in by.values() if any(r["status"] == "SUCCESS" for r in v))
    xs = [x for x, _ in run_secs if x is not None]
    ys = [y for x, y in run_secs if x is not None]
    slope = intercept = None
    if len(set(xs)) > 1:
        mx, my_ = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my_) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        intercept = my_ - slope * mx
    result.update(
        titles_with_a_run=len(by), titles_processed=processed,
        titles_failed=sum(1 for v in by.values() if v and all(r["status"] in TERMINAL for r in v) and not any(r["status"] == "SUCCESS" for r in v)),
        titles_launched_more_than_once=sum(1 for v in by.values() if len(v) > 1), titles_not_ended=args.titles - sum(1 for v in by.values() if all(r["status"] in TERMINAL for r in v)),
        wall_seconds=round(wall, 1), titles_per_hour=round(processed / wall * 3600, 1) if wall else None,
        gpu_slots=1, gpu_steps_running_at_once_max=peak, pool_slots_held_at_end=sum(len(v) for v in held.values()),
        pool_slots_held_by_ended_runs=leaked,
        daemon_sensor_ticks=tick_summary(daemon_ticks(daemon_log)),
        sensor_evaluations=len(ticks), sensor_evaluation_seconds={"median": round(statistics.median(ticks), 3) if ticks else None, "max": max(ticks) if ticks else None},
        run_seconds_median=round(statistics.median(ys), 2) if ys else None,
        # each step from its start to its success, median over the runs: the rest of a run's time is
        # the run worker's start, the steps' waits in the queues and pools, and the hand-offs between them
        step_seconds_median={k: round(statistics.median(v), 2) for k, v in sorted(step_secs.items())},
        steps_seconds_median_sum=round(sum(statistics.median(v) for v in step_secs.values()), 2) if step_secs else None,
        fixed_cost_seconds_per_title=round(intercept, 2) if intercept is not None else None,
        marginal_seconds_per_media_second=round(slope, 2) if slope is not None else None,
    )
    doc = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, **result}
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
