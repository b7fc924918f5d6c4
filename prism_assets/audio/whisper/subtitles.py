"""Subtitles from transcript segments: cues (split at word boundaries), SRT and WebVTT."""

from __future__ import annotations


def _ts(t: float, sep: str) -> str:
    ms = int(round(max(t, 0.0) * 1000))
    h, ms = divmod(ms, 3600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(segments: list[dict], max_chars: int = 84, max_s: float = 7.0) -> list[tuple[float, float, str]]:
    """Subtitle cues: one per segment; a segment longer than max_chars or max_s is split at word
    boundaries into the fewest cues that fit, balanced by characters (no orphan words)."""
    import math

    out = []
    for s in segments:
        words = s.get("words") or []
        text = " ".join(w["word"] for w in words) if words else s["text"]
        n = max(math.ceil(len(text) / max_chars), math.ceil((s["end"] - s["start"]) / max_s), 1) if words else 1
        n = min(n, len(words)) if words else 1
        if n <= 1:
            out.append((s["start"], s["end"], text))
            continue
        total = sum(len(w["word"]) + 1 for w in words)
        groups, cur, acc = [], [], 0
        for i, w in enumerate(words):
            cur.append(w)
            acc += len(w["word"]) + 1
            left = len(words) - i - 1
            if len(groups) < n - 1 and acc >= total * (len(groups) + 1) / n and left >= (n - 1 - len(groups)):
                groups.append(cur)
                cur = []
        if cur:
            groups.append(cur)
        out += [(g[0]["start"], g[-1]["end"], " ".join(w["word"] for w in g)) for g in groups]
    return out


def to_srt(segments: list[dict]) -> str:
    lines = []
    for i, (s, e, text) in enumerate(cues(segments), 1):
        lines += [str(i), f"{_ts(s, ',')} --> {_ts(max(e, s + 0.001), ',')}", text, ""]
    return "\n".join(lines)


def to_vtt(segments: list[dict]) -> str:
    lines = ["WEBVTT", ""]
    for s, e, text in cues(segments):
        lines += [f"{_ts(s, '.')} --> {_ts(max(e, s + 0.001), '.')}", text, ""]
    return "\n".join(lines)
