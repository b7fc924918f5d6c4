"""Structure signals through the CLI as a user runs them (`prism process` + `prism export`): a title with a
slate, burned-in lines (one Korean), opening cards and rolling end credits; and a season whose episodes
arrive out of order (a late episode updates the season)."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prism_assets_tests.support.season_media import make_season
from prism_assets_tests.support.text_media import make_text_title

pytestmark = pytest.mark.e2e

PRISM = str(Path(sys.executable).parent / "prism")


def prism(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([PRISM, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(a.casefold().split()), " ".join(b.casefold().split())).ratio()


def test_text_credits_slate_and_burned_in_subtitles(data_dir, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    video = folder / "credits_title.mp4"
    truth = make_text_title(video, 0, credits=True, cjk="ko")
    (folder / "credits_title.json").write_text(json.dumps({"title": "Credits", "provider": "clean-master", "expected_languages": ["en", "ko"]}))
    p = prism("process", str(video), "--title-id", "credits_title")
    assert "burned_in_subtitles" in p.stdout  # the provider forbids them: a QC finding in the verdict's reasons
    out = tmp_path / "export"
    prism("export", "credits_title", "--to", str(out))

    text = pd.read_parquet(out / "text.parquet")
    model = text.attrs["producer"]["model"]
    assert model["engine"] == "tesseract" and model["version"] and model["languages"] == ["eng", "kor"]  # English + the title's Korean
    for sub in truth["subtitles"]:  # every spoken line is read and flagged as burned in, the Korean one as Korean
        near = text[(text["t_s"] >= sub["start_s"] - 0.5) & (text["t_s"] <= sub["end_s"] + 0.5)]
        best = max(near.itertuples(), key=lambda r: ratio(r.text, sub["text"]))
        assert ratio(best.text, sub["text"]) >= 0.8 and best.burned_in_subtitle, (sub, best)
        assert best.language == sub["language"]
    structure = json.loads((out / "structure.json").read_text())
    end = structure["credits"]["end"]
    assert end is not None and abs(end["start_s"] - truth["end_credits"]["start_s"]) <= 2.0 and end["rolling"]
    assert structure["next_episode_s"] == end["start_s"]
    assert structure["credits"]["opening"] is not None
    slate = structure["slates"][0]
    assert slate["start_s"] < truth["slate"]["end_s"] and max(ratio(slate["text"], line) for line in truth["slate"]["lines"]) >= 0.5
    posters = pd.read_parquet(out / "posters.parquet")
    assert not any(end["start_s"] <= t <= end["end_s"] or t <= truth["slate"]["end_s"] for t in posters["t_s"])  # never credits or a slate
    assert "score_text_free" in posters
    qc = json.loads((out / "qc.json").read_text())
    assert any(e["kind"] == "burned_in_subtitles" and e["severity"] == "warn" for e in qc["events"])
    scenes = pd.read_parquet(out / "scenes.parquet")
    assert len(scenes) >= 1 and sorted(s for shots in scenes["shots"] for s in shots) == list(range(len(pd.read_parquet(out / "shots.parquet"))))


def test_a_late_episode_updates_its_season(data_dir, tmp_path):
    truth = make_season(tmp_path / "season", 2, seed=21, series_id="E2E-SHOW", cold_open_max_s=8.0, body_s=(12.0, 16.0))
    ep1, ep2 = truth["episodes"]
    p = prism("process", ep2["video"], "--title-id", ep2["title_id"])  # episode 2 arrives first
    assert "season E2E-SHOW.S01: 1 episode(s), 0 intro(s)" in p.stdout
    prism("export", ep2["title_id"], "--to", str(tmp_path / "alone"))
    alone = json.loads((tmp_path / "alone" / "season.json").read_text())
    assert alone["season_key"] == "E2E-SHOW.S01" and alone["episode"]["intro"] is None  # one episode: nothing to match yet
    p = prism("process", ep1["video"], "--title-id", ep1["title_id"])  # the late episode: the season is recomputed
    assert "season E2E-SHOW.S01: 2 episode(s), 2 intro(s)" in p.stdout
    for ep in (ep1, ep2):
        prism("export", ep["title_id"], "--to", str(tmp_path / ep["title_id"]))
        row = json.loads((tmp_path / ep["title_id"] / "season.json").read_text())["episode"]
        assert abs(row["intro"]["start_s"] - ep["intro"]["start_s"]) <= 1.0 and abs(row["intro"]["end_s"] - ep["intro"]["end_s"]) <= 1.0, row
    row2 = json.loads((tmp_path / ep2["title_id"] / "season.json").read_text())["episode"]
    assert row2["recap"] is not None and row2["recap"]["from_episode"] == ep1["title_id"]
    assert abs(row2["recap"]["start_s"] - ep2["recap"]["start_s"]) <= 1.0 and abs(row2["recap"]["end_s"] - ep2["recap"]["end_s"]) <= 1.0
    title = json.loads((tmp_path / ep2["title_id"] / "title.json").read_text())
    assert title["series"] == {"series_id": "E2E-SHOW", "season": 1, "episode": 2, "season_key": "E2E-SHOW.S01"}
