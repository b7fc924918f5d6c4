"""PySceneDetect 0.7.2 baseline: boundaries through the Python API, timing through the CLI.

``detect_with_scenedetect`` runs ``scenedetect.detect`` with a ``ContentDetector()`` or
``AdaptiveDetector()`` at their DEFAULT parameters (what the CLI's ``detect-content`` /
``detect-adaptive`` use; the API's default ``min_scene_len`` is 15 frames where the CLI says 0.6 s, the
same at 25 fps and 14.4 -> 15 frames at 24 fps). Frame downscaling is automatic in both (SceneManager's
``auto_downscale``; the CLI's ``-d`` unset). The default video backend of both the API
(``detect(..., backend="opencv")``) and the CLI (``[global] backend = opencv``) is **OpenCV**; the
backend used is recorded in the results.

``time_scenedetect_cli`` times ``scenedetect -i PATH detect-adaptive`` (no output commands: 0.7.2 then
only detects and logs a summary) as a child process and reports wall time and its peak RSS.

    python -m benchmarks.scenedetect_runner VIDEO [--gt GT.json] [--detector adaptive content] [--cli]
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

DETECTORS = ("content", "adaptive")


def default_backends() -> dict:
    """Default video backend of the API's ``detect()`` and of the CLI config."""
    import scenedetect

    api = inspect.signature(scenedetect.detect).parameters["backend"].default
    try:
        from scenedetect._cli.config import CONFIG_MAP

        cli = CONFIG_MAP["global"]["backend"]
    except Exception:  # pragma: no cover - private module layout may change
        cli = None
    return dict(api=api, cli=cli)


def _make_detector(detector: str):
    from scenedetect import AdaptiveDetector, ContentDetector

    if detector == "content":
        return ContentDetector()
    if detector == "adaptive":
        return AdaptiveDetector()
    raise ValueError(f"detector must be one of {DETECTORS}, not {detector!r}")


def detect_with_scenedetect(path: str | Path, detector: str = "adaptive", backend: str | None = None) -> dict:
    """Run PySceneDetect's `detector` ("content" or "adaptive", default parameters) on `path`.

    Returns ``{"boundaries": [first frame of each scene after the first], "seconds": wall time,
    "detector", "backend", "n_scenes", "frames", "fps_processed", "version"}``.
    """
    import scenedetect

    backend = backend or default_backends()["api"]
    det = _make_detector(detector)
    t0 = time.perf_counter()
    scenes = scenedetect.detect(str(path), det, backend=backend)
    dt = time.perf_counter() - t0
    boundaries = sorted(int(s[0].frame_num) for s in scenes[1:])
    frames = int(scenes[-1][1].frame_num) if scenes else None
    return dict(boundaries=boundaries, seconds=dt, detector=detector, backend=backend, n_scenes=len(scenes),
                frames=frames, fps_processed=(frames / dt) if frames and dt > 0 else None,
                version=scenedetect.__version__)


def _scenedetect_exe() -> str:
    cand = Path(sys.executable).parent / "scenedetect"
    if cand.exists():
        return str(cand)
    exe = shutil.which("scenedetect")
    if not exe:
        raise RuntimeError("scenedetect CLI not found")
    return exe


_PROCESSED = re.compile(r"Processed (\d+) frames in ([\d.]+) seconds \(average ([\d.]+) FPS\)")
_DETECTED = re.compile(r"Detected (\d+) scenes")


def time_scenedetect_cli(path: str | Path, detector: str = "adaptive", backend: str | None = None) -> dict:
    """Time ``scenedetect -i PATH detect-<detector>`` (no output commands) as a child process.

    Returns ``{"seconds": wall seconds of the child (interpreter start-up included), "peak_rss_mb",
    "rss_source", "frames", "scenedetect_seconds" / "scenedetect_fps" (its own log line: decode +
    detection only), "n_scenes", "backend", "cmd"}``. Peak RSS comes from ``/usr/bin/time -v`` when
    present, else from ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (a max over all children so far, so
    only meaningful when this is the largest child of the process).
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, not {detector!r}")
    cmd = [_scenedetect_exe(), "-i", str(path)]
    if backend:
        cmd += ["-b", backend]
    cmd += [f"detect-{detector}"]
    gnu_time = Path("/usr/bin/time")
    full = [str(gnu_time), "-v", *cmd] if gnu_time.exists() else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(full, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    log = proc.stdout + "\n" + proc.stderr
    peak_kb, src = None, None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        peak_kb, src = int(m.group(1)), "/usr/bin/time -v"
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak_kb, src = after, "getrusage(RUSAGE_CHILDREN)" + ("" if after > before else " (not a new max)")
    res = dict(seconds=dt, peak_rss_mb=peak_kb / 1024 if peak_kb else None, rss_source=src,
               backend=backend or default_backends()["cli"], detector=detector, cmd=" ".join(cmd))
    m = _PROCESSED.search(log)
    if m:
        res.update(frames=int(m.group(1)), scenedetect_seconds=float(m.group(2)), scenedetect_fps=float(m.group(3)))
        res["fps_wall"] = res["frames"] / dt
    m = _DETECTED.search(log)
    if m:
        res["n_scenes"] = int(m.group(1))
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scenedetect_runner")
    ap.add_argument("video", type=Path, nargs="+")
    ap.add_argument("--gt", type=Path, nargs="*", help="ground truth per video (default: VIDEO.gt.json if present)")
    ap.add_argument("--detector", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    ap.add_argument("--tol", type=int, default=1)
    ap.add_argument("--cli", action="store_true", help="also time the CLI child process")
    ap.add_argument("--json", type=Path, help="write all results here")
    a = ap.parse_args(argv)
    from prism_assets_tests.support.shot_scoring import load_gt, score_boundaries, summary

    print("default backends:", default_backends())
    out = []
    for k, video in enumerate(a.video):
        gt_path = a.gt[k] if a.gt and k < len(a.gt) else video.with_suffix(".gt.json")
        gt = load_gt(gt_path) if gt_path.exists() else None
        for det in a.detector:
            r = detect_with_scenedetect(video, det)
            row = dict(video=str(video), **r)
            line = f"{video.name} {det:8s} {r['seconds']:6.2f}s api ({r['backend']})"
            if gt is not None:
                s = score_boundaries(r["boundaries"], gt, tol=a.tol)
                row["score"] = {k2: s[k2] for k2 in ("tp", "fp", "fn", "precision", "recall", "f1",
                                                     "false_positives", "missed")}
                line += "  " + summary(s)
            else:
                line += f"  boundaries={r['boundaries']}"
            if a.cli:
                c = time_scenedetect_cli(video, det)
                row["cli"] = c
                line += (f"\n    cli: {c['seconds']:.2f}s wall, {c.get('scenedetect_fps')} fps (own log), "
                         f"peak RSS {c['peak_rss_mb']:.0f} MiB")
            print(line)
            out.append(row)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
