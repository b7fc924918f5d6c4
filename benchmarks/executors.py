"""One title through `prism process` with each executor, side by side: steps one after another (`inprocess`), a
title's independent steps at once in threads of one process (`threads`, core/step_threads.py), a process per step
forked from a preloaded server (`multiprocess`).

    PYTHONPATH=. .venv/bin/python -m benchmarks.executors [--seconds 120] [--rounds 2] [--executors inprocess,threads,multiprocess]

Input: a generated 1280x720 24-fps title (benchmarks/feature_media.py: shots and transitions, signs, speech, credits).
The executors run interleaved (round 1: each once, round 2: each again, ...) so that a noisy machine shifts all of them
alike. Per run: wall, CPU seconds (rusage of the process and its children), the process tree's peak RSS (sampled
each second: the per-step processes of `multiprocess` included), and the step timeline from the Dagster event log
(`steps_overlap` = sum of step durations / wall). Writes benchmarks/results/executors.json ({"latest", "runs"}).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from .bench_proc import REPO, environment, write_result
from .e2e import run_prism
from .feature_media import make_feature

OUT = REPO / "benchmarks" / "results" / "executors.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="length of the generated title")
    ap.add_argument("--input", type=Path, help="any video instead of the generated title")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--executors", default="inprocess,threads,multiprocess")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    video = args.input or make_feature(args.seconds, (1280, 720), 24, seed=2)
    env0 = environment()
    runs: dict[str, list[dict]] = {e: [] for e in executors}
    for rnd in range(args.rounds):
        for ex in executors:
            work = Path(tempfile.mkdtemp(prefix=f"prism-ex-{ex}-"))
            try:
                r, _, _ = run_prism(video, work, ex, title_id=f"ex{rnd}")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            run = r.get("run", {})
            row = {"round": rnd + 1, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_tree_mb": r.get("peak_rss_tree_mb"),
                   "run_wall_s": run.get("run_wall_s"), "sum_step_s": run.get("sum_step_s"), "steps_overlap": r["run"].get("steps_overlap"),
                   "status": run.get("status"), "timeline": run.get("timeline")}
            runs[ex].append(row)
            print(f"round {rnd + 1} {ex:12s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  peak tree RSS "
                  f"{r.get('peak_rss_tree_mb')} MB  overlap {row['steps_overlap']}", flush=True)
    summary = {}
    for ex, rows in runs.items():
        walls = [x["wall_s"] for x in rows]
        summary[ex] = {"wall_s_median": round(statistics.median(walls), 2), "cpu_s_median": round(statistics.median(x["cpu_s"] for x in rows), 2),
                       "peak_rss_tree_mb_max": max((x["peak_rss_tree_mb"] or 0) for x in rows),
                       "steps_overlap_median": statistics.median((x["steps_overlap"] or 0) for x in rows)}
    base = summary.get("inprocess", {}).get("wall_s_median")
    if base:
        for ex in summary:
            summary[ex]["wall_over_inprocess"] = round(summary[ex]["wall_s_median"] / base, 3)
    result = {**env0, "loadavg_end": list(os.getloadavg()), "input": str(video.name), "title_seconds": args.seconds if not args.input else None,
              "rounds": args.rounds, "summary": summary, "runs": runs,
              "note": "interleaved on one machine; wall and CPU from the prism process and its children; quote the ratios, not the seconds"}
    write_result(args.out, result)
    for ex, s in summary.items():
        print(ex, s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
