"""Real camera footage classes (issue 27, item 5): freezes and cut typing on real footage
(`media/real/`, see its README) and camera-like generators (`support/camera_media.py`) with exact truth.

* freeze: a freeze means the picture does not change. A slow zoom over a photographed still with
  grain and low-bitrate coding is not one (freezedetect at its defaults agrees); a real frame held
  is one, at its frames. A codec may send a slow move as small steps between frames it repeats
  exactly (low-rate capture, low bitrate); a freeze bridges a step only where the codec refreshed
  the held picture (a key frame), never a step sent on a predicted frame (before: every such step
  was bridged and a whole zoom reported frozen).
* a frozen frame under live noise is, as for freezedetect, not a freeze when the noise moves the
  picture by more than freezedetect's noise (-60 dB): a locked-off camera on a still scene looks
  exactly like it, and its sensor noise is what says it is live.
* cut typing at 10 fps: a hard change made from one frame to the next, of luma or of colour alone,
  is a cut at the first frame of the new picture, however few frames a second (before: a colour-only
  change was left to the colour evidence of dissolves and typed a dissolve, frames off); a
  cross-dissolve of a second is still a dissolve at 10 and 25 fps.
* whip pans at 8-12 fps: a handheld camera whipped across part of its picture's width in a tenth of
  a second moves further between two frames than the blocks of the motion-compensated difference
  search, which then spiked like a cut's; one global translation explains it (`gm_diff`) and its
  frames carry motion blur, so it is a camera move, not a cut (before: a cut at the whip). A jump
  cut across the same photograph (one palette), even one a translation explains, is sharp: a cut.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prism_assets.qc.detect import detect_freeze
from prism_assets.qc.events import Timeline
from prism_assets.qc.thresholds import QCThresholds

from .support import camera_media as cm


def _pass(path, tmp_path):
    from prism_assets.visual.decode import run_visual_pass

    vp = run_visual_pass(path, tmp_path / f"v_{path.stem}")
    return vp.stats, float(vp.meta["fps"])


def _freezes(stats: pd.DataFrame, fps: float) -> list[tuple[int, int]]:
    return [(e["start_frame"], e["end_frame"]) for e in detect_freeze(stats, Timeline(stats["t_s"].to_numpy(), fps), QCThresholds())]


def _bounds(stats: pd.DataFrame, fps: float) -> list[tuple[int, str, int, int]]:
    from prism_assets.visual.shots import detect_shots

    sh = detect_shots(stats, fps)
    return [(int(r.start_frame), r.transition_in, int(r.transition_in_first), int(r.transition_in_last)) for r in sh.itertuples()][1:]


# ---------------------------------------------------------------------------------------------
# freeze: the statistics of a picture changing in steps (unit)


def _held_stats(n: int, fps: float = 25.0) -> pd.DataFrame:
    """Moving footage with frames 50..149 'quiet' (filled in by the test)."""
    d = np.full(n, 6.0)
    return pd.DataFrame({"frame": np.arange(n), "t_s": np.arange(n) / fps, "diff": d, "ref_diff": d.copy(), "key_frame": np.arange(n) % 250 == 0,
                         "black_ratio": 0.0, "colour_bars": 0.0, "luma_mean": 100.0, "luma_std": 40.0})


@pytest.mark.parametrize("step", [0.15, 0.3, 0.6])
def test_a_move_sent_in_steps_is_not_a_freeze(step):
    """A slow move the encoder sends as a step every third frame (the frames between repeated
    exactly): every step is within the glitch level and has quiet frames around it, which made
    each look like a codec refresh; none is on a key frame, and freezedetect's reference moves at
    each one that passes its noise, so the picture is not frozen."""
    st = _held_stats(200)
    acc = 0.0
    for i in range(50, 150):
        if 50 < i < 147 and (i - 50) % 3 == 0:
            st.loc[i, "diff"] = step
            acc += step
            st.loc[i, "ref_diff"] = acc
            acc = 0.0 if acc > 0.255 else acc
        else:
            st.loc[i, ["diff", "ref_diff"]] = (0.0, acc)
    assert _freezes(st, 25.0) == []
    # the same steps on key frames (a codec re-coding the held picture at each GOP) are refreshes: held
    st["key_frame"] = False
    st.loc[[i for i in range(51, 147) if (i - 50) % 3 == 0], "key_frame"] = True
    assert _freezes(st, 25.0) == [(49, 149)]


def test_one_step_on_a_predicted_frame_ends_the_freeze_a_refresh_does_not():
    """Two held stretches of 1.6 s around one step (frames 49-89 and 90-129): a step on a predicted frame is the picture
    changing (freezedetect's reference moves: two stretches shorter than 2 s, no freeze); the same
    step on a key frame is the held picture re-coded (one freeze of 3.24 s)."""
    st = _held_stats(200)
    st.loc[50:129, ["diff", "ref_diff"]] = 0.0
    st.loc[90, ["diff", "ref_diff"]] = 0.6
    assert _freezes(st, 25.0) == []
    st.loc[90, "key_frame"] = True
    assert _freezes(st, 25.0) == [(49, 129)]


@pytest.mark.parametrize("keys", ["none", "all"])
def test_without_telling_key_frames_only_lone_steps_are_bridged(keys):
    """Older statistics (no `key_frame`) and intra-only codecs (every frame a key frame): a lone step
    is bridged, steps in a series are not."""
    st = _held_stats(200)
    st = st.drop(columns=["key_frame"]) if keys == "none" else st.assign(key_frame=True)
    st.loc[50:129, ["diff", "ref_diff"]] = 0.0
    st.loc[90, ["diff", "ref_diff"]] = 0.6
    assert _freezes(st, 25.0) == [(49, 129)]
    st.loc[[60, 75, 90, 105, 120], ["diff", "ref_diff"]] = 0.6
    assert _freezes(st, 25.0) == []


# ---------------------------------------------------------------------------------------------
# freeze on real footage and real photographs (integration: ffmpeg)


@pytest.mark.integration
@pytest.mark.parametrize("photo_grain,live_grain,zoom", [
    (0, 20, 0.0002),  # sensor noise on every frame, 0.5 % a second
    (12, 0, 0.0001),  # the photograph's own grain, zooming with it, 0.25 % a second
])
def test_slow_zoom_over_a_grainy_photo_is_not_a_freeze(tmp_path, photo_grain, live_grain, zoom):
    p = cm.zoom_over_photo(tmp_path / "zoom.mp4", zoom_per_frame=zoom, photo_grain=photo_grain, live_grain=live_grain, frames=100)
    assert cm.freezedetect_count(p) == 0  # the premise: freezedetect at its defaults sees the picture change
    st, fps = _pass(p, tmp_path)
    assert _freezes(st, fps) == []


@pytest.mark.integration
@pytest.mark.parametrize("zoom_per_s,capture_fps,frozen", [
    (0.001, 25 / 3, False),  # 0.1 % a second, captured at 8.3 fps: a step of about -55 dB every third frame
    (0.0005, 6.25, False),  # 0.05 % a second, captured at 6.25 fps: a step every fourth frame
    (0.0, 25 / 3, True),  # the photograph held: a freeze over the whole clip
])
def test_slow_zoom_captured_at_a_low_rate_is_not_a_freeze(tmp_path, zoom_per_s, capture_fps, frozen):
    """The codec sends the move as one small step per captured frame between exact repeats: each
    step, on a predicted frame, used to be bridged as a codec refresh and the whole zoom reported as
    a 6-s freeze; freezedetect's reference moves at the steps, and so does the freeze."""
    p = cm.zoom_at_low_rate(tmp_path / "zl.mpg", zoom_per_s=zoom_per_s, capture_fps=capture_fps)
    assert cm.freezedetect_count(p) == int(frozen)
    st, fps = _pass(p, tmp_path)
    fr = _freezes(st, fps)
    if frozen:  # (from the codec's first refinements of the picture, within 0.2 s, to the end)
        assert len(fr) == 1 and fr[0][0] <= 5 and fr[0][1] == len(st) - 1, fr
    else:
        assert fr == [], fr


@pytest.mark.integration
def test_a_held_frame_of_real_film_is_a_freeze_at_its_frames(tmp_path):
    truth = cm.freeze_in(tmp_path / "f.mp4")
    assert cm.freezedetect_count(tmp_path / "f.mp4") == 1
    st, fps = _pass(tmp_path / "f.mp4", tmp_path)
    ((a, b),) = _freezes(st, fps)
    assert abs(a - truth["first"]) <= 1 and abs(b - truth["last"]) <= 1, (a, b, truth)


@pytest.mark.integration
def test_the_held_picture_in_real_camera_footage_agrees_with_freezedetect(tmp_path):
    """The airfield footage holds its picture from 4.84 s to 7.2 s (frames 121-179): freezedetect
    reports it, and so does Prism, at the same frames."""
    st, fps = _pass(cm.AIRFIELD, tmp_path)
    assert cm.freezedetect_count(cm.AIRFIELD) == 1
    ((a, b),) = _freezes(st, fps)
    assert abs(a - 120) <= 2 and abs(b - 179) <= 2, (a, b)


@pytest.mark.integration
def test_a_frozen_frame_under_live_noise_is_not_a_freeze(tmp_path):
    """The judgment call, made as freezedetect makes it: live noise above -60 dB over a held frame
    is a live picture (a locked-off camera looks the same); the same held frame without it is a
    freeze (the test above)."""
    p = tmp_path / "fn.mp4"
    cm.freeze_in(p, live_noise=20, crf=23)
    assert cm.freezedetect_count(p) == 0
    st, fps = _pass(p, tmp_path)
    assert _freezes(st, fps) == []


# ---------------------------------------------------------------------------------------------
# cuts and dissolves at 10 fps (integration: ffmpeg)


@pytest.mark.integration
@pytest.mark.parametrize("src,colour,start_s", [
    (cm.AIRFIELD, "hue=h=120:s=2", 0.2),  # colour footage, the hue turned: luma almost unchanged
    (cm.FILM, "colorchannelmixer=rr=1.1:gg=0.8:bb=0.5:rb=0.1", 0.0),  # black-and-white film turning sepia
])
def test_hard_colour_change_at_10fps_is_a_cut_at_its_frame(tmp_path, src, colour, start_s):
    p = tmp_path / "c.mp4"
    at = cm.colour_step(p, src, colour, at=14, start_s=start_s)
    st, fps = _pass(p, tmp_path)
    assert _bounds(st, fps) == [(at, "cut", at, at)]


@pytest.mark.integration
def test_hard_colour_change_in_native_10fps_phone_footage(tmp_path):
    """Handheld phone footage recorded at about 10 fps: the colour change is a cut at its frame and
    nothing is typed a dissolve; the handheld whip pan at frame 10 is not a cut."""
    p = tmp_path / "fc.mp4"
    at = cm.colour_step(p, cm.FIRE, "hue=h=120:s=2", at=12, dur_s=3.0)
    st, fps = _pass(p, tmp_path)
    b = _bounds(st, fps)
    assert b == [(at, "cut", at, at)], b


@pytest.mark.integration
def test_the_whip_pan_in_native_10fps_phone_footage_is_not_a_cut(tmp_path):
    """The same footage without the colour change: its whip pan (frames 9-10) spikes the
    block-compensated difference (more than `cut_mc_ratio` over its neighbours), one translation
    explains it and its frames are blurred: no boundary at all."""
    p = tmp_path / "fire.mp4"
    cm.colour_step(p, cm.FIRE, "null", at=12, dur_s=3.0)
    st, fps = _pass(p, tmp_path)
    mc = st["mc_diff"].to_numpy()
    assert mc[10] > 2.0 * (np.mean([mc[8], mc[9], mc[11], mc[12]]) + 1)  # the premise: the blocks alone see a cut there
    assert _bounds(st, fps) == []


@pytest.mark.integration
@pytest.mark.parametrize("fps,whip_s,whip_w", [
    (8, 0.1, 0.3), (8, 0.2, 0.5),  # a third of the width in a tenth of a second; half of it in a fifth
    (10, 0.1, 0.15), (10, 0.1, 0.3),
    (12, 0.1, 0.15), (12, 0.15, 0.3), (12, 0.3, 1.0),  # ... a whole width in 0.3 s
])
def test_handheld_whip_pan_at_a_low_rate_is_not_a_cut(tmp_path, fps, whip_s, whip_w):
    p = tmp_path / "whip.mp4"
    cm.whip_pan_over_photo(p, fps=fps, whip_s=whip_s, whip_w=whip_w)
    st, rate = _pass(p, tmp_path)
    assert _bounds(st, rate) == []


@pytest.mark.integration
@pytest.mark.parametrize("fps,cut_at,jump_w", [
    (10, 20, 1.5),  # to another part of the photograph
    (10, 20, 0.25), (8, 18, 0.25),  # a jump a global translation explains: sharp, so a cut
])
def test_a_cut_in_the_same_panning_footage_is_still_found(tmp_path, fps, cut_at, jump_w):
    p = tmp_path / "wcut.mp4"
    truth = cm.whip_pan_over_photo(p, fps=fps, cut_at=cut_at, jump_w=jump_w)
    st, rate = _pass(p, tmp_path)
    assert _bounds(st, rate) == [(truth["cut"], "cut", truth["cut"], truth["cut"])]


@pytest.mark.integration
def test_hard_cut_between_real_footage_at_10fps(tmp_path):
    p = tmp_path / "cut.mp4"
    at = cm.cut_between(p, cm.AIRFIELD, cm.FILM)
    st, fps = _pass(p, tmp_path)
    assert _bounds(st, fps) == [(at, "cut", at, at)]


@pytest.mark.integration
@pytest.mark.parametrize("fps", [10, 25])
def test_cross_dissolve_of_real_footage_stays_a_dissolve(tmp_path, fps):
    p = tmp_path / "d.mp4"
    first, last = cm.dissolve_between(p, cm.AIRFIELD, cm.FILM, fps=fps)
    st, rate = _pass(p, tmp_path)
    ((at, kind, lo, hi),) = _bounds(st, rate)
    assert kind == "dissolve" and first <= at <= last and lo <= first + 1 and hi >= last - 1, (at, kind, lo, hi, first, last)
