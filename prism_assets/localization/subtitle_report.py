"""Subtitle timing and style QC of every parsed subtitle track of a title, against its picture (cuts,
frame rate) and its sound (speech of the matching audio track, the transcript).

Per track: the cue rules of subtitle_qc.py (profile per provider), the language of its text against
the declared one, coverage of the reference track's speech (not for forced tracks, which cover only
foreign dialogue), offset and drift of the cues against that speech, and for a track in the
original's language, its text against the transcript (a subtitle file of another title stands out).
The reference track is the audio track in the subtitle's language, else the original.
"""

from __future__ import annotations

from ..core.language import base_language
from .subtitle_qc import check_cues, limits_for, summary
from .subtitle_speech import coverage, language_mismatch, text_match, timing
from .subtitles import Cue


def reference_track(sub_lang: str | None, audio: list[dict], original: int | None) -> tuple[dict | None, str]:
    """(the audio track whose speech the subtitles are timed against, why)."""
    want = base_language(sub_lang)
    if want:
        for t in audio:
            if t["role"] in ("original", "dub") and base_language(t["language"] or t["container_language"]) == want:
                return t, f"audio track {t['track']} speaks {want}"
    for t in audio:
        if t["track"] == original:
            return t, f"the original track {t['track']} (no audio track in {want or 'the subtitle language'})"
    return None, "no audio track with speech"


def words_of(transcript_track: dict) -> list[tuple[float, float, str]]:
    return [(w["start"], w["end"], w["word"]) for s in transcript_track.get("segments", []) for w in s.get("words", [])
            if w.get("start") is not None and w.get("end") is not None]


def picture_duration(audio: list[dict]) -> float | None:
    """The picture's duration as the audio profiles carry it (`duration_s - duration_minus_picture_s`)."""
    for a in audio:
        if a.get("duration_s") is not None and a.get("duration_minus_picture_s") is not None:
            return round(float(a["duration_s"]) - float(a["duration_minus_picture_s"]), 3)
    return None


def clamp(events: list[dict], duration_s: float | None, start: str = "start_s", end: str = "end_s") -> list[dict]:
    """Event times inside the title (0..duration): a finding about a cue past the end is placed at the
    end (its real times stay in the detail), so the title's QC events all lie inside the title."""
    if not duration_s:
        return events
    for e in events:
        e[start] = min(max(0.0, float(e[start])), float(duration_s))
        e[end] = min(max(float(e[start]), float(e[end])), float(duration_s))
    return events


def report(track: dict, cues: list[Cue], *, fps: float, profile: dict, cuts: list[float], audio: list[dict], original: int | None,
           transcripts: dict[int, dict], lim: dict, duration_s: float | None = None) -> dict:
    """The QC of one subtitle track: `events` (per cue and per track) and the measurements. The
    title's `duration_s` (else the picture duration the audio profiles carry) flags cues past its end."""
    declared = base_language(track.get("language"))
    wrong, text_lang, why = language_mismatch(declared, " ".join(c.text for c in cues))
    language = declared or text_lang
    duration_s = duration_s or picture_duration(audio)
    evs = check_cues(cues, language=language, fps=fps, profile=profile, cuts=cuts, duration_s=duration_s)
    events: list[dict] = []
    out = {"language": language, "declared_language": track.get("language"), "text_language": text_lang, "text_language_evidence": why,
           "limits": limits_for(profile, language), "summary": summary(evs, cues)}
    if wrong:
        events.append({"kind": "wrong_language", "severity": "fail", "start_s": cues[0].start, "end_s": cues[-1].end, "value": None,
                       "limit": None, "detail": f"declared {declared}, the text is {text_lang} ({why})"})
    ref, why = reference_track(language, audio, original)
    out["reference_track"] = None if ref is None else ref["track"]
    out["reference"] = why
    if ref is not None:
        tr = transcripts.get(ref["track"], {})
        speech = [(r["start_s"], r["end_s"]) for r in tr.get("speech_regions") or []]
        if not track.get("forced"):
            cov = coverage(cues, speech, float(lim.get("min_uncovered_s", 2.0)))
            out["coverage"] = cov
            for g in cov["uncovered"]:
                events.append({"kind": "speech_not_covered", "severity": "warn", "start_s": g["start_s"], "end_s": g["end_s"],
                               "value": round(g["end_s"] - g["start_s"], 2), "limit": lim.get("min_uncovered_s", 2.0),
                               "detail": f"{g['end_s'] - g['start_s']:.1f} s of speech on track {ref['track']} without a cue"})
        tm = timing(cues, speech)
        out["timing"] = tm
        events += timing_events(tm, cues, ref["track"], lim)
        ref_lang = base_language(ref["language"] or ref["container_language"])
        if ref_lang and language and ref_lang == base_language(language):
            tm_words = words_of(tr)
            match = text_match(cues, tm_words)
            out["text_match"] = match
            if match["matched_ratio"] is not None and match["cue_words"] >= 20 and len(tm_words) >= 20 \
                    and match["matched_ratio"] < float(lim.get("min_text_match", 0.2)):
                events.append({"kind": "text_mismatch", "severity": "fail", "start_s": cues[0].start, "end_s": cues[-1].end,
                               "value": match["matched_ratio"], "limit": lim.get("min_text_match", 0.2),
                               "detail": f"{match['matched_ratio']:.0%} of the cue words are spoken on track {ref['track']}: "
                                         "another title's or episode's subtitles?"})
    out["cue_events"] = clamp([e.as_dict() for e in evs], duration_s, "start", "end")
    out["events"] = clamp(events, duration_s)
    out["duration_s"] = duration_s
    return out


def timing_events(tm: dict, cues: list[Cue], ref_track: int, lim: dict) -> list[dict]:
    """`cue_drift` when the cues slide away from the speech by more than the offset limit over the
    track (and faster than the drift limit), judged on the onset line (any length) or the 5-minute
    windows (long titles); `cue_offset` when the in-points sit off the onsets: the median
    difference, or with a drift the difference at the first cue (so a drift is not also an offset)."""
    max_off = float(lim.get("max_offset_ms", 200))
    max_drift = float(lim.get("max_drift_ms_per_hour", 500))
    if tm.get("offset_ms") is None:
        return []
    sure = tm["confidence"] >= float(lim.get("min_confidence", 0.3)) or tm.get("onset_agreement", 0.0) >= float(lim.get("min_onset_agreement", 0.6))
    events = []
    span_h = (cues[-1].start - cues[0].start) / 3600.0
    drift, at_first = None, tm["offset_ms"]
    if tm.get("line_drift_ms_per_hour") is not None:
        d = tm["line_drift_ms_per_hour"]
        if abs(d) > max_drift and abs(d * span_h) > max_off:
            drift = d
            at_first = tm["line_offset_at_start_ms"] + d * cues[0].start / 3600.0
    elif tm.get("drift_ms_per_hour") is not None and abs(tm["drift_ms_per_hour"]) > max_drift and abs(tm["drift_ms_per_hour"] * span_h) > max_off:
        drift = tm["drift_ms_per_hour"]
        at_first = tm.get("offset_at_start_ms", tm["offset_ms"])
    if drift is not None:
        at_last = at_first + drift * span_h
        events.append({"kind": "cue_drift", "severity": "fail", "start_s": cues[0].start, "end_s": cues[-1].end, "value": drift, "limit": max_drift,
                       "detail": f"cues drift {drift:+.0f} ms an hour against the speech of track {ref_track}: {at_first:+.0f} ms at the first cue, "
                                 f"{at_last:+.0f} ms at the last (timed for another frame rate?)"})
    if drift is not None:  # the line is what the in-points confirm then, not the median
        sure = sure or tm.get("line_agreement", 0.0) >= float(lim.get("min_onset_agreement", 0.6))
    if sure and abs(at_first) > max_off:
        events.append({"kind": "cue_offset", "severity": "fail", "start_s": cues[0].start, "end_s": cues[-1].end, "value": round(at_first, 1),
                       "limit": max_off, "detail": f"cues {abs(at_first):.0f} ms {'late' if at_first > 0 else 'early'} against the speech of track {ref_track}"
                                                   + (" at the first cue" if drift is not None else "")})
    return events


def cuts_of(shots) -> list[float]:
    """Times of the hard cuts of the title (shot starts typed `cut`, the first shot excluded)."""
    if shots is None or not len(shots):
        return []
    s = shots[(shots["transition_in"] == "cut") & (shots["shot_index"] > 0)]
    return [float(x) for x in s["start_s"].tolist()]
