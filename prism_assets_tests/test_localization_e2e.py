"""Localization through the CLI as a user runs it (`prism process` + `prism export`), on generated
titles with exact truth: dub offsets, roles, languages (none for a music-only track), subtitle
errors that must reach the title's QC verdict; and bad input that must end in a flagged result,
never a crash."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from .support.localization_media import AudioSpec, SubSpec, make_title
from .test_cli import prism

pytestmark = pytest.mark.e2e


def test_dubs_roles_and_subtitle_errors_reach_the_verdict(data_dir, tmp_path):
    path, truth = make_title(tmp_path / "media", "loc1", [AudioSpec("original", "en"), AudioSpec("dub", "de", offset_ms=-130),
                                                          AudioSpec("music_and_effects", None, tag="")],
                             [SubSpec("en", "en", errors=("overlap",), where="stream"), SubSpec("de", "de", timed_on=1, offset_ms=-600),
                              SubSpec("fr", "en", fmt="vtt")], container="mkv", dur=40.0, seed=5)
    prism("process", str(path), "--title-id", "loc1", timeout=900)
    out = tmp_path / "export"
    prism("export", "loc1", "--to", str(out))
    loc = json.loads((out / "localization.json").read_text())
    tracks = loc["audio_tracks"]
    assert [t["role"] for t in tracks] == ["original", "dub", "music_and_effects"], [t["role_evidence"] for t in tracks]
    assert [t["language"] for t in tracks] == ["en", "de", None] and "not decided" in tracks[2]["language_note"]
    assert abs(tracks[1]["sync"]["offset_ms"] - (-130)) <= 40 and tracks[1]["sync"]["out_of_limits"]
    assert abs(tracks[2]["sync"]["offset_ms"]) <= 40 and not tracks[2]["sync"]["out_of_limits"]
    # subtitles as data: the stream and both sidecars, exported per language
    subs = json.loads((out / "subtitles.json").read_text())
    assert sorted(t["label"] for t in subs["tracks"]) == ["de", "en", "fr"]
    en = pd.read_parquet(out / "subtitles" / "en.parquet")
    assert len(en) == truth.subtitles[0]["cues"] and (out / "subtitles" / "fr.vtt").read_text().startswith("WEBVTT")
    # the seeded errors are QC events of the title, with no false one
    qc = json.loads((out / "qc.json").read_text())
    found = {(e["kind"], e["metrics"].get("subtitle_track")) for e in qc["events"] if e["metrics"].get("source") == "localization"}
    by_label = {t["label"]: t["track"] for t in subs["tracks"]}
    want = {("dub_out_of_sync", None), ("subtitle_overlap", by_label["en"]), ("subtitle_cue_offset", by_label["de"]),
            ("subtitle_wrong_language", by_label["fr"])}
    assert found == want, found
    assert qc["verdict"] == "fail" and any("subtitle_wrong_language" in r for r in qc["reasons"])
    de = next(t for t in loc["subtitle_tracks"] if t["label"] == "de")
    assert abs(de["qc"]["timing"]["offset_ms"] - (-600)) <= 80 and de["qc"]["reference_track"] == 1
    turns = json.loads((out / "speaker_turns.json").read_text())
    assert turns["model"]["configured"] is False and "no diarization model" in turns["note"] and turns["tracks"] == []


def test_bad_input_is_flagged_never_a_crash(data_dir, tmp_path):
    """16 audio tracks (one digitally silent), sidecars in Shift-JIS and CP949, a broken one, an
    empty one and a binary one: the title is processed, every track profiled, every file reported."""
    work = tmp_path / "m"
    work.mkdir()
    video = work / "many.mkv"
    inputs = ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=12"]
    for k in range(16):
        src = "anullsrc=r=48000:cl=stereo" if k == 5 else f"sine=frequency={200 + 40 * k}:sample_rate=48000"
        inputs += ["-f", "lavfi", "-t", "12", "-i", src]
    cmd = ["ffmpeg", "-v", "error", "-y", *inputs, "-map", "0:v"] + [x for k in range(16) for x in ("-map", f"{k + 1}:a")]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "12", str(video)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    srt = "1\n00:00:01,000 --> 00:00:03,000\n{}\n\n2\n00:00:04,000 --> 00:00:06,000\n{}\n\n"
    (work / "many.ja.srt").write_bytes(srt.format("こんにちは、世界", "ありがとう").encode("shift_jis"))
    (work / "many.ko.srt").write_bytes(srt.format("안녕하세요", "감사합니다").encode("cp949"))
    (work / "many.fr.srt").write_text("this is not a subtitle file\nat all\n")
    (work / "many.de.vtt").write_bytes(b"")
    (work / "many.es.srt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    prism("process", str(video), "--title-id", "many", timeout=900)
    out = tmp_path / "export"
    prism("export", "many", "--to", str(out))
    loc = json.loads((out / "localization.json").read_text())
    assert len(loc["audio_tracks"]) == 16 and all(t["language"] is None for t in loc["audio_tracks"])  # tones: no speech, no guess
    assert loc["audio_tracks"][5]["silent"]
    subs = {t["file"]: t for t in json.loads((out / "subtitles.json").read_text())["tracks"]}
    assert subs["many.ja.srt"]["encoding"] == "shift_jis" and subs["many.ko.srt"]["encoding"] == "cp949"
    assert pd.read_parquet(out / "subtitles" / "ja.parquet")["text"].tolist() == ["こんにちは、世界", "ありがとう"]
    for bad in ("many.fr.srt", "many.de.vtt", "many.es.srt"):
        assert not subs[bad]["parsed"] and subs[bad]["error"] and "\n" not in subs[bad]["error"], subs[bad]
    qc = json.loads((out / "qc.json").read_text())
    unreadable = [e for e in qc["events"] if e["kind"] == "subtitle_unreadable"]
    assert len(unreadable) == 3 and all(e["severity"] == "warn" for e in unreadable)
