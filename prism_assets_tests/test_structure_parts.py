"""The structure domain's glue (unit): QC events by provider policy, posters against text/credits/slates,
per-title OCR languages, fingerprint (de)serialization, the per-second luma, and the domain's graph."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prism_assets.structure.assets import per_second_luma, title_languages
from prism_assets.structure.events import burned_in_policy, structure_events
from prism_assets.structure.ocr import OcrConfig
from prism_assets.structure.seasons import pack, unpack
from prism_assets.visual.posters import structural_spans
from prism_assets.visual.select import PosterParams, poster_score_parts, rank_posters, text_area

BURNED = {"present": True, "seconds": 6.5, "lines": 3, "first_s": 4.0, "last_s": 20.0, "languages": {"en": 3}}


def test_burned_in_subtitles_are_an_event_only_where_the_provider_forbids_them():
    cfg = {"default": "allowed", "providers": {"clean-master": "fail", "acme": "warn"}}
    doc = {"burned_in_subtitles": BURNED, "slates": []}
    assert structure_events(doc, "someone", cfg) == []
    assert structure_events(doc, None, cfg) == []
    ev = structure_events(doc, "clean-master", cfg)
    assert [(e["kind"], e["severity"]) for e in ev] == [("burned_in_subtitles", "fail")]
    assert ev[0]["start_s"] == 4.0 and ev[0]["end_s"] == 20.0 and "3 line(s)" in ev[0]["detail"]
    assert structure_events({"burned_in_subtitles": {**BURNED, "lines": 0, "present": False}}, "clean-master", cfg) == []
    assert burned_in_policy("acme", cfg) == "warn"
    with pytest.raises(ValueError, match="policy"):
        burned_in_policy("x", {"default": "forbidden"})


def test_slates_are_info_events():
    ev = structure_events({"burned_in_subtitles": None, "slates": [{"start_s": 0.0, "end_s": 3.0, "text": "PROD 1 SCENE 2"}]}, None, {})
    assert [(e["kind"], e["severity"]) for e in ev] == [("slate", "info")]


def _cands(n=4):
    return pd.DataFrame({"frame": [10, 60, 110, 160][:n], "t_s": [0.4, 2.4, 4.4, 6.4][:n], "sharpness": [500.0] * n, "exposure": [0.9] * n,
                         "luma_std": [50.0] * n, "colorfulness": [30.0] * n, "width": [640] * n, "height": [360] * n, "offset": [0] * n,
                         "length": [1] * n})


def test_text_on_a_poster_candidate_lowers_its_score_and_shows_in_its_parts():
    cands = _cands()
    text = pd.DataFrame({"frame": [60, 60, 110], "t_s": [2.4, 2.4, 4.4], "w": [0.5, 0.3, 0.5], "h": [0.06, 0.05, 0.06],
                         "confidence": [92.0, 90.0, 40.0]})  # frame 110: a low-confidence texture read, not text
    area = text_area(cands, text)
    assert area.tolist() == pytest.approx([0.0, 0.045, 0.0, 0.0])
    p = PosterParams(count=4, min_gap_s=0.0)
    parts = poster_score_parts(cands, p, text)
    assert parts["text_free"].tolist() == pytest.approx([1.0, 0.0, 1.0, 1.0])
    shots = pd.DataFrame({"start_frame": [0], "end_frame": [200]})
    df = rank_posters(cands, parts, pd.Series([""] * 4), shots, p)
    assert df.iloc[-1]["frame"] == 60 and df.iloc[-1]["score_text_free"] == 0.0  # same picture otherwise: the one with text ranks last
    no_ocr = poster_score_parts(cands, p, None)
    assert no_ocr["text_free"].isna().all()  # no OCR at all: the part is absent, not a penalty
    assert rank_posters(cands, no_ocr, pd.Series([""] * 4), shots, p)["score_text_free"].isna().all()


def test_credits_and_slates_are_excluded_from_posters():
    structure = {"credits": {"opening": None, "end": {"start_s": 30.0, "end_s": 44.0}}, "slates": [{"start_s": 0.0, "end_s": 3.0, "text": "x"}]}
    text = pd.DataFrame({"t_s": [12.0, 13.0], "slate": [True, False]})
    spans = structural_spans(structure, text)
    assert (30.0, 44.0, "end_credits") in spans and (0.0, 3.0, "slate") in spans and (12.0, 12.0, "slate") in spans
    assert structural_spans(None, None) == []


def test_ocr_languages_follow_the_title():
    loc = {"audio_tracks": [{"language": "en"}, {"language": None}], "subtitle_tracks": [{"language": "kor"}]}
    codes = title_languages({"original_language": None, "expected_languages": ["ja-JP"]}, loc)
    assert codes == {"en", "kor", "ja-jp"}
    assert OcrConfig().for_title(codes).languages == ("eng", "kor", "jpn")
    assert OcrConfig().for_title({"en", "fr"}).languages == ("eng",)  # fra is not among the configured packs
    assert OcrConfig(languages_by_title=False).for_title({"en"}).languages == ("eng", "kor", "jpn")


def test_fingerprint_round_trips_through_json_with_dtypes_and_shapes():
    fp = {"items": np.array([1, 2**32 - 1], dtype=np.uint32), "item_s": 0.1238, "envelope": {"db": np.arange(30, dtype=np.uint8).reshape(2, 15),
                                                                                             "hop_s": 0.02},
          "hash": np.array([2**64 - 1, 7], dtype=np.uint64), "t_s": np.array([0.0, 1.0])}
    back = unpack(json.loads(json.dumps(pack(fp))))
    assert back["items"].dtype == np.uint32 and back["items"].tolist() == [1, 2**32 - 1]
    assert back["envelope"]["db"].shape == (2, 15) and back["envelope"]["db"].dtype == np.uint8
    assert back["hash"].tolist() == [2**64 - 1, 7] and back["item_s"] == 0.1238 and back["t_s"].dtype == np.float64


def test_per_second_luma():
    fs = pd.DataFrame({"t_s": [0.0, 0.5, 1.0, 1.5, 2.2], "luma_mean": [10.0, 20.0, 100.0, 110.0, 5.0]})
    out = per_second_luma(fs)
    assert out["t_s"].tolist() == [0.0, 1.0, 2.0] and out["luma_mean"].tolist() == [15.0, 105.0, 5.0]
    assert len(per_second_luma(fs.iloc[:0])) == 0


def test_domain_graph_and_partitions():
    from prism_assets.core.domain import load_domain
    from prism_assets.core.signal import SEASONS, TITLES

    d = load_domain("prism_assets.structure")
    by = {s.name: s for s in d.signals}
    assert set(by) == {"text", "scenes", "structure", "fingerprint", "season_structure"}
    assert by["season_structure"].partitions == SEASONS and by["season_structure"].deps == ("fingerprint", "structure")  # the season waits for its episodes' structure
    assert all(by[n].partitions == TITLES for n in ("text", "scenes", "structure", "fingerprint"))
    assert by["structure"].outputs[0].qc_events is not None  # its events join the QC verdict
    assert by["fingerprint"].outputs[0].required  # titles outside a series get it as not applicable (never missing for ever)


def test_a_film_gets_a_not_applicable_fingerprint_that_passes_its_checks():
    """BUG: every film showed `fingerprint` missing for ever in the Dagster UI (the step skipped it)."""
    from types import SimpleNamespace

    from prism_assets.structure.checks import FINGERPRINT_RULES
    from prism_assets.structure.seasons import compute_fingerprint

    sc = SimpleNamespace(title_id="film1", profile=SimpleNamespace(name="dev"))
    res = compute_fingerprint(sc, {"tracks": []}, pd.DataFrame(), {}, {"duration_s": 12.5, "series": None})
    doc = res.value
    assert doc["applicable"] is False and doc["series"] is None and doc["audio"] is None and "not part of a series" in doc["note"]
    assert res.metadata["applicable"] is False and res.metadata["not_applicable"].startswith("not applicable")
    assert all(rule.fn(doc)[0] for rule in FINGERPRINT_RULES)
    episode_without_audio = {**doc, "applicable": True}
    assert not next(r for r in FINGERPRINT_RULES if r.name == "fingerprint_has_audio").fn(episode_without_audio)[0]
