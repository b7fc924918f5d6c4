"""Asset checks of the localization outputs (evaluated in the step, per title, on the value just produced)."""

from __future__ import annotations

import math

from dagster import AssetCheckSeverity

from ..core import checks
from .roles import MIN_SPEECH_S, ROLES


def _subs_consistent(doc: dict):
    problems = []
    labels = [t["label"] for t in doc["tracks"] if t["label"]]
    if len(labels) != len(set(labels)):
        problems.append("two tracks share an export label")
    for t in doc["tracks"]:
        if t["parsed"] and t["error"]:
            problems.append(f"{t['track']}: parsed with an error")
        if t["label"] and not t["cues"]:
            problems.append(f"{t['track']}: a label without cues")
    return not problems, {"tracks": len(doc["tracks"]), "problems": problems[:10]}


def _subs_all_read(doc: dict):
    unread = [t["file"] or t["track"] for t in doc["tracks"] if t["error"]]
    image = [t["track"] for t in doc["tracks"] if not t["parsed"] and not t["error"]]
    return not unread, {"unreadable": unread[:20], "image_tracks_not_parsed": image}


SUBTITLE_RULES = (
    checks.CheckRule("subtitle_tracks_consistent", "Every parsed track with cues has its own export label; unreadable tracks carry their error.",
                     _subs_consistent, blocking=True),
    checks.CheckRule("subtitle_files_readable", "Every sidecar subtitle file and text stream was read (image streams are listed, not read).",
                     _subs_all_read, severity=AssetCheckSeverity.WARN),
)


def _finite_or_none(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and math.isfinite(x))


def _loc_valid(doc: dict):
    problems = []
    originals = [a["track"] for a in doc["audio_tracks"] if a["role"] == "original"]
    if len(originals) > 1:
        problems.append(f"{len(originals)} original tracks")
    for a in doc["audio_tracks"]:
        if a["role"] not in ROLES:
            problems.append(f"track {a['track']}: role {a['role']!r}")
        if not a["role_evidence"]:  # unknown too: it says why nothing fitted
            problems.append(f"track {a['track']}: role {a['role']} without evidence")
        if a["language"] is not None and a["speech_s"] < MIN_SPEECH_S:
            problems.append(f"track {a['track']}: a language decided on {a['speech_s']} s of speech")
        s = a.get("sync") or {}
        if not all(_finite_or_none(s.get(k)) for k in ("offset_ms", "drift_ms_per_hour", "confidence")):
            problems.append(f"track {a['track']}: sync values not finite")
    return not problems, {"audio_tracks": len(doc["audio_tracks"]), "problems": problems[:10]}


def _no_guess(doc: dict):
    guessed = [a["track"] for a in doc["audio_tracks"] if a["language"] is not None and (a["speech_s"] < MIN_SPEECH_S or a["silent"])]
    return not guessed, {"languages_without_speech": guessed, "min_speech_s": MIN_SPEECH_S}


def _dubs_in_sync(doc: dict):
    bad = [a["track"] for a in doc["audio_tracks"] if (a.get("sync") or {}).get("out_of_limits")]
    return not bad, {"out_of_sync_tracks": bad}


def _subtitles_clean(doc: dict):
    failing = sorted({e["kind"] for e in doc["events"] if e["kind"].startswith("subtitle_") and e["severity"] == "fail"})
    return not failing, {"failing_kinds": failing}


LOCALIZATION_RULES = (
    checks.CheckRule("roles_valid", "One original at most; every role is known and has its evidence; sync values are finite.", _loc_valid,
                     blocking=True),
    checks.CheckRule("no_language_without_speech", f"No track gets a language without {MIN_SPEECH_S:.0f} s of speech (null: no guess).", _no_guess),
    checks.CheckRule("dubs_in_sync", "Every aligned track is within the dub-sync limits at the start and the end of the title.", _dubs_in_sync,
                     severity=AssetCheckSeverity.WARN),
    checks.CheckRule("subtitles_pass_qc", "No subtitle track has a failing finding (wrong language, offset, drift, another title's text, "
                     "overlaps, reversed cues).", _subtitles_clean, severity=AssetCheckSeverity.WARN),
)


def _turns_valid(doc: dict):
    bad = [t["track"] for t in doc["tracks"] for x in t["turns"] if not (x["end_s"] >= x["start_s"] >= 0)]
    stated = bool(doc["model"]["configured"]) or bool(doc.get("note"))
    return not bad and stated, {"configured": doc["model"]["configured"], "bad_turns_tracks": sorted(set(bad))[:10]}


SPEAKER_RULES = (
    checks.CheckRule("turns_valid_or_stated", "Turns are ordered in time; without a model the output says that none is configured.",
                     _turns_valid),
)
