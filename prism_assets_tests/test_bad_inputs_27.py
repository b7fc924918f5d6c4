"""Bad inputs found by a probe (issue 27, item 7; item 5's demo language column): a rolling wall of credits
read as slates, two titles claiming one episode (and a re-delivery moving a title to another episode) accepted
silently, digitally silent tracks called music and effects, `unknown` roles without evidence, numpy
RuntimeWarnings on a 1x1 video, and the demo's language column showing the recogniser's guess for a title
without speech. Unit tests on constructed inputs; the media tests (ffmpeg, tesseract) are integration."""

from __future__ import annotations

import io
import subprocess
import warnings
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_resources
from prism_assets.localization.roles import ROLES, TrackEvidence, decide_roles
from prism_assets.localization.tracks import evidence
from prism_assets.structure import credits as C
from prism_assets.structure import ocr as O
from prism_assets.structure import text_flags as F
from prism_assets.structure.assets import compute_structure
from prism_assets.structure.scenes import shot_colour_features

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
JOBS = ["PRODUCER", "DIRECTOR", "EXECUTIVE PRODUCER", "DIRECTOR OF PHOTOGRAPHY", "CAMERA OPERATOR", "EDITOR", "PRODUCTION DESIGNER",
        "CO-PRODUCER", "ASSISTANT DIRECTOR", "SCRIPT SUPERVISOR", "SOUND MIXER", "CASTING DIRECTOR", "LINE PRODUCER", "COSTUME DESIGNER"]
NAMES = ["Mara Lindqvist", "Tomas Reyes", "Ingrid Okafor", "Felix Moreau", "Hana Kowalski", "Oscar Delgado", "Lena Fischer",
         "Ravi Chandran", "Nora Bakker", "Julian Weiss", "Clara Novak", "Samuel Ortiz", "Eva Lindholm", "Marco Ricci"]


def _row(t, text, y, x=0.3, w=0.4, h=0.06, conf=95.0, luma=11.0, std=50.0, line=0):
    lang, script = O.text_language(text)
    return {"frame": int(round(t * 25)), "t_s": float(t), "line": line, "text": text, "language": lang, "script": script, "confidence": conf,
            "x": x, "y": y, "w": w, "h": h, "luma_mean": luma, "luma_std": std}


def _wall() -> list[str]:
    lines = []
    for i in range(70):
        lines += [JOBS[i % len(JOBS)], NAMES[(i * 5) % len(NAMES)]]
    return lines


# ------------------------------------------------------------------------------------------ 1. a rolling wall of credits


def _crawl_rows(dur: float, speed: float, spacing: float = 0.09, times=None) -> pd.DataFrame:
    """OCR rows of a credits crawl on black: line i at y = 1 + i * spacing - speed * t (fractions of the height)."""
    rows = []
    wall = _wall()
    for t in times if times is not None else np.arange(0.96, dur, 0.96):
        shown = [(i, 1.0 + i * spacing - speed * t) for i in range(len(wall))]
        for k, (i, y) in enumerate([(i, y) for i, y in shown if 0.02 < y < 0.95]):
            rows.append(_row(round(float(t), 2), wall[i], y=y, line=k))
    return pd.DataFrame(rows)


PICKED = [0.96, 1.44, 2.40, 3.36, 4.32, 5.28, 6.24, 7.68, 8.16, 9.12]  # the OCR'd times of a real crawl (best frame per second)


@pytest.mark.parametrize("speed, times, tracked", [
    (0.7, None, True),  # 250 px/s at 360 p, one OCR'd frame every 0.96 s: each line on two frames
    (1.1, PICKED, True),  # 400 px/s: lines seen twice only where two OCR'd frames are 0.48 s apart
    (1.1, None, False),  # 400 px/s every 0.96 s: each line once, no motion to see; still no slate
])
def test_fast_crawl_of_job_titles_is_end_credits_not_slates(speed, times, tracked):
    df = _crawl_rows(10.0, speed, times=times)
    flagged = F.flag_text(df, [], 10.0)
    assert F.slates(flagged) == [] and not flagged["slate"].any()
    if not tracked:
        return
    per_second = pd.DataFrame({"t_s": np.arange(11, dtype=float), "luma_mean": 11.0})
    out = C.detect_credits(flagged, per_second, [{"kind": "music", "start_s": 0.0, "end_s": 10.0}], 10.0)
    end = out["end"]
    assert end is not None and end["start_s"] <= 1.0 and end["end_s"] >= 9.5 and end["rolling"], out
    assert out["next_episode_s"] == end["start_s"] and out["opening"] is None and end["evidence"]


def test_credit_cards_with_job_titles_are_not_slates_but_a_real_slate_is():
    rows = []
    # static credit cards (2 s each) in the last 15 s: job titles carry DIRECTOR / CAMERA / PRODUCTION
    for a, card in [(586, ("DIRECTOR OF PHOTOGRAPHY", "Tomas Reyes")), (588, ("CAMERA OPERATOR", "Lena Fischer")),
                    (590, ("PRODUCTION DESIGNER", "Ingrid Okafor")), (592, ("CASTING DIRECTOR", "Marco Ricci"))]:
        for t in (a, a + 1):
            rows += [_row(t, card[0], y=0.40, line=0), _row(t, card[1], y=0.48, line=1)]
    # a slate card at the head that holds still
    rows += [_row(t, s, y=y, luma=18, std=30, line=i) for t in (0, 1, 2)
             for i, (s, y) in enumerate([("PROD 4471 SCENE 12 TAKE 3", 0.4), ("ROLL A007 DATE 2024-03-18", 0.5)])]
    out = F.flag_text(pd.DataFrame(rows), [], 600.0)
    assert set(out[out["slate"]]["text"]) == {"PROD 4471 SCENE 12 TAKE 3", "ROLL A007 DATE 2024-03-18"}
    assert [(s["start_s"], s["end_s"]) for s in F.slates(out)] == [(0.0, 3.0)]
    assert F.slate_tokens("DIRECTOR OF PHOTOGRAPHY  CAMERA OPERATOR") == set()
    assert F.slate_tokens("DIRECTOR J SMITH  CAMERA A") == {"DIRECTOR", "CAMERA"}


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-600:]


@pytest.mark.integration
def test_rolling_wall_of_credits_media_gives_end_credits_and_no_slate(tmp_path):
    """A 10-s wall of job titles and names rolling up at 250 px/s (drawtext, DejaVu) OCR'd like the pipeline does."""
    from prism_assets_tests.support.text_media import extract_frames

    (tmp_path / "wall.txt").write_text("\n".join(sum(([j, n, ""] for j, n in zip(_wall()[::2], _wall()[1::2])), [])))
    video = tmp_path / "wall.mp4"
    vf = (f"drawtext=fontfile={FONT}:textfile={tmp_path / 'wall.txt'}:fontsize=22:fontcolor=white:line_spacing=10:"
          "x=(w-text_w)/2:y=360-t*250")
    _run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=640x360:r=25:d=10", "-vf", vf, "-c:v", "libx264",
          "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(video)])
    cfg = O.OcrConfig(every_s=1.0, workers=2, languages=("eng",))
    frames = extract_frames(video, list(range(0, 250, 12)), 25)
    index = pd.DataFrame({"frame": [f for f, _, _ in frames], "t_s": [t for _, t, _ in frames], "score": [O.text_likelihood(j) for _, _, j in frames]})
    chosen = O.select_frames(index, cfg)
    jpeg = {f: j for f, _, j in frames}
    text, _ = O.ocr_frames([(int(r.frame), float(r.t_s), jpeg[int(r.frame)]) for r in chosen.itertuples()], cfg)
    assert len(text) >= 40 and text["text"].str.contains("PRODUC").any()
    flagged = F.flag_text(text, [], 10.0)
    assert F.slates(flagged) == [] and not flagged["slate"].any()
    per_second = pd.DataFrame({"t_s": [int(t) for _, t, _ in frames], "luma_mean": [float(O._grey(j).mean()) for _, _, j in frames]})
    per_second = per_second.groupby("t_s", as_index=False).mean()
    out = C.detect_credits(flagged, per_second, [{"kind": "music", "start_s": 0.0, "end_s": 10.0}], 10.0)
    assert out["end"] is not None and out["end"]["start_s"] <= 1.5 and out["end"]["end_s"] >= 9.5, out


# ------------------------------------------------------------------------------------------ 2. episode claims


def _sc(settings, cat, title_id):
    log = SimpleNamespace(info=lambda *_: None, warning=lambda *_: None)
    return SimpleNamespace(title_id=title_id, config={}, log=log, catalog=cat, storage=build_resources(settings)["storage"],
                           profile=SimpleNamespace(name="test"), provenance=None,
                           producer=lambda code_version=None, model=None, **extra: {"code_version": code_version, "model": model, **extra})


def _structure(settings, cat, title_id, series, day):
    text = F.flag_text(pd.DataFrame(columns=O.OCR_COLUMNS), [], 60.0)
    src = {"duration_s": 60.0, "series": series, "delivery_date": day, "provider": None}
    sc = _sc(settings, cat, title_id)
    doc = compute_structure(sc, text, pd.DataFrame({"start_s": [], "end_s": []}), pd.DataFrame({"t_s": [], "luma_mean": []}), {}, {}, src).value
    sc.storage.artifacts().write(ArtifactStore.base_key("structure", title_id), doc)  # what the IO manager does
    return doc


def _series(ep, season=1):
    return {"series_id": "harbour", "season": season, "episode": ep, "season_key": f"harbour.S{season}"}


def test_two_titles_claiming_one_episode_and_a_changed_episode_are_reported(settings):
    cat = Catalog(settings.catalog_url)
    cat.record_deliveries([DeliveryRecord(t, date(2026, 11, 20), f"/d/{t}.mp4") for t in ("ep3a", "ep3b", "ep4")])
    for t, ep in (("ep3a", 3), ("ep3b", 3), ("ep4", 4)):
        cat.update_title(t, series_id="harbour", season=1, episode=ep)
    assert cat.episode_claims("harbour", 1, 3, exclude="ep3a") == ["ep3b"]
    assert cat.episode_claims("harbour", 1, 4, exclude="ep4") == [] and cat.episode_claims("harbour", 1, None) == []

    doc = _structure(settings, cat, "ep3b", _series(3), "2026-11-20")
    claimed = [e for e in doc["events"] if e["kind"] == "episode_claimed_twice"]
    assert len(claimed) == 1 and claimed[0]["severity"] == "warn" and "ep3a" in claimed[0]["detail"]
    assert claimed[0]["metrics"]["other_titles"] == ["ep3a"] and 0.0 == claimed[0]["start_s"] <= claimed[0]["end_s"] == 60.0
    assert not [e for e in _structure(settings, cat, "ep4", _series(4), "2026-11-20")["events"] if e["kind"].startswith("episode_")]

    # a re-delivery of ep4 that says it is episode 5: noted with the old and the new place, for that delivery
    cat.update_title("ep4", episode=5)
    doc = _structure(settings, cat, "ep4", _series(5), "2026-11-27")
    changed = [e for e in doc["events"] if e["kind"] == "episode_changed"]
    assert len(changed) == 1 and changed[0]["severity"] == "warn"
    assert "harbour S1E4" in changed[0]["detail"] and "harbour S1E5" in changed[0]["detail"] and "2026-11-27" in changed[0]["detail"]
    assert doc["series_changes"] == [{"from": {"series_id": "harbour", "season": 1, "episode": 4},
                                      "to": {"series_id": "harbour", "season": 1, "episode": 5}, "delivery_date": "2026-11-27"}]
    # the same delivery processed again keeps the note; the next delivery does not repeat it, the history stays
    again = _structure(settings, cat, "ep4", _series(5), "2026-11-27")
    assert [e["kind"] for e in again["events"]] == ["episode_changed"]
    later = _structure(settings, cat, "ep4", _series(5), "2026-12-04")
    assert later["events"] == [] and len(later["series_changes"]) == 1


# ------------------------------------------------------------------------------------------ 3./4. roles


def test_digitally_silent_track_is_silent_not_music_and_effects():
    analysis = [{"track": 0, "stream_index": 1, "duration_s": 120.0, "language_tag": "eng", "silent": False, "digital_silence": False},
                {"track": 1, "stream_index": 2, "duration_s": 120.0, "language_tag": None, "silent": True, "digital_silence": True},
                {"track": 2, "stream_index": 3, "duration_s": 120.0, "language_tag": None, "silent": True, "digital_silence": False}]
    transcript = [{"track": 0, "speech_regions": [{"start_s": 5.0, "end_s": 60.0}], "language": "en", "language_probability": 0.95},
                  {"track": 1, "speech_regions": []}, {"track": 2, "speech_regions": []}]
    probe = [{"index": 1, "default": True}, {"index": 2, "title": "M&E"}, {"index": 3}]
    d = {x.index: x for x in decide_roles(evidence(analysis, transcript, probe), "en")}
    assert "silent" in ROLES
    assert d[0].role == "original"
    assert d[1].role == "silent" and any("digitally silent" in e for e in d[1].evidence) and any("M&E" in e for e in d[1].evidence)
    assert d[2].role == "silent" and any("-70 LUFS" in e for e in d[2].evidence)


@pytest.mark.parametrize("tracks", [
    [TrackEvidence(0, 6.0, 0.0)],  # short, no speech: too short for music and effects
    [TrackEvidence(0, 60.0, 3.0)],  # some speech, under the 5 s a language needs, over 2 % for M&E
    [TrackEvidence(0, 0.0, 0.0)],  # nothing decoded
    [TrackEvidence(0, 60.0, 30.0, detected_language="en", language_probability=0.9, default=True),
     TrackEvidence(1, 60.0, 30.0, detected_language="de", language_probability=0.9)],  # a second speech track not aligned
])
def test_every_role_has_evidence_unknown_included(tracks):
    for d in decide_roles(tracks, None):
        assert d.role in ROLES and d.evidence and all(isinstance(e, str) and e for e in d.evidence), d


# ------------------------------------------------------------------------------------------ 5. a 1x1 video


def test_tiny_pictures_give_no_runtime_warning():
    def jpeg(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (120, 40, 200)).save(buf, "JPEG")
        return buf.getvalue()

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        feats = shot_colour_features([(0, jpeg(1, 1)), (0, jpeg(3, 2)), (1, jpeg(64, 36))])
    assert set(feats) == {0, 1} and all(np.isfinite(v).all() for v in feats.values())


@pytest.mark.integration
def test_one_pixel_video_through_the_pipeline_raises_no_runtime_warning(settings, tmp_path):
    """A 1x1 clip (3 s) with a tone and a digitally silent second track, from the probe through the visual and audio
    passes, localization, OCR, scenes, structure, posters and QC: no RuntimeWarning, the silent track is `silent` and
    the tone (3 s, no speech) is `unknown` with its reason."""
    from dagster import DagsterInstance, materialize

    from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
    from prism_assets_tests.support import signal_assets

    clip = tmp_path / "one.mkv"
    _run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=16x16:r=25:d=3,scale=1:1", "-f", "lavfi", "-i", "sine=f=440:d=3",
          "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=3", "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264",
          "-pix_fmt", "yuv444p", "-c:a", "aac", "-t", "3", str(clip)])
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", ["one"])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord("one", date(2026, 11, 20), str(clip))])
    keys = ("source_video", "frame_stats", "shots", "keyframes", "embeddings", "shot_embeddings", "audio_stats", "transcript", "audio_analysis",
            "subtitles", "localization", "text", "scenes", "structure", "posters", "qc")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        result = materialize(signal_assets(settings, *keys), partition_key="one", instance=instance, resources=build_resources(settings),
                             tags={TAG_DELIVERY_URI: str(clip), TAG_DELIVERY_DATE: "2026-11-20"}, raise_on_error=False)
    assert result.success
    runtime = [f"{Path(w.filename).name}:{w.lineno}: {w.message}" for w in got if issubclass(w.category, RuntimeWarning)]
    assert runtime == []
    arts = build_resources(settings)["storage"].artifacts()
    audio = arts.read(ArtifactStore.base_key("audio_analysis", "one"))
    assert [t["digital_silence"] for t in audio["tracks"]] == [False, True]
    loc = arts.read(ArtifactStore.base_key("localization", "one"))
    roles = {a["track"]: a for a in loc["audio_tracks"]}
    assert roles[1]["role"] == "silent" and any("digitally silent" in e for e in roles[1]["role_evidence"])
    assert roles[0]["role"] == "unknown" and roles[0]["role_evidence"]


# ------------------------------------------------------------------------------------------ 6. the demo's language column


def test_demo_language_column_follows_audio_json(settings):
    from rich.console import Console

    from prism_assets.cli.demo import _summary, language_cell

    assert language_cell(None) == "-" and language_cell({"no_audio": True, "tracks": []}) == "-"
    assert language_cell({"tracks": [{"language": None}, {"language": None}]}) == "none"
    assert language_cell({"tracks": [{"language": "en"}, {"language": "de"}, {"language": "en"}]}) == "en,de"
    arts = build_resources(settings)["storage"].artifacts()
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord("mute", date(2026, 11, 20), "/d/mute.mp4")])
    arts.write(ArtifactStore.base_key("source_video", "mute"), {"duration_s": 4.0, "fps": 25.0, "width": 640, "height": 360,
                                                               "audio_tracks": [{"index": 1}], "flags": []})
    arts.write(ArtifactStore.base_key("transcript", "mute"), {"language": "en", "segments": []})  # the recogniser's guess
    arts.write(ArtifactStore.base_key("audio_analysis", "mute"), {"no_audio": False, "tracks": [{"track": 0, "language": None}]})
    console = Console(width=250, record=True)
    console.print(_summary(settings, ["mute"], date(2026, 11, 20)))
    row = next(line for line in console.export_text().splitlines() if "mute" in line)
    cells = [c.strip() for c in row.split("│")]
    assert "none" in cells and "en" not in cells, row


def test_demo_status_of_a_title_held_by_its_qc_verdict(settings, monkeypatch):
    """A title whose every step ran but whose QC verdict is fail cannot ship: the demo's status says so, never "ok"."""
    import io
    from datetime import date
    from types import SimpleNamespace

    from rich.console import Console

    from prism_assets.catalog import connect
    from prism_assets.cli.demo import _summary

    cat = connect(settings.catalog_url)
    monkeypatch.setattr(type(cat), "qc_result", lambda self, tid: SimpleNamespace(verdict={"held": "fail", "fine": "pass"}[tid]))
    out = io.StringIO()
    Console(file=out, width=250).print(_summary(settings, ["held", "fine"], date(2026, 11, 20)))
    rows = {line.split("│")[1].strip(): line for line in out.getvalue().splitlines() if line.startswith("│")}
    assert rows["held"].split("│")[-2].strip() == "held: QC fail", out.getvalue()
    assert rows["fine"].split("│")[-2].strip() == "ok", out.getvalue()
