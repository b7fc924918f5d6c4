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
  A fast crawl shows each line on only two OCR'd frames: between two consecutive OCR'd frames, >= 2 groups
  read the same on both (normalised text equal) that rise by >= ``rolling_min_rise`` and by the same amount
  (within ``block_tol``, 0.03 of the height: a block of text moving together) roll too.
* ``burned_in_subtitle``: a group whose line centre is in the bottom band (centre y > ``band_y`` 0.70),
  horizontally centred (|centre x - 0.5| < ``center_tol`` 0.12), lasting 0.5..``sub_max_s`` (8 s) (seen
  for last - first + step), not rolling, overlapping a speech span (widened by step/2 each side), and the
  band's text changes: >= 2 such groups in the title (one static bottom caption is a lower third/logo).
  A group must read as words: median confidence >= ``sub_min_conf`` (70) and letters (any script) for at
  least ``sub_min_letters`` (0.6) of its non-space characters; busy synthetic patterns (test sources with
  counters) OCR as 55-65-confidence digit/letter clutter in the bottom band, real lines read 85+.
* ``slate``: every line of a frame that is a static text card: the picture is dark or flat (``luma_mean`` <=
  ``dark_luma`` 60 or ``luma_std`` <= ``flat_std`` 25, from the ``luma`` series or the ``luma_mean`` /
  ``luma_std`` columns), no line of it rolls, it is static and it carries slate vocabulary: SLATE, SCENE/SC/SCN,
  TAKE/TK, ROLL, PROD/PRODUCTION, DIRECTOR/DIR, CAMERA/CAM, DATE, EPISODE/EP, a timecode (hh:mm:ss[:ff]) or a
  date: the card has >= 2 distinct tokens, or 1 token within ``edge_s`` (15 s) of the start or the end
  (an "EPISODE 4" card). Without luma, >= 2 tokens are required. Credit job titles are credits, not slate
  vocabulary (DIRECTOR OF PHOTOGRAPHY, CASTING/ART/ASSISTANT ... DIRECTOR, DIRECTED BY, CAMERA OPERATOR,
  PRODUCTION DESIGNER/MANAGER ..., A ... PRODUCTION). Static: in a run of >= 3 consecutive OCR'd frames
  with text, a frame that shares no line (same group, centre y within ``static_tol``, 0.02 of the picture,
  x within 3x that) with the frame before or after it is a wall of changing text (a crawl too fast to
  track, or credit cards), never a slate; a slate card holds still.

Limits: grouping is by text only (two identical lines at once in different places can swap groups); a
subtitle shown without speech (a sign translation) is not flagged; slate vocabulary is English.
"""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

DEFAULTS = {"match_ratio": 0.8, "max_gap_steps": 2.5, "rolling_min_obs": 3, "rolling_min_rise": 0.08, "band_y": 0.70, "center_tol": 0.12,
            "sub_min_s": 0.5, "sub_max_s": 8.0, "sub_min_conf": 70.0, "sub_min_letters": 0.6, "dark_luma": 60.0, "flat_std": 25.0, "edge_s": 15.0, "step_s": None,
            "block_tol": 0.03, "static_tol": 0.02}

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


# credit job titles that carry slate words: credits vocabulary, removed before the slate words are counted
CREDIT_ROLES = re.compile(
    r"\bDIRECTOR\s+OF\s+(?:PHOTOGRAPHY|PRODUCTION|SOUND|CASTING|ANIMATION)\b"
    r"|\b(?:ART|CASTING|ASSISTANT|ASST\.?|MUSIC|CREATIVE|ANIMATION|DIALOGUE|DUBBING|TECHNICAL|STUNT|UNIT|FIGHT|SUPERVISING|EPISODE|"
    r"SECOND\s+UNIT|FIRST\s+ASSISTANT|1ST\s+ASSISTANT|2ND\s+ASSISTANT|SCRIPT|CO-?)\s*DIRECTORS?\b"
    r"|\bDIRECTED\s+BY\b"
    r"|\b(?:[A-C][- ])?CAMERA\s+(?:OPERATORS?|ASSISTANTS?|TRAINEES?|DEPARTMENT|CREW)\b"
    r"|\bPRODUCTION\s+(?:DESIGNERS?|DESIGN|MANAGERS?|COORDINATORS?|ASSISTANTS?|ACCOUNTANTS?|SUPERVISORS?|SECRETARY|COMPANY|"
    r"EXECUTIVES?|SOUND|MIXER|BY|SERVICES)\b"
    r"|\bIN\s+ASSOCIATION\s+WITH\b|\bAN?\s+(?:[A-Z0-9&'.-]+\s+){1,4}PRODUCTION\b", re.IGNORECASE)


def slate_tokens(text: str) -> set[str]:
    text = CREDIT_ROLES.sub(" ", text)
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
    _flag_block_motion(df, cy, p, step)
    speech = [(float(s), float(e)) for s, e in speech]
    band = []
    for g, s in stats.items():
        if s["rolling"] or df["rolling"].to_numpy()[s["idx"]].any():
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


def _flag_block_motion(df: pd.DataFrame, cy: np.ndarray, p: dict, step: float) -> None:
    """Groups seen on two consecutive OCR'd frames that rise together (>= 2 of them, by >= rolling_min_rise, the
    same amount within block_tol): a crawl too fast for rolling_min_obs observations of one line."""
    t_all = df["t_s"].to_numpy(dtype=float)
    gid = df["group"].to_numpy()
    norm = [_norm(x) for x in df["text"]]
    times = np.unique(t_all)
    for t0, t1 in zip(times[:-1], times[1:]):
        if t1 - t0 > p["max_gap_steps"] * step:
            continue
        a, b = np.flatnonzero(t_all == t0), np.flatnonzero(t_all == t1)
        ya = {int(gid[i]): (float(cy[i]), norm[i]) for i in a}
        moved = [(float(cy[j]) - ya[int(gid[j])][0], int(gid[j])) for j in b if int(gid[j]) in ya and ya[int(gid[j])][1] == norm[j]]
        risen = [(d, g) for d, g in moved if d <= -p["rolling_min_rise"]]
        if len(risen) < 2:
            continue
        med = float(np.median([d for d, _ in risen]))
        block = {g for d, g in risen if abs(d - med) <= p["block_tol"]}
        if len(block) >= 2:
            df.loc[np.isin(gid, list(block)), "rolling"] = True


def _static_frames(df: pd.DataFrame, p: dict, step: float) -> dict[float, bool]:
    """Per OCR'd time: False where the frame is in a run of >= 3 consecutive text frames and shares no line (same
    group at the same place) with its neighbours in the run: changing text, not a card that holds still."""
    t_all = df["t_s"].to_numpy(dtype=float)
    cx = (df["x"] + df["w"] / 2).to_numpy(dtype=float)
    cy = (df["y"] + df["h"] / 2).to_numpy(dtype=float)
    gid = df["group"].to_numpy()
    times = np.unique(t_all)
    where = {t: {int(gid[i]): (cx[i], cy[i]) for i in np.flatnonzero(t_all == t)} for t in times}

    def shares(t0: float, t1: float) -> bool:
        a, b = where[t0], where[t1]
        return any(g in a and abs(a[g][0] - xy[0]) <= 3 * p["static_tol"] and abs(a[g][1] - xy[1]) <= p["static_tol"] for g, xy in b.items())

    runs: list[list[float]] = []
    for t in times:
        if runs and t - runs[-1][-1] <= p["max_gap_steps"] * step:
            runs[-1].append(t)
        else:
            runs.append([t])
    out = {}
    for run in runs:
        for k, t in enumerate(run):
            held = (k > 0 and shares(run[k - 1], t)) or (k + 1 < len(run) and shares(t, run[k + 1]))
            out[float(t)] = len(run) < 3 or held
    return out


def _flag_slates(df: pd.DataFrame, p: dict, duration_s: float, luma: pd.Series | None) -> None:
    lm = df["frame"].map(luma) if luma is not None else (df["luma_mean"] if "luma_mean" in df else pd.Series(np.nan, index=df.index))
    ls = df["luma_std"] if "luma_std" in df and luma is None else pd.Series(np.nan, index=df.index)
    static = _static_frames(df, p, float(p["step_s"] or ocr_step(df)))
    cards = []
    for t, idx in df.groupby("t_s").indices.items():
        if df["rolling"].to_numpy()[idx].any() or df["burned_in_subtitle"].to_numpy()[idx].all() or not static[float(t)]:
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
