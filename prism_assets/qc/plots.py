"""Plots of the QC fail reasons that have no offending frame: a track's loudness over time against its profile's
target (a `loudness` event) and its block peaks against the true-peak limit (a `true_peak` event), drawn with PIL
(no plotting stack in the image) as small JPEGs shown inline with the `qc` materialization."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

W, H, LEFT, BOTTOM, TOP = 640, 220, 52, 24, 22


def short_term(loud: pd.DataFrame, track: int) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, LUFS) once per second: the mean block power of the last 3 s (EBU short-term loudness) of one track."""
    part = loud[loud["track"] == track].sort_values("t_s") if len(loud) else loud
    if not len(part):
        return np.array([]), np.array([])
    t, p = part["t_s"].to_numpy(float), part["power"].to_numpy(float)
    secs = np.arange(np.floor(t.min()), np.floor(t.max()) + 1)
    out = []
    for s in secs:
        m = (t > s - 3) & (t <= s)
        mean = float(np.mean(p[m])) if m.any() else 0.0
        out.append(-0.691 + 10 * np.log10(mean) if mean > 0 else np.nan)
    return secs, np.asarray(out)


def _font():
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, 11)
        except OSError:
            continue
    return ImageFont.load_default()  # cosmetic only: the plot is the same


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def loudness_plot(t: np.ndarray, lufs: np.ndarray, target: float, tol: float, measured: float | None, title: str) -> bytes:
    """The curve (3-s loudness), the target +-tolerance band (green) and the measured value (red dashes)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font = _font()
    finite = lufs[np.isfinite(lufs)]
    lo = min([target - tol - 6, *(finite.min(initial=target) - 2,), *( [measured - 2] if measured is not None else [])])
    hi = max([target + tol + 6, *(finite.max(initial=target) + 2,), *( [measured + 2] if measured is not None else [])])
    lo, hi = np.floor(lo / 5) * 5, np.ceil(hi / 5) * 5
    t0, t1 = (float(t.min()), float(t.max())) if len(t) else (0.0, 1.0)
    t1 = t1 if t1 > t0 else t0 + 1

    def x(v):
        return LEFT + (v - t0) / (t1 - t0) * (W - LEFT - 8)

    def y(v):
        return TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM)

    d.rectangle([LEFT, y(target + tol), W - 8, y(target - tol)], fill=(214, 240, 216))
    for v in np.arange(lo, hi + 0.1, 5):
        d.line([LEFT, y(v), W - 8, y(v)], fill=(225, 225, 225))
        d.text((4, y(v) - 6), f"{v:.0f}", fill=(90, 90, 90), font=font)
    d.line([LEFT, y(target), W - 8, y(target)], fill=(30, 125, 50))
    pts = [(x(a), y(b)) for a, b in zip(t, lufs) if np.isfinite(b)]
    if len(pts) > 1:
        d.line(pts, fill=(21, 101, 192), width=2)
    if measured is not None:
        for xs in range(LEFT, W - 8, 12):
            d.line([xs, y(measured), xs + 6, y(measured)], fill=(198, 40, 40), width=2)
    d.text((LEFT, 4), title, fill=(0, 0, 0), font=font)
    d.text((LEFT, H - 16), f"{t0:.0f} s", fill=(90, 90, 90), font=font)
    d.text((W - 60, H - 16), f"{t1:.0f} s", fill=(90, 90, 90), font=font)
    d.text((W - 230, 4), f"green: {target:g} +-{tol:g} LUFS  red: measured", fill=(90, 90, 90), font=font)
    return _jpeg(img)


def reason_plots(qc_doc: dict, loud: pd.DataFrame | None, limit: int = 4) -> list[tuple[str, bytes]]:
    """[(caption, JPEG)] for the title's loudness and true-peak events (fail first), at most `limit`."""
    if loud is None or not len(loud):
        return []
    events = [e for e in qc_doc.get("events") or [] if e.get("kind") in ("loudness", "true_peak") and e.get("track") is not None]
    events.sort(key=lambda e: (e.get("severity") != "fail", e.get("kind"), e.get("track")))
    out = []
    for e in events[:limit]:
        m = e.get("metrics") or {}
        t, lufs = short_term(loud, int(e["track"]))
        if not len(t):
            continue
        if e["kind"] == "loudness":
            target, tol, measured = float(m.get("target_lufs", -23)), float(m.get("tolerance_lu", 1)), m.get("measured_lufs")
            title = f"track {e['track']}: loudness over time ({m.get('measure', 'integrated')} {measured} LUFS)"
        else:  # the 3-s loudness with the true peak named: where the track is loud
            target, tol, measured = float(m.get("max_dbtp", -1)), 0.0, m.get("true_peak_dbtp")
            title = f"track {e['track']}: true peak {measured} dBTP above {target:g} dBTP (curve: 3-s loudness)"
        out.append((f"{e['severity'].upper()} {e['kind']}: {e.get('detail', '')}",
                    loudness_plot(t, lufs, target, tol, None if measured is None else float(measured), title)))
    return out
