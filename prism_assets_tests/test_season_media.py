"""Integration: generated seasons (ffmpeg, espeak-ng), real fpcalc, the pipeline's 16 kHz WAV and 1/s
224-px JPEG samples -> intro and recap of every episode within 1 s of the truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from prism_assets.structure.fingerprint import ITEM_S, FingerprintError, audio_fingerprint, chromaprint_info, picture_signature
from prism_assets.structure.season import Episode, find_intros_and_recaps
from prism_assets_tests.support.season_media import evaluate, make_season, samples_1fps, wav16

pytestmark = pytest.mark.integration

needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("ffmpeg", "fpcalc", "espeak-ng")), reason="ffmpeg, fpcalc and espeak-ng are required")


def fingerprint_season(truth: dict) -> list[Episode]:
    eps = []
    for e in truth["episodes"]:
        audio = audio_fingerprint(wav16(e["video"]))
        eps.append(Episode(e["title_id"], e["episode"], e["duration_s"], audio, picture_signature(samples_1fps(e["video"]))))
    return eps


@needs_tools
def test_chromaprint_whole_file_and_item_timing(tmp_path):
    info = chromaprint_info()
    assert info["tool"] == "fpcalc" and info["version"]
    # 150 s of audio: more than fpcalc's default -length of 120 s
    rng = np.random.default_rng(0)
    t = np.arange(150 * 16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * 2 ** (np.floor(t * 4) % 12 / 12) * t) + 0.01 * rng.standard_normal(len(t))
    import wave

    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((x * 32000).astype("<i2").tobytes())
    fp = audio_fingerprint(wav, start_s=2.5)
    assert fp["items"].dtype == np.uint32 and fp["start_s"] == 2.5
    frames = (150 * 11025 - 4096) // 1365 + 1
    assert abs(len(fp["items"]) - (frames - 18)) <= 1  # the whole file (not 120 s): one item per 1365 samples at 11025 Hz
    assert abs(fp["item_s"] - ITEM_S) < 1e-12
    assert fp["envelope"]["db"].shape[0] == 150 * 50 and 12 <= fp["envelope"]["db"].shape[1] <= 16
    with pytest.raises(FingerprintError):
        audio_fingerprint(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(FingerprintError):
        audio_fingerprint(tmp_path / "bad.wav")


@needs_tools
def test_season_with_cold_opens_and_recaps(tmp_path):
    truth = make_season(tmp_path, 4, seed=21)
    eps = fingerprint_season(truth)
    found = find_intros_and_recaps(eps[::-1])  # any order
    report = evaluate(found, truth, tol_s=1.0)
    assert report["summary"]["intro_within_tol"] == 1.0, report
    assert report["summary"]["recap_within_tol"] == 1.0, report
    assert report["summary"]["recap_false"] == 0 and report["summary"]["intro_false"] == 0, report
    first = truth["episodes"][0]["title_id"]
    assert found[first]["recap"] is None
    for e in truth["episodes"][1:]:
        assert found[e["title_id"]]["recap"]["from_episode"] == e["recap"]["from_episode"]
    for e in truth["episodes"]:
        intro = found[e["title_id"]]["intro"]
        assert len(intro["matched_episodes"]) == 3 and intro["confidence"] > 0.5


@needs_tools
def test_season_without_cold_open_or_recap(tmp_path):
    truth = make_season(tmp_path, 3, seed=22, cold_open_max_s=0, recap=False)
    assert all(e["intro"]["start_s"] == 0 and e["recap"] is None for e in truth["episodes"])
    found = find_intros_and_recaps(fingerprint_season(truth))
    report = evaluate(found, truth, tol_s=1.0)
    assert report["summary"]["intro_within_tol"] == 1.0, report
    assert report["summary"]["recap_false"] == 0, report
