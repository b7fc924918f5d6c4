"""Pictures that are not plain progressive SDR (issue 27 item 4): HDR10 (PQ) and HLG sources are
probed (title.json `hdr`) and analysed tone-mapped to SDR BT.709; interlaced and telecined sources
are detected (title.json `scan`, FFmpeg's idet) and analysed deinterlaced / inverse-telecined.

Media are generated with the ffmpeg CLI (libx265 10-bit with HDR10 SEI; zscale for the PQ / HLG
encodings of an SDR picture; x264 interlaced coding; `interlace` and `telecine` filters), so the
expected values are known by construction. The unit tests at the end need no media.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

from prism_assets.ingest.pictures import classify_scan, mastering_display
from prism_assets.ingest.probe import probe_video
from prism_assets.qc.detect import run_qc
from prism_assets.qc.events import Timeline
from prism_assets.qc.technical import check_hdr_metadata
from prism_assets.qc.thresholds import load_profiles, select_profile
from prism_assets.visual.decode import run_visual_pass
from prism_assets.visual.decode.scan import scan_chain
from prism_assets.visual.decode.tonemap import REF_WHITE_NITS, ToneMap, hlg_inverse_oetf, mobius, pq_eotf, pq_oetf
from prism_assets.visual.shots import detect_shots

MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
# SDR picture -> linear light with SDR white at the BT.2408 HDR reference white (203 cd/m2) -> BT.2020 PQ / HLG. The RGB
# test source becomes Y'CbCr with libswscale's default (BT.601) matrix, in the SDR clip as here: both hold the same picture
TO_HDR = ("format=yuv444p,setparams=color_primaries=bt709:color_trc=bt709:colorspace=smpte170m:range=tv,zscale=t=linear:npl=203,"
          "format=gbrpf32le,zscale=p=bt2020:t={t}:m=bt2020nc:r=tv:npl=203,format=yuv420p10le")
# 2.5 s of black, then 2.5 s of picture (testsrc2): a black segment for QC and content for the tone mapping
BLACK_THEN_PICTURE = ("color=c=black:s=320x180:r=24:d=2.5[a];testsrc2=s=320x180:r=24:d=2.5[b];[a][b]concat=n=2:v=1:a=0[out0]")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def x265(out, transfer: str, extra: str = "") -> None:
    params = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc" + (f":{extra}" if extra else "")
    ffmpeg("-f", "lavfi", "-i", BLACK_THEN_PICTURE, "-vf", TO_HDR.format(t=transfer), "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", params, str(out))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("pictures")
    c = {k: d / f"{k}.mp4" for k in ("sdr", "pq", "pq_nometa", "hlg", "interlaced", "film", "telecined")}
    ffmpeg("-f", "lavfi", "-i", BLACK_THEN_PICTURE, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", str(c["sdr"]))
    x265(c["pq"], "smpte2084", f"hdr10=1:repeat-headers=1:master-display={MASTER}:max-cll=1000,400")
    x265(c["pq_nometa"], "smpte2084")
    x265(c["hlg"], "arib-std-b67")
    # 50p -> 25i, top field first, coded interlaced (x264 ildct/ilme): a single continuous scene (no cut)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=4", "-vf", "interlace=scan=tff:lowpass=0", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "16", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-pix_fmt", "yuv420p", str(c["interlaced"]))
    # the film (23.976p) and its 3:2 pulldown to 29.97i
    film = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=24000/1001:d=3"]
    ffmpeg(*film, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p", str(c["film"]))
    ffmpeg(*film, "-vf", "telecine=pattern=23:first_field=top", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
           "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-pix_fmt", "yuv420p", str(c["telecined"]))
    return c


@pytest.fixture(scope="module")
def probes(clips):
    return {k: probe_video(p, checksum=False) for k, p in clips.items()}


def visual(path, source, tmp_path, name):
    vp = run_visual_pass(path, tmp_path / name, None, source=source)
    vp.stats.attrs = {"producer": {"pass_meta": vp.meta}}
    return vp


def keyframe_luma(vp, t_min: float = 0.0, kind: str = "keyframe") -> np.ndarray:
    """BT.709 luma (0..255) of every keyframe candidate (or CLIP sample) from t_min on, pixels concatenated."""
    import simplejpeg

    data = vp.packs[f"{kind}s"].read_bytes()
    kf = vp.pictures[(vp.pictures["kind"] == kind) & (vp.pictures["t_s"] >= t_min)]
    assert len(kf), f"no {kind}s"
    return np.concatenate([(simplejpeg.decode_jpeg(data[r.offset:r.offset + r.length]).astype(np.float32) @ [0.2126, 0.7152, 0.0722]).ravel()
                           for r in kf.itertuples()])


def zscale_tonemap(path, frame: int, shape: tuple, peak_nits: float) -> np.ndarray:
    """FFmpeg's own HDR -> SDR rendering of one frame (zscale + tonemap=mobius, same knee and peak), RGB."""
    chain = (f"select=eq(n\\,{frame}),zscale=t=linear:npl={REF_WHITE_NITS:g},format=gbrpf32le,zscale=p=bt709,"
             f"tonemap=tonemap=mobius:param=0.75:desat=0:peak={peak_nits / REF_WHITE_NITS},zscale=t=bt709:m=bt709:r=pc,format=rgb24")
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", chain, "-frames:v", "1", "-f", "rawvideo", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(out, np.uint8).reshape(shape)


def combing(vp, kind: str = "keyframe") -> float:
    """Mean line-to-line zig-zag |2 y[i] - y[i-1] - y[i+1]| relative to the 2-line gradient |y[i+1] - y[i-1]|:
    interlaced combing (alternate lines from different instants) raises it."""
    import simplejpeg

    pack = {"keyframe": "keyframes", "sample": "samples"}[kind]
    data = vp.packs[pack].read_bytes()
    out = []
    for r in vp.pictures[vp.pictures["kind"] == kind].itertuples():
        y = simplejpeg.decode_jpeg(data[r.offset:r.offset + r.length]).astype(np.float32) @ [0.2126, 0.7152, 0.0722]
        out.append(np.abs(2 * y[1:-1] - y[:-2] - y[2:]).mean() / max(1e-6, np.abs(y[2:] - y[:-2]).mean()))
    return float(np.mean(out))


def qc(vp, source):
    _, prof, _ = select_profile(load_profiles(), None)
    return run_qc(vp.stats, detect_shots(vp.stats, vp.meta["fps"]), None, None, source, prof, "test", "test")


# ---------------------------------------------------------------------------------------------
# probe: title.json hdr / scan


@pytest.mark.integration
def test_probe_hdr10_hlg_and_missing_metadata(probes):
    pq, nometa, hlg, sdr = probes["pq"], probes["pq_nometa"], probes["hlg"], probes["sdr"]
    assert pq["hdr"] == {
        "format": "hdr10", "transfer": "smpte2084", "primaries": "bt2020", "matrix": "bt2020nc", "range": "tv", "bit_depth": 10,
        "pix_fmt": "yuv420p10le", "max_cll": 1000, "max_fall": 400, "missing_metadata": [],
        "mastering_display": {"red": [0.68, 0.32], "green": [0.265, 0.69], "blue": [0.15, 0.06], "white_point": [0.3127, 0.329],
                              "min_luminance": 0.005, "max_luminance": 1000.0},
    }
    assert pq["flags"] == ["no_audio", "hdr"] and pq["scan"]["type"] == "progressive"
    assert nometa["hdr"]["format"] == "hdr10" and nometa["hdr"]["mastering_display"] is None and nometa["hdr"]["max_cll"] is None
    assert nometa["hdr"]["missing_metadata"] == ["mastering_display", "max_cll"]
    assert {k: hlg["hdr"][k] for k in ("format", "transfer", "primaries", "matrix", "bit_depth", "missing_metadata")} == {
        "format": "hlg", "transfer": "arib-std-b67", "primaries": "bt2020", "matrix": "bt2020nc", "bit_depth": 10, "missing_metadata": []}
    assert hlg["flags"] == ["no_audio", "hdr"]
    assert {k: sdr["hdr"][k] for k in ("format", "transfer", "primaries", "matrix", "bit_depth", "missing_metadata")} == {
        "format": "sdr", "transfer": None, "primaries": None, "matrix": None, "bit_depth": 8, "missing_metadata": []}  # untagged
    # testsrc2's fast sharp motion makes idet call many progressive frames combed: a stream coded progressive stays progressive
    assert sdr["flags"] == ["no_audio"] and sdr["scan"]["type"] == "progressive" and sdr["scan"]["coded_interlaced"] == 0.0


@pytest.mark.integration
def test_probe_interlaced_and_telecined(probes):
    inter, tele, film = probes["interlaced"], probes["telecined"], probes["film"]
    assert inter["flags"] == ["no_audio", "interlaced"]
    s = inter["scan"]
    assert (s["type"], s["field_order"], s["method"], s["frames_sampled"], s["coded_interlaced"]) == ("interlaced", "tff", "idet", 100, 1.0)
    assert s["idet"]["multiple"]["tff"] >= 95 and s["idet"]["multiple"]["bff"] == 0
    assert s["idet"]["repeated"]["top"] + s["idet"]["repeated"]["bottom"] == 0
    assert tele["flags"] == ["no_audio", "telecined"] and tele["frame_count"] == 90
    t = tele["scan"]
    assert (t["type"], t["field_order"], t["frames_sampled"]) == ("telecined", "tff", 90)
    rep = t["idet"]["repeated"]
    assert 0.3 <= (rep["top"] + rep["bottom"]) / 90 <= 0.45 and rep["top"] > 0 and rep["bottom"] > 0  # 2 repeated fields in 5 frames
    assert film["scan"]["type"] == "progressive" and film["flags"] == ["no_audio"]


# ---------------------------------------------------------------------------------------------
# visual pass: tone mapping, deinterlacing, inverse telecine


@pytest.mark.integration
def test_tone_mapped_pq_matches_the_sdr_rendering(clips, probes, tmp_path):
    sdr = visual(clips["sdr"], probes["sdr"], tmp_path, "sdr")
    pq = visual(clips["pq"], probes["pq"], tmp_path, "pq")
    assert sdr.meta["pictures"]["tone_map"] is None
    assert pq.meta["pictures"]["tone_map"]["transfer"] == "pq" and pq.meta["pictures"]["tone_map"]["peak_nits"] == 1000.0
    y_sdr, y_pq = keyframe_luma(sdr, 2.6), keyframe_luma(pq, 2.6)
    # same mean luminance and contrast as the SDR picture: not washed out (PQ read as SDR: std 28 vs 66), not clipped
    assert abs(y_pq.mean() - y_sdr.mean()) <= 8.0, (y_pq.mean(), y_sdr.mean())
    assert 0.85 <= y_pq.std() / y_sdr.std() <= 1.1, (y_pq.std(), y_sdr.std())
    assert np.percentile(y_pq, 95) >= 200 and np.percentile(y_pq, 5) <= 40
    assert (y_pq >= 254.5).mean() < 0.02  # SDR white (203 cd/m2) stays below the SDR peak: highlights rolled off, not clipped
    s_sdr, s_pq = keyframe_luma(sdr, 2.6, "sample"), keyframe_luma(pq, 2.6, "sample")  # CLIP's input too
    assert abs(s_pq.mean() - s_sdr.mean()) <= 8.0 and s_pq.std() >= 0.85 * s_sdr.std(), (s_pq.mean(), s_sdr.mean(), s_pq.std(), s_sdr.std())
    # as FFmpeg renders it with zscale (libzimg) + tonemap=mobius: the keyframe itself, pixel by pixel (JPEG q90, gamma 2.4 vs BT.709 OETF)
    import simplejpeg

    kf = pq.pictures[(pq.pictures["kind"] == "keyframe") & (pq.pictures["t_s"] >= 2.6)].iloc[0]
    mine = simplejpeg.decode_jpeg(pq.packs["keyframes"].read_bytes()[kf["offset"]:kf["offset"] + kf["length"]]).astype(np.float32)
    ref = zscale_tonemap(clips["pq"], int(round(kf["t_s"] * 24)), mine.shape, 1000.0).astype(np.float32)
    assert np.abs(mine - ref).mean() <= 7.0 and np.percentile(np.abs(mine - ref), 99) <= 45, np.abs(mine - ref).mean()
    # the same source read as SDR (no tone map) is what the test guards against
    naive = visual(clips["pq"], {**probes["pq"], "hdr": {**probes["pq"]["hdr"], "transfer": "bt709"}}, tmp_path, "naive")
    y_naive = keyframe_luma(naive, 2.6)
    assert y_naive.std() < 0.6 * y_sdr.std() and np.percentile(y_naive, 95) < 170
    # analysis pictures (frame_stats) too: PQ black is black, the picture's luma as the SDR one's
    picture = sdr.stats["t_s"] >= 2.6
    assert abs(pq.stats.loc[picture, "luma_mean"].mean() - sdr.stats.loc[picture, "luma_mean"].mean()) <= 8.0
    assert pq.stats.loc[~picture & (pq.stats["t_s"] < 2.4), "black_ratio"].min() >= 0.98
    # QC on the tone-mapped statistics: the same single black segment as the SDR title (0 to 2.5 s), nothing else of the picture
    for vp, src in ((sdr, probes["sdr"]), (pq, probes["pq"])):
        blacks = [e for e in qc(vp, src)["events"] if e["kind"] == "black"]
        assert len(blacks) == 1 and blacks[0]["start_s"] == 0.0 and abs(blacks[0]["end_s"] - 2.5) <= 0.05, blacks
        assert not [e for e in qc(vp, src)["events"] if e["kind"] in ("freeze", "hdr_metadata", "interlaced", "colour_bars")]


@pytest.mark.integration
def test_hlg_tone_mapped_and_pq_without_metadata_is_a_qc_event(clips, probes, tmp_path):
    sdr = visual(clips["sdr"], probes["sdr"], tmp_path, "sdr")
    hlg = visual(clips["hlg"], probes["hlg"], tmp_path, "hlg")
    y_sdr, y_hlg = keyframe_luma(sdr, 2.6), keyframe_luma(hlg, 2.6)
    # the clip was made with zscale, whose HLG OOTF acts on each channel; BT.2100's (here) acts on luminance: greys agree
    # (unit test below), testsrc2's saturated bars come out lighter (mean +17 of 255), with the SDR picture's contrast
    assert abs(y_hlg.mean() - y_sdr.mean()) <= 20.0 and 0.75 <= y_hlg.std() / y_sdr.std() <= 1.1, (y_hlg.mean(), y_sdr.mean(), y_hlg.std(), y_sdr.std())
    naive = keyframe_luma(visual(clips["hlg"], {**probes["hlg"], "hdr": {**probes["hlg"]["hdr"], "transfer": "bt709"}}, tmp_path, "naive"), 2.6)
    # HLG read as SDR is watchable by design, but its whites are grey (75 % signal): the tone map brings them back
    assert np.percentile(y_hlg, 95) >= 205 and np.percentile(naive, 95) < 195, (np.percentile(y_hlg, 95), np.percentile(naive, 95))
    nometa = visual(clips["pq_nometa"], probes["pq_nometa"], tmp_path, "nometa")
    assert nometa.meta["pictures"]["tone_map"]["peak_nits"] == 1000.0  # no MaxCLL, no mastering display: the default peak
    events = [e for e in qc(nometa, probes["pq_nometa"])["events"] if e["kind"] == "hdr_metadata"]
    assert len(events) == 1 and events[0]["severity"] == "warn" and events[0]["metrics"]["missing"] == ["mastering_display", "max_cll"]
    assert "mastering display" in events[0]["detail"] and "MaxCLL" in events[0]["detail"]
    assert not [e for e in qc(hlg, probes["hlg"])["events"] if e["kind"] == "hdr_metadata"]


@pytest.mark.integration
def test_interlaced_scene_is_deinterlaced_and_has_no_false_cuts_or_freezes(clips, probes, tmp_path):
    src = probes["interlaced"]
    vp = visual(clips["interlaced"], src, tmp_path, "inter")
    raw = visual(clips["interlaced"], {**src, "scan": None}, tmp_path, "raw")  # the pictures as decoded, combed
    assert vp.meta["pictures"]["scan_filter"] == "bwdif=mode=send_frame:parity=tff:deint=all" and vp.meta["decode_lanes"] == 1
    assert len(vp.stats) == src["frame_count"] == 100 and vp.meta["expected_frames"] == 100 and vp.meta["fps"] == 25.0
    assert np.allclose(vp.stats["t_s"].to_numpy(), np.arange(100) / 25.0, atol=1e-3)
    assert combing(vp) < 0.75 * combing(raw) and combing(vp, "sample") < 0.8 * combing(raw, "sample")
    shots = detect_shots(vp.stats, vp.meta["fps"])
    assert len(shots) == 1, shots  # one continuous scene: combing is not a cut
    kinds = {e["kind"]: e for e in qc(vp, src)["events"]}
    assert set(kinds) == {"interlaced", "missing_audio"}, kinds  # no freeze, no black
    assert kinds["interlaced"]["metrics"]["scan"] == "interlaced" and "deinterlaced" in kinds["interlaced"]["detail"]


@pytest.mark.integration
def test_telecined_title_is_analysed_as_its_film_frames(clips, probes, tmp_path):
    film = visual(clips["film"], probes["film"], tmp_path, "film")
    ivtc = visual(clips["telecined"], probes["telecined"], tmp_path, "ivtc")
    raw = visual(clips["telecined"], {**probes["telecined"], "scan": None}, tmp_path, "raw")
    assert ivtc.meta["pictures"]["scan_filter"].startswith("fieldmatch=order=tff") and "decimate" in ivtc.meta["pictures"]["scan_filter"]
    assert len(raw.stats) == 90 and len(ivtc.stats) == len(film.stats) == 72 == ivtc.meta["expected_frames"]
    assert math.isclose(ivtc.meta["fps"], 24000 / 1001, rel_tol=1e-6)
    assert np.allclose(ivtc.stats["t_s"].to_numpy(), film.stats["t_s"].to_numpy(), atol=2e-3)
    # the film frames come back: per-frame luma and motion as the film's; the raw pulldown halves every other difference
    assert np.abs(ivtc.stats["luma_mean"].to_numpy() - film.stats["luma_mean"].to_numpy()).max() < 1.0
    assert np.abs(ivtc.stats["diff"].to_numpy()[1:] - film.stats["diff"].to_numpy()[1:]).max() < 1.0
    d = raw.stats["diff"].to_numpy()[1:]
    assert (d < 0.7 * np.median(film.stats["diff"].to_numpy()[1:])).sum() >= 25  # the 3:2 cadence, without the inverse telecine
    assert len(detect_shots(ivtc.stats, ivtc.meta["fps"])) == 1
    kinds = {e["kind"] for e in qc(ivtc, probes["telecined"])["events"]}
    assert kinds == {"interlaced", "missing_audio"}, kinds


# ---------------------------------------------------------------------------------------------
# unit: no media


def test_pq_and_hlg_curves_and_the_rolloff():
    assert float(pq_eotf(np.array([pq_oetf(100.0)]))[0]) == pytest.approx(100.0, rel=1e-6)
    assert float(pq_oetf(100.0)) == pytest.approx(0.5081, abs=1e-4) and float(pq_oetf(1000.0)) == pytest.approx(0.7518, abs=1e-4)
    assert float(pq_eotf(np.array([1.0]))[0]) == pytest.approx(10000.0)
    assert float(hlg_inverse_oetf(0.5)) == pytest.approx(1 / 12) and float(hlg_inverse_oetf(1.0)) == pytest.approx(1.0, abs=1e-6)
    x = np.linspace(0, 6, 601, dtype=np.float32)
    y = mobius(x, 1000 / REF_WHITE_NITS)
    assert np.all(np.diff(y) >= 0) and y[x <= 0.75].tolist() == x[x <= 0.75].tolist()
    assert float(mobius(np.float32([1000 / REF_WHITE_NITS]), 1000 / REF_WHITE_NITS)[0]) == pytest.approx(1.0, abs=1e-5)
    # PQ black is black; reference white (203 cd/m2) stays near SDR white; the 1000 cd/m2 peak reaches it
    tm = ToneMap("pq", 1000.0)
    codes = np.array([0, round(float(pq_oetf(REF_WHITE_NITS)) * 65535), round(float(pq_oetf(1000.0)) * 65535)], np.uint16)
    r, g, b = tm.linear709(codes, codes, codes)
    out = tm.encoded(r) * 255
    assert out[0] == 0.0 and 235 <= out[1] <= 250 and out[2] >= 254 and np.allclose(r, g) and np.allclose(g, b)
    # HLG: 75 % signal is reference white on a 1000 cd/m2 display (BT.2408), a grey keeps its level as PQ's does
    hlg = ToneMap("hlg")
    codes = np.array([0, round(0.75 * 65535), 65535], np.uint16)
    out_hlg = hlg.encoded(hlg.linear709(codes, codes, codes)[0]) * 255
    assert out_hlg[0] == 0.0 and abs(out_hlg[1] - out[1]) <= 2.0 and out_hlg[2] >= 254
    assert ToneMap.for_title({"transfer": "bt709"}) is None and ToneMap.for_title(None, 18).transfer == "hlg"
    assert ToneMap.for_title({"transfer": "smpte2084", "primaries": "bt2020", "max_cll": 4000}).peak_nits == 4000.0


def test_mastering_display_side_data_and_missing_metadata_event():
    import struct

    raw = struct.pack("=22i", 34000, 50000, 16000, 50000, 13250, 50000, 34500, 50000, 7500, 50000, 3000, 50000,
                      15635, 50000, 16450, 50000, 50, 10000, 10000000, 10000, 1, 1)
    assert mastering_display(raw) == {"red": [0.68, 0.32], "green": [0.265, 0.69], "blue": [0.15, 0.06], "white_point": [0.3127, 0.329],
                                      "min_luminance": 0.005, "max_luminance": 1000.0}
    assert mastering_display(raw[:-8] + struct.pack("=2i", 0, 0)) is None
    tl = Timeline(np.arange(50) / 25.0, 25.0)
    ev = check_hdr_metadata({"hdr": {"format": "hdr10", "transfer": "smpte2084", "missing_metadata": ["max_cll"]}}, tl)
    assert ev["kind"] == "hdr_metadata" and ev["severity"] == "warn" and ev["start_s"] == 0.0 and ev["end_s"] == 2.0
    assert check_hdr_metadata({"hdr": {"format": "hlg", "transfer": "arib-std-b67", "missing_metadata": []}}, tl) is None
    assert check_hdr_metadata({"hdr": None}, tl) is None


def test_scan_classification_and_filters():
    def idet(rep=(0, 0, 0), single=(0, 0, 0, 0), multi=(0, 0, 0, 0)):
        k4 = ("tff", "bff", "progressive", "undetermined")
        return {"repeated": dict(zip(("neither", "top", "bottom"), rep)), "single": dict(zip(k4, single)), "multiple": dict(zip(k4, multi))}

    assert classify_scan(idet((54, 18, 18), (82, 6, 2, 0), (90, 0, 0, 0)), 1.0) == ("telecined", "tff")
    assert classify_scan(idet((54, 18, 18), (6, 82, 2, 0), (0, 90, 0, 0)), 0.0) == ("telecined", "bff")  # pulldown baked into progressive
    assert classify_scan(idet((50, 0, 0), (50, 0, 0, 0), (50, 0, 0, 0)), 1.0) == ("interlaced", "tff")
    assert classify_scan(idet((50, 0, 0), (0, 48, 2, 0), (0, 49, 1, 0)), 0.0) == ("interlaced", "bff")  # mis-flagged: overwhelming
    assert classify_scan(idet((75, 0, 0), (40, 26, 9, 0), (41, 25, 9, 0)), 0.0) == ("progressive", "progressive")  # testsrc2-like
    assert classify_scan(idet((48, 0, 0), (36, 3, 9, 0), (39, 0, 9, 0)), 0.0) == ("progressive", "progressive")
    assert classify_scan(idet((48, 0, 0), (0, 0, 31, 17), (0, 0, 41, 7)), 1.0) == ("progressive", "progressive")  # PsF
    assert classify_scan(idet((40, 0, 0), (0, 0, 0, 40), (0, 0, 0, 40)), 1.0) == ("interlaced", None)  # still picture: the flags
    assert classify_scan(None, 0.0) == ("progressive", "progressive")
    assert scan_chain({"type": "progressive"}) == [] and scan_chain(None) == []
    assert scan_chain({"type": "interlaced", "field_order": "bff"}) == [("bwdif", "mode=send_frame:parity=bff:deint=all")]
    assert [n for n, _ in scan_chain({"type": "telecined", "field_order": "tff"})] == ["fieldmatch", "bwdif", "decimate"]
