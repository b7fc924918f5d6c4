"""Keyframe and poster selection from the pictures the visual pass kept (no decoding here)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..core.config import known_settings
from .shots import transition_frames

KEYFRAMES_CODE_VERSION = "keyframes-1"
POSTERS_CODE_VERSION = "posters-2"  # 2: text part (OCR), credits and slates excluded

KEYFRAME_COLUMNS = [
    "shot_index", "rank", "frame", "t_s", "score", "sharpness", "exposure", "colorfulness", "saturation", "luma_mean",
    "luma_std", "in_transition", "source", "pack", "offset", "length", "width", "height", "image",
]


def _shot_of(frames: np.ndarray, shots: pd.DataFrame) -> np.ndarray:
    starts = shots["start_frame"].to_numpy()
    return np.searchsorted(starts, frames, side="right") - 1


def guard_frames(fps: float) -> int:
    """Frames kept clear of a boundary (0.1 s, at least 2)."""
    return max(2, int(round(0.1 * (fps or 25.0))))


def select_keyframes(shots: pd.DataFrame, pictures: pd.DataFrame, n_frames: int, fps: float, per_shot: int = 1) -> pd.DataFrame:
    """Per non-black shot, the `per_shot` best-scoring candidates away from transitions.

    Candidates are the pass's per-window best frames (`kind == keyframe`). A shot whose candidates
    all lie in a transition gets its best one anyway, flagged `in_transition`; a shot without any
    candidate falls back to its embedding samples (`source == sample`, 224 px)."""
    trans = transition_frames(shots, n_frames, guard=guard_frames(fps))
    pics = pictures.copy()
    pics["shot_index"] = _shot_of(pics["frame"].to_numpy(), shots) if len(pics) else []
    rows = []
    for shot in shots.itertuples():
        if shot.is_black:
            continue
        for source in ("keyframe", "sample"):
            c = pics[(pics["kind"] == source) & (pics["shot_index"] == shot.shot_index)]
            if len(c):
                break
        if not len(c):
            continue
        c = c.assign(in_transition=trans[c["frame"].to_numpy()], score=_keyframe_score(c), source=source)
        c = c.sort_values(["in_transition", "score"], ascending=[True, False])
        picked = []
        min_gap = max(1, (shot.end_frame - shot.start_frame + 1) // (2 * per_shot))
        for r in c.itertuples():
            if len(picked) >= per_shot:
                break
            if r.in_transition and picked:
                break
            if any(abs(r.frame - p.frame) < min_gap for p in picked):
                continue
            picked.append(r)
        for rank, r in enumerate(picked):
            rows.append({
                "shot_index": int(shot.shot_index), "rank": rank, "frame": int(r.frame), "t_s": float(r.t_s),
                "score": float(r.score), "sharpness": float(r.sharpness), "exposure": float(r.exposure),
                "colorfulness": float(r.colorfulness), "saturation": float(r.saturation),
                "luma_mean": float(getattr(r, "luma_mean", np.nan)), "luma_std": float(getattr(r, "luma_std", np.nan)),
                "in_transition": bool(r.in_transition), "source": source, "pack": r.pack, "offset": int(r.offset),
                "length": int(r.length), "width": int(r.width), "height": int(r.height),
                "image": f"keyframes/shot{int(shot.shot_index):05d}_f{int(r.frame):07d}.jpg",
            })
    return pd.DataFrame(rows, columns=KEYFRAME_COLUMNS)


def _keyframe_score(c: pd.DataFrame) -> pd.Series:
    """log(1 + sharpness) x exposure: the sharpest well-exposed frame wins."""
    return np.log1p(c["sharpness"].astype(float)) * c["exposure"].astype(float)


# ---------------------------------------------------------------------------------------------
# posters


@dataclass(frozen=True)
class PosterParams:
    count: int = 12
    max_per_shot: int = 1
    min_gap_s: float = 2.0
    max_similarity: float = 0.92  # CLIP cosine above which two candidates are the same picture
    weights: dict = field(default_factory=lambda: {"sharpness": 0.30, "exposure": 0.25, "contrast": 0.15, "colorfulness": 0.15, "prompt": 0.15,
                                                   "text_free": 0.30})
    text_area_full: float = 0.03  # OCR text boxes covering this fraction of the picture (or more) score text_free 0
    text_min_conf: float = 70.0  # OCR lines below this confidence are texture clutter, not text (structure/text_flags.py)
    prompts: tuple[str, ...] = ("a cinematic film still with a clear subject", "a close-up of a character's face")
    negative_prompts: tuple[str, ...] = ("a blurry picture", "end credits text on a black background", "a colour bar test pattern")
    sharpness_ref: float = 800.0  # Laplacian variance (analysis scale) that scores 1
    blank_luma_std: float = 8.0  # below: a blank picture

    @classmethod
    def from_config(cls, cfg: dict | None) -> "PosterParams":
        cfg = known_settings(cls, cfg, "poster settings")
        for k in ("prompts", "negative_prompts"):
            if k in cfg:
                cfg[k] = tuple(cfg[k])
        if "weights" in cfg:
            cfg["weights"] = {**cls().weights, **cfg["weights"]}
        return cls(**cfg)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["prompts"], d["negative_prompts"] = list(self.prompts), list(self.negative_prompts)
        return d


def poster_exclusions(cands: pd.DataFrame, stats: pd.DataFrame, shots: pd.DataFrame, fps: float, p: PosterParams,
                      spans: list[tuple[float, float, str]] = ()) -> pd.Series:
    """Why a candidate may not be a poster ('' when it may): black, blank, colour bars, transition, or a
    structural span it lies in (`spans`: (start_s, end_s, reason), e.g. credits, slate)."""
    n = len(stats)
    trans = transition_frames(shots, n, guard=guard_frames(fps))
    st = stats.set_index("frame")
    reasons = []
    for r in cands.itertuples():
        f = int(r.frame)
        s = st.loc[f]
        shot = shots.iloc[int(_shot_of(np.array([f]), shots)[0])]
        if s["black_ratio"] >= 0.5 or bool(shot["is_black"]):
            reasons.append("black")
        elif s["colour_bars"] >= 0.5:
            reasons.append("colour_bars")
        elif s["luma_std"] < p.blank_luma_std:
            reasons.append("blank")
        elif trans[f]:
            reasons.append("transition")
        elif any(a <= float(r.t_s) <= b for a, b, _ in spans):
            reasons.append(next(why for a, b, why in spans if a <= float(r.t_s) <= b))
        else:
            reasons.append("")
    return pd.Series(reasons, index=cands.index, dtype=object)


def text_area(cands: pd.DataFrame, text: pd.DataFrame | None, min_conf: float = 70.0) -> pd.Series | None:
    """Fraction of each candidate's picture covered by OCR text boxes (text.parquet lines of that frame at
    `min_conf` or more); None when the title has no OCR at all."""
    if text is None:
        return None
    text = text[text["confidence"].astype(float) >= min_conf] if len(text) else text
    if not len(text):
        return pd.Series(0.0, index=cands.index)
    area = (text["w"].astype(float) * text["h"].astype(float)).groupby(text["frame"].astype(int)).sum()
    return cands["frame"].astype(int).map(area).fillna(0.0).astype(float)


def poster_score_parts(cands: pd.DataFrame, p: PosterParams, text: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each part in 0..1; the score is their weighted sum (weights in PosterParams). `text_free` is 1
    without on-screen text and 0 once text boxes cover `text_area_full` of the picture (burned-in lines,
    captions, logos with words); NaN (weight dropped) without OCR."""
    parts = pd.DataFrame(index=cands.index)
    parts["sharpness"] = np.clip(np.log1p(cands["sharpness"].astype(float)) / math.log1p(p.sharpness_ref), 0, 1)
    parts["exposure"] = np.clip(cands["exposure"].astype(float), 0, 1)
    parts["contrast"] = np.clip(cands["luma_std"].astype(float) / 64.0, 0, 1)
    parts["colorfulness"] = np.clip(cands["colorfulness"].astype(float) / 40.0, 0, 1)
    area = text_area(cands, text, p.text_min_conf)
    parts["text_free"] = np.nan if area is None else np.clip(1.0 - area / p.text_area_full, 0, 1)
    return parts


def rank_posters(cands: pd.DataFrame, parts: pd.DataFrame, excluded: pd.Series, shots: pd.DataFrame, p: PosterParams,
                 embeddings: np.ndarray | None = None, prompt_score: np.ndarray | None = None) -> pd.DataFrame:
    """Greedy: best total score first, skipping excluded frames, more than `max_per_shot` per shot,
    frames closer than `min_gap_s` to a chosen one, and (with embeddings) near-duplicates."""
    cols = ["rank", "frame", "t_s", "shot_index", "score", "score_sharpness", "score_exposure", "score_contrast",
            "score_colorfulness", "score_prompt", "score_text_free", "width", "height", "offset", "length", "image"]
    if not len(cands):
        return pd.DataFrame(columns=cols)
    w = dict(p.weights)
    parts = parts.copy()
    if prompt_score is None:
        parts["prompt"] = np.nan
        w["prompt"] = 0.0
    else:
        parts["prompt"] = prompt_score
    if "text_free" not in parts or parts["text_free"].isna().all():
        parts["text_free"] = np.nan
        w["text_free"] = 0.0
    total_w = sum(w.values()) or 1.0
    score = sum(parts[k].fillna(0.0) * w[k] for k in w) / total_w
    order = np.argsort(-score.to_numpy(), kind="stable")
    shot_idx = _shot_of(cands["frame"].to_numpy(), shots)
    chosen: list[int] = []
    per_shot: dict[int, int] = {}
    # strict pass first (shot diversity, time gap, no near-duplicates), then relaxed passes fill up to
    # `count` from the remaining eligible candidates, so a title with few shots still gets N posters
    passes = [(p.max_per_shot, p.min_gap_s, True), (10**9, p.min_gap_s / 2, True), (10**9, 0.0, False)]
    for max_per_shot, min_gap, dedupe in passes:
        for i in order:
            if len(chosen) >= p.count:
                break
            if excluded.iloc[i] or i in chosen:
                continue
            sh = int(shot_idx[i])
            if per_shot.get(sh, 0) >= max_per_shot:
                continue
            t = float(cands["t_s"].iloc[i])
            if any(abs(t - float(cands["t_s"].iloc[j])) < min_gap for j in chosen):
                continue
            if dedupe and embeddings is not None and chosen and float(np.max(embeddings[chosen] @ embeddings[i])) > p.max_similarity:
                continue
            chosen.append(int(i))
            per_shot[sh] = per_shot.get(sh, 0) + 1
    chosen.sort(key=lambda i: -float(score.iloc[i]))
    rows = []
    for rank, i in enumerate(chosen):
        c = cands.iloc[i]
        rows.append({
            "rank": rank, "frame": int(c["frame"]), "t_s": float(c["t_s"]), "shot_index": int(shot_idx[i]),
            "score": float(score.iloc[i]),
            **{f"score_{k}": (float(parts[k].iloc[i]) if pd.notna(parts[k].iloc[i]) else None) for k in ("sharpness", "exposure", "contrast", "colorfulness", "prompt", "text_free")},
            "width": int(c["width"]), "height": int(c["height"]), "offset": int(c["offset"]), "length": int(c["length"]),
            "image": f"posters/poster{rank:02d}_f{int(c['frame']):07d}.jpg",
        })
    return pd.DataFrame(rows, columns=cols)
