"""Asset checks of the visual outputs (evaluated in the step, per title, on the value just produced)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity

from ..core import checks
from ..core.artifacts import Bundle
from .shots import TRANSITIONS

NORM_TOL = 1e-3


def _stats_contiguous(df: pd.DataFrame):
    f = df["frame"].to_numpy()
    ok = len(f) > 0 and f[0] == 0 and bool(np.all(np.diff(f) == 1))
    t = df["t_s"].to_numpy()
    mono = bool(np.all(np.diff(t) >= 0)) if len(t) > 1 else True
    return ok and mono, {"frames": int(len(f)), "t_monotonic": mono}


def _stats_finite(df: pd.DataFrame):
    cols = ["luma_mean", "luma_std", "black_ratio", "diff", "hist_diff", "sharpness", "exposure", "colorfulness"]
    bad = {c: int((~np.isfinite(df[c].to_numpy(dtype=float))).sum()) for c in cols}
    return sum(bad.values()) == 0, {"non_finite": bad}


def _stats_frame_count(df: pd.DataFrame):
    expected = df.attrs.get("producer", {}).get("expected_frames")
    if not expected:
        return True, {"frames": len(df), "expected_frames": None}
    return abs(len(df) - expected) <= 1, {"frames": len(df), "expected_frames": int(expected)}


STATS_RULES = (
    checks.CheckRule("frames_contiguous", "One row per decoded frame, numbered 0..n-1, timestamps non-decreasing.", _stats_contiguous, blocking=True),
    checks.CheckRule("stats_finite", "Every per-frame statistic is finite.", _stats_finite),
    checks.CheckRule("frame_count_matches_probe", "Decoded frames = the probe's frame count (±1); a mismatch means decode errors.",
                     _stats_frame_count, severity=AssetCheckSeverity.WARN),
)


def _samples_index_ok(b: Bundle):
    df = b.main
    sizes = {name[:-5]: Path(p).stat().st_size for name, p in b.files.items()}
    bad = 0
    for r in df.itertuples():
        if r.offset < 0 or r.length <= 0 or r.offset + r.length > sizes.get(r.pack, -1):
            bad += 1
    return bad == 0, {"pictures": len(df), "out_of_pack": bad, "pack_bytes": sizes}


def _samples_rate(b: Bundle):
    df = b.main
    meta = df.attrs.get("producer", {})
    dur, rate = meta.get("duration_s"), meta.get("sample_fps")
    n = int((df["kind"] == "sample").sum())
    if not dur or not rate:
        return n > 0, {"samples": n}
    expected = math.ceil(dur * rate - 1e-6)
    return abs(n - expected) <= 1, {"samples": n, "expected": expected}


SAMPLES_RULES = (
    checks.CheckRule("pictures_in_packs", "Every picture of the index lies inside its pack.", _samples_index_ok, blocking=True),
    checks.CheckRule("sample_rate", "One embedding sample per 1/sample_fps seconds (±1).", _samples_rate),
)


def _shots_cover(df: pd.DataFrame):
    n = df.attrs.get("producer", {}).get("frames")
    s, e = df["start_frame"].to_numpy(), df["end_frame"].to_numpy()
    ok = len(df) > 0 and s[0] == 0 and bool(np.all(s[1:] == e[:-1] + 1)) and bool(np.all(e >= s))
    if n is not None:
        ok = ok and int(e[-1]) == n - 1
    return ok, {"shots": len(df), "frames": n, "last_end_frame": int(e[-1]) if len(e) else None}


def _shots_transitions(df: pd.DataFrame):
    problems = []
    for r in df.itertuples():
        if r.transition_in not in TRANSITIONS:
            problems.append(f"shot {r.shot_index}: unknown transition {r.transition_in}")
        if (r.shot_index == 0) != (r.transition_in == "start"):
            problems.append(f"shot {r.shot_index}: 'start' must be the first shot's and only its")
        if r.transition_in_first > r.transition_in_last:
            problems.append(f"shot {r.shot_index}: transition span reversed")
        if r.transition_in in ("dissolve", "fade_in", "fade_out") and not (r.transition_in_first <= r.start_frame <= r.transition_in_last + 1):
            problems.append(f"shot {r.shot_index}: boundary {r.start_frame} outside its transition {r.transition_in_first}-{r.transition_in_last}")
        if not r.end_s > r.start_s:
            problems.append(f"shot {r.shot_index}: end_s <= start_s")
    return not problems, {"problems": problems[:20]}


SHOTS_RULES = (
    checks.CheckRule("shots_cover_all_frames", "Shots are contiguous, start at frame 0 and end at the last frame.", _shots_cover, blocking=True),
    checks.CheckRule("transitions_well_formed", "Known transition types; 'start' only first; gradual spans contain their boundary; times increase.", _shots_transitions),
)


def _kf_per_shot(b: Bundle):
    df = b.main
    shots = df.attrs.get("producer", {}).get("non_black_shots", [])
    have = set(df["shot_index"].tolist())
    missing = [s for s in shots if s not in have]
    return not missing, {"non_black_shots": len(shots), "missing": missing[:50]}


def _kf_inside(b: Bundle):
    df = b.main
    ranges = df.attrs.get("producer", {}).get("shot_ranges", {})
    bad = [int(r.frame) for r in df.itertuples() if not (ranges[str(r.shot_index)][0] <= r.frame <= ranges[str(r.shot_index)][1])]
    finite = bool(np.isfinite(df["score"].to_numpy(dtype=float)).all()) if len(df) else True
    return not bad and finite, {"outside_shot": bad[:20], "scores_finite": finite}


KEYFRAME_RULES = (
    checks.CheckRule("keyframe_per_shot", "Every non-black shot has at least one keyframe.", _kf_per_shot),
    checks.CheckRule("keyframes_inside_shots", "Every keyframe lies inside its shot and has a finite score.", _kf_inside),
)


def _emb_ok(df: pd.DataFrame):
    if not len(df):
        return False, {"rows": 0}
    m = np.stack(df["embedding"].to_numpy())
    norms = np.linalg.norm(m, axis=1)
    dims = {int(len(e)) for e in df["embedding"]}
    finite = bool(np.isfinite(m).all())
    ok = finite and len(dims) == 1 and bool(np.all(np.abs(norms - 1) <= NORM_TOL))
    return ok, {"rows": len(df), "dims": sorted(dims), "norm_min": float(norms.min()), "norm_max": float(norms.max()), "finite": finite}


def _emb_count(df: pd.DataFrame):
    meta = df.attrs.get("producer", {})
    exp = meta.get("expected_rows")
    return exp is not None and len(df) == exp, {"rows": len(df), "expected": exp}


def _emb_dim(df: pd.DataFrame):
    want = (df.attrs.get("producer", {}).get("model") or {}).get("embed_dim")
    dims = {int(len(e)) for e in df["embedding"]}
    return dims == {want}, {"dims": sorted(dims), "model_embed_dim": want}


EMB_RULES = (
    checks.CheckRule("count_matches_samples", "One embedding per sample and per keyframe.", _emb_count),
    checks.CheckRule("dims_fixed", "Every embedding has the model's dimension.", _emb_dim),
    checks.CheckRule("normalized_finite", "Embeddings are finite and L2-normalized (|norm - 1| <= 1e-3).", _emb_ok),
)
SHOT_EMB_RULES = (
    checks.CheckRule("normalized_finite", "Shot embeddings are finite and L2-normalized.", _emb_ok),
    checks.CheckRule("one_per_shot", "One pooled embedding per shot that has any embedding.",
                     lambda df: (bool(df["shot_index"].is_unique), {"shots": len(df)})),
)


def _posters_clean(b: Bundle):
    df = b.main
    bad = df.attrs.get("producer", {}).get("excluded_chosen", [])
    return not bad and bool(np.isfinite(df["score"].to_numpy(dtype=float)).all()) if len(df) else True, {"posters": len(df), "bad": bad}


def _posters_count(b: Bundle):
    df = b.main
    meta = df.attrs.get("producer", {})
    want, avail = meta.get("count"), meta.get("eligible")
    ok = len(df) == min(want, avail) if want is not None and avail is not None else len(df) > 0
    return ok, {"posters": len(df), "requested": want, "eligible_candidates": avail}


POSTER_RULES = (
    checks.CheckRule("no_black_bars_transition", "No poster comes from a black, blank, colour-bar or transition frame; scores finite.", _posters_clean),
    checks.CheckRule("poster_count", "min(N, eligible candidates) posters, ranked.", _posters_count, severity=AssetCheckSeverity.WARN),
)
