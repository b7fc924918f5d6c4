"""Audio signal assets: one decode pass -> window statistics, loudness blocks, 16 kHz speech ->
transcript (WhisperX) -> audio analysis. Only `audio_pass` decodes.

Graph (all partitioned by title):

    source_video -> audio_pass [audio_stats, audio_loudness, audio_speech]   (pool: decode)
    audio_speech -> transcript (transcript.json + .srt + .vtt)                 (pool: gpu)
    source_video + audio_stats + audio_loudness + transcript -> audio_analysis (audio.json)
"""


import math
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity, AssetExecutionContext, AssetIn, AssetOut, Failure, MetadataValue, Output, asset, multi_asset

from ..core import checks
from ..core.artifacts import Bundle
from ..core.signals import default_freshness_policy, tracked_signal_run
from ..core.routing import GPU_OP_TAGS, TRANSIENT_RETRY_POLICY
from ..core.store import StoreError
from ..ingest.assets import _open_uri
from ..partitions import titles_partitions
from ..resources import CatalogResource, PrismProfile, PrismStorage
from .decode import AUDIO_PASS_CODE_VERSION, AUDIO_SCHEMA_VERSION, AudioDecodeError, AudioPassConfig, run_audio_pass
from .loudness import gated_loudness
from .resources import WhisperModelResource
from .whisper import TRANSCRIBE_CODE_VERSION, WhisperLoadError, load_wav16, to_srt, to_vtt, transcribe_audio

ANALYSIS_CODE_VERSION = "audio-analysis-1"
TIME_TOL = 0.05  # s: timestamps may sit this far past a track's end (codec padding)


def _audio_cfg(profile: PrismProfile) -> dict:
    return profile.config().get("audio", {}) or {}


def _producer(profile: PrismProfile, code_version: str, model=None, **extra) -> dict:
    return {"tool": "prism-audio", "pyav_version": av.__version__, "code_version": code_version, "model": model, "profile": profile.name, **extra}


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


# ---------------------------------------------------------------------------------------------
# checks


def _stats_times(df: pd.DataFrame):
    tracks = {t["track"]: t for t in df.attrs.get("producer", {}).get("tracks", [])}
    problems = []
    for tr, g in df.groupby("track"):
        t = g["t_s"].to_numpy()
        info = tracks.get(int(tr))
        if len(t) > 1 and not bool(np.all(np.diff(t) > 0)):
            problems.append(f"track {tr}: t_s not increasing")
        if info and info.get("start_s") is not None:
            if t[0] < info["start_s"] - 1e-6 or t[-1] > info["start_s"] + info["duration_s"] + TIME_TOL:
                problems.append(f"track {tr}: windows outside [{info['start_s']}, {info['start_s'] + info['duration_s']}]")
    return not problems, {"rows": len(df), "tracks": int(df["track"].nunique()) if len(df) else 0, "problems": problems[:10]}


def _stats_finite(df: pd.DataFrame):
    cols = ["peak", "rms", "dur_s"]
    bad = {c: int((~np.isfinite(df[c].to_numpy(dtype=float))).sum()) for c in cols}
    neg = int((df["peak"] < 0).sum() + (df["rms"] < 0).sum())
    zero_ok = bool(np.all(df["digital_zero"].to_numpy() == (df["peak"].to_numpy() == 0))) if len(df) else True
    return sum(bad.values()) == 0 and neg == 0 and zero_ok, {"non_finite": bad, "negative": neg, "digital_zero_consistent": zero_ok}


def _stats_tracks(df: pd.DataFrame):
    p = df.attrs.get("producer", {})
    want, got = p.get("expected_tracks"), len(p.get("tracks", []))
    decoded = [t["track"] for t in p.get("tracks", []) if t.get("decoded")]
    return (want is None or want == got) and len(decoded) == got, {"tracks": got, "probed_tracks": want, "decoded_tracks": decoded}


STATS_RULES = [
    checks.CheckRule("windows_monotonic_in_duration", "Per track, window times strictly increase and lie inside the track.", _stats_times, blocking=True),
    checks.CheckRule("stats_finite", "Peak, RMS and duration are finite and non-negative; digital_zero == (peak == 0).", _stats_finite),
    checks.CheckRule("every_track_decoded", "Every audio stream of the probe was decoded.", _stats_tracks, severity=AssetCheckSeverity.WARN),
]


def _loud_ok(df: pd.DataFrame):
    problems = []
    for t in df.attrs.get("producer", {}).get("tracks", []):
        if not t.get("decoded"):
            continue
        if t.get("silent"):
            if t.get("integrated_lufs") is not None:
                problems.append(f"track {t['track']}: silent but has a loudness")
        elif not all(_finite(t.get(k)) for k in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs")):
            problems.append(f"track {t['track']}: loudness not finite")
        elif t["true_peak_dbtp"] < t["sample_peak_dbfs"] - 1e-6:
            problems.append(f"track {t['track']}: true peak below sample peak")
    return not problems, {"problems": problems}


def _loud_times(df: pd.DataFrame):
    ok = all(bool(np.all(np.diff(g["t_s"].to_numpy()) > 0)) for _, g in df.groupby("track")) if len(df) else True
    finite = bool(np.all(np.isfinite(df["power"].to_numpy()) & (df["power"].to_numpy() >= 0))) if len(df) else True
    return ok and finite, {"blocks": len(df), "monotonic": ok, "finite": finite}


LOUD_RULES = [
    checks.CheckRule("loudness_finite", "Every non-silent track has finite integrated loudness and peaks (true peak >= sample peak); silent tracks are null.", _loud_ok),
    checks.CheckRule("blocks_monotonic_finite", "400 ms block powers are finite, non-negative, in time order.", _loud_times),
]


def _speech_files(b: Bundle):
    tracks = b.main.get("tracks", [])
    problems = []
    for t in tracks:
        f = b.files.get(t["file"]) if isinstance(b.files, dict) else None
        if f is None:
            problems.append(f"track {t['track']}: {t['file']} missing")
            continue
        expect = t["duration_s"] * 16000
        if abs(t["samples"] - expect) > max(0.01 * expect, 1600):
            problems.append(f"track {t['track']}: {t['samples']} samples for {t['duration_s']:.2f}s")
    return not problems, {"tracks": len(tracks), "problems": problems}


SPEECH_RULES = [
    checks.CheckRule("speech_file_per_track", "One 16 kHz mono WAV per decoded track, as long as the track (±1 %).", _speech_files, blocking=True),
]


def _transcript_tracks(t: dict) -> list[dict]:
    return t.get("tracks", []) or []


def _tr_times(t: dict):
    problems = []
    for tr in _transcript_tracks(t):
        lo = (tr.get("start_s") or 0.0) - 1e-6
        hi = (tr.get("start_s") or 0.0) + (tr.get("duration_s") or 0.0) + TIME_TOL
        prev = -1e9
        for s in tr["segments"]:
            if not (lo <= s["start"] <= s["end"] <= hi):
                problems.append(f"track {tr['track']}: segment {s['start']}-{s['end']} outside [{lo:.2f}, {hi:.2f}] or reversed")
            if s["start"] < prev - 1e-6:
                problems.append(f"track {tr['track']}: segment at {s['start']} before the previous one")
            prev = s["start"]
            wprev = -1e9
            for w in s["words"]:
                if w["start"] > w["end"] or w["start"] < wprev - 1e-6:
                    problems.append(f"track {tr['track']}: word {w['word']!r} at {w['start']} not monotonic")
                wprev = w["start"]
    return not problems, {"problems": problems[:10]}


def _tr_words_inside(t: dict):
    bad = [f"track {tr['track']}: {w['word']!r} {w['start']}-{w['end']} outside {s['start']}-{s['end']}"
           for tr in _transcript_tracks(t) for s in tr["segments"] for w in s["words"]
           if w["start"] < s["start"] - 1e-6 or w["end"] > s["end"] + 1e-6]
    return not bad, {"outside": bad[:10]}


def _tr_no_overlap(t: dict):
    bad = [f"track {tr['track']}: {a['end']} > {b['start']}" for tr in _transcript_tracks(t)
           for a, b in zip(tr["segments"], tr["segments"][1:]) if a["end"] > b["start"] + 1e-6]
    return not bad, {"overlaps": bad[:10]}


def _tr_language(t: dict):
    missing = [tr["track"] for tr in _transcript_tracks(t) if tr["segments"] and not tr.get("language")]
    return not missing, {"languages": {str(tr["track"]): tr.get("language") for tr in _transcript_tracks(t)}, "missing": missing}


TRANSCRIPT_RULES = [
    checks.CheckRule("timestamps_monotonic_in_duration", "Segment and word times increase and lie inside the track's duration.", _tr_times, blocking=True),
    checks.CheckRule("words_inside_segments", "Every word lies inside its segment.", _tr_words_inside),
    checks.CheckRule("segments_non_overlapping", "Segments of a track do not overlap.", _tr_no_overlap),
    checks.CheckRule("language_present", "Every track with speech has a language.", _tr_language),
]


def _an_loudness(a: dict):
    problems = []
    for t in a["tracks"]:
        vals = [t.get(k) for k in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs")]
        if t["silent"]:
            continue
        if not all(_finite(v) for v in vals):
            problems.append(f"track {t['track']}: loudness not finite and not flagged silent")
    return not problems, {"problems": problems, "no_audio": a["no_audio"]}


def _an_segments(a: dict):
    problems = []
    for t in a["tracks"]:
        segs = t["segments"]
        for s in segs:
            if s["kind"] not in ("speech", "music", "silence") or not s["end_s"] > s["start_s"]:
                problems.append(f"track {t['track']}: bad segment {s}")
        for x, y in zip(segs, segs[1:]):
            if x["end_s"] > y["start_s"] + 1e-6:
                problems.append(f"track {t['track']}: overlap at {y['start_s']}")
        if segs and (t["start_s"] is not None) and (segs[0]["start_s"] < t["start_s"] - 1e-6 or segs[-1]["end_s"] > t["start_s"] + t["duration_s"] + TIME_TOL):
            problems.append(f"track {t['track']}: segments outside the track")
    return not problems, {"problems": problems[:10]}


def _an_language(a: dict):
    missing = [t["track"] for t in a["tracks"] if t["speech_ratio"] and t["speech_ratio"] > 0.05 and not t["detected_language"]]
    return not missing, {"missing": missing}


def _an_tag(a: dict):
    mism = [{"track": t["track"], "tag": t["language_tag"], "detected": t["detected_language"]} for t in a["tracks"] if t.get("language_mismatch")]
    return not mism, {"mismatches": mism}


ANALYSIS_RULES = [
    checks.CheckRule("loudness_finite", "Loudness values are finite, or null with silent: true.", _an_loudness),
    checks.CheckRule("segments_non_overlapping", "Speech/music/silence segments are well formed, in order, non-overlapping, inside the track.", _an_segments),
    checks.CheckRule("language_present", "Every track with speech (> 5 %) has a detected language.", _an_language),
    checks.CheckRule("language_tag_matches", "The container language tag agrees with the detected language.", _an_tag, severity=AssetCheckSeverity.WARN),
]


# ---------------------------------------------------------------------------------------------
# assets


@multi_asset(
    outs={
        "audio_stats": AssetOut(
            code_version=AUDIO_PASS_CODE_VERSION, kinds={"audio", "pyav", "parquet"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": AUDIO_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/audio_stats.parquet"},
            description="One row per 10 ms window per audio track (peak, RMS, digital zero), from the one audio decode pass. Read by QC.",
        ),
        "audio_loudness": AssetOut(
            code_version=AUDIO_PASS_CODE_VERSION, kinds={"audio", "parquet"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": AUDIO_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/audio_loudness.parquet"},
            description="Streaming EBU R128 per track: 400 ms block powers every 100 ms; integrated loudness, LRA, true and sample peak in the attrs.",
        ),
        "audio_speech": AssetOut(
            code_version=AUDIO_PASS_CODE_VERSION, kinds={"audio", "wav"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": AUDIO_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/audio_speech/<version>/ (main.json + speech_<track>.wav)"},
            description="Each track resampled once to 16 kHz mono 16-bit WAV for the transcript.",
        ),
    },
    ins={"source_video": AssetIn()},
    partitions_def=titles_partitions,
    group_name="audio",
    pool="decode",
    check_specs=checks.specs("audio_stats", STATS_RULES) + checks.specs("audio_loudness", LOUD_RULES) + checks.specs("audio_speech", SPEECH_RULES),
)
def audio_pass(context: AssetExecutionContext, source_video: dict, storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile):
    """Decode every audio track of the title once (PyAV, streamed) for all audio work."""
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="audio_pass", code_version=AUDIO_PASS_CODE_VERSION) as rec:
        try:
            cfg = AudioPassConfig.from_config(_audio_cfg(profile).get("pass"))
        except (TypeError, ValueError) as exc:
            raise Failure(description=f"profile {profile.name}: {exc}") from None
        store, key = _open_uri(storage, source_video["source_uri"])
        try:
            local = storage.stage_local(store, key)
        except (StoreError, OSError) as exc:
            raise Failure(description=f"cannot read delivery {source_video['source_uri']}: {exc}") from None
        workdir = Path(storage.scratch_dir) / "audio" / title_id / context.run_id[:8]
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            ap = run_audio_pass(local, workdir, cfg, progress=lambda t: context.log.info(f"{title_id}: audio decoded to {t:.0f}s"))
        except AudioDecodeError as exc:
            raise Failure(description=f"{title_id}: {exc}") from None
        tracks = []
        for t in ap.tracks:
            silent = t["decoded"] and t["integrated_lufs"] is None
            tracks.append({**t, "silent": bool(silent or not t["decoded"])})
        producer = _producer(profile, AUDIO_PASS_CODE_VERSION, tracks=tracks, window_s=cfg.window_s,
                             expected_tracks=len(source_video.get("audio_tracks") or []), pass_meta=ap.meta)
        rec.model = {"tool": "PyAV", "code_version": AUDIO_PASS_CODE_VERSION}
        stats = ap.stats
        stats.attrs = {"schema_version": AUDIO_SCHEMA_VERSION, "producer": producer}
        loud = ap.loudness
        loud.attrs = {"schema_version": AUDIO_SCHEMA_VERSION, "producer": producer}
        speech_main = {"schema_version": AUDIO_SCHEMA_VERSION, "sample_rate": 16000, "format": "wav pcm_s16le mono",
                       "producer": {k: v for k, v in producer.items() if k != "pass_meta"},
                       "tracks": [{"track": t["track"], "file": f"speech_{t['track']}.wav", "start_s": t["start_s"],
                                   "duration_s": t["duration_s"], "samples": t["speech_samples"]} for t in tracks if t["decoded"]]}
        speech = Bundle(speech_main, files=dict(ap.speech_files))
        if ap.meta["decode_errors"]:
            context.log.warning(f"{title_id}: {ap.meta['decode_errors']} audio packets failed to decode (skipped)")
        if not tracks:
            context.log.warning(f"{title_id}: no audio stream")
    summary = [{k: t.get(k) for k in ("track", "channels", "sample_rate", "duration_s", "integrated_lufs", "true_peak_dbtp")} for t in tracks]
    yield Output(stats, output_name="audio_stats", metadata={"rows": len(stats), "tracks": len(tracks), "decode_seconds": ap.meta["seconds"],
                                                             "realtime_factor": ap.meta["realtime_factor"], "summary": MetadataValue.json(summary)})
    yield Output(loud, output_name="audio_loudness", metadata={"blocks": len(loud), "integrated_lufs": MetadataValue.json([t["integrated_lufs"] for t in tracks])})
    yield Output(speech, output_name="audio_speech", metadata={"tracks": len(speech_main["tracks"])})
    yield from checks.evaluate("audio_stats", STATS_RULES, stats)
    yield from checks.evaluate("audio_loudness", LOUD_RULES, loud)
    yield from checks.evaluate("audio_speech", SPEECH_RULES, speech)
    shutil.rmtree(workdir, ignore_errors=True)


@asset(
    partitions_def=titles_partitions,
    group_name="audio",
    code_version=TRANSCRIBE_CODE_VERSION,
    kinds={"whisper", "json"},
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    retry_policy=TRANSIENT_RETRY_POLICY,
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs("transcript", TRANSCRIPT_RULES),
    metadata={"prism/schema_version": AUDIO_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/transcript/<version>/ (main.json + transcript.srt + transcript.vtt)"},
    description="WhisperX transcript per track (VAD-gated, batched, language detected) with word timestamps; "
    "exported as transcript.json, transcript.srt, transcript.vtt (first track).",
)
def transcript(context: AssetExecutionContext, audio_speech: dict, storage: PrismStorage, catalog: CatalogResource,
               profile: PrismProfile, whisper: WhisperModelResource):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="transcript", code_version=TRANSCRIBE_CODE_VERSION) as rec:
        tracks_in = audio_speech.get("tracks", [])
        info = None
        out_tracks = []
        if tracks_in:
            try:
                lw = whisper.get()
            except (WhisperLoadError, ValueError) as exc:
                raise Failure(description=str(exc)) from None
            info = lw.info
            paths = storage.stage_bundle("audio_speech", title_id, "speech")
            for t in tracks_in:
                if t["file"] not in paths:
                    raise Failure(description=f"{title_id}: audio_speech has no {t['file']} (re-run audio_pass)")
                audio = load_wav16(paths[t["file"]], mmap=True)
                try:
                    r = transcribe_audio(lw, audio, offset_s=t["start_s"] or 0.0)
                except WhisperLoadError as exc:
                    raise Failure(description=str(exc)) from None
                context.log.info(f"{title_id}: track {t['track']}: {len(r['segments'])} segments, language {r['language']} "
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
            "producer": _producer(profile, TRANSCRIBE_CODE_VERSION, model=info),
        }
        rec.model = info
        bundle = Bundle(doc, files={"transcript.srt": to_srt(doc["segments"]).encode(), "transcript.vtt": to_vtt(doc["segments"]).encode()})
    yield Output(bundle, metadata={"tracks": len(out_tracks), "language": str(doc["language"]), "segments": len(doc["segments"]),
                                   "words": sum(len(s["words"]) for s in doc["segments"]),
                                   "model": str(((info or {}).get("transcription") or {}).get("name")),
                                   "word_timestamps_source": doc["word_timestamps_source"]})
    yield from checks.evaluate("transcript", TRANSCRIPT_RULES, doc)


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


def _iso639_1(tag: str | None) -> str | None:
    """Container tags are ISO 639-2 (eng, deu/ger, kor...); detection gives ISO 639-1 (en, de, ko)."""
    if not tag:
        return None
    tag = tag.lower()
    if len(tag) == 2:
        return tag
    try:
        from langcodes import Language  # optional

        return Language.get(tag).language
    except Exception:
        pass
    table = {"eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it", "por": "pt", "kor": "ko",
             "jpn": "ja", "zho": "zh", "chi": "zh", "rus": "ru", "ara": "ar", "hin": "hi", "nld": "nl", "dut": "nl", "swe": "sv",
             "pol": "pl", "tur": "tr", "ukr": "uk", "ces": "cs", "cze": "cs", "dan": "da", "fin": "fi", "nor": "no", "ell": "el",
             "gre": "el", "heb": "he", "hun": "hu", "ind": "id", "tha": "th", "vie": "vi", "ron": "ro", "rum": "ro"}
    return table.get(tag)


@asset(
    partitions_def=titles_partitions,
    group_name="audio",
    code_version=ANALYSIS_CODE_VERSION,
    kinds={"json"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs("audio_analysis", ANALYSIS_RULES),
    metadata={"prism/schema_version": AUDIO_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/audio_analysis.json (exported as audio.json)"},
    description="Per audio track: container language tag vs detected language, EBU R128 loudness (integrated, LRA, true peak, "
    "dialogue-gated), speech ratio, speech/music/silence segments. Exported as audio.json.",
)
def audio_analysis(context: AssetExecutionContext, source_video: dict, audio_stats: pd.DataFrame, audio_loudness: pd.DataFrame,
                   transcript: dict, catalog: CatalogResource, profile: PrismProfile):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="audio_analysis", code_version=ANALYSIS_CODE_VERSION) as rec:
        cfg = _audio_cfg(profile).get("analysis", {}) or {}
        silence_dbfs = float(cfg.get("silence_dbfs", -60.0))
        min_silence_s = float(cfg.get("min_silence_s", 0.5))
        speech_gap_s = float(cfg.get("speech_gap_s", 1.2))
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
            tag1 = _iso639_1(tag)
            out.append({
                "track": k, "stream_index": t["stream_index"], "codec": t.get("codec"), "channels": t.get("channels"),
                "channel_layout": t.get("channel_layout"), "sample_rate": t.get("sample_rate"), "duration_s": dur, "start_s": t.get("start_s"),
                "language_tag": tag, "detected_language": det, "detected_language_probability": tr.get("language_probability"),
                "language_mismatch": bool(tag1 and det and tag1 != det),
                "integrated_lufs": None if silent else t.get("integrated_lufs"),
                "loudness_range_lu": None if silent else t.get("loudness_range_lu"),
                "true_peak_dbtp": None if silent else t.get("true_peak_dbtp"),
                "sample_peak_dbfs": None if silent else t.get("sample_peak_dbfs"),
                "dialogue_lufs": dlg if (math.isfinite(dlg) and not silent) else None,
                "speech_ratio": round(speech_s / dur, 4) if dur > 0 else 0.0,
                "silent": silent,
                "segments": segs,
            })
        doc = {
            "schema_version": AUDIO_SCHEMA_VERSION,
            "title_id": title_id,
            "producer": _producer(profile, ANALYSIS_CODE_VERSION, model={
                "loudness": "prism R128 meter (BS.1770-4 K-weighting via pyloudnorm coefficients, Tech 3342 LRA, 4x true peak)",
                "speech": "transcript VAD (whisperx pyannote)", "language": (transcript.get("model") or {}).get("language_detection")},
                silence_dbfs=silence_dbfs, min_silence_s=min_silence_s, speech_gap_s=speech_gap_s, dialogue_gate="BS.1770-4 gating of the 400 ms blocks centred in VAD speech"),
            "no_audio": not ptracks,
            "tracks": out,
        }
        rec.model = doc["producer"]["model"]
    yield Output(doc, metadata={"tracks": len(out), "no_audio": doc["no_audio"],
                                "integrated_lufs": MetadataValue.json([t["integrated_lufs"] for t in out]),
                                "languages": MetadataValue.json([t["detected_language"] for t in out])})
    yield from checks.evaluate("audio_analysis", ANALYSIS_RULES, doc)
