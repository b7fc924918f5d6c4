"""Feature length: a generated 2-hour 1080p24 title through `prism process` and through the daemon path.

    PYTHONPATH=. .venv/bin/python -m benchmarks.feature [--minutes 120] [--only cli|daemon] [--executor NAME] [--out FILE]

Input: benchmarks/feature_media.py (`--minutes`, default 120; 1920x1080 24 fps, H.264 veryfast CRF 23 + AAC; about 120
distinct one-minute segments of lavfi pictures with cuts, dissolves and fades, signs and captions, espeak-ng speech in
eight voices through ~90 % of it, rolling end credits), rendered in parallel once and cached under
.prism/bench_media/feature/ by its parameters.

- **CLI**: `.venv/bin/prism process FILE` in a fresh data dir and DAGSTER_HOME (the project's dagster.yaml), dev profile,
  PRISM_EXECUTOR = `--executor` (recorded); the Whisper model assembled into the data dir before (once per node).
- **Daemon**: `dagster-daemon run` on a standing code server (as production and `dagster dev`; daemon_path.py
  `code_server`) + the delivery sensor every 2 s, the file linked into a date folder of the delivery
  root (benchmarks/daemon_path.py's `daemon_titles`, one title): drop -> run created -> started -> done.
- Both: end-to-end wall; the whole process tree's summed RSS and PSS every `--sample-s` seconds (/proc: the CLI process
  and its children; for the daemon every process under this one: the daemon, its code server, the run worker and its
  children; RSS counts shared pages in each process, an upper bound; PSS splits them, the goal's measure): peaks,
  median, growth after the first quarter (flat: about 0) and the series; CPU seconds (rusage for the CLI; sampled per process for the daemon) and the machine's busy
  fraction; per-step times and timeline from the Dagster event log, `steps_overlap` = sum of step durations / wall.
- Goals (scaled to `--minutes` for the wall): CLI <= 40 min for 120 min, peak RSS <= 4 GB, daemon <= 1.1 x CLI.

Writes `--out` (default benchmarks/results/feature.json): {"latest": result, "runs": [...]}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import daemon_path
from .bench_proc import REPO, TreeSampler, environment, run_timed, run_timeline, write_result
from .daemon_path import _env as instance_env
from .e2e import prism_models, whisper_dir
from .feature_media import make_feature, parse_size

BIN = REPO / ".venv" / "bin"
GOALS = {"cli_s_per_120_min": 2400.0, "peak_rss_mb": 4096.0, "daemon_over_cli": 1.1}
MAX_ROWS = 1200  # RSS series kept in the results (evenly thinned)


def thin(sampled: dict) -> dict:
    rows = sampled["samples"]["rows"]
    if len(rows) > MAX_ROWS:
        step = len(rows) / MAX_ROWS
        sampled["samples"]["rows"] = [rows[int(i * step)] for i in range(MAX_ROWS)] + [rows[-1]]
        sampled["samples"]["thinned_from"] = len(rows)
    return sampled


def run_cli(video: Path, work: Path, executor: str | None, sample_s: float) -> dict:
    base = work / "cli"
    env = instance_env(base, executor=executor)
    whisper_dir(env, prism_models()["whisper"]["model"])
    launch = time.time()
    print(f"[feature] prism process {video.name} (executor {executor or 'default'}) ...", flush=True)
    r = run_timed([str(BIN / "prism"), "process", str(video), "--title-id", "feature"], env=env, log=work / "cli.log", sample=True, interval_s=sample_s)
    if r["rc"] != 0:
        raise SystemExit(f"prism process failed ({r['rc']}): {(work / 'cli.log').read_text()[-2000:]}")
    tl = run_timeline(Path(env["DAGSTER_HOME"]), "feature", origin_epoch=launch)
    tl["steps_overlap"] = round(tl.get("sum_step_s", 0.0) / r["wall_s"], 3) if r["wall_s"] else None
    r["run"] = tl
    r["cpu_utilization"] = round(r["cpu_s"] / r["wall_s"] / (os.cpu_count() or 1), 3) if r["wall_s"] else None
    print(f"[feature] CLI {r['wall_s']} s, {r['cpu_s']} cpu-s, peak RSS tree {r['peak_rss_tree_mb']} MB", flush=True)
    return thin(r)


@contextlib.contextmanager
def linked_delivery(video: Path):
    """daemon_titles copies the clip into the delivery folder; a multi-GB copy would appear to the sensor half written,
    so the file is hard-linked (atomic) while it runs (a copy to a temporary name and a rename across filesystems)."""
    orig = shutil.copyfile
    src = str(video.resolve())

    def copy(a, b, *args, **kw):
        if str(Path(a).resolve()) != src:
            return orig(a, b, *args, **kw)
        try:
            os.link(a, b)
        except OSError:
            tmp = Path(b).parent.parent / f".{Path(b).name}.partial"
            orig(a, tmp)
            os.replace(tmp, b)
        return b

    daemon_path.shutil.copyfile = copy
    try:
        yield
    finally:
        daemon_path.shutil.copyfile = orig


def run_daemon(video: Path, work: Path, executor: str | None, sample_s: float, timeout_s: float) -> dict:
    base = work / f"daemon-{executor}"
    whisper_dir(instance_env(base, executor=executor), prism_models()["whisper"]["model"])
    print("[feature] daemon path (dagster-daemon + delivery sensor) ...", flush=True)
    sampler = TreeSampler(os.getpid(), sample_s, exclude={os.getpid()}).start()
    t0 = time.perf_counter()
    with linked_delivery(video):
        d = daemon_path.daemon_titles(video, work, 1, executor, timeout_s=timeout_s)
    wall = time.perf_counter() - t0
    s = sampler.stop()
    t = d["titles"]["d0"]
    tl = run_timeline(base / "home", "d0")
    drop_to_done = round(t["drop_to_created_s"] + t["created_to_done_s"], 2)
    tl["steps_overlap"] = round(tl.get("sum_step_s", 0.0) / t["created_to_done_s"], 3) if t["created_to_done_s"] else None
    out = {"status": t["status"], "drop_to_done_s": drop_to_done, **{k: t[k] for k in ("drop_to_created_s", "created_to_started_s",
                                                                                      "started_to_done_s", "created_to_done_s")},
           "benchmark_wall_s": round(wall, 2), "note": "benchmark_wall_s includes the daemon's start (heartbeat) and stop", **s, "run": tl}
    print(f"[feature] daemon drop->done {drop_to_done} s, peak RSS tree {s['peak_rss_tree_mb']} MB", flush=True)
    return thin(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.feature", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--size", type=parse_size, default=(1920, 1080))
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=None, help="segments rendered at once (default: all cores)")
    ap.add_argument("--only", choices=("cli", "daemon"))
    ap.add_argument("--executor", default=None, help="PRISM_EXECUTOR for Prism (default: unset, Prism's default)")
    ap.add_argument("--sample-s", type=float, default=1.5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "feature.json")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (data dirs, logs)")
    args = ap.parse_args(argv)
    env0 = environment()
    video = make_feature(args.minutes * 60, args.size, args.fps, args.seed, jobs=args.jobs)
    truth = json.loads(video.with_suffix(".truth.json").read_text())
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration,bit_rate", "-of", "json", str(video)],
                           capture_output=True, text=True).stdout
    work = Path(tempfile.mkdtemp(prefix="prism_feature_"))
    cli = run_cli(video, work, args.executor, args.sample_s) if args.only in (None, "cli") else None
    daemon = run_daemon(video, work, args.executor, args.sample_s, timeout_s=max(3600.0, args.minutes * 60)) if args.only in (None, "daemon") else None
    goal_cli = GOALS["cli_s_per_120_min"] * args.minutes / 120.0
    # the goal is on the tree's PSS (shared pages once: its real footprint); the summed RSS (an upper bound) is recorded too
    peaks = [x.get("peak_pss_tree_mb") or x["peak_rss_tree_mb"] for x in (cli, daemon) if x]
    met = {"peak_rss": max(peaks) <= GOALS["peak_rss_mb"]}
    if cli:
        met["cli_wall"] = cli["wall_s"] <= goal_cli
    ratio = None
    if cli and daemon:
        ratio = round(daemon["drop_to_done_s"] / cli["wall_s"], 3)
        met["daemon_over_cli"] = ratio <= GOALS["daemon_over_cli"]
    result = {
        **env0, "loadavg_end": list(os.getloadavg()), "command": " ".join(sys.argv),
        "input": {"path": str(video), "minutes": args.minutes, "size": list(args.size), "fps": args.fps, "bytes": video.stat().st_size,
                  "probe": json.loads(probe or "{}").get("format"), "generated": {k: truth[k] for k in ("counts", "render_s", "preset", "crf", "seed")}},
        "executor": args.executor or "default (PRISM_EXECUTOR unset)", "cli": cli, "daemon": daemon,
        "daemon_over_cli": ratio, "daemon_created_to_done_over_cli": round(daemon["created_to_done_s"] / cli["wall_s"], 3) if cli and daemon else None,
        "goals": {"cli_wall_s": round(goal_cli, 1), "peak_rss_mb": GOALS["peak_rss_mb"], "peak_rss_measure": "peak_pss_tree_mb (else peak_rss_tree_mb)", "daemon_over_cli": GOALS["daemon_over_cli"]},
        "met": met,
    }
    write_result(args.out, result, keep=4)
    print(json.dumps({"cli_wall_s": cli and cli["wall_s"], "daemon_drop_to_done_s": daemon and daemon["drop_to_done_s"], "peak_pss_tree_mb": peaks,
                      "daemon_over_cli": ratio, "goals": result["goals"], "met": met}, indent=1))
    print(f"[feature] wrote {args.out}" + (f"; work dir {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
