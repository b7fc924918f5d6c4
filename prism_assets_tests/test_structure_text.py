"""Unit tests (no process) of on-screen text: language by script, frame choice, TSV line grouping, the prefilter,
text flags (groups, burned-in subtitles, slates, rolling) and credits on constructed tables."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from prism_assets.structure import credits as C
from prism_assets.structure import ocr as O
from prism_assets.structure import ocr_lines as L
from prism_assets.structure import text_flags as F

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


# ------------------------------------------------------------------------------------------ ocr helpers


@pytest.mark.parametrize("text,lang,script", [
    ("Where did you put the keys", "en", "Latn"), ("DIRECTED BY CLARA NOVAK", "en", "Latn"), ("FELIX MOREAU", None, "Latn"),
    ("안녕하세요 여러분", "ko", "Hang"), ("こんにちは皆さん", "ja", "Jpan"), ("東京大学", None, "Hani"), ("Привет мир", None, "Cyrl"),
    ("00:01:02 25", None, "Zyyy"), ("", None, "Zyyy"), ("KBS 뉴스 9", "ko", "Hang"),
])
def test_text_language_by_script(text, lang, script):
    assert O.text_language(text) == (lang, script)


def test_config_from_dict_and_unknown_keys():
    cfg = O.OcrConfig.from_config({"languages": "eng+kor", "every_s": 2.0})
    assert cfg.languages == ("eng", "kor") and cfg.every_s == 2.0 and cfg.max_frames == O.OcrConfig().max_frames
    assert O.OcrConfig.from_config(None) == O.OcrConfig()
    with pytest.raises(ValueError) as e:
        O.OcrConfig.from_config({"langs": "eng", "every": 1})
    assert "\n" not in str(e.value) and "langs" in str(e.value)


def test_select_frames_one_per_interval_best_score_and_threshold():
    rng = np.random.default_rng(0)
    t = np.arange(0, 20, 0.25)
    idx = pd.DataFrame({"frame": (t * 25).astype(int), "t_s": t, "score": rng.uniform(0, 1, len(t))})
    idx.loc[idx["t_s"].between(5, 7.99), "score"] = 0.01  # no text there
    cfg = O.OcrConfig(every_s=1.0, prefilter=0.15)
    sel = select = O.select_frames(idx, cfg)
    assert list(select.columns) == ["frame", "t_s", "score"]
    bins = np.floor(sel["t_s"]).astype(int)
    assert bins.is_unique and (sel["score"] >= 0.15).all() and not bins.isin([5, 6, 7]).any()
    for b, s in zip(bins, sel["score"]):  # the best frame of its second
        assert s == idx[np.floor(idx["t_s"]).astype(int) == b]["score"].max()
    assert sel["t_s"].is_monotonic_increasing


def test_select_frames_bound_keeps_spread():
    t = np.arange(0, 3600, 1.0)
    score = np.where(t < 600, 0.95, 0.3)  # the first ten minutes look text-heavy
    idx = pd.DataFrame({"frame": (t * 25).astype(int), "t_s": t, "score": score})
    sel = O.select_frames(idx, O.OcrConfig(every_s=1.0, max_frames=100))
    assert len(sel) == 100
    hist = np.histogram(sel["t_s"], bins=6, range=(0, 3600))[0]
    assert (hist >= 10).all()  # every ten minutes still sampled


def _tsv(words):
    head = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [f"5\t1\t{i + 1}\t1\t1\t1\t{x}\t{y}\t{w}\t{h}\t{c}\t{t}" for i, (x, y, w, h, c, t) in enumerate(words)]
    return "\n".join([head, "1\t1\t0\t0\t0\t0\t0\t0\t1280\t720\t-1\t"] + rows)


def test_tsv_words_grouped_into_lines_by_geometry():
    words = [(400, 600, 120, 40, 95, "Nobody"), (530, 604, 110, 40, 96, "knows"), (650, 602, 60, 38, 94, "the"),  # one line, 3 blocks
             (100, 100, 60, 30, 90, "CAST"),
             (900, 300, 40, 40, 20, "ee"),  # clutter: low confidence
             (300, 400, 30, 30, 90, "|"), (340, 400, 20, 30, 88, "."),  # punctuation only
             (500, 200, 40, 40, 96, "こん"), (540, 200, 40, 40, 95, "にちは")]
    lines = L.lines_from_tsv(_tsv(words), 1280, 720, 55)
    texts = [ln["text"] for ln in lines]
    assert texts == ["CAST", "こんにちは", "Nobody knows the"]
    nob = lines[-1]
    assert nob["x"] == pytest.approx(400 / 1280) and nob["w"] == pytest.approx((710 - 400) / 1280) and nob["y"] == pytest.approx(600 / 720)
    assert nob["confidence"] == pytest.approx(95.0) and [w["text"] for w in nob["words"]] == ["Nobody", "knows", "the"]


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _text_picture(text: str | None, bg=(20, 20, 20), size=(640, 360), font_px=24, y=300) -> Image.Image:
    im = Image.new("RGB", size, bg)
    if text:
        ImageDraw.Draw(im).text((120, y), text, font=ImageFont.truetype(FONT, font_px), fill=(255, 255, 255))
    return im


def test_text_likelihood_separates_text_from_flat_and_smooth_pictures():
    grad = Image.fromarray(np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (360, 1))).convert("RGB")
    blank, smooth = O.text_likelihood(_jpeg(_text_picture(None))), O.text_likelihood(_jpeg(grad))
    line = O.text_likelihood(_jpeg(_text_picture("The train is late again tonight")))
    short = O.text_likelihood(_jpeg(_text_picture("CAST")))
    assert blank < 0.05 and smooth < 0.05
    assert line > 0.5 and short > O.OcrConfig().prefilter
    assert line > short


def test_tophat_gives_dark_text_on_white_for_both_polarities():
    im = np.asarray(_text_picture("MUSIC BY SAMUEL ORTIZ", bg=(140, 140, 140), y=150).convert("L"))
    out = O.tophat(im, 13)
    text = im > 240
    assert out[text].mean() < 80 and out[~text].mean() > 230  # background flattened to white, strokes dark
    card = np.full((360, 640), 235, np.uint8)  # black text on a white card: inverted first
    card[150:175, 100:104] = card[150:175, 120:124] = 10
    out = O.tophat(card, 13)
    assert out[150:175, 100:104].mean() < 80 and out[:100].mean() > 230


# ------------------------------------------------------------------------------------------ flags


def _row(t, text, x=0.3, y=0.85, w=0.4, h=0.06, conf=95.0, luma=90.0, std=50.0, line=0):
    lang, script = O.text_language(text)
    return {"frame": int(round(t * 25)), "t_s": float(t), "line": line, "text": text, "language": lang, "script": script, "confidence": conf,
            "x": x, "y": y, "w": w, "h": h, "luma_mean": luma, "luma_std": std}


def _subs_title():
    """30 s: three bottom lines shown (and spoken) at 5-7, 10-12.5, 20-21.6 s; a static bug top-left all along;
    one bottom-centred line at 25-27 that nobody speaks (a sign)."""
    rows = []
    shown = [(5, 7, "Where did you put the keys"), (10, 12.5, "We should leave before the rain"), (20, 21.6, "안녕하세요 여러분"),
             (25, 27, "EXIT ONLY")]
    for t in np.arange(0, 30, 1.0):
        rows.append(_row(t, "NEWS 24", x=0.02, y=0.03, w=0.1, h=0.04, line=0))
        for a, b, s in shown:
            if a <= t <= b:
                noisy = s if t != a + 1 else s.replace("e", "c", 1)  # an OCR misread on one frame
                rows.append(_row(t, noisy, line=1))
    return pd.DataFrame(rows), [(4.9, 7.1), (9.8, 12.6), (19.9, 21.7)]


def test_burned_in_subtitles_need_bottom_band_speech_and_changing_text():
    df, speech = _subs_title()
    out = F.flag_text(df, speech, 30.0)
    subs = out[out["burned_in_subtitle"]]
    assert set(subs["text"].str.replace("c", "e", n=1)) >= {"Where did you put the keys", "We should leave before the rain", "안녕하세요 여러분"}
    assert not out[out["text"] == "NEWS 24"]["burned_in_subtitle"].any()  # top-left bug
    assert not out[out["text"] == "EXIT ONLY"]["burned_in_subtitle"].any()  # no speech
    assert subs.groupby("text")["group"].nunique().max() == 1 and subs["group"].nunique() == 3  # misread kept in its group
    assert out[out["text"] == "NEWS 24"]["group"].nunique() == 1
    summary = F.burned_in_summary(out)
    assert summary["lines"] == 3 and summary["first_s"] == 5.0 and summary["last_s"] == 21.0 and summary["languages"] == {"en": 2, "ko": 1}
    assert 6 <= summary["seconds"] <= 10
    # the same lines without any speech: not subtitles; one line only: a static caption, not subtitles
    assert not F.flag_text(df, [], 30.0)["burned_in_subtitle"].any()
    one = df[~df["text"].str.contains("rain|안녕|keys|kcys")]
    assert not F.flag_text(one, speech, 30.0)["burned_in_subtitle"].any()


def test_rolling_groups_and_static_text():
    rows = []
    for t in range(10):
        for k, name in enumerate(["CAST", "FELIX MOREAU", "OSCAR DELGADO"]):
            y = 0.9 + 0.1 * k - 0.11 * t
            if 0 <= y <= 0.95:
                rows.append(_row(t, name, y=y, luma=25, line=k))
        rows.append(_row(t, "CHANNEL 4", y=0.05, x=0.85, w=0.1, luma=25, line=9))
    out = F.flag_text(pd.DataFrame(rows), [], 60.0)
    assert out[out["text"] != "CHANNEL 4"]["rolling"].all()
    assert not out[out["text"] == "CHANNEL 4"]["rolling"].any()
    assert out.groupby("text")["group"].nunique().eq(1).all()


def test_slates_by_vocabulary_on_dark_flat_pictures():
    rows = [_row(t, s, y=y, luma=18, std=30, line=i) for t in (0, 1, 2) for i, (s, y) in enumerate([("PROD 4471 SCENE 12 TAKE 3", 0.4), ("ROLL A007 DATE 2024-03-18", 0.5)])]
    rows += [_row(t, "DIRECTED BY CLARA NOVAK", y=0.45, luma=20, std=30) for t in (5, 6)]  # a dark card, no slate vocabulary
    rows += [_row(t, "SCENE 4 TAKE 2", y=0.45, luma=140, std=60) for t in (30, 31)]  # slate words on a bright busy picture
    rows += [_row(t, "EPISODE 4", y=0.45, luma=12, std=10) for t in (597, 598)]  # one token near the end
    rows += [_row(t, "DATE NIGHT", y=0.45, luma=12, std=10) for t in (300, 301)]  # one token in the middle
    out = F.flag_text(pd.DataFrame(rows), [], 600.0)
    flagged = set(out[out["slate"]]["text"])
    assert flagged == {"PROD 4471 SCENE 12 TAKE 3", "ROLL A007 DATE 2024-03-18", "EPISODE 4"}
    spans = F.slates(out)
    assert [(s["start_s"], s["end_s"]) for s in spans] == [(0.0, 3.0), (597.0, 599.0)]
    assert "SCENE 12" in spans[0]["text"] and "DATE 2024-03-18" in spans[0]["text"]
    # luma from a series indexed by frame instead of the columns: a bright picture is not a slate
    bright = pd.Series(200.0, index=out["frame"].unique())
    assert not F.flag_text(pd.DataFrame(rows).drop(columns=["luma_mean", "luma_std"]), [], 600.0, luma=bright)["slate"].any()


def test_flag_text_empty_and_unknown_params():
    empty = pd.DataFrame(columns=O.OCR_COLUMNS)
    out = F.flag_text(empty, [], 10.0)
    assert out.empty and {"group", "burned_in_subtitle", "slate", "rolling"} <= set(out.columns)
    assert F.slates(out) == [] and F.burned_in_summary(out)["present"] is False
    with pytest.raises(ValueError):
        F.flag_text(empty, [], 10.0, {"band": 0.7})


# ------------------------------------------------------------------------------------------ credits


def _title(dur=600.0, credits_at: float | None = 540.0, post: tuple[float, float] | None = None, opening: bool = False, roll: bool = True):
    """A constructed title: subtitles with speech in the body, optional opening cards (20-50 s), optional end credits from
    `credits_at` (black, rolling or cards, music) and an optional post-credit scene (speech, bright)."""
    rows, segs = [], []
    cut = credits_at if credits_at is not None else dur
    t_speech = 60.0
    while t_speech < cut - 20:
        segs.append({"kind": "speech", "start_s": t_speech, "end_s": t_speech + 3})
        for t in range(int(t_speech), int(t_speech + 3)):
            rows.append(_row(t, f"line {int(t_speech)} of the dialogue here", y=0.85))
        t_speech += 9
    if opening:
        segs.append({"kind": "music", "start_s": 15.0, "end_s": 55.0})
        for k, a in enumerate(range(20, 50, 6)):
            for t in range(a, a + 5):
                rows.append(_row(t, ["DIRECTED BY MARA LINDQVIST", "MUSIC BY TOMAS REYES", "WRITTEN BY NORA BAKKER", "EDITED BY OSCAR DELGADO",
                                     "CAMERA RAVI CHANDRAN"][k], y=0.45, luma=70))
    luma = np.full(int(dur) + 1, 110.0)
    if credits_at is not None:
        end = post[0] if post else dur
        segs.append({"kind": "music", "start_s": credits_at, "end_s": end})
        luma[int(credits_at):int(end)] = 22.0
        luma[int(credits_at) - 1] = 70.0  # the second that holds the cut to black
        names = [f"NAME{chr(65 + i % 26)} PERSON{chr(65 + i // 26 % 26)}" for i in range(400)]
        for t in np.arange(np.ceil(credits_at + 0.4), end, 1.0):
            if roll:  # name i enters at the bottom and moves up 0.1 of the picture a second
                shown = [(i, 1.0 + 0.12 * i - 0.1 * (t - credits_at)) for i in range(400)]
                shown = [(i, y) for i, y in shown if 0.02 < y < 0.95]
            else:  # cards of 5 names, changing every 4 s
                shown = [(int((t - credits_at) // 4) * 5 + k, 0.2 + 0.1 * k) for k in range(5)]
            for k, (i, y) in enumerate(shown):
                rows.append(_row(t, names[i], y=y, luma=22, std=30, line=k))
    if post:
        segs.append({"kind": "speech", "start_s": post[0] + 2, "end_s": post[1] - 1})
        for t in range(int(post[0] + 2), int(post[1] - 1)):
            rows.append(_row(t, "a post credit line of speech", y=0.85))
    segs.sort(key=lambda s: s["start_s"])
    df = pd.DataFrame(rows).sort_values(["t_s", "line"])
    df["line"] = df.groupby("t_s").cumcount()
    speech = [(s["start_s"], s["end_s"]) for s in segs if s["kind"] == "speech"]
    flagged = F.flag_text(df, speech, dur)
    per_second = pd.DataFrame({"t_s": np.arange(len(luma), dtype=float), "luma_mean": luma})
    return flagged, per_second, segs


@pytest.mark.parametrize("roll", [True, False])
def test_end_credits_start_refined_to_the_cut(roll):
    flagged, ps, segs = _title(credits_at=540.3, roll=roll)
    out = C.detect_credits(flagged, ps, segs, 600.0)
    end = out["end"]
    assert end is not None and abs(end["start_s"] - 540.3) <= 1.0 and end["end_s"] == pytest.approx(600.0, abs=1.0)
    assert end["rolling"] is roll and out["next_episode_s"] == end["start_s"]
    assert any("dark" in e for e in end["evidence"]) and end["confidence"] >= 0.6
    assert out["opening"] is None


def test_post_credit_scene_keeps_next_episode_at_credits_start():
    flagged, ps, segs = _title(credits_at=500.0, post=(570.0, 600.0))
    out = C.detect_credits(flagged, ps, segs, 600.0)
    assert out["end"] is not None and abs(out["end"]["start_s"] - 500.0) <= 1.0 and out["end"]["end_s"] <= 571.0
    assert out["next_episode_s"] == out["end"]["start_s"]


def test_no_credits_gives_none_not_a_guess():
    flagged, ps, segs = _title(credits_at=None)
    out = C.detect_credits(flagged, ps, segs, 600.0)
    assert out["end"] is None and out["opening"] is None and out["next_episode_s"] is None
    # nor on a title with no text at all
    empty = F.flag_text(pd.DataFrame(columns=O.OCR_COLUMNS), [], 600.0)
    none = C.detect_credits(empty, ps, segs, 600.0)
    assert none["end"] is None and none["opening"] is None and none["next_episode_s"] is None


def test_opening_cards_found_and_dark_speech_text_is_not_end_credits():
    flagged, ps, segs = _title(credits_at=None, opening=True)
    out = C.detect_credits(flagged, ps, segs, 600.0)
    op = out["opening"]
    assert op is not None and op["start_s"] == 20.0 and 48.0 <= op["end_s"] <= 51.0 and out["end"] is None
    # a dark scene with dialogue at the end: text, dark, but speech: not credits
    flagged2, ps2, segs2 = _title(credits_at=None)
    ps2.loc[ps2["t_s"] >= 540, "luma_mean"] = 20.0
    assert C.detect_credits(flagged2, ps2, segs2, 600.0)["end"] is None
    with pytest.raises(ValueError):
        C.detect_credits(flagged, ps, segs, 600.0, {"dark": 3})
