"""WebVTT documents from index rows (cues), scenes + structure (chapters) and QC events (metadata)."""

from __future__ import annotations

import json


def ts(t: float) -> str:
    t = max(float(t or 0.0), 0.0)
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _clean(text: str) -> str:
    """Cue text safe for WebVTT: no NUL, no '-->', no blank lines, &/< escaped."""
    text = str(text or "").replace("\x00", "").replace("&", "&amp;").replace("<", "&lt;").replace("-->", "→")
    return "\n".join(line for line in text.splitlines() if line.strip()) or " "


def cues_vtt(rows: list[dict]) -> str:
    out = ["WEBVTT", ""]
    for i, r in enumerate(sorted(rows, key=lambda r: (r["start_s"], r["end_s"]))):
        end = max(float(r["end_s"]), float(r["start_s"]) + 0.001)
        out += [str(i + 1), f"{ts(r['start_s'])} --> {ts(end)}", _clean(r.get("text")), ""]
    return "\n".join(out)


def chapters_vtt(scenes, summary: dict, duration_s: float) -> str:
    """Chapters: intro / recap / credits where known, scenes in between (`Scene N`)."""
    marks = []
    for key, label in (("recap", "Recap"), ("intro", "Intro")):
        part = summary.get(key)
        if part:
            marks.append((float(part["start_s"]), float(part["end_s"]), label))
    for key, label in (("opening", "Opening credits"), ("end", "End credits")):
        part = (summary.get("credits") or {}).get(key)
        if part:
            marks.append((float(part["start_s"]), float(part.get("end_s") or duration_s), label))
    chapters = sorted(marks)
    if scenes is not None:
        for r in scenes.sort_values("start_s").itertuples():
            a, b = float(r.start_s), float(r.end_s)
            # a scene chapter for the part of the scene outside the named stretches
            for ma, mb, _ in marks:
                if ma <= a < mb:
                    a = mb
                if ma < b <= mb:
                    b = ma
            if b - a >= 1.0:
                chapters.append((a, b, f"Scene {int(r.scene_index) + 1}"))
    chapters.sort()
    out = ["WEBVTT", ""]
    for i, (a, b, label) in enumerate(chapters):
        out += [f"chapter-{i + 1}", f"{ts(a)} --> {ts(max(b, a + 0.001))}", label, ""]
    return "\n".join(out)


def qc_vtt(events: list[dict]) -> str:
    """Metadata cues (kind="metadata"): each cue's payload is one event as JSON."""
    out = ["WEBVTT", ""]
    for i, e in enumerate(sorted(events, key=lambda e: e["start_s"])):
        payload = {k: e.get(k) for k in ("kind", "severity", "source", "track", "detail")}
        out += [f"qc-{i + 1}", f"{ts(e['start_s'])} --> {ts(max(float(e['end_s']), float(e['start_s']) + 0.04))}",
                json.dumps(payload, ensure_ascii=False).replace("-->", "→"), ""]
    return "\n".join(out)
