"""Deliveries for benchmarks/formats.py: one small video per delivery with its cases' exact truth.

Every generator reuses the test suite's (prism_assets_tests): caption files and the A/53 SEI writer of
test_captions.py / test_captions_embedded.py, the HDR / interlace / telecine encodes of
test_pictures_hdr.py, the espeak-ng speech, 5.1 mixes and Matroska muxing of test_audio_tracks_kinds.py,
the converted dubs of support/localization_media.py. Each builder writes into its own folder and returns
(video, {case: truth}); sidecars lie beside the video, named after its stem.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

FRAME_25, FRAME_2997 = 1 / 25, 1001 / 30000
# the three cues of the SRT / WebVTT / ASS / forced files: (start, end, text, region written or None)
CUES = [(1.0, 2.5, "Hello there", "an8"), (3.2, 5.2, "Where are you going?\nTo the harbour.", None), (6.0, 7.5, "Wait for me", None)]


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, capture_output=True, timeout=300)


def plain_video(path: Path, dur: float, rate: str = "25", size: str = "320x180", extra: tuple = ()) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={dur}", "-c:v", "libx264", "-preset", "ultrafast", *extra,
           "-pix_fmt", "yuv420p", path)
    return path


def sub_truth(cues, tol_s: float, language, *, forced=False, sdh=False, regions=0, fmt: str) -> dict:
    return {"cues": [(round(a, 3), round(b, 3), t) for a, b, t, *_ in cues], "tol_ms": round(tol_s * 1000, 1), "language": language,
            "forced": forced, "sdh": sdh, "regions": regions, "format": fmt}


def ttml_doc(lang: str, texts: tuple[str, str, str], forced: bool = False) -> str:
    from prism_assets_tests.test_captions import TTML

    doc = TTML.replace('xml:lang="fr"', f'xml:lang="{lang}"').replace("Bonjour<br/>le monde", texts[0]).replace(">En haut<", f">{texts[1]}<")
    doc = doc.replace('<span tts:fontStyle="italic">Deux</span> mots', texts[2])
    return doc.replace("<body>", '<body itts:forcedDisplay="true">') if forced else doc


TTML_TIMES = [(0.48, 2.0), (1.5, 3.0), (2.5, 3.75)]  # 00:00:00:12 at 25 fps, 1.5s..3s, 2.5..3.75


def sidecars(d: Path) -> tuple[Path, dict]:
    """A 10 s video and, beside it, one caption/subtitle file per format plus two bad files."""
    from prism_assets_tests.support.caption_media import scc_of, srt_of
    from prism_assets_tests.test_captions import ebu_stl
    from prism_assets_tests.test_captions_embedded import TRUTH

    video = plain_video(d / "movie.mp4", 10)
    srt = [(a, b, ("{\\an8}" if r else "") + t) for a, b, t, r in CUES]
    (d / "movie.en.srt").write_text(srt_of(srt))

    def ts(t):
        return f"00:00:{int(t):02d}.{round(t * 1000) % 1000:03d}"
    (d / "movie.en.vtt").write_text("WEBVTT\n\n" + "".join(f"{ts(a)} --> {ts(b)}{' line:10% align:start' if r else ''}\n{t}\n\n" for a, b, t, r in CUES))
    from prism_assets_tests.support.localization_media import write_subtitles
    (d / "movie.en.ass").write_text(write_subtitles(srt, "ass"))
    texts = {"fr": ("Bonjour<br/>le monde", "En haut", "Deux mots"), "de": ("Guten Tag<br/>die Welt", "Oben", "Zwei Wörter"),
             "es": ("Hola<br/>el mundo", "Arriba", "Dos palabras")}
    (d / "movie.fr.ttml").write_text(ttml_doc("fr", texts["fr"]))
    (d / "movie.de.dfxp").write_text(ttml_doc("de", texts["de"], forced=True))
    (d / "movie.es.xml").write_text(ttml_doc("es", texts["es"]))
    scc = scc_of(TRUTH)
    (d / "movie.en.scc").write_text(scc)
    stl = [(1.0, 2.52, "Hello\nthere", 20), (3.04, 4.0, "Second", 22), (6.0, 7.0, "Third", 20)]
    (d / "movie.en.stl").write_bytes(ebu_stl(stl, lang="09"))  # 09: English (EBU Tech 3264 language code)
    (d / "movie.en.forced.srt").write_text(srt_of([(a, b, t) for a, b, t, _ in CUES[:2]]))
    sdh = [(1.0, 2.0, "[DOOR SLAMS]"), (3.0, 4.5, "JOHN: Who's there?"), (6.0, 7.0, "(THUNDER RUMBLES)")]
    (d / "movie.en.sdh.srt").write_text(srt_of(sdh))
    (d / "movie.de.scc").write_text(scc[: len(scc) // 2])  # truncated in the middle of a word
    rng = np.random.default_rng(27)
    (d / "movie.it.ttml").write_bytes(b'<?xml version="1.0"?><tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="1s"'
                                      + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    tt = lambda lang: [(a, b, t.replace("<br/>", "\n")) for (a, b), t in zip(TTML_TIMES, texts[lang])]  # noqa: E731
    return video, {
        "srt": {"file": "movie.en.srt", **sub_truth(CUES, 0.001, "en", regions=1, fmt="SubRip")},
        "webvtt": {"file": "movie.en.vtt", **sub_truth(CUES, 0.001, "en", regions=1, fmt="WebVTT")},
        "ass": {"file": "movie.en.ass", **sub_truth(CUES, 0.01, "en", regions=1, fmt="ASS/SSA")},
        "ttml-imsc": {"file": "movie.fr.ttml", **sub_truth(tt("fr"), FRAME_25, "fr", regions=3, fmt="TTML/IMSC")},
        "dfxp-forced": {"file": "movie.de.dfxp", **sub_truth(tt("de"), FRAME_25, "de", forced=True, regions=3, fmt="TTML/IMSC")},
        "ttml-xml": {"file": "movie.es.xml", **sub_truth(tt("es"), FRAME_25, "es", regions=3, fmt="TTML/IMSC")},
        "scc": {"file": "movie.en.scc", **sub_truth(TRUTH, 2 * FRAME_2997, "en", sdh=True, regions=3, fmt="SCC (CEA-608)")},
        "ebu-stl": {"file": "movie.en.stl", **sub_truth(stl, FRAME_25, "en", regions=3, fmt="EBU-STL")},
        "forced-srt": {"file": "movie.en.forced.srt", **sub_truth(CUES[:2], 0.001, "en", forced=True, fmt="SubRip")},
        "sdh-srt": {"file": "movie.en.sdh.srt", **sub_truth(sdh, 0.001, "en", sdh=True, fmt="SubRip")},
        "bad-scc-truncated": {"file": "movie.de.scc", "bad": True},
        "bad-ttml-garbage": {"file": "movie.it.ttml", "bad": True},
    }


def cea608_h264(d: Path) -> tuple[Path, dict]:
    """H.264 (B-frames, 29.97 fps) whose pictures carry the captions as A/53 SEI, written by the test's SEI writer."""
    from prism_assets_tests.support.caption_media import embed_a53, scc_of, scc_words
    from prism_assets_tests.test_captions_embedded import TRUTH

    plain = plain_video(d / "plain.mp4", 9, rate="30000/1001", extra=("-bf", "2"))
    out = d / "cc608.mp4"
    embed_a53(plain, out, scc_words(scc_of(TRUTH)))
    plain.unlink()
    return out, {"cea608-h264-sei": {"source": "video", **sub_truth(TRUTH, 2 * FRAME_2997, None, sdh=True, regions=3, fmt="CEA-608 (embedded)")}}


def cea708_h264(d: Path) -> tuple[Path, dict]:
    """H.264 (B-frames, 29.97 fps) carrying the same captions as CEA-608 CC1 and as CEA-708 service 1 (pop-on windows
    shown by DSW, hidden by HDW, as a 608-to-708 converter sends them), by support/caption_media.py."""
    from prism_assets_tests.support.caption_media import embed_a53, scc_of, scc_words
    from prism_assets_tests.test_captions_708 import pop_on_708
    from prism_assets_tests.test_captions_embedded import TRUTH

    plain = plain_video(d / "plain.mp4", 9, rate="30000/1001", extra=("-bf", "2"))
    out = d / "cc708.mp4"
    sched, truth = pop_on_708(TRUTH)
    embed_a53(plain, out, scc_words(scc_of(TRUTH)), dtvcc=sched.frames)
    plain.unlink()
    return out, {"cea708-h264-sei": {"source": "video", "codec": "eia_708", **sub_truth(truth, 0.002, None, sdh=True, regions=3, fmt="CEA-708 (embedded)")}}


def cea608_mov(d: Path) -> tuple[Path, dict]:
    """A MOV with a c608 closed-caption track muxed by FFmpeg from an SCC (as test_captions_embedded's fixture)."""
    from prism_assets_tests.support.caption_media import scc_of
    from prism_assets_tests.test_captions_embedded import TRUTH

    plain = plain_video(d / "plain.mp4", 9, rate="30000/1001")
    (d / "cap.scc").write_text(scc_of(TRUTH) + "\n00:00:08;20\t942c 942c\n")  # FFmpeg's MOV muxer drops the last sample
    out = d / "c608.mov"
    ffmpeg("-i", plain, "-i", d / "cap.scc", "-map", "0", "-map", "1", "-c", "copy", "-metadata:s:s:0", "language=eng", out)
    plain.unlink()
    (d / "cap.scc").rename(d / "source-of-c608.txt")  # not a sidecar of the MOV
    return out, {"cea608-mov-c608": {"source": "stream", **sub_truth(TRUTH, 2 * FRAME_2997, "en", sdh=True, regions=3, fmt="CEA-608 (c608 track)")}}


def pictures(d: Path, which: str) -> tuple[Path, dict]:
    """HDR10 / HDR10 without metadata / HLG (5 s: black then testsrc2), interlaced 25i and 3:2 telecined 29.97i (5 s)."""
    from prism_assets_tests.test_pictures_hdr import x265

    out = d / f"{which}.mp4"
    md = {"red": [0.68, 0.32], "green": [0.265, 0.69], "blue": [0.15, 0.06], "white_point": [0.3127, 0.329], "min_luminance": 0.005, "max_luminance": 1000.0}
    if which == "hdr10-pq":
        from prism_assets_tests.test_pictures_hdr import MASTER
        x265(out, "smpte2084", f"hdr10=1:repeat-headers=1:master-display={MASTER}:max-cll=1000,400")
        truth = {"hdr": {"format": "hdr10", "transfer": "smpte2084", "primaries": "bt2020", "mastering_display": md, "max_cll": 1000, "max_fall": 400,
                         "missing_metadata": []}, "events": {}, "no_events": ["hdr_metadata"]}
    elif which == "hdr10-no-metadata":
        x265(out, "smpte2084")
        truth = {"hdr": {"format": "hdr10", "transfer": "smpte2084", "primaries": "bt2020", "mastering_display": None, "max_cll": None,
                         "missing_metadata": ["mastering_display", "max_cll"]}, "events": {"hdr_metadata": "warn"}}
    elif which == "hlg":
        x265(out, "arib-std-b67")
        truth = {"hdr": {"format": "hlg", "transfer": "arib-std-b67", "primaries": "bt2020", "missing_metadata": []}, "events": {},
                 "no_events": ["hdr_metadata"]}
    elif which == "interlaced":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=5", "-vf", "interlace=scan=tff:lowpass=0", "-c:v", "libx264", "-preset", "ultrafast",
               "-crf", "16", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-pix_fmt", "yuv420p", out)
        truth = {"scan": {"type": "interlaced", "field_order": "tff"}, "events": {"interlaced": None}, "shots": 1}
    elif which == "telecined":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=24000/1001:d=5", "-vf", "telecine=pattern=23:first_field=top", "-c:v", "libx264",
               "-preset", "ultrafast", "-crf", "16", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-pix_fmt", "yuv420p", out)
        truth = {"scan": {"type": "telecined", "field_order": "tff"}, "events": {"interlaced": None}, "shots": 1}
    else:
        raise ValueError(which)
    return out, {which: truth}


def with_video(audio_mkv: Path, out: Path, dur: float) -> Path:
    video = plain_video(out.with_suffix(".v.mp4"), dur)
    ffmpeg("-i", video, "-i", audio_mkv, "-map", "0:v", "-map", "1:a", "-c", "copy", out)
    video.unlink()
    audio_mkv.unlink()
    return out


def audio_description(d: Path) -> tuple[Path, dict]:
    """20 s: an English original (bed + 3 dialogue lines), its audio description (the original + 2 narrations in its
    gaps) flagged `visual_impaired` and titled only "English", the same AD with no metadata but its language."""
    from prism_assets_tests.test_audio_tracks_kinds import LINES, RATE, bed, mux, speech

    dur = 20.0
    n = int(dur * RATE)
    music = bed(n, 1)
    orig, ad, t = music.copy(), music.copy(), 0.5
    for i, line in enumerate(LINES[:5]):  # dialogue, narration, dialogue, narration, dialogue
        x = speech(line)
        s = int(t * RATE)
        ad[s: s + len(x)] += x
        if i % 2 == 0:
            orig[s: s + len(x)] += x
        t += len(x) / RATE + 0.7
    st = lambda x: np.vstack([x, x])  # noqa: E731
    audio = mux(d / "ad.audio.mkv", [{"x": st(orig), "codec": "aac", "language": "eng", "disposition": "default"},
                                     {"x": st(ad), "codec": "aac", "language": "eng", "title": "English", "disposition": "visual_impaired"},
                                     {"x": st(ad), "codec": "aac", "language": "eng"}], dur)
    out = with_video(audio, d / "described.mkv", dur)
    return out, {"audio-description-disposition": {"track": 1, "role": "audio_description", "language": "en"},
                 "audio-description-content": {"track": 2, "role": "audio_description", "language": "en"}}


def five_one(d: Path) -> tuple[Path, dict]:
    """12 s, three 5.1 tracks (FL FR FC LFE BL BR): a clean mix with the dialogue in the centre, the same with a silent
    back-left, the same with the dialogue swapped from the centre to the front-left."""
    from prism_assets_tests.test_audio_tracks_kinds import LINES, ORDER, RATE, mux, speech, surround

    dur = 12.0
    n = int(dur * RATE)
    dlg = np.zeros(n, np.float32)
    for p, line in ((0.5, LINES[0]), (6.0, LINES[1])):
        x = speech(line)
        dlg[int(p * RATE): int(p * RATE) + len(x)] += x
    clean = surround(n, 3, dlg)
    variants = [clean, {**clean, "BL": np.zeros(n, np.float32)}, {**clean, "FL": clean["FC"], "FC": clean["FL"]}]
    audio = mux(d / "surround.audio.mkv", [{"x": np.vstack([v[c] for c in ORDER]), "layout": "5.1", "language": "eng",
                                            "disposition": "default" if i == 0 else "0"} for i, v in enumerate(variants)], dur)
    out = with_video(audio, d / "surround.mkv", dur)
    return out, {"5.1-clean": {"track": 0, "layout": "5.1", "channels": 6, "dialogue_source": "centre", "events": []},
                 "5.1-silent-back-left": {"track": 1, "layout": "5.1", "channels": 6, "events": [("channel_silent", "BL")]},
                 "5.1-dialogue-swapped": {"track": 2, "layout": "5.1", "channels": 6, "dialogue_source": "mix",
                                          "events": [("channel_swap", "dialogue_off_centre")]}}


def dubs(d: Path) -> tuple[Path, dict]:
    """40 s (the speed search needs the length): an English original, a German dub from a PAL master (`asetrate`,
    24/25, 120 ms late) and a French dub pulled up from 23.976 to 24 (`atempo`, 1000/1001, 60 ms early)."""
    from prism_assets.localization.speed import FILM, classify
    from prism_assets_tests.support.localization_media import AudioSpec, make_title

    audio = [AudioSpec("original", "en"), AudioSpec("dub", "de", offset_ms=120, speed_ratio=24 / 25),
             AudioSpec("dub", "fr", offset_ms=-60, speed_ratio=FILM / 24, speed_filter="atempo")]
    path, truth = make_title(d, "dubs", audio, [], container="mkv", dur=40.0, seed=7)
    out = {}
    for case, k in (("dub-pal-25-24", 1), ("dub-23976-24", 2)):
        a = truth.audio[k]
        out[case] = {"track": k, "role": "dub", "language": a["language"], "speed_ratio": round(a["speed_ratio"], 7),
                     "conversion": classify(a["speed_ratio"])[0], "offset_ms": a["offset_ms"]}
    return path, out


DELIVERIES = {  # delivery -> (builder, its cases)
    "sidecars": (sidecars, ["srt", "webvtt", "ass", "ttml-imsc", "dfxp-forced", "ttml-xml", "scc", "ebu-stl", "forced-srt", "sdh-srt",
                            "bad-scc-truncated", "bad-ttml-garbage"]),
    "cea608-h264": (cea608_h264, ["cea608-h264-sei"]),
    "cea708-h264": (cea708_h264, ["cea708-h264-sei"]),
    "cea608-mov": (cea608_mov, ["cea608-mov-c608"]),
    "audio-description": (audio_description, ["audio-description-disposition", "audio-description-content"]),
    "surround": (five_one, ["5.1-clean", "5.1-silent-back-left", "5.1-dialogue-swapped"]),
    "dubs": (dubs, ["dub-pal-25-24", "dub-23976-24"]),
    **{w: ((lambda d, w=w: pictures(d, w)), [w]) for w in ("hdr10-pq", "hdr10-no-metadata", "hlg", "interlaced", "telecined")},
}
