"""The per-audio-track profile of a title: language (decided only on enough speech), speech ratio,
dialogue-gated loudness, layout, duration against the picture, the role with its evidence, and
each other track's speed (a frame-rate conversion), offset and drift against the original (dub
synchronisation; a dub made from a PAL master aligns at its 24/25 speed and is a dub, not `unknown`).

Everything here reads what the audio signals measured (audio_analysis, transcript, the 16 kHz WAVs
of audio_speech); nothing is decoded again. The role decision (roles.py) needs the alignment of
each track with the original's music and effects, and the original is decided first without it:

    1. roles without alignment -> the original (language / default flag / first track with speech)
    2. every other track aligned against it (sync.measure on the 16 kHz WAVs, at the speed it finds)
    3. roles again, with each track's alignment confidence -> dub / commentary / M&E / silent / unknown
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.language import iso639_1
from .roles import TrackEvidence, decide_roles, described_evidence
from .sync import measure

SR = 16000


@dataclass(frozen=True)
class SyncLimits:
    """Dub timing limits (ms; positive = the dub is late). Defaults: EBU R37 (sound at most 40 ms
    early and 60 ms late against the picture); a dub is held to the original's timing alike."""

    max_early_ms: float = 40.0
    max_late_ms: float = 60.0
    max_offset_search_s: float = 10.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> "SyncLimits":
        cfg = cfg or {}
        return cls(float(cfg.get("max_early_ms", 40.0)), float(cfg.get("max_late_ms", 60.0)), float(cfg.get("max_offset_search_s", 10.0)))


def speech_seconds(regions: list[dict]) -> float:
    return float(sum(max(0.0, r["end_s"] - r["start_s"]) for r in regions or []))


def evidence(analysis_tracks: list[dict], transcript_tracks: list[dict], probe_tracks: list[dict]) -> list[TrackEvidence]:
    tr = {t["track"]: t for t in transcript_tracks}
    probe = {a.get("index"): a for a in probe_tracks}
    out = []
    for a in analysis_tracks:
        t = tr.get(a["track"], {})
        p = probe.get(a.get("stream_index"), {})
        out.append(TrackEvidence(index=a["track"], duration_s=float(a.get("duration_s") or 0.0), speech_s=speech_seconds(t.get("speech_regions")),
                                 container_language=a.get("language_tag"), title=p.get("title"), default=bool(p.get("default")),
                                 detected_language=t.get("language"), language_probability=t.get("language_probability"),
                                 silent=bool(a.get("silent")), digital_silence=bool(a.get("digital_silence")),
                                 handler_name=a.get("handler_name"), dispositions=tuple(a.get("dispositions") or ())))
    return out


def out_of_limits(offset_ms: float | None, drift_ms_per_hour: float | None, duration_s: float, lim: SyncLimits) -> tuple[bool, float | None, float | None]:
    """(flagged, offset at the start, offset at the end) of a dub against the limits; with drift,
    the offset moves along the title and is checked at both ends. Against the picture, a dub at
    another speed drifts by all of it: pass `total_drift` (its speed ratio and residual drift)."""
    if offset_ms is None:
        return False, None, None
    end = offset_ms + (drift_ms_per_hour or 0.0) * duration_s / 3600.0
    worst = (min(offset_ms, end), max(offset_ms, end))
    return worst[0] < -lim.max_early_ms or worst[1] > lim.max_late_ms, round(offset_ms, 1), round(end, 1)


def total_drift(sync: dict) -> float | None:
    """The drift against the original's timeline (ms an hour): the conversion's speed and the drift
    left after it (a PAL speed-up alone: -4 %, -144 s an hour)."""
    if sync.get("drift_ms_per_hour") is None:
        return (float(sync["nominal_ratio"]) - 1.0) * 3.6e6 if sync.get("nominal_ratio") is not None else None
    return float(sync["drift_ms_per_hour"]) + (float(sync.get("nominal_ratio") or 1.0) - 1.0) * 3.6e6


def speed_evidence(sync: dict | None) -> list[str]:
    """A role evidence line for a track aligned at another speed than the original's."""
    if not sync or sync.get("offset_ms") is None or sync.get("conversion") in (None, "none"):
        return []
    name = sync["conversion"]
    return [f"runs at {sync['speed_ratio']:.5f} times the original's duration ({'no named conversion' if name == 'free' else name}): "
            "aligned after correcting for that speed"]


def align(wavs: dict[int, Path], starts: dict[int, float], original: int, other: int, speech: dict[int, list], lim: SyncLimits, load) -> dict:
    """`other` against `original` on their 16 kHz WAVs (speech stretches weighted down: dubs share
    the music and effects, not the words). Offsets are in title time (the tracks' start times
    included); positive = `other` is late."""
    if original not in wavs or other not in wavs:
        return {"offset_ms": None, "confidence": 0.0, "drift_ms_per_hour": None, "note": "no decoded audio"}
    a, b = load(wavs[original]), load(wavs[other])

    def rel(track):  # speech regions relative to the track's own WAV
        return [(r["start_s"] - starts.get(track, 0.0), r["end_s"] - starts.get(track, 0.0)) for r in speech.get(track, [])]

    r = measure(a, b, SR, original_speech=rel(original), dub_speech=rel(other), max_offset_s=lim.max_offset_search_s)
    # title time: other's WAV time + its start = offset + nominal * (original's WAV time) + drift, so the
    # offsets (dub time - nominal * original time) move by other's start - nominal * original's start
    shift = (starts.get(other, 0.0) - (r.nominal_ratio or 1.0) * starts.get(original, 0.0)) * 1000.0
    d = r.as_dict()
    for k in ("offset_ms", "global_offset_ms"):
        if d.get(k) is not None:
            d[k] = round(d[k] + shift, 1)
    for w in d.get("windows") or []:
        w["offset_ms"] = round(w["offset_ms"] + shift, 1)
    for s in d.get("diverging") or []:  # the original's time is the title's time from its start
        s["start_s"], s["end_s"] = round(s["start_s"] + starts.get(original, 0.0), 2), round(s["end_s"] + starts.get(original, 0.0), 2)
    return d


def described(wavs: dict[int, Path], starts: dict[int, float], original: int, other: int, speech: dict[int, list], sync: dict, load):
    """Whether `other` is the original's mix with extra speech in its dialogue gaps (audio description) or over it
    (commentary): roles.described_evidence on the 16 kHz WAVs, at the offset the alignment found; None without one."""
    if sync.get("offset_ms") is None or original not in wavs or other not in wavs or abs((sync.get("nominal_ratio") or 1.0) - 1.0) > 1e-3:
        return None

    def rel(track):
        return [(r["start_s"] - starts.get(track, 0.0), r["end_s"] - starts.get(track, 0.0)) for r in speech.get(track, [])]

    wav_offset_s = (sync["offset_ms"] / 1000.0) - (starts.get(other, 0.0) - starts.get(original, 0.0))  # title time -> the WAVs' own time
    return described_evidence(load(wavs[original]), load(wavs[other]), SR, rel(original), rel(other), offset_s=wav_offset_s)


class _KeepTwo:
    """`load` keeping the original's samples and the last other track's: align() and described() read the same pair
    (a 2-hour track at 16 kHz is ~460 MB: only two are kept)."""

    def __init__(self, load, keep: Path | None):
        self.load, self.keep, self.kept, self.last = load, keep, None, (None, None)

    def __call__(self, path: Path):
        if path == self.keep:
            if self.kept is None:
                self.kept = self.load(path)
            return self.kept
        if self.last[0] != path:
            self.last = (path, self.load(path))
        return self.last[1]


def profiles(analysis_tracks: list[dict], transcript_tracks: list[dict], probe_tracks: list[dict], picture_s: float | None,
             wavs: dict[int, Path], starts: dict[int, float], original_language: str | None, lim: SyncLimits, load) -> tuple[list[dict], int | None]:
    """(one profile per audio track, the original's track number or None)."""
    ev = evidence(analysis_tracks, transcript_tracks, probe_tracks)
    first = {d.index: d for d in decide_roles(ev, original_language)}
    original = next((i for i, d in first.items() if d.role == "original"), None)
    load = _KeepTwo(load, wavs.get(original))  # the original's WAV once for all tracks, each other track's once for both measures
    speech = {t["track"]: t.get("speech_regions") or [] for t in transcript_tracks}
    sync: dict[int, dict] = {}
    if original is not None:
        for e in ev:
            if e.index != original and e.duration_s >= 2.0 and not (e.silent or e.digital_silence):  # nothing to align on a silent track
                sync[e.index] = align(wavs, starts, original, e.index, speech, lim, load)
                e.sync_confidence = sync[e.index]["confidence"] if sync[e.index].get("offset_ms") is not None else None
                e.described = described(wavs, starts, original, e.index, speech, sync[e.index], load)
    decided = {d.index: d for d in decide_roles(ev, original_language)}
    out = []
    for a, e in zip(analysis_tracks, ev):
        d = decided[e.index]
        s = sync.get(e.index)
        dub_sync = None
        if s is not None:
            flagged, at_start, at_end = out_of_limits(s.get("offset_ms"), total_drift(s), e.duration_s, lim)
            dub_sync = {**{k: s.get(k) for k in ("offset_ms", "confidence", "drift_ms_per_hour", "global_offset_ms", "speed_ratio", "conversion",
                                                 "nominal_ratio", "speed_search", "diverging", "windows", "note")},
                        "against_track": original, "offset_at_end_ms": at_end, "out_of_limits": flagged,
                        "limits_ms": {"early": lim.max_early_ms, "late": lim.max_late_ms}}
            dub_sync = {k: v for k, v in dub_sync.items() if v is not None or k in ("offset_ms", "drift_ms_per_hour")}
        dur = e.duration_s
        out.append({
            "track": e.index, "stream_index": a.get("stream_index"), "codec": a.get("codec"), "title": e.title, "default": e.default,
            "container_language": e.container_language, "container_language_639_1": iso639_1(e.container_language),
            "language": d.language, "language_note": d.language_note,
            "language_probability": e.language_probability if d.language else None,
            "detected_language_raw": e.detected_language, "speech_s": round(e.speech_s, 2),
            "speech_ratio": a.get("speech_ratio"), "dialogue_lufs": a.get("dialogue_lufs"), "integrated_lufs": a.get("integrated_lufs"),
            "channels": a.get("channels"), "channel_layout": a.get("channel_layout"), "sample_rate": a.get("sample_rate"),
            "duration_s": round(dur, 3), "start_s": a.get("start_s"),
            "duration_minus_picture_s": None if not picture_s else round(dur - float(picture_s), 3),
            "silent": bool(a.get("silent")),
            "role": d.role, "role_evidence": d.evidence + speed_evidence(s),
            "sync": dub_sync,
        })
    return out, (decided[original].index if original is not None else None)
