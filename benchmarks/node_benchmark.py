"""CPU side of a GPU node: how many frames per second the visual decode pass sustains on one node,
alone and with several titles at once, next to `scenedetect detect-adaptive` on the same file.

    python3 -m benchmarks.node_benchmark --minutes 10 --out benchmarks/results/node_visual_pass.json

Made for the lent GPU machine (16 cores), where no ffmpeg binary is installed: the input is generated
with PyAV's own libx264 (1080p24, ultrafast, a hard cut every 5 s, a slow pan inside each shot, film grain), so
the script needs only numpy, pandas, av, simplejpeg and scenedetect (+ OpenCV). Each contender runs
as its own child process, timed wall-clock; the concurrent runs start K children at once and report
their aggregate frames/s. docs/deploy.md turns these numbers into titles per hour per node.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_input(path: Path, minutes: float, fps: int = 24, w: int = 1920, h: int = 1080) -> int:
    import av
    import numpy as np

    n = int(round(minutes * 60 * fps))
    rng = np.random.default_rng(0)
    out = av.open(str(path), "w")
    st = out.add_stream("libx264", rate=fps)
    st.width, st.height, st.pix_fmt = w, h, "yuv420p"
    st.options = {"preset": "ultrafast", "crf": "23"}
    st.thread_count = 0
    shot = 5 * fps
    base = None
    grain = [rng.integers(0, 4, size=(h, w), dtype=np.uint8) for _ in range(8)]  # film grain: a realistic bitrate
    for i in range(n):
        if i % shot == 0:  # a new shot: another smooth random picture, 2x wider for the pan
            small = rng.integers(0, 256, size=(h // 60 + 1, (2 * w) // 60 + 1), dtype=np.uint8).astype(np.float32)
            base = np.kron(small, np.ones((60, 60), np.float32))[:h, : 2 * w]
            base = (base * 0.7 + 30).astype(np.uint8)
            uv = rng.integers(64, 192, size=2)
        off = (i % shot) * 4
        frame = np.empty((h * 3 // 2, w), np.uint8)
        np.add(base[:, off : off + w], grain[i % len(grain)], out=frame[:h])
        frame[h : h + h // 4] = uv[0]
        frame[h + h // 4 :] = uv[1]
        vf = av.VideoFrame.from_ndarray(frame, format="yuv420p")
        vf.pts = i
        for pkt in st.encode(vf):
            out.mux(pkt)
    for pkt in st.encode():
        out.mux(pkt)
    out.close()
    return n


def _prism_child(path: str, workdir: str) -> None:
    t0 = time.perf_counter()
    sys.path.insert(0, str(REPO))
    from prism_assets.visual.decode import run_visual_pass
    from prism_assets.visual.select import select_keyframes
    from prism_assets.visual.shots import detect_shots

    vp = run_visual_pass(path, workdir)
    shots = detect_shots(vp.stats, vp.meta["fps"])
    select_keyframes(shots, vp.pictures, len(vp.stats), vp.meta["fps"])
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"frames": vp.meta["frames"], "shots": len(shots), "seconds": round(time.perf_counter() - t0, 2),
                      "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}))


def _run(cmds: list[list[str]]) -> dict:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO) for c in cmds]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    for p, (_out, e) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(e[-2000:])
    return {"wall_s": round(wall, 2), "children": [json.loads(o.strip().splitlines()[-1]) if o.strip().startswith("{") or "{" in o else None for o, _ in outs]}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_prism_pass":
        _prism_child(argv[1], argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, nargs="*", default=[4, 8])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "node_visual_pass.json")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prism-node-"))
    src = work / "input.mp4"
    t0 = time.perf_counter()
    frames = make_input(src, a.minutes)
    print(f"input: {frames} frames 1080p24 in {time.perf_counter() - t0:.1f} s ({src.stat().st_size / 2**20:.0f} MB)", flush=True)
    py = sys.executable
    prism = lambda i: [py, "-m", "benchmarks.node_benchmark", "_prism_pass", str(src), str(work / f"wd{i}")]  # noqa: E731
    res: dict = {"input": {"frames": frames, "size": "1920x1080", "fps": 24, "codec": "h264 (PyAV libx264 ultrafast)", "minutes": a.minutes}}
    single = _run([prism(0)])
    sd_cmd = [py, "-c", "import sys; from scenedetect.__main__ import main; sys.argv=['scenedetect','-i',sys.argv[1],'detect-adaptive']; main()", str(src)]
    t1 = time.perf_counter()
    sd = subprocess.run(sd_cmd, capture_output=True, text=True, cwd=REPO)
    sd_wall = time.perf_counter() - t1
    if sd.returncode != 0:
        res["scenedetect"] = {"error": sd.stderr[-500:]}
    else:
        res["scenedetect"] = {"wall_s": round(sd_wall, 2), "frames_per_s": round(frames / sd_wall, 1)}
    res["prism_single"] = {**single, "frames_per_s": round(frames / single["wall_s"], 1)}
    if "wall_s" in res["scenedetect"]:
        res["ratio_scenedetect_over_prism"] = round(sd_wall / single["wall_s"], 3)
    print(f"  single pass {res['prism_single']['frames_per_s']} frames/s; scenedetect {res['scenedetect']}", flush=True)
    res["concurrent"] = {}
    for k in a.concurrency:
        r = _run([prism(i) for i in range(k)])
        agg = frames * k / r["wall_s"]
        res["concurrent"][str(k)] = {"titles": k, "wall_s": r["wall_s"], "aggregate_frames_per_s": round(agg, 1),
                                     "peak_rss_mb_max": max(c["peak_rss_mb"] for c in r["children"])}
        print(f"  {k} titles at once: {agg:.0f} frames/s aggregate", flush=True)
    res["environment"] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "python": platform.python_version()}
    try:
        import av

        res["environment"]["av"] = av.__version__
    except Exception:  # pragma: no cover
        pass
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
