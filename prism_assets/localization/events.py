"""The QC events of localization.json: what joins the title's QC verdict and the daily QC report.

One event per finding a person acts on, not per cue: the cue rules of one subtitle track are
grouped by kind (a 1,500-cue file with 40 fast cues is one `subtitle_reading_speed` event that lists
where they are); track-level findings (wrong language, offset, drift, another title's text, speech
without a cue, a dub out of sync or diverging) are events of their own. Info-level cue findings
(in/out points near a cut) stay in localization.json and do not reach the verdict.
"""

from __future__ import annotations

MAX_LISTED = 20  # cue times listed in one grouped event


def _sub(t: dict) -> str:
    return f"subtitle {t['label'] or t['track']} ({t['file'] or 'stream ' + str(t['track'])[1:]})"


def subtitle_events(t: dict, n: int = 0) -> list[dict]:
    """The QC events of subtitle track `t`, the n-th of localization.json's subtitle_tracks: `track` is
    that n (QC tracks are numbers; the track's id, `s2`/`f0`, is in metrics.subtitle_track), so two tracks
    with the same finding at the same time are two tracks' events, not an overlap of one."""
    qc = t.get("qc")
    if not qc:
        return []
    out = []
    for e in qc["events"]:
        out.append({"kind": f"subtitle_{e['kind']}", "severity": e["severity"], "start_s": e["start_s"], "end_s": e["end_s"], "track": n,
                    "detail": f"{_sub(t)}: {e['detail']}", "metrics": {"subtitle_track": t["track"], "value": e["value"], "limit": e["limit"]}})
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in qc["cue_events"]:
        if e["severity"] in ("warn", "fail"):
            groups.setdefault((e["kind"], e["severity"]), []).append(e)
    for (kind, sev), evs in sorted(groups.items()):
        first = evs[0]
        detail = f"{_sub(t)}: {len(evs)} cue(s) {kind.replace('_', ' ')}" + (f" (first at {first['start']:.2f} s: {first['detail']})" if evs else "")
        out.append({"kind": f"subtitle_{kind}", "severity": sev, "track": n, "start_s": min(e["start"] for e in evs),
                    "end_s": max(max(e["end"], e["start"]) for e in evs), "detail": detail,
                    "metrics": {"subtitle_track": t["track"], "cues": len(evs), "at_s": [round(e["start"], 3) for e in evs[:MAX_LISTED]],
                                "limit": first["limit"]}})
    return out


def audio_events(a: dict, duration_s: float) -> list[dict]:
    s = a.get("sync")
    if not s or a["role"] not in ("dub", "commentary", "unknown", "music_and_effects") or s.get("offset_ms") is None:
        return []
    out = []
    if s.get("out_of_limits"):
        end = s.get("offset_at_end_ms")
        drift = s.get("drift_ms_per_hour")
        detail = f"track {a['track']} ({a['role']}, {a['language'] or a['container_language'] or 'language unknown'}) is {s['offset_ms']:+.0f} ms against track {s['against_track']}"
        conversion = s.get("conversion")
        if drift is not None and end is not None and abs(end - s["offset_ms"]) >= 10:
            why = (f"speed {s.get('speed_ratio', 0):.4f}: {conversion.replace('_', ' ')}, then drift {drift:+.0f} ms an hour"
                   if conversion and conversion != "none" else f"drift {drift:+.0f} ms an hour")
            detail += f" at the start and {end:+.0f} ms at the end ({why})"
        detail += f"; limits -{s['limits_ms']['early']:.0f}/+{s['limits_ms']['late']:.0f} ms"
        out.append({"kind": "dub_out_of_sync", "severity": "fail", "start_s": 0.0, "end_s": duration_s, "track": a["track"], "detail": detail,
                    "metrics": {"offset_ms": s["offset_ms"], "offset_at_end_ms": end, "drift_ms_per_hour": drift, "confidence": s["confidence"],
                                "speed_ratio": s.get("speed_ratio"), "conversion": conversion}})
    for span in s.get("diverging") or []:
        out.append({"kind": "dub_diverges", "severity": "warn", "start_s": span["start_s"], "end_s": min(span["end_s"], duration_s or span["end_s"]),
                    "track": a["track"], "detail": f"track {a['track']} does not follow track {s['against_track']}'s music and effects "
                                                   f"from {span['start_s']:.0f} s to {span['end_s']:.0f} s (re-edited or another mix?)",
                    "metrics": {}})
    return out


def qc_events(doc: dict) -> list[dict]:
    duration = float((doc.get("picture") or {}).get("duration_s") or 0.0)
    out = []
    for a in doc.get("audio_tracks", []):
        out += audio_events(a, duration)
    for n, t in enumerate(doc.get("subtitle_tracks", [])):
        out += subtitle_events(t, n)
        if t.get("error"):
            out.append({"kind": "subtitle_unreadable", "severity": "warn", "start_s": 0.0, "end_s": 0.0, "track": n,
                        "detail": f"{_sub(t)}: not read: {t['error']}", "metrics": {"subtitle_track": t["track"]}})
    for e in out:
        e["end_s"] = max(e["end_s"], e["start_s"])
    return out
