"""Content QC as pure functions over the statistics the visual and audio passes already wrote.

Nothing here decodes media: inputs are `frame_stats` (one row per decoded frame), `shots`,
`audio_stats` (one row per 10 ms window per track), `audio_analysis` (loudness per track) and the
`source_video` probe. `run_qc(...)` returns the `qc.json` document: verdict, reasons, profile, events.

Event kinds (docs/schema.md "qc.json"): black, freeze, colour_bars, slate, letterbox, pillarbox,
interlaced, hdr_metadata, vfr, decode_errors, silence, digital_silence, loudness, true_peak, missing_audio,
av_duration_mismatch, video_spec, too_short, truncated.
"""


from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from .events import SEVERITIES, Timeline, escalate, frame_event, reasons_of, runs, time_event, validate_events, verdict_of
from .technical import check_loudness, check_technical
from .thresholds import QCThresholds, db_to_lin

# 4: a freeze bridges codec refreshes (key frames) only, not steps on predicted frames (motion); 3: freezes held against a
# reference frame (slow pans are not freezes); 2: truncated files (header duration vs decodable media)
QC_CODE_VERSION = "qc-4"
QC_SCHEMA_VERSION = "1.0"


class QCInputError(ValueError):
    """The statistics cannot be QC'd (missing columns, empty); str() is one line."""




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
        s = escalate(sev, length, th.long_black_s, tl.duration, th.whole_ratio)
        whole = " (the whole title)" if a == 0 and b == tl.n - 1 else ""
        out.append(frame_event(tl, "black", s, f"black picture for {length:.2f} s{whole} (>= {th.black_pic_th:.0%} of pixels <= {th.black_pix_th:.2f})", a, b,
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
        out.append(frame_event(tl, "colour_bars", sev, f"colour-bar test pattern for {length:.2f} s {where}", a, b, {"duration_s": round(length, 4)}))
    return out


def refreshes(stats: pd.DataFrame, spans: list[tuple[int, int]], t_s: np.ndarray, gap_s: float) -> list[tuple[int, int]]:
    """The glitch spans a codec refresh explains, which a freeze bridges: a held picture re-coded by
    the encoder (a key frame) steps once and stays the same picture, however often the GOP repeats.
    With `key_frame` in the statistics: spans at or next to a key frame (from one frame before to two
    after: open GOPs show a refresh in the B-frames just before their I-frame); a step on an ordinary
    predicted frame is the encoder sending a change of the picture (a slow zoom over a still updated
    now and then), which moves freezedetect's reference too. Without it, or where most frames are key
    frames (intra-only codecs: every frame is coded afresh, so a key frame tells nothing): spans with
    no other within `gap_s` seconds either side (steps in a series are a picture changing in steps)."""
    key = stats["key_frame"].to_numpy(dtype=bool) if "key_frame" in stats else None
    if key is not None and key.mean() < 0.5:
        return [(a, b) for a, b in spans if key[max(0, a - 1):b + 3].any()]
    out = []
    for i, (a, b) in enumerate(spans):
        if i and t_s[a] - t_s[spans[i - 1][1]] < gap_s:
            continue
        if i + 1 < len(spans) and t_s[spans[i + 1][0]] - t_s[b] < gap_s:
            continue
        out.append((a, b))
    return out


def still_against_reference(stats: pd.DataFrame, th: QCThresholds) -> np.ndarray:
    """Frames within freezedetect's noise of the held reference frame (the visual pass's `ref_diff`):
    a slow pan or zoom over a still picture changes so little from frame to frame that consecutive
    differences look held, but it drifts away from the reference and resets it, which ends the run
    as it does freezedetect's. An isolated glitch that is a step (up to 2 frames up to
    freeze_glitch_db, two still frames each side, a codec refresh: `refreshes`) is bridged as above.
    Statistics without the column (made before it existed) keep every frame."""
    if "ref_diff" not in stats:
        return np.ones(len(stats), dtype=bool)
    ref = stats["ref_diff"].to_numpy(dtype=float) / 255.0
    step = stats["diff"].to_numpy(dtype=float) / 255.0
    still = ref <= db_to_lin(th.freeze_noise_db)
    # a step (the frame differs from the previous one by most of its difference to the reference: an
    # encoder refresh, a re-quantised key frame) is bridged; a drift (small steps adding up: a slow
    # move) is not, nor is a step the codec sent on a predicted frame (a move updated in steps)
    glitch = (ref <= db_to_lin(th.freeze_glitch_db)) & ~still & (step >= 0.5 * ref)
    out = still.copy()
    cands = [(a, b) for a, b in runs(glitch) if b - a < 2 and 2 <= a and b < len(ref) - 2 and still[a - 2:a].all() and still[b + 1:b + 3].all()]
    for a, b in refreshes(stats, cands, stats["t_s"].to_numpy(dtype=float), th.freeze_glitch_gap_s):
        out[a:b + 1] = True
    return out


def detect_freeze(stats: pd.DataFrame, tl: Timeline, th: QCThresholds, sev: str = "warn", slate_sev: str = "info") -> list[dict]:
    """freezedetect, made robust. A frame is held when its mean abs luma difference to the previous
    frame is <= n (freeze_noise_db, on diff/255); an isolated frame up to freeze_glitch_db (an
    encoder refresh: `refreshes`) between two quiet frames on each side does not break a run (a step
    on a predicted frame does: a slow move the encoder updates now and then). A run counts as a freeze when it lasts >= freeze_min_s
    (from the first frame of the held picture, i.e. the frame before the first held difference, as
    freezedetect reports it), its median difference is <= freeze_median_db (a held picture decodes to
    ~0; camera noise and slow real motion do not), every frame stays within freezedetect's noise of the
    held reference frame (`still_against_reference`: slow pans and zooms), and the picture's luma mean and std stay within
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
    # an isolated glitch frame (an encoder refresh) inside a held stretch is bridged: 2 quiet frames each side, a
    # codec refresh (`refreshes`: at a key frame; steps on predicted frames are the picture changing)
    bridged = quiet.copy()
    cands = [(i, i) for i in np.flatnonzero(glitch).tolist() if 2 <= i < n - 2 and quiet[i - 2 : i].all() and quiet[i + 1 : i + 3].all()]
    for i, _ in refreshes(stats, cands, tl.t, th.freeze_glitch_gap_s):
        bridged[i] = True
    bridged[0] = False  # frame 0 has no previous frame
    held = bridged & ~excluded & still_against_reference(stats, th)
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
            out.append(frame_event(tl, "slate", slate_sev, f"still picture for {length:.2f} s right after colour bars (slate)", first, b, metrics))
            continue
        s = escalate(sev, length, th.long_freeze_s, tl.duration, th.whole_ratio)
        out.append(frame_event(tl, "freeze", s, f"picture frozen for {length:.2f} s (median frame difference {metrics['median_diff_db']} dB)", first, b, metrics))
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
            out.append(frame_event(tl, kind, sev, f"{kind} for {length:.2f} s ({c1[4:]} {f1:.1%}, {c2[4:]} {f2:.1%})", a, b,
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
                s = escalate(sev if kind == "silence" else sev_digital, length, th.long_silence_s, track_len, th.whole_ratio)
                detail = f"track {int(track)}: {length:.2f} s {level}" + (" (the whole track)" if whole else "")
                out.append(time_event(tl, kind, s, detail, start, end, track=int(track), metrics={"duration_s": round(length, 3)}))
    return out




def run_qc(frame_stats: pd.DataFrame, shots: pd.DataFrame | None, audio_stats: pd.DataFrame | None, audio_analysis: dict | None,
           source_video: dict, profile: dict, profile_name: str = "custom", profile_why: str = "",
           extra_events: dict[str, list] | None = None) -> dict:
    """The qc.json document of one title (without producer). `extra_events` are the events other
    signals contribute (signal output -> events), validated and joined to the verdict."""
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
    for source, contributed in (extra_events or {}).items():
        events += validate_events(contributed, source)
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
