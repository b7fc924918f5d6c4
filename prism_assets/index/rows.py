"""A title's index rows, from the artifacts its signals wrote (pure functions of their values).

Nothing is decoded again: units come from `shots` (+ CLIP `embeddings`/`shot_embeddings`), frames
from the visual pass's keyframe candidates (`frame_samples`), text rows from `transcript`,
`subtitles` (cue files) and `text` (OCR), events from `qc` (which already holds the events that
localization and structure contribute). Times are seconds from the title's start, as everywhere.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .features import cjk_runs, dhash_hex, frame_vector, smpte

MAX_UNIT_S = 10.0  # a shot longer than this becomes several equal windows of at most 10 s
FRAMES_PER_S = 1.0  # query-by-frame vectors: at most one keyframe candidate per second


@dataclass
class TitleContext:
    title_id: str
    index_version: str
    fps: float
    duration_s: float
    series: dict | None
    labels: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, label) structure
    scenes: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, scene_index)

    def common(self) -> dict:
        s = self.series or {}
        return {"title_id": self.title_id, "series_id": s.get("series_id"), "season": _int(s.get("season")),
                "episode": _int(s.get("episode")), "index_version": self.index_version}

    def timed(self, start: float, end: float) -> dict:
        mid = (start + end) / 2
        return {"start_s": float(start), "end_s": float(end), "timecode": smpte(start, self.fps), "structure": self.label_at(mid),
                "scene_index": self.scene_at(mid)}

    def label_at(self, t: float) -> str:
        for a, b, label in self.labels:
            if a <= t < b:
                return label
        return "body"

    def scene_at(self, t: float) -> int | None:
        starts = [s for s, _, _ in self.scenes]
        i = bisect.bisect_right(starts, t) - 1
        return self.scenes[i][2] if i >= 0 and t < self.scenes[i][1] + 1e-6 else None


def _int(v):
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _finite(v, default=0.0) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def structure_labels(structure: dict | None, season_row: dict | None) -> list[tuple[float, float, str]]:
    """(start, end, label) stretches: intro and recap (season), opening and end credits."""
    out = []
    if season_row:
        for key in ("recap", "intro"):
            part = season_row.get(key)
            if part and part.get("start_s") is not None:
                out.append((float(part["start_s"]), float(part["end_s"]), key))
    credits = (structure or {}).get("credits") or {}
    for key, label in (("opening", "opening_credits"), ("end", "end_credits")):
        part = credits.get(key)
        if part and part.get("start_s") is not None:
            out.append((float(part["start_s"]), float(part.get("end_s") or math.inf), label))
    return sorted(out)


def scene_spans(scenes: pd.DataFrame | None) -> list[tuple[float, float, int]]:
    if scenes is None or len(scenes) == 0:
        return []
    return [(float(r.start_s), float(r.end_s), int(r.scene_index)) for r in scenes.sort_values("start_s").itertuples()]


def _mean_vector(vectors: list) -> list | None:
    if not vectors:
        return None
    v = np.mean(np.stack([np.asarray(x, dtype=np.float32) for x in vectors]), axis=0)
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32).tolist() if n > 0 else None


def unit_rows(tc: TitleContext, shots: pd.DataFrame, keyframes: pd.DataFrame | None, embeddings: pd.DataFrame | None,
              shot_embeddings: pd.DataFrame | None, clip_info: dict) -> list[dict]:
    """One row per shot, or per <= 10 s window of a long shot, with its CLIP vector (the mean of the
    window's sample embeddings, else the shot's)."""
    kf = {} if keyframes is None or len(keyframes) == 0 else {int(r.shot_index): r for r in keyframes.sort_values("rank").drop_duplicates("shot_index").itertuples()}
    shot_vec = {} if shot_embeddings is None else {int(r.shot_index): r.embedding for r in shot_embeddings.itertuples()}
    samples = None
    if embeddings is not None and len(embeddings):
        samples = embeddings[embeddings["kind"] == "sample"].sort_values("t_s")
    rows, n = [], 0
    model = f"{clip_info.get('model')}/{clip_info.get('weights')}" if clip_info else None
    trained = bool(clip_info.get("weights_trained")) if clip_info else False
    for s in shots.sort_values("shot_index").itertuples():
        start, end = float(s.start_s), float(s.end_s)
        pieces = max(1, math.ceil((end - start) / MAX_UNIT_S - 1e-9))
        frames_per = (int(s.end_frame) - int(s.start_frame) + 1) / pieces
        for p in range(pieces):
            a = start + (end - start) * p / pieces
            b = start + (end - start) * (p + 1) / pieces
            vec = None
            if samples is not None:
                inside = samples[(samples["t_s"] >= a) & (samples["t_s"] < b)]
                vec = _mean_vector(list(inside["embedding"]))
            if vec is None and int(s.shot_index) in shot_vec:
                vec = [float(x) for x in shot_vec[int(s.shot_index)]]
            k = kf.get(int(s.shot_index))
            rows.append({**tc.common(), **tc.timed(a, b), "row_id": f"{tc.title_id}:units:{n}", "unit_index": n,
                         "shot_index": int(s.shot_index), "start_frame": int(round(int(s.start_frame) + p * frames_per)),
                         "end_frame": int(round(int(s.start_frame) + (p + 1) * frames_per)) - 1,
                         "keyframe": None if k is None else str(k.image), "keyframe_t_s": None if k is None else float(k.t_s),
                         "clip_model": model, "weights_trained": trained, "clip": vec})
            n += 1
    return rows


def frame_rows(tc: TitleContext, units: list[dict], candidates: list[tuple[int, float, bytes]]) -> list[dict]:
    """Query-by-frame rows from (frame, t_s, jpeg) keyframe candidates, at most one per second."""
    import simplejpeg

    starts = [u["start_s"] for u in units]
    rows, last_bucket = [], None
    for frame, t, data in sorted(candidates, key=lambda c: c[1]):
        bucket = int(t * FRAMES_PER_S)
        if bucket == last_bucket:
            continue
        last_bucket = bucket
        try:
            rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=96, min_height=54)
        except ValueError:
            continue
        i = max(bisect.bisect_right(starts, t) - 1, 0)
        vec = frame_vector(rgb)
        bits = vec[-64:] > 0
        rows.append({**tc.common(), "row_id": f"{tc.title_id}:frames:{frame}", "unit_index": units[i]["unit_index"] if units else None,
                     "frame": int(frame), "t_s": float(t), "dhash": dhash_hex(bits), "frame_vec": vec.tolist()})
    return rows


def speech_rows(tc: TitleContext, transcript: dict | None) -> list[dict]:
    rows = []
    for tr in (transcript or {}).get("tracks") or []:
        for i, seg in enumerate(tr.get("segments") or []):
            text = " ".join(str(seg.get("text") or "").split())
            if not text:
                continue
            words = [{"word": w.get("word"), "start": w.get("start"), "end": w.get("end"), "score": w.get("score")} for w in seg.get("words") or []]
            rows.append({**tc.common(), **tc.timed(_finite(seg["start"]), _finite(seg["end"])), "row_id": f"{tc.title_id}:speech:{tr['track']}:{i}",
                         "text": text, "cjk": cjk_runs(text), "language": seg.get("language") or tr.get("language"), "track": str(tr["track"]),
                         "detail": json.dumps({"words": words}, allow_nan=False, default=float)})
    return rows


def subtitle_rows(tc: TitleContext, tracks: list[dict], cues_by_label: dict[str, pd.DataFrame]) -> list[dict]:
    rows = []
    for tr in tracks:
        label = tr.get("label")
        cues = cues_by_label.get(label) if label else None
        if cues is None:
            continue
        for i, c in enumerate(cues.itertuples()):
            text = " ".join(str(c.text or "").split())
            if not text:
                continue
            rows.append({**tc.common(), **tc.timed(_finite(c.start_s), _finite(c.end_s)), "row_id": f"{tc.title_id}:subtitles:{label}:{i}",
                         "text": text, "cjk": cjk_runs(text), "language": tr.get("language"), "track": label,
                         "detail": json.dumps({"source": tr.get("source"), "style": getattr(c, "style", None), "forced": bool(tr.get("forced"))})})
    return rows


def ocr_rows(tc: TitleContext, text: pd.DataFrame | None, every_s: float = 1.0) -> list[dict]:
    """One row per OCR text group (the same text persisting or moving across frames)."""
    if text is None or len(text) == 0:
        return []
    rows = []
    df = text.copy()
    if "group" not in df.columns:
        df["group"] = range(len(df))
    for g, part in df.groupby("group", sort=True):
        best = part.sort_values("confidence", ascending=False).iloc[0]
        t0, t1 = float(part["t_s"].min()), float(part["t_s"].max()) + every_s
        flags = [f for f in ("burned_in_subtitle", "slate", "rolling") if f in part.columns and bool(part[f].any())]
        rows.append({**tc.common(), **tc.timed(t0, min(t1, tc.duration_s or t1)), "row_id": f"{tc.title_id}:ocr:{int(g)}",
                     "text": " ".join(str(best["text"]).split()), "cjk": cjk_runs(best["text"]), "language": best.get("language"), "track": None,
                     "detail": json.dumps({"box": {k: round(_finite(best[k]), 4) for k in ("x", "y", "w", "h")},
                                           "confidence": round(_finite(best["confidence"]), 1), "flags": flags, "frames": int(len(part))})})
    return rows


def event_rows(tc: TitleContext, qc: dict | None, delivery_date: str | None) -> list[dict]:
    rows = []
    verdict = (qc or {}).get("verdict")
    for i, e in enumerate((qc or {}).get("events") or []):
        metrics = dict(e.get("metrics") or {})
        source = metrics.pop("source", None) or "qc"
        rows.append({**tc.common(), **tc.timed(_finite(e.get("start_s")), _finite(e.get("end_s"))), "row_id": f"{tc.title_id}:events:{i}",
                     "kind": e.get("kind"), "severity": e.get("severity"), "source": source,
                     "track": None if e.get("track") is None else str(e.get("track")), "detail": e.get("detail") or "",
                     "metrics": json.dumps(metrics, default=str), "delivery_date": delivery_date, "verdict": verdict})
    return rows
