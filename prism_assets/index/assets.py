"""`search_index`: a title's rows in the cross-title index (LanceDB), after every signal it reads.

One writer: the step runs in the `index` pool (limit 1 on the instance) and replaces exactly the
title's rows in each table in one commit per table (backend.py). The artifact
`titles/<id>/search_index.json` records what was written (rows per table, table versions, the
models), so the catalog and `prism export --partial` see the step like any other.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pandas as pd

from ..core.artifacts import ArtifactStore
from ..core.checks import CheckRule
from ..core.signal import Output, Result, Signal, SignalContext
from ..core.store import StoreError
from .backend import IndexError_
from .rows import FRAMES_PER_S, TitleContext, event_rows, frame_rows, ocr_rows, scene_spans, speech_rows, structure_labels, subtitle_rows, unit_rows
from .tables import FTS_TABLES, INDEX_SCHEMA_VERSION

INDEX_CODE_VERSION = "index-1"
INDEX_ARTIFACT_SCHEMA = "1.0"


def _rows_cover_shots(doc: dict) -> tuple[bool, dict]:
    units = doc["tables"].get("units", {}).get("rows", 0)
    return units >= doc["shots"], {"units": units, "shots": doc["shots"]}


def _text_rows_embedded(doc: dict) -> tuple[bool, dict]:
    return doc["text_rows_without_vector"] == 0, {"text_rows": doc["text_rows"], "without_vector": doc["text_rows_without_vector"]}


RULES = (
    CheckRule("units_cover_shots", "Every shot has at least one unit row in the index.", _rows_cover_shots),
    CheckRule("text_rows_embedded", "Every speech, subtitle and OCR row has its text embedding.", _text_rows_embedded),
)


def _season_row(storage, series: dict | None, title_id: str) -> dict | None:
    if not series or not series.get("season_key"):
        return None
    arts = storage.artifacts()
    base = ArtifactStore.base_key("season_structure", series["season_key"], kind="seasons")
    try:
        doc = arts.read(base) if arts.exists(base) else None
    except StoreError:
        return None
    return next((e for e in (doc or {}).get("episodes") or [] if e.get("title_id") == title_id), None)


def _subtitle_cues(storage, title_id: str) -> dict[str, pd.DataFrame]:
    arts = storage.artifacts()
    out = {}
    for name, key in arts.bundle_files(ArtifactStore.base_key("subtitles", title_id)).items():
        if name.startswith("subtitles/") and name.endswith(".parquet"):
            out[name[len("subtitles/"):-len(".parquet")]] = pd.read_parquet(io.BytesIO(arts.store.get_bytes(key)))
    return out


def _candidates(storage, title_id: str, frame_samples: pd.DataFrame | None) -> list[tuple[int, float, bytes]]:
    """(frame, t_s, jpeg) of the visual pass's keyframe candidates, the first of each second (what `frame_rows` keeps),
    read from its pack (no decode of the video; each pack opened once)."""
    if frame_samples is None or len(frame_samples) == 0:
        return []
    from ..visual.packs import pack_paths

    paths = pack_paths(storage, title_id)
    rows = frame_samples[frame_samples["kind"] == "keyframe"].sort_values("t_s")
    rows = rows[rows["pack"].isin(list(paths))]
    rows = rows.loc[~(rows["t_s"] * FRAMES_PER_S).astype(int).duplicated()]
    out = []
    for pack, part in rows.groupby("pack", sort=False):
        with open(paths[pack], "rb") as fh:
            for r in part.itertuples():
                fh.seek(int(r.offset))
                out.append((int(r.frame), float(r.t_s), fh.read(int(r.length))))
    return sorted(out, key=lambda c: c[1])


def _clip_info(df: pd.DataFrame | None) -> dict:
    producer = (getattr(df, "attrs", None) or {}).get("producer") or {}
    model = producer.get("model")
    return model if isinstance(model, dict) else {}


def title_row(sv: dict, qc: dict | None, localization: dict | None, subtitles: dict | None, text: pd.DataFrame | None, posters,
              structure: dict | None, season: dict | None, counts: dict, models: dict, index_version: str) -> dict:
    series = sv.get("series") or {}
    audio_langs = sorted({t["language"] for t in (localization or {}).get("audio_tracks") or [] if t.get("language")})
    sub_langs = sorted({t["language"] for t in (subtitles or {}).get("tracks") or [] if t.get("language") and t.get("cues")})
    ocr_langs = sorted({str(x) for x in (text["language"].dropna().unique() if text is not None and len(text) else [])})
    poster = None
    if posters is not None and len(posters):
        poster = str(posters.sort_values("rank").iloc[0]["image"])
    credits = (structure or {}).get("credits") or {}
    summary = {
        "credits": credits, "next_episode_s": (structure or {}).get("next_episode_s"),
        "slates": len((structure or {}).get("slates") or []), "burned_in_subtitles": (structure or {}).get("burned_in_subtitles"),
        "intro": (season or {}).get("intro"), "recap": (season or {}).get("recap"),
        "audio_tracks": [{k: t.get(k) for k in ("track", "language", "role", "title")} | {"offset_ms": (t.get("sync") or {}).get("offset_ms")}
                         for t in (localization or {}).get("audio_tracks") or []],
        "subtitle_tracks": [{k: t.get(k) for k in ("track", "label", "language", "forced", "cues", "source")} for t in (subtitles or {}).get("tracks") or []],
        "event_counts": (qc or {}).get("event_counts") or {}, "rows": {k: v["rows"] for k, v in counts.items()}, "models": models,
        "index_schema_version": INDEX_SCHEMA_VERSION,
    }
    return {"title_id": sv["title_id"], "name": sv.get("title_name"), "provider": sv.get("provider"), "series_id": series.get("series_id"),
            "season": series.get("season"), "episode": series.get("episode"), "delivery_date": sv.get("delivery_date"),
            "duration_s": sv.get("duration_s"), "fps": sv.get("fps"), "width": sv.get("width"), "height": sv.get("height"),
            "languages": sorted(set(audio_langs) | {x.split("-")[0] for x in sub_langs} | set(ocr_langs)), "audio_languages": audio_langs,
            "subtitle_languages": sub_langs, "qc_verdict": (qc or {}).get("verdict"), "qc_reasons": list((qc or {}).get("reasons") or []),
            "poster": poster, "summary": json.dumps(summary, default=str), "text_model": models.get("text"), "clip_model": models.get("clip"),
            "clip_weights_trained": bool(models.get("clip_weights_trained")), "index_version": index_version,
            "indexed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def compute_index(sc: SignalContext, source_video: dict, shots: pd.DataFrame, keyframes: pd.DataFrame, embeddings: pd.DataFrame,
                  shot_embeddings: pd.DataFrame, frame_samples: pd.DataFrame, transcript: dict, subtitles: dict, localization: dict,
                  text: pd.DataFrame, scenes: pd.DataFrame, structure: dict, qc: dict, posters: pd.DataFrame) -> Result:
    import time

    t0 = time.perf_counter()
    title_id = sc.title_id
    season = _season_row(sc.storage, source_video.get("series"), title_id)
    tc = TitleContext(title_id=title_id, index_version=sc.run_id, fps=float(source_video.get("fps") or 25.0),
                      duration_s=float(source_video.get("duration_s") or 0.0), series=source_video.get("series"),
                      labels=structure_labels(structure, season), scenes=scene_spans(scenes))
    clip = _clip_info(shot_embeddings) or _clip_info(embeddings)
    units = unit_rows(tc, shots, keyframes, embeddings, shot_embeddings, clip)
    rows = {
        "units": units,
        "frames": frame_rows(tc, units, _candidates(sc.storage, title_id, frame_samples)),
        "speech": speech_rows(tc, transcript),
        "subtitles": subtitle_rows(tc, (subtitles or {}).get("tracks") or [], _subtitle_cues(sc.storage, title_id)),
        "ocr": ocr_rows(tc, text),
        "events": event_rows(tc, qc, source_video.get("delivery_date")),
    }
    t_rows = time.perf_counter() - t0
    embedder = sc.model.get()
    texts = [r["text"] for name in FTS_TABLES for r in rows[name]]
    vectors = embedder.embed(texts) if texts else []
    i = 0
    for name in FTS_TABLES:
        for r in rows[name]:
            r["vector"] = vectors[i].tolist()
            i += 1
    prov = embedder.provenance
    models = {"text": f"{prov['model']}@{str(prov.get('sha256') or '')[:12]}", "text_model": prov,
              "clip": f"{clip.get('model')}/{clip.get('weights')}" if clip else None, "clip_weights_trained": bool(clip.get("weights_trained"))}
    trow = title_row(source_video, qc, localization, subtitles, text, posters, structure, season,
                     {k: {"rows": len(v)} for k, v in rows.items()}, {k: v for k, v in models.items() if k != "text_model"}, sc.run_id)
    t_embed = time.perf_counter() - t0 - t_rows
    backend = sc.resources["search_index"].backend()
    written = backend.replace_title(title_id, rows, trow)
    seconds = {"rows": round(t_rows, 3), "embed": round(t_embed, 3), "write": round(time.perf_counter() - t0 - t_rows - t_embed, 3),
               "total": round(time.perf_counter() - t0, 3)}
    sc.provenance = {"text_model": prov, "clip": models["clip"], "clip_weights_trained": models["clip_weights_trained"],
                     "index": backend.uri}
    doc = {"schema_version": INDEX_ARTIFACT_SCHEMA, "title_id": title_id, "index_version": sc.run_id, "index_uri": backend.uri,
           "index_schema_version": INDEX_SCHEMA_VERSION, "tables": written, "shots": int(len(shots)), "text_rows": len(texts),
           "text_rows_without_vector": sum(1 for n in FTS_TABLES for r in rows[n] if r.get("vector") is None),
           "models": {"text": prov, "clip": models["clip"], "clip_weights_trained": models["clip_weights_trained"]},
           "seconds": seconds, "producer": {"tool": "prism-index", "code_version": INDEX_CODE_VERSION}}
    table = pd.DataFrame([{"table": k, "rows": v["rows"], "version": v.get("version")} for k, v in written.items()])
    md = {"index_version": sc.run_id, "build_seconds": seconds["total"], "rows": int(sum(v["rows"] for v in written.values())),
          "text_model": models["text"], "visual_search": "on" if models["clip_weights_trained"] else "off (CLIP weights are random-init)"}
    return Result(doc, metadata=md, table=table)


INDEX = Signal(
    name="search_index",
    domain="index",
    description="The title's rows in the cross-title search index (LanceDB): units (shots / <= 10 s windows) with CLIP vectors, "
    "query-by-frame vectors, speech, subtitles and on-screen text with MiniLM vectors and an n-gram full-text index, QC and "
    "localization events. Re-processing replaces exactly the title's rows.",
    code_version=INDEX_CODE_VERSION,
    inputs=("source_video", "shots", "keyframes", "embeddings", "shot_embeddings", "frame_samples", "transcript", "subtitles",
            "localization", "text", "scenes", "structure", "qc", "posters"),
    outputs=(Output("search_index", INDEX_ARTIFACT_SCHEMA, "titles/<title_id>/search_index.json", kinds=("lancedb",), rules=RULES),),
    compute=compute_index,
    pool="index",
    model="text_model",
    resources=("search_index",),
    errors=(IndexError_,),
)
