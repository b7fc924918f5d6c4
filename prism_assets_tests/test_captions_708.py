"""CEA-708 (DTVCC) closed captions carried in the video stream (prism_assets/localization/captions_708.py, through
captions_embedded.py and collect.py).

Media is written with exact truth (support/caption_media.py): caption service codes built from the CEA-708
tables, packed into DTVCC packets, scheduled on 29.97 fps frames and carried as A/53 cc_data SEI in an x264 MP4
(with B-frames: the SEI come in decode order). A packet takes effect with the picture that completes it; the
schedule says which, so cue times are checked to the millisecond. FFmpeg has no CEA-708 decoder: its CEA-608
decoder is the witness that the 608 captions beside the 708 ones are untouched.
"""

from __future__ import annotations

import io
import random
import time

import pandas as pd
import pytest

from prism_assets.core.store import LocalStore
from prism_assets.localization import collect
from prism_assets.localization.captions_708 import Dtvcc, commands, mpeg_crc32, service_blocks, ts_service_languages
from prism_assets.localization.captions_embedded import CaptionData, decode, read_video_captions

from .support.caption_media import (
    FRAME,
    Codes,
    Dtvcc708,
    embed_a53,
    ffmpeg,
    ffmpeg_says_closed_captions,
    ffmpeg_subcc,
    packet_triplets,
    scc_of,
    scc_words,
    with_caption_service_descriptor,
)

C = Codes
CLW, DSW, HDW, TGW, DLW = 0x88, 0x89, 0x8A, 0x8B, 0x8C
TRUTH_608 = [(1.0, 2.5, "HELLO WORLD"), (4.0, 5.5, "[DOOR SLAMS]\nSECOND LINE")]


def scenario() -> tuple[Dtvcc708, dict[int, list[tuple[float, float, str]]]]:
    """Service 1: a pop-on caption shown by DSW, a second toggled in by TGW (the first hidden) and cleared by CLW, a
    third written into a shown window (with a backspace) and hidden by HDW after a DLY; service 2: a caption in a
    window defined visible, gone at RST. (schedule, truth per service)."""
    d = Dtvcc708()
    d.at(0.3, 1, C.df(0, rows=2, cols=32, v=90, point=7), C.SPA, C.SPC, C.SWA, C.spl(0, 0), C.text("HELLO WORLD"), C.ETX)
    show1 = d.at(1.0, 1, C.windows(DSW, 0))
    es = d.at(1.0, 2, C.df(0, visible=True, rows=1, cols=20, v=50, point=4), C.text("\u00bfQU\u00c9? \u201cHOLA\u201d"))
    d.at(1.5, 1, C.df(1, rows=2, cols=32, v=10, point=1), C.text("\u266a SECOND LINE \u266a"), C.CR, C.text("[DOOR SLAMS] caf\u00e9\u2026"))
    toggle = d.at(2.5, 1, C.windows(TGW, 0, 1))
    es_end = d.at(3.0, 2, C.RST)
    clear = d.at(4.0, 1, C.windows(CLW, 1))
    third = d.at(4.5, 1, C.cw(1), C.spl(1, 0), C.text("THIRD ONX"), C.BS, C.text("E"))
    delayed = d.at(5.0, 1, C.dly(10), C.windows(HDW, 1))
    d.at(6.0, 1, C.windows(DLW, 0, 1))
    truth = {1: [(show1, toggle, "HELLO WORLD"), (toggle, clear, "\u266a SECOND LINE \u266a\n[DOOR SLAMS] caf\u00e9\u2026"),
                 (third, round(delayed + 1.0, 6), "THIRD ONE")],
             2: [(es, es_end, "\u00bfQU\u00c9? \u201cHOLA\u201d")]}
    return d, truth


def assert_exact(cues, truth):
    assert [c.text for c in cues] == [t for _, _, t in truth]
    for c, (a, b, _) in zip(cues, truth):
        assert abs(c.start - a) < 0.002 and abs(c.end - b) < 0.002, (c, a, b)


def pop_on_708(truth) -> tuple[Dtvcc708, list[tuple[float, float, str]]]:
    """Service 1 carrying `truth` as a 608-to-708 converter sends pop-on captions: a hidden window written ahead,
    shown at the caption's start (DSW), hidden at its end (HDW). (schedule, truth at the pictures that carry them)"""
    d, out = Dtvcc708(), []
    for i, (a, b, text) in enumerate(truth):
        d.at(a - 0.8, 1, C.df(i % 2, rows=2, cols=32), C.windows(CLW, i % 2), C.text(text))
        out.append((d.at(a, 1, C.windows(DSW, i % 2)), d.at(b, 1, C.windows(HDW, i % 2)), text))
    return d, out


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("cea708")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x72:rate=30000/1001:duration=7", "-c:v", "libx264", "-bf", "2", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", d / "plain.mp4")
    sched, _ = scenario()
    assert embed_a53(d / "plain.mp4", d / "708.mp4", {}, dtvcc=sched.frames)  # B-frames: decode order != display
    embed_a53(d / "plain.mp4", d / "both.mp4", scc_words(scc_of(TRUTH_608)), dtvcc=pop_on_708(TRUTH_608)[0].frames)
    return d


# -- in an H.264 clip -----------------------------------------------------------------------------------------
@pytest.mark.integration
def test_708_services_in_h264_sei_are_read_with_exact_times(media):
    _, truth = scenario()
    path = media / "708.mp4"
    assert ffmpeg_says_closed_captions(path)  # FFmpeg sees caption data in the SEI we wrote
    vc = read_video_captions(str(path))
    assert vc is not None and vc.warnings == []
    assert [(ch.channel, ch.codec) for ch in vc.channels] == [("SERVICE1", "eia_708"), ("SERVICE2", "eia_708")]
    s1, s2 = vc.channels
    assert s1.warnings == [] and s2.warnings == []
    assert_exact(s1.cues, truth[1])
    assert_exact(s2.cues, truth[2])
    regions = [c.region for c in s1.cues]
    assert regions[0] == "w0 origin 11.9%,76.67% extent 76.19%x13.33%"  # anchored bottom centre at 50%,90%; 32 of 42 columns, 2 of 15 rows
    assert regions[1] == "w1 origin 11.9%,10% extent 76.19%x13.33%" and regions[2] == regions[1]  # top centre at 50%,10%; the same window


@pytest.mark.integration
def test_608_and_708_of_the_same_captions_are_two_tracks_named_for_what_they_are(media, tmp_path):
    path = media / "both.mp4"
    vc = read_video_captions(str(path))
    assert [(ch.channel, ch.codec) for ch in vc.channels] == [("CC1", "eia_608"), ("SERVICE1", "eia_708")]
    cc1, svc1 = vc.channels
    for c, (a, b, text) in zip(cc1.cues, TRUTH_608):  # 608: a pop-on caption shows at its EOC, within two frames
        assert c.text == text and abs(c.start - a) <= 2 * FRAME and abs(c.end - b) <= 2 * FRAME
    assert len(cc1.cues) == len(TRUTH_608)
    assert_exact(svc1.cues, pop_on_708(TRUTH_608)[1])
    assert [t for _, _, t in ffmpeg_subcc(path)] == [t for _, _, t in TRUTH_608]  # FFmpeg's 608 decoder: the 708 data beside it harms nothing
    (tmp_path / "movie.mp4").write_bytes(path.read_bytes())
    tracks, warnings = collect.collect(LocalStore(tmp_path), "movie.mp4", tmp_path / "movie.mp4", has_streams=False)
    assert not warnings
    got = [{k: t.as_dict()[k] for k in ("track", "source", "kind", "format", "codec", "channel", "label", "sdh", "cues", "evidence")} for t in tracks]
    assert got == [
        {"track": "s0.cc1", "source": "video", "kind": "cea608", "format": "CEA-608 (embedded)", "codec": "eia_608", "channel": "CC1", "label": "und",
         "sdh": True, "cues": 2, "evidence": ["CEA-608 closed captions (A53 in the video stream)"]},
        {"track": "s0.service1", "source": "video", "kind": "cea708", "format": "CEA-708 (embedded)", "codec": "eia_708", "channel": "SERVICE1",
         "label": "und.2", "sdh": True, "cues": 2, "evidence": ["CEA-708 closed captions (DTVCC in the video stream)"]}]
    frame = pd.read_parquet(io.BytesIO(collect.files_of(tracks)["subtitles/und.2.parquet"]))
    assert list(frame["source"].unique()) == ["video stream 0 SERVICE1"] and frame["region"].str.startswith("w").all()


@pytest.mark.integration
def test_damaged_708_packets_in_a_clip_are_skipped_and_counted(media, tmp_path):
    sched = Dtvcc708()
    sched.raw(0.2, b"\xff\x0a\x21\xfe\x41\x42")  # a packet start claiming 20 bytes, cut short by the next start
    shown = sched.at(0.5, 1, C.df(0, visible=True), C.text("STILL READ"))
    sched.raw(1.0, b"\xff\x02\x3f\xfe\x41\x42")  # service 1, block size 31, in a 4-byte packet: overruns it
    gone = sched.at(1.5, 1, C.windows(CLW, 0))
    out = tmp_path / "bad.mp4"
    embed_a53(media / "plain.mp4", out, {}, dtvcc=sched.frames)
    vc = read_video_captions(str(out))
    (svc,) = vc.channels
    assert_exact(svc.cues, [(shown, gone, "STILL READ")])
    assert svc.warnings == ["2 of 4 CEA-708 (DTVCC) packet(s) damaged or cut short, skipped; so many that the CEA-708 captions are unreliable"]


@pytest.mark.integration
def test_708_service_languages_from_the_caption_service_descriptor_of_an_mpegts(media, tmp_path):
    plain = tmp_path / "plain.ts"
    ffmpeg("-i", media / "708.mp4", "-c", "copy", "-f", "mpegts", plain)
    movie = tmp_path / "movie.ts"
    movie.write_bytes(with_caption_service_descriptor(plain.read_bytes(), [("eng", 1), ("spa", 2)]))
    assert ts_service_languages(str(movie)) == {1: "eng", 2: "spa"} and ts_service_languages(str(plain)) == {}
    tracks, warnings = collect.collect(LocalStore(tmp_path), "movie.ts", movie, has_streams=False)
    assert not warnings and [(t.channel, t.language, t.label, t.cues[0].text[:5]) for t in tracks] == [
        ("SERVICE1", "en", "en", "HELLO"), ("SERVICE2", "es", "es", "\u00bfQU\u00c9?")]
    tracks, _ = collect.collect(LocalStore(tmp_path), "plain.ts", plain, has_streams=False)
    assert [(t.language, t.label) for t in tracks] == [(None, "und"), (None, "und.2")]  # no descriptor: undetermined


# -- the decoder on bytes ------------------------------------------------------------------------------------
def feed(sched: Dtvcc708, t0: float = 0.0) -> CaptionData:
    data = CaptionData()
    for n in sorted(sched.frames):
        data.add(t0 + n * FRAME, b"\xfc\x80\x80" + sched.frames[n])
    return data


@pytest.mark.unit
def test_service_blocks_and_code_lengths_on_hand_built_bytes():
    packet = bytes([0x23, 0x41, 0x42, 0x43, 0x41, 0x7F, 0xE2, 0x09, 0x44, 0x45, 0x00, 0x00, 0x00])
    assert service_blocks(packet) == ([(1, b"ABC"), (2, b"\x7f"), (9, b"DE")], False)  # 0xE2: service 7 = extended, number 9
    assert service_blocks(bytes([0x25, 0x41])) == ([], True)  # a block of 5 bytes in 1
    assert service_blocks(bytes([0x21, 0x41, 0x03, 0x00])) == ([(1, b"A")], True)  # the null service with a size
    assert service_blocks(bytes([0xE1])) == ([], True)  # extended header cut off
    codes = [C.df(3, visible=True), b"A", b"\x10\x25", b"\x10\x90\x02\xaa\xbb", b"\x10\x88" + bytes(5), b"\x18\x30\x42",
             b"\x11\x01", b"\x19\x01\x02", b"\x10\x09\x01", b"\x88\x01", C.SPC, b"\x93", C.ETX, b"\x7f", b"\xe9", C.SWA, C.spl(1, 2), C.dly(3), C.DLC]
    assert commands(b"".join(codes)) == (codes, False)
    assert commands(C.text("OK") + C.df(0)[:4]) == ([b"O", b"K"], True)  # DF0 needs 7 bytes
    assert mpeg_crc32(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value
    assert commands(b"\x10") == ([], True) and commands(b"\x10\x90") == ([], True) and commands(b"\x10\x90\x05\x01") == ([], True)


@pytest.mark.unit
def test_packets_assemble_from_triplets_and_count_what_is_wrong():
    d = Dtvcc()
    for trip in (packet_triplets(0, bytes([0x22]) + C.df(0, visible=True)[:2]), packet_triplets(1, b"")):
        for i in range(0, len(trip), 3):
            d.feed(1.0, trip[i] == 0xFF, trip[i + 1], trip[i + 2])
    d.feed(2.0, True, (3 << 6) | 2, 0x21)  # sequence 3 after 1: a packet lost; then cut short
    services, notes = d.finish()
    assert d.packets == 3 and d.bad == 1 and d.lost == 1
    assert [n for n, _, _ in services] == [1] and services[0][1] == []  # the DF0 was cut off in its block: dropped
    assert any("cut off" in w for w in services[0][2])
    assert notes == ["1 of 3 CEA-708 (DTVCC) packet(s) damaged or cut short, skipped; so many that the CEA-708 captions are unreliable",
                     "1 gap(s) in the CEA-708 packet sequence numbers (packets lost)"]


@pytest.mark.unit
def test_scenario_decoded_from_triplets_alone():
    sched, truth = scenario()
    channels, notes = decode(feed(sched, t0=10.0))
    assert notes == [] and [ch.channel for ch in channels] == ["SERVICE1", "SERVICE2"]
    for ch, n in zip(channels, (1, 2)):
        assert_exact(ch.cues, [(a + 10, b + 10, t) for a, b, t in truth[n]])


@pytest.mark.unit
def test_roll_up_paint_on_and_what_stays_on_screen():
    d = Dtvcc708()
    d.at(0.0, 1, C.df(0, visible=True, rows=2, cols=32), C.text("ONE"))
    two = d.at(1.0, 1, C.CR, C.text("TWO"))
    three = d.at(2.0, 1, C.CR, C.text("THREE"))
    d.at(3.0, 1, C.HCR, C.text("3"))  # HCR: the row written again
    d.at(4.0, 1, C.FF, C.text("\u00e0 la carte \u2122"), C.CR, C.text("\u4e2d"))  # FF: cleared; a P16 character
    data = feed(d)
    data.add(5.0, b"\xfc\x80\x80")  # the last caption data: what is still shown ends here
    (ch,), _ = decode(data)
    texts = [c.text for c in ch.cues]
    assert texts == ["ONE", "ONE\nTWO", "TWO\nTHREE", "TWO\n3", "\u00e0 la carte \u2122\n\u4e2d"]  # the top row rolled off at the third CR
    assert abs(ch.cues[1].start - two) < 0.002 and abs(ch.cues[2].start - three) < 0.002
    assert ch.cues[-1].end == 5.0 and any("still on screen" in w for w in ch.warnings)


@pytest.mark.unit
def test_random_and_truncated_packets_never_raise_or_hang():
    rng = random.Random(708)
    data = CaptionData()
    started = time.monotonic()
    for n in range(300):
        junk = bytes(rng.choice((0xFE, 0xFF, 0xFA)) if i % 3 == 0 else rng.randrange(256) for i in range(3 * rng.randrange(0, 8)))
        data.add(n * FRAME, b"\xfc\x80\x80" + junk)
    for _ in range(2000):  # packets of random bytes with valid starts
        n = rng.randrange(1, 64)
        data.dtvcc_packets.feed(99.0, True, rng.randrange(256), rng.randrange(256))
        for _ in range(n):
            data.dtvcc_packets.feed(99.0, False, rng.randrange(256), rng.randrange(256))
    channels, notes = decode(data)
    assert time.monotonic() - started < 20
    d = data.dtvcc_packets
    assert d.bad > 100 and d.packets >= 2000
    warnings = [w for ch in channels for w in ch.warnings if "packet(s) damaged" in w] + [w for w in notes if "packet(s) damaged" in w]
    assert len({*warnings}) == 1 and "unreliable" in warnings[0]  # one flagged warning, the same on each 708 channel
