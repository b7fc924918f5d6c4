"""Opening and end credits (structure.json) from the flagged OCR lines, picture luma per second and the audio segments.

Inputs: ``text_flagged`` (``text_flags.flag_text`` output), ``per_second`` (t_s = 0, 1, 2 ..., luma_mean 0-255),
``audio_segments`` (contiguous {kind: speech|music|silence, start_s, end_s} of the original track).

A *credit line* is an OCR line that is not a burned-in subtitle or a slate, has >= 3 letters and confidence
>= ``min_conf`` (70): names and roles; timecodes, frame counters and OCR clutter (< 55-70) are not.

End credits: OCR'd frames with credit lines where the window ``t +- step/2`` holds < 25 % speech and the
picture is dark (that second's luma <= ``dark_luma`` 50) or the text rolls. Walking back from the last such
frame, frames join the run while the gap to the next is <= ``max_gap_s`` (3 s) + step and holds no speech.
The run is end credits when it lasts >= ``end_min_s`` (6 s), starts in the second half (or rolls: a crawl
running to the end is the end credits wherever it starts, e.g. a clip that is only its credits roll), ends
within ``post_max_s`` (max(20 s, 10 % of the title)) of the end (room for a post-credit scene), and shows
credits motion: rolling text or >= 3 distinct text groups (cards changing). ``start_s`` is the first frame of the
run, refined back second by second (up to one OCR step) while the picture stays dark like the run's first
second and there is no speech: the cut to the credit background, so the error is below one second when
the credits start on a dark background and below one OCR step otherwise. ``next_episode_s`` is the start
of the end credits (where a player offers the next episode), also when a post-credit scene follows.

Opening credits: in the first ``open_frac`` (35 %, at most ``open_max_s`` 900 s) of the title, the longest
run of OCR'd frames with credit lines (gaps <= ``max_gap_s``) that lasts >= ``open_min_s`` (5 s), has >= 2
distinct text groups (cards) and credit text on >= 60 % of the OCR steps it spans. Speech does not veto
opening credits (they often run over the first scene) but is reported as evidence.

Both return None when the evidence is absent, never a guess. Confidence is the share of the evidence items
(dark, motion, music, no speech, text density >= 3 lines) that hold. Limits: credits over bright picture
without rolling need the text groups; text-free end cards (logos) are not credits; a title whose credits
are all in one static card (< 3 groups, no roll) is not detected.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from prism_assets.structure.text_flags import ocr_step

DEFAULTS = {"min_conf": 70.0, "min_letters": 3, "dark_luma": 50.0, "max_gap_s": 3.0, "end_min_s": 6.0, "post_max_s": None,
            "open_frac": 0.35, "open_max_s": 900.0, "open_min_s": 5.0, "open_min_groups": 2, "open_cover": 0.6, "end_min_groups": 3,
            "speech_max_frac": 0.25, "every_s": 1.0}


def _params(params: dict | None) -> dict:
    unknown = sorted(set(params or {}) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown credits param(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **(params or {})}


def _frac(kind: str, a: float, b: float, segs: list[dict]) -> float:
    if b <= a:
        return 0.0
    cover = sum(max(0.0, min(b, float(s["end_s"])) - max(a, float(s["start_s"]))) for s in segs if s.get("kind") == kind)
    return cover / (b - a)


def _credit_lines(df: pd.DataFrame, p: dict) -> pd.DataFrame:
    if df.empty:
        return df
    letters = df["text"].astype(str).str.count(r"[^\W\d_]")
    keep = (~df["burned_in_subtitle"].astype(bool)) & (~df["slate"].astype(bool)) & (letters >= p["min_letters"]) & (df["confidence"] >= p["min_conf"])
    return df[keep]


def detect_credits(text_flagged: pd.DataFrame, per_second: pd.DataFrame, audio_segments: list[dict], duration_s: float,
                   params: dict | None = None) -> dict:
    """{"opening": {...} | None, "end": {...} | None, "next_episode_s": float | None, "params": {...}} (see the module docstring)."""
    p = _params(params)
    step = max(float(p["every_s"]), ocr_step(text_flagged, float(p["every_s"])))
    p_out = {**p, "step_s": step}
    lines = _credit_lines(text_flagged, p)
    n_sec = int(math.ceil(duration_s))
    luma = np.full(n_sec + 1, np.nan)
    if len(per_second):
        ts = per_second["t_s"].to_numpy(dtype=float).astype(int)
        ok = (ts >= 0) & (ts <= n_sec)
        luma[ts[ok]] = per_second["luma_mean"].to_numpy(dtype=float)[ok]
    segs = list(audio_segments or [])
    frames = []
    for t, g in lines.groupby("t_s"):
        t = float(t)
        frames.append({"t": t, "n": len(g), "rolling": bool(g["rolling"].any()), "groups": set(g["group"].tolist()),
                       "speech": _frac("speech", t - step / 2, t + step / 2, segs), "luma": luma[min(int(t), n_sec)]})
    end = _end_credits(frames, luma, segs, duration_s, step, p)
    opening = _opening(frames, segs, duration_s, step, p, before=end["start_s"] if end else duration_s)
    return {"opening": opening, "end": end, "next_episode_s": end["start_s"] if end else None, "params": p_out}


def _evidence(run: list[dict], segs: list[dict], a: float, b: float, p: dict) -> tuple[list[str], dict]:
    lum = np.array([f["luma"] for f in run], dtype=float)
    dark = bool(np.isfinite(lum).any() and np.nanmedian(lum) <= p["dark_luma"])
    rolling = sum(f["rolling"] for f in run) >= max(2, len(run) // 3)
    groups = len(set().union(*[f["groups"] for f in run]))
    music = _frac("music", a, b, segs)
    speech = _frac("speech", a, b, segs)
    density = float(np.mean([f["n"] for f in run]))
    ev = [f"text on {len(run)} OCR'd frames, {density:.1f} lines each", f"{groups} text groups"]
    if dark:
        ev.append(f"dark background (median luma {np.nanmedian(lum):.0f})")
    if rolling:
        ev.append("rolling text")
    ev.append(f"speech {speech:.0%}, music {music:.0%}")
    facts = {"dark": dark, "rolling": rolling, "groups": groups, "music": music >= 0.5, "no_speech": speech < p["speech_max_frac"],
             "dense": density >= 3}
    return ev, facts


def _conf(facts: dict, motion: bool) -> float:
    items = [facts["dark"], motion, facts["music"], facts["no_speech"], facts["dense"]]
    return round(sum(items) / len(items), 2)


def _end_credits(frames: list[dict], luma: np.ndarray, segs: list[dict], duration_s: float, step: float, p: dict) -> dict | None:
    def ok(f: dict) -> bool:
        return f["speech"] < p["speech_max_frac"] and (f["rolling"] or (np.isfinite(f["luma"]) and f["luma"] <= p["dark_luma"]))

    post_max = p["post_max_s"] if p["post_max_s"] is not None else max(20.0, 0.1 * duration_s)
    cand = [f for f in frames if ok(f)]
    if not cand or cand[-1]["t"] + step < duration_s - post_max:
        return None
    run = [cand[-1]]
    for f in reversed(cand[:-1]):
        gap_a, gap_b = f["t"], run[0]["t"]
        if gap_b - gap_a > p["max_gap_s"] + step or _frac("speech", gap_a, gap_b, segs) > 0:
            break
        if any(g["t"] > gap_a and g["t"] < gap_b and not ok(g) for g in frames):  # a text frame that is not credits in between
            break
        run.insert(0, f)
    a, b = run[0]["t"], min(duration_s, run[-1]["t"] + step)
    if b - a < p["end_min_s"]:
        return None
    ev, facts = _evidence(run, segs, a, b, p)
    motion = facts["rolling"] or facts["groups"] >= p["end_min_groups"]
    if not motion:
        return None
    if a < 0.5 * duration_s:
        # a crawl that rolls to the end of the title is its end credits wherever it starts (a title that is mostly or
        # only its credits roll); cards or static text in the first half are not
        if not facts["rolling"]:
            return None
        ev.append("rolling text runs to the end of the title from its first half")
    start = a
    s0 = int(a)
    ref = luma[s0] if s0 < len(luma) else np.nan
    if np.isfinite(ref) and ref <= p["dark_luma"]:
        s = s0
        while s - 1 >= max(0.0, a - step) and np.isfinite(luma[s - 1]) and abs(luma[s - 1] - ref) <= 15 and _frac("speech", s - 1, s, segs) == 0:
            s -= 1
        start = float(min(a, s))
    return {"start_s": round(start, 3), "end_s": round(b, 3), "rolling": facts["rolling"], "evidence": ev, "confidence": _conf(facts, motion)}


def _opening(frames: list[dict], segs: list[dict], duration_s: float, step: float, p: dict, before: float) -> dict | None:
    limit = min(p["open_frac"] * duration_s, p["open_max_s"], before)
    early = [f for f in frames if f["t"] < limit]
    runs: list[list[dict]] = []
    for f in early:
        if runs and f["t"] - runs[-1][-1]["t"] <= p["max_gap_s"]:
            runs[-1].append(f)
        else:
            runs.append([f])
    best = None
    for run in runs:
        a, b = run[0]["t"], run[-1]["t"] + step
        groups = len(set().union(*[f["groups"] for f in run]))
        cover = len(run) / max(1, round((b - a) / step))
        if b - a >= p["open_min_s"] and groups >= p["open_min_groups"] and cover >= p["open_cover"] and (best is None or b - a > best[1] - best[0]):
            best = (a, b, run)
    if best is None:
        return None
    a, b, run = best
    ev, facts = _evidence(run, segs, a, b, p)
    return {"start_s": round(a, 3), "end_s": round(min(b, duration_s), 3), "evidence": ev, "confidence": _conf(facts, facts["groups"] >= 2)}
