"""What the proxy costs against what it shows: the `proxy` asset's own ffmpeg command (prism_assets/index/proxy.py
`ffmpeg_command`, run here without the niceness) with the x264 preset, the CRF, the downscaling filter and the decoder's
loop filter varied.

    PYTHONPATH=. .venv/bin/python -m benchmarks.proxy_speed [--input PATH] [--seconds 120] [--rounds 2] [--out FILE]

Input: the generated 336-s 1280x720 24-fps title of benchmarks/e2e.py (cached), or `--input` (any file); the first
`--seconds` of it. Per variant, rounds interleaved (the machine is shared): CPU seconds of ffmpeg (the least of the rounds) (user + sys, from
the children's rusage), wall seconds, bytes, and the picture against the source scaled to the proxy's size by the
same filter chain with one fixed scaler (lanczos, whatever the variant's: the reference does not move with the variant):
SSIM (all planes) and PSNR (Y), from ffmpeg's `ssim` and `psnr` filters over every frame.
Writes benchmarks/results/proxy_speed.json (the previous file's content kept under `earlier`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "proxy_speed.json"
# (x264 preset, decoder skips the loop filter, CRF, libswscale filter); the first is the base of the ratios (proxy-2's settings)
VARIANTS = [("superfast", False, 32, "bicubic"), ("superfast", False, 32, "area"), ("superfast", False, 32, "bilinear"),
            ("superfast", False, 32, "fast_bilinear"), ("veryfast", False, 30, "bicubic")]
REFERENCE_SCALER = "lanczos"


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proxy_inputs(src: Path, seconds: float, cfg) -> dict:
    """What the `proxy` asset decides for the first `seconds` of `src` with settings `cfg` (a ProxyConfig): the probe
    (`sv`), ffmpeg, the rate, the filter chain (`vf`), the HDR transfer tone-mapped and the audio track."""
    from prism_assets.index.proxy import colour_of, ffmpeg_info, pick_audio_track, target_rate, video_filter
    from prism_assets.ingest.probe import probe_video

    sv = probe_video(src, checksum=False)
    sv = {**sv, "duration_s": min(float(sv.get("duration_s") or seconds), seconds)}
    exe, _, filters = ffmpeg_info()
    rate = target_rate(sv, cfg.max_fps)
    vf, hdr = video_filter(rate, cfg, colour_of(src, int(sv["video"]["index"])), filters)
    return {"sv": sv, "cfg": cfg, "exe": exe, "rate": rate, "vf": vf, "hdr": hdr, "track": pick_audio_track(sv)}


def proxy_command(src: Path, out: Path, seconds: float, preset: str, skip_loop_filter: bool, crf: int, scaler: str) -> tuple[list[str], str]:
    """The asset's own ffmpeg command (without -progress) and the reference chain (the same with the fixed scaler)."""
    from prism_assets.index.proxy import ProxyConfig, ffmpeg_command

    p = proxy_inputs(src, seconds, ProxyConfig(preset=preset, crf=crf, scaler=scaler))
    vf = p["vf"]
    cmd = ffmpeg_command(p["exe"], src, out, p["sv"], p["track"], p["cfg"], vf, p["rate"], p["hdr"])
    cmd = [c for c in cmd if c not in ("-progress", "pipe:1")]
    if skip_loop_filter:
        i = cmd.index("-i")
        cmd[i:i] = ["-skip_loop_filter", "all"]
    ref = vf.replace(f"flags={scaler}", f"flags={REFERENCE_SCALER}")
    assert ref != vf or scaler == REFERENCE_SCALER, vf
    return cmd, ref


def quality(proxy: Path, src: Path, vf: str, seconds: float) -> dict:
    graph = f"[1:v]{vf}[ref];[0:v]split[a][b];[ref]split[r1][r2];[a][r1]ssim;[b][r2]psnr"
    p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(proxy), "-t", f"{seconds:.3f}", "-i", str(src),
                        "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, timeout=3600)
    ssim = re.findall(r"SSIM .*All:([0-9.]+)", p.stderr)
    psnr = re.findall(r"PSNR y:([0-9.inf]+)", p.stderr)
    return {"ssim_all": float(ssim[-1]) if ssim else None, "psnr_y_db": float(psnr[-1]) if psnr and psnr[-1] != "inf" else None}


def arguments(doc: str, out: Path) -> argparse.ArgumentParser:
    """The options of the proxy benchmarks (this one and proxy_tap.py)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--input", type=Path)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=out)
    return ap


def main(argv=None) -> int:
    args = arguments(__doc__, OUT).parse_args(argv)
    if args.input:
        src = args.input
    else:
        from benchmarks.feature_media import make_feature

        src = make_feature(336.0, (1280, 720), 24, seed=1)
    work = Path(tempfile.mkdtemp(prefix="proxy_speed_"))
    load0 = os.getloadavg()
    runs: dict[str, dict] = {}
    for rnd in range(args.rounds):
        for preset, skip, crf, scaler in (VARIANTS if rnd % 2 == 0 else VARIANTS[::-1]):
            name = f"{preset} crf{crf} {scaler}{' skip_loop_filter' if skip else ''}"
            out = work / f"{name.replace(' ', '_')}.mp4"
            cmd, vf = proxy_command(src, out, args.seconds, preset, skip, crf, scaler)
            c0, t0 = children_cpu_s(), time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
            r = runs.setdefault(name, {"preset": preset, "crf": crf, "scaler": scaler, "skip_loop_filter": skip, "cpu_s": [], "wall_s": []})
            r["cpu_s"].append(round(children_cpu_s() - c0, 2))
            r["wall_s"].append(round(time.perf_counter() - t0, 2))
            r["bytes"] = out.stat().st_size
            if "ssim_all" not in r:
                r.update(quality(out, src, vf, args.seconds))
            print(name, r["cpu_s"][-1], "CPU-s", r["bytes"], "bytes", r.get("ssim_all"), flush=True)
    p0, s0, c0_, sc0 = VARIANTS[0]
    base = runs[f"{p0} crf{c0_} {sc0}{' skip_loop_filter' if s0 else ''}"]
    for r in runs.values():  # the least CPU of the rounds: other work on a shared machine only ever adds to it
        r["cpu_s_min"] = min(r["cpu_s"])
        r["cpu_over_current"] = round(r["cpu_s_min"] / base["cpu_s_min"], 3) if base["cpu_s_min"] else None
        r["bytes_over_current"] = round(r["bytes"] / base["bytes"], 3)
    doc = {"benchmark": "proxy_speed", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                       "load_average_start_end": [round(load0[0], 2), round(os.getloadavg()[0], 2)]},
           "input": {"path": str(src), "seconds": args.seconds}, "rounds": args.rounds, "variants": runs,
           "base": "superfast CRF 32 bicubic (proxy-2: the asset's settings before the scaler became configurable)",
           "note": "SSIM and PSNR are against the source through the same fps/scale chain with a fixed lanczos scaler; CPU seconds are "
                   "ffmpeg's own (decode, scale, encode, audio encode); *_over_current: against the base"}
    if args.out.exists():
        doc["earlier"] = json.loads(args.out.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: {x: v[x] for x in ("cpu_s_min", "cpu_over_current", "bytes_over_current", "ssim_all", "psnr_y_db")}
                      for k, v in runs.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
