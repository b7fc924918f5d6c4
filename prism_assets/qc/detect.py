"""Content QC as pure functions over the statistics the visual and audio passes already wrote.

Nothing here decodes media: inputs are `frame_stats` (one row per decoded frame), `shots`,
`audio_stats` (one row per 10 ms window per track), `audio_analysis` (loudness per track) and the
`source_video` probe. `run_qc(...)` returns the `qc.json` document: verdict, reasons, profile, events.

Event kinds (docs/schema.md "qc.json"): black, freeze, colour_bars, slate, letterbox, pillarbox,
interlaced, vfr, decode_errors, silence, digital_silence, loudness, true_peak, missing_audio,
av_duration_mismatch, video_spec, too_short.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

QC_CODE_VERSION = "qc-1"
QC_SCHEMA_VERSION = "1.0"
PROFILES_PATH = Path(__file__).resolve().parent / "profiles.yaml"
SEVERITIES = ("info", "warn", "fail")
VERDICTS = ("pass", "warn", "fail")


class QCInputError(ValueError):
    """The statistics cannot be QC'd (missing columns, empty); str() is one line."""


@dataclass(frozen=True)
class QCThresholds:
    black_min_s: float = 2.0  # blackdetect d
    black_pic_th: float = 0.98  # blackdetect pic_th
    black_pix_th: float = 0.10  # blackdetect pix_th (applied by the visual pass; recorded, and checked against it)
    black_fade_luma: float = 1.0  # edge frames of a black run brighter than its median luma by this much belong to the fade (0 = off)
    freeze_min_s: float = 2.0  # freezedetect d
    freeze_noise_db: float = -60.0  # freezedetect n, on diff/255
    freeze_median_db: float = -80.0  # the run's median diff must be below this (a held picture decodes to ~0: skip blocks)
    freeze_hold_luma: float = 1.0  # luma mean/std may drift at most this much over a freeze (0..255)
    freeze_glitch_db: float = -48.0  # an isolated frame up to this level does not end a freeze
    silence_min_s: float = 2.0  # silencedetect d
    silence_noise_db: float = -60.0  # silencedetect n (window peak, dBFS)
    digital_silence_min_s: float = 1.0
    long_silence_s: float = 30.0
    long_black_s: float = 30.0
    long_freeze_s: float = 30.0
    whole_ratio: float = 0.9
    colour_bars_min: float = 0.5
    colour_bars_min_s: float = 0.5
    bars_min_fraction: float = 0.04
    bars_min_s: float = 2.0
    interlaced_ratio: float = 0.5
    av_short_frames: float = 2.0
    av_long_s: float = 2.0
    decode_errors_fail: int = 10

    @classmethod
    def from_config(cls, cfg: dict | None) -> "QCThresholds":
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown qc thresholds: {', '.join(unknown)}")
        return cls(**{k: type(getattr(cls, k))(v) for k, v in cfg.items()})


def db_to_lin(db: float) -> float:
    return 10.0 ** (db / 20.0)


# ---------------------------------------------------------------------------------------------
# profiles


def load_profiles(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """The profiles document (profiles.yaml), with a deployment's `qc:` overrides applied:
    `default`, `providers` (merged), `thresholds` (merged), `profiles` (merged per profile)."""
    import yaml

    doc = yaml.safe_load(Path(path or PROFILES_PATH).read_text()) or {}
    ov = dict(overrides or {})
    if ov.get("profiles_file"):
        doc = yaml.safe_load(Path(ov["profiles_file"]).read_text()) or {}
    if ov.get("default"):
        doc["default"] = ov["default"]
    doc["providers"] = {**(doc.get("providers") or {}), **(ov.get("providers") or {})}
    doc["thresholds"] = {**(doc.get("thresholds") or {}), **(ov.get("thresholds") or {})}
    profiles = {k: dict(v) for k, v in (doc.get("profiles") or {}).items()}
    for name, p in (ov.get("profiles") or {}).items():
        profiles[name] = {**profiles.get(name, {}), **p}
    doc["profiles"] = profiles
    if doc.get("default") not in profiles:
        raise ValueError(f"qc default profile {doc.get('default')!r} is not defined (have: {', '.join(sorted(profiles))})")
    bad = {p: v for p, v in doc["providers"].items() if v not in profiles}
    if bad:
        raise ValueError(f"qc providers map to unknown profiles: {bad}")
    QCThresholds.from_config(doc["thresholds"])  # validate
    return doc


def select_profile(doc: dict, provider: str | None) -> tuple[str, dict, str]:
    """(name, profile, why) for a title: the provider's profile, else the default."""
    providers = doc.get("providers") or {}
    if provider and provider in providers:
        name, why = providers[provider], f"provider {provider!r}"
    else:
        name = doc["default"]
        why = "default" + (f" (provider {provider!r} has no profile)" if provider else " (no provider in the sidecar)")
    prof = dict(doc["profiles"][name])
    prof["thresholds"] = {**(doc.get("thresholds") or {}), **(prof.get("thresholds") or {})}
    return name, prof, why


# ---------------------------------------------------------------------------------------------
# helpers


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index ranges where mask is True."""
    m = np.asarray(mask, dtype=bool)
    if not m.size:
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


class Timeline:
    """Frame <-> time on the title's real frame timestamps (VFR keeps its times)."""

    def __init__(self, t_s: np.ndarray, fps: float, duration_s: float | None = None):
        self.t = np.asarray(t_s, dtype=float)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.n = len(self.t)
        last_end = float(self.t[-1] + 1.0 / self.fps) if self.n else 0.0
        self.duration = float(duration_s) if duration_s and duration_s > 0 else last_end
        self.duration = max(self.duration, last_end) if self.n else self.duration

    def start(self, i: int) -> float:
        return float(self.t[i])

    def end(self, i: int) -> float:
        """End of frame i = start of the next frame (the last frame lasts 1/fps)."""
        return float(self.t[i + 1]) if i + 1 < self.n else float(self.t[i] + 1.0 / self.fps)

    def frames_of(self, start_s: float, end_s: float) -> tuple[int | None, int | None]:
        """The frames shown during [start_s, end_s): first frame whose interval mostly lies after
        start_s, last frame starting before end_s (half a frame of slack either way)."""
        if not self.n:
            return None, None
        half = 0.5 / self.fps
        a = int(np.searchsorted(self.t, start_s - half, side="left"))
        b = int(np.searchsorted(self.t, end_s - half, side="left")) - 1
        a = min(max(a, 0), self.n - 1)
        b = min(max(b, a), self.n - 1)
        return a, b


def _event(kind: str, severity: str, detail: str, *, start_s: float, end_s: float, start_frame=None, end_frame=None,
           track=None, metrics: dict | None = None) -> dict:
    return {
        "kind": kind,
        "track": None if track is None else int(track),
        "start_s": round(float(start_s), 4),
        "end_s": round(float(end_s), 4),
        "start_frame": None if start_frame is None else int(start_frame),
        "end_frame": None if end_frame is None else int(end_frame),
        "severity": severity,
        "detail": detail,
        "metrics": metrics or {},
    }


def _frame_event(tl: Timeline, kind: str, severity: str, detail: str, a: int, b: int, metrics=None) -> dict:
    return _event(kind, severity, detail, start_s=tl.start(a), end_s=tl.end(b), start_frame=a, end_frame=b, metrics=metrics)


def _time_event(tl: Timeline, kind: str, severity: str, detail: str, start_s: float, end_s: float, track=None, metrics=None) -> dict:
    a, b = tl.frames_of(start_s, end_s)
    return _event(kind, severity, detail, start_s=start_s, end_s=end_s, start_frame=a, end_frame=b, track=track, metrics=metrics)


def _whole(tl: Timeline, kind: str, severity: str, detail: str, track=None, metrics=None) -> dict:
    return _event(kind, severity, detail, start_s=0.0, end_s=tl.duration, start_frame=0 if tl.n else None,
                  end_frame=tl.n - 1 if tl.n else None, track=track, metrics=metrics)


def _escalate(sev: str, length_s: float, long_s: float, duration: float, ratio: float) -> str:
    if length_s >= long_s or (duration > 0 and length_s >= ratio * duration):
        return "fail"
    return sev


REQUIRED_STATS = ("frame", "t_s", "black_ratio", "diff", "luma_mean", "luma_std", "colour_bars", "bar_top", "bar_bottom", "bar_left", "bar_right", "interlaced")


# ---------------------------------------------------------------------------------------------
# picture


def detect_black(stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev: str = "warn") -> list[dict]:
    """blackdetect: runs of frames with black_ratio >= pic_th lasting >= black_min_s. A fade's darkest
    frames also pass pix_th/pic_th; they are given back to the fade (edge frames whose mean luma is more
    than black_fade_luma above the run's median), so the segment is the black itself."""
    black = stats["black_ratio"].to_numpy(dtype=float) >= th.black_pic_th
    lm = stats["luma_mean"].to_numpy(dtype=float)
    out = []
    for a, b in runs(black):
        length = tl.end(b) - tl.start(a)
        if length + 1e-6 < th.black_min_s:
            continue
        if th.black_fade_luma > 0 and b > a:  # detected as blackdetect does; the edge frames of a fade go to the fade
            core = float(np.median(lm[a : b + 1]))
            while a < b and lm[a] > core + th.black_fade_luma:
                a += 1
            while b > a and lm[b] > core + th.black_fade_luma:
                b -= 1
            length = tl.end(b) - tl.start(a)
        s = _escalate(sev, length, th.long_black_s, tl.duration, th.whole_ratio)
        whole = " (the whole title)" if a == 0 and b == tl.n - 1 else ""
        out.append(_frame_event(tl, "black", s, f"black picture for {length:.2f} s{whole} (>= {th.black_pic_th:.0%} of pixels <= {th.black_pix_th:.2f})", a, b,
                                {"duration_s": round(length, 4), "frames": b - a + 1}))
    return out


def colour_bar_mask(stats: pd.DataFrame, th: QCThresholds) -> np.ndarray:
    return stats["colour_bars"].to_numpy(dtype=float) >= th.colour_bars_min


def detect_colour_bars(stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev: str = "warn") -> list[dict]:
    out = []
    for a, b in runs(colour_bar_mask(stats, th)):
        length = tl.end(b) - tl.start(a)
        if length + 1e-6 < th.colour_bars_min_s:
            continue
        where = "at the head" if a == 0 else "inside the programme"
        out.append(_frame_event(tl, "colour_bars", sev, f"colour-bar test pattern for {length:.2f} s {where}", a, b, {"duration_s": round(length, 4)}))
    return out


def detect_freeze(stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev: str = "warn", slate_sev: str = "info") -> list[dict]:
    """freezedetect, made robust. A frame is held when its mean abs luma difference to the previous
    frame is <= n (freeze_noise_db, on diff/255); an isolated frame up to freeze_glitch_db (an
    encoder refresh) between two quiet frames on each side does not break a run. A run counts as a freeze when it lasts >= freeze_min_s
    (from the first frame of the held picture, i.e. the frame before the first held difference, as
    freezedetect reports it), its median difference is <= freeze_median_db (a held picture decodes to
    ~0; camera noise and slow real motion do not) and the picture's luma mean and std stay within
    freeze_hold_luma of the first frame's (no slow drift); quiet edge frames above freeze_median_db
    (slow motion next to the held picture) are trimmed off. Black and colour-bar frames are never
    frozen (they are reported as black / colour_bars). A held picture starting within a second after colour bars
    is reported as a slate (the clock / ident card of a mezzanine head)."""
    n = tl.n
    if n < 2:
        return []
    diff = stats["diff"].to_numpy(dtype=float) / 255.0
    lm = stats["luma_mean"].to_numpy(dtype=float)
    ls = stats["luma_std"].to_numpy(dtype=float)
    excluded = (stats["black_ratio"].to_numpy(dtype=float) >= th.black_pic_th) | colour_bar_mask(stats, th)
    quiet = diff <= db_to_lin(th.freeze_noise_db)
    glitch = (diff <= db_to_lin(th.freeze_glitch_db)) & ~quiet
    # an isolated glitch frame (an encoder refresh) inside a held stretch is bridged: 2 quiet frames each side
    bridged = quiet.copy()
    for i in np.flatnonzero(glitch):
        if 2 <= i < n - 2 and quiet[i - 2 : i].all() and quiet[i + 1 : i + 3].all():
            bridged[i] = True
    bridged[0] = False  # frame 0 has no previous frame
    held = bridged & ~excluded
    bars = colour_bar_mask(stats, th)
    out = []
    strict = diff <= db_to_lin(th.freeze_median_db)
    for a, b in runs(held):
        # quiet-but-moving frames next to a held picture (slow motion, frame-rate duplicates) are not part of it
        while a < b and not strict[a]:
            a += 1
        while b > a and not strict[b]:
            b -= 1
        first = a - 1  # the held picture itself is the frame before the first held difference
        if first < 0 or excluded[first]:
            first = a
        length = tl.end(b) - tl.start(first)
        if length + 1e-6 < th.freeze_min_s:
            continue
        med = float(np.median(diff[a : b + 1]))
        if med > db_to_lin(th.freeze_median_db):
            continue
        drift = max(float(np.max(np.abs(lm[first : b + 1] - lm[first]))), float(np.max(np.abs(ls[first : b + 1] - ls[first]))))
        if drift > th.freeze_hold_luma:
            continue
        metrics = {"duration_s": round(length, 4), "frames": b - first + 1, "median_diff_db": round(20 * math.log10(max(med, 1e-9)), 1),
                   "max_diff": round(float(np.max(diff[a : b + 1]) * 255), 3), "luma_drift": round(drift, 3)}
        after_bars = bool(bars[max(0, first - int(round(tl.fps))) : first + 1].any())
        if after_bars:
            out.append(_frame_event(tl, "slate", slate_sev, f"still picture for {length:.2f} s right after colour bars (slate)", first, b, metrics))
            continue
        s = _escalate(sev, length, th.long_freeze_s, tl.duration, th.whole_ratio)
        out.append(_frame_event(tl, "freeze", s, f"picture frozen for {length:.2f} s (median frame difference {metrics['median_diff_db']} dB)", first, b, metrics))
    return out


def detect_bars(stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev_letter: str = "info", sev_pillar: str = "info") -> list[dict]:
    """Letterbox (black rows top and bottom) / pillarbox (black columns left and right) lasting >= bars_min_s,
    on non-black frames."""
    nonblack = stats["black_ratio"].to_numpy(dtype=float) < th.black_pic_th
    out = []
    for kind, c1, c2, sev in (("letterbox", "bar_top", "bar_bottom", sev_letter), ("pillarbox", "bar_left", "bar_right", sev_pillar)):
        x1, x2 = stats[c1].to_numpy(dtype=float), stats[c2].to_numpy(dtype=float)
        mask = (np.minimum(x1, x2) >= th.bars_min_fraction) & nonblack
        for a, b in runs(mask):
            length = tl.end(b) - tl.start(a)
            if length + 1e-6 < th.bars_min_s:
                continue
            f1, f2 = float(np.median(x1[a : b + 1])), float(np.median(x2[a : b + 1]))
            out.append(_frame_event(tl, kind, sev, f"{kind} for {length:.2f} s ({c1[4:]} {f1:.1%}, {c2[4:]} {f2:.1%})", a, b,
                                    {"duration_s": round(length, 4), c1: round(f1, 4), c2: round(f2, 4)}))
    return out


# ---------------------------------------------------------------------------------------------
# audio


def detect_silence(audio_stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev: str = "warn", sev_digital: str = "warn") -> list[dict]:
    """Per track: silence (window peak <= silence_noise_db for >= silence_min_s, silencedetect) and
    digital silence (exact zeros for >= digital_silence_min_s)."""
    out = []
    if audio_stats is None or not len(audio_stats):
        return out
    noise = db_to_lin(th.silence_noise_db)
    for track, g in audio_stats.groupby("track", sort=True):
        g = g.sort_values("t_s")
        t = g["t_s"].to_numpy(dtype=float)
        dur = g["dur_s"].to_numpy(dtype=float)
        track_len = float(t[-1] + dur[-1] - t[0]) if len(t) else 0.0
        for kind, mask, min_s, level in (
            ("silence", g["peak"].to_numpy(dtype=float) <= noise, th.silence_min_s, f"below {th.silence_noise_db:g} dBFS"),
            ("digital_silence", g["digital_zero"].to_numpy(dtype=bool), th.digital_silence_min_s, "exact digital zeros"),
        ):
            for a, b in runs(mask):
                start, end = float(t[a]), float(t[b] + dur[b])
                length = end - start
                if length + 1e-6 < min_s:
                    continue
                whole = a == 0 and b == len(t) - 1
                s = _escalate(sev if kind == "silence" else sev_digital, length, th.long_silence_s, track_len, th.whole_ratio)
                detail = f"track {int(track)}: {length:.2f} s {level}" + (" (the whole track)" if whole else "")
                out.append(_time_event(tl, kind, s, detail, start, end, track=int(track), metrics={"duration_s": round(length, 3)}))
    return out


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
            out.append(_whole(tl, "loudness", sev_loud, f"track {track}: {label} {value:.1f} LUFS outside {target:g} +-{tol:g}{note}", track=track,
                              metrics={"measured_lufs": round(value, 2), "target_lufs": target, "tolerance_lu": tol, "measure": measure}))
        tp = tr.get("true_peak_dbtp")
        if tp is not None and math.isfinite(float(tp)) and float(tp) > tp_max + 1e-9:
            out.append(_whole(tl, "true_peak", sev_tp, f"track {track}: true peak {float(tp):.1f} dBTP above {tp_max:g} dBTP", track=track,
                              metrics={"true_peak_dbtp": round(float(tp), 2), "max_dbtp": tp_max}))
    return out


# ---------------------------------------------------------------------------------------------
# technical


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
        out.append(_whole(tl, "video_spec", sv("video_spec"), "; ".join(problems), metrics={"width": w, "height": h, "fps": round(fps, 4)}))
    # too short
    min_dur = float(profile.get("min_duration_s", 0) or 0)
    if tl.duration < min_dur:
        out.append(_whole(tl, "too_short", sv("too_short"), f"title lasts {tl.duration:.3f} s ({tl.n} frame{'s' if tl.n != 1 else ''}), shorter than {min_dur:g} s",
                          metrics={"duration_s": round(tl.duration, 4), "frames": tl.n}))
    # interlacing
    if "interlaced" in stats and tl.n:
        ratio = float(stats["interlaced"].to_numpy(dtype=bool).mean())
        if ratio >= th.interlaced_ratio and not video.get("allow_interlaced", False):
            out.append(_whole(tl, "interlaced", sv("interlaced"), f"{ratio:.0%} of frames are interlaced", metrics={"interlaced_ratio": round(ratio, 4)}))
    # VFR
    if source.get("is_vfr") or "vfr" in (source.get("flags") or []):
        if not video.get("allow_vfr", False):
            out.append(_whole(tl, "vfr", sv("vfr"), f"variable frame rate (average {fps:.3f} fps)", metrics={"fps": round(fps, 4)}))
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
        out.append(_time_event(tl, "decode_errors", s, detail, start, max(end, start), metrics={"decode_errors": errors, "corrupt_frames": corrupt, "error_times_s": times[:20]}))
    # audio presence and A/V duration
    tracks = list(source.get("audio_tracks") or [])
    no_audio = (not tracks) or bool((audio_analysis or {}).get("no_audio"))
    if no_audio:
        if (profile.get("audio") or {}).get("required", True):
            out.append(_whole(tl, "missing_audio", sv("missing_audio"), "the title has no audio track"))
        return out
    vdur = float(source.get("duration_s") or tl.duration)
    frame = 1.0 / fps if fps > 0 else 1.0 / 25
    for tr in _audio_durations(tracks, audio_stats, audio_analysis):
        adur = tr["duration_s"]
        if adur is None:
            continue
        if adur < vdur - th.av_short_frames * frame - 1e-6:
            short = vdur - adur
            out.append(_time_event(tl, "av_duration_mismatch", sv("av_duration_mismatch"),
                                   f"track {tr['track']}: audio ends {short:.3f} s ({short / frame:.1f} frames) before the picture ({adur:.3f} s vs {vdur:.3f} s)",
                                   max(0.0, tr["end_s"]), vdur, track=tr["track"], metrics={"audio_s": round(adur, 4), "video_s": round(vdur, 4)}))
        elif adur > vdur + th.av_long_s + 1e-6:
            out.append(_whole(tl, "av_duration_mismatch", sv("av_duration_mismatch"),
                              f"track {tr['track']}: audio lasts {adur - vdur:.3f} s longer than the picture ({adur:.3f} s vs {vdur:.3f} s)",
                              track=tr["track"], metrics={"audio_s": round(adur, 4), "video_s": round(vdur, 4)}))
    return out


def _audio_durations(tracks: list[dict], audio_stats: pd.DataFrame | None, audio_analysis: dict | None) -> list[dict]:
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


# ---------------------------------------------------------------------------------------------
# verdict


def verdict_of(events: list[dict]) -> str:
    sev = {e["severity"] for e in events}
    return "fail" if "fail" in sev else "warn" if "warn" in sev else "pass"


def reasons_of(events: list[dict]) -> list[str]:
    """One line per (kind, severity) that drives the verdict (warn and fail), worst first."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in events:
        if e["severity"] in ("warn", "fail"):
            groups.setdefault((e["severity"], e["kind"]), []).append(e)
    out = []
    for (sev, kind), evs in sorted(groups.items(), key=lambda kv: (0 if kv[0][0] == "fail" else 1, kv[0][1])):
        if len(evs) == 1:
            out.append(f"{sev}: {kind}: {evs[0]['detail']}")
        else:
            total = sum(e["end_s"] - e["start_s"] for e in evs)
            out.append(f"{sev}: {kind}: {len(evs)} events, {total:.2f} s in all (first: {evs[0]['detail']})")
    return out


def run_qc(frame_stats: pd.DataFrame, shots: pd.DataFrame | None, audio_stats: pd.DataFrame | None, audio_analysis: dict | None,
           source_video: dict, profile: dict, profile_name: str = "custom", profile_why: str = "") -> dict:
    """The qc.json document of one title (without producer)."""
    missing = [c for c in REQUIRED_STATS if c not in frame_stats.columns]
    if missing:
        raise QCInputError(f"frame_stats lacks columns {', '.join(missing)} (re-run visual_pass)")
    if not len(frame_stats):
        raise QCInputError("frame_stats has no frames")
    th = QCThresholds.from_config(profile.get("thresholds"))
    severity = {k: v for k, v in (profile.get("severity") or {}).items()}
    bad = {k: v for k, v in severity.items() if v not in SEVERITIES}
    if bad:
        raise QCInputError(f"unknown severities in the qc profile: {bad}")
    sv = lambda k: severity.get(k, "warn")  # noqa: E731
    pass_meta = (frame_stats.attrs.get("producer") or {}).get("pass_meta") or {}
    vis_pix = (pass_meta.get("config") or {}).get("black_pix_th")
    if vis_pix is not None and abs(float(vis_pix) - th.black_pix_th) > 1e-9:
        raise QCInputError(f"qc black_pix_th {th.black_pix_th} differs from the visual pass's {vis_pix}: set visual.pass.black_pix_th instead")
    stats = frame_stats.sort_values("frame").reset_index(drop=True)
    fps = float(pass_meta.get("fps") or source_video.get("fps") or 25.0)
    tl = Timeline(stats["t_s"].to_numpy(dtype=float), fps, source_video.get("duration_s"))
    events: list[dict] = []
    events += detect_black(stats, tl, th, sv("black"))
    events += detect_freeze(stats, tl, th, sv("freeze"), sv("slate"))
    events += detect_colour_bars(stats, tl, th, sv("colour_bars"))
    events += detect_bars(stats, tl, th, sv("letterbox"), sv("pillarbox"))
    events += detect_silence(audio_stats, tl, th, sv("silence"), sv("digital_silence"))
    events += check_loudness(audio_analysis, profile, tl, sv("loudness"), sv("true_peak"))
    events += check_technical(stats, tl, source_video, audio_stats, audio_analysis, profile, th, pass_meta, severity)
    # every event lies inside the title
    for e in events:
        e["start_s"] = round(min(max(0.0, e["start_s"]), tl.duration), 4)
        e["end_s"] = round(min(max(e["start_s"], e["end_s"]), tl.duration), 4)
    events.sort(key=lambda e: (e["start_s"], e["kind"], -1 if e["track"] is None else e["track"]))
    verdict = verdict_of(events)
    counts: dict[str, int] = {}
    for e in events:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    doc = {
        "schema_version": QC_SCHEMA_VERSION,
        "title_id": source_video.get("title_id"),
        "verdict": verdict,
        "reasons": reasons_of(events),
        "profile": {"name": profile_name, "selected_by": profile_why, "description": profile.get("description"),
                    "loudness": profile.get("loudness"), "video": profile.get("video"), "thresholds": asdict(th)},
        "duration_s": round(tl.duration, 4),
        "frames": tl.n,
        "fps": round(fps, 6),
        "event_counts": counts,
        "events": events,
    }
    return _plain(doc)


def _plain(obj):
    """Plain Python types only (no numpy scalars): the document goes into JSON and Dagster metadata."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj
