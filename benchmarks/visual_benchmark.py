"""Visual signals: accuracy against exact ground truth and speed/memory against PySceneDetect.

    PYTHONPATH=. .venv/bin/python -m benchmarks.visual_benchmark            # everything (~15 min on 2 cores)
    PYTHONPATH=. .venv/bin/python -m benchmarks.visual_benchmark --quick    # 2-minute speed input
    PYTHONPATH=. .venv/bin/python -m benchmarks.visual_benchmark --only accuracy|speed|clip [--gpu]

Writes benchmarks/results/visual_accuracy.json and visual_speed.json (and prints tables).

* accuracy: Prism's shot detector (decode pass + `detect_shots`) and PySceneDetect's
  `detect-content` / `detect-adaptive` (library API, default parameters) on the same files, scored by
  `prism_assets_tests.support.shot_scoring` (hard cuts +-1 frame; a gradual transition counts when a boundary falls
  inside it; one-to-one matching). Groups: the shared clips; "held-out style" composites built like
  the shared one from other pieces of the footage at other sizes and frame rates (support.bbb_composite); and a
  "stress" group of procedural lavfi content (support.visual_media), informative only.
* speed: one generated 1080p24 input (10 minutes; 2 with --quick). Each contender runs as its own
  child process, timed with /usr/bin/time (wall, peak RSS), alternately five times: Prism's whole CPU
  visual work (decode once, every per-frame statistic, sample/keyframe/poster JPEGs, shot detection,
  keyframe selection) vs `scenedetect -i FILE detect-adaptive` alone. Ratio = scenedetect / Prism,
  on process wall time (the target). Informative, in the same rotation: Prism with one decoder
  (`decode_lanes=1`, FFmpeg frame threads), what a stream whose GOPs cannot be split gets. Also reported, informative: the same ratio without process
  start-up and imports (scenedetect's own "Processed N frames in S seconds" vs Prism's in-process
  time from the first decoded packet to the selected keyframes).
* memory: Prism's peak RSS on a 1-minute and on the long input (flat in duration).
* clip: open_clip ViT-B-32 image throughput on CPU (batch 64); with --gpu and CUDA, ViT-B-32 and
  ViT-L-14 at batch 256 in fp16 (random-init weights: throughput does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
HELD_OUT = [(0, 30, "854x480"), (1, 25, "1280x720"), (2, 23.976, "640x352"), (3, 50, "960x540"), (4, 29.97, "720x404"), (5, 60, "480x270")]
STRESS = [(1, 25, "640x360"), (2, 25, "640x360"), (3, 25, "640x360"), (4, 25, "640x360")]
LOW_FPS = [(0, 12, "640x360"), (1, 10, "640x360"), (2, 15, "854x480"), (3, 12, "640x352"), (4, 10, "480x270")]  # step 2: low-rate motion
BUSY = [(0, 25, False), (1, 25, True), (2, 12, False), (3, 12, True), (4, 10, True), (5, 15, False)]  # (seed, fps, same palette)
TARGET_F1, TARGET_RATIO, TARGET_RSS_MB = 0.97, 1.5, 1536
PAIRS = 5  # alternating (prism, scenedetect, prism with one decoder) runs; the median ratio is reported (shared 2-core machines are noisy)


def _env() -> dict:
    import av
    import scenedetect

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "av": av.__version__, "scenedetect": scenedetect.__version__, "loadavg_start": list(os.getloadavg()),
    }


def _gt_ok(path: Path, **want) -> dict | None:
    gt_path = path.with_suffix(".gt.json")
    if not (path.exists() and gt_path.exists()):
        return None
    gt = json.loads(gt_path.read_text())
    for k, v in want.items():
        if k in gt and abs(float(gt[k]) - float(v)) > 1e-6:
            return None
    return gt


def _media(media_dir: Path) -> dict[str, list[tuple[Path, dict]]]:
    from prism_assets_tests.support.bbb_composite import make_bbb_composite
    from prism_assets_tests.support.busy_media import make_busy_cuts
    from prism_assets_tests.support.visual_media import make_composite

    groups: dict[str, list[tuple[Path, dict]]] = {"shared": [], "held_out_style": [], "low_fps": [], "busy": [], "stress": []}
    for name, gt in (("qc_composite.mp4", "qc_composite.gt.json"), ("big_buck_bunny_0_30.webm", "big_buck_bunny_0_30.gt.json")):
        groups["shared"].append((MEDIA / name, json.loads((MEDIA / gt).read_text())))
    for seed, fps, size in HELD_OUT:
        w, h = (int(x) for x in size.split("x"))
        p = media_dir / "bbb" / f"b{seed}_{fps}_{size}.mp4"
        gt = _gt_ok(p, fps=fps, width=w, height=h) or make_bbb_composite(p, fps=fps, width=w, height=h, seed=seed)
        groups["held_out_style"].append((p, gt))
    for seed, fps, size in LOW_FPS:
        w, h = (int(x) for x in size.split("x"))
        p = media_dir / "low_fps" / f"l{seed}_{fps}_{size}.mp4"
        gt = _gt_ok(p, fps=fps, width=w, height=h) or make_bbb_composite(p, fps=fps, width=w, height=h, seed=seed, step=2)
        groups["low_fps"].append((p, gt))
    for seed, fps, same in BUSY:
        p = media_dir / "busy" / f"u{seed}_{fps}_{'same' if same else 'mixed'}.mp4"
        gt = _gt_ok(p, fps=fps, width=640, height=360) or make_busy_cuts(p, fps=fps, seed=seed, same_palette=same)
        groups["busy"].append((p, gt))
    for seed, fps, size in STRESS:
        w, h = (int(x) for x in size.split("x"))
        p = media_dir / "stress" / f"s{seed}_{fps}_{size}.mp4"
        p.parent.mkdir(parents=True, exist_ok=True)
        gt = _gt_ok(p, fps=fps, width=w, height=h) or make_composite(p, fps=fps, width=w, height=h, seed=seed)
        groups["stress"].append((p, gt))
    return groups


def _f1(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def accuracy(media_dir: Path) -> dict:
    from prism_assets.visual.decode import run_visual_pass
    from prism_assets.visual.shots import detect_shots
    from prism_assets_tests.support.shot_scoring import score_boundaries, shots_to_boundaries

    from .scenedetect_runner import detect_with_scenedetect

    out: dict = {"groups": {}, "clips": []}
    for group, items in _media(media_dir).items():
        sums = {m: [0, 0, 0] for m in ("prism", "content", "adaptive")}
        for path, gt in items:
            row = {"group": group, "file": path.name, "fps": gt.get("fps"), "size": f"{gt.get('width')}x{gt.get('height')}", "n_frames": gt.get("n_frames")}
            with tempfile.TemporaryDirectory() as wd:
                t0 = time.perf_counter()
                vp = run_visual_pass(path, wd)
                shots = detect_shots(vp.stats, vp.meta["fps"])
                preds = {"prism": (shots_to_boundaries(shots), time.perf_counter() - t0)}
            for det in ("content", "adaptive"):
                r = detect_with_scenedetect(path, det)
                preds[det] = (r["boundaries"], r["seconds"])
            for method, (bounds, secs) in preds.items():
                sc = score_boundaries(bounds, gt)
                row[method] = {"f1": round(sc["f1"], 4), "precision": round(sc["precision"], 4), "recall": round(sc["recall"], 4), "tp": sc["tp"],
                               "fp": sc["fp"], "fn": sc["fn"], "seconds": round(secs, 2), "false_positives": sc["false_positives"],
                               "missed": [{k: m.get(k) for k in ("type", "frame", "first", "last") if m.get(k) is not None} for m in sc["missed"]]}
                s = sums[method]
                s[0] += sc["tp"]
                s[1] += sc["fp"]
                s[2] += sc["fn"]
            out["clips"].append(row)
            print(f"  {group:15s} {path.name:34s} prism F1 {row['prism']['f1']:.3f}  content {row['content']['f1']:.3f}  adaptive {row['adaptive']['f1']:.3f}", flush=True)
        g = {m: _f1(*v) for m, v in sums.items()}
        g["clips"] = len(items)
        g["prism_min_clip_f1"] = min(c["prism"]["f1"] for c in out["clips"] if c["group"] == group)
        g["target_f1"] = TARGET_F1
        g["prism_meets_target"] = g["prism"]["f1"] >= TARGET_F1
        g["note"] = {"shared": "the two shared clips with published ground truth",
                     "held_out_style": "built like shared/media/tools/build_composite.py from other pieces of the footage, other sizes/frame rates (prism_assets_tests/support/bbb_composite.py)",
                     "low_fps": "built like held_out_style at 10-15 fps from every other source frame (the motion per frame of low-rate footage)",
                     "busy": "hard cuts between fast pans with grain, some within one still (one palette): the plain differences around a cut "
                             "are as large as the cut's (prism_assets_tests/support/busy_media.py)",
                     "stress": "procedural lavfi content (plasma, rings, life...) with dissolves between moving patterns: informative, not the target"}[group]
        out["groups"][group] = g
    real = [out["groups"][k]["prism"] for k in ("shared", "held_out_style")]
    out["shared_plus_held_out"] = {"prism": _f1(sum(r["tp"] for r in real), sum(r["fp"] for r in real), sum(r["fn"] for r in real))}
    return out


# ------------------------------------------------------------------------------------------


def _prism_child(path: str, workdir: str, lanes: int = 0) -> None:
    """The Prism side of the speed benchmark, in its own process (`lanes`: decode_lanes, 0 = default)."""
    t0 = time.perf_counter()
    import threading

    from prism_assets.visual.decode import VisualPassConfig, run_visual_pass
    from prism_assets.visual.select import select_keyframes
    from prism_assets.visual.shots import detect_shots

    timeline: list[int] = []  # resident MB once a second: memory flat in duration, not only a peak
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with open("/proc/self/status") as fh:
                timeline.extend(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS"))
            stop.wait(1.0)

    threading.Thread(target=watch, daemon=True).start()
    t1 = time.perf_counter()
    vp = run_visual_pass(path, workdir, VisualPassConfig(decode_lanes=lanes))
    stop.set()
    shots = detect_shots(vp.stats, vp.meta["fps"])
    kf = select_keyframes(shots, vp.pictures, len(vp.stats), vp.meta["fps"])
    counts = vp.pictures["kind"].value_counts().to_dict()
    print(json.dumps({"frames": vp.meta["frames"], "pass_seconds": vp.meta["seconds"], "picture_seconds": vp.meta["picture_seconds"],
                      "work_seconds": round(time.perf_counter() - t1, 2),
                      "in_process_seconds": round(time.perf_counter() - t0, 2), "shots": len(shots), "keyframes": len(kf),
                      "decode_lanes": vp.meta["decode_lanes"], "decoder_threads_per_lane": vp.meta["decoder_threads_per_lane"], "gops": vp.meta["gops"],
                      "pictures": {k: int(v) for k, v in counts.items()}, "rss_mb_each_second": timeline}))


def _timed(cmd: list[str]) -> dict:
    """Wall seconds and peak RSS of a child (GNU time -v when present)."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [gnu_time, "-v", *cmd] if gnu_time else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(int(m.group(1)) / 1024, 1) if m else None, "stdout": proc.stdout, "stderr": proc.stderr}


def speed(media_dir: Path, minutes: float) -> dict:
    from prism_assets_tests.support.visual_media import make_long

    inputs = {}
    for mins in sorted({1.0, minutes}):
        p = media_dir / f"long_{mins:g}min.mp4"
        gt = _gt_ok(p, fps=24, width=1920, height=1080)
        if gt is None or abs(gt.get("n_frames", 0) - mins * 60 * 24) > 1:
            print(f"  generating {p.name} ...", flush=True)
            gt = make_long(p, minutes=mins)
        inputs[mins] = (p, gt)
    py = sys.executable
    scenedetect = str(Path(py).parent / "scenedetect")
    out: dict = {"inputs": {f"{m:g}min": {"file": p.name, "frames": g["n_frames"], "size": "1920x1080", "fps": 24, "codec": "h264 (libx264 ultrafast)"} for m, (p, g) in inputs.items()}}
    long_path, long_gt = inputs[minutes]
    runs = []
    for i in range(PAIRS):
        for who in ("prism", "scenedetect", "prism_one_decoder"):
            with tempfile.TemporaryDirectory() as wd:
                if who == "scenedetect":
                    cmd = [scenedetect, "-i", str(long_path), "detect-adaptive"]
                else:
                    cmd = [py, "-m", "benchmarks.visual_benchmark", "_prism_pass", str(long_path), wd, "1" if who == "prism_one_decoder" else "0"]
                r = _timed(cmd)
            rec = {"run": i, "who": who, "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"], "fps": round(long_gt["n_frames"] / r["wall_s"], 1)}
            if who != "scenedetect":
                rec.update(json.loads(r["stdout"].strip().splitlines()[-1]))
            else:
                m = re.search(r"Processed (\d+) frames in ([\d.]+) seconds", r["stderr"] + r["stdout"])
                if m:
                    rec["scenedetect_log"] = {"frames": int(m.group(1)), "seconds": float(m.group(2))}
            runs.append(rec)
            print(f"  run {i} {who:12s} wall {rec['wall_s']:7.2f} s  {rec['fps']:6.1f} frames/s  peak RSS {rec['peak_rss_mb']} MB", flush=True)
    def run_of(i: int, who: str) -> dict:
        return next(r for r in runs if r["run"] == i and r["who"] == who)

    def ratios(num: str, den: str) -> list[float]:  # wall-clock ratio per rotation
        return [run_of(i, num)["wall_s"] / run_of(i, den)["wall_s"] for i in range(PAIRS)]

    pairs = ratios("scenedetect", "prism")
    out["runs"] = runs
    out["ratio_scenedetect_over_prism"] = {"per_pair": [round(x, 3) for x in pairs], "median": round(statistics.median(pairs), 3), "target": TARGET_RATIO}
    try:  # informative: without process start-up and imports on either side
        inner = [run_of(i, "scenedetect")["scenedetect_log"]["seconds"] / run_of(i, "prism")["work_seconds"] for i in range(PAIRS)]
        out["ratio_without_startup"] = {"per_pair": [round(x, 3) for x in inner], "median": round(statistics.median(inner), 3),
                                        "note": "scenedetect's logged processing seconds / Prism's pass + shots + keyframes seconds"}
    except (KeyError, StopIteration, ZeroDivisionError):
        pass
    out["ratio_scenedetect_over_prism"]["meets_target"] = out["ratio_scenedetect_over_prism"]["median"] >= TARGET_RATIO
    # informative: the same pass with one decoder (FFmpeg frame threads), what a stream whose GOPs
    # cannot be split (open GOPs: HEVC CRA, MPEG-2, AV1) gets; and the lanes' own gain
    one = ratios("scenedetect", "prism_one_decoder")
    gain = ratios("prism_one_decoder", "prism")
    out["ratio_scenedetect_over_prism_one_decoder"] = {"per_triple": [round(x, 3) for x in one], "median": round(statistics.median(one), 3),
                                                       "note": "decode_lanes=1: one decoder with FFmpeg frame threads (streams whose GOPs are open)"}
    out["ratio_one_decoder_over_lanes"] = {"per_triple": [round(x, 3) for x in gain], "median": round(statistics.median(gain), 3)}
    # memory flat in duration: the same Prism child on the 1-minute input
    short_path = inputs[1.0][0]
    with tempfile.TemporaryDirectory() as wd:
        r = _timed([py, "-m", "benchmarks.visual_benchmark", "_prism_pass", str(short_path), wd])
    long_rss = max(x["peak_rss_mb"] or 0 for x in runs if x["who"] != "scenedetect")
    # flat in duration: over each long run, resident memory in the first quarter vs the rest (the 1-minute
    # run ends before the pools and lanes have filled, so its peak is lower than the plateau)
    growth = []
    for x in runs:
        tl = x.get("rss_mb_each_second") or []
        if len(tl) >= 8:
            q = len(tl) // 4
            growth.append({"who": x["who"], "run": x["run"], "first_quarter_max_mb": max(tl[:q]), "rest_max_mb": max(tl[q:])})
    out["memory"] = {"prism_peak_rss_mb_1min": r["peak_rss_mb"], f"prism_peak_rss_mb_{minutes:g}min": long_rss,
                     "ratio_long_over_short": round(long_rss / r["peak_rss_mb"], 3) if r["peak_rss_mb"] else None, "target_mb": TARGET_RSS_MB,
                     "meets_target": long_rss <= TARGET_RSS_MB,
                     "growth_after_first_quarter_mb": max((g["rest_max_mb"] - g["first_quarter_max_mb"] for g in growth), default=None),
                     "per_run": growth}
    print(f"  memory: 1 min {r['peak_rss_mb']} MB, {minutes:g} min {long_rss} MB", flush=True)
    return out


def clip_throughput(gpu: bool) -> dict:
    import numpy as np
    import torch

    from prism_assets.visual.clip_model import ClipSource, load_clip

    res: dict = {}
    imgs = np.random.default_rng(0).integers(0, 256, size=(256, 224, 224, 3), dtype=np.uint8)
    m = load_clip(ClipSource(model="ViT-B-32", random_init=True), device="cpu")
    m.encode_images(imgs[:16], batch_size=16)  # warm-up
    t0 = time.perf_counter()
    m.encode_images(imgs, batch_size=64)
    res["cpu_vit_b_32_b64_images_per_s"] = round(len(imgs) / (time.perf_counter() - t0), 1)
    res["cpu_threads"] = torch.get_num_threads()
    if gpu and torch.cuda.is_available():
        res["gpu"] = {"device": torch.cuda.get_device_name(0)}
        big = np.random.default_rng(0).integers(0, 256, size=(2048, 224, 224, 3), dtype=np.uint8)
        for name in ("ViT-B-32", "ViT-L-14"):
            g = load_clip(ClipSource(model=name, random_init=True), device="cuda", precision="fp16")
            g.encode_images(big[:512], batch_size=256)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            g.encode_images(big, batch_size=256)
            torch.cuda.synchronize()
            res["gpu"][f"{name}_b256_fp16_images_per_s"] = round(len(big) / (time.perf_counter() - t0), 1)
    else:
        res["gpu"] = "not available" if not torch.cuda.is_available() else "not requested (--gpu)"
    return res


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_prism_pass":
        _prism_child(argv[1], argv[2], int(argv[3]) if len(argv) > 3 else 0)
        return
    ap = argparse.ArgumentParser(prog="python -m benchmarks.visual_benchmark", description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("accuracy", "speed", "clip"))
    ap.add_argument("--quick", action="store_true", help="2-minute speed input instead of 10")
    ap.add_argument("--gpu", action="store_true", help="also measure CLIP on CUDA")
    ap.add_argument("--media-dir", type=Path, default=REPO / ".prism" / "bench_media")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args(argv)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    a.media_dir.mkdir(parents=True, exist_ok=True)
    env = _env()
    if a.only in (None, "accuracy"):
        print("accuracy (F1 per clip):", flush=True)
        acc = accuracy(a.media_dir)
        acc["environment"] = {**env, "loadavg_end": list(os.getloadavg())}
        (a.out_dir / "visual_accuracy.json").write_text(json.dumps(acc, indent=1))
        print("\n group            clips  prism F1  content F1  adaptive F1")
        for g, v in acc["groups"].items():
            print(f" {g:16s} {v['clips']:5d}  {v['prism']['f1']:8.3f}  {v['content']['f1']:10.3f}  {v['adaptive']['f1']:11.3f}")
        print(f" shared + held-out style, prism: {acc['shared_plus_held_out']['prism']}")
    if a.only in (None, "speed", "clip"):
        sp: dict = {}
        if a.only in (None, "speed"):
            print("speed (10-minute 1080p unless --quick):", flush=True)
            sp = speed(a.media_dir, 2.0 if a.quick else 10.0)
        if a.only in (None, "clip"):
            sp["clip"] = clip_throughput(a.gpu)
            print(f"  CLIP: {sp['clip']}", flush=True)
        prev = a.out_dir / "visual_speed.json"
        if a.only == "clip" and prev.exists():  # keep the last speed numbers, refresh CLIP
            sp = {**json.loads(prev.read_text()), "clip": sp["clip"]}
        elif a.only == "speed" and prev.exists() and "clip" in json.loads(prev.read_text()):  # and the other way round
            sp["clip"] = json.loads(prev.read_text())["clip"]
        sp["environment"] = {**env, "loadavg_end": list(os.getloadavg())}
        prev.write_text(json.dumps(sp, indent=1))
        if "ratio_scenedetect_over_prism" in sp:
            print(f" ratio scenedetect/prism: {sp['ratio_scenedetect_over_prism']}  memory: {sp['memory']}")


if __name__ == "__main__":
    main()
