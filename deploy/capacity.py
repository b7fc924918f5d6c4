#!/usr/bin/env python
"""Titles per hour one GPU node sustains, derived from the committed benchmark results
(benchmarks/results/*.json); docs/deploy.md quotes this script's output.

    python deploy/capacity.py [--hours 2.0] [--fps 24] [--json]

Model of one title (a feature of `--hours` at `--fps`, 1080p, one audio track):
- CPU: the one visual decode pass (`node_visual_pass.json`: aggregate frames/s of 16 concurrent
  titles on the 16-core GPU node; measured) + the audio decode pass (`qc_speed.json`: audio pass
  seconds per second of audio on 2 shared cores; measured, converted to core-seconds);
- GPU: CLIP ViT-B-32 fp16 on 1 sample/s + keyframes (`gpu_throughput.json`, measured on the lent
  H100) + transcription at the Whisper large-v3 proxy's real-time factor (`gpu_throughput.json`;
  a transformers proxy with large-v3's dimensions, not the CTranslate2 path: an estimate).
A node's rate is the smaller of the CPU-bound and GPU-bound rates. Every input is printed with
where it came from; a missing file is reported, never replaced by a guess.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


class MissingBenchmark(RuntimeError):
    pass


def _load(name: str) -> dict:
    p = RESULTS / name
    if not p.exists():
        raise MissingBenchmark(f"{p} is missing: run the benchmark that writes it (benchmarks/README.md)")
    return json.loads(p.read_text())


def estimate(hours: float = 2.0, fps: float = 24.0, keyframes_per_minute: float = 12.0) -> dict:
    seconds = hours * 3600
    frames = seconds * fps
    node = _load("node_visual_pass.json")
    gpu = _load("gpu_throughput.json")
    qc = _load("qc_speed.json")

    conc = node["concurrent"]
    best = max(conc.values(), key=lambda c: c["aggregate_frames_per_s"])
    node_cpus = node["environment"]["cpus"]
    visual_node_s = frames / best["aggregate_frames_per_s"]  # node wall seconds per title when the node is full
    longest = max(qc["runs"], key=lambda r: r["duration_s"])
    audio_core_s_per_audio_s = longest["shared_passes_s"]["audio_pass_s"] / longest["duration_s"] * qc["environment"]["start"]["cpus"]
    audio_node_s = seconds * audio_core_s_per_audio_s / node_cpus
    cpu_s = visual_node_s + audio_node_s

    clip = gpu["clip"]["ViT-B-32_b256_fp16"]["images_per_s_640x360_resized_on_gpu"]
    images = seconds * 1.0 + hours * 60 * keyframes_per_minute  # 1 sample/s + keyframes
    clip_s = images / clip
    whisper = {k: v["x_real_time"] for k, v in gpu["whisper_large_v3_proxy"].items()}
    asr_slow, asr_fast = seconds / min(whisper.values()), seconds / max(whisper.values())
    gpu_s_slow, gpu_s_fast = clip_s + asr_slow, clip_s + asr_fast

    cpu_rate = 3600 / cpu_s
    gpu_rate_low, gpu_rate_high = 3600 / gpu_s_slow, 3600 / gpu_s_fast
    return {
        "title": {"hours": hours, "fps": fps, "frames": int(frames), "images_embedded": int(images)},
        "cpu": {
            "node_cpus": node_cpus,
            "visual_aggregate_frames_per_s": best["aggregate_frames_per_s"],
            "visual_concurrent_titles": best["titles"],
            "visual_node_s_per_title": round(visual_node_s, 1),
            "audio_core_s_per_audio_s": round(audio_core_s_per_audio_s, 4),
            "audio_node_s_per_title": round(audio_node_s, 1),
            "titles_per_hour": round(cpu_rate, 1),
            "source": "measured: node_visual_pass.json (16-core GPU node CPUs), qc_speed.json (2 shared cores)",
        },
        "gpu": {
            "device": gpu["environment"]["device"],
            "clip_images_per_s": clip,
            "clip_s_per_title": round(clip_s, 2),
            "asr_x_real_time": whisper,
            "asr_s_per_title": [round(asr_fast, 1), round(asr_slow, 1)],
            "titles_per_hour": [round(gpu_rate_low, 1), round(gpu_rate_high, 1)],
            "source": "measured CLIP; Whisper large-v3 *proxy* (estimate): gpu_throughput.json",
        },
        "node_titles_per_hour": [round(min(cpu_rate, gpu_rate_low), 0), round(min(cpu_rate, gpu_rate_high), 0)],
        "bound_by": "gpu (transcription)" if gpu_rate_high < cpu_rate else ("cpu (decode)" if cpu_rate < gpu_rate_low else "cpu or gpu (within the ASR range)"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="titles/hour per GPU node from the committed benchmarks")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        est = estimate(args.hours, args.fps)
    except MissingBenchmark as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(est, indent=1))
        return 0
    c, g = est["cpu"], est["gpu"]
    print(f"title: {args.hours:g} h at {args.fps:g} fps = {est['title']['frames']} frames, {est['title']['images_embedded']} CLIP images")
    print(f"CPU ({c['node_cpus']} cores): visual {c['visual_node_s_per_title']} s + audio {c['audio_node_s_per_title']} s of node time "
          f"per title -> {c['titles_per_hour']} titles/h")
    print(f"GPU ({g['device']}): CLIP {g['clip_s_per_title']} s + ASR {g['asr_s_per_title'][0]}-{g['asr_s_per_title'][1]} s per title "
          f"-> {g['titles_per_hour'][0]}-{g['titles_per_hour'][1]} titles/h")
    print(f"node: {est['node_titles_per_hour'][0]:.0f}-{est['node_titles_per_hour'][1]:.0f} titles/h, bound by {est['bound_by']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
