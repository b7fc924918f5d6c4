"""Localization signals: subtitles as data, the per-track profile with dub sync and subtitle QC, and
(optional model) speaker turns.

    source_video -> subtitles (main.json + subtitles/<label>.parquet + .vtt)
    source_video + audio_analysis + transcript + audio_speech + shots + subtitles -> localization (localization.json)
    audio_speech + transcript -> speaker_turns (speaker_turns.json)                     (pool: gpu)

Only `subtitles` reads the delivery: the subtitle streams of the container (a demux of those streams,
no picture or sound decoded) and the sidecar subtitle files beside the video. Sound comes from the
audio pass's 16 kHz WAVs; nothing is decoded twice.
"""

from __future__ import annotations

import pandas as pd
from dagster import Failure, MetadataValue

from ..audio.whisper import load_wav16
from ..core.artifacts import Bundle
from ..core.signal import Output, Result, Signal, SignalContext
from . import collect
from .checks import LOCALIZATION_RULES, SPEAKER_RULES, SUBTITLE_RULES
from .events import qc_events
from .resources import DiarizationLoadError
from .subtitle_qc import profile_for
from .subtitle_report import cuts_of, report
from .tracks import SyncLimits, profiles

DOMAIN = "localization"
SCHEMA_VERSION = "1.0"
LOCALIZATION_SCHEMA_VERSION = "1.1"  # 1.1: sync.speed_ratio, conversion, nominal_ratio, speed_search (dubs across frame-rate conversions)
SUBTITLES_SCHEMA_VERSION = "1.1"  # 1.1: tracks[].kind, format, channel, evidence; source "video"; CEA-608 captions in the video
SUBTITLES_CODE_VERSION = "subtitles-3"  # 2: CEA-608 captions (A53 SEI, MOV c608), SDH/forced flags, cue regions from SRT/VTT/ASS; 3: CEA-708 services
LOCALIZATION_CODE_VERSION = "localization-3"  # 2: role silent; every role with evidence. 3: dub speed (frame-rate conversions)
SPEAKERS_CODE_VERSION = "speaker-turns-1"



# ---------------------------------------------------------------------------------------------
# subtitles


def compute_subtitles(sc: SignalContext, source_video: dict) -> Result:
    store, key, local = sc.stage_delivery(source_video["source_uri"])
    tracks, warnings = collect.collect(store, key, local, has_streams=bool(source_video.get("subtitle_tracks")))
    for w in warnings + [f"subtitle {t.track} ({t.file or t.codec}): {w}" for t in tracks for w in t.warnings] \
            + [f"subtitle {t.track} ({t.file}): not read: {t.error}" for t in tracks if t.error]:
        sc.log.warning(f"{sc.title_id}: {w}")
    doc = {"schema_version": SUBTITLES_SCHEMA_VERSION, "title_id": sc.title_id, "tracks": [t.as_dict() for t in tracks], "warnings": warnings,
           "producer": sc.producer(SUBTITLES_CODE_VERSION, model=None)}
    sc.provenance = {"tool": "PyAV + prism subtitle parser", "code_version": SUBTITLES_CODE_VERSION}
    table = pd.DataFrame([{k: d[k] for k in ("track", "source", "language", "label", "codec", "cues", "parsed", "error")} for d in doc["tracks"]],
                         columns=["track", "source", "language", "label", "codec", "cues", "parsed", "error"])
    return Result(Bundle(doc, files=collect.files_of(tracks)), check_value=doc, table=table, metadata={
        "tracks": len(tracks), "parsed": sum(1 for t in tracks if t.parsed and t.cues), "cues": sum(len(t.cues) for t in tracks),
        "languages": MetadataValue.json(sorted({t.label for t in tracks if t.label}))})


SUBTITLES = Signal(
    name="subtitles", domain=DOMAIN, code_version=SUBTITLES_CODE_VERSION, inputs=("source_video",), compute=compute_subtitles,
    description="Every subtitle track of the title as cues: text streams of the container (SubRip, ASS, mov_text, WebVTT) and sidecar "
    ".srt/.vtt/.ass files and .ttml/.dfxp/.xml (IMSC), .scc (CEA-608) and .stl (EBU-STL) captions (ttconv) beside the video (any encoding: "
    "UTF-8/16, CP949, Shift-JIS...; only regular files are opened), CEA-608 closed captions and CEA-708 caption services in the video stream (A53 SEI), CEA-608 in a MOV c608 "
    "track; each track's kind (subtitles / sdh / cea608 / cea708) and forced/SDH flags with their evidence; image streams (PGS, DVB) listed, not parsed.",
    outputs=(Output("subtitles", SUBTITLES_SCHEMA_VERSION, "titles/<title_id>/subtitles/<version>/ (main.json + subtitles/<label>.parquet + .vtt)",
                    kinds=("json", "parquet"), rules=SUBTITLE_RULES, export="subtitles.json"),),
)


# ---------------------------------------------------------------------------------------------
# localization


def compute_localization(sc: SignalContext, source_video: dict, audio_analysis: dict, transcript: dict, audio_speech: dict,
                         shots: pd.DataFrame, subtitles: dict) -> Result:
    title_id = sc.title_id
    cfg = sc.config
    try:
        lim = SyncLimits.from_config(cfg.get("dub_sync"))
        tt_name, tt = profile_for(source_video.get("provider"), cfg.get("timed_text"))
    except (TypeError, ValueError) as exc:
        raise Failure(description=f"{title_id}: localization profile: {str(exc).splitlines()[0]}") from None
    wav_paths = sc.storage.stage_bundle("audio_speech", title_id, "speech") if audio_speech.get("tracks") else {}
    wavs = {t["track"]: wav_paths[t["file"]] for t in audio_speech.get("tracks", []) if t["file"] in wav_paths}
    starts = {t["track"]: float(t.get("start_s") or 0.0) for t in audio_speech.get("tracks", [])}
    transcripts = {t["track"]: t for t in transcript.get("tracks", [])}
    audio, original = profiles(audio_analysis.get("tracks", []), transcript.get("tracks", []), source_video.get("audio_tracks") or [],
                               source_video.get("duration_s"), wavs, starts, source_video.get("original_language"), lim,
                               lambda p: load_wav16(p, mmap=True))
    fps = float(source_video.get("fps") or 25.0)
    cuts = cuts_of(shots)
    sub_paths = sc.storage.stage_bundle("subtitles", title_id, "subtitles")
    subs = []
    for t in subtitles.get("tracks", []):
        entry = {k: t.get(k) for k in ("track", "source", "language", "label", "codec", "file", "forced", "sdh", "kind", "format", "channel",
                                       "parsed", "cues", "error")}
        path = sub_paths.get(f"subtitles/{t['label']}.parquet") if t.get("label") else None
        if path is not None:
            cues = collect.cues_of(pd.read_parquet(path))
            entry["qc"] = report(t, cues, fps=fps, profile=tt, cuts=cuts, audio=audio, original=original, transcripts=transcripts,
                                 lim=cfg.get("subtitle_speech") or {}, duration_s=source_video.get("duration_s"))
        subs.append(entry)
    doc = {
        "schema_version": LOCALIZATION_SCHEMA_VERSION, "title_id": title_id, "original_track": original,
        "original_language": next((a["language"] for a in audio if a["track"] == original), None),
        "audio_tracks": audio, "subtitle_tracks": subs, "timed_text_profile": tt_name,
        "picture": {"duration_s": source_video.get("duration_s"), "fps": source_video.get("fps"), "cuts": len(cuts)},
        "producer": sc.producer(LOCALIZATION_CODE_VERSION, model={
            "language": (transcript.get("model") or {}).get("language_detection") or (transcript.get("model") or {}).get("transcription"),
            "speech": "transcript VAD (whisperx pyannote)",
            "sync": "speed search (frame-rate conversions) + spectral-flux cross-correlation of the 16 kHz tracks (prism)",
            "subtitle_language": "script + stop words (prism)"}, dub_sync_limits=lim.__dict__),
    }
    doc["events"] = qc_events(doc)
    sc.provenance = doc["producer"]["model"]
    for e in doc["events"]:
        if e["severity"] != "info":
            sc.log.warning(f"{title_id}: {e['kind']}: {e['detail']}")
    table = pd.DataFrame([{"track": a["track"], "role": a["role"], "language": a["language"], "container_language": a["container_language"],
                           "speech_ratio": a["speech_ratio"], "offset_ms": (a["sync"] or {}).get("offset_ms"),
                           "drift_ms_per_hour": (a["sync"] or {}).get("drift_ms_per_hour")} for a in audio],
                         columns=["track", "role", "language", "container_language", "speech_ratio", "offset_ms", "drift_ms_per_hour"])
    return Result(doc, table=table, metadata={
        "audio_tracks": len(audio), "subtitle_tracks": len(subs), "original_track": str(original),
        "roles": MetadataValue.json({str(a["track"]): a["role"] for a in audio}),
        "languages": MetadataValue.json({str(a["track"]): a["language"] for a in audio}),
        "qc_events": len(doc["events"])})


LOCALIZATION = Signal(
    name="localization", domain=DOMAIN, code_version=LOCALIZATION_CODE_VERSION,
    inputs=("source_video", "audio_analysis", "transcript", "audio_speech", "shots", "subtitles"), compute=compute_localization,
    description="Per audio track: language (null without enough speech), speech ratio, dialogue loudness, layout, duration against the "
    "picture, role (original / dub / music_and_effects / commentary / silent / unknown) with evidence, dub speed (frame-rate conversion), offset and drift against the original. "
    "Per subtitle track: timing and style QC (timed-text profile per provider), coverage and timing against speech, language and text "
    "against the transcript. Its events join the title's QC verdict. Exported as localization.json.",
    outputs=(Output("localization", LOCALIZATION_SCHEMA_VERSION, "titles/<title_id>/localization.json", kinds=("json",), rules=LOCALIZATION_RULES,
                    export="localization.json", qc_events=lambda doc: doc.get("events") or []),),
)


# ---------------------------------------------------------------------------------------------
# speaker turns (optional model)


def compute_speaker_turns(sc: SignalContext, audio_speech: dict, transcript: dict) -> Result:
    cfg = sc.model.config()
    doc = {"schema_version": SCHEMA_VERSION, "title_id": sc.title_id, "model": cfg.describe(), "tracks": []}
    loaded = sc.model.get()
    if loaded is None:
        doc["note"] = "no diarization model configured (models.diarization.model): no speaker turns computed"
        sc.log.info(f"{sc.title_id}: {doc['note']}")
    else:
        paths = sc.storage.stage_bundle("audio_speech", sc.title_id, "speech")
        speech = {t["track"]: t.get("speech_regions") for t in transcript.get("tracks", [])}
        for t in audio_speech.get("tracks", []):
            if not speech.get(t["track"]) or t["file"] not in paths:
                doc["tracks"].append({"track": t["track"], "turns": [], "note": "no speech"})
                continue
            turns = loaded.turns(load_wav16(paths[t["file"]]))
            for turn in turns:
                turn["start_s"], turn["end_s"] = round(turn["start_s"] + (t["start_s"] or 0.0), 3), round(turn["end_s"] + (t["start_s"] or 0.0), 3)
            doc["tracks"].append({"track": t["track"], "turns": turns, "speakers": len({x["speaker"] for x in turns})})
    model = loaded.describe() if loaded is not None else cfg.describe()  # loaded: with its model record (core/models.py)
    doc["model"] = model
    doc["producer"] = sc.producer(SPEAKERS_CODE_VERSION, model=model)
    sc.provenance = model
    return Result(doc, metadata={"configured": bool(cfg.model), "model": str(cfg.model),
                                 "turns": sum(len(t["turns"]) for t in doc["tracks"])})


SPEAKER_TURNS = Signal(
    name="speaker_turns", domain=DOMAIN, code_version=SPEAKERS_CODE_VERSION, inputs=("audio_speech", "transcript"), pool="gpu",
    model="diarization", compute=compute_speaker_turns, errors=(DiarizationLoadError,),
    description="Speaker turns per audio track (pyannote through WhisperX) where a diarization model is configured; otherwise the "
    "output says that none is (no turns are guessed). Exported as speaker_turns.json.",
    outputs=(Output("speaker_turns", SCHEMA_VERSION, "titles/<title_id>/speaker_turns.json", kinds=("json",), rules=SPEAKER_RULES,
                    export="speaker_turns.json"),),
)
