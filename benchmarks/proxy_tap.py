"""What the proxy costs made from the visual pass's decode (issue 26 / issue 24 "from the existing decode pass"): the
measurement that chose the design the product now has (prism_assets/visual/decode/tap.py: the same scaling in the decode
lanes, the same rawvideo -> x264 encoder, the sound added by the `proxy` asset), here on its primitives in one process.

    PYTHONPATH=. .venv/bin/python -m benchmarks.proxy_tap [--input PATH] [--seconds 120] [--rounds 2] [--out FILE]

Side by side, rounds interleaved, on the first `--seconds` of `--input` (default: the cached 10-min 1080p24 feature title
of benchmarks/feature.py):

- **standalone**: the `proxy` asset's own ffmpeg command (prism_assets/index/proxy.py `ffmpeg_command`, not niced): it
  decodes the master a second time;
- **decode only**: PyAV decoding every frame, one thread (what the visual pass does anyway, here alone);
- **decode + tap**: the same decode, each frame also scaled to the proxy's size by libswscale (area, yuv420p) in this
  process and written to an ffmpeg that encodes rawvideo from stdin with the same x264/AAC settings, the audio read
  from the source (`-map 1:a`): the tap's extra cost is this minus `decode only`.

CPU seconds are this process's own (user + sys, `decode only` and the tap's scaling) plus its children's (ffmpeg). The
saving of a tap = standalone - (decode + tap - decode only). Writes benchmarks/results/proxy_tap.json.
"""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from .bench_proc import REPO, environment, write_result
from .proxy_speed import arguments, proxy_command, proxy_inputs

OUT = REPO / "benchmarks" / "results" / "proxy_tap.json"


def cpu_s() -> tuple[float, float]:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


def measured(fn) -> dict:
    (s0, c0), t0 = cpu_s(), time.perf_counter()
    extra = fn() or {}
    (s1, c1), t1 = cpu_s(), time.perf_counter()
    return {"cpu_s": round(s1 - s0 + c1 - c0, 2), "self_cpu_s": round(s1 - s0, 2), "children_cpu_s": round(c1 - c0, 2), "wall_s": round(t1 - t0, 2), **extra}


def standalone(cmd: list[str], out: Path) -> dict:
    subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
    return {"bytes": out.stat().st_size}


def decode(src: Path, seconds: float, ready: dict, tap_out: Path | None = None) -> dict:
    import av
    from av.video.reformatter import Interpolation, VideoReformatter

    cfg, exe, rate, track = ready["cfg"], ready["exe"], ready["rate"], ready["track"]
    proc = None
    frames = written = 0
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        st.thread_type, st.thread_count = "FRAME", 1
        w, h = st.codec_context.width, st.codec_context.height
        k = min(1.0, cfg.max_side / max(w, h))
        pw, ph = 2 * max(1, round(w * k / 2)), 2 * max(1, round(h * k / 2))
        if tap_out is not None:
            cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{pw}x{ph}",
                   "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0", "-i", str(src), "-map", "0:v"]
            cmd += ["-c:v", "libx264", "-preset", cfg.preset, "-crf", str(cfg.crf), "-profile:v", "high", "-pix_fmt", "yuv420p",
                    "-maxrate", f"{cfg.maxrate_k}k", "-bufsize", f"{2 * cfg.maxrate_k}k", "-g", str(max(1, round(float(rate) * cfg.gop_s))),
                    "-threads", str(cfg.threads)]
            if track is not None:
                cmd += ["-map", f"1:{int(track['index'])}", "-c:a", "aac", "-b:a", f"{cfg.audio_bitrate_k}k", "-ar", "48000", "-ac", "2"]
            cmd += ["-t", f"{seconds:.3f}", "-movflags", "+faststart", "-f", "mp4", str(tap_out)]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        fmt = VideoReformatter()
        step, t0, slot = 1.0 / float(rate), None, 0
        for frame in c.decode(st):
            t = float(frame.pts * st.time_base) if frame.pts is not None else frames * step
            if t >= seconds:
                break
            frames += 1
            if proc is None:
                continue
            t0 = t if t0 is None else t0
            target = round((t - t0) / step)
            if target < slot:  # a constant rate: frames past the slot are dropped, gaps repeat the last frame
                continue
            small = fmt.reformat(frame, pw, ph, "yuv420p", interpolation=Interpolation.AREA)
            data = small.to_ndarray().tobytes()  # yuv420p: (h * 3 / 2, w), the planes without their line padding
            while slot <= target:
                proc.stdin.write(data)
                slot += 1
                written += 1
    if proc is not None:
        proc.stdin.close()
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise SystemExit(f"tap encoder failed: {err.decode(errors='replace')[-500:]}")
    return {"frames": frames, "written": written, "size": [pw, ph], **({"bytes": tap_out.stat().st_size} if tap_out else {})}


def main(argv=None) -> int:
    args = arguments(__doc__, OUT).parse_args(argv)
    src = args.input
    if src is None:
        from .feature_media import make_feature

        src = make_feature(600.0, (1920, 1080), 24)
    work = Path(tempfile.mkdtemp(prefix="proxy_tap_"))
    from prism_assets.index.proxy import ProxyConfig

    cfg = ProxyConfig()  # the asset's defaults; probe, command and imports outside the measurements
    ready = proxy_inputs(src, args.seconds, cfg)
    cmd, _ = proxy_command(src, work / "standalone.mp4", args.seconds, cfg.preset, False, cfg.crf, cfg.scaler)
    import av  # noqa: F401 - imported before the first measurement too
    from av.video.reformatter import VideoReformatter  # noqa: F401

    variants = {"standalone": lambda: standalone(cmd, work / "standalone.mp4"),
                "decode_only": lambda: decode(src, args.seconds, ready),
                "decode_and_tap": lambda: decode(src, args.seconds, ready, work / "tap.mp4")}
    runs: dict[str, list] = {k: [] for k in variants}
    for rnd in range(args.rounds):
        for name in (list(variants) if rnd % 2 == 0 else list(variants)[::-1]):
            r = measured(variants[name])
            runs[name].append(r)
            print(name, r, flush=True)
    best = {k: min(v, key=lambda r: r["cpu_s"]) for k, v in runs.items()}  # the least of the rounds: a shared machine only adds
    tap_extra = round(best["decode_and_tap"]["cpu_s"] - best["decode_only"]["cpu_s"], 2)
    result = {**environment(), "command": "benchmarks/proxy_tap.py", "input": {"path": str(src), "seconds": args.seconds}, "rounds": args.rounds,
              "runs": runs, "best": best, "tap_extra_cpu_s": tap_extra,
              "tap_over_standalone_cpu": round(tap_extra / best["standalone"]["cpu_s"], 3) if best["standalone"]["cpu_s"] else None,
              "saving_cpu_s_per_min": round((best["standalone"]["cpu_s"] - tap_extra) * 60.0 / args.seconds, 2),
              "note": "tap_extra_cpu_s = decode_and_tap - decode_only: what the proxy would add to a visual pass that decodes anyway"}
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("tap_extra_cpu_s", "tap_over_standalone_cpu", "saving_cpu_s_per_min")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
