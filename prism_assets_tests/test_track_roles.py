"""Audio track language and role decisions (prism_assets/localization/roles.py)."""

from __future__ import annotations

import pytest

from prism_assets.localization.roles import TrackEvidence, decide_language, decide_roles

pytestmark = pytest.mark.unit


def track(i, speech_s, lang=None, p=0.95, dur=600.0, **kw):
    return TrackEvidence(index=i, duration_s=dur, speech_s=speech_s, detected_language=lang, language_probability=p, **kw)


def test_no_speech_no_language():
    lang, why = decide_language(track(0, 0.0, "en", 0.99))
    assert lang is None and "0.0 s of speech" in why
    assert decide_language(track(0, 120.0, "ko", 0.3))[0] is None  # unsure: no guess
    assert decide_language(track(0, 120.0, "ko", 0.9)) == ("ko", "detected on 120 s of speech, p=0.90")


def test_original_dubs_and_music_and_effects():
    tracks = [track(0, 200, "en", container_language="eng", default=True),
              track(1, 190, "ko", container_language="kor", sync_confidence=0.8),
              track(2, 195, "ja", sync_confidence=0.7),
              track(3, 2.0, None, sync_confidence=0.9)]
    got = {d.index: d for d in decide_roles(tracks, original_language="en")}
    assert [got[i].role for i in range(4)] == ["original", "dub", "dub", "music_and_effects"]
    assert got[0].evidence == ["language en is the title's original language"]
    assert any("speech in ko, the original in en" in e for e in got[1].evidence)
    assert got[3].language is None and "speech on 0.3% of 600 s" in got[3].evidence[0]


def test_default_track_is_original_without_a_sidecar_language():
    tracks = [track(0, 150, "ko", sync_confidence=0.6), track(1, 160, "en", default=True)]
    got = decide_roles(tracks)
    assert [d.role for d in got] == ["dub", "original"] and got[1].evidence == ["the container's default track"]


def test_titles_name_commentary_and_m_and_e():
    tracks = [track(0, 200, "en"), track(1, 300, "en", title="Director's commentary", sync_confidence=0.5),
              track(2, 100, "en", title="M&E", sync_confidence=0.9)]
    assert [d.role for d in decide_roles(tracks)] == ["original", "commentary", "music_and_effects"]


def test_unaligned_speech_track_stays_unknown_with_its_reason():
    tracks = [track(0, 200, "en"), track(1, 200, "fr", sync_confidence=0.05)]
    other = decide_roles(tracks)[1]
    assert other.role == "unknown" and other.evidence == ["speech, but not aligned with the original"]


def test_sixteen_tracks_and_no_speech_at_all():
    many = [track(i, 100 + i, "en" if i == 0 else "de", sync_confidence=0.5) for i in range(16)]
    roles = [d.role for d in decide_roles(many)]
    assert roles[0] == "original" and roles[1:] == ["dub"] * 15
    silent = decide_roles([track(0, 0.0, dur=5.0), track(1, 0.0, dur=5.0)])
    assert [d.role for d in silent] == ["unknown", "unknown"] and all(d.language is None for d in silent)
