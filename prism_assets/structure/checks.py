"""Asset checks of the structure outputs (evaluated in the step, per title or season, on the value just produced)."""

from __future__ import annotations

import math

import pandas as pd
from dagster import AssetCheckSeverity

from ..core import checks

TEXT_COLUMNS = ("frame", "t_s", "line", "text", "language", "script", "confidence", "x", "y", "w", "h", "burned_in_subtitle", "slate", "rolling")


def _text_valid(df: pd.DataFrame):
    missing = [c for c in TEXT_COLUMNS if c not in df.columns]
    if missing:
        return False, {"missing_columns": missing}
    problems = []
    if len(df):
        box = df[["x", "y", "w", "h"]].to_numpy(dtype=float)
        if not ((box >= -1e-6) & (box <= 1 + 1e-6)).all():
            problems.append("a box outside the picture (0-1)")
        if (df["text"].astype(str).str.strip() == "").any():
            problems.append("an empty text line")
        if not df["confidence"].between(0, 100).all():
            problems.append("confidence outside 0-100")
    engine = (df.attrs.get("producer") or {}).get("model") or {}
    if not engine.get("version"):
        problems.append("no OCR engine version recorded")
    return not problems, {"lines": len(df), "frames": int(df["frame"].nunique()) if len(df) else 0, "problems": problems}


def _text_found(df: pd.DataFrame):
    prod = df.attrs.get("producer") or {}
    return True, {"ocr_frames": len(prod.get("ocr_frames") or []), "lines": len(df), "warnings": (prod.get("warnings") or [])[:10]}


TEXT_RULES = (
    checks.CheckRule("text_valid", "Every OCR line has text, a box inside the picture, a confidence 0-100, and the engine version is recorded.",
                     _text_valid, blocking=True),
    checks.CheckRule("text_ocr_complete", "Every chosen frame was OCR'd (timeouts and failures listed).",
                     lambda df: (not (df.attrs.get("producer") or {}).get("warnings"), _text_found(df)[1]), severity=AssetCheckSeverity.WARN),
)


def _scenes_tile(df: pd.DataFrame):
    n_shots = int((df.attrs.get("producer") or {}).get("shots") or 0)
    problems = []
    if n_shots and not len(df):
        problems.append("no scene")
    if len(df):
        covered = [s for shots in df["shots"] for s in list(shots)]
        if n_shots and sorted(covered) != list(range(n_shots)):
            problems.append("scenes do not cover every shot exactly once")
        if (df["end_s"] < df["start_s"]).any():
            problems.append("a scene ends before it starts")
        if not (df["start_s"].diff().dropna() > 0).all():
            problems.append("scenes not in time order")
    return not problems, {"scenes": len(df), "shots": n_shots, "problems": problems}


SCENES_RULES = (
    checks.CheckRule("scenes_tile_shots", "Scenes are in time order and cover every shot exactly once.", _scenes_tile, blocking=True),
    checks.CheckRule("scenes_have_keyframe", "Every scene names a representative keyframe.",
                     lambda df: (bool(len(df) == 0 or df["keyframe_frame"].notna().all()),
                                 {"without": int(df["keyframe_frame"].isna().sum()) if len(df) else 0}), severity=AssetCheckSeverity.WARN),
)


def _span_ok(span, duration: float) -> bool:
    if span is None:
        return True
    s, e = span.get("start_s"), span.get("end_s")
    return all(isinstance(x, (int, float)) and math.isfinite(x) for x in (s, e)) and 0 <= s <= e <= duration + 1.0


def _structure_valid(doc: dict):
    d = float(doc.get("duration_s") or 0.0)
    problems = [f"{k} credits outside the title" for k in ("opening", "end") if not _span_ok(doc["credits"].get(k), d)]
    problems += [f"slate {i} outside the title" for i, s in enumerate(doc.get("slates") or []) if not _span_ok(s, d)]
    n = doc.get("next_episode_s")
    if n is not None and not 0 <= n <= d + 1.0:
        problems.append("next_episode_s outside the title")
    return not problems, {"problems": problems, "credits": {k: bool(v) for k, v in doc["credits"].items()}}


STRUCTURE_RULES = (
    checks.CheckRule("structure_valid", "Credits, slates and the next-episode point lie inside the title.", _structure_valid, blocking=True),
    checks.CheckRule("structure_no_fail_events", "No fail-severity structure event (burned-in subtitles a provider forbids).",
                     lambda doc: (not any(e["severity"] == "fail" for e in doc.get("events") or []),
                                  {"events": [f"{e['severity']}: {e['kind']}" for e in doc.get("events") or []][:10]}),
                     severity=AssetCheckSeverity.WARN),
)


def _n(packed) -> int:
    return int((packed or {}).get("shape", [0])[0]) if isinstance(packed, dict) else 0


def _fingerprint_valid(doc: dict):
    audio, pics = doc.get("audio") or {}, doc.get("pictures") or {}
    problems = []
    if audio and _n(audio.get("items")) and not audio.get("item_s"):
        problems.append("audio items without a hop")
    if pics and _n(pics.get("t_s")) != _n(pics.get("hash")):
        problems.append("picture hashes and times differ in length")
    return not problems, {"audio_items": _n(audio.get("items")), "pictures": _n(pics.get("hash")), "problems": problems}


FINGERPRINT_RULES = (
    checks.CheckRule("fingerprint_valid", "Audio items carry their hop; every picture hash has its time.", _fingerprint_valid, blocking=True),
    checks.CheckRule("fingerprint_has_audio", "The title's original track was fingerprinted (intro/recap matching needs it); "
                     "passes as not applicable for a title outside a series.",
                     lambda doc: (doc.get("applicable") is False or _n((doc.get("audio") or {}).get("items")) > 0, {"note": doc.get("note")}),
                     severity=AssetCheckSeverity.WARN),
)


def _season_valid(doc: dict):
    problems = []
    for ep in doc.get("episodes") or []:
        for k in ("intro", "recap"):
            if not _span_ok(ep.get(k), float(ep.get("duration_s") or 0.0)):
                problems.append(f"{ep['title_id']}: {k} outside the episode")
    return not problems, {"episodes": len(doc.get("episodes") or []), "problems": problems[:10]}


SEASON_RULES = (
    checks.CheckRule("season_spans_valid", "Every intro and recap lies inside its episode.", _season_valid, blocking=True),
    checks.CheckRule("season_intros_found", "An intro was found in every episode of a season of two or more fingerprinted episodes.",
                     lambda doc: (len(doc.get("episodes") or []) < 2 or all(ep.get("intro") for ep in doc["episodes"]),
                                  {"without_intro": [ep["title_id"] for ep in doc.get("episodes") or [] if not ep.get("intro")][:20]}),
                     severity=AssetCheckSeverity.WARN),
)
