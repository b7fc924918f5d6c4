"""Opening and end credits (structure.json) from the flagged OCR lines, picture luma per second and the audio segments.

Inputs: ``text_flagged`` (``text_flags.flag_text`` output), ``per_second`` (t_s = 0, 1, 2 ..., luma_mean 0-255),
``audio_segments`` (contiguous {kind: speech|music|silence, start_s, end_s} of the original track).

A *credit line* is an OCR line that is not a burned-in subtitle or a slate, has >= 3 letters and confidence
>= ``min_conf`` (70): names and roles; timecodes, frame counters and OCR clutter (< 55-70) are not.

End credits: OCR'd frames with credit lines where the window ``t +- step/2`` holds < 25 % speech and the
picture is dark (that second's luma <= ``dark_luma`` 50) or the text rolls. Walking back from the last such
frame, frames join the run while the gap to the next is <= ``max_gap_s`` (3 s) + step and holds no speech.
Leading frames whose text is one line read once and never again, not rolling, are dropped: what OCR makes of
stars or city lights in a dark scene (a few letters, a different misread on every frame), not a credit.
The run is end credits when it lasts >= ``end_min_s`` (6 s), starts in the second half (or rolls: a crawl
running to the end is the end credits wherever it starts, e.g. a clip that is only its credits roll), ends
within ``post_max_s`` (max(20 s, 10 % of the title)) of the end (room for a post-credit scene), and shows
credits motion: rolling text or >= 3 distinct text groups (cards changing). ``start_s``, from the run's first
frame a (``_start``; the OCR'd frames of a long title are up to ~3 s apart, so a is up to one step late):

* the cut to the credits' dark background: walking back second by second from a (at most one OCR step) while the
  picture stays dark like a's second and there is no speech, the second where that stops (a brighter picture,
  speech, the title's start) - error below one second after a brighter scene;
* where the picture stays alike over the whole step (a dark scene before the credits: no visible cut), rolling
  credits start where the roll's first line entered at the bottom edge (its top at a, extrapolated back with the
  roll's speed: lines read the same on consecutive OCR'd frames), never before a - step; cards start at a.

So a dark scene is never taken for the credits' start: the start is the cut or the text. ``next_episode_s`` is
the start of the end credits (where a player offers the next episode), also when a post-credit scene follows.

Opening credits: in the first ``open_frac`` (35 %, at most ``open_max_s`` 900 s) of the title, the longest
run of OCR'd frames with credit lines (gaps <= ``max_gap_s``) that lasts >= ``open_min_s`` (5 s), has >= 2
distinct text groups (cards) and credit text on >= 60 % of the OCR steps it spans. Speech does not veto
opening credits (they often run over the first scene) but is reported as evidence.

Both return None when the evidence is absent, never a guess. Confidence is the share of the evidence items
(dark, motion, music, no speech, text density >= 3 lines) that hold. Limits: credits over bright picture
without rolling need the text groups; text-free end cards (logos) are not credits; a title whose credits
are all in one static card (< 3 groups, no roll) is not detected; after a dark scene, cards start up to one OCR
step late and a crawl whose first lines appear mid-picture (not entering at the bottom) up to one step early.
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
    seen = lines.groupby("group")["t_s"].nunique() if len(lines) else pd.Series(dtype=int)
    frames = []
    for t, g in lines.groupby("t_s"):
        t = float(t)
        rows = [(float(y), bool(r)) for y, r in zip(g["y"], g["rolling"])]
        frames.append({"t": t, "n": len(g), "rolling": bool(g["rolling"].any()), "groups": set(g["group"].tolist()),
                       "speech": _frac("speech", t - step / 2, t + step / 2, segs), "luma": luma[min(int(t), n_sec)], "rows": rows,
                       "lasting": len(g) >= 2 or bool(g["rolling"].any()) or bool((seen.reindex(g["group"]).fillna(0) >= 2).any())})
    end = _end_credits(frames, luma, segs, duration_s, step, p, _roll_speed(lines))
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


def _roll_speed(lines: pd.DataFrame) -> float | None:
    """Upward speed of the rolling credit lines (picture heights per second): the median rise per second of the lines
    read the same (normalised text) on two consecutive OCR'd frames (one line of a crawl, however its group formed)."""
    roll = lines[lines["rolling"].astype(bool)] if len(lines) else lines
    if not len(roll):
        return None
    key = roll["text"].astype(str).str.casefold().str.split().str.join(" ")
    speeds = []
    times = np.unique(roll["t_s"].to_numpy(dtype=float))
    for t0, t1 in zip(times[:-1], times[1:]):
        a = dict(zip(key[roll["t_s"] == t0], roll.loc[roll["t_s"] == t0, "y"]))
        for k, y in zip(key[roll["t_s"] == t1], roll.loc[roll["t_s"] == t1, "y"]):
            if k in a and a[k] > y:
                speeds.append((a[k] - float(y)) / (t1 - t0))
    return float(np.median(speeds)) if speeds else None


def _end_credits(frames: list[dict], luma: np.ndarray, segs: list[dict], duration_s: float, step: float, p: dict,
                 roll_v: float | None = None) -> dict | None:
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
    while len(run) > 1 and not run[0]["lasting"]:
        # one line read once and never again, not rolling: what OCR makes of stars or city lights in a dark scene, not a credit
        run.pop(0)
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
    start, how = _start(run[0], luma, segs, step, p, roll_v if facts["rolling"] else None)
    ev.append(how)
    return {"start_s": round(start, 3), "end_s": round(b, 3), "rolling": facts["rolling"], "evidence": ev, "confidence": _conf(facts, motion)}


def _start(first: dict, luma: np.ndarray, segs: list[dict], step: float, p: dict, roll_v: float | None) -> tuple[float, str]:
    """The end credits' start from their first OCR'd frame (module doc): the cut to the credits' dark background within
    one OCR step before it, else the roll's start (a crawl's first line enters at the bottom edge), else that frame."""
    a = first["t"]
    s0 = min(int(a), len(luma) - 1)
    ref = luma[s0] if s0 >= 0 else np.nan
    if np.isfinite(ref) and ref <= p["dark_luma"]:
        def alike(s: int) -> bool:
            return bool(np.isfinite(luma[s]) and abs(luma[s] - ref) <= 15 and _frac("speech", s, s + 1, segs) == 0)

        lo = max(0, int(math.floor(a - step)))
        s = s0
        while s - 1 >= lo and alike(s - 1):
            s -= 1
        if s == 0 or not alike(s - 1):
            return float(min(a, s)), f"start: the cut to the dark credits background at {min(a, s):.0f} s"
    rolls = [y for y, r in first["rows"] if r]
    if roll_v and rolls:
        t_in = a - (1.0 - min(rolls)) / roll_v
        if t_in < a:
            return float(max(t_in, a - step)), f"start: the roll's first line entered at the bottom at {max(t_in, a - step):.1f} s (speed {roll_v:.3f}/s)"
    return float(a), "start: the first OCR'd frame with credit text (the picture before looks the same: no cut to place it earlier)"


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
