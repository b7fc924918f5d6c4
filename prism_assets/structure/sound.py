"""The sound evidence the structure signals read: the original audio track (localization.json), its
speech/music/silence segments (audio.json) and its VAD speech regions (transcript.json)."""

from __future__ import annotations


def original_track(localization: dict | None) -> int | None:
    """The title's original audio track (localization's decision), else None (then the first track)."""
    track = (localization or {}).get("original_track")
    return int(track) if track is not None else None


def _pick(tracks: list[dict], track: int | None) -> dict | None:
    if not tracks:
        return None
    if track is not None:
        for t in tracks:
            if int(t.get("track", -1)) == track:
                return t
    return tracks[0]


def segments_of(audio_analysis: dict | None, track: int | None) -> list[dict]:
    """Contiguous {kind: speech | music | silence, start_s, end_s} of the track ([] without audio)."""
    t = _pick((audio_analysis or {}).get("tracks") or [], track)
    return [{"kind": s["kind"], "start_s": float(s["start_s"]), "end_s": float(s["end_s"])} for s in (t or {}).get("segments") or []]


def speech_of(transcript: dict | None, track: int | None) -> list[tuple[float, float]]:
    """VAD speech regions (start_s, end_s) of the track on the title's time line ([] without speech)."""
    t = _pick((transcript or {}).get("tracks") or [], track)
    return [(float(r["start_s"]), float(r["end_s"])) for r in (t or {}).get("speech_regions") or []]
