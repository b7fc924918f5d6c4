"""Subtitle timing and style QC on parsed cues (subtitles.py), with thresholds from a timed-text
profile (timed_text.yaml, chosen per provider like the loudness profiles).

Rules per cue, each an event with the cue, the measured value, the limit and a severity:
reading speed (characters per second, line breaks not counted), too short / too long, too many
lines, a line too long, cues ending at or before their start, overlapping cues (ASS cues of
different styles, e.g. signs over dialogue, may overlap), gaps shorter than the profile's frames,
and in/out points within a few frames of a shot cut that are not on it (in: on the cut; out: the
profile's frames before it), and cues that end after the title does (`past_end`, when the title's
duration is known; a cue past the end is never seen). Speech-based checks (coverage, offset, drift, text against the
transcript) need the title's audio and live with the localization assets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from .subtitles import Cue

PROFILES = Path(__file__).with_name("timed_text.yaml")
KINDS = ("past_end", "reversed", "reading_speed", "too_short", "too_long", "too_many_lines", "line_too_long", "overlap", "short_gap", "near_cut")


@dataclass(frozen=True)
class CueEvent:
    kind: str
    severity: str
    cue: int  # index in the sorted cue list
    start: float
    end: float
    value: float | None
    limit: float | None
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def profile_for(provider: str | None = None, overrides: dict | None = None, path: Path = PROFILES) -> tuple[str, dict]:
    """(name, profile) for a provider: `providers[provider]`, else `default`. `overrides` is the
    deployment's `localization:` section (default, providers, profiles)."""
    doc = dict(_load(str(path)))
    for key in ("default", "providers"):
        if overrides and key in overrides:
            doc[key] = overrides[key]
    profiles = {**doc.get("profiles", {}), **((overrides or {}).get("profiles") or {})}
    name = (doc.get("providers") or {}).get(provider or "", doc.get("default"))
    if name not in profiles:
        raise ValueError(f"timed-text profile {name!r} (provider {provider!r}) is not defined; known: {', '.join(sorted(profiles))}")
    return name, profiles[name]


def limits_for(profile: dict, language: str | None) -> dict:
    """Characters per line and reading speed for a language (ISO 639-1; `*` for any other)."""
    langs = profile.get("languages") or {}
    base = (language or "").split("-")[0].lower()
    return {**langs.get("*", {}), **langs.get(base, {})}


def characters(cue: Cue) -> int:
    return len(cue.text.replace("\n", ""))


def check_cues(cues: list[Cue], *, language: str | None, fps: float, profile: dict, cuts: list[float] = (),
               duration_s: float | None = None) -> list[CueEvent]:
    """Every timing and style event of one language's cues (sorted by start); with the title's
    `duration_s`, cues ending more than half a frame after it are `past_end`."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frame = 1.0 / fps
    half = frame / 2
    lim = limits_for(profile, language)
    sev = profile.get("severity") or {}
    events: list[CueEvent] = []

    def add(kind, i, c, value, limit, detail):
        events.append(CueEvent(kind, sev.get(kind, "warn"), i, c.start, c.end, None if value is None else round(value, 3),
                               limit, detail))

    cues = sorted(cues, key=lambda c: (c.start, c.end))
    for i, c in enumerate(cues):
        if duration_s and max(c.start, c.end) > duration_s + half:
            past = max(c.start, c.end) - duration_s
            add("past_end", i, c, past, round(float(duration_s), 3),
                f"{'starts' if c.start > duration_s else 'ends'} {max(c.start - duration_s, 0) if c.start > duration_s else past:.3f} s after "
                f"the title's end ({duration_s:.3f} s)")
        dur = c.end - c.start
        if dur <= 0:
            add("reversed", i, c, dur, 0.0, f"ends {-dur:.3f} s before it starts" if dur < 0 else "zero length")
        else:
            if dur < profile["min_duration_s"] - half:
                add("too_short", i, c, dur, profile["min_duration_s"], f"on screen {dur:.2f} s")
            if dur > profile["max_duration_s"] + half:
                add("too_long", i, c, dur, profile["max_duration_s"], f"on screen {dur:.2f} s")
            cps = characters(c) / dur
            if lim.get("max_cps") and cps > lim["max_cps"]:
                add("reading_speed", i, c, cps, lim["max_cps"], f"{characters(c)} characters in {dur:.2f} s")
        if len(c.lines) > profile["max_lines"]:
            add("too_many_lines", i, c, len(c.lines), profile["max_lines"], f"{len(c.lines)} lines")
        longest = max((len(ln) for ln in c.lines), default=0)
        if lim.get("max_chars_per_line") and longest > lim["max_chars_per_line"]:
            add("line_too_long", i, c, longest, lim["max_chars_per_line"], f"a line of {longest} characters")
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        if nxt is not None:
            gap = nxt.start - c.end
            if gap < -half and (c.style or None) == (nxt.style or None):
                add("overlap", i, c, -gap, 0.0, f"overlaps the next cue by {-gap:.3f} s")
            elif -half <= gap < profile["min_gap_frames"] * frame - half:
                add("short_gap", i, c, gap / frame, profile["min_gap_frames"], f"{max(0.0, gap / frame):.1f} frame(s) before the next cue")
        events += _near_cuts(i, c, cuts, frame, profile, sev)
    return events


def _near_cuts(i: int, c: Cue, cuts, frame: float, profile: dict, sev: dict) -> list[CueEvent]:
    out = []
    window = profile["shot_snap_frames"] * frame
    half = frame / 2
    for cut in cuts:
        off_in = c.start - cut
        if half < abs(off_in) <= window:
            out.append(CueEvent("near_cut", sev.get("near_cut", "info"), i, c.start, c.end, round(off_in / frame, 1), 0.0,
                                f"in-point {abs(off_in) / frame:.0f} frame(s) {'after' if off_in > 0 else 'before'} the cut at {cut:.3f} s: move it to the cut"))
        target = cut - profile["out_before_cut_frames"] * frame
        if abs(c.end - cut) <= window and abs(c.end - target) > half:
            out.append(CueEvent("near_cut", sev.get("near_cut", "info"), i, c.start, c.end, round((c.end - cut) / frame, 1),
                                -float(profile["out_before_cut_frames"]),
                                f"out-point {abs(c.end - cut) / frame:.0f} frame(s) {'after' if c.end > cut else 'before'} the cut at {cut:.3f} s: "
                                f"end it {profile['out_before_cut_frames']} frames before the cut"))
    return out


def summary(events: list[CueEvent], cues: list[Cue]) -> dict:
    """Counts per kind and the reading-speed distribution of one language's cues."""
    speeds = sorted(characters(c) / (c.end - c.start) for c in cues if c.end > c.start)
    pick = (lambda q: round(speeds[min(len(speeds) - 1, int(q * len(speeds)))], 2)) if speeds else (lambda q: None)
    return {"cues": len(cues), "events": {k: sum(1 for e in events if e.kind == k) for k in KINDS},
            "cps_median": pick(0.5), "cps_p95": pick(0.95)}
