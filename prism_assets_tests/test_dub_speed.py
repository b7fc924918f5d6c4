"""Dubs across frame-rate conversions (prism_assets/localization/speed.py, sync.py, tracks.py): a dub made
from a PAL (25 fps) master of a 24 fps original runs 4 % faster; its speed is found and named, its
offset and drift measured after that speed, it is a dub (not `unknown`), and subtitles in its
language are timed against its own speech.

Unit tests on synthetic envelopes and signals (the music bed of the localization media at 16 kHz,
syllable-modulated noise for speech); one integration test on a generated title whose dub is sped
up by ffmpeg (`asetrate`, as a PAL transfer) and another slowed by `atempo`, decoded back to 16 kHz."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from prism_assets.audio.whisper.pcm import load_wav16
from prism_assets.localization.speed import CONVERSIONS, FILM, classify, search
from prism_assets.localization.subtitle_qc import profile_for
from prism_assets.localization.subtitle_report import report
from prism_assets.localization.subtitle_speech import timing
from prism_assets.localization.subtitles import Cue, parse
from prism_assets.localization.sync import measure
from prism_assets.localization.tracks import SyncLimits, out_of_limits, profiles, total_drift

from .support.localization_media import AudioSpec, SubSpec, make_title, syllable_speech
from .support.localization_media import bed as media_bed

SR = 16000
DUR = 90
RATIO_TOL = 5e-4  # 0.05 %
OFFSET_TOL_MS = 40.0


def bed(dur: float, seed: int) -> np.ndarray:
    return media_bed(dur, seed, sr=SR, level=1.0)


def speech(dur: float, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    return syllable_speech(dur, seed, sr=SR)


def converted(sig: np.ndarray, ratio: float, offset_s: float, n: int) -> np.ndarray:
    """`sig` as heard in a dub `ratio` times as long (pitch moving with it), `offset_s` late."""
    t = np.arange(n) / SR
    return np.interp((t - offset_s) / ratio * SR, np.arange(len(sig)), sig, left=0, right=0)


@pytest.fixture(scope="module")
def tracks():
    music = bed(DUR + 10, 1)
    original_speech, segs_o = speech(DUR + 10, 2)
    dub_speech, segs_d = speech(DUR + 10, 3)
    n = DUR * SR
    return music, (music + original_speech)[:n], segs_o, dub_speech[:n], segs_d


# --- naming a ratio ------------------------------------------------------------------------------

def test_named_ratios_are_their_conversions_and_directions_are_durations():
    assert CONVERSIONS["pal_speedup_24_25"] == pytest.approx(0.96)  # the dub is shorter
    assert CONVERSIONS["pal_speedup_23976_25"] == pytest.approx(24000 / 1001 / 25)
    assert CONVERSIONS["pulldown_24_23976"] == pytest.approx(1.001) and CONVERSIONS["pullup_23976_24"] == pytest.approx(1 / 1.001)
    for name, ratio in CONVERSIONS.items():
        for err in (-2e-4, 0.0, 2e-4):
            assert classify(ratio * (1 + err)) == (name, ratio), (name, err)


@pytest.mark.parametrize("ratio,want", [(1.0015, "none"), (0.998, "none"), (1.02, "free"), (0.96 * 1.0006, "free"), (0.9, "free")])
def test_ratios_no_conversion_names(ratio, want):
    name, nominal = classify(ratio)
    assert name == want and nominal == (1.0 if want == "none" else ratio)


def test_search_finds_the_ratio_of_a_resampled_envelope():
    """On bare envelopes (onset spikes): the dub's envelope is the original's read at 1/ratio, shifted."""
    rng = np.random.default_rng(4)
    n = 12000  # 120 s of hops
    ea = np.zeros(n)
    ea[rng.choice(n, 900, replace=False)] = rng.uniform(0.5, 2, 900)
    ea = np.convolve(ea, [0.3, 1, 0.5, 0.2], mode="same")
    for ratio, lag in ((25 / 24, 140), (FILM / 25, -310), (1.0, 55), (1.03, 0)):
        idx = (np.arange(int(n * ratio)) - lag) / ratio  # dub hop j holds the original's hop (j - lag) / ratio
        eb = np.interp(idx, np.arange(n), ea, left=0, right=0) + rng.normal(0, 0.05, len(idx))
        found = search(ea, eb, max_lag=1000)
        assert abs(found["ratio"] / ratio - 1) <= found["step"], (ratio, found)
        assert found["runner_up"] is None or found["score"] > 2 * found["runner_up"], found


# --- measuring ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,offset_s", [("pal_speedup_24_25", 0.35), ("pal_speedup_23976_25", -1.2), ("pal_slowdown_25_24", 2.0),
                                           ("pal_slowdown_25_23976", 0.0), ("pullup_23976_24", -0.08), ("pulldown_24_23976", 0.6)])
def test_each_conversion_is_found_and_offset_measured_after_it(tracks, name, offset_s):
    music, original, segs_o, dub_speech, segs_d = tracks
    ratio = CONVERSIONS[name]
    dub = converted(music, ratio, offset_s, DUR * SR) + dub_speech
    r = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d)
    assert r.conversion == name and r.nominal_ratio == pytest.approx(ratio, abs=1e-6)
    assert abs(r.speed_ratio / ratio - 1) <= RATIO_TOL, r.speed_ratio
    assert abs(r.offset_ms - offset_s * 1000) <= OFFSET_TOL_MS and r.confidence > 0.5
    assert abs(r.drift_ms_per_hour) <= 200 and r.diverging == []  # nothing left after the conversion
    assert all(abs(w["off_line_ms"]) < 40 for w in r.windows if w["confidence"] >= 0.5)


def test_a_free_ratio_is_fitted(tracks):
    music, original, segs_o, dub_speech, segs_d = tracks
    dub = converted(music, 1.0213, 0.4, DUR * SR) + dub_speech
    r = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d)
    assert r.conversion == "free" and abs(r.speed_ratio / 1.0213 - 1) <= RATIO_TOL and abs(r.offset_ms - 400) <= OFFSET_TOL_MS


def test_a_ratio_off_every_conversion_is_not_forced_onto_one(tracks):
    """A PAL speed-up whose transfer also ran 1500 ppm slow is no named conversion: `free`, at its own ratio."""
    music, original, segs_o, dub_speech, segs_d = tracks
    dub = converted(music, 0.96 * 1.0015, 0.2, DUR * SR) + dub_speech
    r = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d)
    assert r.conversion == "free" and abs(r.speed_ratio / (0.96 * 1.0015) - 1) <= RATIO_TOL and abs(r.offset_ms - 200) <= OFFSET_TOL_MS


def test_without_the_speed_search_a_pal_dub_does_not_align(tracks):
    """What the search is for: at the original's speed, a 4 % faster dub has no confident offset."""
    music, original, segs_o, dub_speech, segs_d = tracks
    dub = converted(music, 0.96, 0.3, DUR * SR) + dub_speech
    plain = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d, ratio_range=None)
    assert plain.offset_ms is None or abs(plain.offset_ms - 300) > OFFSET_TOL_MS
    found = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d)
    assert found.conversion == "pal_speedup_24_25" and abs(found.offset_ms - 300) <= OFFSET_TOL_MS


def test_an_unrelated_track_gets_no_speed(tracks):
    _, original, segs_o, _, _ = tracks
    r = measure(original, bed(DUR, 7), SR, original_speech=segs_o)
    assert r.offset_ms is None and r.speed_ratio is None and r.conversion is None


# --- roles, limits and subtitles ------------------------------------------------------------------

def _inputs(segs: dict[int, list], langs: dict[int, str | None], dur: float):
    analysis = [{"track": k, "stream_index": k + 1, "duration_s": dur, "language_tag": None, "codec": "aac", "speech_ratio": None}
                for k in segs]
    transcript = [{"track": k, "speech_regions": [{"start_s": s, "end_s": e} for s, e in segs[k]], "language": langs[k],
                   "language_probability": 0.99 if langs[k] else None} for k in segs]
    probe = [{"index": k + 1, "default": k == 0} for k in segs]
    return analysis, transcript, probe


def test_a_pal_dub_is_a_dub_flagged_against_the_picture(tracks):
    music, original, segs_o, dub_speech, segs_d = tracks
    dub = converted(music, 0.96, 0.0, DUR * SR) + dub_speech
    wavs = {0: "orig", 1: "dub", 2: "me"}
    audio = {"orig": original, "dub": dub, "me": music[:DUR * SR]}
    analysis, transcript, probe = _inputs({0: segs_o, 1: segs_d, 2: []}, {0: "en", 1: "de", 2: None}, DUR)
    out, original_track = profiles(analysis, transcript, probe, DUR, wavs, {}, "en", SyncLimits(), audio.__getitem__)
    assert original_track == 0 and [t["role"] for t in out] == ["original", "dub", "music_and_effects"], [t["role_evidence"] for t in out]
    s = out[1]["sync"]
    assert s["conversion"] == "pal_speedup_24_25" and abs(s["speed_ratio"] / 0.96 - 1) <= RATIO_TOL and abs(s["offset_ms"]) <= OFFSET_TOL_MS
    assert any("pal_speedup_24_25" in e for e in out[1]["role_evidence"])
    # against the picture it is 4 % fast: 0 ms at the start, -3.6 s at the end of 90 s
    assert s["out_of_limits"] and abs(s["offset_at_end_ms"] - (-0.04 * DUR * 1000)) <= 100
    assert out[2]["sync"]["conversion"] == "none" and not out[2]["sync"]["out_of_limits"]


def test_total_drift_adds_the_conversion():
    assert total_drift({"drift_ms_per_hour": 0.0, "nominal_ratio": 0.96}) == pytest.approx(-144000)
    assert total_drift({"drift_ms_per_hour": 3600.0, "nominal_ratio": 1.0}) == pytest.approx(3600)
    assert total_drift({"drift_ms_per_hour": None, "nominal_ratio": 25 / 24}) == pytest.approx(150000)
    assert total_drift({"drift_ms_per_hour": 10.0}) == pytest.approx(10.0)  # older results: no speed fields
    assert out_of_limits(20.0, total_drift({"drift_ms_per_hour": 0.0, "nominal_ratio": 1000 / 1001}), 120, SyncLimits())[0] is True


def test_subtitles_in_the_dubs_language_are_timed_on_the_dub():
    """A German subtitle for a PAL German dub follows the dub's speech (24/25 of the original's times,
    +0.5 s): timed against the dub, it is on time; against the original it would drift 4 %."""
    rng = np.random.default_rng(9)
    segs_o, t = [], 2.0
    while t < 300:
        d = float(rng.uniform(1, 3))
        segs_o.append((round(t, 3), round(t + d, 3)))
        t += d + float(rng.uniform(0.6, 3))
    segs_d = [(0.96 * s + 0.5, 0.96 * e + 0.5) for s, e in segs_o]
    cues = [Cue(s, e + 0.3, "Das Schiff verlässt den Hafen.", "Das Schiff verlässt den Hafen.") for s, e in segs_d]
    audio = [{"track": 0, "role": "original", "language": "en", "container_language": "eng"},
             {"track": 1, "role": "dub", "language": "de", "container_language": "ger",
              "sync": {"conversion": "pal_speedup_24_25", "speed_ratio": 0.96, "offset_ms": 500.0}}]
    transcripts = {k: {"speech_regions": [{"start_s": s, "end_s": e} for s, e in segs]} for k, segs in ((0, segs_o), (1, segs_d))}
    _, profile = profile_for(None)
    out = report({"language": "de", "forced": False}, cues, fps=25.0, profile=profile, cuts=[], audio=audio, original=0,
                 transcripts=transcripts, lim={})
    assert out["reference_track"] == 1 and abs(out["timing"]["offset_ms"]) <= OFFSET_TOL_MS
    assert not [e for e in out["events"] if e["kind"] in ("cue_offset", "cue_drift")], out["events"]
    against_original = timing(cues, segs_o)
    assert against_original.get("line_drift_ms_per_hour") is None or abs(against_original["line_drift_ms_per_hour"]) > 10000


# --- integration: generated media, ffmpeg speed change, decoded at 16 kHz --------------------------

@pytest.mark.integration
def test_generated_title_with_ffmpeg_converted_dubs(tmp_path):
    """An English original, a German dub from a PAL master (`asetrate`: 25/24 faster, pitch up, 180 ms
    late), a French dub pulled down (`atempo`: 1001/1000 slower, -60 ms), an M&E track; AAC in MKV."""
    audio = [AudioSpec("original", "en"), AudioSpec("dub", "de", offset_ms=180, speed_ratio=24 / 25),
             AudioSpec("dub", "fr", offset_ms=-60, speed_ratio=1001 / 1000, speed_filter="atempo"), AudioSpec("music_and_effects", None)]
    path, truth = make_title(tmp_path / "media", "speed", audio, [SubSpec("de", "de", timed_on=1)], container="mkv", dur=40.0, seed=7)
    wavs = {}
    for k in range(len(audio)):
        wavs[k] = tmp_path / f"a{k}.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-map", f"0:a:{k}", "-ac", "1", "-ar", str(SR), "-c:a", "pcm_s16le",
                        str(wavs[k])], check=True, capture_output=True, timeout=120)
    segs = {a["track"]: a["speech"] for a in truth.audio}
    analysis, transcript, probe = _inputs(segs, {a["track"]: a["language"] for a in truth.audio}, truth.duration_s)
    out, original = profiles(analysis, transcript, probe, truth.duration_s, wavs, {}, "en", SyncLimits(), load_wav16)
    assert original == 0 and [t["role"] for t in out] == ["original", "dub", "dub", "music_and_effects"], [t["role_evidence"] for t in out]
    for k, name in ((1, "pal_speedup_24_25"), (2, "pulldown_24_23976"), (3, "none")):
        s, want = out[k]["sync"], truth.audio[k]
        assert s["conversion"] == name, (k, s["conversion"], s["speed_ratio"])
        assert abs(s["speed_ratio"] / want["speed_ratio"] - 1) <= RATIO_TOL, (k, s["speed_ratio"], want["speed_ratio"])
        assert abs(s["offset_ms"] - want["offset_ms"]) <= OFFSET_TOL_MS, (k, s["offset_ms"], want["offset_ms"])
    sub = next(p for p in path.parent.iterdir() if p.name.endswith(".de.srt"))
    cues = parse(sub.read_bytes(), sub.name, "de").cues
    _, profile = profile_for(None)
    qc = report({"language": "de", "forced": False}, cues, fps=25.0, profile=profile, cuts=[], audio=out, original=original,
                transcripts={t["track"]: t for t in transcript}, lim={})
    assert qc["reference_track"] == 1 and abs(qc["timing"]["offset_ms"]) <= OFFSET_TOL_MS
    assert not [e for e in qc["events"] if e["kind"] in ("cue_offset", "cue_drift")], qc["events"]


def test_the_out_of_sync_event_of_a_converted_dub_names_its_conversion():
    """A PAL-speed dub drifts by its conversion, not by a small leftover: the event says which."""
    from prism_assets.localization.events import audio_events

    a = {"track": 2, "role": "dub", "language": "es", "container_language": "spa", "sync": {
        "offset_ms": 12.0, "offset_at_end_ms": -24012.0, "drift_ms_per_hour": -3.0, "confidence": 0.8, "against_track": 0,
        "out_of_limits": True, "limits_ms": {"early": 40, "late": 60}, "speed_ratio": 0.96, "conversion": "pal_speedup_24_25"}}
    (ev,) = [e for e in audio_events(a, 600.0) if e["kind"] == "dub_out_of_sync"]
    assert "(speed 0.9600: pal speedup 24 25, then drift -3 ms an hour)" in ev["detail"], ev["detail"]
    assert ev["metrics"]["conversion"] == "pal_speedup_24_25" and ev["metrics"]["speed_ratio"] == 0.96
    a["sync"].update(conversion="none", speed_ratio=1.0)
    (ev,) = [e for e in audio_events(a, 600.0) if e["kind"] == "dub_out_of_sync"]
    assert "(drift -3 ms an hour)" in ev["detail"], ev["detail"]
