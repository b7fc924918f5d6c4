"""Scenes on generated titles with exact scene truth (support/scene_media.py): ffmpeg renders the
title, ffmpeg extracts the shots' pictures, the shots table comes from the truth's exact cuts and
the audio segments from where the sound was placed (checked here against the decoded audio)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from prism_assets.structure.scenes import SceneParams, group_scenes, scene_accuracy, shot_colour_features
from prism_assets_tests.support.scene_media import SR, audio_segments, frames_for_shots, keyframes_frame, make_scene_title, shots_frame

pytestmark = pytest.mark.integration

SEEDS = (101, 202)


@pytest.fixture(scope="module")
def titles(tmp_path_factory):
    out = {}
    for seed in SEEDS:
        path = tmp_path_factory.mktemp("scenes") / f"title{seed}.mp4"
        truth = make_scene_title(path, seed, n_scenes=4)
        out[seed] = (path, truth, frames_for_shots(path, truth))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_scene_boundaries_within_one_shot(titles, seed):
    path, truth, pictures = titles[seed]
    shots = shots_frame(truth)
    segments, speech = audio_segments(truth)
    scenes = group_scenes(shots, shot_colour_features(pictures), None, segments, speech, SceneParams(), keyframes_frame(truth))
    acc = scene_accuracy(scenes, truth["scene_starts"], len(shots), tolerance_shots=1)
    assert acc["f1"] >= 0.9, (acc, list(scenes["boundary_in"]))
    # the scenes tile the title: every shot once, in order, times from the shots
    assert [s for members in scenes["shots"] for s in members] == list(range(len(shots)))
    assert scenes["start_s"].iloc[0] == 0.0 and scenes["end_s"].iloc[-1] == pytest.approx(truth["duration_s"])
    # each representative keyframe lies inside its scene, on a picture shot of the scene's own location
    scene_of = {s["shot_index"]: s["scene"] for s in truth["shots"]}
    for row in scenes.itertuples():
        assert row.keyframe_shot in row.shots
        assert not truth["shots"][int(row.keyframe_shot)]["is_black"]
        assert row.start_s <= row.keyframe_t_s < row.end_s
        majority = max(set(scene_of[s] for s in row.shots), key=lambda k: sum(scene_of[s] == k for s in row.shots))
        assert scene_of[int(row.keyframe_shot)] == majority


def test_generated_title_matches_its_truth(titles):
    """The truth's frame count and sound placement hold in the encoded file: the derived segments
    are the real audio's (silence quiet, speech/music loud)."""
    for path, truth, pictures in titles.values():
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames,width,height",
                                "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True, timeout=120).stdout.strip().split(",")
        assert [int(x) for x in probe] == [640, 360, truth["n_frames"]]
        assert {s for s, _ in pictures} == {s["shot_index"] for s in truth["shots"] if not s["is_black"]}
        pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(SR // 6), "-"],
                             check=True, capture_output=True, timeout=120).stdout
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
        rate = SR // 6
        for seg in truth["segments"]:
            a, b = int((seg["start_s"] + 0.1) * rate), int((seg["end_s"] - 0.1) * rate)
            if b - a < rate // 5:
                continue
            rms_db = 20 * np.log10(np.sqrt(np.mean(x[a:b] ** 2)) + 1e-9)
            if seg["kind"] == "silence":
                assert rms_db < -50, (seg, rms_db)
            else:
                assert rms_db > -35, (seg, rms_db)
        assert len(truth["scene_starts"]) == 4 and truth["scene_starts"][0] == 0
