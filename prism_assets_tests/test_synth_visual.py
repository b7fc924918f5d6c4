"""benchmarks/: synthetic shot-boundary clips with exact ground truth, the boundary scorer, and the
PySceneDetect baseline runner. Fast (one small composite, one scenedetect pass on a 31 s clip)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.scenedetect_runner import detect_with_scenedetect

from .support.shot_scoring import gt_items, score_boundaries, shots_to_boundaries
from .support.visual_media import make_composite

pytestmark = pytest.mark.integration

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
QC_EXPECTED = [96, 192, 288, 456, 480, 600, 637, 250, 340, 680]  # 7 cuts + one inside each gradual
BBB_EXPECTED = [283, 376, 551, 20]


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "composite.mp4"
    gt = make_composite(out, fps=25, width=320, height=180, seed=1)  # self-check (PyAV) runs inside
    return out, gt


def exact_boundaries(gt: dict) -> list[int]:
    """Cuts plus the middle frame of every gradual transition."""
    return [it["frame"] if it["kind"] == "cut" else (it["first"] + it["last"]) // 2 for it in gt_items(gt)]


def load(name: str) -> dict:
    path = MEDIA / name
    if not path.exists():
        pytest.fail(f"shared test media missing: {path}")
    return json.loads(path.read_text())


def test_composite_frame_count_and_gt_consistent(composite):
    import av

    out, gt = composite
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
        assert len(c.streams.audio) == 1
    assert n == gt["n_frames"] == gt["self_check"]["decoded_frames"]
    assert json.loads(out.with_suffix(".gt.json").read_text()) == json.loads(json.dumps(gt))

    qc = load("qc_composite.gt.json")
    assert set(qc) <= set(gt), "same top-level keys as qc_composite.gt.json"
    assert (gt["fps"], gt["width"], gt["height"]) == (25, 320, 180)
    assert gt["duration_s"] == pytest.approx(n / 25)
    assert 30 <= gt["duration_s"] <= 40

    cuts = gt["hard_cuts"]
    assert cuts == sorted(set(cuts)) and len(cuts) >= 5
    assert all(1 <= c <= n - 1 for c in cuts)
    ev_cuts = sorted(e["frame"] for e in gt["events"] if e["type"] in ("hard_cut", "hard_cut_to_black"))
    assert ev_cuts == cuts
    types = {e["type"] for e in gt["events"]}
    assert {"hard_cut", "hard_cut_to_black", "dissolve", "black", "fade_in", "fade_out", "freeze",
            "title_overlay_not_a_cut", "camera_motion_not_a_cut", "near_static_not_a_cut"} <= types
    for e in gt["events"]:
        if "frame" in e:
            assert 0 <= e["frame"] < n
        if "first" in e:
            assert 0 <= e["first"] <= e["last"] < n, e
    # transitions lie strictly inside the clip and do not overlap a cut
    for e in gt["events"]:
        if e["type"] in ("dissolve", "fade_in", "fade_out"):
            assert not any(e["first"] <= c <= e["last"] for c in cuts), e
    black = [e for e in gt["events"] if e["type"] == "black"]
    assert black[-1]["last"] == n - 1, "ends on black after the fade-out"
    assert any(e["type"] == "hard_cut_to_black" and e["frame"] == b["first"] for e in gt["events"] for b in black)
    assert len(gt["shots"]) == 9
    for s in gt["shots"]:
        assert 0 <= s["out_first"] <= s["out_last"] < n


def test_score_exact_and_perturbed_on_composite(composite):
    _, gt = composite
    exact = exact_boundaries(gt)
    assert len(exact) == len(gt["hard_cuts"]) + 3  # + dissolve, fade-in, fade-out
    s = score_boundaries(exact, gt)
    assert (s["tp"], s["fp"], s["fn"], s["f1"]) == (len(exact), 0, 0, 1.0)

    c = gt["hard_cuts"][0]
    s = score_boundaries([b + 2 if b == c else b for b in exact], gt)  # shifted by 2 > tol=1
    assert (s["fp"], s["fn"]) == (1, 1) and s["false_positives"] == [c + 2]
    s = score_boundaries([b + 1 if b == c else b for b in exact], gt)  # within tol
    assert (s["fp"], s["fn"], s["f1"]) == (0, 0, 1.0)

    freeze = next(e for e in gt["events"] if e["type"] == "freeze")
    s = score_boundaries(exact + [freeze["last"] - 5], gt)  # extra boundary inside the freeze
    assert (s["tp"], s["fp"], s["fn"]) == (len(exact), 1, 0)

    dis = next(e for e in gt["events"] if e["type"] == "dissolve")
    s = score_boundaries([b for b in exact if not dis["first"] <= b <= dis["last"]], gt)
    assert (s["fp"], s["fn"]) == (0, 1) and s["missed"][0]["type"] == "dissolve"
    s = score_boundaries(exact + [dis["first"]], gt)  # a second boundary in the same dissolve
    assert (s["fp"], s["fn"]) == (1, 0)


def test_score_shared_ground_truth():
    qc, bbb = load("qc_composite.gt.json"), load("big_buck_bunny_0_30.gt.json")
    assert len(gt_items(qc)) == 10 and len(gt_items(bbb)) == 4
    for gt, exact in ((qc, QC_EXPECTED), (bbb, BBB_EXPECTED)):
        s = score_boundaries(exact, gt)
        assert (s["tp"], s["fp"], s["fn"], s["precision"], s["recall"], s["f1"]) == (len(exact), 0, 0, 1.0, 1.0, 1.0)
    # gradual ranges are inclusive, widened by tol
    assert score_boundaries([6], bbb)["tp"] == 1 and score_boundaries([49], bbb)["tp"] == 1
    assert score_boundaries([50], bbb)["tp"] == 0
    # strict: no free pass at the end of a black segment (fade-in already matched by 340)
    s = score_boundaries(QC_EXPECTED + [336], qc)
    assert (s["fp"], s["fn"]) == (1, 0)
    # degenerate denominators
    s = score_boundaries([], {"hard_cuts": []})
    assert (s["precision"], s["recall"], s["tp"], s["fp"], s["fn"]) == (1.0, 1.0, 0, 0, 0)
    s = score_boundaries([], qc)
    assert (s["precision"], s["recall"], s["fn"], s["f1"]) == (1.0, 0.0, 10, 0.0)


def test_shots_to_boundaries():
    df = pd.DataFrame({"start_frame": [283, 0, 551, 376], "end_frame": [375, 282, 719, 550]})
    assert shots_to_boundaries(df) == [283, 376, 551]
    assert score_boundaries(shots_to_boundaries(df), load("big_buck_bunny_0_30.gt.json"))["tp"] == 3


def test_scenedetect_adaptive_runs_on_qc_composite():
    path = MEDIA / "qc_composite.mp4"
    if not path.exists():
        pytest.fail(f"shared test media missing: {path}")
    r = detect_with_scenedetect(path, detector="adaptive")
    b = r["boundaries"]
    assert b and b == sorted(b) and all(isinstance(x, int) for x in b)
    assert r["seconds"] > 0 and r["backend"] in ("opencv", "pyav")
