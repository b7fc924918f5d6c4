"""End to end, like for like: `prism process` on one title against the peer tools doing the same work on the same file.

    PYTHONPATH=. .venv/bin/python -m benchmarks.e2e [--quick] [--input PATH] [--executor NAME] [--out FILE]

Input: a generated 336-s 1280x720 24-fps title (benchmarks/feature_media.py: cuts, dissolves, fades through black, signs
and captions, espeak-ng speech in several voices, rolling end credits; cached under .prism/bench_media/feature/);
`--quick`: 60 s; `--input PATH`: any file.

- **Prism**: `.venv/bin/prism process FILE` in a fresh data dir and DAGSTER_HOME (the project's dagster.yaml), the dev
  profile, PRISM_EXECUTOR = `--executor` (recorded; unset: Prism's default); the Whisper model is assembled into the data
  dir before (a node does it once). Wall, CPU (rusage of the process and the children it waited for), the process
  tree's peak RSS (sampled each second), and the run's timeline from the Dagster event log: each step's start/end
  offsets from the command's launch; `steps_overlap` = sum of step durations / the command's wall.
- **Peers** (the same work): `scenedetect -i FILE detect-adaptive`; one `ffmpeg` with blackdetect, freezedetect,
  silencedetect and ebur128 (Prism's QC thresholds, as benchmarks/qc_benchmark.py); the `whisperx` CLI on the file with
  Prism's Whisper model folder, compute type, batch and beam size (`--no_align`, pyannote VAD, as
  benchmarks/audio_benchmark.py); a simple 1-fps sampler (`ffmpeg -vf fps=1`, longest side `--ocr-side`, PNG) and
  `tesseract` on each sampled frame (psm 11, Prism's languages for the title, OMP_THREAD_LIMIT=1), two processes at a
  time; open_clip in a fresh process (Prism's model config and weights: ViT-B-32, random init with Prism's seed in dev;
  torch fp32, batches of 64 as Prism's ClipModelResource) over the sampled frames and the keyframe JPEGs Prism picked
  (read from its keyframes artifact), i.e. the pictures Prism embeds; and the browser-playable proxy Prism's `proxy`
  asset makes, by the asset's own ffmpeg command (x264 superfast CRF 32, 640 px, AAC), as any peer pipeline that
  serves a player must.
  Run twice: one after another (`sequential_sum_s`), and at once as an engineer would script it (`concurrent_wall_s`:
  scenedetect, ffmpeg, whisperx, the proxy and the sampler start together; tesseract x2 and open_clip start when the
  sampler ends); then the same without the proxy (`listed`: the tools issue 26 lists, the figure before the proxy
  existed), then scenedetect + ffmpeg + whisperx alone at once (the peers of the first comparison, doing less).
- Ratios: `prism_over_peers_same_work` = Prism wall / concurrent wall of all peers (goal <= 0.75);
  `prism_over_peers_listed` = the same without the proxy on the peers' side (Prism still makes one);
  `prism_over_peers_doing_less` = Prism wall / concurrent wall without OCR, CLIP and the proxy.

Writes `--out` (default benchmarks/results/e2e.json): {"latest": result, "runs": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from .bench_proc import PY, REPO, environment, run_timed, run_timeline, write_result
from .daemon_path import _env as instance_env
from .feature_media import make_feature
from .qc_benchmark import FFMPEG_FILTERS

BIN = REPO / ".venv" / "bin"
GOAL = 0.75
CLIP_CODE_NOTE = "open_clip.create_model_and_transforms(model, pretrained) after torch.manual_seed(seed); eval transform; torch fp32"


def prism_models() -> dict:
    """What the dev profile runs (the settings the peers copy)."""
    prof = yaml.safe_load((REPO / "prism_assets" / "profiles" / "dev.yaml").read_text())["models"]
    w, c = prof["whisper"], prof["clip"]
    from prism_assets.visual.clip_model import INIT_SEED

    return {"whisper": {"model": w["model"], "compute_type": (w.get("compute_type") or {}).get("cpu", "int8"), "batch_size": w.get("batch_size", 8),
                        "beam_size": w.get("beam_size", 5)},
            "clip": {"model": c["model"], "pretrained": c.get("pretrained"), "random_init": bool(c.get("random_init")), "seed": INIT_SEED,
                     "batch_size": 64, "prism_engine_cpu": (c.get("engine") or {}).get("cpu")}}


def whisper_dir(env: dict, spec: str) -> str:
    """Prism's Whisper model folder, assembled into the data dir of `env` (as the transcript step would, once)."""
    code = "import sys\nfrom prism_assets.audio.whisper import WhisperSource\nprint(WhisperSource(sys.argv[1]).resolve()[0])"
    import subprocess

    p = subprocess.run([str(PY), "-c", code, spec], env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise SystemExit(f"cannot resolve the Whisper model {spec}: {p.stderr[-800:]}")
    return p.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------- Prism


def run_prism(video: Path, work: Path, executor: str | None, title_id: str = "e2e") -> tuple[dict, dict, Path]:
    base = work / "prism"
    env = instance_env(base, executor=executor)
    if not executor:
        env.pop("PRISM_EXECUTOR", None)
    models = prism_models()
    wdir = whisper_dir(env, models["whisper"]["model"])
    launch = time.time()
    r = run_timed([str(BIN / "prism"), "process", str(video), "--title-id", title_id], env=env, log=work / "prism.log", sample=True)
    if r["rc"] != 0:
        raise SystemExit(f"prism process failed ({r['rc']}): {(work / 'prism.log').read_text()[-2000:]}")
    tl = run_timeline(Path(env["DAGSTER_HOME"]), title_id, origin_epoch=launch)
    tl["steps_overlap"] = round(tl.get("sum_step_s", 0.0) / r["wall_s"], 3) if r["wall_s"] else None
    r["run"] = tl
    return r, {"env": env, "whisper_dir": wdir, "data": base / "data"}, base / "data"


def prism_keyframes(data: Path, title_id: str) -> list[Path]:
    root = data / "artifacts" / "titles" / title_id / "keyframes"
    cur = root / "CURRENT"
    version = cur.read_text().strip() if cur.exists() else None
    dirs = [root / version] if version and (root / version).is_dir() else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return sorted(p for d in dirs for p in d.rglob("*.jpg"))


# ---------------------------------------------------------------------------------------------- peers


def peer_commands(video: Path, work: Path, wdir: str, models: dict, langs: str, side: int) -> dict:
    w = models["whisper"]
    threads = str(os.cpu_count() or 2)
    scale = f"scale='if(gte(iw,ih),{side},-2)':'if(gte(iw,ih),-2,{side})'"
    return {
        "scenedetect": [str(BIN / "scenedetect"), "-i", str(video), "detect-adaptive"],
        "ffmpeg_qc": ["ffmpeg", "-hide_banner", "-nostats", "-i", str(video), *FFMPEG_FILTERS, "-f", "null", "-"],
        "whisperx": [str(BIN / "whisperx"), str(video), "--model", wdir, "--device", "cpu", "--compute_type", w["compute_type"],
                     "--batch_size", str(w["batch_size"]), "--beam_size", str(w["beam_size"]), "--no_align", "--vad_method", "pyannote",
                     "--threads", threads, "--output_format", "json", "--output_dir", str(work / "whisperx"), "--verbose", "False"],
        "sampler_1fps": ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", f"fps=1,{scale}", str(work / "frames" / "%05d.png")],
        "proxy": proxy_command(video, work / "proxy.mp4"),
    }


def proxy_command(video: Path, out: Path) -> list[str]:
    """The browser-playable proxy as Prism's `proxy` asset encodes it: the asset's own ffmpeg command with its default
    settings (proxy_speed.proxy_command), the whole title."""
    from prism_assets.index.proxy import ProxyConfig

    from .proxy_speed import proxy_command as asset_command

    cfg = ProxyConfig()
    return asset_command(video, out, float("inf"), cfg.preset, False, cfg.crf, cfg.scaler)[0]


def run_tesseract(frames: list[Path], work: Path, langs: str, t0: float, jobs: int = 2) -> dict:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    (work / "ocr").mkdir(exist_ok=True)
    start = time.perf_counter()

    def one(f: Path) -> dict:
        return run_timed(["tesseract", str(f), str(work / "ocr" / f.stem), "-l", langs, "--psm", "11"], env=env, log=work / "ocr" / f"{f.stem}.log")

    with ThreadPoolExecutor(jobs) as pool:
        rs = list(pool.map(one, frames))
    end = time.perf_counter()
    chars = sum(len((work / "ocr" / f"{f.stem}.txt").read_text(errors="replace").strip()) for f in frames if (work / "ocr" / f"{f.stem}.txt").exists())
    return {"rc": max((r["rc"] for r in rs), default=0), "wall_s": round(end - start, 2), "cpu_s": round(sum(r["cpu_s"] for r in rs), 2),
            "max_rss_one_process_mb": max((r["max_rss_one_process_mb"] for r in rs), default=0.0), "start_s": round(start - t0, 2),
            "end_s": round(end - t0, 2), "frames": len(frames), "processes_at_once": jobs, "chars_read": chars}


def clip_peer(list_file: str, out: str, model: str, pretrained: str, seed: int, batch: int) -> None:
    """The open_clip peer (a fresh process): embed every image of `list_file`, batches of `batch`, L2-normalized."""
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    m, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained or None)
    m.eval()
    load_s = time.perf_counter() - t0
    paths = Path(list_file).read_text().split("\n")
    paths = [p for p in paths if p]
    embs = []
    with torch.inference_mode():
        for i in range(0, len(paths), batch):
            x = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
            embs.append(torch.nn.functional.normalize(m.encode_image(x).float(), dim=-1).numpy())
    e = np.concatenate(embs) if embs else np.zeros((0, 512), np.float32)
    np.save(out, e)
    print(json.dumps({"images": len(paths), "load_s": round(load_s, 2), "encode_s": round(time.perf_counter() - t0 - load_s, 2)}))


def run_clip(images: list[Path], work: Path, models: dict, t0: float) -> dict:
    c = models["clip"]
    lst = work / "clip_images.txt"
    lst.write_text("\n".join(str(p) for p in images))
    pre = "" if c["random_init"] else (c["pretrained"] or "")
    r = run_timed([str(PY), "-m", "benchmarks.e2e", "--clip-peer", str(lst), str(work / "clip.npy"), c["model"], pre, str(c["seed"]),
                   str(c["batch_size"])], env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}, log=work / "clip.log", t0=t0)
    r["images"] = len(images)
    return r


def peers(video: Path, work: Path, wdir: str, models: dict, keyframes: list[Path], langs: str, side: int, mode: str) -> dict:
    """mode: sequential (one tool after another), concurrent (all), listed (all but the proxy: the tools the issue lists),
    less (scenedetect + ffmpeg + whisperx at once)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "frames").mkdir(exist_ok=True)
    cmds = peer_commands(video, work, wdir, models, langs, side)
    t0 = time.perf_counter()
    res: dict = {}

    def tool(name: str) -> None:
        res[name] = run_timed(cmds[name], log=work / f"{name}.log", t0=t0, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def frames_then_ocr_clip(parallel: bool) -> None:
        tool("sampler_1fps")
        frames = sorted((work / "frames").glob("*.png"))
        if parallel:
            with ThreadPoolExecutor(2) as pool:
                a = pool.submit(run_tesseract, frames, work, langs, t0)
                b = pool.submit(run_clip, frames + keyframes, work, models, t0)
                res["tesseract"], res["open_clip"] = a.result(), b.result()
        else:
            res["tesseract"] = run_tesseract(frames, work, langs, t0)
            res["open_clip"] = run_clip(frames + keyframes, work, models, t0)

    if mode == "sequential":
        for name in ("scenedetect", "ffmpeg_qc", "whisperx", "proxy"):
            tool(name)
            print(f"  {name}: {res[name]['wall_s']} s", flush=True)
        frames_then_ocr_clip(False)
    else:
        jobs = [lambda n=n: tool(n) for n in ("scenedetect", "ffmpeg_qc", "whisperx") + (("proxy",) if mode == "concurrent" else ())]
        if mode in ("concurrent", "listed"):
            jobs.append(lambda: frames_then_ocr_clip(True))
        with ThreadPoolExecutor(len(jobs)) as pool:
            for f in [pool.submit(j) for j in jobs]:
                f.result()
    wall = round(time.perf_counter() - t0, 2)
    bad = {k: v["rc"] for k, v in res.items() if v["rc"] != 0}
    if bad:
        raise SystemExit(f"peer tools failed: {bad}; logs in {work}")
    out = {"mode": mode, "tools": res, "wall_s": wall, "cpu_s": round(sum(v["cpu_s"] for v in res.values()), 2),
           "sum_of_tool_walls_s": round(sum(v["wall_s"] for v in res.values()), 2)}
    if mode == "sequential":
        less = [res[k]["wall_s"] for k in ("scenedetect", "ffmpeg_qc", "whisperx")]
        out["sum_doing_less_s"] = round(sum(less), 2)
    return out


def summary(work: Path, res: dict) -> dict:
    """What the peers produced (a sanity check that they did the work)."""
    out = {}
    wx = list((work / "whisperx").glob("*.json"))
    if wx:
        out["whisperx_segments"] = len(json.loads(wx[0].read_text()).get("segments", []))
    log = (work / "scenedetect.log").read_text(errors="replace") if (work / "scenedetect.log").exists() else ""
    out["scenedetect_log_tail"] = log.strip().splitlines()[-2:] if log else []
    qc = (work / "ffmpeg_qc.log").read_text(errors="replace") if (work / "ffmpeg_qc.log").exists() else ""
    out["ffmpeg_events"] = {k: qc.count(k) for k in ("black_start", "freeze_start", "silence_start")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="any video file (default: the generated title)")
    ap.add_argument("--quick", action="store_true", help="a 60-s generated title")
    ap.add_argument("--executor", default=None, help="PRISM_EXECUTOR for the Prism process (default: unset, Prism's default)")
    ap.add_argument("--ocr-langs", default="eng", help="tesseract -l (Prism's languages for an English-only title without sidecar: eng)")
    ap.add_argument("--ocr-side", type=int, default=640, help="longest side of the sampled frames (Prism OCRs frames of 640 px)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "e2e.json")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--clip-peer", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.clip_peer:
        lst, out, model, pre, seed, batch = args.clip_peer
        clip_peer(lst, out, model, pre, int(seed), int(batch))
        return 0
    env0 = environment()
    video = args.input or make_feature(60.0 if args.quick else 336.0, (1280, 720), 24, seed=1)
    work = Path(tempfile.mkdtemp(prefix="prism_e2e_"))
    models = prism_models()
    print(f"[e2e] input {video}; Prism (executor {args.executor or 'default'}) ...", flush=True)
    prism, info, data = run_prism(video, work, args.executor)
    kf = prism_keyframes(data, "e2e")
    print(f"[e2e] Prism {prism['wall_s']} s wall, {prism['cpu_s']} cpu-s, steps_overlap {prism['run'].get('steps_overlap')}, {len(kf)} keyframes",
          flush=True)
    runs = {}
    for mode in ("sequential", "concurrent", "listed", "less"):
        print(f"[e2e] peers {mode} ...", flush=True)
        runs[mode] = peers(video, work / f"peers_{mode}", info["whisper_dir"], models, kf, args.ocr_langs, args.ocr_side, mode)
        print(f"[e2e] peers {mode}: {runs[mode]['wall_s']} s wall, {runs[mode]['cpu_s']} cpu-s", flush=True)
    seq, conc, listed, less = runs["sequential"], runs["concurrent"], runs["listed"], runs["less"]
    result = {
        **env0, "loadavg_end": list(os.getloadavg()), "command": " ".join(sys.argv),
        "input": {"path": str(video), "bytes": video.stat().st_size, "generated": args.input is None,
                  "truth": str(video.with_suffix(".truth.json")) if video.with_suffix(".truth.json").exists() else None},
        "executor": args.executor or "default (PRISM_EXECUTOR unset)", "models": models,
        "prism": prism,
        "peers": {"per_tool_sequential": seq["tools"], "sequential_sum_s": seq["wall_s"], "sequential_cpu_s": seq["cpu_s"],
                  "concurrent_wall_s": conc["wall_s"], "concurrent_cpu_s": conc["cpu_s"], "per_tool_concurrent": conc["tools"],
                  "listed_concurrent_wall_s": listed["wall_s"], "listed_concurrent_cpu_s": listed["cpu_s"], "per_tool_listed": listed["tools"],
                  "doing_less_concurrent_wall_s": less["wall_s"], "doing_less_sequential_sum_s": seq["sum_doing_less_s"],
                  "per_tool_doing_less": less["tools"],
                  "concurrency": "scenedetect, ffmpeg (4 filters), whisperx, the proxy encode and the 1-fps sampler at once; when the sampler "
                                 "ends, tesseract (2 processes at a time) and open_clip (one process) at once ('listed': the same without the proxy)",
                  "ocr": {"langs": args.ocr_langs, "psm": 11, "longest_side": args.ocr_side, "omp_thread_limit": 1},
                  "clip": {"images": len(list((work / "peers_concurrent" / "frames").glob("*.png"))) + len(kf), "prism_keyframes": len(kf),
                           "how": CLIP_CODE_NOTE},
                  "outputs": summary(work / "peers_concurrent", conc)},
        "prism_over_peers_same_work": round(prism["wall_s"] / conc["wall_s"], 3),
        "prism_over_peers_listed": round(prism["wall_s"] / listed["wall_s"], 3),
        "prism_over_peers_doing_less": round(prism["wall_s"] / less["wall_s"], 3),
        "prism_over_peers_sequential_sum": round(prism["wall_s"] / seq["wall_s"], 3),
        "prism_cpu_over_peers_cpu": round(prism["cpu_s"] / conc["cpu_s"], 3) if conc["cpu_s"] else None,
        "goal": {"prism_over_peers_same_work": GOAL}, "met": prism["wall_s"] / conc["wall_s"] <= GOAL,
    }
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("executor", "prism_over_peers_same_work", "prism_over_peers_listed", "prism_over_peers_doing_less",
                                            "prism_over_peers_sequential_sum", "met")}, indent=1))
    print(f"[e2e] wrote {args.out}" + (f"; work dir {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
