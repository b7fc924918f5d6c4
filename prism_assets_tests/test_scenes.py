"""Unit tests of prism_assets.structure.scenes on constructed shots, pictures (made in process with
Pillow) and audio segments: no subprocess."""

from __future__ import annotations

import colorsys
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prism_assets.structure.scenes import (
    COLUMNS,
    SceneParams,
    boundary_evidence,
    group_scenes,
    look_similarity,
    scene_accuracy,
    shot_colour_features,
    usable_embeddings,
)

P = SceneParams()


def _jpeg(hue: float, angle: int, seed: int = 0) -> bytes:
    """A 'location' picture: a noisy gradient in the location's hue, framed by `angle` (a crop of
    the same canvas) with an accent box whose place depends on the angle."""
    rng = np.random.default_rng(seed)
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 0.85)
    y, x = np.mgrid[0:270, 0:480] / np.array([270, 480])[:, None, None]
    base = np.stack([r * (0.5 + 0.5 * x), g * (0.6 + 0.4 * y), b * (0.7 + 0.3 * x * y)], axis=-1) * 255
    base += rng.normal(0, 12, base.shape)
    z = [1.0, 0.7, 0.5][angle % 3]
    h, w = int(270 * z), int(480 * z)
    oy, ox = int((270 - h) * (0.2 + 0.3 * angle % 1)), int((480 - w) * [0.0, 0.8, 0.3][angle % 3])
    crop = np.clip(base[oy:oy + h, ox:ox + w], 0, 255).astype(np.uint8)
    im = Image.fromarray(crop).resize((320, 180))
    ar, ag, ab = colorsys.hsv_to_rgb((hue + 0.5) % 1, 0.8, 0.9)
    box = (40 + 70 * angle, 30 + 20 * angle, 110 + 70 * angle, 140 + 10 * angle)
    im.paste((int(ar * 255), int(ag * 255), int(ab * 255)), box)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _shots(durs: list[float], black: set[int] = frozenset()) -> pd.DataFrame:
    edges = np.concatenate([[0.0], np.cumsum(durs)])
    rows = []
    for i in range(len(durs)):
        rows.append({"shot_index": i, "start_frame": int(round(edges[i] * 25)), "end_frame": int(round(edges[i + 1] * 25)) - 1,
                     "start_s": edges[i], "end_s": edges[i + 1], "transition_in": "start" if i == 0 else "cut",
                     "transition_out": "end" if i == len(durs) - 1 else "cut", "is_black": i in black, "luma_mean": 16.0 if i in black else 120.0})
    return pd.DataFrame(rows)


def _title(looks: list[tuple[float, int] | None], dur: float = 3.0):
    """Shots of `dur` s; a look is (hue, angle) or None for a black shot. Returns (shots, colour)."""
    shots = _shots([dur] * len(looks), {i for i, lk in enumerate(looks) if lk is None})
    pics = [(i, _jpeg(lk[0], lk[1], seed=10 * i + k)) for i, lk in enumerate(looks) if lk is not None for k in range(2)]
    return shots, shot_colour_features(pics)


RED, BLUE, GREEN = 0.0, 0.62, 0.33


def _starts(scenes: pd.DataFrame) -> list[int]:
    return [int(s) for s in scenes["start_shot"]]


def test_look_features_separate_locations_not_angles():
    col = shot_colour_features([(0, _jpeg(RED, 0)), (1, _jpeg(RED, 2, seed=1)), (2, _jpeg(BLUE, 0)), (3, _jpeg(GREEN, 1))])
    same_place = look_similarity(col[0], col[1])
    assert same_place >= P.link_sim
    for other in (2, 3):
        assert look_similarity(col[0], col[other]) <= P.change_sim
    assert look_similarity(col[0], col[0]) == pytest.approx(1.0)


def test_a_picture_that_does_not_decode_is_skipped():
    col = shot_colour_features([(0, b"not a jpeg"), (1, _jpeg(RED, 0)), (1, b"\xff\xd8broken")])
    assert set(col) == {1}
    assert col[1].shape == shot_colour_features([(1, _jpeg(RED, 0))])[1].shape


def test_shot_reverse_shot_stays_one_scene():
    # A B A B A B: two different looks alternating (two people facing each other)
    shots, col = _title([(RED, 0), (BLUE, 1), (RED, 0), (BLUE, 1), (RED, 0), (BLUE, 1)])
    scenes = group_scenes(shots, col, None, [], [], P)
    assert _starts(scenes) == [0]
    assert scenes["shots"].iloc[0] == list(range(6))


def test_two_looks_in_two_blocks_are_two_scenes():
    shots, col = _title([(RED, 0), (RED, 1), (RED, 0), (BLUE, 0), (BLUE, 2), (BLUE, 0)])
    scenes = group_scenes(shots, col, None, [], [], P)
    assert _starts(scenes) == [0, 3]
    assert list(scenes.columns) == COLUMNS
    assert scenes["boundary_in"].iloc[0] == "start"
    assert "look change" in scenes["boundary_in"].iloc[1]
    assert scenes["start_s"].iloc[1] == pytest.approx(9.0) and scenes["end_s"].iloc[1] == pytest.approx(18.0)
    assert 0.5 <= scenes["boundary_score"].iloc[1] <= 1.0


def test_black_splits_one_look_and_joins_the_scene_before():
    shots, col = _title([(RED, 0), (RED, 1), (RED, 0), None, (RED, 1), (RED, 0), (RED, 2)])
    scenes = group_scenes(shots, col, None, [{"kind": "silence", "start_s": 8.8, "end_s": 12.4}], [], P)
    assert _starts(scenes) == [0, 4]
    assert scenes["shots"].iloc[0] == [0, 1, 2, 3]  # the black shot ends the scene before it
    assert "black 3.0 s" in scenes["boundary_in"].iloc[1] and "silence 3.6 s" in scenes["boundary_in"].iloc[1]
    assert scenes["boundary_score"].iloc[1] == pytest.approx(min(1.0, P.w_black + P.w_silence))  # the same look: no visual part


def test_leading_and_trailing_black_belong_to_the_first_and_last_scene():
    shots, col = _title([None, (RED, 0), (RED, 1), (BLUE, 0), (BLUE, 1), None])
    scenes = group_scenes(shots, col, None, [], [], P)
    assert scenes["shots"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_speech_across_the_cut_vetoes_a_look_change_but_not_black():
    looks = [(RED, 0), (RED, 1), (RED, 0), (BLUE, 0), (BLUE, 1), (BLUE, 0)]
    shots, col = _title(looks)
    assert _starts(group_scenes(shots, col, None, [], [], P)) == [0, 3]
    spoken = [(8.0, 10.5)]
    assert _starts(group_scenes(shots, col, None, [{"kind": "speech", "start_s": 6.5, "end_s": 12.0}], spoken, P)) == [0]
    assert _starts(group_scenes(shots, col, None, [], [(5.0, 8.9)], P)) == [0, 3]  # speech stopping before the cut vetoes nothing
    shots_b, col_b = _title(looks[:3] + [None] + looks[3:])
    assert _starts(group_scenes(shots_b, col_b, None, [], [(8.0, 13.5)], P)) == [0, 4]  # black outweighs speech


def test_a_pause_bridged_speech_segment_is_a_weaker_veto_than_a_spoken_line():
    shots, col = _title([(RED, 0), (RED, 1), (BLUE, 0), (BLUE, 1)])
    seg = [{"kind": "speech", "start_s": 4.0, "end_s": 8.0}]
    gaps = boundary_evidence(shots, col, None, seg, [(4.0, 5.9), (6.3, 8.0)], P)
    line = boundary_evidence(shots, col, None, seg, [(4.0, 8.0)], P)
    assert gaps["speech"].iloc[1] == P.speech_segment_factor and line["speech"].iloc[1] == 1.0
    assert line["score"].iloc[1] < gaps["score"].iloc[1]


def test_silence_alone_does_not_split_one_look():
    shots, col = _title([(GREEN, 0), (GREEN, 1), (GREEN, 2), (GREEN, 0)])
    scenes = group_scenes(shots, col, None, [{"kind": "silence", "start_s": 5.0, "end_s": 7.5}], [], P)
    assert _starts(scenes) == [0]


def test_a_lone_short_insert_joins_a_neighbour():
    shots, col = _title([(RED, 0), (RED, 1), (RED, 0), (GREEN, 0), (BLUE, 0), (BLUE, 1), (BLUE, 0)])
    scenes = group_scenes(shots, col, None, [], [], P)
    assert len(scenes) == 2 and _starts(scenes)[1] in (3, 4)
    longer = group_scenes(shots, col, None, [], [], SceneParams(min_scene_shots=1))
    assert _starts(longer) == [0, 3, 4]


def test_untrained_embeddings_are_ignored_and_trained_ones_are_used():
    rng = np.random.default_rng(0)
    shots, col = _title([(RED, 0), (RED, 1), (RED, 0), (RED, 1), (RED, 0), (RED, 1)])
    a, b = rng.normal(size=512), rng.normal(size=512)
    emb = pd.DataFrame({"shot_index": range(6), "embedding": [list(a + 0.05 * rng.normal(size=512)) for _ in range(3)]
                        + [list(b + 0.05 * rng.normal(size=512)) for _ in range(3)]})
    noise = pd.DataFrame({"shot_index": range(6), "embedding": [list(rng.normal(size=512)) for _ in range(6)]})
    assert len(group_scenes(shots, col, usable_embeddings(noise, {"weights_trained": True}), [], [], P)) > 1  # noise splits one look: what the gate prevents
    assert usable_embeddings(noise, {"weights": "random-init", "weights_trained": False}) is None
    assert usable_embeddings(emb, {"weights": "random-init", "weights_trained": False}) is None
    assert usable_embeddings(emb, None) is None
    trained = usable_embeddings(emb, {"weights_trained": True})
    assert set(trained) == set(range(6)) and all(np.linalg.norm(v) == pytest.approx(1.0) for v in trained.values())
    assert _starts(group_scenes(shots, col, None, [], [], P)) == [0]
    assert _starts(group_scenes(shots, col, trained, [], [], P)) == [0, 3]  # one look, two settings the embeddings tell apart


def test_empty_one_shot_and_all_black_titles():
    empty = group_scenes(_shots([]).reindex(columns=["shot_index", "start_s", "end_s", "is_black"]), {}, None, [], [], P)
    assert empty.empty and list(empty.columns) == COLUMNS
    shots, col = _title([(RED, 0)])
    one = group_scenes(shots, col, None, [], [], P, pd.DataFrame({"shot_index": [0], "frame": [30], "t_s": [1.2], "score": [2.0]}))
    assert one[["start_shot", "end_shot", "n_shots", "keyframe_shot", "keyframe_frame"]].iloc[0].tolist() == [0, 0, 1, 0, 30]
    dark = group_scenes(_shots([2.0, 2.0], {0, 1}), {}, None, [], [], P)
    assert dark["shots"].tolist() == [[0, 1]] and pd.isna(dark["keyframe_shot"].iloc[0])


def test_keyframe_is_the_best_of_the_most_typical_shot():
    # three red shots, one of them mostly another colour (its accent box is huge): not typical
    shots, col = _title([(RED, 0), (RED, 1), (RED, 0)])
    odd = shot_colour_features([(1, _jpeg(0.08, 2))])[1]
    col[1] = 0.5 * col[1] + 0.5 * odd
    kf = pd.DataFrame({"shot_index": [0, 0, 1, 2], "frame": [10, 40, 100, 170], "t_s": [0.4, 1.6, 4.0, 6.8], "score": [1.0, 3.0, 9.0, 2.0]})
    scenes = group_scenes(shots, col, None, [], [], P, kf)
    sims = {s: look_similarity(col[s], np.mean([col[0], col[1], col[2]], axis=0)) for s in (0, 1, 2)}
    best = max(sims, key=sims.get)
    assert best != 1
    assert int(scenes["keyframe_shot"].iloc[0]) == best
    assert int(scenes["keyframe_frame"].iloc[0]) == int(kf[kf.shot_index == best].sort_values("score").frame.iloc[-1])
    without = group_scenes(shots, col, None, [], [], P, None)
    assert int(without["keyframe_shot"].iloc[0]) == best and pd.isna(without["keyframe_frame"].iloc[0])
    only_odd = group_scenes(shots, col, None, [], [], P, kf[kf.shot_index == 1])
    assert int(only_odd["keyframe_shot"].iloc[0]) == 1  # the only shot with a keyframe


def test_params_from_config():
    assert SceneParams.from_config(None) == SceneParams()
    assert SceneParams.from_config({"window_shots": 4}).window_shots == 4
    with pytest.raises(ValueError, match="unknown scene settings: windw"):
        SceneParams.from_config({"windw": 3})


def test_scene_accuracy_counts_each_truth_start_once():
    found = pd.DataFrame({"start_shot": [0, 4, 5, 11, 20]})
    acc = scene_accuracy(found, [0, 5, 10, 15], 25, tolerance_shots=1)
    assert (acc["matched"], acc["found"], acc["truth"]) == (2, 4, 3)
    assert acc["precision"] == pytest.approx(0.5) and acc["recall"] == pytest.approx(2 / 3)
    assert acc["missed"] == [15] and acc["spurious"] == [4, 20]
    assert scene_accuracy(found, [0, 5, 10, 15], 25, tolerance_shots=0)["matched"] == 1
    assert scene_accuracy(pd.DataFrame({"start_shot": [0]}), [0], 3)["f1"] == 1.0
