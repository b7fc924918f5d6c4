"""Probing a delivered video with PyAV: container, streams, exact timing, VFR and integrity, colour
(HDR) and scan (progressive / interlaced / telecined).

One demux pass over all packets (no picture decode except the first frame, for rotation and HDR
side data): frame count and duration come from packet timestamps, not from header guesses, so
truncated files and variable frame rate are seen. A 2-hour title demuxes in seconds. Pictures up to
1088 lines are then sampled (at most 3 windows of 80 frames) through FFmpeg's `idet` filter for the
scan type; the same libav data ffprobe shows (`color_transfer`, side data, `field_order`) is read
in-process, with no ffprobe subprocess.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.language import stream_language
from ..core.store import sha256_file
from .pictures import detect_scan, hdr_info

PROBE_SCHEMA_VERSION = "1.4"  # 1.4: hdr, scan; 1.3: series (series_id, season, episode, season_key) from the sidecar
PROBE_CODE_VERSION = "probe-3"  # 3: colour (HDR10 / HLG metadata) and scan type (idet sample)


class ProbeError(RuntimeError):
    """A delivery that cannot be used; str() is one line for the user."""


def _f(x) -> float | None:
    return None if x is None else float(x)




def probe_video(path: str | Path, *, checksum: bool = True) -> dict:
    import av  # PyAV

    path = Path(path)
    if not path.exists():
        raise ProbeError(f"no such file: {path}")
    if not path.is_file():
        raise ProbeError(f"not a regular file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise ProbeError(f"empty file (0 bytes): {path.name}")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise ProbeError(f"not a readable media file (invalid data or unknown format): {path.name}") from None
    except av.error.FFmpegError as exc:
        raise ProbeError(f"cannot open {path.name}: {exc.strerror or exc}") from None

    with container:
        videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        audios = list(container.streams.audio)
        if not videos:
            kinds = sorted({s.type for s in container.streams})
            if not audios:
                raise ProbeError(f"no video stream in {path.name} (streams: {', '.join(kinds) or 'none'})")
            return _probe_audio_only(container, audios, path, size, checksum)
        video = videos[0]
        subs = list(container.streams.subtitles)

        n_audio = len(audios)
        pts: list[int] = []
        durs: list[int] = []
        keyframes = 0
        corrupt = 0
        audio_end = [0] * n_audio
        audio_start: list[int | None] = [None] * n_audio
        audio_index = {s.index: i for i, s in enumerate(audios)}
        demux_error = None
        first_frame = None
        try:
            for packet in container.demux([video, *audios]):
                if packet.size == 0:
                    continue
                if packet.stream.index == video.index:
                    t = packet.pts if packet.pts is not None else packet.dts
                    if t is None:
                        continue
                    pts.append(t)
                    durs.append(packet.duration or 0)
                    keyframes += bool(packet.is_keyframe)
                    corrupt += bool(packet.is_corrupt)
                    if first_frame is None:
                        try:
                            frames = packet.decode()
                            if frames:
                                first_frame = frames[0]
                        except av.error.FFmpegError:
                            pass
                else:
                    i = audio_index[packet.stream.index]
                    t = packet.pts if packet.pts is not None else packet.dts
                    if t is None:
                        continue
                    audio_end[i] = max(audio_end[i], t + (packet.duration or 0))
                    if audio_start[i] is None or t < audio_start[i]:
                        audio_start[i] = t
        except av.error.FFmpegError as exc:
            demux_error = f"{type(exc).__name__}: {exc.strerror or exc}"

        if not pts:
            why = f" ({demux_error})" if demux_error else ""
            raise ProbeError(f"no decodable video packets in {path.name}: truncated or corrupt file{why}")

        tb = video.time_base
        pts_arr = np.sort(np.asarray(pts, dtype=np.int64))
        deltas = np.diff(pts_arr)
        avg_rate = video.average_rate or video.guessed_rate or video.base_rate
        nominal_tick = None
        if avg_rate:
            nominal_tick = float(1 / (Fraction(avg_rate) * tb))
        median_delta = float(np.median(deltas)) if deltas.size else (nominal_tick or 0.0)
        last_dur = durs[int(np.argmax(pts))] or median_delta
        duration_ticks = float(pts_arr[-1] - pts_arr[0]) + last_dur
        frame_count = int(pts_arr.size)
        duration_s = duration_ticks * float(tb)

        is_vfr = False
        if deltas.size >= 2 and median_delta > 0:
            off = np.abs(deltas - median_delta) > max(1.0, 0.01 * median_delta)
            is_vfr = bool(off.mean() > 0.02)
        if frame_count > 1 and duration_s > 0:
            measured_fps = (frame_count) / duration_s
        else:
            measured_fps = float(avg_rate) if avg_rate else None
        if is_vfr or not avg_rate:
            fps = measured_fps
        else:
            fps = float(avg_rate)
            # constant rate: frame_count/fps is exact where container timestamps are rounded (ms in WebM)
            if abs(frame_count / fps - duration_s) < 1.0 / fps:
                duration_s = frame_count / fps
        rate_str = f"{Fraction(avg_rate).numerator}/{Fraction(avg_rate).denominator}" if avg_rate else None

        cc = video.codec_context
        rotation = int(getattr(first_frame, "rotation", 0) or 0) if first_frame is not None else 0
        sar = cc.sample_aspect_ratio
        dar = None
        if video.width and video.height:
            dar_f = Fraction(video.width, video.height) * (Fraction(sar) if sar else 1)
            dar = f"{dar_f.numerator}:{dar_f.denominator}"

        audio_tracks = [_audio_track(i, a, audio_start[i], audio_end[i]) for i, a in enumerate(audios)]
        subtitle_tracks = [{"index": s.index, "codec": s.codec_context.name if s.codec_context else None, "language": stream_language(s)} for s in subs]

        flags = []
        if is_vfr:
            flags.append("vfr")
        if not audio_tracks:
            flags.append("no_audio")
        if demux_error:
            flags.append("demux_error")
        if corrupt:
            flags.append("corrupt_packets")
        if rotation:
            flags.append("rotated")
        if len(videos) > 1:
            flags.append("multiple_video_streams")
        for t in audio_tracks:
            if t["duration_s"] is not None and duration_s - t["duration_s"] > 2.0 / (fps or 24):
                flags.append("audio_shorter_than_video")
                break
        scan, sampled = detect_scan(path, video.index, frame_count, cc.name, int(video.height or 0), first_frame)
        hdr = hdr_info(cc, [f for f in (first_frame, *sampled) if f is not None])
        if hdr["format"] != "sdr":
            flags.append("hdr")
        if scan["type"] in ("interlaced", "telecined"):
            flags.append(scan["type"])

        result = {
            "file_size_bytes": size,
            "checksum_sha256": sha256_file(path) if checksum else None,
            "container": _container_info(container),
            "duration_s": duration_s,
            "fps": fps,
            "frame_rate": rate_str,
            "is_vfr": is_vfr,
            "frame_count": frame_count,
            "width": int(video.width),
            "height": int(video.height),
            "display_aspect_ratio": dar,
            "rotation": rotation,
            "video": {
                "index": video.index,
                "codec": cc.name,
                "profile": cc.profile,
                "pix_fmt": cc.pix_fmt,
                "bit_rate": int(video.bit_rate) if video.bit_rate else None,
                "time_base": f"{tb.numerator}/{tb.denominator}",
                "start_time_s": float(pts_arr[0] * tb),
                "keyframes": keyframes,
                "corrupt_packets": corrupt,
                "color_range": str(getattr(cc, "color_range", "") or "") or None,
                "language": stream_language(video),
            },
            "hdr": hdr,
            "scan": scan,
            "audio_tracks": audio_tracks,
            "subtitle_tracks": subtitle_tracks,
            "has_audio": bool(audio_tracks),
            "demux_error": demux_error,
            "flags": flags,
        }
        return result


def _container_info(container) -> dict:
    return {
        "format_name": container.format.name,
        "format_long_name": container.format.long_name,
        "bit_rate": int(container.bit_rate) if container.bit_rate else None,
        "duration_s": (container.duration / 1_000_000) if container.duration else None,
        "start_time_s": (container.start_time / 1_000_000) if container.start_time else 0.0,
        "metadata": dict(container.metadata or {}),
    }


def _audio_track(i: int, a, start, end) -> dict:
    import av

    acc = a.codec_context
    a_dur = None
    if start is not None:
        a_dur = float((end - start) * a.time_base)
    elif a.duration:
        a_dur = float(a.duration * a.time_base)
    layout = getattr(acc, "layout", None)
    return {
        "index": a.index,
        "track": i,
        "codec": acc.name,
        "sample_rate": int(acc.sample_rate or 0),
        "channels": int(getattr(acc, "channels", 0) or (layout.nb_channels if layout else 0)),
        "channel_layout": layout.name if layout else None,
        "language": stream_language(a),
        "title": (a.metadata or {}).get("title"),
        "bit_rate": int(a.bit_rate) if a.bit_rate else None,
        "duration_s": a_dur,
        "default": bool(a.disposition & av.stream.Disposition.default),
    }


def _probe_audio_only(container, audios, path: Path, size: int, checksum: bool) -> dict:
    """An audio-only delivery (a dub, a stem, a speech or line-up recording): probed and flagged
    `audio_only`. Its picture fields are null (`fps`, `width`, `height`, `video`) and `frame_count`
    is 0; the visual signals skip it, the audio signals run."""
    import av

    n = len(audios)
    end, start = [0] * n, [None] * n
    index = {s.index: i for i, s in enumerate(audios)}
    demux_error = None
    corrupt = 0
    try:
        for packet in container.demux(audios):
            if packet.size == 0:
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None:
                continue
            i = index[packet.stream.index]
            corrupt += bool(packet.is_corrupt)
            end[i] = max(end[i], t + (packet.duration or 0))
            if start[i] is None or t < start[i]:
                start[i] = t
    except av.error.FFmpegError as exc:
        demux_error = f"{type(exc).__name__}: {exc.strerror or exc}"
    tracks = [_audio_track(i, a, start[i], end[i]) for i, a in enumerate(audios)]
    durations = [t["duration_s"] for t in tracks if t["duration_s"]]
    if not durations:
        why = f" ({demux_error})" if demux_error else ""
        raise ProbeError(f"no decodable audio packets in {path.name} (audio-only delivery): truncated or corrupt file{why}")
    flags = ["audio_only"] + (["demux_error"] if demux_error else []) + (["corrupt_packets"] if corrupt else [])
    return {
        "file_size_bytes": size,
        "checksum_sha256": sha256_file(path) if checksum else None,
        "container": _container_info(container),
        "duration_s": max(durations),
        "fps": None,
        "frame_rate": None,
        "is_vfr": False,
        "frame_count": 0,
        "width": None,
        "height": None,
        "display_aspect_ratio": None,
        "rotation": 0,
        "video": None,
        "hdr": None,
        "scan": None,
        "audio_corrupt_packets": corrupt,
        "audio_tracks": tracks,
        "subtitle_tracks": [],
        "has_audio": True,
        "demux_error": demux_error,
        "flags": flags,
    }


def probe_summary(p: dict) -> str:
    if p.get("video") is None:
        return f"audio only, {p['duration_s']:.2f}s, {len(p['audio_tracks'])} audio track(s)"
    return f"{p['width']}x{p['height']} {p['fps']:.3f} fps {p['duration_s']:.2f}s {p['frame_count']} frames, {len(p['audio_tracks'])} audio track(s)"


__all__ = ["ProbeError", "probe_video", "PROBE_SCHEMA_VERSION", "PROBE_CODE_VERSION", "probe_summary"]
