"""The pass/fail rules of benchmarks/formats.py (no media, no `prism` run): cue timing errors and texts,
subtitle / dub / picture judging on hand-made export documents, case selection and merging."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.formats import cue_errors, merged, score_dub, score_picture, score_subtitle, selected

TRUTH = {"file": "m.en.srt", "cues": [(1.0, 2.0, "Hello\nthere"), (3.0, 4.0, "Bye")], "tol_ms": 1.0, "language": "en", "forced": False,
         "sdh": False, "regions": 1, "format": "SubRip"}


def export(cues, **track):
    t = {"track": "f0", "file": "m.en.srt", "label": "en", "format": "SubRip", "kind": "subtitles", "cues": len(cues), "language": "en",
         "forced": False, "sdh": False, "error": None, **track}
    frame = pd.DataFrame([{"start_s": a, "end_s": b, "text": x, "region": r, "track": "f0"} for a, b, x, r in cues])
    return {"localization": {"subtitle_tracks": [t], "events": []}, "cues": {"en": frame}}


def test_cue_errors_are_per_cue_in_order_and_texts_ignore_whitespace():
    e = cue_errors(TRUTH["cues"], [(1.02, 2.0, "Hello  there"), (3.0, 3.95, "Bye")])
    assert e == {"first_start_error_ms": 20.0, "max_time_error_ms": 50.0, "texts_match": True}
    assert cue_errors(TRUTH["cues"], [(1.0, 2.0, "Hello there")])["texts_match"] is False  # a cue missing
    assert cue_errors([], []) == {"first_start_error_ms": None, "max_time_error_ms": None, "texts_match": True}


def test_subtitle_rule_passes_the_truth_and_names_each_failed_check():
    good = export([(1.0, 2.0, "Hello\nthere", "an8"), (3.0, 4.0, "Bye", None)])
    r = score_subtitle(good, TRUTH)
    assert r["pass"] and r["failed"] == [] and r["read"]["regions_kept"] == 1
    late = export([(1.0, 2.0, "Hello\nthere", None), (3.1, 4.0, "Bye", None)], forced=True)
    r = score_subtitle(late, TRUTH)
    assert not r["pass"] and r["failed"] == ["times within 1.0 ms", "forced", "regions kept"]
    assert r["read"]["first_start_error_ms"] == 0.0 and r["read"]["max_time_error_ms"] == pytest.approx(100.0)
    assert score_subtitle({"localization": {"subtitle_tracks": []}, "cues": {}}, TRUTH)["failed"] == ["track listed"]


def test_a_bad_file_passes_only_with_a_one_line_error_and_the_unreadable_event():
    bad = {"file": "m.en.srt", "bad": True}
    doc = export([], error="SCC not read: truncated", parsed=False, label=None)
    assert score_subtitle(doc, bad)["failed"] == ["QC event subtitle_unreadable"]
    doc["localization"]["events"] = [{"kind": "subtitle_unreadable", "severity": "warn", "metrics": {"subtitle_track": "f0"}}]
    assert score_subtitle(doc, bad)["pass"]
    doc["localization"]["subtitle_tracks"][0]["error"] = "line one\nline two"
    assert score_subtitle(doc, bad)["failed"] == ["error is one line"]


def test_dub_rule_needs_the_conversion_ratio_and_offset():
    truth = {"track": 1, "language": "de", "speed_ratio": 0.96, "conversion": "pal_speedup_24_25", "offset_ms": 120.0}
    sync = {"speed_ratio": 0.96003, "conversion": "pal_speedup_24_25", "offset_ms": 131.0}
    doc = {"localization": {"audio_tracks": [{"track": 1, "role": "dub", "language": "de", "sync": sync}]}}
    assert score_dub(doc, truth)["pass"]
    sync.update(offset_ms=200.0, speed_ratio=1.0, conversion="none")
    r = score_dub(doc, truth)
    assert r["failed"] == ["conversion", "ratio within 0.05 %", "offset within 40 ms"] and r["read"]["offset_error_ms"] == 80.0


def test_picture_rule_checks_fields_and_expected_and_unexpected_events():
    truth = {"hdr": {"format": "hdr10", "max_cll": None}, "events": {"hdr_metadata": "warn"}}
    doc = {"title": {"hdr": {"format": "hdr10", "max_cll": None}}, "qc": {"events": [{"kind": "hdr_metadata", "severity": "warn"}]}}
    assert score_picture(doc, truth)["pass"]
    doc["qc"]["events"][0]["severity"] = "info"
    assert score_picture(doc, truth)["failed"] == ["QC event hdr_metadata (warn)"]
    clean = {"hdr": {"format": "hlg"}, "events": {}, "no_events": ["hdr_metadata"]}
    assert score_picture({"title": {"hdr": {"format": "hlg"}}, "qc": {"events": [{"kind": "hdr_metadata", "severity": "warn"}]}}, clean)["failed"] \
        == ["no QC event hdr_metadata"]


def test_selection_by_case_or_delivery_and_merging_keeps_other_rows():
    plan = selected(["scc", "hlg"], quick=False)
    assert plan == {"sidecars": ["scc"], "hlg": ["hlg"]}
    assert "dubs" not in selected(None, quick=True) and selected(None, quick=True)["sidecars"][0] == "srt"
    with pytest.raises(SystemExit):
        selected(["no-such-case"], quick=False)
    rows = merged({"cases": [{"case": "hlg", "pass": False}, {"case": "srt", "pass": True}]}, [{"case": "hlg", "pass": True}])
    assert [(r["case"], r["pass"]) for r in rows] == [("srt", True), ("hlg", True)]
