"""CEA-608 closed captions carried with the picture (prism_assets/localization/captions_embedded.py) and the
forced/SDH flags of every subtitle track (streams.py, subtitles.py, captions.py, collect.py).

Media is generated with exact truth (support/caption_media.py): an SRT is turned into CEA-608 (ttconv's SCC
writer), then
- carried as A53 SEI in H.264 (with B-frames, 29.97 and 23.976 fps) and HEVC: the test writes the SEI NAL
  units itself into the packets of an x264/x265 file (FFmpeg can only pass A53 through from a source that
  has it), and FFmpeg is the independent witness: `ffmpeg -i` says `Closed Captions` and its own decoder
  (`movie=...[out+subcc]`) must read the same captions;
- muxed by FFmpeg as a MOV `c608` closed-caption track (`-c:s copy` of an .scc).
Times must be within two 29.97 fps frames of the SRT's (a pop-on caption shows when its EOC arrives).
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from prism_assets.core.store import LocalStore
from prism_assets.localization import collect
from prism_assets.localization.captions import parse_ttml
from prism_assets.localization.captions_embedded import CaptionData, decode, nal_units, packet_cc_data, read_video_captions, sei_cc_data, unescape, video_has_captions
from prism_assets.localization.streams import read_streams, stream_flags
from prism_assets.localization.subtitle_qc import check_cues, profile_for
from prism_assets.localization.subtitles import Cue, parse

from .support.caption_media import embed_a53, ffmpeg, ffmpeg_says_closed_captions, ffmpeg_subcc, scc_of, scc_words, sei_nal, srt_of

FRAME = 1001 / 30000
TRUTH = [(1.0, 2.5, "HELLO WORLD"), (4.0, 5.5, "[DOOR SLAMS]\nSECOND LINE"), (7.0, 8.0, "THIRD ONE")]


def assert_truth(cues, truth=TRUTH, frames=2):
    assert [c.text for c in cues] == [t for _, _, t in truth]
    for c, (a, b, _) in zip(cues, truth):
        assert abs(c.start - a) <= frames * FRAME and abs(c.end - b) <= frames * FRAME, (c, a, b)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("cea608")
    scc = scc_of(TRUTH)
    words = scc_words(scc)
    for name, rate, codec in (("h264", "30000/1001", ["-c:v", "libx264", "-bf", "2"]), ("h264_24", "24000/1001", ["-c:v", "libx264", "-bf", "2"]),
                              ("hevc", "30000/1001", ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"])):
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={rate}:duration=9", *codec, "-preset", "ultrafast", "-pix_fmt", "yuv420p",
               d / f"plain_{name}.mp4")
        assert embed_a53(d / f"plain_{name}.mp4", d / f"{name}.mp4", words, hevc=name == "hevc")  # B-frames: decode order != display
    embed_a53(d / "plain_h264.mp4", d / "padding_only.mp4", {})
    # MOV c608: FFmpeg's MOV muxer drops the last sample of the track, so one more erase follows the last caption's
    (d / "cap.scc").write_text(scc + "\n00:00:08;20\t942c 942c\n")
    ffmpeg("-i", d / "plain_h264.mp4", "-i", d / "cap.scc", "-map", "0", "-map", "1", "-c", "copy", "-metadata:s:s:0", "language=eng",
           d / "c608.mov")
    return d


@pytest.mark.integration
@pytest.mark.parametrize("name", ["h264", "hevc"])
def test_a53_captions_in_the_video_stream_are_read_as_ffmpeg_reads_them(media, name):
    path = media / f"{name}.mp4"
    if name == "h264":  # the probe-time check agrees with FFmpeg's
        assert ffmpeg_says_closed_captions(path) and not ffmpeg_says_closed_captions(media / "plain_h264.mp4")
    assert video_has_captions(str(path)) and not video_has_captions(str(media / f"plain_{name}.mp4"))
    vc = read_video_captions(str(path))
    assert vc is not None and (vc.codec, vc.stream_index, vc.warnings) == (name, 0, [])
    assert [ch.channel for ch in vc.channels] == ["CC1"]
    cues = vc.channels[0].cues
    assert_truth(cues)
    theirs = ffmpeg_subcc(path)  # FFmpeg's decoder on the same file: the same captions, within a frame
    assert [t for _, _, t in theirs] == [c.text for c in cues]
    assert all(abs(c.start - a) <= FRAME + 0.002 and abs(c.end - b) <= FRAME + 0.002 for c, (a, b, _) in zip(cues, theirs))
    assert cues[1].region and "origin" in cues[1].region and cues[1].region != cues[0].region  # two rows vs one: kept


@pytest.mark.integration
@pytest.mark.parametrize("ext,codec", [("ts", "libx264"), ("mkv", "libx264"), ("ts", "mpeg2video")])
def test_a53_written_by_ffmpeg_itself(media, tmp_path, ext, codec):
    """FFmpeg's own A53 writers (`-a53cc 1`, from a source whose pictures carry captions): H.264 SEI in MPEG-TS
    (start codes) and MKV (length-prefixed), MPEG-2 picture user data in MPEG-TS."""
    import av

    out = tmp_path / f"re.{ext}"
    ffmpeg("-i", media / "h264.mp4", "-c:v", codec, *(["-preset", "ultrafast"] if codec == "libx264" else []), "-a53cc", "1", out)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        start = float(v.start_time * v.time_base)  # MPEG-TS starts at 1.4 s
    vc = read_video_captions(str(out))
    assert vc.codec == ("mpeg2video" if codec == "mpeg2video" else "h264") and not vc.warnings
    cues = [Cue(round(c.start - start, 3), round(c.end - start, 3), c.text, c.raw) for c in vc.channels[0].cues]
    assert_truth(cues)


@pytest.mark.integration
def test_a53_at_23976_fps_pictures_carrying_one_or_two_pairs_keep_the_timing(media):
    vc = read_video_captions(str(media / "h264_24.mp4"))
    assert_truth(vc.channels[0].cues)


@pytest.mark.integration
def test_mov_c608_track_is_a_cea608_caption_track(media):
    tracks = read_streams(str(media / "c608.mov"))
    assert [(t.index, t.codec, t.language, t.channel, t.sdh) for t in tracks] == [(1, "eia_608", "eng", "CC1", True)]
    assert_truth(tracks[0].cues)
    assert not tracks[0].warnings


@pytest.mark.integration
def test_collect_lists_embedded_captions_with_kind_format_and_qc(media, tmp_path):
    (tmp_path / "movie.mp4").write_bytes((media / "h264.mp4").read_bytes())
    (tmp_path / "movie.en.srt").write_text(srt_of([(1.0, 2.0, "Hello")]))
    tracks, warnings = collect.collect(LocalStore(tmp_path), "movie.mp4", tmp_path / "movie.mp4", has_streams=False)
    assert not warnings
    srt, cc = tracks
    assert (srt.track, srt.kind, srt.format, srt.label) == ("f0", "subtitles", "SubRip", "en")
    d = cc.as_dict()
    assert {k: d[k] for k in ("track", "source", "kind", "format", "codec", "channel", "language", "label", "sdh", "forced", "cues")} == {
        "track": "s0.cc1", "source": "video", "kind": "cea608", "format": "CEA-608 (embedded)", "codec": "eia_608", "channel": "CC1",
        "language": None, "label": "und", "sdh": True, "forced": False, "cues": 3}
    files = collect.files_of(tracks)
    frame = pd.read_parquet(io.BytesIO(files["subtitles/und.parquet"]))
    assert list(frame["source"].unique()) == ["video stream 0 CC1"] and frame["region"].notna().all()
    back = collect.cues_of(frame)
    assert_truth(back)
    _, prof = profile_for()  # the same timed-text rules as every other track
    kinds = {e.kind for e in check_cues(back, language=None, fps=30000 / 1001, profile=prof, duration_s=7.5)}
    assert "past_end" in kinds  # the third caption ends at 8.0 s in a 7.5 s title


@pytest.mark.integration
def test_videos_without_caption_data_or_with_padding_only(media, tmp_path):
    assert read_video_captions(str(media / "plain_h264.mp4")) is None
    vc = read_video_captions(str(media / "padding_only.mp4"))
    assert vc.channels == [] and any("no CEA-608 or CEA-708 caption" in w for w in vc.warnings)
    (tmp_path / "movie.mp4").write_bytes((media / "padding_only.mp4").read_bytes())
    tracks, warnings = collect.collect(LocalStore(tmp_path), "movie.mp4", tmp_path / "movie.mp4", has_streams=False)
    assert tracks == [] and len(warnings) == 1 and "video stream 0" in warnings[0] and "\n" not in warnings[0]
    audio = tmp_path / "a.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", audio)
    assert read_video_captions(str(audio)) is None


@pytest.mark.integration
def test_reading_the_video_stops_at_its_time_limit(media):
    vc = read_video_captions(str(media / "h264.mp4"), max_scan_s=0)
    assert any("time limit" in w for w in vc.warnings) and sum(len(ch.cues) for ch in vc.channels) == 0


@pytest.mark.integration
def test_damaged_video_data_is_a_warning(media, tmp_path):
    bad = tmp_path / "movie.mp4"
    data = bytearray((media / "h264.mp4").read_bytes())
    bad.write_bytes(bytes(data[: len(data) // 3]))  # cut: the moov atom (at the end) is gone
    tracks, warnings = collect.collect(LocalStore(tmp_path), "movie.mp4", bad, has_streams=False)
    assert tracks == [] and len(warnings) == 1 and warnings[0].startswith("captions in the video stream not read") and "\n" not in warnings[0]


# -- the decoder, unit by unit ------------------------------------------------------------------------------
def odd(b: int) -> int:
    return b | (0x80 if bin(b).count("1") % 2 == 0 else 0)


def pairs_of(words: list[tuple[int, int]], field: int) -> bytes:
    return b"".join(bytes([0xFC | (field - 1), odd(a), odd(b)]) for a, b in words)


def text_words(s: str) -> list[tuple[int, int]]:
    s += "\x00" * (len(s) % 2)
    return [(ord(s[i]), ord(s[i + 1])) for i in range(0, len(s), 2)]


def pop_on(text: str, ch: int, field: int) -> list[tuple[int, int]]:
    """RCL, ENM, PAC row 15, text, EOC on caption channel `ch` (1/2) of `field` (1/2: CC1/CC2 or CC3/CC4)."""
    misc = (0x14 if field == 1 else 0x15) | (0x08 if ch == 2 else 0)
    pac = 0x14 | (0x08 if ch == 2 else 0)
    return [(misc, 0x20), (misc, 0x2E), (pac, 0x70)] + text_words(text) + [(misc, 0x2F)]


def feed(frames: list[list[tuple[int, int, int]]], t0=10.0) -> CaptionData:
    """One picture per 29.97 frame, each carrying the given (field, b1, b2) pairs (7-bit values)."""
    data = CaptionData()
    for i, pairs in enumerate(frames):
        data.add(t0 + i * FRAME, b"".join(pairs_of([(a, b)], f) for f, a, b in pairs))
    return data


@pytest.mark.unit
def test_four_channels_are_split_and_xds_and_708_left_out():
    cc1, cc2 = pop_on("ONE", 1, 1), pop_on("TWO", 2, 1)
    cc3 = pop_on("TRES", 1, 2)
    xds = [(0x01, 0x03), (0x48, 0x49), (0x0F, 0x1D)]  # an XDS program-name packet inside CC3's caption: never caption text
    field2 = cc3[:4] + xds + cc3[4:]
    frames = [[(1, *a)] + ([(2, *b)] if b else []) for a, b in zip(cc1 + cc2 + [(0, 0)] * 30 + [(0x14, 0x2C)],
                                                                    field2 + [None] * 100)]
    data = feed(frames)
    data.add(20.0, b"\xfe\x41\x42")  # a CEA-708 DTVCC data triplet with no packet start: nothing to decode
    channels, notes = decode(data)
    got = {ch.channel: [(c.text, round(c.start - 10, 3)) for c in ch.cues] for ch in channels}
    assert got == {"CC1": [("ONE", round((len(cc1) - 1) * FRAME, 3))], "CC2": [("TWO", round((len(cc1) + len(cc2) - 1) * FRAME, 3))],
                   "CC3": [("TRES", round((len(field2) - 1) * FRAME, 3))]}
    cc1_cue = next(ch for ch in channels if ch.channel == "CC1").cues[0]
    assert abs(cc1_cue.end - (10 + (len(cc1) + len(cc2) + 30) * FRAME)) < 0.002  # erased by the EDM
    assert any("CEA-708" in n and "no caption service" in n for n in notes)


@pytest.mark.unit
def test_parity_errors_708_only_and_no_caption_are_warnings():
    data = CaptionData()
    data.add(1.0, bytes([0xFC, 0x14, 0x20]))  # 0x14 has even parity: a transmission error
    data.add(2.0, b"\xfe\x01\x02\xff\x03\x04")  # 708 only: a stray data triplet, a packet start never completed
    channels, notes = decode(data)
    assert channels == [] and data.parity_errors == 1
    assert any("parity" in n for n in notes) and any("no caption service" in n for n in notes)
    assert any("1 of 1 CEA-708 (DTVCC) packet(s) damaged" in n for n in notes)
    lone = feed([[(1, 0x14, 0x20)], [(1, 0x14, 0x20)]])  # RCL only: data, no caption
    channels, notes = decode(lone)
    assert [ch.channel for ch in channels] == ["CC1"] and channels[0].cues == [] and "no caption" in channels[0].warnings[0]


@pytest.mark.unit
def test_sei_parsing_survives_damage_and_emulation_prevention():
    trip = bytes([0xFC, odd(0x14), odd(0x20)]) + b"\xfc\x80\x80"
    nal = sei_nal(trip, hevc=False)
    assert sei_cc_data(unescape(nal[1:])) == (trip, False)
    assert unescape(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"
    truncated = unescape(nal[1:])[:14]
    assert sei_cc_data(truncated)[1] is True  # damaged: counted by the caller, no exception
    annexb = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x01" + nal + b"\x00\x00\x01\x65\x88\x80"
    assert packet_cc_data(annexb, "h264", None) == (trip, 0)
    avcc = len(nal).to_bytes(4, "big") + nal + (999).to_bytes(4, "big") + b"\x65"  # a length past the end: stops there
    assert packet_cc_data(avcc, "h264", 4) == (trip, 0)
    assert [len(n) for n in nal_units(b"\x00\x00\x00\x05ab", 4)] == []
    mpeg2 = b"\x00\x00\x01\x00\x11" + b"\x00\x00\x01\xb2GA94\x03" + bytes([0x41, 0xFF]) + trip[:3] + b"\xff"
    assert packet_cc_data(mpeg2, "mpeg2video", None) == (trip[:3], 0)


# -- forced / SDH flags -------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("disposition,title,forced,sdh", [
    ("Disposition.default|forced", None, True, False),
    ("Disposition.hearing_impaired", None, False, True),
    ("Disposition.captions", "English", False, True),
    (0, "English (Forced)", True, False),
    (0, "English SDH", False, True),
    (0, "English [CC]", False, True),
    (0, "Closed Captions", False, True),
    (0, "Accent", False, False),  # "cc" inside a word is not CC
    (None, "Forcedly", False, False),
])
def test_stream_flags(disposition, title, forced, sdh):
    f, s, why = stream_flags(disposition, title)
    assert (f, s) == (forced, sdh) and bool(why) == (forced or sdh)


@pytest.mark.integration
def test_mkv_dispositions_and_titles_become_forced_sdh_and_kind(tmp_path):
    srt = tmp_path / "a.srt"
    srt.write_text(srt_of([(0.5, 1.5, "[MUSIC] Hi")]))
    mkv = tmp_path / "t.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-i", srt, "-i", srt, "-i", srt, "-map", "0", "-map", "1", "-map", "2",
           "-map", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:s", "srt", "-disposition:s:0", "hearing_impaired",
           "-disposition:s:1", "forced", "-metadata:s:s:2", "title=English SDH", mkv)
    tracks = [collect.from_stream(s) for s in read_streams(str(mkv))]
    got = [(t.forced, t.sdh, t.kind, t.format) for t in tracks]
    assert got == [(False, True, "sdh", "SubRip"), (True, False, "subtitles", "SubRip"), (False, True, "sdh", "SubRip")]
    assert tracks[0].evidence == ["disposition hearing_impaired"] and tracks[2].evidence == ["title 'English SDH'"]


@pytest.mark.unit
def test_format_flags_ttml_roles_vtt_kind_and_file_names():
    ttml = ('<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttm="http://www.w3.org/ns/ttml#metadata" xml:lang="en"><body><div>'
            '<p begin="1s" end="2s">Hi</p><p begin="3s" end="4s" ttm:role="sound">[THUNDER]</p></div></body></tt>')
    s = parse_ttml(ttml)
    assert (s.sdh, s.notes) == (True, ["TTML ttm:role sound"])
    titled = ttml.replace('<body>', '<head><ttm:title>English SDH</ttm:title></head><body>').replace(' ttm:role="sound"', "")
    assert parse_ttml(titled).sdh is True and parse_ttml(ttml.replace(' ttm:role="sound"', "")).sdh is None
    vtt = parse(b"WEBVTT\nKind: captions\nLanguage: de\n\n00:00:01.000 --> 00:00:02.000 line:10% align:start\nHallo\n", "m.vtt")
    assert (vtt.sdh, vtt.language, vtt.cues[0].region) == (True, "de", "line:10% align:start")
    assert parse(b"WEBVTT\nKind: subtitles\n\n00:00:01.000 --> 00:00:02.000\nHallo\n", "m.vtt").sdh is False
    sdh_file = collect.from_sidecar(0, "movie.en.sdh.srt", srt_of([(1, 2, "Hi")]).encode())
    forced_file = collect.from_sidecar(1, "movie.en.forced.srt", srt_of([(1, 2, "Hi")]).encode())
    assert (sdh_file.kind, sdh_file.sdh, sdh_file.forced) == ("sdh", True, False)
    assert (forced_file.kind, forced_file.sdh, forced_file.forced) == ("subtitles", False, True)
    ttml_file = collect.from_sidecar(2, "movie.ttml", ttml.encode())
    assert (ttml_file.kind, ttml_file.format, ttml_file.language, ttml_file.evidence) == ("sdh", "TTML/IMSC", "en", ["TTML ttm:role sound"])


@pytest.mark.unit
def test_positions_kept_from_srt_and_ass_overrides():
    s = parse(b"1\n00:00:01,000 --> 00:00:02,000\n{\\an8}Top line\n\n2\n00:00:03,000 --> 00:00:04,000 X1:10 X2:300 Y1:20 Y2:60\nBox\n", "m.srt")
    assert [(c.text, c.region) for c in s.cues] == [("Top line", "an8"), ("Box", "X1:10 X2:300 Y1:20 Y2:60")]
    ass = ("[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
           "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\an7\\pos(12,34)}Sign\nDialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,Plain\n")
    a = parse(ass.encode(), "m.ass")
    assert [(c.text, c.region) for c in a.cues] == [("Sign", "an7 pos 12,34"), ("Plain", None)]
    assert Cue(0, 1, "x", "x").region is None  # the field stays optional
