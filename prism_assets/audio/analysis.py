"""`audio_analysis` (audio.json): per track, language tag vs the language decided on its speech (null
without enough speech: no guess), loudness (integrated,
LRA, true peak, dialogue-gated), speech ratio and speech / music / silence segments; for tracks of
two channels or more the audio pass's channel report (per-channel levels, speech modulation, pair
correlations, LFE band, stereo downmix against the stereo track) and its QC events (`events`:
`channel_silent`, `channel_swap`, `downmix_mismatch`; audio/channels.py), which join the title's
QC verdict (`Output.qc_events`).

    source_video + audio_stats + audio_loudness + transcript -> audio_analysis
"""

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
from dagster import MetadataValue

from ..core.language import MIN_SPEECH_S, decide_on_speech, iso639_1  # noqa: F401  (MIN_SPEECH_S: the rule's threshold, documented here too)
from ..core.signal import Output, Result, Signal, SignalContext
from .assets import DOMAIN
from .channels import ChannelThresholds, channel_events, downmix_events
from .checks import ANALYSIS_RULES
from .decode import AUDIO_SCHEMA_VERSION
from .loudness import gated_loudness

ANALYSIS_CODE_VERSION = "audio-analysis-4"  # 4: channel report, dispositions, channel and downmix QC events; 3: digital_silence per track


def classify_segments(stats: pd.DataFrame, speech: list[tuple[float, float]], silence_dbfs: float = -60.0,
                      min_silence_s: float = 0.5, min_segment_s: float = 0.2, speech_gap_s: float = 1.2) -> list[dict]:
    """Speech / music / silence segments of one track from its 10 ms windows: silence = runs of
    windows with RMS below `silence_dbfs` (or digital zero) lasting >= min_silence_s; speech = the
    VAD speech regions, pauses shorter than `speech_gap_s` between them included; music = any
    other non-silent audio (music or effects)."""
    if not len(stats):
        return []
    merged: list[list[float]] = []
    for s, e in sorted(speech):
        if merged and s - merged[-1][1] < speech_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    speech = [(s, e) for s, e in merged]
    t = stats["t_s"].to_numpy()
    d = stats["dur_s"].to_numpy(dtype=np.float64)
    rms = stats["rms"].to_numpy(dtype=np.float64)
    quiet = (rms <= 10 ** (silence_dbfs / 20)) | stats["digital_zero"].to_numpy()
    labels = np.full(len(t), 1, np.int8)  # 0 silence, 1 music, 2 speech
    mid = t + d / 2
    for s, e in speech:
        labels[(mid >= s) & (mid < e)] = 2
    # silent runs long enough
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if t[b - 1] + d[b - 1] - t[a] >= min_silence_s:
            labels[a:b] = 0
    kinds = {0: "silence", 1: "music", 2: "speech"}
    segs = []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(t)]])
    for a, b in zip(starts, ends):
        seg = {"kind": kinds[int(labels[a])], "start_s": float(t[a]), "end_s": float(t[b - 1] + d[b - 1])}
        if segs and (seg["end_s"] - seg["start_s"] < min_segment_s):
            segs[-1]["end_s"] = seg["end_s"]  # absorb slivers into the previous segment
        elif segs and segs[-1]["kind"] == seg["kind"]:
            segs[-1]["end_s"] = seg["end_s"]
        else:
            segs.append(seg)
    for s in segs:
        s["start_s"], s["end_s"] = round(s["start_s"], 3), round(s["end_s"], 3)
    return segs


def compute_audio_analysis(sc: SignalContext, source_video: dict, audio_stats: pd.DataFrame, audio_loudness: pd.DataFrame, transcript: dict) -> Result:
    title_id = sc.title_id
    cfg = sc.config.get("analysis", {}) or {}
    silence_dbfs = float(cfg.get("silence_dbfs", -60.0))
    min_silence_s = float(cfg.get("min_silence_s", 0.5))
    speech_gap_s = float(cfg.get("speech_gap_s", 1.2))
    try:
        chan_th = ChannelThresholds.from_config(cfg.get("channels"))
    except (TypeError, ValueError) as exc:
        raise sc.fail(f"audio.analysis channels: {exc}") from None
    ptracks = audio_stats.attrs.get("producer", {}).get("tracks", [])
    tr_by = {t["track"]: t for t in transcript.get("tracks", [])}
    probe = {a.get("index"): a for a in source_video.get("audio_tracks") or []}
    out = []
    for t in ptracks:
        k = t["track"]
        st = audio_stats[audio_stats["track"] == k]
        tr = tr_by.get(k, {})
        speech = [(r["start_s"], r["end_s"]) for r in tr.get("speech_regions", [])]
        segs = classify_segments(st, speech, silence_dbfs, min_silence_s, speech_gap_s=speech_gap_s)
        dur = float(t["duration_s"] or 0.0)
        speech_s = sum(s["end_s"] - s["start_s"] for s in segs if s["kind"] == "speech")
        lb = audio_loudness[audio_loudness["track"] == k]
        mid = lb["t_s"].to_numpy() + 0.2
        in_speech = np.zeros(len(mid), bool)
        for s, e in speech:
            in_speech |= (mid >= s) & (mid < e)
        dlg = gated_loudness(lb["power"].to_numpy()[in_speech]) if in_speech.any() else float("-inf")
        silent = bool(t.get("silent")) or t.get("integrated_lufs") is None
        det = tr.get("language")
        tag = t.get("language_tag") or (probe.get(t["stream_index"]) or {}).get("language")
        tag1 = iso639_1(tag)
        vad_speech_s = sum(max(0.0, e - s) for s, e in speech)
        decided, note = decide_on_speech(vad_speech_s, det, tr.get("language_probability"))
        out.append({
            "track": k, "stream_index": t["stream_index"], "codec": t.get("codec"), "channels": t.get("channels"),
            "channel_layout": t.get("channel_layout"), "sample_rate": t.get("sample_rate"), "duration_s": dur, "start_s": t.get("start_s"),
            "language_tag": tag, "language": decided, "language_note": note,
            "detected_language": det, "detected_language_probability": tr.get("language_probability"),
            "language_mismatch": bool(tag1 and decided and tag1 != decided),
            "integrated_lufs": None if silent else t.get("integrated_lufs"),
            "loudness_range_lu": None if silent else t.get("loudness_range_lu"),
            "true_peak_dbtp": None if silent else t.get("true_peak_dbtp"),
            "sample_peak_dbfs": None if silent else t.get("sample_peak_dbfs"),
            "dialogue_lufs": dlg if (math.isfinite(dlg) and not silent) else None,
            "speech_ratio": round(speech_s / dur, 4) if dur > 0 else 0.0,
            "silent": silent,
            "digital_silence": bool(len(st) and st["digital_zero"].all()),  # every 10 ms window all zero
            "segments": segs,
            "title": t.get("title"), "handler_name": t.get("handler_name"), "dispositions": list(t.get("dispositions") or []),
            "channel_layout_assumed": bool(t.get("channel_layout_assumed")), "dialogue_source": t.get("dialogue_source", "mix"),
            "channel_report": t.get("channel_report"), "downmix": t.get("downmix"),
        })
    events = [e for tr in out for e in channel_events(tr, chan_th) + downmix_events(tr, chan_th)]
    doc = {
        "schema_version": AUDIO_SCHEMA_VERSION,
        "title_id": title_id,
        "producer": sc.producer(ANALYSIS_CODE_VERSION, model={
            "loudness": "prism R128 meter (BS.1770-4 K-weighting via pyloudnorm coefficients, Tech 3342 LRA, 4x true peak)",
            "speech": "transcript VAD (whisperx pyannote)", "language": (transcript.get("model") or {}).get("language_detection")},
            silence_dbfs=silence_dbfs, min_silence_s=min_silence_s, speech_gap_s=speech_gap_s, dialogue_gate="BS.1770-4 gating of the 400 ms blocks centred in VAD speech",
            channels=asdict(chan_th)),
        "no_audio": not ptracks,
        "tracks": out,
        "events": events,
    }
    sc.provenance = doc["producer"]["model"]
    cols = ["track", "language_tag", "language", "detected_language", "integrated_lufs", "dialogue_lufs", "true_peak_dbtp", "speech_ratio", "silent"]
    table = pd.DataFrame([{k: t[k] for k in cols} for t in out], columns=cols)
    return Result(doc, table=table, metadata={"tracks": len(out), "no_audio": doc["no_audio"], "qc_events": len(events),
                                              "integrated_lufs": MetadataValue.json([t["integrated_lufs"] for t in out]),
                                              "languages": MetadataValue.json([t["language"] for t in out])})


AUDIO_ANALYSIS = Signal(
    name="audio_analysis", domain=DOMAIN, code_version=ANALYSIS_CODE_VERSION, inputs=("source_video", "audio_stats", "audio_loudness", "transcript"),
    compute=compute_audio_analysis,
    description="Per audio track: container language tag vs detected language, EBU R128 loudness (integrated, LRA, true peak, "
    "dialogue-gated), speech ratio, speech/music/silence segments, channel report (silent, swapped channels, downmix vs stereo: "
    "QC events). Exported as audio.json.",
    outputs=(Output("audio_analysis", AUDIO_SCHEMA_VERSION, "titles/<title_id>/audio_analysis.json (exported as audio.json)",
                    kinds=("json",), rules=ANALYSIS_RULES, export="audio.json", qc_events=lambda doc: (doc or {}).get("events") or []),),
)
