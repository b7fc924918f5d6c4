"""The audio pass with its meters on a thread beside the decode (the default) and inline, side by side: wall and CPU
seconds of `run_audio_pass`, and the same results.

    PYTHONPATH=. .venv/bin/python -m benchmarks.audio_thread [--minutes 10] [--input FILE] [--reps 2]

Input: the generated feature title of `--minutes` (benchmarks/feature_media.py, cached; 1080p24 H.264 + AAC stereo
48 kHz: espeak-ng dialogue over a music-like bed, rolling credits with music), or `--input`. "inline" is the same code
with `AudioPassConfig(analysis_thread=False)`: window statistics, the R128 meter and the channel meter run in the
decoding thread, as before the change. Runs alternate (thread, inline, inline, thread, ...) in one process;
`time.process_time` (every thread of the process) and wall per run, min over reps. The window statistics, the 400 ms
block powers, every track's summary and the speech WAVs of both must be equal. The audio pass runs while the rest of a
title's run waits for it (the visual pass shares its `decode` pool, the transcript reads its WAV), with the second core
otherwise idle, so its wall is on the run's critical path. Writes benchmarks/results/audio_thread.json.
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

from .bench_proc import host_speed

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "audio_thread.json"


def one(path: Path, thread: bool) -> tuple[dict, dict]:
    from prism_assets.audio.decode import AudioPassConfig, run_audio_pass

    work = Path(tempfile.mkdtemp(prefix="audio_thread_"))
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        r = run_audio_pass(path, work, AudioPassConfig(analysis_thread=thread))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        digest = {"tracks": r.tracks, "stats": _sha(r.stats), "loudness": _sha(r.loudness),
                  "wavs": {k: _sha_file(v) for k, v in sorted(r.speech_files.items())}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}, digest


def _sha(df) -> str:
    import hashlib

    import pandas as pd

    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def _sha_file(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--input", type=Path, default=None, help="a media file instead of the generated feature title")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--note", default=None, help="the conditions of this run, recorded as they are")
    args = ap.parse_args(argv)
    if args.input is None:
        from benchmarks.feature_media import make_feature

        args.input = make_feature(args.minutes * 60)
    load0 = list(os.getloadavg())
    one(args.input, True)  # warm: imports (scipy.signal), the file in the page cache
    runs, digests = {"thread": [], "inline": []}, []
    for rep in range(args.reps):
        for mode in (("thread", "inline") if rep % 2 == 0 else ("inline", "thread")):
            r, d = one(args.input, thread=mode == "thread")
            runs[mode].append(r)
            digests.append(d)
            print(f"{mode}: {r['cpu_s']} CPU-s, {r['wall_s']} s", flush=True)
    same = all(d == digests[0] for d in digests)
    best = {k: {"cpu_s": min(r["cpu_s"] for r in v), "wall_s": min(r["wall_s"] for r in v)} for k, v in runs.items()}
    audio_s = sum(t.get("duration_s") or 0 for t in digests[0]["tracks"])
    doc = {"benchmark": "audio_thread", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "host": host_speed(), "python": sys.version.split()[0],
                       "loadavg_start_end": [load0, list(os.getloadavg())]},
           "input": {"file": args.input.name, "audio_seconds": round(audio_s, 1), "tracks": len(digests[0]["tracks"])},
           "reps": args.reps, "runs": runs, "best": best, "same_results": same,
           "wall_ratio_thread_over_inline": round(best["thread"]["wall_s"] / best["inline"]["wall_s"], 3),
           "cpu_ratio_thread_over_inline": round(best["thread"]["cpu_s"] / best["inline"]["cpu_s"], 3),
           "note": args.note, "method": __doc__.split("\n\n", 2)[2].strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("best", "same_results", "wall_ratio_thread_over_inline", "cpu_ratio_thread_over_inline")}, indent=1))
    if not same:
        print("[audio_thread] the results differ", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
