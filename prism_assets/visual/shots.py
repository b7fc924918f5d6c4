"""Shot and transition detection from the visual pass's per-frame statistics (no pixels needed).

Detectors are swappable: `DETECTORS` maps a name to a function (stats, fps, params) -> shots table.
The default, `prism-blend`, combines

* **black segments** (blackdetect's definition: >= `black_pic_th` of the pixels below pix_th),
  each its own shot flagged `is_black`;
* **hard cuts**: a luma-difference spike `cut_ratio` times above its neighbours (like PySceneDetect's
  adaptive detector) that is also a real change two frames apart (`skip_diff`, so a one-frame flash
  is not a cut) with some colour change, or a very large spike (`cut_strong_diff`)
  whatever the colours (two framings of one set share a palette), or a large colour-histogram change,
  or a spike of the motion-compensated difference (`mc_diff`: blocks matched against the previous
  frame shifted) `cut_mc_ratio` times above its neighbours: between two busy, fast-moving pictures the
  plain differences of the neighbours are as large as the cut's, the compensated ones are not
  (unless a **whip pan**, `_whip_pan`: one global translation explains the change, `gm_diff`, and the
  frames at it are motion-blurred, less sharp than the shots on both sides);
  or a **colour step** (`_colour_step`): a large colour-histogram change made in one frame (the
  frame carries most of the change across a short lag around it, its neighbours little) that
  persists (the longest lag still sees it), whatever the luma does: a hard change of colour at an
  unchanged brightness, a cut at its frame at any frame rate (at 10 fps it used to be left to the
  colour-change evidence of dissolves, placed at the middle of their lag);
* **gradual transitions** (dissolves, fades): a frame that is the average of the frames k before and
  k after (`blend_k` small) while those two differ (`span_k` large) lies inside a linear blend.
  Camera motion and cuts give `blend_k` >= `span_k` / 2, static content has no span, so neither
  looks like a transition. A blend next to a black segment is a fade (in or out), otherwise a dissolve.
  A transition lasts at least `grad_min_s` seconds (at least `grad_min_frames` frames at low rates).

Boundaries: a cut's frame; a dissolve's middle frame; a fade's black edge (the first black frame of
a fade-out, the first picture frame after the black of a fade-in). Shots tile the title: contiguous,
0-based, inclusive frame ranges covering every frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..core.config import known_settings

SHOTS_CODE_VERSION = "shots-5"  # 5: whip pans (global motion and blur) are not cuts; 4: colour steps are cuts at any frame rate, transitions' length in seconds; 3: motion-compensated cuts
SHOTS_SCHEMA_VERSION = "1.0"
TRANSITIONS = ("start", "cut", "dissolve", "fade_in", "fade_out")
SHOT_COLUMNS = [
    "shot_index", "start_frame", "end_frame", "start_s", "end_s", "n_frames",
    "transition_in", "transition_in_first", "transition_in_last", "transition_out", "transition_out_first", "transition_out_last",
    "is_black", "luma_mean", "boundary_score",
]


@dataclass(frozen=True)
class ShotParams:
    black_pic_th: float = 0.98
    min_black_frames: int = 1
    cut_min_diff: float = 10.0  # mean abs luma difference (0-255) a cut must at least have
    cut_ratio: float = 3.0  # ... and this many times the neighbours' mean
    cut_window: int = 2  # neighbours each side
    cut_min_hist: float = 0.10  # colour-histogram change (0..1) a weak-luma cut needs
    cut_strong_diff: float = 30.0  # a luma spike this large (and cut_ratio above its neighbours) is a cut whatever the
    # colours say (two shots of the same palette: shot/reverse-shot in one set, a cut between two framings of one scene)
    cut_hist_only: float = 0.45  # a histogram change this large is a cut whatever the luma says
    cut_min_mc: float = 15.0  # motion-compensated difference a cut needs when only it stands out (two busy, fast-moving
    # pictures, whose plain differences are as large as the cut's) ...
    cut_mc_ratio: float = 2.0  # ... and this many times its neighbours' (inside a shot: at most 1.4 on the busy benchmark; bursts
    # of motion in low-rate footage reach 2.3 at 8-9, true busy cuts measured 18-125)
    flash_ratio: float = 0.5  # skip_diff / diff below this = one-frame flash, not a cut
    grad_min_span: float = 6.0  # luma change across the lag a transition must carry
    grad_max_ratio: float = 0.2  # blend / span at most this in a linear blend
    grad_min_cov: float = 0.5  # fraction of the picture that must change (an overlay changes a part)
    grad_min_frames: int = 2  # frames with blend evidence a transition needs, at least ...
    grad_min_s: float = 0.12  # ... and this long (3 frames at 24-25 fps, 2 at 10 fps): a duration, not a frame count
    cut_step_share: float = 0.7  # a colour step: the frame's own colour change is at least this share of the change
    # across a short lag around it (a dissolve spreads it over its frames: about 1/length each), and persists this much
    hist_peak_min: float = 0.5  # colour-histogram change across the longest lag that alone suggests a dissolve
    dissolve_min_hist: float = 0.2  # a dissolve changes the colours at least this much ...
    dissolve_max_s: float = 2.5  # longer blends need measurable surroundings to count as a dissolve
    dissolve_hist_ratio: float = 1.6  # ... and this many times more than the same lag inside the shots around it
    dark_luma: float = 24.0  # mean luma of an end frame that makes a blend a fade
    pan_blur_dip: float = 0.9  # a whip pan: the frames at its boundary at most this sharp as the shots on both sides (motion blur;
    # measured 0.06-0.77 on whip pans at 8-12 fps, 0.83-1.13 at cuts between busy pans of one still) ...
    pan_blur_window: int = 3  # ... those shots' frames compared (medians), each side
    dissolve_mc_ratio: float = 1.07  # a colour-change-only dissolve: motion-compensated difference inside / around it (dissolves
    # between moving patterns measured 1.11-1.18, fast pans across one picture 0.8-1.04)

    @classmethod
    def from_config(cls, cfg: dict | None) -> "ShotParams":
        return cls(**known_settings(cls, cfg, "shot detector settings"))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) of every run of True."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _lags(stats: pd.DataFrame) -> list[int]:
    return sorted(int(c.split("_")[1]) for c in stats.columns if c.startswith("blend_"))


def _colour_step(stats: pd.DataFrame, t: int, p: ShotParams) -> bool:
    """A hard change of colour at frame t, made in this one frame: a colour-histogram change of at
    least `cut_hist_only`, `cut_ratio` times its neighbours' (a blend shares its change out among its
    frames, its last included), at least `cut_step_share` of the change across the shortest lag that
    holds a frame each side (frames t-k and t+k, k >= 2), and still there across the longest lag (a
    one-frame colour flash is gone by then)."""
    lags = _lags(stats)
    k = next((x for x in lags if x >= 2), lags[-1] if lags else None)
    if k is None or f"hspan_{k}" not in stats:
        return False
    h = stats["hist_diff"].to_numpy(dtype=np.float64)
    near, far = float(stats[f"hspan_{k}"].iat[t]), float(stats[f"hspan_{lags[-1]}"].iat[t])
    if h[t] < p.cut_hist_only or not np.isfinite(near) or h[t] < p.cut_step_share * near:
        return False
    w = p.cut_window
    nb = np.concatenate([h[max(1, t - w):t], h[t + 1:t + w + 1]])
    if nb.size and h[t] < p.cut_ratio * float(nb.max()):
        return False
    return not np.isfinite(far) or far >= p.cut_step_share * h[t]


def _whip_pan(stats: pd.DataFrame, t: int, p: ShotParams) -> bool:
    """A camera move, not a cut, at frame t: one global translation explains the change (`gm_diff`,
    the difference left after it, or `mc_diff` where smaller, is no `cut_mc_ratio` spike over its
    neighbours) and the frames at the boundary carry the motion blur a real move leaves (both at
    most `pan_blur_dip` as sharp as the shots on either side: a jump cut across one still is a
    translation too, but a sharp one). Statistics without `gm_diff`: never."""
    if "gm_diff" not in stats or "mc_diff" not in stats or "sharpness" not in stats or t < 2:
        return False
    g = np.minimum(stats["mc_diff"].to_numpy(dtype=np.float64), stats["gm_diff"].to_numpy(dtype=np.float64))
    w, n = p.cut_window, len(g)
    nb = np.concatenate([g[max(1, t - w):t], g[t + 1:min(n, t + w + 1)]])
    if not nb.size or g[t] >= p.cut_mc_ratio * (float(nb.mean()) + 1.0):
        return False
    s = stats["sharpness"].to_numpy(dtype=np.float64)
    k = p.pan_blur_window
    before, after = s[max(0, t - 1 - k):t - 1], s[t + 1:t + 1 + k]
    if not before.size or not after.size:
        return False
    return min(s[t - 1], s[t]) <= p.pan_blur_dip * min(float(np.median(before)), float(np.median(after)))


def hard_cuts(stats: pd.DataFrame, p: ShotParams) -> list[tuple[int, float]]:
    """(frame, score) of every hard cut candidate: the frame is the first of the new picture."""
    d = stats["diff"].to_numpy(dtype=np.float64)
    h = stats["hist_diff"].to_numpy(dtype=np.float64)
    sk = stats["skip_diff"].to_numpy(dtype=np.float64)
    mc = stats["mc_diff"].to_numpy(dtype=np.float64) if "mc_diff" in stats else None  # older statistics lack it
    n = len(d)
    out = []
    w = p.cut_window
    flashes: set[int] = set()
    for t in np.flatnonzero((d >= p.cut_min_diff) | (h >= p.cut_hist_only)).tolist():
        if t == 0:
            continue
        if t - 1 in flashes:
            continue  # the return from a one-frame flash
        nb = np.concatenate([d[max(1, t - w) : t], d[t + 1 : min(n, t + w + 1)]])
        base = float(nb.mean()) if nb.size else 0.0
        ratio = d[t] / (base + 1.0)
        skip = sk[t] if np.isfinite(sk[t]) else d[t]
        if skip < p.flash_ratio * d[t]:
            flashes.add(t)
            continue  # the next frame returns to the previous picture: a flash, not a cut
        luma_cut = d[t] >= p.cut_min_diff and ratio >= p.cut_ratio and h[t] >= p.cut_min_hist
        strong_cut = d[t] >= p.cut_strong_diff and ratio >= p.cut_ratio
        hnb = np.concatenate([h[max(1, t - w) : t], h[t + 1 : min(n, t + w + 1)]])
        hist_cut = (h[t] >= p.cut_hist_only and h[t] >= p.cut_ratio * (float(hnb.mean()) if hnb.size else 0.0)
                    and d[t] >= 0.5 * p.cut_min_diff and ratio >= 0.5 * p.cut_ratio)
        mc_cut = False
        if mc is not None:  # motion-compensated: a cut between two busy, moving pictures
            mnb = np.concatenate([mc[max(1, t - w) : t], mc[t + 1 : min(n, t + w + 1)]])
            mratio = mc[t] / ((float(mnb.mean()) if mnb.size else 0.0) + 1.0)
            mc_cut = d[t] >= p.cut_min_diff and mc[t] >= p.cut_min_mc and mratio >= p.cut_mc_ratio
            if mc_cut and not (luma_cut or strong_cut or hist_cut) and _whip_pan(stats, t, p):
                mc_cut = False  # a whip pan in moving footage: one translation explains it, and it is blurred
            ratio = max(ratio, mratio) if mc_cut else ratio
        # (a colour-only cut keeps its luma score: inside a luma blend it is the blend's own histogram flip, dropped below)
        colour_cut = not (luma_cut or strong_cut or hist_cut or mc_cut) and _colour_step(stats, t, p)
        if luma_cut or strong_cut or hist_cut or mc_cut or colour_cut:
            out.append((t, float(ratio)))
    return out


def _min_frames(p: ShotParams, fps: float | None) -> int:
    """Frames a gradual transition needs: `grad_min_s` at the title's rate, at least `grad_min_frames`."""
    return max(p.grad_min_frames, int(round(p.grad_min_s * fps)) if fps and fps > 0 else 3)


def gradual_spans(stats: pd.DataFrame, p: ShotParams, fps: float | None = None) -> list[tuple[int, int, float, str]]:
    """(first, last, strength, evidence) of every candidate gradual transition.

    Evidence `blend`: frames that are the average of their k-neighbours while those differ (linear
    blend: dissolve or fade). Evidence `hist`: a peak of the colour-histogram change across the
    longest lag (a dissolve between moving pictures, where the blend test is blurred by motion).
    Candidates are validated against their surroundings in `detect_prism_blend`."""
    n = len(stats)
    cover = np.zeros(n, dtype=np.int32)
    strength = np.zeros(n, dtype=np.float64)
    lags = _lags(stats)
    for k in lags:
        span = stats[f"span_{k}"].to_numpy(dtype=np.float64)
        blend = stats[f"blend_{k}"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = blend / np.maximum(span, 1e-6)
        cov = stats[f"cov_{k}"].to_numpy(dtype=np.float64) if f"cov_{k}" in stats else np.ones(len(span))
        ok = np.isfinite(span) & (span >= p.grad_min_span) & (ratio <= p.grad_max_ratio) & (cov >= p.grad_min_cov)
        for t in np.flatnonzero(ok).tolist():
            lo, hi = max(0, t - k + 1), min(n - 1, t + k - 1)
            cover[lo : hi + 1] += 1
            strength[lo : hi + 1] = np.maximum(strength[lo : hi + 1], span[t])
    d = stats["diff"].to_numpy(dtype=np.float64)
    spans = []
    for lo, hi in _runs(cover > 0):
        if hi - lo + 1 < _min_frames(p, fps):
            continue
        evidence = "blend"
        core = d[lo : hi + 1]
        level = 0.35 * float(np.median(core))
        while lo < hi and d[lo] < level:
            lo += 1
        while hi > lo and d[hi] < level and (hi + 1 >= n or d[hi + 1] < level):
            hi -= 1
        spans.append((lo, hi, float(strength[lo : hi + 1].max()), evidence))
    return spans


def hist_spans(stats: pd.DataFrame, p: ShotParams, blocked: np.ndarray) -> list[tuple[int, int, float, str]]:
    """Dissolves between moving pictures: a local peak of the colour-histogram change across the
    longest lag whose window holds no cut, black frame or blend span (`blocked`)."""
    lags = _lags(stats)
    if not lags or f"hspan_{lags[-1]}" not in stats:
        return []
    K = lags[-1]
    n = len(stats)
    hs = np.nan_to_num(stats[f"hspan_{K}"].to_numpy(dtype=np.float64), nan=0.0)
    cb = np.concatenate([[0], np.cumsum(blocked.astype(np.int64))])
    out = []
    for t in np.flatnonzero(hs >= p.hist_peak_min).tolist():
        lo, hi = max(0, t - K), min(n - 1, t + K)
        if hs[t] < hs[lo : hi + 1].max() or cb[hi + 1] - cb[lo] > 0:
            continue
        if out and t - out[-1][1] <= K:
            continue
        out.append((max(0, t - K + 1), min(n - 1, t + K - 1), float(hs[t]), "hist"))
    return out


def _dissolve_supported(stats: pd.DataFrame, lo: int, hi: int, evidence: str, boundaries: list[int], p: ShotParams, fps: float) -> bool:
    """A dissolve joins two different shots: the colours change across it clearly more than across
    the same lag inside the shots around it (motion and colour cycling change them everywhere)."""
    lags = _lags(stats)
    if not lags or f"hspan_{lags[-1]}" not in stats:
        return evidence.startswith("blend")
    K = lags[-1]
    hs = stats[f"hspan_{K}"].to_numpy(dtype=np.float64)
    n = len(hs)
    peak = float(np.nanmax(hs[lo : hi + 1])) if np.isfinite(hs[lo : hi + 1]).any() else float("nan")
    if not np.isfinite(peak):  # too close to the title's ends to measure: trust the blend evidence
        return evidence.startswith("blend")
    base = []
    for x in (lo - K - 1, hi + K + 1):  # the same lag just before and just after the span
        if 0 <= x < n and np.isfinite(hs[x]) and not any(x - K <= b <= x + K for b in boundaries):
            base.append(float(hs[x]))
    if not base and (hi - lo + 1) > p.dissolve_max_s * fps:
        return False  # a long blend with no measurable surroundings: steady motion, not a dissolve
    baseline = max(base) if base else 0.0
    need_peak = p.dissolve_min_hist if "blend" in evidence else p.hist_peak_min
    if not (peak >= need_peak and peak >= p.dissolve_hist_ratio * baseline):
        return False
    return evidence.startswith("blend") or _blend_of_two_motions(stats, lo, hi, boundaries, p)


def _blend_of_two_motions(stats: pd.DataFrame, lo: int, hi: int, boundaries: list[int], p: ShotParams) -> bool:
    """A colour change with no blend evidence is a dissolve only if motion compensation fails inside
    it more than in the pictures around it: a blend of two pictures moving their own ways leaves
    residual, one picture panning across new colours does not (a fast pan over a changing set
    changes the colours as much as a dissolve does). Statistics without `mc_diff`: not checked."""
    if "mc_diff" not in stats:
        return True
    mc = stats["mc_diff"].to_numpy(dtype=np.float64)
    n = len(mc)
    w = hi - lo + 1
    prev = max([b for b in boundaries if b <= lo] + [0])
    nxt = min([b for b in boundaries if b > hi] + [n])
    around = np.concatenate([mc[max(prev + 1, lo - w):lo], mc[hi + 1:min(nxt, hi + 1 + w)]])
    if around.size < 3:
        return True
    inside = float(np.median(mc[lo:hi + 1]))
    return inside >= p.dissolve_mc_ratio * float(np.median(around))


def detect_prism_blend(stats: pd.DataFrame, fps: float, p: ShotParams | None = None) -> pd.DataFrame:
    p = p or ShotParams()
    n = len(stats)
    if n == 0:
        return pd.DataFrame(columns=SHOT_COLUMNS)
    black = stats["black_ratio"].to_numpy() >= p.black_pic_th
    blacks = [(a, b) for a, b in _runs(black) if b - a + 1 >= p.min_black_frames]
    in_black = np.zeros(n, dtype=bool)
    for a, b in blacks:
        in_black[a : b + 1] = True
    luma = stats["luma_mean"].to_numpy(dtype=np.float64)

    # boundary frame -> (type, first, last, score)
    bounds: dict[int, tuple[str, int, int, float]] = {}
    outs: dict[int, tuple[str, int, int]] = {}  # boundary -> transition_out of the shot before it
    for a, b in blacks:
        if a > 0:
            bounds[a] = ("cut", a, a, 1.0)
        if b + 1 < n:
            bounds[b + 1] = ("cut", b + 1, b + 1, 1.0)
    spans = gradual_spans(stats, p, fps)
    in_grad = np.zeros(n, dtype=bool)
    for lo, hi, _, _ in spans:
        in_grad[lo + 1 : hi + 1] = True
    for t, score in hard_cuts(stats, p):
        if in_black[t] and in_black[t - 1]:
            continue
        if in_grad[t] and score < 2 * p.cut_ratio:
            continue  # luma steps inside a fade or dissolve (and a dissolve into grey flipping the coarse colour histogram)
        near = [x for x in bounds if abs(x - t) <= 1]
        if near:
            continue
        bounds[t] = ("cut", t, t, score)
    blocked = in_black | in_grad
    for x, (kind, _, _, _) in bounds.items():
        if kind == "cut":
            blocked[max(0, x - 1) : x + 1] = True
    for lo, hi, _, _ in spans:
        blocked[lo : hi + 1] = True
    spans = spans + hist_spans(stats, p, blocked)
    for lo, hi, s, evidence in spans:
        inside = [x for x in bounds if lo - 2 <= x <= hi + 1 and bounds[x][0] == "cut" and not _black_edge(x, blacks)]
        if inside:
            # a luma step at the start of a short dissolve was taken for a cut: one transition, typed
            # as the blend it is, at the cut's frame (which lies inside it)
            x = inside[0]
            if evidence == "blend" and not any(_black_edge(b, blacks) for b in range(lo - 2, hi + 3)):
                bounds[x] = ("dissolve", min(lo, x), max(hi, x), max(bounds[x][3], s))
                outs[x] = ("dissolve", min(lo, x), max(hi, x))
            continue
        # a fade touches a black segment (or starts/ends at a dark frame)
        fade_in_edge = next((b + 1 for a, b in blacks if lo - 2 <= b + 1 <= hi + 1), None)
        fade_out_edge = next((a for a, b in blacks if lo <= a <= hi + 2), None)
        if fade_in_edge is not None and fade_in_edge < n:
            bounds[fade_in_edge] = ("fade_in", min(lo, fade_in_edge), max(hi, fade_in_edge), s)
        elif fade_out_edge is not None and fade_out_edge > 0:
            bounds[fade_out_edge] = ("fade_out", lo, min(hi, fade_out_edge - 1), s)
            outs[fade_out_edge] = ("fade_out", lo, min(hi, fade_out_edge - 1))
        elif luma[lo] <= p.dark_luma and lo > 0:
            bounds[lo] = ("fade_in", lo, hi, s)
        elif luma[hi] <= p.dark_luma and hi + 1 < n:
            bounds[hi + 1] = ("fade_out", lo, hi, s)
            outs[hi + 1] = ("fade_out", lo, hi)
        else:
            if not _dissolve_supported(stats, lo, hi, evidence, sorted(bounds), p, fps):
                continue
            mid = (lo + hi + 1) // 2
            if any(abs(x - mid) <= max(1, (hi - lo) // 2) for x in bounds):
                continue
            bounds[mid] = ("dissolve", lo, hi, s)
            outs[mid] = ("dissolve", lo, hi)

    starts = sorted(x for x in bounds if 0 < x < n)
    t_s = stats["t_s"].to_numpy(dtype=np.float64)
    # the last frame lasts as long as the interval before it (VFR-safe), else 1/fps
    frame_dur = float(t_s[-1] - t_s[-2]) if n >= 2 and t_s[-1] > t_s[-2] else (1.0 / fps if fps and fps > 0 else 0.0)
    rows = []
    edges = [0] + starts + [n]
    for i in range(len(edges) - 1):
        s, e = edges[i], edges[i + 1] - 1
        kind, first, last, score = bounds.get(s, ("start", s, s, 0.0)) if i else ("start", 0, 0, 0.0)
        out = outs.get(e + 1)
        if out is None and (e + 1) in bounds:
            out = ("cut", e + 1, e + 1) if bounds[e + 1][0] == "cut" else (bounds[e + 1][0], bounds[e + 1][1], bounds[e + 1][2])
        rows.append({
            "shot_index": i,
            "start_frame": s,
            "end_frame": e,
            "start_s": float(t_s[s]),
            "end_s": float(t_s[e + 1]) if e + 1 < n else float(t_s[e] + frame_dur),
            "n_frames": e - s + 1,
            "transition_in": kind,
            "transition_in_first": int(first),
            "transition_in_last": int(last),
            "transition_out": out[0] if out else ("end" if e == n - 1 else None),
            "transition_out_first": int(out[1]) if out else None,
            "transition_out_last": int(out[2]) if out else None,
            "is_black": bool(in_black[s : e + 1].all()),
            "luma_mean": float(luma[s : e + 1].mean()),
            "boundary_score": float(score),
        })
    df = pd.DataFrame(rows, columns=SHOT_COLUMNS)
    for c in ("transition_out_first", "transition_out_last"):
        df[c] = df[c].astype("Int64")
    return df


def _black_edge(x: int, blacks: list[tuple[int, int]]) -> bool:
    return any(x == a or x == b + 1 for a, b in blacks)


DETECTORS: dict[str, Callable[[pd.DataFrame, float, ShotParams | None], pd.DataFrame]] = {
    "prism-blend": detect_prism_blend,
}


def detect_shots(stats: pd.DataFrame, fps: float, detector: str = "prism-blend", params: dict | None = None) -> pd.DataFrame:
    if detector not in DETECTORS:
        raise ValueError(f"unknown shot detector {detector!r} (known: {', '.join(DETECTORS)})")
    return DETECTORS[detector](stats, fps, ShotParams.from_config(params))


def transition_frames(shots: pd.DataFrame, n_frames: int, guard: int = 0) -> np.ndarray:
    """Boolean mask of frames inside a gradual transition or within `guard` frames of any boundary."""
    mask = np.zeros(n_frames, dtype=bool)
    for r in shots.itertuples():
        if r.transition_in in ("dissolve", "fade_in", "fade_out"):
            mask[max(0, r.transition_in_first - guard) : min(n_frames, r.transition_in_last + guard + 1)] = True
        if r.shot_index > 0 and guard:
            mask[max(0, r.start_frame - guard) : min(n_frames, r.start_frame + guard)] = True
    return mask


def params_dict(p: ShotParams) -> dict:
    return asdict(p)
