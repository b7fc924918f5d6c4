"""Dub offset and drift (prism_assets/localization/sync.py) on generated tracks with exact truth: a
shared music-and-effects bed, different speech per language, the dub shifted, stretched or re-edited."""

from __future__ import annotations

import numpy as np
import pytest

from prism_assets.localization.sync import measure

from .support.localization_media import bed as media_bed
from .support.localization_media import syllable_speech

pytestmark = pytest.mark.unit
SR = 16000
DUR = 120


def bed(dur: float, seed: int) -> np.ndarray:
    """The shared music-and-effects bed of the localization media, at 16 kHz and full level."""
    return media_bed(dur, seed, sr=SR, level=1.0)


def speech(dur: float, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    return syllable_speech(dur, seed, sr=SR)


def placed(sig: np.ndarray, offset_s: float, stretch: float = 0.0) -> np.ndarray:
    """`sig` as heard in a dub that is `offset_s` late and runs `stretch` slower."""
    t = np.arange(DUR * SR) / SR
    return np.interp((t - offset_s) / (1 + stretch) * SR, np.arange(len(sig)), sig, left=0, right=0)


@pytest.fixture(scope="module")
def tracks():
    music = bed(DUR + 5, 1)
    original_speech, segs_o = speech(DUR + 5, 2)
    dub_speech, segs_d = speech(DUR + 5, 3)
    return music, (music + original_speech)[:DUR * SR], segs_o, dub_speech[:DUR * SR], segs_d


@pytest.mark.parametrize("offset_s", [0.240, -1.337, 4.5])
def test_constant_offset_within_40_ms(tracks, offset_s):
    music, original, segs_o, dub_speech, segs_d = tracks
    r = measure(original, placed(music, offset_s) + dub_speech, SR, original_speech=segs_o, dub_speech=segs_d)
    assert abs(r.offset_ms - offset_s * 1000) <= 40 and r.confidence > 0.5
    assert r.drift_ms_per_hour is not None and abs(r.drift_ms_per_hour) < 100 and r.diverging == []


def test_drift_is_measured(tracks):
    music, original, segs_o, dub_speech, segs_d = tracks
    r = measure(original, placed(music, 0.5, stretch=2e-3) + dub_speech, SR, original_speech=segs_o, dub_speech=segs_d)
    assert abs(r.offset_ms - 500) <= 40  # at the start of the title
    assert r.conversion == "none"  # 2000 ppm is no frame-rate conversion (1000 ppm would be a pull-down: test_dub_speed.py)
    assert abs(r.drift_ms_per_hour - 7200) <= 200  # 2000 ppm slower: 7.2 s an hour


def test_a_re_edited_stretch_diverges(tracks):
    music, original, segs_o, dub_speech, segs_d = tracks
    dub = placed(music, 0.3) + dub_speech
    other = bed(DUR, 9)
    dub[40 * SR:70 * SR] = other[40 * SR:70 * SR] + dub_speech[40 * SR:70 * SR]  # different music there
    r = measure(original, dub, SR, original_speech=segs_o, dub_speech=segs_d)
    assert abs(r.offset_ms - 300) <= 40
    assert r.diverging and all(s["start_s"] < 70 and s["end_s"] > 40 for s in r.diverging), r.diverging
    covered = sum(max(0.0, min(70, s["end_s"]) - max(40, s["start_s"])) for s in r.diverging)
    assert covered >= 15, r.diverging  # at least half of the 30 s re-edit (speech-heavy windows stay "uncertain")
    assert abs(r.drift_ms_per_hour) < 200  # the stretch does not bend the line


def test_unrelated_track_gives_no_offset(tracks):
    _, original, segs_o, _, _ = tracks
    r = measure(original, bed(DUR, 7), SR, original_speech=segs_o)
    assert r.offset_ms is None and r.drift_ms_per_hour is None


def test_too_short_gives_no_offset():
    r = measure(np.zeros(SR), np.zeros(SR), SR)
    assert r.offset_ms is None and r.confidence == 0.0


def test_envelope_in_blocks_equals_at_once():
    """The envelope is computed a block of frames at a time (a 3-hour track would not fit at once)."""
    from prism_assets.localization.sync import flux_envelope

    x = bed(20, 5)
    whole = flux_envelope(x, SR, block=10_000_000)
    assert len(whole) > 1900 and np.allclose(flux_envelope(x, SR, block=97), whole, atol=1e-5)
