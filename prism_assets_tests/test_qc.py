"""Content QC: the pure detectors on synthetic statistics, the shared composite and a held-out-style
clip (other frame rate and size) against exact ground truth, bad input through real Dagster runs,
the daily report, and the catalog verdict on SQLite and MariaDB."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetIn, DagsterInstance, Output, asset, materialize

from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.cli.common import qc_gate_only
from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_resources
from prism_assets.ingest.probe import probe_video
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI, titles_partitions
from prism_assets.qc import checks as qc_checks
from prism_assets.qc.detect import run_qc
from prism_assets.qc.thresholds import QCThresholds, load_profiles, select_profile
from prism_assets.resources import PrismStorage
from prism_assets.visual.decode import run_visual_pass

from .conftest import ffmpeg
from .support import signal_assets
from .support.qc_media import make_qc_media

DAY = "2026-11-20"


# --------------------------------------------------------------------------------------------
# synthetic statistics


def stats(n: int, fps: float = 25.0, **cols) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "frame": np.arange(n), "t_s": np.arange(n) / fps, "black_ratio": np.zeros(n), "diff": 5 + rng.random(n),
        "luma_mean": 100 + rng.random(n) * 20, "luma_std": 40 + rng.random(n) * 5, "colour_bars": np.zeros(n),
        "bar_top": np.zeros(n), "bar_bottom": np.zeros(n), "bar_left": np.zeros(n), "bar_right": np.zeros(n),
        "interlaced": np.zeros(n, bool), "corrupt": np.zeros(n, bool),
    })
    for k, v in cols.items():
        df[k] = v
    df.attrs = {"producer": {"pass_meta": {"fps": fps, "decode_errors": 0, "config": {"black_pix_th": 0.10}}}}
    return df


def source(n: int, fps: float = 25.0, audio_s: float | None = None, **kw) -> dict:
    dur = n / fps
    tracks = [] if audio_s is None else [{"track": 0, "duration_s": audio_s}]
    return {"title_id": "t", "duration_s": dur, "fps": fps, "frame_count": n, "width": 1920, "height": 1080, "audio_tracks": tracks,
            "is_vfr": False, "flags": [], "demux_error": None, **kw}


def audio(dur: float, track: int = 0, peak: float = 0.3, zero_ranges=(), quiet_ranges=()) -> pd.DataFrame:
    t = np.arange(0, dur - 1e-9, 0.01)
    p = np.full(len(t), peak, np.float32)
    z = np.zeros(len(t), bool)
    for a, b in quiet_ranges:
        p[(t >= a - 1e-9) & (t < b - 1e-9)] = 10 ** (-70 / 20)
    for a, b in zero_ranges:
        m = (t >= a - 1e-9) & (t < b - 1e-9)
        p[m], z[m] = 0.0, True
    return pd.DataFrame({"track": np.full(len(t), track, np.int32), "t_s": t, "dur_s": np.full(len(t), 0.01, np.float32),
                         "peak": p, "rms": p / 2, "digital_zero": z})


def loud(lufs=-23.0, tp=-3.0, dialogue=None, track=0, dur=None) -> dict:
    return {"no_audio": False, "tracks": [{"track": track, "duration_s": dur, "start_s": 0.0, "integrated_lufs": lufs, "true_peak_dbtp": tp,
                                           "dialogue_lufs": dialogue}]}


def profile(name: str = "ebu_r128", **thresholds):
    doc = load_profiles()
    _, prof, _ = select_profile({**doc, "default": name}, None)
    prof["thresholds"] = {**prof["thresholds"], **thresholds}
    return prof


def qc_of(st, src, au=None, an=None, prof=None):
    return run_qc(st, None, au, an, src, prof or profile(), "test", "test")


def kinds(result, kind):
    return [e for e in result["events"] if e["kind"] == kind]


def test_clean_title_passes():
    n = 250
    r = qc_of(stats(n), source(n, audio_s=10.0), audio(10.0), loud())
    assert r["verdict"] == "pass" and r["reasons"] == [] and r["events"] == [], r["events"]


def test_document_has_plain_types():
    """qc.json also feeds Dagster metadata, which rejects numpy scalars (here: a probe duration shorter than the frames)."""
    n = 250
    br = np.zeros(n)
    br[200:] = 1.0
    r = qc_of(stats(n, black_ratio=br), {**source(n, audio_s=9.9), "duration_s": 9.9}, audio(9.9), loud(-30.0))

    def walk(x):
        if isinstance(x, dict):
            return all(isinstance(k, str) and walk(v) for k, v in x.items())
        if isinstance(x, list):
            return all(walk(v) for v in x)
        return x is None or type(x) in (str, int, float, bool)

    assert walk(r) and r["duration_s"] == 10.0 and r["events"]


def test_black_like_blackdetect():
    n = 500
    br = np.zeros(n)
    br[100:150] = 1.0  # 2.0 s: reported (d=2)
    br[300:347] = 0.99  # 1.88 s: too short
    br[400:460] = 0.97  # below pic_th 0.98: not black
    r = qc_of(stats(n, black_ratio=br), source(n, audio_s=20.0), audio(20.0), loud())
    ev = kinds(r, "black")
    assert [(e["start_frame"], e["end_frame"]) for e in ev] == [(100, 149)]
    assert ev[0]["start_s"] == 4.0 and ev[0]["end_s"] == 6.0 and ev[0]["severity"] == "warn" and r["verdict"] == "warn"
    # configurable: d=1.5 also reports the 1.88 s run
    r = qc_of(stats(n, black_ratio=br), source(n, audio_s=20.0), audio(20.0), loud(), profile(black_min_s=1.5))
    assert len(kinds(r, "black")) == 2


def test_freeze_robust():
    n = 600
    d = 5 + np.random.default_rng(1).random(n)
    lm = np.linspace(80, 120, n)
    d[101:160] = 0.0  # held picture 100..159 (2.4 s)
    lm[100:160] = lm[100]
    d[130] = 0.6  # one encoder refresh inside: bridged
    d[201:280] = np.random.default_rng(2).uniform(0.8, 1.6, 79)  # camera noise on a still: not a freeze
    lm[200:280] = lm[200]
    d[301:380] = 0.15  # slow drift, tiny differences, picture changes: not a freeze (median and drift)
    lm[300:380] = np.linspace(lm[300], lm[300] + 6, 80)
    br = np.zeros(n)
    br[400:470] = 1.0  # black: black, not freeze
    d[401:470] = 0.0
    cb = np.zeros(n)
    cb[500:580] = 0.9  # colour bars: not freeze
    d[501:580] = 0.0
    st = stats(n, diff=d, luma_mean=lm, black_ratio=br, colour_bars=cb)
    st["luma_std"] = 40.0
    r = qc_of(st, source(n, audio_s=24.0), audio(24.0), loud())
    fr = kinds(r, "freeze")
    assert [(e["start_frame"], e["end_frame"]) for e in fr] == [(100, 159)], fr
    assert fr[0]["start_s"] == 4.0 and fr[0]["metrics"]["frames"] == 60
    assert len(kinds(r, "black")) == 1 and len(kinds(r, "colour_bars")) == 1
    # a held picture right after colour bars is a slate, not a freeze
    m = 200
    d2, cb2, lm2 = 5 + np.random.default_rng(4).random(m), np.zeros(m), np.linspace(80, 120, m)
    cb2[:50], d2[1:50] = 0.9, 0.0  # colour bars at the head
    d2[51:121], lm2[50:121] = 0.0, lm2[50]  # then a still card held 2.84 s
    r = qc_of(stats(m, diff=d2, luma_mean=lm2, colour_bars=cb2, luma_std=40.0), source(m, audio_s=8.0), audio(8.0), loud())
    assert [e["start_frame"] for e in kinds(r, "slate")] == [50] and not kinds(r, "freeze") and len(kinds(r, "colour_bars")) == 1


def test_silence_per_track_and_digital():
    n = 500
    au = pd.concat([audio(20.0, 0, zero_ranges=[(3.0, 5.5)], quiet_ranges=[(10.0, 11.5), (14.0, 16.2)]), audio(20.0, 1)])
    an = {"no_audio": False, "tracks": [loud()["tracks"][0], {**loud()["tracks"][0], "track": 1}]}
    src = source(n, audio_s=20.0)
    src["audio_tracks"] = [{"track": 0, "duration_s": 20.0}, {"track": 1, "duration_s": 20.0}]
    r = qc_of(stats(n), src, au, an)
    sil = kinds(r, "silence")
    assert [(e["track"], e["start_s"], e["end_s"]) for e in sil] == [(0, 3.0, 5.5), (0, 14.0, 16.2)]  # 1.5 s quiet: below d=2
    dz = kinds(r, "digital_silence")
    assert [(e["track"], e["start_s"], e["end_s"]) for e in dz] == [(0, 3.0, 5.5)]
    assert sil[0]["start_frame"] == 75 and sil[0]["end_frame"] == 136  # frames starting before end - half a frame


def test_all_silent_track_fails():
    n = 250
    r = qc_of(stats(n), source(n, audio_s=10.0), audio(10.0, zero_ranges=[(0, 10.0)]), loud(lufs=None, tp=None))
    assert r["verdict"] == "fail"
    assert any("silence" in x and "whole track" in x for x in r["reasons"]), r["reasons"]


@pytest.mark.parametrize("name, lufs, tp, dialogue, expect", [
    ("ebu_r128", -23.6, -1.5, None, set()),
    ("ebu_r128", -25.0, -1.5, None, {"loudness"}),
    ("ebu_r128", -23.0, -0.5, None, {"true_peak"}),
    ("atsc_a85", -25.8, -2.5, None, set()),
    ("atsc_a85", -21.5, -2.5, None, {"loudness"}),
    ("atsc_a85", -24.0, -1.5, None, {"true_peak"}),
    ("streaming", -20.0, -3.0, -27.5, set()),  # dialogue-gated: the integrated level does not count
    ("streaming", -27.0, -3.0, -24.0, {"loudness"}),
])
def test_loudness_profiles(name, lufs, tp, dialogue, expect):
    n = 250
    r = qc_of(stats(n), source(n, audio_s=10.0), audio(10.0), loud(lufs, tp, dialogue), profile(name))
    got = {e["kind"] for e in r["events"]}
    assert got == expect, r["events"]
    assert r["verdict"] == ("fail" if expect else "pass")


def test_profile_selected_by_provider(tmp_path):
    doc = load_profiles(overrides={"providers": {"acme-us": "atsc_a85"}})
    assert select_profile(doc, "acme-us")[0] == "atsc_a85"
    name, _, why = select_profile(doc, "other")
    assert name == "ebu_r128" and "default" in why
    assert select_profile(load_profiles(overrides={"default": "streaming"}), None)[0] == "streaming"
    with pytest.raises(ValueError, match="unknown profiles"):
        load_profiles(overrides={"providers": {"x": "nope"}})
    with pytest.raises(ValueError, match="unknown qc thresholds"):
        QCThresholds.from_config({"black_min": 2})


def test_technical_checks():
    n = 250  # 10 s at 25 fps
    base = dict(au=audio(10.0), an=loud())
    # audio 3 frames short: fail; 1 frame short: fine; 2.5 s long: fail
    r = qc_of(stats(n), source(n, audio_s=10.0 - 3 / 25), audio(10.0 - 3 / 25), loud(dur=10.0 - 3 / 25))
    assert [e["kind"] for e in r["events"]] == ["av_duration_mismatch"] and r["verdict"] == "fail"
    assert "before the picture" in r["reasons"][0]
    r = qc_of(stats(n), source(n, audio_s=10.0 - 1 / 25), audio(10.0 - 1 / 25), loud(dur=10.0 - 1 / 25))
    assert r["verdict"] == "pass"
    r = qc_of(stats(n), source(n, audio_s=12.5), audio(12.5), loud(dur=12.5))
    assert "longer than the picture" in kinds(r, "av_duration_mismatch")[0]["detail"]
    # missing audio, VFR, interlacing, decode errors, resolution and frame rate outside the spec
    r = qc_of(stats(n), source(n), None, {"no_audio": True, "tracks": []})
    assert {e["kind"] for e in r["events"]} == {"missing_audio"} and r["verdict"] == "fail"
    r = qc_of(stats(n, interlaced=np.ones(n, bool)), source(n, audio_s=10.0, is_vfr=True), **{"au": base["au"], "an": base["an"]})
    assert {e["kind"] for e in r["events"]} == {"interlaced", "vfr"} and r["verdict"] == "warn"
    st = stats(n)
    st.attrs["producer"]["pass_meta"].update(decode_errors=3, decode_error_times_s=[2.0, 2.5, 3.0])
    r = qc_of(st, source(n, audio_s=10.0), base["au"], base["an"])
    ev = kinds(r, "decode_errors")[0]
    assert ev["severity"] == "warn" and ev["start_s"] == 2.0 and ev["start_frame"] == 50
    r = qc_of(stats(n, fps=12.0), {**source(n, fps=12.0, audio_s=n / 12.0), "width": 200, "height": 100}, audio(n / 12.0), loud())
    spec = kinds(r, "video_spec")[0]
    assert "below the minimum" in spec["detail"] and "12.000 fps" in spec["detail"]
    # letterbox
    r = qc_of(stats(n, bar_top=np.full(n, 0.12), bar_bottom=np.full(n, 0.12)), source(n, audio_s=10.0), **base)
    assert [e["kind"] for e in r["events"]] == ["letterbox"] and r["verdict"] == "pass"  # info only


def test_truncated_file_fails():
    """The container header announces 10 s; picture and audio decode to 5 s: an incomplete file."""
    n = 125
    cut = source(n, audio_s=5.0, container={"duration_s": 10.0})
    r = qc_of(stats(n), cut, audio(5.0), loud(dur=5.0))
    ev = kinds(r, "truncated")
    assert len(ev) == 1 and ev[0]["severity"] == "fail" and r["verdict"] == "fail", r["events"]
    assert "ends at 5.000 s of the 10.000 s" in ev[0]["detail"] and ev[0]["metrics"]["missing_s"] == 5.0
    # within the tolerance (a header rounding, an audio tail): nothing
    for header in (5.5, 5.08):
        r = qc_of(stats(n), source(n, audio_s=5.0, container={"duration_s": header}), audio(5.0), loud(dur=5.0))
        assert not kinds(r, "truncated"), header
    # audio reaching the header's duration: the file is complete even if the picture is short (av_duration_mismatch's case)
    r = qc_of(stats(n), source(n, audio_s=10.0, container={"duration_s": 10.0}), audio(10.0), loud(dur=10.0))
    assert not kinds(r, "truncated")


@pytest.mark.integration
def test_file_cut_at_half_fails_qc(tmp_path):
    """A real faststart MP4 (header first) cut at 50 % of its bytes: 10 s announced, ~5 s decodable."""
    full = tmp_path / "full.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10", "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", "-shortest", str(full))
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    st, au, an, src = analyse(cut, tmp_path)
    r = qc_of(st, src, au, an)
    ev = kinds(r, "truncated")
    assert len(ev) == 1 and ev[0]["severity"] == "fail" and r["verdict"] == "fail", r["events"]
    assert 3.0 < ev[0]["metrics"]["decodable_s"] < 7.0 and ev[0]["metrics"]["header_s"] == pytest.approx(10.0, abs=0.1)
    st, au, an, src = analyse(full, tmp_path / "whole")
    assert not kinds(qc_of(st, src, au, an), "truncated")


def test_checks_catch_bad_documents():
    n = 250
    good = qc_of(stats(n), source(n, audio_s=10.0), audio(10.0), loud(-30))
    assert all(rule.fn(good)[0] for rule in qc_checks.QC_RULES[:3])
    bad = json.loads(json.dumps(good))
    bad["events"].append({**bad["events"][0]})  # overlapping twin
    assert not qc_checks._no_overlap(bad)[0]
    bad = json.loads(json.dumps(good))
    bad["events"][0]["end_s"] = good["duration_s"] + 5
    assert not qc_checks._inside_duration(bad)[0]
    bad = json.loads(json.dumps(good))
    bad["verdict"] = "pass"
    assert not qc_checks._verdict_consistent(bad)[0]
    assert not qc_checks.verdict_not_fail(good)[0]
    failed = qc_checks.verdict_not_fail({**good, qc_checks.PICTURES: "![plot](data:image/jpeg;base64,AA==)"})[1]
    assert failed["reason"] == good["reasons"][0] and failed[qc_checks.PICTURES].startswith("![plot]")
    assert qc_checks.PICTURES not in qc_checks.verdict_not_fail({**good, "verdict": "pass", "reasons": []})[1]


# --------------------------------------------------------------------------------------------
# real media: the passes' statistics -> QC (no further decode)


def analyse(path: Path, workdir: Path):
    from prism_assets.audio.decode import run_audio_pass

    vp = run_visual_pass(path, workdir / "v")
    st = vp.stats
    st.attrs = {"producer": {"pass_meta": vp.meta}}
    ar = run_audio_pass(path, workdir / "a")
    an = {"no_audio": not ar.tracks, "tracks": [{**t, "dialogue_lufs": None} for t in ar.tracks]}
    src = probe_video(path)
    return st, ar.stats, an, src


def test_qc_composite_ground_truth(media, tmp_path):
    gt = json.loads((media / "qc_composite.gt.json").read_text())
    st, au, an, src = analyse(media / "qc_composite.mp4", tmp_path)
    r = qc_of(st, src, au, an)
    black = [(e["start_frame"], e["end_frame"]) for e in kinds(r, "black")]
    want = [(e["first"], e["last"]) for e in gt["events"] if e["type"] == "black"]
    assert len(black) == len(want) and all(abs(a - c) <= 2 and abs(b - d) <= 2 for (a, b), (c, d) in zip(black, want)), black
    fr = kinds(r, "freeze")
    z = next(e for e in gt["events"] if e["type"] == "freeze")
    assert len(fr) == 1 and abs(fr[0]["start_frame"] - z["first"]) <= 2 and abs(fr[0]["end_frame"] - z["last"]) <= 2, fr
    sil = kinds(r, "silence")
    assert len(sil) == 1 and abs(sil[0]["start_s"] - 12.0) <= 0.1 and abs(sil[0]["end_s"] - 14.0) <= 0.1, sil
    # the composite is mastered hot: it fails EBU R128 (ffmpeg ebur128 says I = -15.1 LUFS, TP = +0.7 dBFS)
    assert {e["kind"] for e in r["events"] if e["severity"] == "fail"} == {"loudness", "true_peak"} and r["verdict"] == "fail"
    assert not kinds(r, "slate") and not kinds(r, "colour_bars")


@pytest.mark.integration
@pytest.mark.parametrize("fps, size", [(25, (480, 270)), (30, (320, 180))])
def test_held_out_style_media(tmp_path, fps, size):
    path = tmp_path / f"h{fps}.mp4"
    gt = make_qc_media(path, fps=fps, width=size[0], height=size[1], seed=fps)
    st, au, an, src = analyse(path, tmp_path)
    r = qc_of(st, src, au, an)

    def match(kind, truth, frames=True, tol=2):
        got = [(e["start_frame"], e["end_frame"]) if frames else (e["start_s"], e["end_s"]) for e in kinds(r, kind)]
        t = [tuple(x) for x in truth]
        assert len(got) == len(t), (kind, got, t)
        for (a, b), (c, d) in zip(got, t):
            assert abs(a - c) <= tol and abs(b - d) <= tol, (kind, got, t)

    match("black", gt["black"])
    match("freeze", gt["freeze"])
    match("colour_bars", gt["colour_bars"], tol=4)  # evidence is tested every 4 frames
    match("silence", gt["silence"], frames=False, tol=0.1)
    match("digital_silence", gt["digital_silence"], frames=False, tol=0.1)
    c0, c1 = gt["camera_noise_still"][0]
    assert not any(e["start_frame"] <= c1 and e["end_frame"] >= c0 for e in kinds(r, "freeze"))


def test_camera_noise_still_vs_held_still(tmp_path):
    from .test_visual import encode

    rng = np.random.default_rng(3)
    img = rng.integers(30, 220, size=(180, 320, 3)).astype(np.float32)
    img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3  # some texture
    noisy = [np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8) for _ in range(90)]
    held = [img.astype(np.uint8)] * 90
    for name, frames, expect in (("noisy", noisy, 0), ("held", held, 1)):
        p = encode(tmp_path / f"{name}.mp4", frames)
        vp = run_visual_pass(p, tmp_path / name)
        vp.stats.attrs = {"producer": {"pass_meta": vp.meta}}
        r = qc_of(vp.stats, source(90), None, {"no_audio": True, "tracks": []})
        assert len(kinds(r, "freeze")) == expect, (name, kinds(r, "freeze"), vp.stats["diff"].median())


# --------------------------------------------------------------------------------------------
# through Dagster: bad input, the catalog verdict, the blocking gate, the daily report


@asset(partitions_def=titles_partitions, group_name="audio", ins={"source_video": AssetIn()}, name="audio_stats")
def audio_stats_standin(context, source_video: dict, storage: PrismStorage):
    """Stand-in for the audio pass's audio_stats in these tests (same contract)."""
    from prism_assets.audio.decode import run_audio_pass

    ar = run_audio_pass(source_video["source_uri"], Path(storage.scratch_dir) / "audio" / context.partition_key)
    df = ar.stats
    df.attrs = {"producer": {"code_version": "test-standin", "tracks": ar.tracks}}
    return Output(df)


@asset(partitions_def=titles_partitions, group_name="audio", ins={"source_video": AssetIn()}, name="audio_analysis")
def audio_analysis_standin(context, source_video: dict, storage: PrismStorage):
    from prism_assets.audio.decode import run_audio_pass

    ar = run_audio_pass(source_video["source_uri"], Path(storage.scratch_dir) / "audio2" / context.partition_key)
    return {"no_audio": not ar.tracks, "tracks": [{**t, "dialogue_lufs": None} for t in ar.tracks]}


@asset(partitions_def=titles_partitions, group_name="audio", ins={"source_video": AssetIn()}, name="audio_loudness")
def audio_loudness_standin(context, source_video: dict, storage: PrismStorage):
    """Stand-in for the audio pass's audio_loudness (the 400 ms block powers): the loudness plots of the QC reasons."""
    from prism_assets.audio.decode import run_audio_pass

    return Output(run_audio_pass(source_video["source_uri"], Path(storage.scratch_dir) / "audio3" / context.partition_key).loudness)


@asset(partitions_def=titles_partitions, group_name="localization", ins={"source_video": AssetIn()}, name="localization")
def localization_standin(context, source_video: dict):
    """Stand-in for localization.json (no transcript here): contributes no QC event."""
    return {"events": [], "audio_tracks": [], "subtitle_tracks": []}


@asset(partitions_def=titles_partitions, group_name="structure", ins={"source_video": AssetIn()}, name="structure")
def structure_standin(context, source_video: dict):
    """Stand-in for structure.json (no OCR here): contributes no QC event."""
    return {"events": [], "credits": {"opening": None, "end": None}, "slates": []}


def qc_graph(settings):
    """The real source_video, visual_pass, shots and qc; stand-ins for the audio analysis (no transcript), localization and structure."""
    return [*signal_assets(settings, "source_video", "frame_stats", "shots", "qc"), audio_stats_standin, audio_analysis_standin,
            audio_loudness_standin, localization_standin, structure_standin]


def run_title(settings, instance, title_id: str, path: Path, day: str = DAY, sidecar: dict | None = None):
    instance.add_dynamic_partitions("titles", [title_id])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title_id, date.fromisoformat(day), str(path), sidecar=sidecar)])
    return materialize(qc_graph(settings), partition_key=title_id, instance=instance, resources=build_resources(settings), raise_on_error=False,
                       tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: day})


def qc_json(settings, title_id):
    return build_resources(settings)["storage"].artifacts().read(ArtifactStore.base_key("qc", title_id))


BAD_INPUTS = {
    # name: (ffmpeg inputs, expected verdict, expected fail kinds, words in the reasons)
    "clean": (["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=4"],
              "pass", set(), []),
    "all_black": (["-f", "lavfi", "-i", "color=c=black:s=320x180:r=25:d=4", "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=4"],
                  "fail", {"black"}, ["whole title"]),
    "all_silent": (["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=4"],
                   "fail", {"silence", "digital_silence"}, ["whole track"]),
    "no_audio": (["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=3"], "fail", {"missing_audio"}, ["no audio track"]),
    "one_frame": (["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=0.04", "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=0.04"],
                  "fail", {"too_short"}, ["1 frame"]),
    "audio_ends_early": (["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=2.5"],
                         "fail", {"av_duration_mismatch"}, ["before the picture"]),
}


@pytest.mark.integration
def test_bad_input_verdicts_and_daily_report(settings, tmp_path):
    settings = settings.with_(profile_overrides={"qc": {"gate": "block"}})  # the prod gate
    instance = DagsterInstance.ephemeral()
    cat = Catalog(settings.catalog_url)
    day_folder = Path(settings.delivery_root) / DAY  # the day's manifest lists what the delivery root holds

    def delivered(name: str) -> Path:
        (day_folder / name).mkdir(parents=True)
        return day_folder / name / f"{name}.mp4"

    for name, (inputs, verdict, fail_kinds, words) in BAD_INPUTS.items():
        p = delivered(name)
        ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *(["-c:a", "aac"] if len(inputs) > 4 else []), str(p))
        res = run_title(settings, instance, name, p)
        doc = qc_json(settings, name)  # written whatever the verdict
        assert doc["verdict"] == verdict, (name, doc["reasons"], doc["events"])
        assert {e["kind"] for e in doc["events"] if e["severity"] == "fail"} == fail_kinds, (name, doc["events"])
        assert all(any(w in r for r in doc["reasons"]) for w in words), (name, doc["reasons"])
        row = cat.qc_result(name)
        assert row.verdict == verdict and row.reasons == doc["reasons"] and row.profile == "ebu_r128"
        evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations() if e.asset_key.to_user_string() == "qc"}
        assert evals["events_inside_duration"] and evals["events_non_overlapping"] and evals["verdict_consistent"], (name, evals)
        # the blocking gate marks a failed title's run (its verdict stays materialized); others succeed
        assert evals["qc_verdict_not_fail"] == (verdict != "fail")
        assert res.success == (verdict != "fail"), name
        assert qc_gate_only(res) == (verdict == "fail"), name  # the CLI counts it as processed, with its verdict
        assert res.asset_materializations_for_node("shots"), name  # the rest of the title's run went on
        assert len(res.asset_materializations_for_node("qc")) == 1, name
    # a title delivered that day without QC yet is listed as pending; one whose processing failed, as error
    delivered("late").write_bytes(b"not processed yet")
    broken = delivered("broken")
    broken.write_bytes(b"not a video")
    assert not run_title(settings, instance, "broken", broken).success
    elsewhere = tmp_path / "elsewhere.mp4"  # registered by hand from outside the delivery root: not the day's
    elsewhere.write_bytes(b"x")
    cat.record_deliveries([DeliveryRecord("elsewhere", date.fromisoformat(DAY), str(elsewhere))])
    res = materialize(signal_assets(settings, "delivery_manifest", "qc_report"), partition_key=DAY, instance=instance, resources=build_resources(settings))
    assert res.success
    evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert all(evals.values()), evals
    meta = res.asset_materializations_for_node("qc_report")[0].metadata
    assert meta["titles"].value == len(BAD_INPUTS) + 2 and meta["fail"].value == 5 and meta["pass"].value == 1 and meta["pending"].value == 1
    assert meta["error"].value == 1
    html_path = Path(meta["qc_report.html"].value)
    csv_path = Path(meta["qc_report.csv"].value)
    html = html_path.read_text()
    assert "all_black" in html and "<img" in html
    rows = pd.read_csv(csv_path)
    assert list(rows["title_id"])[-1] == "late" and set(rows["verdict"]) == {"fail", "error", "pass", "pending"}
    assert "elsewhere" not in set(rows["title_id"])
    error_row = rows[rows["title_id"] == "broken"].iloc[0]
    assert error_row["verdict"] == "error" and "source_video: broken: not a readable media file" in error_row["reasons"], error_row["reasons"]
    black_row = rows[rows["title_id"] == "all_black"].iloc[0]
    assert black_row["n_black"] == 1 and black_row["thumbnails"].endswith(".jpg")
    thumb = html_path.parent / black_row["thumbnails"].split()[0]
    from PIL import Image

    im = Image.open(thumb)
    assert im.size[0] <= 240 and np.asarray(im.convert("L")).max() < 40  # the offending (black) frame
    # the UI's links open the report over HTTP (prism serve), thumbnails included; nothing else of the store is reachable
    from urllib.parse import urlparse

    from fastapi.testclient import TestClient

    from prism_assets.serving.app import create_app
    from prism_assets.serving.data import Data

    url = meta["open qc_report.html"].value
    assert url.startswith(settings.api_public_url) and meta["open qc_report.csv"].value.endswith("/qc_report.csv")
    client = TestClient(create_app(settings, data=Data(settings), keys=()))
    page = client.get(urlparse(url).path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "all_black" in page.text
    img = client.get(urlparse(url).path.rsplit("/", 1)[0] + "/" + black_row["thumbnails"].split()[0])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    # the day followed title by title (serving/days.py), linked from the day's materializations
    assert meta["day view"].value == f"{settings.api_public_url}/days/{DAY}"
    day = client.get(f"/v1/days/{DAY}").json()
    by = {t["title_id"]: t for t in day["titles"]}
    assert set(BAD_INPUTS) | {"late", "broken"} <= set(by), sorted(by)
    assert by["all_black"]["qc_verdict"] == "fail" and "whole title" in " ".join(by["all_black"]["qc_reasons"])
    assert by["clean"]["qc_verdict"] == "pass" and by["clean"]["state"] == "done" and by["clean"]["steps"]["qc"]["status"] == "success"
    assert by["broken"]["state"] == "failed" and by["broken"]["steps"]["source_video"]["status"] == "failed"
    assert by["late"]["state"] == "waiting" and by["late"]["steps"] == {} and by["clean"]["sla"] == "on time"
    assert by["clean"]["links"]["runs"].startswith(settings.dagster_public_url + "/runs?") and "clean" in by["clean"]["links"]["runs"]
    html_day = client.get(f"/days/{DAY}")
    assert html_day.status_code == 200 and "all_black" in html_day.text and "FAILED" in html_day.text and "WAITING" in html_day.text
    for bad_day in ("/v1/days/2026-13-01", "/v1/days/yesterday", "/days/..%2F..%2Fetc"):
        r = client.get(bad_day)
        assert r.status_code in (400, 404) and "Traceback" not in r.text, (bad_day, r.status_code)
    for bad in ("/v1/reports/2026-11-01/qc_report/..%2F..%2Fcatalog.db", "/v1/reports/x/qc_report/qc_report.html", "/v1/reports/2026-11-01/shots/main.json"):
        r = client.get(bad)
        assert r.status_code in (400, 404) and "Traceback" not in r.text, (bad, r.status_code)


@pytest.mark.integration
def test_provider_profile_through_sidecar(settings, tmp_path):
    """A sidecar's provider picks the profile: ATSC's -24 +-2 accepts a -25 LUFS tone that EBU R128 fails."""
    base = settings
    settings = base.with_(profile_overrides={"qc": {"providers": {"acme-us": "atsc_a85"}, "gate": "block"}})
    d = tmp_path / "acme"
    d.mkdir()
    p = d / "feature.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i", "aevalsrc=0.08*sin(2*PI*1000*t):s=48000:d=4",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(p))
    (d / "feature.json").write_text(json.dumps({"title": "Feature", "provider": "acme-us"}))
    instance = DagsterInstance.ephemeral()
    res = run_title(settings, instance, "acme1", p)
    doc = qc_json(settings, "acme1")
    assert doc["profile"]["name"] == "atsc_a85" and "acme-us" in doc["profile"]["selected_by"]
    assert doc["verdict"] == "pass" and res.success, doc["events"]
    settings = base.with_(profile_overrides={"qc": {"gate": "warn"}})  # the dev gate: reported, nothing held back
    res = run_title(settings, instance, "acme1", p)
    doc = qc_json(settings, "acme1")
    assert doc["profile"]["name"] == "ebu_r128" and doc["verdict"] == "fail" and [e["kind"] for e in doc["events"]] == ["loudness"]
    gate = next(e for e in res.get_asset_check_evaluations() if e.check_name == "qc_verdict_not_fail")
    assert res.success and not gate.passed and gate.severity.value == "WARN"
    # ... but the failure is red wherever an operator looks: an ERROR check (non-blocking) naming the title and the reason
    red = next(e for e in res.get_asset_check_evaluations() if e.check_name == "title_passes_qc")
    assert not red.passed and red.severity.value == "ERROR" and red.metadata["title"].value == "acme1"
    assert red.description.startswith("acme1: FAILED: verdict fail: ") and "loudness" in red.description, red.description
    ok = next(e for e in res.get_asset_check_evaluations() if e.check_name == "events_inside_duration")
    assert ok.passed and ok.description.startswith("acme1: passed"), ok.description
    tags = instance.get_run_by_id(res.run_id).tags
    assert tags["prism/qc_verdict"] == "fail" and "loudness" in tags["prism/qc_reason"] and "\n" not in tags["prism/qc_reason"]
    # the reason has its picture: the track's loudness over time against the target band, inline in the materialization
    pictures = res.asset_materializations_for_node("qc")[0].metadata["pictures"].value
    assert "FAIL loudness: track 0: integrated loudness" in pictures and "data:image/jpeg;base64," in pictures
    # ... and the failed check itself carries the reason on a line and the same pictures (the run -> failed step -> check walk)
    assert "loudness" in red.metadata["reason"].value and red.metadata["pictures"].value == pictures
    assert "pictures" not in ok.metadata  # a passed check carries none
    # from the title's materialization to its other assets and to its viewer page
    meta = res.asset_materializations_for_node("qc")[0].metadata
    assert meta["viewer"].value == f"{settings.api_public_url}/titles/acme1"
    links = meta["this title's assets"].value
    assert "[shots](/assets/shots?view=partitions&partition=acme1)" in links and "[qc](/assets/qc?view=partitions&partition=acme1)" in links
    settings = base.with_(profile_overrides={"qc": {"gate": "nope"}})
    res = run_title(settings, instance, "acme1", p)
    assert not res.success and "unknown qc.gate 'nope'" in str(res.all_events)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.integration)])
def test_catalog_qc_results(tmp_path, request, backend):
    url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" else request.getfixturevalue("mariadb_url")
    cat = Catalog(url)
    try:
        cat.record_deliveries([DeliveryRecord("t1", date(2026, 11, 1), "/d/t1.mp4")])
        cat.record_qc(title_id="t1", verdict="warn", profile="ebu_r128", reasons=["warn: black: x"], event_counts={"black": 1}, run_id="r1",
                      duration_s=10.0, delivery_date=date(2026, 11, 1), artifact_uri="/a/qc.json", code_version="qc-1")
        cat.record_qc(title_id="t1", verdict="fail", profile="atsc_a85", reasons=["fail: loudness: y"], event_counts={"loudness": 1, "black": 2},
                      run_id="r2")
        r = cat.qc_result("t1")
        assert (r.verdict, r.profile, r.events_total, r.dagster_run_id, r.reasons) == ("fail", "atsc_a85", 3, "r2", ["fail: loudness: y"])
        assert set(cat.qc_results(["t1", "nope"])) == {"t1"}
    finally:
        if backend == "mariadb":
            from sqlalchemy import inspect

            from prism_assets.catalog import repo

            with cat.engine.begin() as conn:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
                for t in inspect(cat.engine).get_table_names():
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
            repo._migrated.discard(url)
        cat.dispose()


@pytest.mark.e2e
def test_prism_process_and_export_qc_composite(data_dir, media, tmp_path):
    """End to end through the real Definitions (`prism process` runs process_title: the visual and audio
    passes, transcript, audio analysis, then qc) and `prism export`: qc.json against the ground truth."""
    from .test_cli import prism

    gt = json.loads((media / "qc_composite.gt.json").read_text())
    proc = prism("process", str(media / "qc_composite.mp4"), "--title-id", "qcc", "--date", DAY, timeout=600)
    # the composite fails EBU R128 loudness: the verdict is reported, the command still succeeds
    assert "QC verdict fail (ebu_r128)" in proc.stdout and "loudness" in proc.stdout, proc.stdout
    assert "qc.qc_verdict_not_fail did not pass" in proc.stderr
    out = tmp_path / "export"
    prism("export", "qcc", "--to", str(out))
    doc = json.loads((out / "qc.json").read_text())
    assert doc["verdict"] == "fail" and doc["producer"]["inputs"]["audio_stats"], doc["producer"]
    ev = lambda k: [e for e in doc["events"] if e["kind"] == k]  # noqa: E731
    want_black = [(e["first"], e["last"]) for e in gt["events"] if e["type"] == "black"]
    got_black = [(e["start_frame"], e["end_frame"]) for e in ev("black")]
    assert len(got_black) == 2 and all(abs(a - c) <= 2 and abs(b - d) <= 2 for (a, b), (c, d) in zip(got_black, want_black)), got_black
    fr = ev("freeze")
    assert len(fr) == 1 and abs(fr[0]["start_frame"] - 407) <= 2 and abs(fr[0]["end_frame"] - 455) <= 2, fr
    sil = ev("silence")
    assert len(sil) == 1 and abs(sil[0]["start_s"] - 12.0) <= 0.1 and abs(sil[0]["end_s"] - 14.0) <= 0.1, sil
    row = Catalog(f"sqlite:///{data_dir / 'catalog.db'}").qc_result("qcc")
    assert row.verdict == "fail" and row.delivery_date == date.fromisoformat(DAY) and row.event_counts == doc["event_counts"]


def test_definitions_wire_qc(settings):
    from datetime import datetime, timezone

    from dagster import build_schedule_context

    from prism_assets.definitions import build_definitions

    defs = build_definitions(settings)
    job_keys = {k.to_user_string() for k in defs.resolve_job_def("process_title").asset_layer.executable_asset_keys}
    assert "qc" in job_keys and "qc_report" not in job_keys
    assert {k.to_user_string() for k in defs.resolve_job_def("delivery_manifest_job").asset_layer.executable_asset_keys} == {"delivery_manifest"}
    assert {k.to_user_string() for k in defs.resolve_job_def("qc_report_job").asset_layer.executable_asset_keys} == {"qc_report"}
    graph = defs.resolve_asset_graph()
    qc_key = next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "qc")
    assert {p.to_user_string() for p in graph.get(qc_key).parent_keys} == {"frame_stats", "frame_samples", "shots", "source_video", "audio_stats",
                                                                          "audio_analysis", "audio_loudness",  # the loudness plots
                                                                          "localization", "structure"}  # they contribute events
    report_key = next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "qc_report")
    assert {p.to_user_string() for p in graph.get(report_key).parent_keys} == {"qc", "frame_samples", "delivery_manifest"}  # lineage: the day's manifest and its titles' QC
    sched = defs.get_schedule_def("daily_qc_report_schedule")
    with build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 9, tzinfo=timezone.utc), repository_def=defs.get_repository_def()) as ctx:
        req = sched.evaluate_tick(ctx).run_requests[0]
    assert req.partition_key == "2026-11-20" and req.run_key == "qc-report:2026-11-20"


def test_report_checks_catch_missing_rows():
    from prism_assets.qc.report import REPORT_COLUMNS, to_csv, to_html

    rows = [{"title_id": t, "delivery_date": DAY, "verdict": "warn", "profile": "ebu_r128", "events_total": 1, "event_counts": {"black": 1},
             "reasons": ["warn: black: x"], "thumbnails": [], "qc_artifact": None} for t in ("a", "b")]
    df = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    good = {"expected_titles": ["a", "b"], "csv": to_csv(df, ["black"]), "html": to_html(df, DAY, ["black"], {}), "files": []}
    df.attrs = good
    assert qc_checks._report_listed(df)[0]
    df.attrs = {**good, "html": to_html(df.iloc[:1], DAY, ["black"], {})}
    ok, meta = qc_checks._report_listed(df)
    assert not ok and meta["missing_in_html"] == ["b"]
    df.attrs = {**good, "expected_titles": ["a", "b", "c"]}
    assert not qc_checks._report_listed(df)[0]
    df.attrs = {**good, "files": []}
    df.at[0, "thumbnails"] = ["thumbs/a_00.jpg"]
    assert not qc_checks._report_thumbs(df)[0]


def test_freeze_right_after_slow_motion():
    """Slow motion (quiet at -60 dB, luma drifting) running straight into a held picture: the freeze is the held part only."""
    n = 300
    d = 5 + np.random.default_rng(5).random(n)
    lm = np.linspace(80, 120, n)
    d[101:150], lm[100:150] = 0.15, np.linspace(lm[100], lm[100] + 4, 50)  # slow drift, below -60 dB
    d[150:220], lm[149:220] = 0.0, lm[149]  # held from frame 149 (2.8 s)
    r = qc_of(stats(n, diff=d, luma_mean=lm, luma_std=40.0), source(n, audio_s=12.0), audio(12.0), loud())
    assert [(e["start_frame"], e["end_frame"]) for e in kinds(r, "freeze")] == [(149, 219)]


@pytest.mark.integration
@pytest.mark.parametrize("move,freezedetect_says_frozen", [
    (dict(px_per_frame=0.01), False),  # 1.25 px over 5 s at 640 px: a slow pan
    (dict(zoom_per_frame=0.00004), False),  # 0.5 % over 5 s: a slow zoom
    (dict(px_per_frame=0.0), True),  # the still held: a freeze
])
def test_slow_moves_over_a_still_are_not_freezes(media, tmp_path, move, freezedetect_says_frozen):
    """Consecutive frames of a slow pan or zoom differ as little as a held picture's (at the
    analysis size, after x264); against a reference frame, as freezedetect compares, they drift."""
    import subprocess

    import av

    from .support.qc_media import slow_move

    with av.open(str(media / "big_buck_bunny_0_30.webm")) as c:
        still = next(f for i, f in enumerate(c.decode(video=0)) if i == 600).to_ndarray(format="rgb24")
    p = slow_move(tmp_path / "m.mp4", still, **move)
    vp = run_visual_pass(p, tmp_path / "v")
    r = qc_of(vp.stats, source(125), None, {"no_audio": True, "tracks": []})
    ff = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(p), "-vf", "freezedetect=n=-60dB:d=2", "-f", "null", "-"],
                        capture_output=True, text=True, timeout=120).stderr.count("freeze_start")
    assert (ff > 0) == freezedetect_says_frozen
    assert len(kinds(r, "freeze")) == int(freezedetect_says_frozen), (kinds(r, "freeze"), vp.stats["ref_diff"].describe())
    # the case is a real one: on consecutive differences alone (statistics without ref_diff) it looks frozen
    assert len(kinds(qc_of(vp.stats.drop(columns=["ref_diff"]), source(125), None, {"no_audio": True, "tracks": []}), "freeze")) == 1


@pytest.mark.unit
def test_loudness_reason_plot_shows_the_curve_against_the_target():
    import io

    from PIL import Image

    from prism_assets.qc.plots import reason_plots, short_term

    t = np.arange(0, 20, 0.1)
    loud = pd.DataFrame({"track": 0, "t_s": t, "power": 10 ** ((-16.0 + 0.691) / 10) * np.ones_like(t)})
    secs, lufs = short_term(loud, 0)
    assert np.allclose(lufs[1:], -16.0, atol=1e-6) and secs[0] == 0 and secs[-1] == 19
    doc = {"events": [{"kind": "loudness", "severity": "fail", "track": 0, "detail": "track 0: integrated loudness -16.0 LUFS outside -23 +-1",
                       "metrics": {"measured_lufs": -16.0, "target_lufs": -23.0, "tolerance_lu": 1.0}},
                      {"kind": "black", "severity": "fail", "track": None, "detail": "black"}]}
    ((caption, jpeg),) = reason_plots(doc, loud)
    assert caption.startswith("FAIL loudness: track 0")
    img = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    assert img.shape == (220, 640, 3)
    green = (img[:, :, 1] > 220) & (img[:, :, 0] < 225) & (img[:, :, 0] > 195)  # the target band
    band_rows = np.where(green[:, 300])[0]
    blue = (img[:, :, 2] > 150) & (img[:, :, 0] < 80)  # the curve
    curve_rows = np.where(blue.any(axis=1))[0]  # (the measured value's red dashes lie on this flat curve here and there)
    assert len(band_rows) and len(curve_rows) and curve_rows.mean() < band_rows.mean()  # louder than the target: drawn above it
    assert reason_plots(doc, None) == [] and reason_plots({"events": []}, loud) == []
