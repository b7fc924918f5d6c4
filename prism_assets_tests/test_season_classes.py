"""Failure classes of the season structure (issue 27 item 5), on generated media with exact truth and on constructed
inputs:

1. end credits that reuse the opening theme were taken for the intro (the longer shared stretch won): the theme at
   the end of each episode is its end credits, the one at its start its intro (position; OCR end credits as text
   evidence where the title has them);
2. a recap missed: narrated over (the sound differs, the pictures match), repeating the episode two back, a single
   short excerpt, or placed before a cold open longer than 30 s;
3. end credits placed up to one OCR step early after a dark scene with sparse bright detail (stars, city lights):
   the credits start where their text/roll starts, not where the picture got dark.

Media: ``support/season_classes.py`` (one season of six short episodes, one 32-s title), made once per session
(integration tier); the constructed cases are unit tests.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from prism_assets.structure import credits as C
from prism_assets.structure import ocr as O
from prism_assets.structure import text_flags as F
from prism_assets.structure.season import Episode, find_intros_and_recaps

TOOLS = ("ffmpeg", "fpcalc", "espeak-ng", "tesseract")
_have_tools = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS), reason=f"{', '.join(TOOLS)} are required")


def needs_tools(fn):
    """Media tests: generated with ffmpeg/espeak-ng, read with fpcalc/tesseract (the integration tier)."""
    return pytest.mark.integration(_have_tools(fn))

SPECS = [  # every episode: [cold open][intro: the theme][body][end credits over the theme], but
    dict(cold_s=5, body_s=22, credits_s=11),
    dict(cold_s=4, body_s=12, credits_s=11, recap={"from": [1, 1], "piece_s": [3.0, 3.0], "where": "before_intro", "narration": True}),
    dict(cold_s=6, body_s=12, credits_s=11, recap={"from": [2, 2], "piece_s": [3.0, 2.6], "where": "start"}),  # two episodes back
    dict(cold_s=8, body_s=12, credits_s=11, recap={"from": [1], "piece_s": [2.2], "where": "before_intro"}),  # one short excerpt
    dict(cold_s=31, body_s=27, credits_s=10, recap={"from": [1, 1], "piece_s": [3.0, 3.0], "where": "start"}),  # then a long cold open
    dict(cold_s=5, body_s=12, credits_s=11, intro=False),  # the theme only under the end credits
]
SEED = 7


@pytest.fixture(scope="session")
def season(tmp_path_factory):
    if not all(shutil.which(t) for t in TOOLS[:3]):
        pytest.skip("ffmpeg, fpcalc and espeak-ng are required")
    from prism_assets.structure.fingerprint import audio_fingerprint, picture_signature
    from prism_assets_tests.support.season_classes import make_class_season
    from prism_assets_tests.support.season_media import samples_1fps, wav16

    truth = make_class_season(tmp_path_factory.mktemp("classes"), SEED, SPECS)
    eps = [Episode(e["title_id"], e["episode"], e["duration_s"], audio_fingerprint(wav16(e["video"])), picture_signature(samples_1fps(e["video"])))
           for e in truth["episodes"]]
    return truth, eps, find_intros_and_recaps(eps[::-1])  # any order


# ------------------------------------------------------------------------------------------ 1. the theme under the end credits


@needs_tools
def test_theme_under_the_end_credits_is_end_credits_and_the_intro_stays_at_the_start(season):
    truth, _, found = season
    for t in truth["episodes"]:
        f = found[t["title_id"]]
        if t["intro"] is None:  # the theme only at the end: end credits, never an intro
            assert f["intro"] is None, (t["title_id"], f["intro"])
        else:
            assert f["intro"] is not None, (t["title_id"], f["note"])
            assert abs(f["intro"]["start_s"] - t["intro"]["start_s"]) <= 1.0 and abs(f["intro"]["end_s"] - t["intro"]["end_s"]) <= 1.0, (t, f["intro"])
        end = f["end_credits"]
        assert end is not None, (t["title_id"], f["note"])
        assert abs(end["start_s"] - t["end_credits"]["start_s"]) <= 1.0 and abs(end["end_s"] - t["end_credits"]["end_s"]) <= 1.0, (t, end)
        assert any(e.startswith("position:") for e in end["evidence"]) and end["confidence"] > 0.5
    with_intro = [found[t["title_id"]]["intro"] for t in truth["episodes"] if t["intro"]]
    # each intro aligned with the partners' intros (not their credits): the pictures agree
    assert all(not any(e.startswith("picture: 0/") for e in i["evidence"]) for i in with_intro)


def _items(rng, n):
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)


def _noisy(items, rng, p_bit=0.04):
    flips = rng.random((len(items), 32)) < p_bit
    return items ^ (flips * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(np.uint32)


def _ep(title, num, items):
    return Episode(title, num, len(items) * 0.12380952380952381, {"items": items, "item_s": 0.12380952380952381, "centre_s": 0.0, "start_s": 0.0}, None)


def test_ocr_end_credits_decide_where_position_cannot():
    """A short pilot without an intro whose end credits (over a long version of the theme) start before its middle: by
    position alone the theme is its intro (a documented limit); the OCR end credits of its structure.json say otherwise.
    The other episodes: [cold open][intro: the theme's first 8 s][body][end credits: the theme, 16 s]."""
    rng = np.random.default_rng(5)
    theme = _items(rng, 130)
    eps = [_ep(f"t{k}", k, np.concatenate([_items(rng, 30 + 10 * k), _noisy(theme[:65], rng), _items(rng, 300), _noisy(theme, rng), _items(rng, 8)]))
           for k in (2, 3, 4)]
    pilot = _ep("t1", 1, np.concatenate([_items(rng, 140), _noisy(theme, rng), _items(rng, 20)]))  # 36 s: the theme from 17.3 s
    exact = {"start_bias_s": 0.0, "end_bias_s": 0.0}
    found = find_intros_and_recaps(eps + [pilot], exact)
    assert found["t1"]["intro"] is not None and abs(found["t1"]["intro"]["start_s"] - 140 * 0.12380952380952381) <= 0.25  # position only: the limit
    for k in (2, 3, 4):  # the others have both, each in its place
        f = found[f"t{k}"]
        assert f["intro"]["start_s"] < f["end_credits"]["start_s"] and f["end_credits"]["end_s"] > 0.9 * eps[k - 2].duration_s
    pilot.end_credits = {"start_s": 17.0, "end_s": pilot.duration_s}  # what credits.detect_credits found on its picture
    found = find_intros_and_recaps(eps + [pilot], exact)
    assert found["t1"]["intro"] is None
    end = found["t1"]["end_credits"]
    assert end is not None and abs(end["start_s"] - 140 * 0.12380952380952381) <= 0.25 and any(e.startswith("text:") for e in end["evidence"])


# ------------------------------------------------------------------------------------------ 2. recaps


@needs_tools
@pytest.mark.parametrize("episode,kind", [(2, "narrated over"), (3, "two episodes back"), (4, "one short excerpt"), (5, "before a long cold open")])
def test_recap_is_found(season, episode, kind):
    truth, _, found = season
    t = truth["episodes"][episode - 1]
    f = found[t["title_id"]]["recap"]
    assert f is not None, (kind, found[t["title_id"]]["note"])
    assert abs(f["start_s"] - t["recap"]["start_s"]) <= 1.0 and abs(f["end_s"] - t["recap"]["end_s"]) <= 1.0, (kind, t["recap"], f)
    assert f["from_episode"] == t["recap"]["from_episode"], (kind, f)
    if t["recap"]["narration"]:  # the sound is the narrator's: found by its pictures
        assert any("by their 1/s samples alone" in e for e in f["evidence"]), f["evidence"]


@needs_tools
def test_no_recap_where_there_is_none(season):
    truth, _, found = season
    for t in truth["episodes"]:
        if t["recap"] is None:
            assert found[t["title_id"]]["recap"] is None, (t["title_id"], found[t["title_id"]]["recap"])


# ------------------------------------------------------------------------------------------ 3. end credits after a night scene


def _row(t, text, y, conf=95.0, line=0, luma=15.0):
    return {"frame": int(round(t * 25)), "t_s": float(t), "line": line, "text": text, "language": "en", "script": "Latn", "confidence": conf,
            "x": 0.3, "y": y, "w": 0.4, "h": 0.05, "luma_mean": luma, "luma_std": 30.0}


SPECKS = ["lil", "oeo", "IlI ca", "cee", "ioI", "aIl", "eoc", "llc", "Iea", "oIc", "cai", "elo", "Ioe", "lca", "ecl", "oal", "Ilo", "cio",
          "aei", "loc", "Ica", "eil", "olI", "cel", "Iao", "lei", "coa"]


def _night_then_credits(credits_at: float | None, specks: bool = True, step: float = 3.0, dur: float = 600.0):
    """Dialogue with subtitles to 520 s, a night scene (luma 12, music, no speech) whose stars and lights OCR reads as
    a few letters on every OCR'd frame (a different misread each time), then (``credits_at``) names rolling up on black
    (0.1 of the height a second) to the end; OCR every ``step`` s (a long title's bound), the first credits frame 0.7 s
    after the cut."""
    rows, segs = [], []
    for a in np.arange(60.0, 515.0, 9.0):
        segs.append({"kind": "speech", "start_s": a, "end_s": a + 3})
        rows.append(_row(a + 1, f"line {int(a)} of the dialogue here", 0.85, luma=100))
    night_end = credits_at if credits_at is not None else dur
    segs.append({"kind": "music", "start_s": 520.0, "end_s": dur})
    luma = np.full(int(dur) + 1, 100.0)
    luma[520:int(np.ceil(night_end))] = 12.0
    for k, t in enumerate(np.arange(523.0, night_end - 1.0, step) if specks else []):  # stars and city lights read as letters
        rows.append(_row(t, SPECKS[k % len(SPECKS)], 0.3 + 0.05 * (k % 9), conf=74.0))
    if credits_at is not None:
        luma[int(credits_at):] = 16.0
        names = [f"NAME{chr(65 + i % 26)} PERSON{chr(65 + i // 26 % 26)}" for i in range(300)]
        for t in np.arange(credits_at + 0.7, dur, step):
            shown = [(i, 1.0 + 0.12 * i - 0.1 * (t - credits_at)) for i in range(300)]
            for k, (i, y) in enumerate((i, y) for i, y in shown if 0.02 < y < 0.94):
                rows.append(_row(t, names[i], y, line=k))
    segs.sort(key=lambda s: s["start_s"])
    df = pd.DataFrame(rows).sort_values(["t_s", "line"])
    df["line"] = df.groupby("t_s").cumcount()
    flagged = F.flag_text(df, [(s["start_s"], s["end_s"]) for s in segs if s["kind"] == "speech"], dur)
    return flagged, pd.DataFrame({"t_s": np.arange(len(luma), dtype=float), "luma_mean": luma}), segs


@pytest.mark.parametrize("specks", [False, True])
def test_end_credits_after_a_dark_scene_start_where_the_text_rolls_in(specks):
    """OCR every 3 s; the night scene is as dark as the credits' background: the start used to walk back one OCR step
    into it (8 s early here: the step is the median spacing of all text frames), or to the first misread of its lights
    (20 s early); now a misread read once is no credit, the cut is not visible, and the roll's first line (entering at
    the bottom) places the start."""
    flagged, ps, segs = _night_then_credits(540.3, specks)
    end = C.detect_credits(flagged, ps, segs, 600.0)["end"]
    assert end is not None and end["rolling"]
    assert 540.3 - 0.5 <= end["start_s"] <= 540.3 + 1.0, end
    assert any("roll" in e for e in end["evidence"])


def test_a_dark_scene_with_bright_specks_is_not_end_credits():
    flagged, ps, segs = _night_then_credits(None)
    assert C.detect_credits(flagged, ps, segs, 600.0)["end"] is None


@pytest.fixture(scope="session")
def night_title(tmp_path_factory):
    if not all(shutil.which(t) for t in ("ffmpeg", "espeak-ng", "tesseract")):
        pytest.skip("ffmpeg, espeak-ng and tesseract are required")
    from prism_assets.structure.assets import per_second_luma
    from prism_assets.visual.decode import run_visual_pass
    from prism_assets.visual.packs import read_pack_bytes
    from prism_assets_tests.support.season_classes import make_dark_credits_title

    d = tmp_path_factory.mktemp("night")
    truth = make_dark_credits_title(d / "night.mp4", seed=1)
    vp = run_visual_pass(d / "night.mp4", d / "visual")  # the pipeline's one decode: per-frame stats and keyframe candidates
    kf = vp.pictures[vp.pictures["kind"] == "keyframe"].sort_values("frame")
    jpeg = {int(r.frame): read_pack_bytes(vp.packs[r.pack], r.offset, r.length) for r in kf.itertuples()}
    scored = pd.DataFrame({"frame": list(jpeg), "t_s": kf["t_s"].astype(float).to_list(), "score": [O.text_likelihood(j) for j in jpeg.values()]})
    cfg = O.OcrConfig(every_s=3.0, workers=2, languages=("eng",))  # one OCR'd frame per 3 s, as the frame bound gives a long title
    chosen = O.select_frames(scored, cfg)
    text, _ = O.ocr_frames([(int(r.frame), float(r.t_s), jpeg[int(r.frame)]) for r in chosen.itertuples()], cfg)
    return truth, F.flag_text(text, truth["speech"], truth["duration_s"]), per_second_luma(vp.stats)


@needs_tools
def test_night_scene_then_credits_media(night_title):
    truth, flagged, ps = night_title
    found = C.detect_credits(flagged, ps, truth["audio_segments"], truth["duration_s"])
    end, t0 = found["end"], truth["end_credits"]["start_s"]
    assert end is not None and t0 - 0.5 <= end["start_s"] <= t0 + 1.0, (end, truth["end_credits"], truth["night"])
    # the same title cut before its credits ends on the night scene: no end credits
    cut = truth["night"]["end_s"]
    before = C.detect_credits(flagged[flagged["t_s"] < cut], ps[ps["t_s"] < cut], [dict(s, end_s=min(s["end_s"], cut)) for s in truth["audio_segments"]
                                                                                  if s["start_s"] < cut], cut)
    assert before["end"] is None
