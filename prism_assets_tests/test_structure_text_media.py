"""Integration tests of on-screen text on generated titles (ffmpeg + espeak-ng + tesseract): OCR finds the slate,
the burned-in lines (Korean/Japanese with their language), credits start within 2 s of the truth, none on a title
without credits, and the engine errors are one line. Frames are fed as the pipeline does: JPEGs of longest side
640 px from one decode, scored by the prefilter, chosen by select_frames, OCR'd in parallel."""

from __future__ import annotations

import difflib
import time

import numpy as np
import pandas as pd
import pytest

from prism_assets.structure import credits as C
from prism_assets.structure import ocr as O
from prism_assets.structure import text_flags as F
from prism_assets_tests.support.text_media import extract_frames, make_text_title

pytestmark = pytest.mark.integration

CFG = O.OcrConfig(every_s=1.0, workers=2)


def _luma(jpeg: bytes) -> float:
    return float(O._grey(jpeg).mean())


def _run(tmp_path_factory, name: str, languages: tuple[str, ...], **kw) -> dict:
    d = tmp_path_factory.mktemp(name)
    truth = make_text_title(d / f"{name}.mp4", **kw)
    fps = truth["fps"]
    frames = extract_frames(d / f"{name}.mp4", list(range(0, int(truth["duration_s"] * fps), fps // 2)), fps)  # the visual pass's 2/s
    index = pd.DataFrame({"frame": [f for f, _, _ in frames], "t_s": [t for _, t, _ in frames], "score": [O.text_likelihood(j) for _, _, j in frames]})
    chosen = O.select_frames(index, CFG)
    jpeg = {f: j for f, _, j in frames}
    calls = []
    t0 = time.perf_counter()
    cfg = O.OcrConfig(every_s=CFG.every_s, workers=CFG.workers, languages=languages)
    text, warnings = O.ocr_frames([(int(r.frame), float(r.t_s), jpeg[int(r.frame)]) for r in chosen.itertuples()], cfg,
                                  progress=lambda done, total: calls.append((done, total)))
    per_frame = (time.perf_counter() - t0) * CFG.n_workers() / max(1, len(chosen))
    flagged = F.flag_text(text, truth["speech"], truth["duration_s"])
    # picture luma per second from the same frames (the visual pass reports it), no second decode
    per_second = pd.DataFrame({"t_s": [int(t) for _, t, _ in frames], "luma_mean": [_luma(j) for _, _, j in frames]}).groupby("t_s", as_index=False).mean()
    found = C.detect_credits(flagged, per_second, truth["audio_segments"], truth["duration_s"])
    print(f"{name}: {len(frames)} frames, {len(chosen)} OCR'd, {per_frame:.2f} s CPU per frame, {len(text)} lines, warnings {warnings}")
    return {"truth": truth, "text": text, "flagged": flagged, "credits": found, "warnings": warnings, "calls": calls, "chosen": chosen, "index": index, "jpegs": jpeg}


@pytest.fixture(scope="module")
def titled(tmp_path_factory):
    return _run(tmp_path_factory, "credits", ("eng", "kor"), seed=3, credits=True, cjk="ko")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _run(tmp_path_factory, "plain", ("eng", "jpn"), seed=4, credits=False, cjk="ja")


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.casefold(), b.casefold()).ratio()


def _best(text: pd.DataFrame, a: float, b: float, s: str) -> tuple[float, pd.Series | None]:
    rows = text[(text["t_s"] >= a) & (text["t_s"] <= b)]
    if rows.empty:
        return 0.0, None
    r = rows["text"].map(lambda x: _ratio(x, s))
    return float(r.max()), rows.loc[r.idxmax()]


def test_engine_info_is_recorded_like_a_model():
    info = O.engine_info(O.OcrConfig())
    assert info["engine"] == "tesseract" and info["version"].startswith("5.") and info["leptonica"]
    assert info["languages"] == ["eng", "kor", "jpn"] and info["psm"] == 11 and info["crop_psm"] == 3 and info["crop"] and info["reuse"]
    assert info["api"] == "cli" or info["api"].startswith("tesserocr ")  # which engine read: the binary or in-process
    assert O.engine_info(O.OcrConfig(engine="cli"))["api"] == "cli"
    for lang in ("eng", "kor", "jpn"):
        td = info["traineddata"][lang]
        assert td["bytes"] > 100_000 and len(td["sha256"]) == 16 and td["path"].endswith(f"{lang}.traineddata")


def test_engine_errors_are_one_line():
    with pytest.raises(O.OcrError) as e:
        O.engine_info(O.OcrConfig(languages=("eng", "xxx")))
    assert "\n" not in str(e.value) and "'xxx' missing" in str(e.value)
    with pytest.raises(O.OcrError) as e:
        O.ocr_frames([(0, 0.0, b"")], O.OcrConfig(binary="tesseract-not-installed", engine="cli"))
    assert "\n" not in str(e.value) and "not found" in str(e.value)


def test_timeout_skips_the_frame_with_a_warning(titled):
    frame = titled["chosen"].iloc[0]
    text, warnings = O.ocr_frames([(int(frame.frame), float(frame.t_s), titled["jpegs"][int(frame.frame)])], O.OcrConfig(timeout_s=0.01, workers=1))
    assert text.empty and len(warnings) == 1 and "timed out" in warnings[0]


def test_slate_text_is_found_and_flagged(titled, plain):
    for run in (titled, plain):
        truth, text, flagged = run["truth"], run["text"], run["flagged"]
        for line in truth["slate"]["lines"]:
            r, row = _best(text, 0.0, truth["slate"]["end_s"], line)
            assert r >= 0.8, (line, r)
        spans = F.slates(flagged)
        assert spans and spans[0]["start_s"] <= 1.0 and "SCENE" in spans[0]["text"].upper()
        assert not flagged[flagged["t_s"] > truth["slate"]["end_s"] + 1]["slate"].any()


def test_burned_in_lines_found_with_language(titled, plain):
    hits = total = 0
    for run in (titled, plain):
        truth, flagged = run["truth"], run["flagged"]
        for sub in truth["subtitles"]:
            total += 1
            r, row = _best(flagged, sub["start_s"], sub["end_s"] + 0.5, sub["text"])
            if r >= 0.8:
                hits += 1
                assert bool(row["burned_in_subtitle"]), sub
                if sub["language"] in ("ko", "ja"):
                    assert row["language"] == sub["language"], (sub, row["text"])
            else:
                assert sub["language"] == "en", f"CJK line not found: {sub} best {r:.2f}"
        summary = F.burned_in_summary(flagged)
        assert summary["present"] and summary["lines"] >= len(truth["subtitles"]) - 1
    assert hits >= 0.8 * total, (hits, total)
    # no burned-in flag on the slate, the cards or the rolling credits
    t = titled["truth"]
    f = titled["flagged"]
    assert not f[(f["t_s"] < t["opening"]["end_s"]) | (f["t_s"] >= t["end_credits"]["start_s"])]["burned_in_subtitle"].any()


def test_end_credits_start_within_two_seconds(titled):
    truth, found = titled["truth"], titled["credits"]
    end = found["end"]
    assert end is not None, found
    err = end["start_s"] - truth["end_credits"]["start_s"]
    print(f"end credits start error {err:+.2f} s")
    assert abs(err) <= 2.0 and end["rolling"] and end["end_s"] >= truth["duration_s"] - 1.5
    assert found["next_episode_s"] == end["start_s"]
    op = found["opening"]
    assert op is not None and op["start_s"] <= truth["opening"]["start_s"] + 1.5 and op["end_s"] >= truth["opening"]["end_s"] - 1.5
    # the credit names are read
    roll = [_best(titled["text"], truth["end_credits"]["start_s"], truth["duration_s"], s)[0] for s in truth["end_credits"]["lines"]]
    assert np.mean(np.array(roll) >= 0.8) >= 0.8


def test_no_credits_on_a_title_without(plain):
    found = plain["credits"]
    assert found["opening"] is None and found["end"] is None and found["next_episode_s"] is None


def test_prefilter_and_progress(titled):
    idx, chosen = titled["index"], titled["chosen"]
    assert len(chosen) <= titled["truth"]["duration_s"] / CFG.every_s + 1 and len(chosen) < len(idx)
    calls = titled["calls"]
    assert calls and calls[-1] == (len(chosen), len(chosen)) and all(a <= b for a, b in calls)
    assert titled["warnings"] == []


def test_block_reads_find_every_line_the_whole_frame_path_finds(titled):
    """The default path (text blocks, reuse, kept engine) against the previous one (whole frames, one tesseract process
    each) on the same chosen frames: no truth line the previous path read (ratio >= 0.8) is lost, and unchanged text is
    not read again."""
    truth, chosen, jpegs = titled["truth"], titled["chosen"], titled["jpegs"]
    frames = [(int(r.frame), float(r.t_s), jpegs[int(r.frame)]) for r in chosen.itertuples()]
    old, _ = O.ocr_frames(frames, O.OcrConfig(engine="cli", crop=False, reuse=False, batch=1, workers=2, languages=("eng", "kor")))
    new = titled["text"]
    wanted = [(0.0, truth["slate"]["end_s"], s) for s in truth["slate"]["lines"]]
    wanted += [(c["start_s"], c["end_s"], c["text"]) for c in truth["opening"]["cards"]]
    wanted += [(s["start_s"], s["end_s"] + 0.5, s["text"]) for s in truth["subtitles"]]
    wanted += [(truth["end_credits"]["start_s"], truth["duration_s"], s) for s in truth["end_credits"]["lines"]]
    lost = [w for a, b, w in wanted if _best(old, a, b, w)[0] >= 0.8 and _best(new, a, b, w)[0] < 0.8]
    assert lost == [], lost
    stats = new.attrs["ocr_read"]
    assert stats["reused_blocks"] > 0 and stats["read_fraction_of_pixels"] < 0.7 and stats["frames"] == len(frames)
