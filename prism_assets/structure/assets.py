"""Per-title structure signals: on-screen text, scenes, and the title's structure (credits, slates,
burned-in subtitles, the next-episode point).

    frame_samples + localization + transcript + source_video -> text (text.parquet)
    shots + keyframes + frame_samples + shot_embeddings + audio_analysis + localization + transcript -> scenes (scenes.parquet)
    text + scenes + frame_stats + audio_analysis + localization + source_video -> structure (structure.json; QC events)

Nothing here decodes the video: OCR reads the keyframe candidates the one visual pass kept (the best
frame of every <= 0.5 s window, longest side 640 px), scenes read the keyframes and 1/s samples, and
sound is the audio pass's analysis and the transcript's VAD speech.
"""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue

from ..core.artifacts import ArtifactStore
from ..core.signal import Output, Result, Signal, SignalContext
from ..visual.packs import PacksMissingError, pack_paths, read_pack_bytes
from . import credits as credits_mod
from . import ocr, text_flags
from . import scenes as scenes_mod
from .checks import SCENES_RULES, STRUCTURE_RULES, TEXT_RULES
from .events import series_changes, series_events, structure_events
from .sound import original_track, segments_of, speech_of

DOMAIN = "structure"
SCHEMA_VERSION = "1.0"
TEXT_CODE_VERSION = "text-4"  # 2: poster-pool frames only where the prefilter sees text likely; 3: fast crawls roll, slates hold still; 4: text blocks read once, both polarities
SCENES_CODE_VERSION = "scenes-1"
STRUCTURE_CODE_VERSION = "structure-3"  # 2: episode claim/change events, crawls from the first half; 3: credits start at a cut or the first line, not at a dark scene



def with_attrs(df: pd.DataFrame, prod: dict, schema_version: str = SCHEMA_VERSION) -> pd.DataFrame:
    df.attrs = {"schema_version": schema_version, "producer": prod}
    return df


# ---------------------------------------------------------------------------------------------
# text (OCR)


def title_languages(source_video: dict, localization: dict) -> set[str]:
    """ISO 639-1 codes the title speaks or subtitles: audio tracks (decided on speech), subtitle tracks, the sidecar."""
    codes = {a.get("language") for a in (localization or {}).get("audio_tracks") or []}
    codes |= {t.get("language") for t in (localization or {}).get("subtitle_tracks") or []}
    codes |= {source_video.get("original_language")} | set(source_video.get("expected_languages") or [])
    return {str(c).lower() for c in codes if c}


def compute_text(sc: SignalContext, frame_samples: pd.DataFrame, localization: dict, transcript: dict, source_video: dict) -> Result:
    title_id = sc.title_id
    try:
        cfg = ocr.OcrConfig.from_config(sc.config.get("ocr"))
    except (TypeError, ValueError) as exc:
        raise sc.fail(f"structure.ocr settings: {str(exc).splitlines()[0]}") from None
    cfg = cfg.for_title(title_languages(source_video, localization))
    info = ocr.engine_info(cfg)
    cands = frame_samples[frame_samples["kind"] == "keyframe"].sort_values("frame").reset_index(drop=True)
    packs = pack_paths(sc.storage, title_id) if len(cands) else {}

    def jpeg(r) -> bytes:
        return read_pack_bytes(packs[r.pack], r.offset, r.length)

    scored = pd.DataFrame({"frame": cands["frame"].astype(int), "t_s": cands["t_s"].astype(float),
                           "score": [ocr.text_likelihood(jpeg(r)) for r in cands.itertuples()]})
    chosen = ocr.select_frames(scored, cfg) if len(scored) else scored
    by_frame = {int(r.frame): r for r in cands.itertuples()}
    # poster-pool frames (keyframe candidates too) are OCR'd whenever the prefilter sees text likely: posters penalise
    # text and exclude slates; below the prefilter a frame counts as text-free, as every other frame does
    likely = set(scored.loc[scored["score"] >= cfg.prefilter, "frame"].astype(int))
    posters = {int(f) for f in frame_samples.loc[frame_samples["kind"] == "poster", "frame"]} & likely
    wanted = sorted({int(f) for f in chosen["frame"]} | posters)
    frames = [(f, float(by_frame[f].t_s), jpeg(by_frame[f])) for f in wanted]
    sc.log.info(f"{title_id}: OCR of {len(frames)} of {len(cands)} keyframe candidates ({len(posters)} of them poster-pool frames)")

    def progress(done: int, total: int):
        sc.log.info(f"{title_id}: OCR {done}/{total} frames")

    df, warnings = ocr.ocr_frames(frames, cfg, progress=progress)
    for w in warnings:
        sc.log.warning(f"{title_id}: {w}")
    speech = speech_of(transcript, original_track(localization))
    flagged = text_flags.flag_text(df, speech, float(source_video.get("duration_s") or 0.0), sc.config.get("text_flags"))
    sc.provenance = info
    prod = sc.producer(TEXT_CODE_VERSION, model=info, candidates=len(cands), ocr_frames=[int(f[0]) for f in frames],
                    ocr_config=cfg.__dict__ if hasattr(cfg, "__dict__") else None, warnings=warnings)
    flagged = with_attrs(flagged, prod)
    n_burn = int(flagged["burned_in_subtitle"].sum()) if len(flagged) else 0
    n_slate = int(flagged["slate"].sum()) if len(flagged) else 0
    return Result(flagged, table=flagged, table_columns=["t_s", "text", "language", "confidence", "burned_in_subtitle", "slate", "rolling"],
                  metadata={"ocr_frames": len(frames), "candidates": len(cands), "lines": len(flagged), "burned_in_lines": n_burn,
                            "slate_lines": n_slate, "engine": f"tesseract {info.get('version')}",
                            "languages": MetadataValue.json(sorted({x for x in flagged.get("language", pd.Series([], dtype=object)).dropna()}))})


TEXT = Signal(
    name="text", domain=DOMAIN, code_version=TEXT_CODE_VERSION, inputs=("frame_samples", "localization", "transcript", "source_video"),
    compute=compute_text, errors=(ocr.OcrError, PacksMissingError),
    description="On-screen text: Tesseract OCR (eng, kor, jpn by default) of the keyframe candidates the one visual pass kept (at most one "
    "frame a second, likely-text frames first, bounded per title): per line its box, text, language, confidence, and flags for burned-in "
    "subtitles (bottom-band text changing with speech), slates and rolling text. The OCR engine and version are recorded like a model.",
    outputs=(Output("text", SCHEMA_VERSION, "titles/<title_id>/text.parquet", kinds=("tesseract", "parquet"), rules=TEXT_RULES,
                    export="text.parquet"),),
)


# ---------------------------------------------------------------------------------------------
# scenes


def compute_scenes(sc: SignalContext, shots: pd.DataFrame, keyframes: pd.DataFrame, frame_samples: pd.DataFrame, shot_embeddings: pd.DataFrame,
                   audio_analysis: dict, localization: dict, transcript: dict) -> Result:
    title_id = sc.title_id
    try:
        params = scenes_mod.SceneParams.from_config(sc.config.get("scenes"))
    except (TypeError, ValueError) as exc:
        raise sc.fail(f"structure.scenes settings: {str(exc).splitlines()[0]}") from None
    packs = pack_paths(sc.storage, title_id)
    starts = shots["start_frame"].to_numpy()
    pictures = [(int(r.shot_index), read_pack_bytes(packs[r.pack], r.offset, r.length)) for r in keyframes.itertuples()]
    samples = frame_samples[frame_samples["kind"] == "sample"]
    for r in samples.itertuples():
        idx = int(starts.searchsorted(int(r.frame), side="right") - 1)
        if idx >= 0:
            pictures.append((idx, read_pack_bytes(packs[r.pack], r.offset, r.length)))
    colour = scenes_mod.shot_colour_features(pictures)
    emb_info = (shot_embeddings.attrs.get("producer") or {}).get("model") or {}
    trained = bool(emb_info.get("weights_trained"))
    embeddings = scenes_mod.usable_embeddings(shot_embeddings, emb_info)  # None unless the weights are trained
    track = original_track(localization)
    df = scenes_mod.group_scenes(shots, colour, embeddings, segments_of(audio_analysis, track), speech_of(transcript, track), params,
                                 keyframes=keyframes)
    model = {"method": "overlapping links over shot looks (colour/layout)" + (" + CLIP shot embeddings" if embeddings else ""),
             "embeddings": ("used: " if embeddings else "not used: ") + (f"{emb_info.get('model')}/{emb_info.get('weights')}" if emb_info else "none"),
             "params": params.as_dict()}
    if not trained:
        sc.log.info(f"{title_id}: scenes without CLIP embeddings (weights not trained): colour/layout, sound and black evidence only")
    sc.provenance = model
    df = with_attrs(df, sc.producer(SCENES_CODE_VERSION, model=model, shots=len(shots), audio_track=track))
    sc.log.info(f"{title_id}: {len(df)} scenes from {len(shots)} shots")
    return Result(df, table=df, table_columns=["scene_index", "start_s", "end_s", "n_shots", "boundary_in", "boundary_score"], metadata={
        "scenes": len(df), "shots": len(shots), "embeddings_used": bool(embeddings),
        "median_scene_s": float((df["end_s"] - df["start_s"]).median()) if len(df) else 0.0})


SCENES = Signal(
    name="scenes", domain=DOMAIN, code_version=SCENES_CODE_VERSION,
    inputs=("shots", "keyframes", "frame_samples", "shot_embeddings", "audio_analysis", "localization", "transcript"),
    compute=compute_scenes, errors=(PacksMissingError,),
    description="Shots grouped into scenes: shots that share a look (colour and layout of their keyframes and samples; CLIP shot "
    "embeddings too when the weights are trained) link within a window, a boundary is where no link crosses, strengthened by black, "
    "fades and silence, vetoed by speech running across the cut. Per scene: its shots, start/end, the evidence for its boundary and a "
    "representative keyframe.",
    outputs=(Output("scenes", SCHEMA_VERSION, "titles/<title_id>/scenes.parquet", kinds=("parquet",), rules=SCENES_RULES, export="scenes.parquet"),),
)


# ---------------------------------------------------------------------------------------------
# structure (credits, slates, burned-in subtitles, next episode)


def per_second_luma(frame_stats: pd.DataFrame) -> pd.DataFrame:
    if not len(frame_stats):
        return pd.DataFrame({"t_s": [], "luma_mean": []})
    sec = frame_stats["t_s"].astype(float).floordiv(1.0).astype(int)
    out = frame_stats.groupby(sec)["luma_mean"].mean()
    return pd.DataFrame({"t_s": out.index.astype(float), "luma_mean": out.to_numpy(dtype=float)})


def _previous_structure(sc: SignalContext) -> dict | None:
    """The title's structure.json from its previous run (what series/season/episode it was recorded with), or None."""
    try:
        arts = sc.storage.artifacts()
        base = ArtifactStore.base_key("structure", sc.title_id)
        doc = arts.read(base) if arts.exists(base) else None
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable earlier output only loses the change note
        sc.log.warning(f"{sc.title_id}: previous structure.json not readable ({type(exc).__name__}): no episode-change check")
        return None
    return doc if isinstance(doc, dict) else None


def compute_structure(sc: SignalContext, text: pd.DataFrame, scenes: pd.DataFrame, frame_stats: pd.DataFrame, audio_analysis: dict,
                      localization: dict, source_video: dict) -> Result:
    title_id = sc.title_id
    duration = float(source_video.get("duration_s") or 0.0)
    track = original_track(localization)
    found = credits_mod.detect_credits(text, per_second_luma(frame_stats), segments_of(audio_analysis, track), duration, sc.config.get("credits"))
    doc = {
        "schema_version": SCHEMA_VERSION, "title_id": title_id, "duration_s": duration,
        "credits": {"opening": found.get("opening"), "end": found.get("end")},
        "next_episode_s": found.get("next_episode_s"),
        "slates": text_flags.slates(text) if len(text) else [],
        "burned_in_subtitles": text_flags.burned_in_summary(text) if len(text) else None,
        "scenes": {"count": len(scenes), "median_s": float((scenes["end_s"] - scenes["start_s"]).median()) if len(scenes) else None},
        "series": source_video.get("series"),
        "producer": sc.producer(STRUCTURE_CODE_VERSION, model={
            "credits": "OCR text density + rolling text + dark picture + music without speech (prism)",
            "ocr": (text.attrs.get("producer") or {}).get("model"), "params": found.get("params")}, audio_track=track),
    }
    series = source_video.get("series")
    delivery_date = source_video.get("delivery_date")
    claims = sc.catalog.episode_claims(series.get("series_id"), series.get("season"), series.get("episode"), exclude=title_id) if series else []
    doc["series_changes"] = series_changes(_previous_structure(sc), series, delivery_date)
    doc["events"] = structure_events(doc, source_video.get("provider"), sc.config.get("burned_in_subtitles") or {})
    doc["events"] += series_events(series, claims, doc["series_changes"], delivery_date, duration)
    for e in doc["events"]:
        if e["severity"] != "info":
            sc.log.warning(f"{title_id}: {e['kind']}: {e['detail']}")
    sc.provenance = doc["producer"]["model"]
    end = doc["credits"]["end"] or {}
    return Result(doc, metadata={
        "end_credits_s": MetadataValue.json([end.get("start_s"), end.get("end_s")] if end else None),
        "opening_credits": bool(doc["credits"]["opening"]), "next_episode_s": float(doc["next_episode_s"]) if doc["next_episode_s"] is not None else None,
        "slates": len(doc["slates"]), "burned_in_subtitles_s": float((doc["burned_in_subtitles"] or {}).get("seconds") or 0.0),
        "qc_events": len(doc["events"])})


STRUCTURE = Signal(
    name="structure", domain=DOMAIN, code_version=STRUCTURE_CODE_VERSION,
    inputs=("text", "scenes", "frame_stats", "audio_analysis", "localization", "source_video"), compute=compute_structure,
    description="The title's structure: opening and end credits (OCR text density, rolling text, dark picture, music without speech), the "
    "next-episode point, slates and burned-in subtitles (a QC event where the provider's profile forbids them). Exported as structure.json.",
    outputs=(Output("structure", SCHEMA_VERSION, "titles/<title_id>/structure.json", kinds=("json",), rules=STRUCTURE_RULES,
                    export="structure.json", qc_events=lambda doc: doc.get("events") or []),),
)
