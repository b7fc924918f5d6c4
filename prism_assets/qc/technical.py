"""Loudness against the title's profile and the technical checks (A/V duration, interlacing and
telecine, VFR, decode errors, missing audio, resolution / frame rate, too short, HDR10 static
metadata)."""

from __future__ import annotations

import math

import pandas as pd

from .events import Timeline, time_event, whole_event
from .thresholds import QCThresholds


def check_loudness(audio_analysis: dict | None, profile: dict, tl: Timeline, sev_loud: str = "fail", sev_tp: str = "fail") -> list[dict]:
    """Loudness compliance per track against the profile (integrated, or dialogue-gated when the
    profile says `measure: dialogue`; a track with no detected dialogue falls back to integrated, said so)."""
    out = []
    spec = profile.get("loudness") or {}
    if not spec or not audio_analysis:
        return out
    target, tol, tp_max = float(spec["target_lufs"]), float(spec["tolerance_lu"]), float(spec["true_peak_max_dbtp"])
    for tr in audio_analysis.get("tracks") or []:
        track = tr.get("track")
        measure = spec.get("measure", "integrated")
        value = tr.get("dialogue_lufs") if measure == "dialogue" else tr.get("integrated_lufs")
        note = ""
        if measure == "dialogue" and value is None and tr.get("integrated_lufs") is not None:
            value, note = tr.get("integrated_lufs"), " (no dialogue detected: integrated loudness used)"
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue  # a silent track has no loudness; it is reported as silence
        value = float(value)
        if abs(value - target) > tol + 1e-9:
            label = "dialogue loudness" if measure == "dialogue" and not note else "integrated loudness"
            out.append(whole_event(tl, "loudness", sev_loud, f"track {track}: {label} {value:.1f} LUFS outside {target:g} +-{tol:g}{note}", track=track,
                              metrics={"measured_lufs": round(value, 2), "target_lufs": target, "tolerance_lu": tol, "measure": measure}))
        tp = tr.get("true_peak_dbtp")
        if tp is not None and math.isfinite(float(tp)) and float(tp) > tp_max + 1e-9:
            out.append(whole_event(tl, "true_peak", sev_tp, f"track {track}: true peak {float(tp):.1f} dBTP above {tp_max:g} dBTP", track=track,
                              metrics={"true_peak_dbtp": round(float(tp), 2), "max_dbtp": tp_max}))
    return out




def check_technical(stats: pd.DataFrame, tl: Timeline, source: dict, audio_stats: pd.DataFrame | None, audio_analysis: dict | None,
                    profile: dict, th: QCThresholds, pass_meta: dict, severity: dict) -> list[dict]:
    out = []
    sv = lambda k: severity.get(k, "warn")  # noqa: E731
    video = profile.get("video") or {}
    # resolution / frame rate against the profile's spec
    w, h = source.get("width"), source.get("height")
    fps = float(source.get("fps") or tl.fps)
    problems = []
    if w and h:
        if w < video.get("min_width", 0) or h < video.get("min_height", 0):
            problems.append(f"{w}x{h} below the minimum {video.get('min_width', 0)}x{video.get('min_height', 0)}")
        if w > video.get("max_width", 1 << 30) or h > video.get("max_height", 1 << 30):
            problems.append(f"{w}x{h} above the maximum {video.get('max_width')}x{video.get('max_height')}")
    allowed = video.get("fps") or []
    if allowed and not any(abs(fps - float(a)) <= float(video.get("fps_tolerance", 0.01)) for a in allowed):
        problems.append(f"{fps:.3f} fps not in the allowed rates {allowed}")
    if problems:
        out.append(whole_event(tl, "video_spec", sv("video_spec"), "; ".join(problems), metrics={"width": w, "height": h, "fps": round(fps, 4)}))
    # too short
    min_dur = float(profile.get("min_duration_s", 0) or 0)
    if tl.duration < min_dur:
        out.append(whole_event(tl, "too_short", sv("too_short"), f"title lasts {tl.duration:.3f} s ({tl.n} frame{'s' if tl.n != 1 else ''}), shorter than {min_dur:g} s",
                          metrics={"duration_s": round(tl.duration, 4), "frames": tl.n}))
    # interlacing: the probe's scan type (idet over a sample: interlaced, or telecined 3:2 pulldown), else the decoder's flags
    interlaced = check_interlaced(stats, tl, source, th, sv("interlaced"))
    if interlaced and not video.get("allow_interlaced", False):
        out.append(interlaced)
    hdr = check_hdr_metadata(source, tl, sv("hdr_metadata"))
    if hdr:
        out.append(hdr)
    # VFR
    if source.get("is_vfr") or "vfr" in (source.get("flags") or []):
        if not video.get("allow_vfr", False):
            out.append(whole_event(tl, "vfr", sv("vfr"), f"variable frame rate (average {fps:.3f} fps)", metrics={"fps": round(fps, 4)}))
    # decode errors (visual pass), plus corrupt frames and demux damage from the probe
    errors = int(pass_meta.get("decode_errors") or 0)
    corrupt = int(stats["corrupt"].sum()) if "corrupt" in stats else 0
    demux = source.get("demux_error")
    if errors or corrupt or demux:
        times = [float(x) for x in (pass_meta.get("decode_error_times_s") or [])]
        s = "fail" if errors + corrupt > th.decode_errors_fail or demux else sv("decode_errors")
        start = min(times) if times else 0.0
        end = max(times) + 1.0 / tl.fps if times else tl.duration
        detail = f"{errors} packet(s) failed to decode, {corrupt} corrupt frame(s)" + (f"; demux stopped: {demux}" if demux else "")
        out.append(time_event(tl, "decode_errors", s, detail, start, max(end, start), metrics={"decode_errors": errors, "corrupt_frames": corrupt, "error_times_s": times[:20]}))
    truncated = check_truncated(source, audio_analysis, tl, th, sv("truncated"))
    if truncated:
        out.append(truncated)
    # audio presence and A/V duration
    tracks = list(source.get("audio_tracks") or [])
    no_audio = (not tracks) or bool((audio_analysis or {}).get("no_audio"))
    if no_audio:
        if (profile.get("audio") or {}).get("required", True):
            out.append(whole_event(tl, "missing_audio", sv("missing_audio"), "the title has no audio track"))
        return out
    vdur = float(source.get("duration_s") or tl.duration)
    frame = 1.0 / fps if fps > 0 else 1.0 / 25
    for tr in audio_durations(tracks, audio_stats, audio_analysis):
        adur = tr["duration_s"]
        if adur is None:
            continue
        if adur < vdur - th.av_short_frames * frame - 1e-6:
            short = vdur - adur
            out.append(time_event(tl, "av_duration_mismatch", sv("av_duration_mismatch"),
                                   f"track {tr['track']}: audio ends {short:.3f} s ({short / frame:.1f} frames) before the picture ({adur:.3f} s vs {vdur:.3f} s)",
                                   max(0.0, tr["end_s"]), vdur, track=tr["track"], metrics={"audio_s": round(adur, 4), "video_s": round(vdur, 4)}))
        elif adur > vdur + th.av_long_s + 1e-6:
            out.append(whole_event(tl, "av_duration_mismatch", sv("av_duration_mismatch"),
                              f"track {tr['track']}: audio lasts {adur - vdur:.3f} s longer than the picture ({adur:.3f} s vs {vdur:.3f} s)",
                              track=tr["track"], metrics={"audio_s": round(adur, 4), "video_s": round(vdur, 4)}))
    return out


def check_interlaced(stats: pd.DataFrame, tl: Timeline, source: dict, th: QCThresholds, severity: str) -> dict | None:
    """The title's pictures are interlaced: the probe's scan block says interlaced or telecined (the
    visual pass analysed them deinterlaced / inverse-telecined), or, for a probe without one,
    >= `interlaced_ratio` of the frames are flagged interlaced by the decoder."""
    scan = source.get("scan") or {}
    ratio = float(stats["interlaced"].to_numpy(dtype=bool).mean()) if "interlaced" in stats and tl.n else 0.0
    kind = scan.get("type")
    if kind in ("interlaced", "telecined"):
        what = "telecined (3:2 pulldown), analysed inverse-telecined" if kind == "telecined" else "interlaced, analysed deinterlaced"
        order = scan.get("field_order")
        return whole_event(tl, "interlaced", severity, f"{what}" + (f" (field order {order})" if order in ("tff", "bff") else ""),
                           metrics={"scan": kind, "field_order": order, "interlaced_ratio": round(ratio, 4), "idet": scan.get("idet")})
    if not scan and ratio >= th.interlaced_ratio:
        return whole_event(tl, "interlaced", severity, f"{ratio:.0%} of frames are interlaced", metrics={"interlaced_ratio": round(ratio, 4)})
    return None


def check_hdr_metadata(source: dict, tl: Timeline, severity: str = "warn") -> dict | None:
    """A PQ (HDR10) title without its static metadata: no SMPTE ST 2086 mastering display (or no
    luminance in it) or no MaxCLL. Displays and tone mappers then guess the content's peak."""
    hdr = source.get("hdr") or {}
    missing = list(hdr.get("missing_metadata") or [])
    if hdr.get("transfer") != "smpte2084" or not missing:
        return None
    names = {"mastering_display": "mastering display (SMPTE ST 2086)", "max_cll": "content light level (MaxCLL/MaxFALL)"}
    return whole_event(tl, "hdr_metadata", severity, f"PQ ({hdr.get('format')}) without {' and '.join(names.get(m, m) for m in missing)}",
                       metrics={"format": hdr.get("format"), "missing": missing, "max_cll": hdr.get("max_cll"),
                                "mastering_display": hdr.get("mastering_display")})


def check_truncated(source: dict, audio_analysis: dict | None, tl: Timeline, th: QCThresholds, severity: str) -> dict | None:
    """An incomplete file: the container header announces a duration that neither the picture nor any
    audio track reaches (a transfer cut short). Decoded media ending `truncated_min_s` and
    `truncated_ratio` before the header's duration is an event (default severity fail)."""
    header = (source.get("container") or {}).get("duration_s")
    if not header:
        return None
    header = float(header)
    ends = [float(source.get("duration_s") or 0.0)]
    ends += [float(t["duration_s"]) for t in (audio_analysis or {}).get("tracks") or [] if t.get("duration_s") is not None]
    ends += [float(t["duration_s"]) for t in source.get("audio_tracks") or [] if t.get("duration_s") is not None]
    decodable = max(ends)
    missing = header - decodable
    if missing < th.truncated_min_s or missing < th.truncated_ratio * header:
        return None
    return whole_event(tl, "truncated", severity, f"the file ends at {decodable:.3f} s of the {header:.3f} s its header announces "
                       f"({decodable / header:.0%}): incomplete delivery", metrics={"decodable_s": round(decodable, 4), "header_s": round(header, 4), "missing_s": round(missing, 4)})


def audio_durations(tracks: list[dict], audio_stats: pd.DataFrame | None, audio_analysis: dict | None) -> list[dict]:
    """Per track: duration (the audio pass's measure first, then the probe's) and where it ends."""
    by_track = {}
    for tr in (audio_analysis or {}).get("tracks") or []:
        if tr.get("duration_s") is not None:
            by_track[int(tr["track"])] = (float(tr["duration_s"]), float(tr.get("start_s") or 0.0))
    if audio_stats is not None and len(audio_stats):
        for track, g in audio_stats.groupby("track"):
            if int(track) not in by_track:
                end = float((g["t_s"] + g["dur_s"]).max())
                by_track[int(track)] = (end - float(g["t_s"].min()), float(g["t_s"].min()))
    out = []
    for i, t in enumerate(tracks):
        k = int(t.get("track", i))
        dur, start = by_track.get(k, (t.get("duration_s"), 0.0))
        out.append({"track": k, "duration_s": None if dur is None else float(dur), "end_s": (start or 0.0) + (dur or 0.0)})
    return out
