"""Feature length from two measured lengths: the 2-hour title's wall time and memory, extrapolated from `prism process`
runs of the same generated feature (benchmarks/feature.py) at two lengths, measured within the same hour.

    PYTHONPATH=. .venv/bin/python -m benchmarks.feature_fit [--short results/feature.json] [--long results/feature_1800s.json]

A run's wall time is a fixed part (the CLI's start, the first and last steps, model loads) plus a part that grows with
the title. The line through the two runs' (minutes, wall seconds) gives both, and its value at 120 minutes is the
2-hour estimate; the same for each step's seconds and for the peak PSS of the process tree. This is an upper bound
where a step stops growing: OCR reads at most `max_frames` (900) frames a title, reached near 15 minutes, so beyond
the long run OCR costs no more while the line keeps adding its slope. The naive estimate (the short run times
120 / its minutes) is kept beside it.

Writes benchmarks/results/feature_fit.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GOAL_S, GOAL_PSS_MB = 40 * 60, 4096.0


def _run(path: Path) -> dict:
    doc = json.loads(path.read_text())
    r = doc.get("latest", doc)
    if not r.get("cli"):
        raise SystemExit(f"{path}: no CLI run in its latest result")
    return r


def line(x0: float, y0: float, x1: float, y1: float, at: float) -> dict:
    slope = (y1 - y0) / (x1 - x0)
    return {"fixed": round(y0 - slope * x0, 2), "per_minute": round(slope, 3), "at": round(y0 + slope * (at - x0), 1)}


def fit(short: dict, long: dict, minutes: float = 120.0) -> dict:
    m0, m1 = float(short["input"]["minutes"]), float(long["input"]["minutes"])
    if m1 <= m0:
        raise SystemExit(f"the long run ({m1} min) must be longer than the short one ({m0} min)")
    c0, c1 = short["cli"], long["cli"]
    wall = line(m0, c0["wall_s"], m1, c1["wall_s"], minutes)
    pss = line(m0, c0.get("peak_pss_tree_mb") or c0["peak_rss_tree_mb"], m1, c1.get("peak_pss_tree_mb") or c1["peak_rss_tree_mb"], minutes)
    s0, s1 = c0["run"]["steps_s"], c1["run"]["steps_s"]
    steps = {k: line(m0, s0[k], m1, s1[k], minutes) for k in s0 if k in s1}
    return {
        "minutes": [m0, m1, minutes], "measured_at": [short.get("measured_at"), long.get("measured_at")],
        "code": [short.get("code", {}).get("commit"), long.get("code", {}).get("commit")],
        "host_x264_calibration_cpu_s": [short.get("host", {}).get("x264_calibration_cpu_s"), long.get("host", {}).get("x264_calibration_cpu_s")],
        "cli_wall_s": [c0["wall_s"], c1["wall_s"]], "cli_cpu_s": [c0.get("cpu_s"), c1.get("cpu_s")],
        "peak_pss_tree_mb": [c0.get("peak_pss_tree_mb"), c1.get("peak_pss_tree_mb")],
        "wall_fit": wall, "wall_at_120_min_minutes": round(wall["at"] / 60, 1),
        "naive_short_run_times_ratio_minutes": round(c0["wall_s"] * minutes / m0 / 60, 1),
        "peak_pss_fit_mb": pss, "steps_fit_s": dict(sorted(steps.items(), key=lambda kv: -kv[1]["at"])),
        "goals": {"wall_s": GOAL_S, "peak_pss_mb": GOAL_PSS_MB},
        "met_by_the_fit": {"wall": wall["at"] <= GOAL_S, "peak_pss": pss["at"] <= GOAL_PSS_MB},
        "note": "an extrapolation from two measured lengths, not a measured 2-hour run; OCR stops growing at its 900-frame cap, "
                "so the line overstates the 2-hour OCR time",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=Path, default=RESULTS / "feature.json")
    ap.add_argument("--long", type=Path, default=RESULTS / "feature_1800s.json")
    ap.add_argument("--out", type=Path, default=RESULTS / "feature_fit.json")
    args = ap.parse_args(argv)
    doc = {"benchmark": "feature_fit", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "inputs": [str(args.short.relative_to(REPO)) if args.short.is_relative_to(REPO) else str(args.short),
                      str(args.long.relative_to(REPO)) if args.long.is_relative_to(REPO) else str(args.long)],
           **fit(_run(args.short), _run(args.long))}
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("cli_wall_s", "wall_fit", "wall_at_120_min_minutes", "naive_short_run_times_ratio_minutes",
                                          "peak_pss_fit_mb", "met_by_the_fit")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
