"""Visual signals: the decode pass, the shot detector against exact ground truth, keyframes, posters,
embeddings through `materialize`, and bad input (corrupt packets, VFR, odd sizes, rotation, 1 frame)."""

import io
import json
import math
from datetime import date
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance
from PIL import Image

from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.cli.common import qc_gate_only
from prism_assets.definitions import build_definitions
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
from prism_assets.visual import shots as shots_mod
from prism_assets.visual.decode import VisualDecodeError, VisualPassConfig, run_visual_pass
from prism_assets.visual.packs import read_pack_bytes, read_pack_image
from prism_assets.visual.select import PosterParams, poster_exclusions, poster_score_parts, rank_posters, select_keyframes
from prism_assets.visual.shots import detect_shots, transition_frames

from .conftest import ffmpeg
from .conftest import read_artifact as read
from .support.bbb_composite import make_bbb_composite
from .support.shot_scoring import score_boundaries, shots_to_boundaries


def analyse(path: Path, workdir: Path, cfg: VisualPassConfig | None = None):
    vp = run_visual_pass(path, workdir, cfg)
    return vp, detect_shots(vp.stats, vp.meta["fps"])


def encode(path: Path, frames: list[np.ndarray], fps: int = 25, **stream_opts) -> Path:
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt = "yuv420p"
        st.options = {"crf": "16", "preset": "ultrafast"}
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return path


# --------------------------------------------------------------------------------------------
# accuracy against exact ground truth


@pytest.mark.parametrize("name", ["qc_composite.mp4", "big_buck_bunny_0_30.webm"])
def test_shots_match_shared_ground_truth(media, tmp_path, name):
    gt = json.loads((media / name.replace(".mp4", ".gt.json").replace(".webm", ".gt.json")).read_text())
    vp, shots = analyse(media / name, tmp_path)
    score = score_boundaries(shots_to_boundaries(shots), gt)
    assert score["f1"] >= 0.97, score
    assert shots["start_frame"].iloc[0] == 0 and shots["end_frame"].iloc[-1] == len(vp.stats) - 1


def test_qc_composite_transitions_are_typed(media, tmp_path):
    _, shots = analyse(media / "qc_composite.mp4", tmp_path)
    by_start = {int(r.start_frame): r for r in shots.itertuples()}
    for cut in (96, 192, 456, 480, 600, 637):
        assert by_start[cut].transition_in == "cut"
    dissolve = shots[shots["transition_in"] == "dissolve"]
    assert len(dissolve) == 1 and 240 <= dissolve["start_frame"].iloc[0] <= 263
    blacks = shots[shots["is_black"]]
    assert len(blacks) == 2
    first_black, last_black = blacks.iloc[0], blacks.iloc[1]
    assert first_black["start_frame"] == 288 and first_black["transition_in"] == "cut" and 335 <= first_black["end_frame"] <= 338
    after = shots[shots["start_frame"] == first_black["end_frame"] + 1].iloc[0]
    assert after["transition_in"] == "fade_in" and 336 <= after["start_frame"] <= 359
    assert last_black["transition_in"] == "fade_out" and 668 <= last_black["start_frame"] <= 691 and last_black["end_frame"] == 743
    # the freeze (407-455), the title overlays and the near-static bird are not boundaries
    assert not any(400 < s < 456 or 481 < s < 600 or 638 < s < 668 for s in shots["start_frame"])


@pytest.mark.integration
@pytest.mark.parametrize("seed, fps, size", [(7, 25, (480, 270)), (8, 30, (640, 360))])
def test_held_out_style_composite(tmp_path, seed, fps, size):
    """Composites built like the shared one, from other pieces of the footage, at another frame rate and size."""
    path = tmp_path / f"bbb_{seed}.mp4"
    gt = make_bbb_composite(path, fps=fps, width=size[0], height=size[1], seed=seed)
    vp, shots = analyse(path, tmp_path / "w")
    assert len(vp.stats) == gt["n_frames"]
    score = score_boundaries(shots_to_boundaries(shots), gt)
    assert score["f1"] >= 0.97, score


@pytest.mark.integration
def test_flash_and_held_frames_are_not_cuts(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(90, 160, 3), dtype=np.uint8)
    frames = []
    for i in range(75):
        f = np.roll(base, i // 3, axis=1)  # slow pan
        if i == 30:
            f = np.full_like(f, 250)  # one-frame flash
        if 45 <= i < 60:
            f = frames[44]  # held frames
        frames.append(f)
    path = encode(tmp_path / "flash.mp4", frames)
    _, shots = analyse(path, tmp_path / "w")
    assert len(shots) == 1, shots[["start_frame", "transition_in"]]


@pytest.mark.integration
def test_cut_between_shots_of_one_palette(tmp_path):
    """Two framings with the same colour histogram (the second is the first mirrored and shifted):
    the histogram says nothing, the luma spike does; a pan inside each shot is not a cut."""
    rng = np.random.default_rng(3)
    small = rng.integers(30, 220, size=(9, 32, 3), dtype=np.uint8)
    base = np.kron(small, np.ones((10, 10, 1), np.uint8))  # 90 x 320 blocky picture
    other = np.ascontiguousarray(base[:, ::-1])
    frames = [np.ascontiguousarray(np.roll(base if i < 40 else other, 2 * i, axis=1)[:, :160]) for i in range(80)]
    path = encode(tmp_path / "palette.mp4", frames)
    _, shots = analyse(path, tmp_path / "w")
    assert shots["start_frame"].tolist() == [0, 40], shots[["start_frame", "transition_in"]]
    assert shots["transition_in"].tolist() == ["start", "cut"]


def test_detector_is_swappable(media, tmp_path, monkeypatch):
    vp = run_visual_pass(media / "qc_composite.mp4", tmp_path)
    with pytest.raises(ValueError, match="unknown shot detector"):
        detect_shots(vp.stats, 24.0, detector="nope")
    with pytest.raises(ValueError, match="unknown shot detector settings"):
        detect_shots(vp.stats, 24.0, params={"cut_treshold": 3})
    # a stricter cut threshold through params changes the result: the knobs are real
    loose = detect_shots(vp.stats, 24.0)
    strict = detect_shots(vp.stats, 24.0, params={"cut_min_diff": 80.0, "cut_hist_only": 2.0})
    assert len(strict) < len(loose)
    def one_shot(stats, fps, params):  # a stand-in detector: the whole title is one shot
        n = len(stats)
        return pd.DataFrame([{"shot_index": 0, "start_frame": 0, "end_frame": n - 1, "start_s": 0.0, "end_s": n / fps, "n_frames": n,
                              "transition_in": "start", "transition_in_first": 0, "transition_in_last": 0, "transition_out": "end",
                              "transition_out_first": None, "transition_out_last": None, "is_black": False, "luma_mean": 0.0, "boundary_score": 0.0}])

    monkeypatch.setitem(shots_mod.DETECTORS, "one-shot", one_shot)
    assert len(detect_shots(vp.stats, 24.0, detector="one-shot")) == 1


# --------------------------------------------------------------------------------------------
# the pass: pictures, memory layout, keyframes, posters


def test_pass_outputs(media, tmp_path):
    vp, shots = analyse(media / "qc_composite.mp4", tmp_path)
    st, pics = vp.stats, vp.pictures
    assert len(st) == 744 and st["frame"].tolist() == list(range(744))
    assert np.isfinite(st[["luma_mean", "diff", "hist_diff", "sharpness"]].to_numpy()).all()
    # black frames are black, others not (blackdetect pix_th)
    assert (st.loc[290:330, "black_ratio"] >= 0.98).all() and (st.loc[0:90, "black_ratio"] < 0.5).all()
    samples = pics[pics["kind"] == "sample"]
    assert len(samples) == math.ceil(31.0 * 1.0)  # 1 per second
    img = read_pack_image(vp.packs["samples"], samples["offset"].iloc[3], samples["length"].iloc[3])
    assert img.shape == (224, 224, 3)
    posters = pics[pics["kind"] == "poster"]
    assert len(posters) and (posters["width"] == 640).all() and (posters["height"] == 360).all()
    assert all(p.stat().st_size > 0 for p in vp.packs.values())
    assert vp.meta["decode_errors"] == 0 and vp.meta["frames"] == 744

    kf = select_keyframes(shots, pics, len(st), 24.0)
    non_black = set(shots.loc[~shots["is_black"], "shot_index"])
    assert set(kf["shot_index"]) == non_black
    trans = transition_frames(shots, len(st), guard=2)
    assert not kf["in_transition"].any() and not trans[kf["frame"].to_numpy()].any()
    for r in kf.itertuples():
        s = shots.iloc[r.shot_index]
        assert s.start_frame <= r.frame <= s.end_frame

    p = PosterParams(count=12)
    cands = posters.reset_index(drop=True)
    excl = poster_exclusions(cands, st, shots, 24.0, p)
    ranked = rank_posters(cands, poster_score_parts(cands, p), excl, shots, p)
    assert 0 < len(ranked) <= 12 and ranked["score"].is_monotonic_decreasing
    chosen = set(ranked["frame"])
    assert not any(st.loc[f, "black_ratio"] >= 0.5 or trans[f] for f in chosen)
    parts = ranked[["score_sharpness", "score_exposure", "score_contrast", "score_colorfulness"]].to_numpy(dtype=float)
    assert np.isfinite(parts).all() and ((parts >= 0) & (parts <= 1)).all()


def test_batch_stats_match_the_per_picture_definitions():
    """The decode loop computes statistics for batches of frames in one set of numpy calls; each
    column equals the per-picture definition (quality_parts, exposure_score, bars, differences)."""
    from prism_assets.visual import decode as dec

    rng = np.random.default_rng(7)
    h, w, th = 72, 128, 25.5
    ys = [np.full((h, w), 128, np.uint8), np.zeros((h, w), np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8)]
    boxed = rng.integers(40, 220, (h, w), dtype=np.uint8)
    boxed[:9], boxed[-7:], boxed[:, :5] = 0, 3, 10  # letterbox top/bottom, pillarbox left
    ys.append(boxed)
    ys.append(np.clip(ys[2].astype(int) // 2 + 60, 0, 255).astype(np.uint8))
    us = [rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8) for _ in ys]
    vs = [np.full((h // 2, w // 2), 128 + 30 * i, np.uint8) for i in range(len(ys))]
    prev = rng.integers(0, 256, (h, w), dtype=np.uint8)
    prev_l = prev.reshape(-1).astype(np.float32)
    prev_codes = (prev[::2, ::2] >> 5).astype(np.int32) * 16 + (us[0] >> 6) * 4 + (vs[0] >> 6)
    prev_h = np.bincount(prev_codes.ravel(), minlength=128).astype(np.float32)
    prev_h /= prev_h.sum()
    cols, lum, hist = dec.batch_stats(np.stack(ys), np.stack(us), np.stack(vs), prev_l, prev_h, th)
    last_l, last_h = prev_l, prev_h
    for j, (y, u, v) in enumerate(zip(ys, us, vs)):
        lf = y.astype(np.float32)
        parts = dec.quality_parts(lf, u, v)
        for k in ("sharpness", "colorfulness", "saturation"):
            assert cols[k][j] == pytest.approx(parts[k], rel=1e-5, abs=1e-6), (k, j)
        lm, ls = float(y.astype(np.float64).mean()), float(y.astype(np.float64).std())  # exact references
        assert cols["luma_mean"][j] == pytest.approx(lm, abs=1e-9) and cols["luma_std"][j] == pytest.approx(ls, rel=1e-6, abs=1e-9)
        assert cols["exposure"][j] == pytest.approx(dec.exposure_score(lm, ls), abs=1e-6)
        bars = dec.bars_of(y, th)
        assert [cols[k][j] for k in ("bar_top", "bar_bottom", "bar_left", "bar_right")] == pytest.approx(list(bars))
        assert cols["black_ratio"][j] == pytest.approx(np.count_nonzero(y <= th) / y.size)
        assert (cols["luma_min"][j], cols["luma_max"][j]) == (y.min(), y.max())
        assert cols["diff"][j] == pytest.approx(np.abs(lf.reshape(-1).astype(np.float64) - last_l).mean(), rel=1e-9)
        codes = (y[::2, ::2] >> 5).astype(np.int32) * 16 + (u >> 6) * 4 + (v >> 6)
        hj = np.bincount(codes.ravel(), minlength=128).astype(np.float32)
        hj /= hj.sum()
        assert np.allclose(hist[j], hj) and np.array_equal(lum[j], lf.reshape(-1))
        assert cols["hist_diff"][j] == pytest.approx(0.5 * np.abs(hj - last_h).sum(), abs=1e-6)
        last_l, last_h = lf.reshape(-1), hj
    assert cols["bar_top"][3] == pytest.approx(9 / h) and cols["bar_bottom"][3] == pytest.approx(7 / h) and cols["bar_left"][3] == pytest.approx(5 / w)
    assert cols["sharpness"][0] == 0.0 and cols["luma_std"][0] == 0.0 and cols["black_ratio"][1] == 1.0


def _lane_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith(("prism-decode", "prism-pictures")) and t.is_alive()]


@pytest.mark.integration
@pytest.mark.parametrize("lanes", [1, 2])
def test_early_stop_and_failures_release_the_decoder(tmp_path, monkeypatch, lanes):
    """Decoding runs on lane threads: an early stop returns what was analysed, and a failure in the
    analysis surfaces as the pass's exception with every lane and the picture thread stopped (no
    hang, no leak)."""
    from prism_assets.visual.decode import lanes as dec

    path = tmp_path / "four.mp4"  # an IDR every 10 frames: 10 closed GOPs, so the lanes take turns
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
           "-pix_fmt", "yuv420p", str(path))
    vp = run_visual_pass(path, tmp_path / "a", VisualPassConfig(max_seconds=1.0, decode_lanes=lanes))
    assert len(vp.stats) == 25 and vp.meta["truncated_at_s"] == 1.0 and vp.stats["frame"].tolist() == list(range(25))
    assert vp.meta["decode_lanes"] == lanes and not _lane_threads()
    calls = []
    real = dec.batch_stats

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom in the analysis")
        return real(*a, **k)

    monkeypatch.setattr(dec, "batch_stats", failing)
    with pytest.raises(RuntimeError, match="boom in the analysis"):
        run_visual_pass(path, tmp_path / "b", VisualPassConfig(decode_lanes=lanes))
    assert not _lane_threads()


# --------------------------------------------------------------------------------------------
# decode lanes: closed GOPs decoded side by side give exactly the outputs of one decoder

LANE_CODECS = {  # name: (ffmpeg output options, container, split into GOPs?)
    "h264_bframes_closed": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "30", "-pix_fmt", "yuv420p"], "mp4", True),
    "h264_open_gop": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-x264-params", "keyint=30:min-keyint=30:open-gop=1:scenecut=0",
                       "-pix_fmt", "yuv420p"], "mp4", False),
    "h264_annexb_ts": (["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p"], "ts", True),
    "hevc_idr": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:min-keyint=30:open-gop=0:log-level=error",
                  "-pix_fmt", "yuv420p"], "mp4", True),
    "hevc_cra": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:min-keyint=30:open-gop=1:log-level=error",
                  "-pix_fmt", "yuv420p"], "mkv", False),
    "vp9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "1M", "-pix_fmt", "yuv420p"], "webm", True),
    "mpeg2": (["-c:v", "mpeg2video", "-g", "15", "-bf", "2", "-q:v", "4"], "mpg", False),
    "prores": (["-c:v", "prores_ks", "-profile:v", "0"], "mov", True),
}


def _lanes_input(tmp_path: Path, name: str) -> Path:
    opts, ext, _ = LANE_CODECS[name]
    path = tmp_path / f"{name}.{ext}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=3", "-f", "lavfi", "-i", "mandelbrot=s=320x180:r=25",
           "-f", "lavfi", "-i", "smptebars=s=320x180:r=25:d=1",
           "-filter_complex", "[1]trim=duration=2,setpts=PTS-STARTPTS[m];[0][m][2]concat=n=3,format=yuv420p[v]", "-map", "[v]",
           *opts, str(path))
    return path


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(LANE_CODECS))
def test_decode_lanes_give_the_outputs_of_one_decoder(tmp_path, name):
    """The stream is split only where GOPs are closed (IDR, VP9 key frames, intra-only), never at an
    open-GOP key frame (x264 open-gop recovery points, HEVC CRA, MPEG-2); statistics, picture choices
    and picture bytes are the same with one lane and with three."""
    path = _lanes_input(tmp_path, name)
    one = run_visual_pass(path, tmp_path / "one", VisualPassConfig(decode_lanes=1))
    three = run_visual_pass(path, tmp_path / "three", VisualPassConfig(decode_lanes=3))
    assert len(one.stats) == 150 and one.stats["frame"].tolist() == list(range(150))
    assert one.meta["decode_errors"] == 0 and not one.stats["corrupt"].any()
    split = LANE_CODECS[name][2]
    assert (one.meta["gops"] > 1) == split and one.meta["gops"] == three.meta["gops"]
    assert three.meta["decode_lanes"] == (1 if name == "mpeg2" else 3)  # MPEG-2 GOPs may be open: one decoder
    pd.testing.assert_frame_equal(one.stats, three.stats, check_exact=True)
    cols = [c for c in one.pictures.columns if c not in ("offset", "length")]
    pd.testing.assert_frame_equal(one.pictures[cols], three.pictures[cols], check_exact=True)
    for a, b in zip(one.pictures.itertuples(), three.pictures.itertuples()):
        assert read_pack_bytes(one.packs[a.pack], a.offset, a.length) == read_pack_bytes(three.packs[b.pack], b.offset, b.length)
    shots = detect_shots(one.stats, 25.0)
    assert shots["start_frame"].tolist()[:3] == [0, 75, 125]  # testsrc2 | mandelbrot | bars
    assert not _lane_threads()


def test_lanes_follow_the_usable_cpus(tmp_path, monkeypatch):
    import os

    from prism_assets.visual import decode as dec
    from prism_assets.visual.decode import system

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    quota = tmp_path / "cpu.max"
    quota.write_text("250000 100000\n")  # a 2.5-CPU container limit on a 16-CPU host
    assert dec.usable_cpus(quota) == 3
    quota.write_text("max 100000\n")
    assert dec.usable_cpus(quota) == 16 and dec.usable_cpus(tmp_path / "none") == 16
    monkeypatch.setattr(system, "usable_cpus", lambda: 16)
    assert dec.decode_lanes_for(VisualPassConfig(), True) == (4, 4)  # 4 lanes x 4 frame threads
    assert dec.decode_lanes_for(VisualPassConfig(), False) == (1, 0)  # open GOPs: one decoder, FFmpeg's threads
    assert dec.decode_lanes_for(VisualPassConfig(decode_lanes=2, threads=3), True) == (2, 3)
    assert dec.decode_lanes_for(VisualPassConfig(), True, frame_mb=7680 * 4320 * 1.5 / 2**20) == (1, 0)  # 8K: one decoder's pictures
    assert dec.decode_lanes_for(VisualPassConfig(), True, frame_mb=3840 * 2160 * 1.5 / 2**20) == (4, 4)
    monkeypatch.setattr(system, "usable_cpus", lambda: 1)
    assert dec.decode_lanes_for(VisualPassConfig(), True) == (1, 0)


def test_nal_unit_headers_length_prefixed_and_annex_b():
    from prism_assets.visual.decode import gop_start_test, nal_headers

    idr, sei, non_idr = b"\x65\x88\x84", b"\x06\x05\x01", b"\x41\x9a\x00"
    avcc = b"".join(len(n).to_bytes(4, "big") + n for n in (sei, idr))
    assert list(nal_headers(avcc, 4)) == [0x06, 0x65]
    assert list(nal_headers(b"\x00\x00\x00\x01" + sei + b"\x00\x00\x01" + non_idr, None)) == [0x06, 0x41]
    assert list(nal_headers(b"\x00\x00\x00\x09" + idr, 4)) == []  # a length past the end: malformed, nothing read

    class P:
        def __init__(self, data, key=True):
            self.data, self.is_keyframe = data, key

        def __bytes__(self):
            return self.data

    extradata = b"\x01\x64\x00\x1f\xff"  # avcC, 4-byte lengths
    test = gop_start_test("h264", extradata)
    assert test(P(avcc)) and not test(P(avcc, key=False))
    assert not test(P(b"".join(len(n).to_bytes(4, "big") + n for n in (sei, non_idr))))  # a key frame without IDR: open GOP
    assert gop_start_test("mpeg2video", None) is None and gop_start_test("av1", None) is None


@pytest.mark.integration
def test_colour_bars_are_flagged_not_posters(tmp_path):
    path = tmp_path / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "smptehdbars=s=640x360:r=25:d=2", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=2",
           "-filter_complex", "[0][1]concat=n=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    vp, shots = analyse(path, tmp_path / "w")
    assert (vp.stats.loc[5:45, "colour_bars"] >= 0.5).all()
    p = PosterParams()
    cands = vp.pictures[vp.pictures["kind"] == "poster"].reset_index(drop=True)
    excl = poster_exclusions(cands, vp.stats, shots, 25.0, p)
    ranked = rank_posters(cands, poster_score_parts(cands, p), excl, shots, p)
    assert (ranked["frame"] >= 50).all()


@pytest.mark.integration
def test_memory_is_bounded_by_design(tmp_path):
    """Per-frame statistics are typed arrays and pictures go to disk: a 3000-frame title keeps a
    bounded poster pool and one sample per second, whatever its length."""
    path = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=120", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    vp = run_visual_pass(path, tmp_path / "w", VisualPassConfig(poster_pool=10))
    kinds = vp.pictures["kind"].value_counts()
    assert len(vp.stats) == 3000 and kinds["sample"] == 120 and kinds["poster"] <= 10
    assert vp.stats.memory_usage(deep=True).sum() < 3000 * 60 * 8


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.integration
@pytest.mark.parametrize("gop", [250, 10])
def test_corrupt_packets_are_skipped_and_counted(tmp_path, gop):
    src = tmp_path / "ok.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
           "-pix_fmt", "yuv420p", str(src))
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    for i in range(len(data) // 3, len(data) // 3 + 4000, 7):
        data[i] = int(rng.integers(0, 256))
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    vp, shots = analyse(bad, tmp_path / "w")
    assert vp.meta["decode_errors"] + vp.meta["corrupt_frames"] > 0
    assert 0 < len(vp.stats) <= 100 and shots["end_frame"].iloc[-1] == len(vp.stats) - 1
    assert vp.stats["frame"].tolist() == list(range(len(vp.stats))) and not _lane_threads()


@pytest.mark.integration
@pytest.mark.parametrize("w, h", [(1, 1), (2, 2), (7680, 4320)])
def test_odd_sizes(tmp_path, w, h):
    path = tmp_path / f"s{w}x{h}.mp4"
    src = f"testsrc2=s={max(w, 16)}x{max(h, 16)}:r=25:d=0.2"
    vf = ["-vf", f"scale={w}:{h}"] if w < 16 else []
    ffmpeg("-f", "lavfi", "-i", src, *vf, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p" if w < 16 else "yuv420p", str(path))
    vp, shots = analyse(path, tmp_path / "w")
    assert (vp.meta["width"], vp.meta["height"]) == (w, h) and len(vp.stats) == 5 and len(shots) == 1
    samples = vp.pictures[vp.pictures["kind"] == "sample"]
    assert len(samples) == 1 and read_pack_image(vp.packs["samples"], samples["offset"].iloc[0], samples["length"].iloc[0]).shape == (224, 224, 3)
    if w > 4000:
        kf = vp.pictures[vp.pictures["kind"] == "keyframe"].iloc[0]
        assert max(kf["width"], kf["height"]) == VisualPassConfig().keyframe_max_side


@pytest.mark.integration
def test_rotation_metadata_gives_upright_pictures(tmp_path):
    src = tmp_path / "land.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src))
    rot = tmp_path / "rot.mp4"
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rot))
    vp, _ = analyse(rot, tmp_path / "w")
    assert abs(vp.meta["rotation"]) == 90 and (vp.meta["display_width"], vp.meta["display_height"]) == (240, 320)
    kf = vp.pictures[vp.pictures["kind"] == "keyframe"].iloc[0]
    assert (kf["width"], kf["height"]) == (240, 320)
    img = read_pack_image(vp.packs["keyframes"], kf["offset"], kf["length"])
    assert img.shape[:2] == (320, 240)


def test_vfr_timestamps_are_kept(synth, tmp_path):
    vp, shots = analyse(synth("vfr.mkv"), tmp_path)
    t = vp.stats["t_s"].to_numpy()
    assert len(t) == 60 and np.all(np.diff(t) > 0)
    assert abs(t[40] - (1 + 10 / 10)) < 0.02  # frames after 30 are 1/10 s apart
    assert abs(shots["end_s"].iloc[-1] - 4.0) < 0.02  # the title ends 1/10 s after its last frame


def test_undecodable_file_is_one_clear_error(tmp_path):
    p = tmp_path / "text.mp4"
    p.write_text("not a video\n" * 10)
    with pytest.raises(VisualDecodeError) as e:
        run_visual_pass(p, tmp_path / "w")
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------
# the assets through a real Dagster run


def run_job(settings, title_id: str, path: Path):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", [title_id])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title_id, date(2026, 11, 20), str(path))])
    job = build_definitions(settings).resolve_job_def("process_title")
    return job.execute_in_process(partition_key=title_id, instance=instance, raise_on_error=False,
                                  tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})


@pytest.mark.integration  # the whole title job: OCR starts tesseract
def test_visual_assets_materialize_with_checks(settings, media):
    res = run_job(settings, "qc", media / "qc_composite.mp4")
    # the composite fails EBU R128 loudness on purpose: its QC gate (WARN in dev) and its red verdict check are tested in test_qc.py,
    # the run ending failed at its last step (release) in test_release.py: that is the run's only failure
    assert not res.success and qc_gate_only(res), [e.step_key for e in res.all_events if e.is_step_failure]
    verdict_checks = ("qc_verdict_not_fail", "title_passes_qc", "title_releasable")
    evals = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in res.get_asset_check_evaluations() if e.check_name not in verdict_checks}
    assert not any(e.passed for e in res.get_asset_check_evaluations() if e.check_name in verdict_checks)  # the loudness fail is seen
    for asset in ("frame_stats", "frame_samples", "shots", "keyframes", "embeddings", "shot_embeddings", "posters"):
        assert any(a == asset for a, _ in evals), f"no check ran on {asset}"
    assert all(evals.values()), {k: v for k, v in evals.items() if not v}

    _, _, shots = read(settings, "shots", "qc")
    assert shots.attrs["schema_version"] == "1.0" and shots.attrs["producer"]["model"]["detector"] == "prism-blend"
    arts, base, kf = read(settings, "keyframes", "qc")
    files = arts.bundle_files(base)
    assert set(kf["image"]) <= set(files) and len(kf) >= int((~shots["is_black"]).sum())
    Image.open(io.BytesIO(arts.store.get_bytes(files[kf["image"].iloc[0]]))).verify()

    _, _, emb = read(settings, "embeddings", "qc")
    m = np.stack(emb["embedding"].to_numpy())
    assert m.shape == (31 + len(kf), 512) and np.allclose(np.linalg.norm(m, axis=1), 1, atol=1e-3)
    info = emb.attrs["producer"]["model"]
    assert info["model"] == "ViT-B-32" and info["weights"] == "random-init" and info["weights_trained"] is False
    assert set(emb["model"]) == {"ViT-B-32/random-init"}
    assert (emb.loc[emb["kind"] == "keyframe", "frame"].to_numpy() == kf["frame"].to_numpy()).all()
    _, _, semb = read(settings, "shot_embeddings", "qc")
    assert set(semb["shot_index"]) <= set(shots["shot_index"])

    arts, base, posters = read(settings, "posters", "qc")
    assert 0 < len(posters) <= 12 and posters.attrs["producer"]["prompt_score_used"] is False
    img = Image.open(io.BytesIO(arts.store.get_bytes(arts.bundle_files(base)[posters["image"].iloc[0]])))
    assert img.size == (640, 360)
    mat = res.asset_materializations_for_node("embeddings")
    assert any(m.metadata.get("weights_trained") is not None for m in mat)
    # pictures in the UI: inline thumbnails of a spread of keyframes and of the posters; tables previewed
    for node in ("keyframes", "posters"):
        md = res.asset_materializations_for_node(node)[0].metadata["pictures"].value
        assert md.count("](data:image/jpeg;base64,") == min(8, len(kf) if node == "keyframes" else len(posters)) and len(md) < 100_000
    # the passes' work folders (packs, speech WAVs) are gone once their bundles are stored
    scratch = settings.data_dir / "scratch"
    assert not list(scratch.glob("visual/qc/*/*.pack")) and not list(scratch.glob("audio/qc/*/*.wav"))
    preview = res.asset_materializations_for_node("shots")[0].metadata["preview"].value
    assert len(preview.records) == min(20, len(shots)) and preview.records[0].data["transition_in"] == "start"


@pytest.mark.integration
def test_one_frame_title_runs_through(settings, tmp_path):
    path = tmp_path / "one.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    res = run_job(settings, "one", path)
    assert qc_gate_only(res)  # a 1-frame title fails QC (too_short): everything ran, the run ends failed at release only
    _, _, shots = read(settings, "shots", "one")
    assert len(shots) == 1 and shots["start_frame"].iloc[0] == 0 and shots["end_frame"].iloc[0] == 0
    _, _, emb = read(settings, "embeddings", "one")
    assert len(emb) >= 1
