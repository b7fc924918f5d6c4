"""The audio pass with and without skipping the true-peak interpolation of chunks that cannot raise the peak, side by
side on the generated feature titles: CPU and wall seconds of `run_audio_pass`, and the same loudness results.

    PYTHONPATH=. .venv/bin/python -m benchmarks.true_peak_skip [--minutes 10 30] [--reps 2]

Inputs: the feature titles benchmarks/feature_media.py renders (cached; `--minutes` picks them, 1080p24 H.264 + AAC
stereo 48 kHz: espeak-ng dialogue over a music-like bed, rolling credits with music). "every chunk" is the same code
with the bound disabled (`R128Meter._tp_gain` = inf: every chunk interpolated, as before the change). Runs alternate
(skip, every, every, skip, ...) in one process; `time.process_time` and wall per run, min over reps. The true peak,
sample peak, integrated loudness and LRA of both must be equal. The audio pass runs alone at a title's start (the
transcript waits for it), so its wall is on the run's critical path. Writes benchmarks/results/true_peak_skip.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "true_peak_skip.json"
KEYS = ("true_peak_dbtp", "sample_peak_dbfs", "integrated_lufs", "loudness_range_lu")


def one(path: Path, every: bool) -> dict:
    from prism_assets.audio import loudness
    from prism_assets.audio.decode import run_audio_pass

    orig = loudness.R128Meter.__post_init__

    def post_init(self):
        orig(self)
        if every:
            self._tp_gain = float("inf")

    loudness.R128Meter.__post_init__ = post_init
    work = Path(tempfile.mkdtemp(prefix="tp_skip_"))
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        r = run_audio_pass(path, work)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        loudness.R128Meter.__post_init__ = orig
        shutil.rmtree(work, ignore_errors=True)
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "results": [{k: t.get(k) for k in KEYS} for t in r.tracks]}


def main(argv=None) -> int:
    from benchmarks.feature_media import make_feature

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    load0 = list(os.getloadavg())
    titles = {}
    for m in args.minutes:
        path = make_feature(m * 60)
        runs = {"skip": [], "every chunk": []}
        for rep in range(args.reps):
            for mode in (("skip", "every chunk") if rep % 2 == 0 else ("every chunk", "skip")):
                runs[mode].append(one(path, every=mode == "every chunk"))
                print(f"{m:g} min {mode}: {runs[mode][-1]['cpu_s']} CPU-s, {runs[mode][-1]['wall_s']} s", flush=True)
        same = all(r["results"] == runs["every chunk"][0]["results"] for rr in runs.values() for r in rr)
        best = {k: {"cpu_s": min(r["cpu_s"] for r in v), "wall_s": min(r["wall_s"] for r in v)} for k, v in runs.items()}
        titles[f"{m:g}min"] = {"input": path.name, "runs": runs, "best": best, "same_results": same,
                               "cpu_ratio": round(best["skip"]["cpu_s"] / best["every chunk"]["cpu_s"], 3),
                               "wall_ratio": round(best["skip"]["wall_s"] / best["every chunk"]["wall_s"], 3)}
        if not same:
            print(f"[true_peak_skip] {m:g} min: the results differ", file=sys.stderr)
    doc = {"benchmark": "true_peak_skip", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                       "loadavg_start_end": [load0, list(os.getloadavg())]},
           "reps": args.reps, "titles": titles, "method": __doc__.split("\n\n", 2)[2].strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: {x: v[x] for x in ("best", "same_results", "cpu_ratio", "wall_ratio")} for k, v in titles.items()}, indent=1))
    return 0 if all(v["same_results"] for v in titles.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
