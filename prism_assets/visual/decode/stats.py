"""Per-frame picture measures of the analysis pictures (one picture, and batches of 16 in one set of
numpy calls), and the growing typed columns that hold them."""

from __future__ import annotations

import math
from array import array

import numpy as np
import pandas as pd

_sum = np.add.reduce
LAG_BATCH = 16


def quality_parts(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict:
    """Explainable picture-quality measures of one analysis picture (full-range Y as float32, U and V
    planes as uint8, any resolution): sharpness = variance of the Laplacian of Y; colourfulness =
    Hasler-Suesstrunk's measure on the chroma plane (std + 0.3 mean of the opponent components);
    saturation = mean chroma magnitude (0..1). The definition for one picture; the pass computes the
    same measures for a batch in `batch_stats` (tests hold the two equal)."""
    lap = (y[1:-1, 1:-1] * 4 - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]).reshape(-1)
    n = lap.size
    if n:
        m = float(_sum(lap)) / n
        sharp = max(0.0, float(np.dot(lap, lap)) / n - m * m)
    else:
        sharp = 0.0
    cu = u.astype(np.float32).reshape(-1) - 128.0
    cv = v.astype(np.float32).reshape(-1) - 128.0
    nc = cu.size
    mu, mv = float(_sum(cu)) / nc, float(_sum(cv)) / nc
    var = max(0.0, float(np.dot(cu, cu)) / nc - mu * mu) + max(0.0, float(np.dot(cv, cv)) / nc - mv * mv)
    colorful = math.sqrt(var) + 0.3 * math.sqrt(mu * mu + mv * mv)
    sat = min(1.0, float(_sum(np.sqrt(cu * cu + cv * cv))) / nc / 128.0)
    return {"sharpness": sharp, "colorfulness": colorful, "saturation": sat}


def bars_of(luma: np.ndarray, th: float) -> tuple[float, float, float, float]:
    """Fraction of the picture covered by black bars at the top, bottom, left, right."""
    rows = (luma.max(axis=1) <= th)
    cols = (luma.max(axis=0) <= th)

    def run(v: np.ndarray) -> int:
        nz = np.flatnonzero(~v)
        return int(nz[0]) if nz.size else v.size

    h, w = luma.shape
    return run(rows) / h, run(rows[::-1]) / h, run(cols) / w, run(cols[::-1]) / w


def colour_bars_score(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    """0..1 evidence of a colour-bar test pattern (SMPTE/EBU bars): the top half is vertical
    stripes (columns constant top to bottom, strong steps across) of saturated colours."""
    top = y[: max(2, y.shape[0] // 2)]
    col_std = float(top.std(axis=0).mean())
    across = float(top.mean(axis=0).std())
    rows = max(1, u.shape[0] * top.shape[0] // y.shape[0])  # chroma may be subsampled
    cu = u[:rows].astype(np.float32) - 128.0
    cv = v[:rows].astype(np.float32) - 128.0
    sat = float(np.sqrt(cu * cu + cv * cv).mean())
    if col_std >= 6.0 or across < 25.0 or sat < 20.0:
        return 0.0
    return float(min(1.0, (1.0 - col_std / 6.0) * min(1.0, across / 50.0) * min(1.0, sat / 40.0) * 1.5))


def exposure_score(luma_mean: float, luma_std: float) -> float:
    """1 for a well exposed picture (mean near mid-grey, real contrast), towards 0 for dark/blown/flat."""
    mid = max(0.0, 1.0 - abs(luma_mean - 118.0) / 118.0)
    contrast = min(1.0, luma_std / 48.0)
    return float(mid * (0.35 + 0.65 * contrast))


def batch_stats(y8: np.ndarray, u8: np.ndarray, v8: np.ndarray, prev_luma: np.ndarray | None,
                prev_hist: np.ndarray | None, th: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per-frame statistics of a batch of analysis pictures in one set of numpy calls (the per-frame
    Python overhead of ~40 small numpy calls was the decode loop's main cost).

    `y8` is (B, h, w) full-range luma, `u8`/`v8` (B, h/2, w/2) chroma, all uint8; `prev_luma` (flat
    float32) and `prev_hist` belong to the frame before the batch (None at the start). Returns the
    columns (each a length-B float64 array), the batch's flat float32 luma (B, h*w) and its colour
    histograms (B, 128). The measures are those of `quality_parts` and `exposure_score`, frame by
    frame; variances are taken around the mean (no E[x^2]-m^2 cancellation on flat pictures)."""
    b, h, w = y8.shape
    n = h * w
    L = y8.reshape(b, n).astype(np.float32)
    lm = L.sum(axis=1, dtype=np.float64) / n
    dev = L - lm[:, None].astype(np.float32)
    ls = np.sqrt(np.einsum("ij,ij->i", dev, dev, dtype=np.float64) / n)
    # colour histogram: 8 luma x 4 U x 4 V bins on the chroma grid, one bincount for the batch
    codes = (y8[:, ::2, ::2] >> 5).astype(np.int32) * 16 + (u8 >> 6) * 4 + (v8 >> 6)
    codes += (np.arange(b, dtype=np.int32) * 128)[:, None, None]
    hist = np.bincount(codes.reshape(-1), minlength=128 * b).reshape(b, 128).astype(np.float32)
    hist /= np.maximum(1.0, hist.sum(axis=1, keepdims=True))
    # sharpness: variance of the Laplacian of Y
    yf = L.reshape(b, h, w)
    lap = (yf[:, 1:-1, 1:-1] * 4 - yf[:, :-2, 1:-1] - yf[:, 2:, 1:-1] - yf[:, 1:-1, :-2] - yf[:, 1:-1, 2:]).reshape(b, -1)
    if lap.shape[1]:
        lap -= lap.mean(axis=1, dtype=np.float64)[:, None].astype(np.float32)
        sharp = np.einsum("ij,ij->i", lap, lap, dtype=np.float64) / lap.shape[1]
    else:
        sharp = np.zeros(b)
    # colourfulness (Hasler-Suesstrunk on the chroma plane) and saturation
    cu = u8.reshape(b, -1).astype(np.float32) - 128.0
    cv = v8.reshape(b, -1).astype(np.float32) - 128.0
    nc = cu.shape[1]
    mu, mv = cu.sum(axis=1, dtype=np.float64) / nc, cv.sum(axis=1, dtype=np.float64) / nc
    du, dv = cu - mu[:, None].astype(np.float32), cv - mv[:, None].astype(np.float32)
    var = (np.einsum("ij,ij->i", du, du, dtype=np.float64) + np.einsum("ij,ij->i", dv, dv, dtype=np.float64)) / nc
    colorful = np.sqrt(var) + 0.3 * np.sqrt(mu * mu + mv * mv)
    sat = np.minimum(1.0, np.sqrt(cu * cu + cv * cv).sum(axis=1, dtype=np.float64) / nc / 128.0)
    # frame differences (to the previous frame, the batch's first to `prev_luma`)
    diff = np.zeros(b)
    hist_diff = np.zeros(b)
    if b > 1:
        diff[1:] = np.abs(L[1:] - L[:-1]).sum(axis=1, dtype=np.float64) / n
        hist_diff[1:] = 0.5 * np.abs(hist[1:] - hist[:-1]).sum(axis=1, dtype=np.float64)
    if prev_luma is not None:
        diff[0] = float(np.abs(L[0] - prev_luma).sum(dtype=np.float64)) / n
        hist_diff[0] = 0.5 * float(np.abs(hist[0] - prev_hist).sum(dtype=np.float64))
    mc = mc_diff(L.reshape(b, h, w), None if prev_luma is None else prev_luma.reshape(h, w))
    gm = gm_diff(L.reshape(b, h, w), None if prev_luma is None else prev_luma.reshape(h, w))
    # letterbox / pillarbox: runs of black rows / columns from each edge
    rows = y8.max(axis=2) <= th  # (B, h)
    cols = y8.max(axis=1) <= th  # (B, w)

    def run(v: np.ndarray) -> np.ndarray:  # length of the leading True run per row of v
        return np.where(v.all(axis=1), v.shape[1], np.argmin(v, axis=1))

    mid = np.maximum(0.0, 1.0 - np.abs(lm - 118.0) / 118.0)
    cols_out = {
        "luma_mean": lm,
        "luma_std": ls,
        "luma_min": y8.reshape(b, n).min(axis=1).astype(np.float64),
        "luma_max": y8.reshape(b, n).max(axis=1).astype(np.float64),
        "black_ratio": np.count_nonzero(y8.reshape(b, n) <= th, axis=1) / n,
        "diff": diff,
        "hist_diff": hist_diff,
        "mc_diff": mc,
        "gm_diff": gm,
        "bar_top": run(rows) / h,
        "bar_bottom": run(rows[:, ::-1]) / h,
        "bar_left": run(cols) / w,
        "bar_right": run(cols[:, ::-1]) / w,
        "sharpness": np.maximum(0.0, sharp),
        "colorfulness": colorful,
        "saturation": sat,
        "exposure": mid * (0.35 + 0.65 * np.minimum(1.0, ls / 48.0)),
    }
    return cols_out, L, hist



MC_GRID = (3, 4)  # blocks (rows, columns) of the motion-compensated difference
MC_RADIUS = 4  # shifts searched per block, in pixels of the half-size picture (+-4 = +-1/16 of the width)
GM_REACH = (4, 3)  # global motion searched up to 1/4 of the height and 1/3 of the width each way (a whip pan at 8-12 fps)


def _half(x: np.ndarray) -> np.ndarray:
    """(..., h, w) -> (..., h//2, w//2) by 2x2 averages."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return 0.25 * (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2])


def _pairs(lum: np.ndarray, prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(before, after, index of the first pair's frame) of the half-size pictures; None without a pair."""
    cur = _half(lum.astype(np.float32))
    if prev is None:
        return None if lum.shape[0] < 2 else (cur[:-1], cur[1:], 1)
    return np.concatenate([_half(prev.astype(np.float32))[None], cur[:-1]]), cur, 0


def _profile_shift(a: np.ndarray, b: np.ndarray, reach: int) -> np.ndarray:
    """Per row of the (n, L) profiles: the shift s (|s| <= reach) with b[x] ~ a[x + s], by the
    smallest mean absolute difference of the mean-removed profiles over their overlap."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    L = a.shape[1]
    err = np.full((a.shape[0], 2 * reach + 1), np.inf)
    for i, s in enumerate(range(-reach, reach + 1)):
        lo, hi = max(0, -s), min(L, L - s)
        err[:, i] = np.abs(b[:, lo:hi] - a[:, lo + s:hi + s]).mean(axis=1)
    return np.argmin(err, axis=1) - reach


def gm_diff(lum: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Globally motion-compensated difference of each frame of `lum` (B, h, w) to the frame before
    it (`prev` for the first; 0 without one), at half size: one translation of up to a third of the
    width and a quarter of the height (`GM_REACH`; a whip pan at 8-12 fps moves further in one frame
    than `mc_diff`'s blocks search), estimated from the column and row profiles (a horizontal move
    shifts the column means whatever the rows do, and the other way round) and refined by a pixel
    each way; the mean absolute difference over the overlap (what a pan brings in is new content,
    not a change of shot). Where the motion is within MC_RADIUS, the plain difference (`mc_diff`
    covers that case). A camera move leaves little; a cut between different pictures leaves the
    whole difference (a jump across one still is a translation too: the shot detector asks for
    the motion blur a real move leaves as well)."""
    b = lum.shape[0]
    out = np.zeros(b)
    pairs = _pairs(lum, prev)
    if pairs is None:
        return out
    before, after, at = pairs
    n, h, w = after.shape
    gy, gx = GM_REACH
    if h < 2 * gy or w < 2 * gx:
        return out
    dx = _profile_shift(before.mean(axis=1), after.mean(axis=1), w // gx)
    dy = _profile_shift(before.mean(axis=2), after.mean(axis=2), h // gy)
    res = np.abs(after - before).mean(axis=(1, 2))
    for j in np.flatnonzero((np.abs(dx) > MC_RADIUS) | (np.abs(dy) > MC_RADIUS)).tolist():
        for sy in (dy[j] - 1, dy[j], dy[j] + 1):
            for sx in (dx[j] - 1, dx[j], dx[j] + 1):  # after[y, x] ~ before[y + sy, x + sx]
                y0, y1, x0, x1 = max(0, -sy), min(h, h - sy), max(0, -sx), min(w, w - sx)
                if y1 - y0 >= h // 2 and x1 - x0 >= w // 2:
                    v = float(np.abs(after[j, y0:y1, x0:x1] - before[j, y0 + sy:y1 + sy, x0 + sx:x1 + sx]).mean())
                    res[j] = min(res[j], v)
    out[at:] = res
    return out


def mc_diff(lum: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Motion-compensated difference of each frame of `lum` (B, h, w) to the frame before it
    (`prev` (h, w) for the first; 0 without one): the picture at half size in a grid of blocks,
    each block matched against the previous frame shifted by up to MC_RADIUS pixels each way, the
    smallest mean absolute difference per block, averaged over the blocks. A pan, a tilt or
    objects moving within a block leave little after compensation; a cut leaves the whole
    difference. A cut between two busy, fast-moving pictures stands out here while the plain
    difference of its neighbours is as large as its own."""
    b = lum.shape[0]
    out = np.zeros(b)
    pairs = _pairs(lum, prev)
    if pairs is None:
        return out
    before, after, at = pairs
    n, h, w = after.shape
    gr, gc = MC_GRID
    bh, bw = h // gr, w // gc
    if bh < 2 or bw < 2:
        return out
    r = MC_RADIUS
    pad = np.pad(before, ((0, 0), (r, r), (r, r)), mode="edge")
    best = np.full((n, gr, gc), np.inf, dtype=np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = pad[:, r + dy:r + dy + h, r + dx:r + dx + w]
            res = np.abs(after - shifted)[:, :gr * bh, :gc * bw].reshape(n, gr, bh, gc, bw).mean(axis=(2, 4))
            np.minimum(best, res, out=best)
    out[at:] = best.mean(axis=(1, 2))
    return out


class Columns:
    """Per-frame statistics as growing typed arrays (8 bytes a value, not a dict per frame), so a
    2-hour title's statistics stay tens of MB."""

    def __init__(self, nan_keys: tuple[str, ...] = ()):
        self.cols: dict[str, array] = {}
        self.nan_keys = nan_keys  # columns filled later (look-ahead features): NaN until then
        self.n = 0

    def extend(self, cols: dict[str, np.ndarray], count: int) -> None:
        """Append `count` rows given column-wise (numbers; bools become 0/1)."""
        for k, v in cols.items():
            col = self.cols.get(k)
            if col is None:
                col = self.cols[k] = array("d", [math.nan] * self.n)
            col.frombytes(np.ascontiguousarray(v, dtype=np.float64).tobytes())
        for k in self.nan_keys:
            col = self.cols.get(k)
            if col is None:
                col = self.cols[k] = array("d", [math.nan] * self.n)
            col.extend([math.nan] * count)
        self.n += count

    def __len__(self) -> int:
        return self.n

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.frombuffer(v, dtype=np.float64).copy() for k, v in self.cols.items()})
