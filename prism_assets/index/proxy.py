"""`proxy`: a small browser-playable MP4 of the title for review players (H.264 + AAC-LC, faststart).

    source_video + frame_samples -> proxy (titles/<title_id>/proxy/<version>/ main.json + proxy.mp4)   (pool: decode)

The picture is at most 640 px on its long side (even sizes, square pixels: the source's sample aspect ratio is
applied, rotation too), at a constant frame rate as the source's (at most 30 fps: 50/60/120 fps are decimated by a
whole factor), 8-bit yuv420p (PQ/HLG HDR tone-mapped to BT.709), area downscaling, x264 superfast CRF 32, with the
title's original audio track as AAC-LC stereo 48 kHz (settings: core/proxy_spec.py, profile `index.proxy`).

Where the source allows (SDR, not rotated, progressive), the visual pass made the picture from its own decode
(visual/decode/tap.py; `frame_samples` carries it): this step only adds the sound (`mux_command`: the video copied,
the audio encoded), so the master is decoded once for both. Otherwise, or with `index.proxy.from_decode: false`, one
ffmpeg pass over the delivered file makes the whole proxy (`ffmpeg_command`). `main.json` records which
(`made_from`), and what the file is, probed back from the file itself (size, rate, duration, RFC 6381 codec strings
for `<video>`/MSE). A failed or timed-out encode is a one-line `ProxyError` (the last meaningful line of ffmpeg's
stderr); nothing partial is ever stored.

Encoder settings (benchmarks/results/proxy_speed.json, the same command): on the 720p e2e title superfast CRF 32 cost
0.78x the CPU of veryfast CRF 30 for 1.17x the bytes at the same SSIM against the source (0.968); a decoder skipping the
loop filter saved 5-7 % more but lost 4-5 dB of PSNR (`earlier` in the file). On 120 s of the 1080p24 feature title,
area downscaling costs 0.91x the CPU of ffmpeg's default bicubic for the same bytes (+0.1 %) and the same SSIM against
a lanczos reference (0.8900 against 0.8909); bilinear 0.89x but 4 % smaller and softer (0.8876). Its own pass decodes
the master a second time: at 1080p the largest single consumer of a title's CPU; made from the visual pass's decode
it costs the scaling and the x264 encode alone (results/proxy_tap.json, results/feature.json).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

from dagster import MetadataValue

from ..core.artifacts import Bundle
from ..core.checks import CheckRule
from ..core.language import base_language
from ..core.proxy_spec import SCALERS, STANDARD_RATES, ProxyConfig, ProxyError, ffmpeg_info, target_rate, x264_args  # noqa: F401  (this module's API)
from ..core.signal import Output, Result, Signal, SignalContext, Skip
from ..localization.roles import TITLE_HINTS
from ..visual.decode.tap import FILE as TAP_FILE
from ..visual.decode.tap import INFO as TAP_INFO

# 2: superfast CRF 32 (was veryfast CRF 30); 3: area downscaling (was bicubic); 4: the picture from the visual pass's decode where it made one
PROXY_CODE_VERSION = "proxy-4"
PROXY_SCHEMA_VERSION = "1.1"  # 1.1: made_from, own_pass_reason, decode_tap
FILE = "proxy.mp4"
DURATION_TOLERANCE_S = 0.5
# ffmpeg's summary lines that name no cause: the line before them says what failed
_GENERIC = re.compile(r"^(Conversion failed!|Exiting normally|Error initializing output stream|Error while (opening encoder|filtering)"
                      r"|Error opening output files?|Error (re)?configuring filter ?graph|Nothing was written into output file)", re.I)
_ADDRESS = re.compile(r"^\[(\S+) @ 0x[0-9a-f]+\]\s*")
_HDR_TRC = {16: "smpte2084", 18: "arib-std-b67"}  # AVColorTransferCharacteristic: PQ, HLG
_PRIMARIES = {1: "709", 9: "2020", 12: "smpte432", 11: "smpte431"}
_MATRIX = {1: "709", 9: "2020_ncl", 10: "2020_cl", 6: "170m", 5: "470bg"}


# ---------------------------------------------------------------------------------------------
# what to encode


def pick_audio_track(source_video: dict) -> dict | None:
    """The title's original audio track among the probed ones: the track in the sidecar's original
    language, else the container's default track, else the first; commentary and music-and-effects
    tracks (by their title) only when nothing else is there. None without audio."""
    tracks = list(source_video.get("audio_tracks") or [])
    if not tracks:
        return None
    plain = [t for t in tracks if not any(p.search(t.get("title") or "") for _, p in TITLE_HINTS)] or tracks
    want = base_language(source_video.get("original_language"))
    for rule in (lambda t: want is not None and base_language(t.get("language")) == want, lambda t: bool(t.get("default"))):
        hit = next((t for t in plain if rule(t)), None)
        if hit is not None:
            return hit
    return plain[0]


def colour_of(path: Path, stream_index: int) -> dict:
    """Transfer, primaries and matrix of the video stream as the container/bitstream declares them."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            cc = next(s for s in c.streams if s.index == stream_index).codec_context
            return {"trc": int(cc.color_trc or 2), "primaries": int(cc.color_primaries or 2), "matrix": int(cc.colorspace or 2),
                    "pix_fmt": cc.pix_fmt}
    except (av.error.FFmpegError, StopIteration, OSError, ValueError):
        return {"trc": 2, "primaries": 2, "matrix": 2, "pix_fmt": None}


def video_filter(rate: Fraction, cfg: ProxyConfig, colour: dict, filters: frozenset) -> tuple[str, str | None]:
    """(the -vf chain, the HDR transfer tone-mapped or None). Interlaced frames (flagged) are
    deinterlaced; the size is computed by ffmpeg from the decoded (auto-rotated) frames and their SAR."""
    m = cfg.max_side
    k = f"min(1,{m}/max(iw*sar,ih))"
    chain = ["bwdif=mode=send_frame:parity=auto:deint=interlaced", f"fps={rate.numerator}/{rate.denominator}",
             f"scale=w='2*max(1,round(iw*sar*{k}/2))':h='2*max(1,round(ih*{k}/2))':flags={cfg.scaler}", "setsar=1"]
    hdr = _HDR_TRC.get(colour["trc"])
    if hdr and {"zscale", "tonemap"} <= filters:
        pin, mat = _PRIMARIES.get(colour["primaries"], "2020"), _MATRIX.get(colour["matrix"], "2020_ncl")
        chain += [f"zscale=tin={hdr}:pin={pin}:min={mat}:t=linear:npl=100", "format=gbrpf32le", "zscale=p=709",
                  "tonemap=tonemap=hable:desat=0", "zscale=t=709:m=709:r=tv"]
    else:
        hdr = None
    chain.append("format=yuv420p")
    return ",".join(chain), hdr


def ffmpeg_command(exe: str, src: Path, out: Path, source_video: dict, track: dict | None, cfg: ProxyConfig, vf: str, rate: Fraction,
                   hdr: str | None) -> list[str]:
    """The proxy's own pass: decode the delivered file, filter, encode picture and sound."""
    t = str(cfg.threads)
    cmd = [exe, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y", "-threads", t, "-i", str(src),
           "-map", f"0:{int(source_video['video']['index'])}", "-filter_threads", t, "-vf", vf, "-fps_mode", "cfr", *x264_args(cfg, rate)]
    if hdr:
        cmd += ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    return cmd + audio_args(track, cfg, 0) + tail_args(source_video, out)


def mux_command(exe: str, picture: Path, src: Path, out: Path, source_video: dict, track: dict | None, cfg: ProxyConfig) -> list[str]:
    """A picture encoded elsewhere (the visual pass's, visual/decode/tap.py) with the title's sound: the video copied,
    the audio encoded from the delivered file."""
    cmd = [exe, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y", "-i", str(picture), "-i", str(src),
           "-map", "0:v:0", "-c:v", "copy"]
    return cmd + audio_args(track, cfg, 1) + tail_args(source_video, out)


def audio_args(track: dict | None, cfg: ProxyConfig, input_index: int) -> list[str]:
    if track is None:
        return []
    cmd = ["-map", f"{input_index}:{int(track['index'])}", "-c:a", "aac", "-profile:a", "aac_low", "-b:a", f"{cfg.audio_bitrate_k}k",
           "-ar", "48000", "-ac", "2"]
    if not track.get("channel_layout") and int(track.get("channels") or 0) > 2:  # no layout: no downmix matrix, take L/R
        cmd += ["-af", "pan=stereo|c0=c0|c1=c1"]
    return cmd


def tail_args(source_video: dict, out: Path) -> list[str]:
    cmd = []
    if source_video.get("duration_s"):
        cmd += ["-t", f"{float(source_video['duration_s']):.3f}"]  # the picture's length (a longer audio tail is cut)
    return cmd + ["-map_metadata", "-1", "-map_chapters", "-1", "-max_muxing_queue_size", "4096", "-movflags", "+faststart", "-f", "mp4", str(out)]


# ---------------------------------------------------------------------------------------------
# running ffmpeg


def last_error_line(stderr: str) -> str:
    """The last line of ffmpeg's stderr that names a cause ("[libx264 @ 0x..] x" -> "libx264: x")."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not _GENERIC.match(_ADDRESS.sub("", ln))] or lines
    if not meaningful:
        return ""
    m = _ADDRESS.match(meaningful[-1])
    line = f"{m.group(1)}: {meaningful[-1][m.end():]}" if m else meaningful[-1]
    return line[:300]


def run_ffmpeg(cmd: list[str], log_path: Path, timeout_s: float, duration_s: float | None, progress=None, nice: int | None = None) -> str:
    """Run ffmpeg (killed after `timeout_s`), reporting its progress (seconds encoded) at most every
    30 s; returns its stderr. A non-zero exit or a timeout is a ProxyError naming the cause. The proxy is off the
    title's critical path: ffmpeg runs with a lower CPU priority (`nice`, default PRISM_BACKGROUND_NICE; see
    core/cpu_share.background)."""
    from ..core.cpu_share import background

    with open(log_path, "w+b") as err:
        try:
            proc = subprocess.Popen(background(cmd, nice), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        except OSError as exc:
            raise ProxyError(f"ffmpeg failed to start: {exc}") from None
        fired = threading.Event()

        def kill():
            fired.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.daemon = True
        timer.start()
        last = time.monotonic()
        try:
            for raw in proc.stdout:
                line = raw.decode("ascii", "replace").strip()
                if progress and line.startswith("out_time_us=") and time.monotonic() - last >= 30:
                    try:
                        progress(int(line.split("=", 1)[1]) / 1e6)
                        last = time.monotonic()
                    except ValueError:
                        pass
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # interrupted (run terminated): leave no encoder behind
                proc.kill()
                proc.wait()
            proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if fired.is_set():
        dur = f" of a {duration_s:.0f} s title" if duration_s else ""
        raise ProxyError(f"ffmpeg timed out after {timeout_s:.0f} s{dur}")
    if rc != 0:
        raise ProxyError(f"ffmpeg failed (exit {rc}): {last_error_line(stderr) or 'no message'}")
    return stderr


# ---------------------------------------------------------------------------------------------
# what was made


def top_level_boxes(path: Path, limit: int = 64) -> list[str]:
    """The MP4's top-level box types in file order (ftyp, moov, mdat... for a faststart file)."""
    boxes: list[str] = []
    total = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= total and len(boxes) < limit:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = total - pos
            if size < 8:
                break
            boxes.append(kind.decode("latin-1"))
            pos += size
    return boxes


def describe_proxy(path: Path) -> dict:
    """The proxy as a player sees it, probed back from the file (PyAV); its first picture is decoded."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise ProxyError("the proxy has no video stream")
            v = c.streams.video[0]
            vc = v.codec_context
            ext = bytes(vc.extradata or b"")
            rate = v.average_rate or v.guessed_rate
            dur = float(v.duration * v.time_base) if v.duration else (c.duration or 0) / 1e6
            a = c.streams.audio[0] if c.streams.audio else None
            aext = bytes(a.codec_context.extradata or b"") if a is not None else b""
            first = next(c.decode(v), None)
            if first is None:
                raise ProxyError("the proxy's picture does not decode")
            info = {
                "width": int(vc.width), "height": int(vc.height), "fps": float(rate) if rate else None,
                "frame_rate": f"{rate.numerator}/{rate.denominator}" if rate else None, "frames": int(v.frames or 0),
                "duration_s": round(dur, 3), "has_audio": a is not None,
                "video_codec": f"avc1.{ext[1:4].hex()}" if len(ext) >= 4 and ext[0] == 1 else vc.name,
                "audio_codec": (f"mp4a.40.{aext[0] >> 3}" if aext else "mp4a.40") if a is not None else None,
                "video": {"codec": vc.name, "profile": vc.profile, "pix_fmt": vc.pix_fmt, "bit_rate": int(v.bit_rate or 0) or None},
                "audio": None if a is None else {"codec": a.codec_context.name, "profile": a.codec_context.profile,
                                                 "sample_rate": int(a.codec_context.sample_rate or 0), "channels": int(a.codec_context.channels or 0),
                                                 "duration_s": round(float(a.duration * a.time_base), 3) if a.duration else None},
            }
    except av.error.FFmpegError as exc:
        raise ProxyError(f"the proxy does not read back: {exc}") from None
    boxes = top_level_boxes(path)
    info["faststart"] = "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
    codecs = ", ".join(x for x in (info["video_codec"], info["audio_codec"]) if x)
    info["mime_type"] = f'video/mp4; codecs="{codecs}"'
    return info


# ---------------------------------------------------------------------------------------------
# checks


def _plays(d: dict) -> tuple[bool, dict]:
    src = d.get("source_duration_s")
    diff = None if not src else abs(float(d["duration_s"]) - float(src))
    ok = d["duration_s"] > 0 and d["frames"] > 0 and (diff is None or diff <= DURATION_TOLERANCE_S)
    return ok, {"duration_s": d["duration_s"], "source_duration_s": src, "difference_s": diff, "frames": d["frames"]}


def _fits(d: dict) -> tuple[bool, dict]:
    w, h, v = d["width"], d["height"], d["video"]
    ok = (max(w, h) <= d["producer"]["encoder"]["max_side"] and w % 2 == 0 and h % 2 == 0 and v["codec"] == "h264" and v["pix_fmt"] == "yuv420p"
          and v["profile"] in ("High", "Main", "Constrained Baseline", "Baseline") and d["faststart"])
    return ok, {"size": f"{w}x{h}", "codec": d["video_codec"], "pix_fmt": v["pix_fmt"], "faststart": d["faststart"]}


def _audio(d: dict) -> tuple[bool, dict]:
    a = d["audio"]
    ok = d["has_audio"] == d["source_has_audio"] and (a is None or (a["codec"] == "aac" and a["channels"] == 2 and a["sample_rate"] == 48000))
    return ok, {"has_audio": d["has_audio"], "source_has_audio": d["source_has_audio"], "codec": d["audio_codec"] or "",
                "source_track": d["source"]["audio_track"]}


RULES = (
    CheckRule("proxy_plays", f"The proxy decodes and lasts as long as the source's picture (within {DURATION_TOLERANCE_S} s when the source "
              "knows its duration).", _plays),
    CheckRule("proxy_fits_browsers", "H.264 (Main/High) yuv420p 8-bit, long side at most 640 px (the configured max_side), even sizes, "
              "moov before mdat (faststart).", _fits),
    CheckRule("proxy_audio_matches_source", "AAC-LC stereo 48 kHz from the original track when the source has audio; no audio when it has none.",
              _audio),
)


# ---------------------------------------------------------------------------------------------
# the signal


def decoded_picture(sc: SignalContext, cfg: ProxyConfig, rate: Fraction) -> tuple[Path | None, dict | None, str]:
    """The picture the visual pass made from its decode (visual/decode/tap.py) with these settings: (its local path,
    what the tap recorded, "") or (None, what it recorded if anything, why it cannot be used)."""
    if not cfg.from_decode:
        return None, None, "index.proxy.from_decode is off"
    files = sc.storage.stage_bundle("frame_samples", sc.title_id, "proxy", only={TAP_INFO, TAP_FILE})
    if TAP_INFO not in files:
        return None, None, "the visual pass made no proxy picture (frame_samples from before visual-pass-7)"
    try:
        info = json.loads(files[TAP_INFO].read_text())
    except (OSError, ValueError) as exc:
        return None, None, f"unreadable {TAP_INFO}: {exc}"
    if not info.get("file") or TAP_FILE not in files:
        return None, info, f"the visual pass made no proxy picture: {info.get('skipped') or info.get('error') or 'partial decode'}"
    if info.get("encoder") != cfg.encoder() or info.get("rate") != f"{rate.numerator}/{rate.denominator}":
        return None, info, "the visual pass's proxy picture was made with other index.proxy settings"
    return files[TAP_FILE], info, ""


def compute(sc: SignalContext, source_video: dict, frame_samples=None):
    """The picture from the visual pass's decode with the title's sound added where the pass made one (most titles);
    else the proxy's own pass over the delivered file (HDR, rotated, interlaced sources; older frame_samples)."""
    title_id = sc.title_id
    if source_video.get("video") is None or "audio_only" in (source_video.get("flags") or []):
        return Skip("no picture: audio-only delivery (no video stream), no proxy")
    cfg = ProxyConfig.from_config(sc.config.get("proxy"))
    exe, version, filters = ffmpeg_info()
    _, _, local = sc.stage_delivery(source_video["source_uri"])
    track = pick_audio_track(source_video)
    rate = target_rate(source_video, cfg.max_fps)
    colour = colour_of(Path(local), int(source_video["video"]["index"]))
    work = sc.workdir("proxy")
    out = work / FILE
    duration = source_video.get("duration_s")
    picture, tapped, why = decoded_picture(sc, cfg, rate)
    if picture is not None:
        hdr, made_from = None, "visual_pass"
        cmd = mux_command(exe, picture, Path(local), out, source_video, track, cfg)
        sc.log.info(f"{title_id}: proxy picture from the visual pass's decode ({tapped['frames_written']} frames); adding the sound")
    else:
        made_from = "proxy"
        sc.log.info(f"{title_id}: the proxy decodes the master itself: {why}")
        vf, hdr = video_filter(rate, cfg, colour, filters)
        if _HDR_TRC.get(colour["trc"]) and not hdr:
            sc.log.warning(f"{title_id}: HDR source but this ffmpeg lacks zscale/tonemap: converted to 8 bit without tone mapping")
        cmd = ffmpeg_command(exe, Path(local), out, source_video, track, cfg, vf, rate, hdr)
    timeout = cfg.timeout_s(duration)
    sc.log.info(f"{title_id}: proxy at {rate} fps, audio track {track['track'] if track else None}, timeout {timeout:.0f} s")

    def progress(t_s: float):
        pct = f" ({100 * t_s / duration:.0f}%)" if duration else ""
        sc.log.info(f"{title_id}: proxy encoded {t_s:.0f} s{pct}")

    t0 = time.monotonic()
    stderr = run_ffmpeg(cmd, work / "ffmpeg.log", timeout, duration, progress)
    seconds = time.monotonic() - t0
    info = describe_proxy(out)
    warnings = [ln for ln in stderr.splitlines() if ln.strip()]
    if warnings:
        sc.log.warning(f"{title_id}: ffmpeg reported {len(warnings)} error line(s) while encoding the proxy, e.g. {warnings[0][:200]}")
    encoder = cfg.encoder()
    doc = {
        "schema_version": PROXY_SCHEMA_VERSION, "title_id": title_id, "file": FILE, **info, "bytes": out.stat().st_size,
        "bit_rate_kbps": round(8 * out.stat().st_size / info["duration_s"] / 1000, 1) if info["duration_s"] else None,
        "source_uri": source_video["source_uri"], "source_duration_s": duration, "source_has_audio": bool(source_video.get("audio_tracks")),
        "source": {"width": source_video.get("width"), "height": source_video.get("height"), "fps": source_video.get("fps"),
                   "display_aspect_ratio": source_video.get("display_aspect_ratio"), "rotation": source_video.get("rotation") or 0,
                   "pix_fmt": colour["pix_fmt"], "hdr_tone_mapped": hdr, "audio_track": track["track"] if track else None,
                   "audio_stream_index": track["index"] if track else None, "audio_language": track.get("language") if track else None},
        "encode_seconds": round(seconds, 2), "speed_x": round(float(duration) / seconds, 2) if duration and seconds > 0 else None,
        "ffmpeg_error_lines": len(warnings), "made_from": made_from, "own_pass_reason": why or None,
        "decode_tap": {k: tapped.get(k) for k in ("frames_in", "frames_written", "dropped", "repeated", "seconds", "size", "rate", "error", "skipped")}
        if tapped else None,
        "producer": {"tool": "prism-proxy", "code_version": PROXY_CODE_VERSION, "ffmpeg": version, "encoder": encoder, "profile": sc.profile.name},
    }
    sc.provenance = {"tool": "ffmpeg", "version": version, "code_version": PROXY_CODE_VERSION, "encoder": encoder}
    sc.log.info(f"{title_id}: proxy {info['width']}x{info['height']} {info['fps'] or 0:.3f} fps {info['duration_s']:.2f} s, "
                f"{doc['bytes'] / 1e6:.1f} MB in {seconds:.1f} s ({doc['speed_x']}x realtime)")
    return Result(Bundle(doc, files={FILE: out}), check_value=doc, metadata={
        "width": info["width"], "height": info["height"], "fps": float(info["fps"] or 0.0), "duration_s": float(info["duration_s"]),
        "has_audio": info["has_audio"], "bytes": doc["bytes"], "bit_rate_kbps": float(doc["bit_rate_kbps"] or 0.0),
        "mime_type": info["mime_type"], "encode_seconds": doc["encode_seconds"], "speed_x": float(doc["speed_x"] or 0.0),
        "audio_track": -1 if track is None else int(track["track"]), "hdr_tone_mapped": hdr or "no", "made_from": made_from,
        "own_pass_reason": why or "none: the picture is the visual pass's",
        "producer": MetadataValue.json(doc["producer"])})


PROXY = Signal(
    name="proxy", domain="index", code_version=PROXY_CODE_VERSION, inputs=("source_video", "frame_samples"), pool="decode", priority=-5, background=True,
    compute=compute,
    errors=(ProxyError,),
    description="A browser-playable proxy of the title (the picture from the visual pass's decode where the source allows, the sound added here; "
    "else one ffmpeg pass over the master): MP4 with H.264 High yuv420p 8-bit (HDR tone-mapped), long side "
    "at most 640 px with square pixels, the source's constant frame rate up to 30 fps, x264 superfast CRF 32, faststart; AAC-LC stereo 48 kHz from the "
    "original audio track. main.json records size, rate, duration, codec strings and the source. Audio-only deliveries are skipped.",
    outputs=(Output("proxy", PROXY_SCHEMA_VERSION, "titles/<title_id>/proxy/<version>/ (main.json + proxy.mp4)", kinds=("mp4",), rules=RULES,
                    export=None, required=False, links=(FILE,)),),
)

__all__ = ["PROXY", "ProxyConfig", "ProxyError", "describe_proxy", "pick_audio_track", "target_rate", "top_level_boxes"]
