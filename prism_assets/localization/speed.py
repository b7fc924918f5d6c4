"""The speed of a dub against the original: broadcast dubs are often made from a frame-rate-converted
master (a 24 fps film played at 25 fps for PAL), so the whole dub runs faster or slower.

Direction: `speed_ratio` is the dub's duration / the original's. An event the original has at `t`
is in the dub at `offset + speed_ratio * t`. A PAL speed-up (film at 24 fps played at 25) makes the
dub shorter: 24/25 = 0.96.

The ratio is searched on the onset envelopes of sync.py (10 ms hops), before any offset or drift:

- **candidates**: the named conversions (`CONVERSIONS`) and a free grid over `RATIO_RANGE`, its
  step small enough that a wrong ratio misplaces a segment's ends by at most one hop;
- **score**: the dub's envelope resampled at the candidate (the dub's hop `ratio * i` read for the
  original's hop `i`), cross-correlated with segments of the original's (up to 6 segments of up to
  90 s spread along the title, normalised per lag), the peak of the mean over the segments;
- sync.measure then refines the best candidate on windows along the whole title (the slope of the
  window offsets at that speed is what is left of the ratio) and names it with `classify`.
"""

from __future__ import annotations

import numpy as np

FILM = 24000 / 1001  # "23.976"
CONVERSIONS = {  # name -> dub duration / original duration
    "none": 1.0,
    "pal_speedup_24_25": 24 / 25,  # a 24 fps original, the dub from its 25 fps (PAL) master: 4 % faster
    "pal_speedup_23976_25": FILM / 25,
    "pal_slowdown_25_24": 25 / 24,  # a 25 fps original, the dub from a 24 fps master: 4 % slower
    "pal_slowdown_25_23976": 25 / FILM,
    "pullup_23976_24": FILM / 24,  # 1000/1001: 23.976 material run at 24
    "pulldown_24_23976": 24 / FILM,  # 1001/1000: 24 fps material run at 23.976
}
RATIO_RANGE = (0.94, 1.065)  # the free search: every named conversion and some margin
SNAP = 2.5e-4  # a measured ratio this close (relative) to a named one is that conversion
FREE_MIN = 0.005  # closer than this to 1 and no named conversion: no conversion, the rest is a drift
SEGMENT_HOPS = 9000  # 90 s segments of the original for the search
MAX_SEGMENTS = 6


def classify(ratio: float, snap: float = SNAP, free_min: float = FREE_MIN) -> tuple[str, float]:
    """(conversion name, its nominal ratio) for a measured `ratio`: the named conversion within
    `snap` of it; else `none` (ratio 1: what is left is a drift) within `free_min` of 1; else
    `free` at the measured ratio itself."""
    name, nominal = min(CONVERSIONS.items(), key=lambda kv: abs(ratio / kv[1] - 1))
    if abs(ratio / nominal - 1) <= snap:
        return name, nominal
    if abs(ratio - 1) <= free_min:
        return "none", 1.0
    return "free", float(ratio)


def resample(env: np.ndarray, ratio: float, start: int, n: int) -> np.ndarray:
    """`env` read at `ratio * i` for i in start..start+n (linear interpolation, 0 outside it)."""
    idx = ratio * np.arange(start, start + n, dtype=np.float64)
    return np.interp(idx, np.arange(len(env), dtype=np.float64), env, left=0.0, right=0.0).astype(np.float32)


def _valid_xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c[k] = sum_j a[j] * b[j + k] for k = 0..len(b) - len(a) (FFT)."""
    size = 1 << (len(a) + len(b) - 1).bit_length()
    full = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    return full[:len(b) - len(a) + 1]


def segments(n: int, seg: int = SEGMENT_HOPS, most: int = MAX_SEGMENTS) -> tuple[int, np.ndarray]:
    """(segment length, segment starts): up to `most` segments of up to `seg` hops, spread evenly."""
    size = min(n, seg)
    count = max(1, min(most, n // size))
    return size, np.linspace(0, n - size, count).astype(int)


def curve(ea: np.ndarray, eb: np.ndarray, ratio: float, size: int, starts, max_lag: int) -> np.ndarray:
    """Mean over the segments of the normalised correlation of the original's segment with the dub
    resampled at `ratio`, lags -max_lag..max_lag (in the original's hops)."""
    acc = np.zeros(2 * max_lag + 1)
    for s0 in starts:
        a = ea[s0:s0 + size].astype(np.float64)
        b = resample(eb, ratio, int(s0) - max_lag, size + 2 * max_lag).astype(np.float64)
        energy = np.concatenate([[0.0], np.cumsum(b * b)])
        sliding = np.maximum(energy[size:] - energy[:-size], 0.0)
        acc += _valid_xcorr(a, b) / (np.sqrt(float(a @ a) * sliding) + 1e-9)
    return acc / max(1, len(starts))


def search(ea: np.ndarray, eb: np.ndarray, max_lag: int, ratio_range: tuple[float, float] = RATIO_RANGE) -> dict:
    """The ratio whose resampled dub envelope correlates best with the original's: `ratio`, `score`
    (its correlation peak), `runner_up` (the best score more than ten grid steps away), `step` and
    `candidates` (how many were scored)."""
    size, starts = segments(len(ea))
    lo, hi = ratio_range
    step = 4.0 / size  # half a step of error moves a segment's ends by one hop
    grid = np.arange(lo, hi + step / 2, step)
    cands = np.array(sorted({round(float(r), 7) for r in grid} | {v for v in CONVERSIONS.values() if lo <= v <= hi}))
    scores = np.array([float(curve(ea, eb, r, size, starts, max_lag).max()) for r in cands])
    i = int(np.argmax(scores))
    far = np.abs(cands - cands[i]) > 10 * step  # nearer candidates share the segments' middles
    return {"ratio": float(cands[i]), "score": round(float(scores[i]), 4),
            "runner_up": round(float(scores[far].max()), 4) if far.any() else None, "step": round(step, 6), "candidates": len(cands)}
