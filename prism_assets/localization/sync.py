"""Dub synchronisation: the speed, offset and drift of a dub track against the original.

A dub shares the original's music and effects; only the speech differs. So the two tracks are
compared on what they share: a spectral-flux envelope (onsets of the music and effects, 10 ms hops,
log-mel bands) with the frames where either track has speech weighted down. Then:

- **speed** (speed.py): a dub made from a frame-rate-converted master runs faster or slower (PAL
  speed-up 24 -> 25 fps: 4 % shorter). The ratio (the dub's duration / the original's) is searched
  over the named conversions and a free grid on resampled envelopes; everything below is measured
  on the dub resampled at that ratio, and the slope of the window offsets refines it (a second
  pass at the refined ratio when it moves the title's end by half a hop). `speed_ratio` is the
  measured ratio, `conversion` its name (`none` near 1, `free` for a ratio no conversion names),
  `nominal_ratio` the named ratio: offset and drift are what is left after it;
- **offset**: the lag of the highest normalised cross-correlation within +-`max_offset_s`, refined
  to below a hop by a parabola through the peak; `confidence` is how far the peak stands above the
  best other lag (1 - second / first, 0 = ambiguous). With a drift, `offset_ms` is the offset at the
  start of the title (the line's intercept) and `global_offset_ms` the one from the single best lag;
- **drift**: the same in windows along the title, a robust line through the confident window
  offsets (Theil-Sen, then least squares on the windows near it): the dub's speed against the
  nominal ratio, in ms per hour (with conversion `none`, a dub running 0.1 % slow drifts 3.6 s an
  hour); a re-edited stretch cannot bend it;
- **divergence**: confident windows whose own offset is off the line by more than `diverge_ms`, or
  windows with little speech whose correlation is flat although the title's is not (re-edited or
  missing stretches), merged into spans. A speech-heavy window that cannot be placed is uncertain,
  not diverging: dialogue differs in a dub by design.

Positive offset: the dub is late. An event the original has at `t` (s) is in the dub at
`offset_ms / 1000 + nominal_ratio * t + drift_ms_per_hour / 3.6e6 * t`, i.e. at
`offset + speed_ratio * t`; window `offset_ms` values are the dub's time minus `nominal_ratio * t`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .speed import RATIO_RANGE, classify, resample, search

HOP_S = 0.010


@dataclass
class SyncResult:
    offset_ms: float | None
    confidence: float
    drift_ms_per_hour: float | None
    windows: list[dict] = field(default_factory=list)
    diverging: list[dict] = field(default_factory=list)
    global_offset_ms: float | None = None  # the offset at the start from the single best lag over the whole title
    speed_ratio: float | None = None  # the dub's duration / the original's, measured (speed.py)
    conversion: str | None = None  # the named conversion (speed.CONVERSIONS), `none` or `free`
    nominal_ratio: float | None = None  # that conversion's ratio: offset and drift are measured after it
    speed_search: dict | None = None  # the ratio search before the refinement (speed.search)
    method: str = ("speed searched on resampled envelopes (named conversions + free grid), then spectral-flux cross-correlation "
                   "at that speed, speech frames down-weighted, 10 ms hops + parabolic peak")

    def as_dict(self) -> dict:
        return asdict(self)


def flux_envelope(audio: np.ndarray, sr: int, hop_s: float = HOP_S, n_bands: int = 24, block: int = 8192) -> np.ndarray:
    """Half-wave rectified log-band energy increase per hop (onset strength), zero mean, unit variance.
    Computed `block` frames at a time: a 3-hour track is ~1M frames, whose frame matrix at once
    would take gigabytes. `audio` may be float or int16 (a memory-mapped WAV: only a block of it is
    in memory at a time)."""
    hop = int(round(sr * hop_s))
    win = hop * 4
    if len(audio) < win + hop:
        return np.zeros(0, dtype=np.float32)
    n = 1 + (len(audio) - win) // hop
    window = np.hanning(win).astype(np.float32)
    scale = np.float32(1 / 32768) if audio.dtype == np.int16 else np.float32(1)  # 16-bit samples (a memory-mapped WAV) as floats
    freqs = np.fft.rfftfreq(win, 1 / sr)
    edges = np.geomspace(60.0, sr / 2, n_bands + 1)  # log-spaced bands from 60 Hz to sr/2
    masks = [(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    logb = np.empty((n, n_bands), dtype=np.float32)
    offsets = np.arange(win)[None, :]
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        frames = audio[offsets + hop * np.arange(b0, b1)[:, None]].astype(np.float32) * (window * scale)
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        logb[b0:b1] = np.log1p(np.stack([spec[:, m].sum(axis=1) for m in masks], axis=1) * 1e4)
    flux = np.maximum(np.diff(logb, axis=0, prepend=logb[:1]), 0).sum(axis=1)
    flux -= flux.mean()
    sd = flux.std()
    return (flux / sd if sd > 0 else flux).astype(np.float32)


def speech_weights(n: int, segments: list[tuple[float, float]] | None, hop_s: float = HOP_S, floor: float = 0.2) -> np.ndarray:
    """1 outside speech, `floor` inside the given (start, end) seconds."""
    w = np.ones(n, dtype=np.float32)
    for s, e in segments or []:
        w[max(0, int(s / hop_s)):max(0, int(np.ceil(e / hop_s)))] = floor
    return w


def xcorr(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlation of b against a for lags -max_lag..max_lag (b late = positive)."""
    n = len(a) + len(b)
    size = 1 << (n - 1).bit_length()
    fa, fb = np.fft.rfft(a, size), np.fft.rfft(b, size)
    full = np.fft.irfft(np.conj(fa) * fb, size)
    lags = np.arange(-max_lag, max_lag + 1)
    vals = np.array([full[lag % size] for lag in lags])
    # overlap length per lag normalises for the shrinking overlap at large lags
    overlap = np.minimum(len(a), len(b)) - np.abs(lags)
    denom = np.sqrt((a ** 2).sum() * (b ** 2).sum()) or 1.0
    return lags, vals / denom * (np.minimum(len(a), len(b)) / np.maximum(overlap, 1))


def peak(lags: np.ndarray, vals: np.ndarray, guard: int) -> tuple[float, float, float]:
    """(lag with sub-hop refinement, peak value, confidence)."""
    i = int(np.argmax(vals))
    peak = float(vals[i])
    frac = 0.0
    if 0 < i < len(vals) - 1:
        y0, y1, y2 = vals[i - 1], vals[i], vals[i + 1]
        den = y0 - 2 * y1 + y2
        frac = float(0.5 * (y0 - y2) / den) if den < 0 else 0.0
    others = np.concatenate([vals[:max(0, i - guard)], vals[i + guard + 1:]])
    second = float(others.max()) if len(others) else 0.0
    conf = 0.0 if peak <= 0 else float(np.clip(1 - max(second, 0.0) / peak, 0, 1))
    return float(lags[i]) + frac, peak, conf


def measure(original: np.ndarray, dub: np.ndarray, sr: int, *, original_speech=None, dub_speech=None, max_offset_s: float = 10.0,
            window_s: float | None = None, min_confidence: float = 0.2, diverge_ms: float = 120.0,
            ratio_range: tuple[float, float] | None = RATIO_RANGE) -> SyncResult:
    """Speed, offset, drift and diverging stretches of `dub` against `original` (mono arrays, same
    rate). `ratio_range` None: no speed search (the dub taken at the original's speed, then refined)."""
    ea, eb = flux_envelope(original, sr), flux_envelope(dub, sr)
    if len(ea) < 200 or len(eb) < 200:
        return SyncResult(None, 0.0, None)
    wa, wb = speech_weights(len(ea), original_speech), speech_weights(len(eb), dub_speech)
    ea, eb = ea * wa, eb * wb
    max_lag = int(max_offset_s / HOP_S)
    found = search(ea, eb, max_lag, ratio_range) if ratio_range else None
    ratio = found["ratio"] if found else 1.0
    window_s = window_s or max(10.0, min(60.0, len(ea) * HOP_S / 8))
    fit = _fit(ea, eb, wa, wb, ratio, max_lag, window_s, min_confidence, diverge_ms)
    if fit["slope"] is not None and abs(fit["slope"]) * len(ea) > 0.5:  # half a hop off by the end: once more at the refined ratio
        ratio *= 1 + fit["slope"]
        fit = _fit(ea, eb, wa, wb, ratio, max_lag, window_s, min_confidence, diverge_ms)
    conf = fit["confidence"]
    if conf < min_confidence:  # nothing shared to align on (another mix, no music and effects): no guess
        return SyncResult(None, round(conf, 3), None, speed_search=found)
    total = ratio * (1 + (fit["slope"] or 0.0))
    conversion, nominal = classify(total)
    global_ms = ratio * fit["lag"] * HOP_S * 1000  # dub time at the original's 0 s, from the whole-title peak
    windows = fit["windows"]
    for w in windows:  # into the dub's time after the conversion: dub time - nominal * original time
        t_ms, lag_ms = w["t_s"] * 1000, w.pop("lag_ms")
        w["offset_ms"] = round(ratio * (t_ms + lag_ms) - nominal * t_ms, 1)
        if fit["slope"] is not None:
            w["off_line_ms"] = round(ratio * (lag_ms - (fit["intercept_ms"] + fit["slope"] * t_ms)), 1)
    drift, offset_ms = None, global_ms
    if fit["slope"] is not None:
        drift = (total - nominal) * 3.6e6
        offset_ms = ratio * fit["intercept_ms"]  # at the start of the title; the drift moves it from there
    # diverging: a confident window off the line (re-timed or re-edited), or a window with little speech
    # (music and effects should match there) whose correlation is flat although the title's is not
    good = [w for w in windows if w["confidence"] >= min_confidence]
    typical = float(np.median([w["peak"] for w in good])) if good else 0.0
    diverging = _spans([w for w in windows
                        if (w["confidence"] >= min_confidence and abs(w.get("off_line_ms", 0)) > diverge_ms)
                        or (w["confidence"] < min_confidence <= conf and w["without_speech"] >= 0.5 and w["peak"] < typical / 2)],
                       window_s)
    return SyncResult(round(offset_ms, 1), round(conf, 3), None if drift is None else round(drift, 1), windows, diverging,
                      global_offset_ms=round(global_ms, 1), speed_ratio=round(total, 7), conversion=conversion,
                      nominal_ratio=round(nominal, 7), speed_search=found)


def _fit(ea: np.ndarray, eb: np.ndarray, wa: np.ndarray, wb: np.ndarray, ratio: float, max_lag: int, window_s: float,
         min_confidence: float, diverge_ms: float) -> dict:
    """The dub resampled at `ratio` onto the original's hops, then: the whole-title peak (`lag` in
    hops, `confidence`), windows along the title (60 s, shorter on a short title: at least 8 of
    them), each searched within +-2 s around that lag (`lag_ms` per window), and a robust line
    through the confident windows (`slope`: what is left of the ratio, `intercept_ms`)."""
    n = int(np.ceil(len(eb) / ratio))
    er, wr = resample(eb, ratio, 0, n), resample(wb, ratio, 0, n)
    guard = 5  # hops around the peak that belong to it
    lag, _, conf = peak(*xcorr(ea, er, max_lag), guard)
    out = {"confidence": conf, "lag": lag, "windows": [], "slope": None, "intercept_ms": None}
    if conf < min_confidence:
        return out
    win = int(window_s / HOP_S)
    local = int(2.0 / HOP_S)  # +-2 s: drift over a feature is seconds at most
    base = int(round(lag))
    windows = out["windows"]
    for start in range(0, max(1, len(ea) - win + 1), max(1, win // 2)):
        a = ea[start:start + win]
        lo, hi = start + base - local, start + base + len(a) + local
        if len(a) < win // 2 or lo < 0 or hi > len(er) or not a.any():
            continue
        b = er[lo:hi]
        raw = np.correlate(b, a, mode="valid")  # index k: lag base - local + k
        norms = np.sqrt((a ** 2).sum() * np.convolve(b ** 2, np.ones(len(a)), mode="valid")) + 1e-9
        wl, wp, wc = peak(np.arange(-local, local + 1, dtype=float), raw / norms, guard)
        shared = float(np.mean((wa[start:start + len(a)] == 1) & (wr[lo + local:lo + local + len(a)] >= 0.999)))
        windows.append({"t_s": round((start + len(a) / 2) * HOP_S, 2), "lag_ms": (base + wl) * HOP_S * 1000,
                        "confidence": round(wc, 3), "peak": round(wp, 3), "without_speech": round(shared, 2)})
    good = [w for w in windows if w["confidence"] >= min_confidence]
    if len(good) >= 3:
        t = np.array([w["t_s"] * 1000 for w in good])
        o = np.array([w["lag_ms"] for w in good])
        slope, icpt = robust_line(t, o, diverge_ms)
        out.update(slope=float(slope), intercept_ms=float(icpt))
    return out


def robust_line(t: np.ndarray, o: np.ndarray, tolerance_ms: float) -> tuple[float, float]:
    """A line through window offsets that a re-edited stretch cannot pull: Theil-Sen (median of
    pairwise slopes), then least squares on the windows within `tolerance_ms` of it."""
    i, j = np.triu_indices(len(t), 1)
    dt = t[j] - t[i]
    slope = float(np.median((o[j] - o[i])[dt > 0] / dt[dt > 0])) if (dt > 0).any() else 0.0
    icpt = float(np.median(o - slope * t))
    inliers = np.abs(o - (icpt + slope * t)) <= tolerance_ms
    if inliers.sum() >= 3:
        slope, icpt = (float(v) for v in np.polyfit(t[inliers], o[inliers], 1))
    return slope, icpt


def _spans(bad: list[dict], window_s: float) -> list[dict]:
    spans: list[dict] = []
    for w in bad:
        s, e = w["t_s"] - window_s / 2, w["t_s"] + window_s / 2
        if spans and s <= spans[-1]["end_s"]:
            spans[-1]["end_s"] = round(e, 2)
        else:
            spans.append({"start_s": round(max(0.0, s), 2), "end_s": round(e, 2)})
    return spans
