"""Subtitle files as data (prism_assets/localization/subtitles.py): formats, encodings, broken input."""

from __future__ import annotations

import pytest

from prism_assets.localization.subtitles import MAX_BYTES, SubtitleError, parse, to_vtt

pytestmark = pytest.mark.unit

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> there.

2
00:00:03,000 --> 00:00:04,000
Two
lines

3
00:00:05,000 --> 00:00:05,000
zero length
"""

VTT = """WEBVTT Kind: captions

NOTE a comment
that spans lines

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger>Hi <b>you</b>

01:00:00.250 --> 01:00:01.750
an hour in
"""

ASS = """[Script Info]
Title: test
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize
Style: Default,Arial,20

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.50,0:00:03.00,Default,,0,0,0,,{\\i1}First{\\i0} line\\Nsecond, with a comma
Comment: 0,0:00:04.00,0:00:05.00,Default,,0,0,0,,not shown
Dialogue: 0,0:00:06.00,0:00:07.25,Sign,,0,0,0,,{\\pos(10,10)}A sign
"""


def test_srt_cues_markup_stripped_and_reversed_counted():
    subs = parse(SRT.encode())
    assert subs.format == "srt" and subs.encoding == "utf-8"
    assert [(c.start, c.end) for c in subs.cues] == [(1.0, 2.5), (3.0, 4.0), (5.0, 5.0)]
    assert subs.cues[0].text == "Hello there." and subs.cues[0].raw == "<i>Hello</i> there."
    assert subs.cues[1].lines == ["Two", "lines"]
    assert subs.warnings == ["1 cue(s) ending at or before their start"]


def test_vtt_header_notes_identifiers_settings_and_hours():
    subs = parse(VTT.encode())
    assert subs.format == "vtt" and len(subs.cues) == 2
    assert (subs.cues[0].start, subs.cues[0].end, subs.cues[0].text) == (1.0, 2.0, "Hi you")
    assert (subs.cues[1].start, subs.cues[1].end) == (3600.25, 3601.75)
    assert subs.warnings == []


def test_ass_events_fields_centiseconds_overrides_and_styles():
    subs = parse(ASS.encode(), "x.ass")
    assert subs.format == "ass"
    assert [(c.start, c.end, c.style) for c in subs.cues] == [(1.5, 3.0, "Default"), (6.0, 7.25, "Sign")]
    assert subs.cues[0].text == "First line\nsecond, with a comma"  # the comma stays in the text field
    assert subs.cues[1].text == "A sign"


@pytest.mark.parametrize("encoding,text", [("cp949", "안녕하세요, 반갑습니다. 오늘은 날씨가 좋네요."),
                                           ("shift_jis", "こんにちは、はじめまして。今日はいい天気ですね。")])
def test_legacy_encodings_are_read_and_flagged_as_guessed(encoding, text):
    body = "".join(f"{i}\n00:00:0{i},000 --> 00:00:0{i},900\n{text}\n\n" for i in range(1, 6))
    subs = parse(body.encode(encoding))
    assert [c.text for c in subs.cues] == [text] * 5
    assert subs.encoding.replace("_", "").lower() in {encoding.replace("_", ""), "euckr" if encoding == "cp949" else "shiftjis", "cp932"}
    assert subs.warnings[0].startswith("not UTF-8: read as")


@pytest.mark.parametrize("bom,enc", [(b"\xef\xbb\xbf", "utf-8"), (b"", "utf-16")])
def test_byte_order_marks(bom, enc):
    data = bom + SRT.encode("utf-8") if enc == "utf-8" else SRT.encode("utf-16")  # utf-16 writes its own BOM
    subs = parse(data)
    assert len(subs.cues) == 3 and not subs.warnings[:-1]


@pytest.mark.parametrize("data,name,says", [
    (b"", "a.srt", "empty file"),
    (b"just some text\nwithout timing\n", "notes.txt", "not a subtitle file"),
    (b"just some text\nwithout timing\n", "a.srt", "no readable cue in this srt file"),
    (b"1\n00:00:xx,000 --> 00:00:02,000\nbroken\n", "a.srt", "no readable cue"),
    (b"[Events]\nFormat: Start, End, Text\nDialogue: 0:00:01.00\n", "a.ass", "no readable cue"),
    (b"\xff\xfe\x00\xd8", "a.srt", "byte-order mark says"),
])
def test_broken_files_fail_in_one_line(data, name, says):
    with pytest.raises(SubtitleError) as err:
        parse(data, name)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_oversized_file_is_refused_unread():
    with pytest.raises(SubtitleError, match="larger than"):
        parse(b"0" * (MAX_BYTES + 1))


def test_bad_blocks_are_skipped_and_counted():
    subs = parse(SRT.replace("00:00:03,000 --> 00:00:04,000", "00:00:03 -> 00:00:04").encode())
    assert len(subs.cues) == 2 and "1 block(s) without a readable timing line skipped" in subs.warnings


def test_normalised_vtt_round_trips():
    subs = parse(SRT.encode())
    vtt = to_vtt(subs.cues)
    assert vtt.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello there.\n")
    again = parse(vtt.encode())
    assert [(c.start, c.end, c.text) for c in again.cues] == [(c.start, c.end, c.text) for c in subs.cues]
