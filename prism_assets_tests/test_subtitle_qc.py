"""Subtitle timing and style QC (prism_assets/localization/subtitle_qc.py) on cues with seeded errors."""

from __future__ import annotations

import pytest

from prism_assets.localization.subtitle_qc import check_cues, limits_for, profile_for, summary
from prism_assets.localization.subtitles import Cue

pytestmark = pytest.mark.unit
FPS = 25.0


def cue(start, end, text="Fine text.", style=None):
    return Cue(start, end, text, text, style)


@pytest.fixture
def profile():
    return profile_for()[1]


def kinds(events):
    return sorted((e.kind, e.cue) for e in events)


def test_clean_cues_raise_nothing(profile):
    cues = [cue(1.0, 3.0), cue(3.2, 5.0, "Second line\nof text."), cue(6.0, 8.0)]
    assert check_cues(cues, language="en", fps=FPS, profile=profile) == []


def test_each_seeded_error_is_found_once(profile):
    cues = [
        cue(0.0, 0.5, "Hi."),                                   # 0 too short
        cue(1.0, 9.0, "Long."),                                  # 1 too long
        cue(10.0, 11.0, "Too much text for one second."),       # 2 reading speed (29 cps)
        cue(12.0, 14.0, "one\ntwo\nthree"),                     # 3 too many lines
        cue(15.0, 17.0, "x" * 50),                               # 4 line too long (+ reading speed: 25 cps)
        cue(18.0, 20.0), cue(19.5, 21.0),                        # 5 overlaps 6
        cue(22.0, 24.0), cue(24.04, 26.0),                       # 7 one-frame gap before 8
        cue(30.0, 29.0),                                         # 9 reversed
    ]
    got = kinds(check_cues(cues, language="en", fps=FPS, profile=profile))
    assert got == sorted([("too_short", 0), ("too_long", 1), ("reading_speed", 2), ("too_many_lines", 3), ("line_too_long", 4),
                          ("reading_speed", 4), ("overlap", 5), ("short_gap", 7)] + [("reversed", 9)]), got


def test_languages_have_their_own_limits(profile):
    assert limits_for(profile, "ko") == {"max_chars_per_line": 16, "max_cps": 12}
    assert limits_for(profile, "en-GB") == limits_for(profile, "en") and limits_for(profile, "xx") == limits_for(profile, "*")
    ko = cue(0.0, 1.0, "안녕하세요 반갑습니다 여러분")  # 15 characters in 1 s: fine in English, too fast in Korean
    assert kinds(check_cues([ko], language="ko", fps=FPS, profile=profile)) == [("reading_speed", 0)]
    assert check_cues([ko], language="en", fps=FPS, profile=profile) == []


def test_cue_points_near_a_cut_are_moved_to_it(profile):
    cut = 10.0
    cues = [cue(10.16, 12.0),                 # in-point 4 frames after the cut: move
            cue(12.5, cut + 20.0 - 10.0)]      # far from the cut: nothing
    near = [e for e in check_cues(cues, language="en", fps=FPS, profile=profile, cuts=[cut]) if e.kind == "near_cut"]
    assert [(e.cue, e.value) for e in near] == [(0, 4.0)] and "move it to the cut" in near[0].detail
    # out-points: on "2 frames before the cut" is right; 3 frames after it is not
    good, late = cue(8.0, cut - 2 / FPS), cue(8.0, cut + 3 / FPS)
    assert check_cues([good], language="en", fps=FPS, profile=profile, cuts=[cut]) == []
    out = check_cues([late], language="en", fps=FPS, profile=profile, cuts=[cut])
    assert [e.kind for e in out] == ["near_cut"] and "2 frames before the cut" in out[0].detail


def test_signs_may_overlap_dialogue(profile):
    cues = [cue(1.0, 4.0, "Dialogue", "Default"), cue(2.0, 3.0, "SIGN", "Sign")]
    assert [e.kind for e in check_cues(cues, language="en", fps=FPS, profile=profile)] == []


def test_profiles_per_provider_and_unknown_profile():
    over = {"providers": {"acme": "strict"}, "profiles": {"strict": {**profile_for()[1], "max_duration_s": 5.0}}}
    name, prof = profile_for("acme", over)
    assert name == "strict" and prof["max_duration_s"] == 5.0 and profile_for("other", over)[0] == "streaming"
    with pytest.raises(ValueError, match="not defined"):
        profile_for("acme", {"providers": {"acme": "nope"}})


def test_summary_counts_and_reading_speed(profile):
    cues = [cue(0.0, 1.0, "x" * 10), cue(2.0, 3.0, "x" * 30)]
    s = summary(check_cues(cues, language="en", fps=FPS, profile=profile), cues)
    assert s["cues"] == 2 and s["events"]["reading_speed"] == 1 and s["cps_median"] == 30.0


def test_bad_fps_is_one_line(profile):
    with pytest.raises(ValueError, match="fps must be positive"):
        check_cues([cue(0, 1)], language="en", fps=0, profile=profile)
