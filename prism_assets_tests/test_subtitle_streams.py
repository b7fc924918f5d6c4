"""Subtitle streams in MKV/MP4 (generated with ffmpeg, exact truth) and sidecar names
(prism_assets/localization/streams.py)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from prism_assets.localization.streams import Collector, is_sidecar, read_streams, sidecar_language

SRT_EN = "1\n00:00:00,500 --> 00:00:01,500\n<i>Hello</i> world\n\n2\n00:00:02,000 --> 00:00:03,250\nSecond\nline\n"
SRT_KO = "1\n00:00:01,000 --> 00:00:02,000\n안녕하세요\n"
ASS = ("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\nStyle: Sign,Arial,20\n\n[Events]\n"
       "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
       "Dialogue: 0,0:00:00.20,0:00:00.90,Sign,,0,0,0,,{\\pos(5,5)}EXIT, left\n")


@pytest.fixture(scope="module")
def muxed(tmp_path_factory):
    d = tmp_path_factory.mktemp("subs")
    for name, text in (("en.srt", SRT_EN), ("ko.srt", SRT_KO), ("sign.ass", ASS)):
        (d / name).write_text(text, encoding="utf-8")
    mkv, mp4 = d / "t.mkv", d / "t.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4",
                    "-i", str(d / "en.srt"), "-i", str(d / "ko.srt"), "-i", str(d / "sign.ass"),
                    "-map", "0:v", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:s:0", "srt", "-c:s:1", "srt", "-c:s:2", "ass",
                    "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=kor", str(mkv)],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mkv), "-map", "0:v", "-map", "0:s:0", "-map", "0:s:1", "-c:v", "copy",
                    "-c:s", "mov_text", str(mp4)], check=True, capture_output=True, timeout=120)
    return mkv, mp4


@pytest.mark.integration
def test_text_streams_of_mkv_and_mp4_become_cues(muxed):
    mkv, mp4 = muxed
    tracks = read_streams(str(mkv))
    assert [(t.codec, t.language, t.kind) for t in tracks] == [("srt", "eng", "text"), ("srt", "kor", "text"), ("ssa", None, "text")]
    en, ko, sign = tracks
    assert [(c.start, c.end, c.text) for c in en.cues] == [(0.5, 1.5, "Hello world"), (2.0, 3.25, "Second\nline")]
    assert [(c.start, c.end, c.text) for c in ko.cues] == [(1.0, 2.0, "안녕하세요")]
    assert [(c.start, c.end, c.text, c.style) for c in sign.cues] == [(0.2, 0.9, "EXIT, left", "Sign")]
    mp = read_streams(str(mp4))
    assert [(t.codec, t.language) for t in mp] == [("mov_text", "eng"), ("mov_text", "kor")]
    assert [(c.start, c.end, c.text) for c in mp[0].cues] == [(c.start, c.end, c.text) for c in en.cues]
    assert all(not t.warnings for t in tracks + mp)


@pytest.mark.integration
def test_a_file_without_subtitles_has_no_tracks(tmp_path):
    f = tmp_path / "v.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", str(f)],
                   check=True, capture_output=True, timeout=60)
    assert read_streams(str(f)) == []


@pytest.mark.unit
def test_image_streams_are_listed_and_flagged_not_parsed():
    stream = SimpleNamespace(index=3, codec_context=SimpleNamespace(name="hdmv_pgs_subtitle"), metadata={"language": "jpn"})
    c = Collector([stream])
    c.feed(SimpleNamespace(stream=stream, size=100, pts=0))  # never decoded
    (track,) = c.finish()
    assert (track.kind, track.language, track.cues) == ("image", "jpn", [])
    assert track.warnings == ["hdmv_pgs_subtitle: image-based subtitles, not parsed (no text to read)"]


@pytest.mark.unit
def test_damaged_packets_are_counted_not_fatal():
    stream = SimpleNamespace(index=0, codec_context=SimpleNamespace(name="subrip"), metadata={})

    def broken():
        raise ValueError("invalid data")

    c = Collector([stream])
    c.feed(SimpleNamespace(stream=stream, size=10, pts=0, time_base=0.001, duration=10, decode=broken))
    (track,) = c.finish()
    assert track.cues == [] and track.warnings == ["1 damaged subtitle packet(s) skipped"]


@pytest.mark.unit
@pytest.mark.parametrize("name,lang,forced", [
    ("show.ko.srt", "ko", False), ("show_en-GB.vtt", "en-GB", False), ("show.ja.forced.ass", "ja", True),
    ("deliveries/t1/t1.pt_BR.srt", "pt-BR", False), ("subtitles.srt", None, False), ("show.eng.sdh.srt", "eng", False),
])
def test_sidecar_names(name, lang, forced):
    assert sidecar_language(name) == (lang, forced)
    assert is_sidecar(name) and not is_sidecar("show.mp4")
