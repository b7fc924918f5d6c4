"""Subtitles against speech (prism_assets/localization/subtitle_speech.py): coverage, offset and
drift with exact truth, language by script and stop words, text against the transcript."""

from __future__ import annotations

import numpy as np
import pytest

from prism_assets.localization.subtitle_speech import coverage, script_language, text_match, timing
from prism_assets.localization.subtitles import Cue

pytestmark = pytest.mark.unit


def speech_segments(n: int = 300, seed: int = 4) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    out, t = [], 2.0
    for _ in range(n):
        d = float(rng.uniform(0.8, 4.0))
        out.append((round(t, 3), round(t + d, 3)))
        t += d + float(rng.uniform(0.3, 5.0))
    return out


def cues_for(segs, offset_s=0.0, stretch=0.0, text="words here"):
    return [Cue(s * (1 + stretch) + offset_s, e * (1 + stretch) + offset_s, text, text) for s, e in segs]


def test_full_and_partial_coverage():
    segs = speech_segments(50)
    full = coverage(cues_for(segs), segs)
    assert full["covered_ratio"] == 1.0 and full["uncovered"] == []
    missing = [c for i, c in enumerate(cues_for(segs)) if i not in (10, 11, 12)]
    part = coverage(missing, segs)
    assert part["covered_ratio"] < 0.97
    gap = part["uncovered"]
    assert gap and gap[0]["start_s"] == pytest.approx(segs[10][0], abs=0.02)


@pytest.mark.parametrize("offset_s", [0.0, 0.4, -1.2, 3.0])
def test_global_offset_within_40_ms(offset_s):
    segs = speech_segments(300)
    got = timing(cues_for(segs, offset_s), segs)
    assert abs(got["offset_ms"] - offset_s * 1000) <= 40 and got["confidence"] > 0.3


def test_drift_of_cues_made_for_another_frame_rate():
    segs = speech_segments(600)  # ~40 min
    got = timing(cues_for(segs, 0.5, stretch=24 / 23.976 - 1), segs)  # cues timed for 24 fps on a 23.976 fps picture
    true = (24 / 23.976 - 1) * 3600 * 1000  # 3.6 s an hour
    assert got["drift_ms_per_hour"] == pytest.approx(true, rel=0.1) and abs(got["offset_at_start_ms"] - 500) <= 40


def test_too_little_to_time():
    assert timing([Cue(0, 1, "a", "a")], [(0, 1)])["offset_ms"] is None


@pytest.mark.parametrize("text,lang", [
    ("안녕하세요. 오늘 날씨가 정말 좋네요.", "ko"), ("こんにちは、今日はいい天気ですね。", "ja"), ("今天天气很好，我们去公园吧。", "zh"),
    ("Привет, как дела? Всё хорошо.", "ru"),
    ("I told you that the house was there and they were not home, but what can we do when all is said", "en"),
    ("Je ne sais pas pour vous, mais nous sommes dans une situation avec elle qui est tout", "fr"),
])
def test_language_of_subtitle_text(text, lang):
    assert script_language(text)[0] == lang


def test_latin_text_without_evidence_is_not_guessed():
    assert script_language("Okay. Yes. Bob!")[0] is None and script_language("1234 ...")[0] is None


def test_text_against_the_transcript():
    words = [(1.0, 1.4, "Hello"), (1.5, 1.9, "there,"), (3.0, 3.5, "general"), (3.6, 4.0, "Kenobi")]
    same = [Cue(0.9, 2.0, "Hello there.", ""), Cue(2.9, 4.1, "General Kenobi!", "")]
    other = [Cue(0.9, 2.0, "Where is the ship?", ""), Cue(2.9, 4.1, "Over the hills.", "")]
    assert text_match(same, words)["matched_ratio"] == 1.0
    assert text_match(other, words)["matched_ratio"] == 0.0


@pytest.mark.parametrize("offset_s", [0.0, 0.5, -0.8])
def test_offset_on_onsets_when_cues_outlast_speech_and_split_it(offset_s):
    """Real cues stay up after their line (here 0.7 s, at least 1.2 s in all) and long speeches are
    split over several cues: the in-points still sit on the speech onsets."""
    segs = speech_segments(200, seed=8)
    cues = []
    for s, e in segs:
        if e - s > 3.0:  # a long speech: two cues, the second starting mid-speech
            mid = (s + e) / 2
            cues += [Cue(s + offset_s, mid + offset_s, "a b", "a b"), Cue(mid + offset_s, e + 0.7 + offset_s, "c d", "c d")]
        else:
            cues.append(Cue(s + offset_s, max(e + 0.7, s + 1.2) + offset_s, "a b", "a b"))
    got = timing(cues, segs)
    assert abs(got["offset_ms"] - offset_s * 1000) <= 40, got
    assert got["onset_pairs"] >= 150
