"""The localization signal's parts with exact inputs: subtitle tracks from streams and sidecars,
export labels, language tags, dub limits, the subtitle report, the QC events it contributes and the
checks of its outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from prism_assets.core.language import decide_on_speech as decide_language
from prism_assets.core.store import LocalStore
from prism_assets.localization import collect
from prism_assets.localization.checks import LOCALIZATION_RULES, SUBTITLE_RULES
from prism_assets.localization.events import qc_events
from prism_assets.localization.subtitle_qc import profile_for
from prism_assets.localization.subtitle_report import cuts_of, report
from prism_assets.localization.subtitle_speech import language_mismatch
from prism_assets.localization.subtitles import Cue
from prism_assets.localization.tracks import SyncLimits, out_of_limits
from prism_assets.qc.events import validate_events

pytestmark = pytest.mark.unit

SRT = "1\n00:00:01,000 --> 00:00:03,000\nHello there.\n\n2\n00:00:04,000 --> 00:00:06,000\nGeneral Kenobi.\n\n"


@pytest.mark.parametrize("tag,want", [("eng", "en"), ("ger", "de"), ("pt_BR", "pt-br"), ("und", None), ("", None), ("../x", None),
                                      ("zxx", None), ("ko", "ko"), ("en-GB", "en-gb")])
def test_language_tags_are_normalised_and_safe(tag, want):
    assert collect.normal_language(tag) == want


def test_sidecars_by_stem_or_in_a_delivery_folder(tmp_path):
    store = LocalStore(tmp_path)
    for k in ["movie.mp4", "movie.en.srt", "movie_ko.vtt", "other.fr.srt", "movie.en.txt", "sub/movie.de.srt",
              "2026-12-01/t1/t1.mkv", "2026-12-01/t1/english.srt", "2026-12-01/t1/notes.txt"]:
        store.put_bytes(k, SRT.encode())
    keys, warnings = collect.sidecar_keys(store, "movie.mp4")
    assert keys == ["movie.en.srt", "movie_ko.vtt"] and warnings == []  # another title's file and sub-folders are not its own
    keys, _ = collect.sidecar_keys(store, "2026-12-01/t1/t1.mkv")
    assert keys == ["2026-12-01/t1/english.srt"]  # a delivery title folder holds one title: every subtitle file is its


def test_too_many_sidecars_are_bounded(tmp_path):
    store = LocalStore(tmp_path)
    for i in range(collect.MAX_SIDECARS + 5):
        store.put_bytes(f"m.x{i:03d}.srt", SRT.encode())
    keys, warnings = collect.sidecar_keys(store, "m.mp4")
    assert len(keys) == collect.MAX_SIDECARS and "first 64 read" in warnings[0]


def test_unreadable_sidecars_become_tracks_with_one_line_errors(tmp_path):
    store = LocalStore(tmp_path)
    store.put_bytes("m.mp4", b"x")
    store.put_bytes("m.en.srt", SRT.encode())
    store.put_bytes("m.fr.srt", b"\x00\x01garbage without timings")
    store.put_bytes("m.de.vtt", b"")
    store.put_bytes("m.ko.srt", SRT.replace("Hello there.", "안녕하세요 여러분").encode("cp949"))
    store.put_bytes("m.ja.srt", SRT.replace("Hello there.", "こんにちは、世界").replace("General Kenobi.", "ありがとう").encode("shift_jis"))
    tracks, _ = collect.collect(store, "m.mp4", tmp_path / "m.mp4", has_streams=False)
    by = {t.file: t for t in tracks}
    assert by["m.en.srt"].parsed and len(by["m.en.srt"].cues) == 2 and by["m.en.srt"].label == "en"
    assert not by["m.fr.srt"].parsed and "\n" not in by["m.fr.srt"].error
    assert by["m.de.vtt"].error == "empty file"
    ko = by["m.ko.srt"]
    assert ko.parsed and ko.encoding == "cp949" and ko.cues[0].text == "안녕하세요 여러분" and "guessed" in ko.warnings[0]
    ja = by["m.ja.srt"]  # short Shift-JIS is valid CP949 too: the file's language decides
    assert ja.encoding == "shift_jis" and [c.text for c in ja.cues] == ["こんにちは、世界", "ありがとう"] and "from the language ja" in ja.warnings[0]
    doc = {"tracks": [t.as_dict() for t in tracks]}
    assert SUBTITLE_RULES[0].fn(doc)[0] and not SUBTITLE_RULES[1].fn(doc)[0]
    files = collect.files_of(tracks)
    assert set(files) == {f"subtitles/{lang}.{ext}" for lang in ("en", "ko", "ja") for ext in ("parquet", "vtt")}
    assert collect.cues_of(pd.read_parquet(__import__("io").BytesIO(files["subtitles/ko.parquet"])))[0].text == "안녕하세요 여러분"


def test_labels_keep_tracks_of_one_language_apart():
    ts = [collect.SubtitleTrack("s2", "stream", "en", cues=[Cue(0, 1, "a", "a")]),
          collect.SubtitleTrack("f0", "sidecar", "en", cues=[Cue(0, 1, "a", "a")]),
          collect.SubtitleTrack("f1", "sidecar", "en", forced=True, cues=[Cue(0, 1, "a", "a")]),
          collect.SubtitleTrack("f2", "sidecar", None, cues=[Cue(0, 1, "a", "a")]),
          collect.SubtitleTrack("s3", "stream", "en", parsed=False)]
    collect.label(ts)
    assert [t.label for t in ts] == ["en", "en.2", "en.forced", "und", ""]


@pytest.mark.parametrize("speech_s,lang,p,want", [(0.9, "en", 0.99, None), (30, "en", 0.3, None), (30, "de", 0.9, "de"), (30, None, None, None),
                                                  (6, "ko", None, "ko")])
def test_no_language_without_speech(speech_s, lang, p, want):
    assert decide_language(speech_s, lang, p)[0] == want


def test_dub_limits_at_both_ends_of_the_title():
    lim = SyncLimits()
    assert out_of_limits(30.0, 0.0, 3600, lim)[0] is False
    assert out_of_limits(70.0, None, 3600, lim)[0] is True
    assert out_of_limits(-50.0, 0.0, 60, lim)[0] is True
    flagged, start, end = out_of_limits(0.0, 3600.0, 1800, lim)  # 0 ms at the start, 1.8 s late at the end
    assert flagged and start == 0.0 and end == 1800.0
    assert out_of_limits(None, None, 100, lim) == (False, None, None)


@pytest.mark.parametrize("declared,text,wrong", [
    ("es", "The ship leaves the harbour and you know that this was not what they said", True),
    ("en", "The ship leaves the harbour and you know that this was not what they said", False),
    ("de", "Der Sturm erreicht die Küste und ich weiß nicht, was wir tun sollen, aber das ist sie", False),
    ("ko", "The ship leaves the harbour and you know that this was not what they said", True),
    ("ko", "배가 새벽 전에 항구를 떠난다", False),
    ("fi", "The ship leaves the harbour and you know that this was not what they said", False),  # no evidence for Finnish: no claim
    ("en", "Okay. Yes. No. Hmm.", False),
])
def test_wrong_language(declared, text, wrong):
    assert language_mismatch(declared, text)[0] is wrong


def _audio(track, role, lang, speech):
    return {"track": track, "role": role, "language": lang, "container_language": None, "speech": speech}


def test_report_finds_offset_overlap_and_fast_cues_and_groups_them_for_qc():
    speech = [(2.0 + 5 * i, 4.0 + 5 * i) for i in range(10)]
    words = [{"start": s, "end": e, "word": w} for s, e in speech for w in ("ship", "harbour")]
    transcripts = {0: {"speech_regions": [{"start_s": s, "end_s": e} for s, e in speech], "segments": [{"words": words}]}}
    cues = [Cue(s + 0.5, e + 0.8, "the ship and the harbour", "x") for s, e in speech]
    cues[3] = Cue(cues[3].start, cues[4].start + 0.5, cues[3].text, "x")  # overlaps the next
    cues[6] = Cue(cues[6].start, cues[6].start + 0.9, "a much too long line of text\nread in under a second", "x")
    _, prof = profile_for()
    audio = [_audio(0, "original", "en", speech)]
    track = {"track": "f0", "language": "en", "forced": False}
    r = report(track, cues, fps=25, profile=prof, cuts=[], audio=audio, original=0, transcripts=transcripts, lim={})
    kinds = {e["kind"] for e in r["events"]}
    assert "cue_offset" in kinds and abs(r["timing"]["offset_ms"] - 500) <= 40
    doc = {"picture": {"duration_s": 60}, "audio_tracks": [],
           "subtitle_tracks": [{"track": "f0", "label": "en", "file": "m.en.srt", "source": "sidecar", "qc": r, "error": None}]}
    evs = qc_events(doc)
    by = {e["kind"]: e for e in evs}
    assert by["subtitle_overlap"]["metrics"]["cues"] == 1 and by["subtitle_reading_speed"]["metrics"]["cues"] == 1
    assert by["subtitle_cue_offset"]["severity"] == "fail" and "500 ms late" in by["subtitle_cue_offset"]["detail"]
    assert all(e["kind"] != "subtitle_near_cut" for e in evs)  # info-level findings stay in localization.json
    assert len(validate_events(evs, "localization")) == len(evs)


def test_clean_cues_give_no_event():
    speech = [(2.0 + 5 * i, 4.0 + 5 * i) for i in range(10)]
    transcripts = {0: {"speech_regions": [{"start_s": s, "end_s": e} for s, e in speech], "segments": []}}
    cues = [Cue(s, e + 0.3, "the ship and the harbour", "x") for s, e in speech]
    _, prof = profile_for()
    r = report({"track": "f0", "language": "en"}, cues, fps=25, profile=prof, cuts=[], audio=[_audio(0, "original", "en", speech)],
               original=0, transcripts=transcripts, lim={})
    assert r["events"] == [] and [e for e in r["cue_events"] if e["severity"] != "info"] == []


def test_cuts_are_the_hard_cuts():
    shots = pd.DataFrame({"shot_index": [0, 1, 2, 3], "start_s": [0.0, 4.0, 8.0, 12.0], "transition_in": ["start", "cut", "dissolve", "cut"]})
    assert cuts_of(shots) == [4.0, 12.0] and cuts_of(None) == []


def test_checks_refuse_a_guessed_language_and_two_originals():
    def track(i, role, lang, speech_s):
        return {"track": i, "role": role, "role_evidence": ["x"], "language": lang, "speech_s": speech_s, "silent": False, "sync": None}
    good = {"audio_tracks": [track(0, "original", "en", 30), track(1, "music_and_effects", None, 0.5)], "events": []}
    assert all(r.fn(good)[0] for r in LOCALIZATION_RULES)
    guessed = {"audio_tracks": [track(0, "original", "en", 30), track(1, "music_and_effects", "en", 0.5)], "events": []}
    assert not LOCALIZATION_RULES[1].fn(guessed)[0]
    two = {"audio_tracks": [track(0, "original", "en", 30), track(1, "original", "de", 30)], "events": []}
    assert not LOCALIZATION_RULES[0].fn(two)[0]


@pytest.mark.parametrize("stretch,offset_s", [(25 / 23.976 - 1, 0.0), (23.976 / 25 - 1, 0.5), (30 / 29.97 - 1, 0.0)])
def test_cues_for_another_frame_rate_are_a_drift_not_an_offset(stretch, offset_s):
    """A 90 s title whose cues were timed for another frame rate: they slide away from the speech
    (here up to 3.8 s by the end). The drift is found on the onsets, and the offset is judged at the
    first cue, so the drift is one event, not two."""
    from prism_assets.localization.subtitle_report import timing_events
    from prism_assets.localization.subtitle_speech import timing

    rng = __import__("numpy").random.default_rng(3)
    speech, t = [], 2.0
    while t < 88:
        d = float(rng.uniform(1.0, 3.0))
        speech.append((round(t, 3), round(t + d, 3)))
        t += d + float(rng.uniform(0.8, 3.0))
    cues = [Cue(s * (1 + stretch) + offset_s, e * (1 + stretch) + offset_s + 0.3, "x", "x") for s, e in speech]
    tm = timing(cues, speech)
    assert abs(tm["line_drift_ms_per_hour"] - stretch * 3.6e6) <= 0.05 * abs(stretch * 3.6e6), tm
    kinds = [e["kind"] for e in timing_events(tm, cues, 0, {})]
    slides = abs(stretch * (cues[-1].start - cues[0].start)) > 0.2  # 30 vs 29.97 fps moves 90 ms in 90 s: within the offset limit
    assert kinds == ["cue_drift"] * slides + ["cue_offset"] * (abs(offset_s) > 0.2), (kinds, tm)


def test_steady_cues_have_no_drift_event():
    from prism_assets.localization.subtitle_report import timing_events
    from prism_assets.localization.subtitle_speech import timing

    speech = [(2.0 + 4.3 * i + (i % 3) * 0.4, 3.5 + 4.3 * i + (i % 3) * 0.4) for i in range(20)]
    cues = [Cue(s + 0.04 * ((i * 7) % 3 - 1), e + 0.3, "x", "x") for i, (s, e) in enumerate(speech)]  # +-40 ms jitter
    assert timing_events(timing(cues, speech), cues, 0, {}) == []
