"""The consumer of the pass: GOPs in order, per-frame rows, the cross-GOP features and the poster pool."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DECODE_CODE_VERSION, VisualDecodeError, VisualPass
from .context import PassContext
from .lanes import Lane, stop_lanes
from .pictures import fit
from .stats import LAG_BATCH, Columns, gm_diff, mc_diff


def consume(ctx: PassContext, lanes: list[Lane], packs: dict, progress, t0: float, path: Path, codec: str, threads: int) -> VisualPass:
    """The GOPs in order, each from the lane that claimed it: per-frame rows, the cross-GOP features (the first
    frame's differences to the previous GOP's last frame, the look-ahead features over the ring of
    recent frames) and the poster pool."""
    cfg, fps, writer = ctx.cfg, ctx.fps, ctx.writer
    lags = sorted({max(1, int(round(s * fps))) for s in cfg.lags_s})
    kmax = max(lags)
    lag_keys = {k: (f"span_{k}", f"cov_{k}", f"hspan_{k}", f"blend_{k}") for k in lags}
    rows = Columns(nan_keys=("skip_diff",) + tuple(x for k in lags for x in lag_keys[k]))
    # look-ahead features are computed in batches of centre frames (vectorized: one set of numpy calls
    # per batch, not per frame), from the last 2*kmax+LAG_BATCH+1 frames kept here
    cap = 2 * kmax + LAG_BATCH + 2  # circular buffers of the last `cap` frames (index % cap)
    ring_l: np.ndarray | None = None  # (cap, pixels) float32 luma
    ring_h = np.zeros((cap, 128), dtype=np.float32)  # colour histograms
    lag_done = {k: k - 1 for k in lags}  # last centre frame whose lag-k features are filled
    skip_done = 0
    scratch_bufs: list = []

    def _scratch(m: int, n_pix: int) -> tuple:
        """Three float32 (m, n_pix) work arrays and a bool one, reused from call to call."""
        if not scratch_bufs or scratch_bufs[0].shape[0] < m or scratch_bufs[0].shape[1] != n_pix:
            rows_ = max(m, LAG_BATCH)
            scratch_bufs[:] = [np.empty((rows_, n_pix), np.float32) for _ in range(3)] + [np.empty((rows_, n_pix), bool)]
        return tuple(b[:m] for b in scratch_bufs)

    def fill_lag_features(last: int) -> None:
        """Fill skip_diff and the lag features of every centre frame whose window ends by `last`."""
        nonlocal skip_done
        if ring_l is None or last < 1:
            return
        L, H = ring_l, ring_h
        n_pix = L.shape[1]
        first = max(0, last - cap + 1)  # oldest frame still in the buffers
        lo = max(skip_done + 1, first + 1)
        hi = last - 1
        if hi >= lo:
            c = np.arange(lo, hi + 1)
            A, B, T, _ = _scratch(len(c), n_pix)
            np.take(L, c + 1, axis=0, mode="wrap", out=A)
            np.take(L, c - 1, axis=0, mode="wrap", out=B)
            np.subtract(A, B, out=T)
            np.abs(T, out=T)
            col = rows.cols["skip_diff"]
            for j, v in zip(range(lo, hi + 1), (T.sum(axis=1) / n_pix).tolist()):
                col[j] = v
            skip_done = hi
        for k in lags:
            lo = max(lag_done[k] + 1, first + k)
            hi = last - k
            if hi < lo:
                continue
            c = np.arange(lo, hi + 1)
            # in place, in preallocated buffers: this runs at frame rate on (frames x pixels) arrays
            A, B, T, big = _scratch(len(c), n_pix)
            np.take(L, c - k, axis=0, mode="wrap", out=A)
            np.take(L, c + k, axis=0, mode="wrap", out=B)
            np.subtract(A, B, out=T)
            np.abs(T, out=T)
            span = T.sum(axis=1) / n_pix
            np.greater(T, 20.0, out=big)
            cov = np.count_nonzero(big, axis=1) / n_pix
            np.add(A, B, out=T)
            T *= 0.5
            np.take(L, c, axis=0, mode="wrap", out=A)  # the centre frames
            np.subtract(A, T, out=T)
            np.abs(T, out=T)
            blend = T.sum(axis=1) / n_pix
            hspan = 0.5 * np.abs(np.take(H, c - k, axis=0, mode="wrap") - np.take(H, c + k, axis=0, mode="wrap")).sum(axis=1)
            k_span, k_cov, k_hspan, k_blend = lag_keys[k]
            for name, arr in ((k_span, span), (k_cov, cov), (k_hspan, hspan), (k_blend, blend)):
                col = rows.cols[name]
                for j, v in zip(range(lo, hi + 1), arr.tolist()):
                    col[j] = v
            lag_done[k] = hi

    # poster pool: (score, frame, t_s, segment, frame object, parts); the frames are converted once, at the end
    pool: list[tuple] = []

    def admit(score, frame_idx, t_s, segment, kept, parts_) -> None:
        same = [i for i, e in enumerate(pool) if e[3] == segment]
        if len(same) >= cfg.poster_per_segment:  # this stretch already has its share: replace its worst
            slot = min(same, key=lambda i: pool[i][0])
        elif len(pool) < cfg.poster_pool:
            slot = len(pool)
            pool.append(None)
        else:
            slot = min(range(len(pool)), key=lambda i: pool[i][0])
        if pool[slot] is None or score > pool[slot][0]:
            pool[slot] = (score, frame_idx, t_s, segment, kept, parts_)
        if len(pool) >= cfg.poster_pool:  # full: lanes hand over only candidates above its lowest score
            ctx.shared.pool_bar = min(e[0] for e in pool)

    prev_luma = prev_hist = None
    ref = RefDiff(cfg.freeze_ref_reset)
    gop_base: dict[int, int] = {}
    idx = 0
    done = truncated = False
    gops = 0  # closed GOPs decoded (split points for the lanes)
    last_progress = time.perf_counter()
    for lane in lanes:
        lane.thread.start()
    g = 0
    while not done:
        owner = ctx.shared.owner_of(g)
        if owner is None:  # past the last GOP
            break
        lane = lanes[owner]
        gop_base[g] = idx
        first_batch = True
        while True:
            item = lane.get()
            kind = item[0]
            if kind == "done":
                done = True
                break
            if kind == Lane.END:
                gops += 1
                for score, local, t_s, seg, kept, parts_ in item[3]:
                    admit(score, gop_base[g] + local, t_s, (g, seg), kept, parts_)
                if item[2]:  # reached max_seconds
                    done = truncated = True
                break
            _, gop, local0, nb, t_list, pts, key, inter, corrupt, cols, lum, hist, cbars, cands, taps = item
            if ctx.tap is not None:  # the proxy's pictures, in frame order
                for t_s, data in zip(t_list, taps):
                    ctx.tap.feed(t_s, data)
            if first_batch and prev_luma is not None:  # the GOP's first frame against the previous GOP's last
                n_pix = lum.shape[1]
                cols["diff"][0] = float(np.abs(lum[0] - prev_luma).sum(dtype=np.float64)) / n_pix
                cols["hist_diff"][0] = 0.5 * float(np.abs(hist[0] - prev_hist).sum(dtype=np.float64))
                geo = ctx.geom  # the analysis picture, turned like the frames (rotation % 180: width and height swap)
                shape = (geo["aw"], geo["ah"]) if geo["rotation"] % 180 else (geo["ah"], geo["aw"])
                cols["mc_diff"][0] = mc_diff(lum[:1].reshape(1, *shape), prev_luma.reshape(shape))[0]
                cols["gm_diff"][0] = gm_diff(lum[:1].reshape(1, *shape), prev_luma.reshape(shape))[0]
            first_batch = False
            rows.extend({
                "frame": np.arange(idx, idx + nb),
                "t_s": t_list,
                "pts": pts,
                "key_frame": key,
                "interlaced": inter,
                "corrupt": corrupt,
                **{k: cols[k] for k in ("luma_mean", "luma_std", "luma_min", "luma_max", "black_ratio", "diff", "hist_diff", "mc_diff", "gm_diff",
                                        "bar_top", "bar_bottom", "bar_left", "bar_right")},
                "colour_bars": cbars,
                **{k: cols[k] for k in ("sharpness", "colorfulness", "saturation", "exposure")},
                "ref_diff": ref.batch(lum),
            }, nb)
            if ring_l is None:
                ring_l = np.zeros((cap, lum.shape[1]), dtype=np.float32)
            slots = np.arange(idx, idx + nb) % cap
            ring_l[slots] = lum
            ring_h[slots] = hist
            fill_lag_features(idx + nb - 1)
            prev_luma, prev_hist = lum[-1], hist[-1]
            for score, local, t_s, seg, kept, parts_ in cands:
                admit(score, gop_base[g] + local, t_s, (g, seg), kept, parts_)
            idx += nb
            if progress is not None and time.perf_counter() - last_progress >= 5.0:
                last_progress = time.perf_counter()
                progress(idx, t_list[-1])
        g += 1
    stop_lanes(ctx, lanes)  # lanes past the end (or past max_seconds) have nothing more to say
    fill_lag_features(idx - 1)
    # the poster pool at full resolution (capped at poster_max_side), best first
    for _score, pidx, pt, _seg, frame, parts_ in sorted(pool, key=lambda e: -e[0]):
        writer.submit("posters", ctx.rgb_maker(frame, *fit(frame.width, frame.height, cfg.poster_max_side), "AREA"),
                      {"kind": "poster", "frame": pidx, "t_s": pt, "window": None, **parts_})
    pool.clear()
    records = writer.close()
    decode_errors = sum(lane.decode_errors for lane in lanes)
    error_times = sorted(t for lane in lanes for t in lane.error_times)
    if not len(rows):
        raise VisualDecodeError(f"no decodable video frame in {path.name} ({decode_errors} decode errors)")
    for r in records:  # lanes number frames within their GOP
        if "gop" in r:
            base = gop_base.get(r.pop("gop"), 0)
            r["frame"] = base + r.pop("local")
            r["window"] = base + r.pop("window_local") if "window_local" in r else None
    # frame order (the lanes' pictures reach the writer interleaved), posters last, best first
    records.sort(key=lambda r: (r["kind"] == "poster", r["frame"] if r["kind"] != "poster" else 0, r["kind"] == "keyframe"))
    stats = rows.frame()
    stats["frame"] = stats["frame"].astype("int64")
    for c in ("key_frame", "interlaced", "corrupt"):
        stats[c] = stats[c].astype(bool)
    pictures_df = pd.DataFrame(records)
    for c in ("offset", "length", "width", "height"):
        if c in pictures_df:
            pictures_df[c] = pictures_df[c].astype("int64")
    elapsed = time.perf_counter() - t0
    geom = ctx.geom
    src_w, src_h, rotation = geom["src_w"], geom["src_h"], geom["rotation"]
    meta = {
        "frames": int(len(stats)),
        "fps": fps,
        "width": src_w,
        "height": src_h,
        "rotation": rotation,
        "display_width": src_h if rotation % 180 else src_w,
        "display_height": src_w if rotation % 180 else src_h,
        "analysis_size": [geom["aw"], geom["ah"]] if not rotation % 180 else [geom["ah"], geom["aw"]],
        "lags": lags,
        "decode_errors": decode_errors,
        "decode_error_times_s": error_times[:100],
        "corrupt_frames": int(stats["corrupt"].sum()),
        "codec": codec,
        "decode_lanes": len(lanes),
        "decoder_threads_per_lane": threads,
        "gops": gops,
        "seconds": round(elapsed, 3),
        "picture_seconds": round(writer.seconds, 3),
        "frames_per_s": round(len(stats) / elapsed, 1) if elapsed > 0 else None,
        "truncated_at_s": cfg.max_seconds if truncated else None,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "code_version": DECODE_CODE_VERSION,
    }
    return VisualPass(stats=stats, pictures=pictures_df, packs={n: p.path for n, p in packs.items()}, meta=meta)


class RefDiff:
    """freezedetect's measure, on the analysis pictures: each frame's mean absolute luma difference
    to a reference frame, the reference being the first frame since the difference last exceeded
    `reset` (then that frame becomes the reference). A held picture stays near 0 however long it
    lasts; a slow pan or zoom over a still picture accumulates change and keeps resetting, though
    the difference between consecutive frames is as small as a held picture's (QC: freeze)."""

    def __init__(self, reset: float):
        self.reset = reset
        self.ref: np.ndarray | None = None

    def batch(self, lum: np.ndarray) -> np.ndarray:
        out = np.zeros(len(lum))
        n = lum.shape[1]
        for i in range(len(lum)):
            if self.ref is None:
                self.ref = lum[i].copy()
                continue
            d = float(np.abs(lum[i] - self.ref).sum(dtype=np.float64)) / n
            out[i] = d
            if d > self.reset:
                self.ref = lum[i].copy()
        return out
