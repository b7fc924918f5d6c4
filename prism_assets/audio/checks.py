"""Asset checks of the audio outputs (evaluated in the step, per title, on the value just produced)."""

import math

import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity

from ..core import checks
from ..core.artifacts import Bundle

TIME_TOL = 0.05  # s: timestamps may sit this far past a track's end (codec padding)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _stats_times(df: pd.DataFrame):
    tracks = {t["track"]: t for t in df.attrs.get("producer", {}).get("tracks", [])}
    problems = []
    for tr, g in df.groupby("track"):
        t = g["t_s"].to_numpy()
        info = tracks.get(int(tr))
        if len(t) > 1 and not bool(np.all(np.diff(t) > 0)):
            problems.append(f"track {tr}: t_s not increasing")
        if info and info.get("start_s") is not None:
            if t[0] < info["start_s"] - 1e-6 or t[-1] > info["start_s"] + info["duration_s"] + TIME_TOL:
                problems.append(f"track {tr}: windows outside [{info['start_s']}, {info['start_s'] + info['duration_s']}]")
    return not problems, {"rows": len(df), "tracks": int(df["track"].nunique()) if len(df) else 0, "problems": problems[:10]}


def _stats_finite(df: pd.DataFrame):
    cols = ["peak", "rms", "dur_s"]
    bad = {c: int((~np.isfinite(df[c].to_numpy(dtype=float))).sum()) for c in cols}
    neg = int((df["peak"] < 0).sum() + (df["rms"] < 0).sum())
    zero_ok = bool(np.all(df["digital_zero"].to_numpy() == (df["peak"].to_numpy() == 0))) if len(df) else True
    return sum(bad.values()) == 0 and neg == 0 and zero_ok, {"non_finite": bad, "negative": neg, "digital_zero_consistent": zero_ok}


def _stats_tracks(df: pd.DataFrame):
    p = df.attrs.get("producer", {})
    want, got = p.get("expected_tracks"), len(p.get("tracks", []))
    decoded = [t["track"] for t in p.get("tracks", []) if t.get("decoded")]
    return (want is None or want == got) and len(decoded) == got, {"tracks": got, "probed_tracks": want, "decoded_tracks": decoded}


STATS_RULES = (
    checks.CheckRule("windows_monotonic_in_duration", "Per track, window times strictly increase and lie inside the track.", _stats_times, blocking=True),
    checks.CheckRule("stats_finite", "Peak, RMS and duration are finite and non-negative; digital_zero == (peak == 0).", _stats_finite),
    checks.CheckRule("every_track_decoded", "Every audio stream of the probe was decoded.", _stats_tracks, severity=AssetCheckSeverity.WARN),
)


def _loud_ok(df: pd.DataFrame):
    problems = []
    for t in df.attrs.get("producer", {}).get("tracks", []):
        if not t.get("decoded"):
            continue
        if t.get("silent"):
            if t.get("integrated_lufs") is not None:
                problems.append(f"track {t['track']}: silent but has a loudness")
        elif not all(_finite(t.get(k)) for k in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs")):
            problems.append(f"track {t['track']}: loudness not finite")
        elif t["true_peak_dbtp"] < t["sample_peak_dbfs"] - 1e-6:
            problems.append(f"track {t['track']}: true peak below sample peak")
    return not problems, {"problems": problems}


def _loud_times(df: pd.DataFrame):
    ok = all(bool(np.all(np.diff(g["t_s"].to_numpy()) > 0)) for _, g in df.groupby("track")) if len(df) else True
    finite = bool(np.all(np.isfinite(df["power"].to_numpy()) & (df["power"].to_numpy() >= 0))) if len(df) else True
    return ok and finite, {"blocks": len(df), "monotonic": ok, "finite": finite}


LOUD_RULES = (
    checks.CheckRule("loudness_finite", "Every non-silent track has finite integrated loudness and peaks (true peak >= sample peak); silent tracks are null.", _loud_ok),
    checks.CheckRule("blocks_monotonic_finite", "400 ms block powers are finite, non-negative, in time order.", _loud_times),
)


def _speech_files(b: Bundle):
    tracks = b.main.get("tracks", [])
    problems = []
    for t in tracks:
        f = b.files.get(t["file"]) if isinstance(b.files, dict) else None
        if f is None:
            problems.append(f"track {t['track']}: {t['file']} missing")
            continue
        expect = t["duration_s"] * 16000
        if abs(t["samples"] - expect) > max(0.01 * expect, 1600):
            problems.append(f"track {t['track']}: {t['samples']} samples for {t['duration_s']:.2f}s")
        dialogue = t.get("dialogue_file") or t["file"]
        if dialogue != t["file"] and (not isinstance(b.files, dict) or b.files.get(dialogue) is None):
            problems.append(f"track {t['track']}: dialogue file {dialogue} missing")
    return not problems, {"tracks": len(tracks), "problems": problems}


SPEECH_RULES = (
    checks.CheckRule("speech_file_per_track", "One 16 kHz mono WAV per decoded track, as long as the track (±1 %); its dialogue WAV (the centre) when it names one.",
                     _speech_files, blocking=True),
)


def _transcript_tracks(t: dict) -> list[dict]:
    return t.get("tracks", []) or []


def _tr_times(t: dict):
    problems = []
    for tr in _transcript_tracks(t):
        lo = (tr.get("start_s") or 0.0) - 1e-6
        hi = (tr.get("start_s") or 0.0) + (tr.get("duration_s") or 0.0) + TIME_TOL
        prev = -1e9
        for s in tr["segments"]:
            if not (lo <= s["start"] <= s["end"] <= hi):
                problems.append(f"track {tr['track']}: segment {s['start']}-{s['end']} outside [{lo:.2f}, {hi:.2f}] or reversed")
            if s["start"] < prev - 1e-6:
                problems.append(f"track {tr['track']}: segment at {s['start']} before the previous one")
            prev = s["start"]
            wprev = -1e9
            for w in s["words"]:
                if w["start"] > w["end"] or w["start"] < wprev - 1e-6:
                    problems.append(f"track {tr['track']}: word {w['word']!r} at {w['start']} not monotonic")
                wprev = w["start"]
    return not problems, {"problems": problems[:10]}


def _tr_words_inside(t: dict):
    bad = [f"track {tr['track']}: {w['word']!r} {w['start']}-{w['end']} outside {s['start']}-{s['end']}"
           for tr in _transcript_tracks(t) for s in tr["segments"] for w in s["words"]
           if w["start"] < s["start"] - 1e-6 or w["end"] > s["end"] + 1e-6]
    return not bad, {"outside": bad[:10]}


def _tr_no_overlap(t: dict):
    bad = [f"track {tr['track']}: {a['end']} > {b['start']}" for tr in _transcript_tracks(t)
           for a, b in zip(tr["segments"], tr["segments"][1:]) if a["end"] > b["start"] + 1e-6]
    return not bad, {"overlaps": bad[:10]}


def _tr_language(t: dict):
    missing = [tr["track"] for tr in _transcript_tracks(t) if tr["segments"] and not tr.get("language")]
    return not missing, {"languages": {str(tr["track"]): tr.get("language") for tr in _transcript_tracks(t)}, "missing": missing}


TRANSCRIPT_RULES = (
    checks.CheckRule("timestamps_monotonic_in_duration", "Segment and word times increase and lie inside the track's duration.", _tr_times, blocking=True),
    checks.CheckRule("words_inside_segments", "Every word lies inside its segment.", _tr_words_inside),
    checks.CheckRule("segments_non_overlapping", "Segments of a track do not overlap.", _tr_no_overlap),
    checks.CheckRule("language_present", "Every track with speech has a language.", _tr_language),
)


def _an_loudness(a: dict):
    problems = []
    for t in a["tracks"]:
        vals = [t.get(k) for k in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs")]
        if t["silent"]:
            continue
        if not all(_finite(v) for v in vals):
            problems.append(f"track {t['track']}: loudness not finite and not flagged silent")
    return not problems, {"problems": problems, "no_audio": a["no_audio"]}


def _an_segments(a: dict):
    problems = []
    for t in a["tracks"]:
        segs = t["segments"]
        for s in segs:
            if s["kind"] not in ("speech", "music", "silence") or not s["end_s"] > s["start_s"]:
                problems.append(f"track {t['track']}: bad segment {s}")
        for x, y in zip(segs, segs[1:]):
            if x["end_s"] > y["start_s"] + 1e-6:
                problems.append(f"track {t['track']}: overlap at {y['start_s']}")
        if segs and (t["start_s"] is not None) and (segs[0]["start_s"] < t["start_s"] - 1e-6 or segs[-1]["end_s"] > t["start_s"] + t["duration_s"] + TIME_TOL):
            problems.append(f"track {t['track']}: segments outside the track")
    return not problems, {"problems": problems[:10]}


def _an_language(a: dict):
    missing = [t["track"] for t in a["tracks"] if t["speech_ratio"] and t["speech_ratio"] > 0.05 and not t["detected_language"]]
    return not missing, {"missing": missing}


def _an_tag(a: dict):
    mism = [{"track": t["track"], "tag": t["language_tag"], "detected": t["detected_language"]} for t in a["tracks"] if t.get("language_mismatch")]
    return not mism, {"mismatches": mism}


CHANNEL_EVENT_KINDS = ("channel_silent", "channel_swap", "downmix_mismatch")


def _an_events(a: dict):
    """audio.json's QC events (channels.py): known kinds and severities, on a track of the document, start <= end."""
    tracks = {t["track"] for t in a["tracks"]}
    bad = [f"{e.get('kind')} on track {e.get('track')}" for e in a.get("events") or []
           if e.get("kind") not in CHANNEL_EVENT_KINDS or e.get("severity") not in ("info", "warn", "fail") or e.get("track") not in tracks
           or not (_finite(e.get("start_s")) and _finite(e.get("end_s")) and e["start_s"] <= e["end_s"])]
    counts: dict[str, int] = {}
    for e in a.get("events") or []:
        counts[e.get("kind")] = counts.get(e.get("kind"), 0) + 1
    return not bad, {"events": counts, "bad": bad[:10]}


ANALYSIS_RULES = (
    checks.CheckRule("loudness_finite", "Loudness values are finite, or null with silent: true.", _an_loudness),
    checks.CheckRule("segments_non_overlapping", "Speech/music/silence segments are well formed, in order, non-overlapping, inside the track.", _an_segments),
    checks.CheckRule("language_present", "Every track with speech (> 5 %) has a detected language.", _an_language),
    checks.CheckRule("language_tag_matches", "The container language tag agrees with the detected language.", _an_tag, severity=AssetCheckSeverity.WARN),
    checks.CheckRule("channel_events_valid", "Channel and downmix QC events have known kinds and severities, lie on a track, start <= end.", _an_events),
)
