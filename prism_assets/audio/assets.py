"""Audio signals: one decode pass -> window statistics, loudness blocks, 16 kHz speech -> transcript
(WhisperX). Only `audio_pass` decodes.

    source_video -> audio_pass [audio_stats, audio_loudness, audio_speech]   (pool: decode)
    audio_speech -> transcript (transcript.json + .srt + .vtt)                 (pool: gpu)
"""

import pandas as pd
from dagster import Failure, MetadataValue

from ..core.artifacts import Bundle
from ..core.signal import Output, Result, Signal, SignalContext
from .checks import LOUD_RULES, SPEECH_RULES, STATS_RULES, TRANSCRIPT_RULES
from .decode import AUDIO_PASS_CODE_VERSION, AUDIO_SCHEMA_VERSION, AudioDecodeError, AudioPassConfig, run_audio_pass
from .whisper import TRANSCRIBE_CODE_VERSION, WhisperLoadError, load_wav16, to_srt, to_vtt, transcribe_audio

DOMAIN = "audio"



# ---------------------------------------------------------------------------------------------
# audio_pass


def compute_audio_pass(sc: SignalContext, source_video: dict) -> dict[str, Result]:
    """Decode every audio track of the title once (PyAV, streamed) for all audio work."""
    title_id = sc.title_id
    try:
        cfg = AudioPassConfig.from_config(sc.config.get("pass"))
    except (TypeError, ValueError) as exc:
        raise Failure(description=f"profile {sc.profile.name}: {exc}") from None
    _, _, local = sc.stage_delivery(source_video["source_uri"])
    ap = run_audio_pass(local, sc.workdir("audio"), cfg, progress=lambda t: sc.log.info(f"{title_id}: audio decoded to {t:.0f}s"))
    tracks = []
    for t in ap.tracks:
        silent = t["decoded"] and t["integrated_lufs"] is None
        tracks.append({**t, "silent": bool(silent or not t["decoded"])})
    prod = sc.producer(AUDIO_PASS_CODE_VERSION, tracks=tracks, window_s=cfg.window_s,
                    expected_tracks=len(source_video.get("audio_tracks") or []), pass_meta=ap.meta)
    sc.provenance = {"tool": "PyAV", "code_version": AUDIO_PASS_CODE_VERSION}
    stats = ap.stats
    stats.attrs = {"schema_version": AUDIO_SCHEMA_VERSION, "producer": prod}
    loud = ap.loudness
    loud.attrs = {"schema_version": AUDIO_SCHEMA_VERSION, "producer": prod}
    speech_main = {"schema_version": AUDIO_SCHEMA_VERSION, "sample_rate": 16000, "format": "wav pcm_s16le mono",
                   "producer": {k: v for k, v in prod.items() if k != "pass_meta"},
                   "tracks": [{"track": t["track"], "file": f"speech_{t['track']}.wav", "start_s": t["start_s"],
                               "duration_s": t["duration_s"], "samples": t["speech_samples"], "dialogue_source": t.get("dialogue_source", "mix"),
                               "dialogue_file": t.get("dialogue_file") or f"speech_{t['track']}.wav"} for t in tracks if t["decoded"]]}
    speech = Bundle(speech_main, files=dict(ap.speech_files))
    if ap.meta["decode_errors"]:
        sc.log.warning(f"{title_id}: {ap.meta['decode_errors']} audio packets failed to decode (skipped)")
    if not tracks:
        sc.log.warning(f"{title_id}: no audio stream")
    summary = pd.DataFrame([{k: t.get(k) for k in ("track", "codec", "channels", "sample_rate", "duration_s", "integrated_lufs", "true_peak_dbtp")}
                            for t in tracks], columns=["track", "codec", "channels", "sample_rate", "duration_s", "integrated_lufs", "true_peak_dbtp"])
    return {
        "audio_stats": Result(stats, table=summary, metadata={
            "rows": len(stats), "tracks": len(tracks), "decode_seconds": ap.meta["seconds"], "realtime_factor": ap.meta["realtime_factor"],
            "summary": MetadataValue.json(summary.to_dict("records"))}),
        "audio_loudness": Result(loud, metadata={"blocks": len(loud), "integrated_lufs": MetadataValue.json([t["integrated_lufs"] for t in tracks])}),
        "audio_speech": Result(speech, metadata={"tracks": len(speech_main["tracks"])}),
    }


AUDIO_PASS = Signal(
    name="audio_pass", domain=DOMAIN, code_version=AUDIO_PASS_CODE_VERSION, inputs=("source_video",),
    pool="decode", priority=2, compute=compute_audio_pass, errors=(AudioDecodeError,),
    description="The one audio decode of the title (every track): 10 ms window statistics, EBU R128 loudness, 16 kHz speech WAVs.",
    outputs=(
        Output("audio_stats", AUDIO_SCHEMA_VERSION, "titles/<title_id>/audio_stats.parquet", kinds=("audio", "pyav", "parquet"), rules=STATS_RULES,
               description="One row per 10 ms window per audio track (peak, RMS, digital zero), from the one audio decode pass. Read by QC."),
        Output("audio_loudness", AUDIO_SCHEMA_VERSION, "titles/<title_id>/audio_loudness.parquet", kinds=("audio", "parquet"), rules=LOUD_RULES,
               description="Streaming EBU R128 per track: 400 ms block powers every 100 ms; integrated loudness, LRA, true and sample peak in the attrs."),
        Output("audio_speech", AUDIO_SCHEMA_VERSION, "titles/<title_id>/audio_speech/<version>/ (main.json + speech_<track>.wav)",
               kinds=("audio", "wav"), rules=SPEECH_RULES, description="Each track resampled once to 16 kHz mono 16-bit WAV for the transcript."),
    ),
)


# ---------------------------------------------------------------------------------------------
# transcript


def compute_transcript(sc: SignalContext, audio_speech: dict) -> Result:
    title_id = sc.title_id
    tracks_in = audio_speech.get("tracks", [])
    info = None
    out_tracks = []
    if tracks_in:
        try:
            lw = sc.model.get()
        except ValueError as exc:
            raise Failure(description=str(exc)) from None
        info = lw.info
        paths = sc.storage.stage_bundle("audio_speech", title_id, "speech")
        for t in tracks_in:
            wav = t.get("dialogue_file") or t["file"]  # the centre channel of a multichannel track that has one (decode.py)
            if wav not in paths:
                raise sc.fail(f"audio_speech has no {wav} (re-run audio_pass)")
            audio = load_wav16(paths[wav], mmap=True)
            r = transcribe_audio(lw, audio, offset_s=t["start_s"] or 0.0)
            sc.log.info(f"{title_id}: track {t['track']}: {len(r['segments'])} segments, language {r['language']} "
                        f"({r['language_probability']}), {r['seconds']}s for {r['audio_seconds']}s of audio")
            out_tracks.append({"track": t["track"], "start_s": t["start_s"], "duration_s": t["duration_s"], **r})
    first = out_tracks[0] if out_tracks else {}
    doc = {
        "schema_version": AUDIO_SCHEMA_VERSION,
        "language": first.get("language"),
        "language_probability": first.get("language_probability"),
        "model": info,
        "word_timestamps_source": first.get("word_timestamps_source") or ("whisperx-align" if (info or {}).get("align_model") else "faster-whisper"),
        "segments": first.get("segments", []),
        "track": first.get("track"),
        "tracks": out_tracks,
        "no_audio": not out_tracks,
        "producer": sc.producer(TRANSCRIBE_CODE_VERSION, model=info),
    }
    sc.provenance = info
    bundle = Bundle(doc, files={"transcript.srt": to_srt(doc["segments"]).encode(), "transcript.vtt": to_vtt(doc["segments"]).encode()})
    preview = pd.DataFrame([{"track": tr["track"], "start": s["start"], "end": s["end"], "text": s["text"]} for tr in out_tracks for s in tr["segments"]],
                           columns=["track", "start", "end", "text"])
    return Result(bundle, check_value=doc, table=preview, metadata={
        "tracks": len(out_tracks), "language": str(doc["language"]), "segments": len(doc["segments"]),
        "words": sum(len(s["words"]) for s in doc["segments"]), "model": str(((info or {}).get("transcription") or {}).get("name")),
        "word_timestamps_source": doc["word_timestamps_source"]})


TRANSCRIPT = Signal(
    name="transcript", domain=DOMAIN, code_version=TRANSCRIBE_CODE_VERSION, inputs=("audio_speech",),
    pool="gpu", priority=2, model="whisper", compute=compute_transcript, errors=(WhisperLoadError,),
    description="WhisperX transcript per track (VAD-gated, batched, language detected) with word timestamps; "
    "exported as transcript.json, transcript.srt, transcript.vtt (first track).",
    outputs=(Output("transcript", AUDIO_SCHEMA_VERSION, "titles/<title_id>/transcript/<version>/ (main.json + transcript.srt + transcript.vtt)",
                    kinds=("whisper", "json"), rules=TRANSCRIPT_RULES, export="transcript.json"),),
)
