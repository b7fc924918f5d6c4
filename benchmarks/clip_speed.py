"""CLIP image embeddings on CPU: torch vs ONNX Runtime (fp32, and dynamic int8), side by side in one run.

    PYTHONPATH=. .venv/bin/python -m benchmarks.clip_speed [--rounds 3] [--images 192] [--batch 64]
        [--pretrained /path/to/checkpoint.pt] [--out benchmarks/results/clip_speed.json]

What it measures, through Prism's own code (`prism_assets.visual.clip_model.load_clip` + `ClipModel.encode_images`,
the path of the `embeddings` step):

* the project's configured CLIP architecture (the dev profile's `models.clip.model`, ViT-B-32), random-init weights
  unless `--pretrained` names a local checkpoint (no package ships CLIP weights; throughput does not depend on the
  weight values, agreement is measured on whatever weights are loaded and says which);
* pictures the decode pass really keeps: the embedding samples (224 px) and keyframe candidates (640 px, resized by the
  encoder) of the shared media (`../shared/media`: qc_composite.mp4, big_buck_bunny_0_30.webm), repeated up to
  `--images` when there are fewer distinct ones;
* images/s per engine at `--batch`, each engine timed `--rounds` times, the engines interleaved round by round (the
  machine is shared: interleaving spreads other load across engines), median and best reported, the same thread
  count (torch's, = the step's CPUs) for all;
* agreement with torch per picture: cosine of the L2-normalized embeddings (min, mean, 1st percentile);
* the ONNX build (export + parity check, once per weights, cached) and the warm load from the cache;
* how many pictures the embeddings step skips as exact duplicates (identical JPEG bytes) on the same media;
* the projection for a 1-hour title (3600 samples + keyframes) from the measured rates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
CLIPS = ("qc_composite.mp4", "big_buck_bunny_0_30.webm")
ENGINES = ("torch", "onnxruntime", "onnxruntime-int8")


def media_pictures(workdir: Path) -> tuple[list[np.ndarray], dict]:
    """Samples and keyframe candidates the visual pass keeps for the shared clips, and their duplicate counts."""
    from prism_assets.visual.decode.run import run_visual_pass
    from prism_assets.visual.packs import decode_jpeg, read_pack_bytes

    pics, stats = [], {}
    for clip in CLIPS:
        vp = run_visual_pass(MEDIA / clip, workdir / clip)
        seen: set[bytes] = set()
        n = 0
        for r in vp.pictures[vp.pictures["kind"].isin(["sample", "keyframe"])].itertuples():
            data = read_pack_bytes(vp.packs[r.pack], r.offset, r.length)
            n += 1
            h = hashlib.blake2b(data, digest_size=16).digest()
            if h in seen:
                continue
            seen.add(h)
            pics.append(decode_jpeg(data))
        stats[clip] = {"pictures": n, "distinct": len(seen), "duplicates_skipped": n - len(seen)}
    return pics, stats


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=192)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pretrained", default=None, help="a local checkpoint file (default: random init)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "clip_speed.json")
    a = ap.parse_args(argv)
    import onnxruntime
    import open_clip
    import torch

    from prism_assets.resources import PrismProfile
    from prism_assets.visual.clip_model import ClipSource, load_clip
    from prism_assets.visual.clip_onnx import PARITY_MIN_COSINE, cosines

    engines = [e for e in a.engines.split(",") if e]
    cfg = PrismProfile(name="dev").config()["models"]["clip"]
    source = ClipSource(model=cfg["model"], pretrained=a.pretrained, random_init=a.pretrained is None)
    threads = torch.get_num_threads()
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="clip-speed-") as tmp:
        tmp = Path(tmp)
        print(f"pictures from the visual pass of {', '.join(CLIPS)}", flush=True)
        distinct, dup_stats = media_pictures(tmp / "pass")
        imgs = [distinct[i % len(distinct)] for i in range(a.images)]
        onnx_dir = tmp / "onnx"
        models, build = {}, {}
        for e in engines:
            t0 = time.perf_counter()
            models[e] = load_clip(source, device="cpu", engine=e, onnx_dir=str(onnx_dir))
            build[e] = {"first_load_s": round(time.perf_counter() - t0, 2)}
            if e != "torch":
                t0 = time.perf_counter()
                load_clip(source, device="cpu", engine=e, onnx_dir=str(onnx_dir))
                meta = json.loads((onnx_dir / models[e].info["onnx_file"]).with_suffix(".json").read_text())
                build[e].update({"warm_load_from_cache_s": round(time.perf_counter() - t0, 2), "export_and_check_s": meta["built_s"],
                                 "onnx_mb": round(meta["bytes"] / 2**20, 1), "build_parity": meta["parity"]})
            print(f"  loaded {e}: {build[e]}", flush=True)
        emb, times = {}, {e: [] for e in engines}
        for e in engines:  # warm-up
            models[e].encode_images(imgs[: a.batch], batch_size=a.batch)
        for r in range(a.rounds):
            for e in engines if r % 2 == 0 else engines[::-1]:
                t0 = time.perf_counter()
                out = models[e].encode_images(imgs, batch_size=a.batch)
                times[e].append(time.perf_counter() - t0)
                emb.setdefault(e, out)
                print(f"  round {r} {e}: {len(imgs) / times[e][-1]:.1f} images/s", flush=True)
    n_distinct = min(len(distinct), len(imgs))  # the agreement is measured on distinct pictures only
    results = {}
    for e in engines:
        med, best = statistics.median(times[e]), min(times[e])
        row = {"images_per_s_median": round(len(imgs) / med, 1), "images_per_s_best": round(len(imgs) / best, 1),
               "seconds_per_round": [round(t, 2) for t in times[e]], **build[e],
               "info": {k: v for k, v in models[e].info.items() if k.startswith(("engine", "onnx"))}}
        if e != "torch" and "torch" in emb:
            cos = cosines(emb[e][:n_distinct], emb["torch"][:n_distinct])
            row["cosine_vs_torch"] = {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6),
                                      "p01": round(float(np.percentile(cos, 1)), 6), "pictures": int(n_distinct),
                                      "tolerance": PARITY_MIN_COSINE[e], "within_tolerance": bool(cos.min() >= PARITY_MIN_COSINE[e])}
        results[e] = row
    if "torch" in results:
        base = results["torch"]["images_per_s_median"]
        for e in engines:
            results[e]["speedup_vs_torch"] = round(results[e]["images_per_s_median"] / base, 2)
    hour_pictures = 3600 + 1000  # 1/s samples + about one keyframe per 3.6-s shot
    res = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "threads": threads, "loadavg_at_start": load_start, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared 2-core machine: other work ran at the same time; engines interleaved round by round"},
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "open_clip": open_clip.__version__,
                     "python": platform.python_version()},
        "model": {"name": source.model, "weights": models[engines[0]].info["weights"],
                  "weights_trained": models[engines[0]].info["weights_trained"]},
        "workload": {"images": len(imgs), "distinct_pictures": len(distinct), "batch": a.batch, "rounds": a.rounds,
                     "pictures": "visual-pass samples (224 px) and keyframe candidates (640 px) of " + ", ".join(CLIPS)},
        "engines": results,
        "duplicates_in_media": dup_stats,
        "projection_1h_title_s": {e: round(hour_pictures / results[e]["images_per_s_median"], 1) for e in engines}
        | {"pictures": hour_pictures},
        "default": {"cpu": "onnxruntime", "cuda": "torch (fp16)", "int8": "opt-in (engine: onnxruntime-int8), not the default"},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({e: {k: results[e].get(k) for k in ("images_per_s_median", "speedup_vs_torch", "cosine_vs_torch")} for e in engines}, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
