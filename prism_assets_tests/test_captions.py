"""Caption formats read through ttconv (prism_assets/localization/captions.py): TTML/IMSC, SCC (CEA-608)
and EBU-STL become subtitle tracks with the one cue model, beside a short generated video; bad files
are one line, never a crash. Every file is written by the test itself (TTML and SCC inline; EBU-STL
as GSI + TTI blocks per EBU Tech 3264, since ttconv has no STL writer)."""

from __future__ import annotations

import subprocess

import pytest

from prism_assets.core.store import LocalStore
from prism_assets.localization import collect
from prism_assets.localization.subtitle_qc import check_cues, profile_for
from prism_assets.localization.subtitles import SubtitleError, parse

FRAME_25, FRAME_2997 = 1 / 25, 1001 / 30000

TTML = """<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    xmlns:itts="http://www.w3.org/ns/ttml/profile/imsc1#styling" ttp:frameRate="25" xml:lang="fr"
    ttp:contentProfiles="http://www.w3.org/ns/ttml/profile/imsc1.1/text">
 <head><layout>
  <region xml:id="bottom" tts:origin="10% 80%" tts:extent="80% 15%"/>
  <region xml:id="top" tts:origin="10% 5%" tts:extent="80% 15%"/>
 </layout></head>
 <body><div>
  <p region="bottom" begin="00:00:00:12" end="00:00:02:00">Bonjour<br/>le monde</p>
  <p region="top" begin="1.5s" end="3s">En haut</p>
  <p region="bottom" begin="00:00:02.500" end="00:00:03.750"><span tts:fontStyle="italic">Deux</span> mots</p>
 </div></body></tt>"""

FORCED_TTML = TTML.replace('<body>', '<body itts:forcedDisplay="true">').replace('xml:lang="fr"', 'xml:lang="de"')

# CEA-608 pop-on: "HELLO" loaded at 00:00:01;00 (29.97 NDF), shown by the EOC (942f) on the 10th word, erased at 00:00:03:00
SCC = """Scenarist_SCC V1.0

00:00:01:00\t9420 9420 94d0 94d0 c845 4c4c cf80 942c 942c 942f 942f

00:00:03:00\t942c 942c

00:00:04:00\t9420 9420 94d0 94d0 57cf 5244 d3a1 942c 942c 942f 942f

00:00:05:00\t942c 942c
"""


def ebu_stl(cues, fps=25, lang="09") -> bytes:
    """A minimal EBU-STL file (EBU Tech 3264): a GSI block and one TTI block per cue (open subtitles,
    Latin ISO 6937 text, ASCII here), `cues` as (start_s, end_s, text, vertical_row)."""
    def f(v, n):
        return v.encode("latin-1").ljust(n, b" ")[:n]
    gsi = (f("850", 3) + f(f"STL{fps}.01", 8) + f("0", 1) + f("00", 2) + f(lang, 2) + f("", 32) * 2 + f("Test", 32) + f("", 32) * 3
           + f("", 16) + f("260101", 6) * 2 + f("00", 2) + f(f"{len(cues):05d}", 5) * 2 + f("001", 3) + f("40", 2) + f("23", 2) + f("1", 1)
           + f("00000000", 8) * 2 + f("1", 1) + f("1", 1) + f("", 3) + f("", 32) * 3).ljust(1024, b" ")
    out = bytearray(gsi)
    for n, (start, end, text, row) in enumerate(cues):
        def tc(t):
            fr = int(round(t * fps))
            return bytes([fr // (3600 * fps), fr // (60 * fps) % 60, fr // fps % 60, fr % fps])
        tf = b"\x8a".join(ln.encode("ascii") for ln in text.split("\n"))
        out += bytes([0]) + n.to_bytes(2, "little") + bytes([0xFF, 0]) + tc(start) + tc(end) + bytes([row, 2, 0]) + tf.ljust(112, b"\x8f")
    return bytes(out)


def test_ttml_imsc_cues_times_regions_language():
    s = parse(TTML.encode(), "movie.fr.ttml")
    assert (s.format, s.language, s.forced, s.sdh) == ("ttml", "fr", False, None)
    assert [c.text for c in s.cues] == ["Bonjour\nle monde", "En haut", "Deux mots"]
    want = [(0.48, 2.0), (1.5, 3.0), (2.5, 3.75)]  # 12 frames at 25 fps = 0.48 s
    assert all(abs(c.start - a) <= FRAME_25 and abs(c.end - b) <= FRAME_25 for c, (a, b) in zip(s.cues, want))
    assert s.cues[0].region.startswith("bottom origin 10") and s.cues[1].region.startswith("top origin 10")


def test_ttml_forced_display_marks_the_track_forced():
    s = parse(FORCED_TTML.encode(), "movie.dfxp")
    assert s.forced is True and s.language == "de" and len(s.cues) == 3


def test_scc_cea608_is_sdh_with_frame_exact_times():
    s = parse(SCC.encode(), "movie.en.scc")
    assert (s.format, s.sdh, s.language) == ("scc", True, None)
    assert [c.text for c in s.cues] == ["HELLO", "WORDS!"]
    # shown when the EOC arrives (10 words after the load starts), erased at the EDM's time (29.97 fps timecode)
    assert abs(s.cues[0].start - (1.001 + 9 * FRAME_2997)) <= FRAME_2997 and abs(s.cues[0].end - 3.003) <= FRAME_2997
    assert abs(s.cues[1].start - (4.004 + 9 * FRAME_2997)) <= FRAME_2997 and abs(s.cues[1].end - 5.005) <= FRAME_2997
    assert s.cues[0].region and "origin" in s.cues[0].region


def test_ebu_stl_cues_language_and_rows():
    s = parse(ebu_stl([(1.0, 2.52, "Hello\nthere", 20), (3.04, 4.0, "Second", 22)], lang="0F"), "movie.stl")
    assert (s.format, s.language) == ("stl", "fr")
    assert [c.text for c in s.cues] == ["Hello\nthere", "Second"]
    assert all(abs(c.start - a) <= FRAME_25 and abs(c.end - b) <= FRAME_25 for c, (a, b) in zip(s.cues, [(1.0, 2.52), (3.04, 4.0)]))
    assert s.cues[0].region != s.cues[1].region  # rows 20 and 22


def test_caption_cues_get_the_same_qc_rules():
    _, prof = profile_for()
    s = parse(TTML.encode(), "movie.fr.ttml")
    kinds = {e.kind for e in check_cues(s.cues, language="fr", fps=25, profile=prof, duration_s=3.0)}
    assert "past_end" in kinds  # the last cue ends at 3.75 s in a 3-s title
    assert "overlap" in kinds  # two regions' cues on screen together are overlapping cues for the rules


@pytest.mark.parametrize("name,data,words", [
    ("m.ttml", b"<tt xmlns='http://www.w3.org/ns/ttml'><body><div><p begin='1s'", "not well-formed"),
    ("m.en.xml", b"<?xml version='1.0'?><metadata><title>x</title></metadata>", "not TTML"),
    ("m.ttml", b"<tt><body><div><p begin='1s' end='2s'>x</p></div></body></tt>", "namespace"),
    ("m.ttml", b"<tt xmlns='http://www.w3.org/ns/ttml'><body><div></div></body></tt>", "no readable cue"),
    ("m.scc", b"Scenarist_SCC V1.0\n\n00:00:01:00\tzzzz qqqq\n", "SCC not read"),
    ("m.scc", b"not an scc file\n", "not a subtitle file"),
    ("m.stl", b"850STL25.01" + b" " * 200, "shorter than"),
    ("m.stl", b"850STL25.01" + b"\xff" * 2000, "EBU-STL"),
])
def test_bad_caption_files_are_one_line(name, data, words):
    with pytest.raises(SubtitleError) as exc:
        parse(data, name)
    assert words in str(exc.value) and "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def video_with_captions(tmp_path_factory):
    d = tmp_path_factory.mktemp("captions")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=6", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "movie.mp4")], check=True, capture_output=True, timeout=120)
    (d / "movie.fr.ttml").write_text(TTML)
    (d / "movie.en.scc").write_text(SCC)
    (d / "movie.de.stl").write_bytes(ebu_stl([(1.0, 2.0, "Guten Tag", 20)], lang="08"))
    (d / "movie.es.xml").write_text(TTML.replace('xml:lang="fr"', 'xml:lang="es"'))
    (d / "movie.metadata.xml").write_text("<metadata/>")  # not captions by its name: not a track
    (d / "movie.it.ttml").write_text("<tt xmlns='http://www.w3.org/ns/ttml'><body>")  # broken: a track with its error
    return d


@pytest.mark.integration
def test_caption_sidecars_beside_a_video_become_tracks(video_with_captions):
    store = LocalStore(video_with_captions)
    tracks, warnings = collect.collect(store, "movie.mp4", video_with_captions / "movie.mp4", has_streams=False)
    by = {t.file: t for t in tracks}
    assert sorted(by) == ["movie.de.stl", "movie.en.scc", "movie.es.xml", "movie.fr.ttml", "movie.it.ttml"] and not warnings
    assert (by["movie.fr.ttml"].codec, len(by["movie.fr.ttml"].cues), by["movie.fr.ttml"].language) == ("ttml", 3, "fr")
    assert (by["movie.en.scc"].codec, [c.text for c in by["movie.en.scc"].cues]) == ("scc", ["HELLO", "WORDS!"])
    assert (by["movie.de.stl"].codec, by["movie.de.stl"].cues[0].text, by["movie.de.stl"].language) == ("stl", "Guten Tag", "de")
    assert by["movie.es.xml"].language == "es" and len(by["movie.es.xml"].cues) == 3
    broken = by["movie.it.ttml"]
    assert not broken.parsed and "\n" not in broken.error and "TTML" in broken.error
    files = collect.files_of(tracks)
    assert files["subtitles/en.vtt"].decode().startswith("WEBVTT") and "HELLO" in files["subtitles/en.vtt"].decode()
