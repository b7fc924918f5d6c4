"""Flags on OCR'd lines (text.parquet): text groups, burned-in subtitles, slates, rolling text.

Method (all on the OCR line table of ``prism_assets.structure.ocr.ocr_frames``; ``step`` is the median spacing
of the OCR'd frames that carry text, ~``every_s``):

* ``group``: the same text persisting or moving across OCR'd frames. Frames are walked in time order; each line
  joins the best-matching group seen within ``max_gap_steps`` steps whose last text has a difflib ratio
  >= ``match_ratio`` (0.8: OCR misreads of one or two letters in a 12-letter line, e.g. FELIA/FELIX, stay
  >= 0.9; different subtitle lines stay < 0.6) with its normalised text (casefolded, spaces collapsed);
  one line per group per frame, best ratio first.
* ``rolling``: a group seen >= ``rolling_min_obs`` (3) times whose centre y falls on >= 80 % of its steps
  and by >= ``rolling_min_rise`` (0.08 of the picture height) overall: text moving up, rolling credits.
* ``burned_in_subtitle``: a group whose line centre is in the bottom band (centre y > ``band_y`` 0.70),
  horizontally centred (|centre x - 0.5| < ``center_tol`` 0.12), lasting 0.5..``sub_max_s`` (8 s) (seen
  for last - first + step), not rolling, overlapping a speech span (widened by step/2 each side), and the
  band's text changes: >= 2 such groups in the title (one static bottom caption is a lower third/logo).
  A group must read as words: median confidence >= ``sub_min_conf`` (70) and letters (any script) for at
  least ``sub_min_letters`` (0.6) of its non-space characters; busy synthetic patterns (test sources with
  counters) OCR as 55-65-confidence digit/letter clutter in the bottom band, real lines read 85+.
* ``slate``: every line of a frame that is a static text card: the picture is dark or flat (``luma_mean`` <=
  ``dark_luma`` 60 or ``luma_std`` <= ``flat_std`` 25, from the ``luma`` series or the ``luma_mean`` /
  ``luma_std`` columns), no line of it rolls, and it carries slate vocabulary: SLATE, SCENE/SC/SCN, TAKE/TK,
  ROLL, PROD/PRODUCTION, DIRECTOR/DIR, CAMERA/CAM, DATE, EPISODE/EP, a timecode (hh:mm:ss[:ff]) or a date:
  the card has >= 2 distinct tokens, or 1 token within ``edge_s`` (15 s) of the start or the end
  (an "EPISODE 4" card). Without luma, >= 2 tokens are required.

Limits: grouping is by text only (two identical lines at once in different places can swap groups); a
subtitle shown without speech (a sign translation) is not flagged; slate vocabulary is English.
"""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

DEFAULTS = {"match_ratio": 0.8, "max_gap_steps": 2.5, "rolling_min_obs": 3, "rolling_min_rise": 0.08, "band_y": 0.70, "center_tol": 0.12,
            "sub_min_s": 0.5, "sub_max_s": 8.0, "sub_min_conf": 70.0, "sub_min_letters": 0.6, "dark_luma": 60.0, "flat_std": 25.0, "edge_s": 15.0, "step_s": None}

SLATE_WORDS = re.compile(r"\b(SLATE|SCENE|SCN|SC|TAKE|TK|ROLL|PROD|PRODUCTION|DIRECTOR|DIR|CAMERA|CAM|DATE|EPISODE|EP)\b", re.IGNORECASE)
TIMECODE = re.compile(r"\b\d{1,2}[:;.]\d{2}[:;.]\d{2}(?:[:;.]\d{2})?\b")
DATE = re.compile(r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b")


def _params(params: dict | None) -> dict:
    p = dict(DEFAULTS)
    unknown = sorted(set(params or {}) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown text flag param(s) {unknown}; known: {sorted(DEFAULTS)}")
    p.update(params or {})
    return p


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split())


def ocr_step(text: pd.DataFrame, default: float = 1.0) -> float:
    """The median spacing of the OCR'd frames that carry text (default when fewer than two)."""
    t = np.unique(text["t_s"].to_numpy(dtype=float)) if len(text) else np.array([])
    return float(np.median(np.diff(t))) if len(t) > 1 else default


def slate_tokens(text: str) -> set[str]:
    toks = {m.upper() for m in SLATE_WORDS.findall(text)}
    toks |= {"<timecode>"} if TIMECODE.search(text) else set()
    toks |= {"<date>"} if DATE.search(text) else set()
    return toks


def _groups(text: pd.DataFrame, ratio: float, max_gap_s: float) -> np.ndarray:
    gid = np.full(len(text), -1, dtype=np.int64)
    last: dict[int, tuple[float, str]] = {}
    norm = [_norm(s) for s in text["text"]]
    t_all = text["t_s"].to_numpy(dtype=float)
    for t in np.unique(t_all):
        rows = np.flatnonzero(t_all == t)
        live = [g for g, (lt, _) in last.items() if 0 < t - lt <= max_gap_s]
        pairs = []
        for r in rows:
            for g in live:
                q = difflib.SequenceMatcher(None, norm[r], last[g][1]).ratio()
                if q >= ratio:
                    pairs.append((q, r, g))
        used_r, used_g = set(), set()
        for _q, r, g in sorted(pairs, key=lambda x: -x[0]):
            if r in used_r or g in used_g:
                continue
            gid[r] = g
            used_r.add(r)
            used_g.add(g)
        for r in rows:
            if gid[r] < 0:
                gid[r] = len(last)
                last[gid[r]] = (t, norm[r])
            else:
                last[gid[r]] = (t, norm[r])
    return gid


def _overlaps(a: float, b: float, spans: list[tuple[float, float]]) -> bool:
    return any(s < b and e > a for s, e in spans)


def flag_text(text: pd.DataFrame, speech: list[tuple[float, float]], duration_s: float, params: dict | None = None,
              luma: pd.Series | None = None) -> pd.DataFrame:
    """The OCR line table plus columns group, rolling, burned_in_subtitle, slate (see the module docstring)."""
    p = _params(params)
    df = text.sort_values(["t_s", "line"]).reset_index(drop=True).copy()
    for col in ("group", "rolling", "burned_in_subtitle", "slate"):
        df[col] = pd.Series(dtype="int64" if col == "group" else bool)
    if df.empty:
        return df
    step = float(p["step_s"] or ocr_step(df))
    df["group"] = _groups(df, p["match_ratio"], p["max_gap_steps"] * step)
    cy = (df["y"] + df["h"] / 2).to_numpy(dtype=float)
    cx = (df["x"] + df["w"] / 2).to_numpy(dtype=float)
    df["rolling"] = False
    df["burned_in_subtitle"] = False
    df["slate"] = False
    stats = {}
    for g, idx in df.groupby("group").indices.items():
        ys = cy[idx]
        t = df["t_s"].to_numpy()[idx]
        dy = np.diff(ys)
        rolling = len(idx) >= p["rolling_min_obs"] and (dy < -0.005).mean() >= 0.8 and ys[0] - ys[-1] >= p["rolling_min_rise"]
        chars = "".join("".join(str(x).split()) for x in df["text"].to_numpy()[idx])
        wordy = float(np.median(df["confidence"].to_numpy(dtype=float)[idx])) >= p["sub_min_conf"] \
            and bool(chars) and sum(c.isalpha() for c in chars) / len(chars) >= p["sub_min_letters"]
        stats[g] = {"idx": idx, "first": float(t.min()), "last": float(t.max()), "rolling": bool(rolling), "cy": float(np.median(ys)),
                    "cx": float(np.median(cx[idx])), "wordy": wordy}
    speech = [(float(s), float(e)) for s, e in speech]
    band = []
    for g, s in stats.items():
        if s["rolling"]:
            df.loc[s["idx"], "rolling"] = True
            continue
        dur = s["last"] - s["first"] + step
        if s["wordy"] and s["cy"] > p["band_y"] and abs(s["cx"] - 0.5) < p["center_tol"] and p["sub_min_s"] <= dur <= p["sub_max_s"] \
                and _overlaps(s["first"] - step / 2, s["last"] + step / 2, speech):
            band.append(g)
    if len(band) >= 2:
        for g in band:
            df.loc[stats[g]["idx"], "burned_in_subtitle"] = True
    _flag_slates(df, p, duration_s, luma)
    return df


def _flag_slates(df: pd.DataFrame, p: dict, duration_s: float, luma: pd.Series | None) -> None:
    lm = df["frame"].map(luma) if luma is not None else (df["luma_mean"] if "luma_mean" in df else pd.Series(np.nan, index=df.index))
    ls = df["luma_std"] if "luma_std" in df and luma is None else pd.Series(np.nan, index=df.index)
    cards = []
    for t, idx in df.groupby("t_s").indices.items():
        if df["rolling"].to_numpy()[idx].any() or df["burned_in_subtitle"].to_numpy()[idx].all():
            continue
        m, sd = float(lm.iloc[idx[0]]), float(ls.iloc[idx[0]])
        known = not np.isnan(m)
        flat = known and (m <= p["dark_luma"] or (not np.isnan(sd) and sd <= p["flat_std"]))
        toks = slate_tokens(" ".join(df["text"].to_numpy()[idx]))
        cards.append((float(t), idx, known, flat, toks))
    for t, idx, known, flat, toks in cards:
        if not toks or (known and not flat):
            continue
        near = t <= p["edge_s"] or t >= duration_s - p["edge_s"]
        if len(toks) >= 2 or (known and near):
            df.loc[idx, "slate"] = True


def burned_in_summary(text_flagged: pd.DataFrame, step_s: float | None = None) -> dict:
    """Seconds covered by burned-in subtitle lines, their count, first/last time and languages."""
    sub = text_flagged[text_flagged["burned_in_subtitle"].astype(bool)] if len(text_flagged) else text_flagged
    if sub.empty:
        return {"present": False, "seconds": 0.0, "lines": 0, "first_s": None, "last_s": None, "languages": {}}
    step = step_s or ocr_step(text_flagged)
    spans = sub.groupby("group")["t_s"].agg(["min", "max"])
    langs = sub.drop_duplicates("group")["language"].fillna("und").value_counts().to_dict()
    return {"present": True, "seconds": round(float((spans["max"] - spans["min"] + step).sum()), 3), "lines": int(len(spans)),
            "first_s": float(sub["t_s"].min()), "last_s": float(sub["t_s"].max()), "languages": {str(k): int(v) for k, v in langs.items()}}


def slates(text_flagged: pd.DataFrame, step_s: float | None = None) -> list[dict]:
    """Slate spans: consecutive OCR'd slate frames merged: [{start_s, end_s, text}] (text: the most frequent card)."""
    s = text_flagged[text_flagged["slate"].astype(bool)] if len(text_flagged) else text_flagged
    if s.empty:
        return []
    step = step_s or ocr_step(text_flagged)
    times = sorted(text_flagged["t_s"].unique())
    pos = {t: i for i, t in enumerate(times)}
    cards = s.sort_values(["t_s", "line"]).groupby("t_s")["text"].agg(" / ".join)
    out: list[dict] = []
    for t, card in cards.items():
        if out and pos[t] - pos[out[-1]["_last"]] == 1 and t - out[-1]["_last"] <= 2.5 * step:
            out[-1]["_last"] = t
            out[-1]["_cards"].append(card)
        else:
            out.append({"start_s": float(t), "_last": t, "_cards": [card]})
    return [{"start_s": o["start_s"], "end_s": float(o["_last"]) + step, "text": max(set(o["_cards"]), key=o["_cards"].count)} for o in out]
