"""One title through `prism process` with each executor, side by side: steps one after another (`inprocess`), a
title's independent steps at once in threads of one process (`threads`, core/step_threads.py), a process per step
forked from a preloaded server (`multiprocess`).

    PYTHONPATH=. .venv/bin/python -m benchmarks.executors [--seconds 120] [--rounds 2] [--executors inprocess,threads,multiprocess]
    PYTHONPATH=. .venv/bin/python -m benchmarks.executors --variant before=threads:PRISM_OMP_WAIT_POLICY=library:PRISM_BACKGROUND_NICE=0 \
        --variant after=threads   # settings side by side: LABEL=EXECUTOR[:VAR=VALUE...] (repeatable; replaces --executors)

Input: a generated 1280x720 24-fps title (benchmarks/feature_media.py: shots and transitions, signs, speech, credits).
The executors run interleaved (round 1: each once, round 2: each again, ...) so that a noisy machine shifts all of them
alike. Per run: wall, CPU seconds (rusage of the process and its children), the process tree's peak RSS (sampled
each second: the per-step processes of `multiprocess` included), and the step timeline from the Dagster event log
(`steps_overlap` = sum of step durations / wall; per variant the median seconds of each step, `step_s_median`).
Writes benchmarks/results/executors.json ({"latest", "runs"}).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from . import e2e
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
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=EXECUTOR[:VAR=VALUE...]",
                    help="an executor with extra environment for `prism process`, e.g. before=threads:PRISM_BACKGROUND_NICE=0 (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    variants = dict(parse_variant(v) for v in args.variant) or {
        e.strip(): (e.strip(), {}) for e in args.executors.split(",") if e.strip()}
    video = args.input or make_feature(args.seconds, (1280, 720), 24, seed=2)
    env0 = environment()
    runs: dict[str, list[dict]] = {e: [] for e in variants}
    for rnd in range(args.rounds):
        for ex, (executor, extra) in variants.items():
            work = Path(tempfile.mkdtemp(prefix=f"prism-ex-{ex}-"))
            try:
                r, _, _ = run_with_env(video, work, executor, extra, title_id=f"ex{rnd}")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            run = r.get("run", {})
            row = {"round": rnd + 1, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_tree_mb": r.get("peak_rss_tree_mb"),
                   "run_wall_s": run.get("run_wall_s"), "sum_step_s": run.get("sum_step_s"), "steps_overlap": r["run"].get("steps_overlap"),
                   "status": run.get("status"), "executor": executor, "env": extra, "loadavg": list(os.getloadavg()),
                   "timeline": run.get("timeline")}
            runs[ex].append(row)
            print(f"round {rnd + 1} {ex:12s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  peak tree RSS "
                  f"{r.get('peak_rss_tree_mb')} MB  overlap {row['steps_overlap']}", flush=True)
    summary = {}
    for ex, rows in runs.items():
        walls = [x["wall_s"] for x in rows]
        summary[ex] = {"wall_s_median": round(statistics.median(walls), 2), "cpu_s_median": round(statistics.median(x["cpu_s"] for x in rows), 2),
                       "peak_rss_tree_mb_max": max((x["peak_rss_tree_mb"] or 0) for x in rows),
                       "steps_overlap_median": statistics.median((x["steps_overlap"] or 0) for x in rows),
                       "step_s_median": step_medians(rows)}
    first_inprocess = next((ex for ex, (executor, _) in variants.items() if executor == "inprocess"), None)
    base = summary.get(first_inprocess, {}).get("wall_s_median")
    if base:
        for ex in summary:
            summary[ex]["wall_over_inprocess"] = round(summary[ex]["wall_s_median"] / base, 3)
    result = {**env0, "loadavg_end": list(os.getloadavg()), "input": str(video.name), "title_seconds": args.seconds if not args.input else None,
              "rounds": args.rounds, "variants": {k: {"executor": e, "env": x} for k, (e, x) in variants.items()}, "summary": summary, "runs": runs,
              "note": "interleaved on one machine; wall and CPU from the prism process and its children; quote the ratios, not the seconds"}
    write_result(args.out, result)
    for ex, s in summary.items():
        print(ex, s)
    return 0


def parse_variant(text: str) -> tuple[str, tuple[str, dict]]:
    """`LABEL=EXECUTOR[:VAR=VALUE...]` -> (label, (executor, {VAR: VALUE}))."""
    label, _, rest = text.partition("=")
    executor, *pairs = rest.split(":")
    if not label or not executor or any("=" not in p for p in pairs):
        raise SystemExit(f"--variant {text!r}: expected LABEL=EXECUTOR[:VAR=VALUE...]")
    return label.strip(), (executor.strip(), dict(p.split("=", 1) for p in pairs))


def run_with_env(video: Path, work: Path, executor: str, extra: dict, title_id: str):
    """e2e.run_prism with `extra` added to the environment it builds for `prism process` (which drops the caller's PRISM_*)."""
    if not extra:
        return run_prism(video, work, executor, title_id=title_id)
    build = e2e.instance_env
    e2e.instance_env = lambda *a, **k: {**build(*a, **k), **extra}
    try:
        return run_prism(video, work, executor, title_id=title_id)
    finally:
        e2e.instance_env = build


def step_medians(rows: list[dict]) -> dict:
    """Median seconds of each step over the rows' timelines."""
    per: dict[str, list[float]] = {}
    for row in rows:
        for s in row.get("timeline") or []:
            if s.get("seconds") is not None:
                per.setdefault(s["step"], []).append(s["seconds"])
    return {k: round(statistics.median(v), 2) for k, v in per.items()}


if __name__ == "__main__":
    raise SystemExit(main())
