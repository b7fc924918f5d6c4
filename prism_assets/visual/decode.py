"""The one visual decode pass of a title.

Every frame is decoded once (PyAV, frame+slice threads) and scaled *inside libswscale* to a small
analysis picture (default 128 px wide, full-range YUV 4:4:4); full-resolution RGB is produced only for the few frames
that are kept as pictures. From the analysis picture the pass computes, per frame:

* shot-boundary features: mean abs luma difference to the previous frame (`diff`), colour-histogram
  distance (`hist_diff`), the difference across the frame (`skip_diff`, F[t-1] vs F[t+1], separates
  flashes from cuts), and linear-blend features for gradual transitions: for lags k,
  `span_k` = |F[t-k] - F[t+k]|, `cov_k` = the fraction of pixels that changed by more than 20 across
  that span, `hspan_k` = the colour-histogram distance across it, and `blend_k` = |F[t] - (F[t-k] + F[t+k]) / 2| (a dissolve or fade is a linear blend, so
  `blend_k` ~ 0 while `span_k` is large; motion and cuts give blend_k >= span_k / 2);
* QC statistics: luma mean / std / min / max, fraction of black pixels (blackdetect's pix_th),
  letterbox / pillarbox bars (rows / columns of black at each edge), colour-bar test-pattern evidence,
  interlacing flag, corrupt flag, key frame;
* picture quality for keyframes and posters: sharpness (variance of the Laplacian), exposure,
  contrast, colourfulness (Hasler-Suesstrunk), saturation.

It also keeps three kinds of pictures, written as JPEG "packs" (concatenated JPEG bytes plus an index
of offsets; one file each, streamed to disk so memory stays flat whatever the duration):

* `samples.pack`: frames on a fixed time grid (`sample_fps`, default 1/s), resized so the short side
  is `sample_size` (bicubic, swscale) and center-cropped square: exactly CLIP's preprocessing;
* `keyframes.pack`: the best-quality frame of every window of at most `window_s` seconds; windows also
  break at every cut candidate and black/non-black change, so every shot owns candidates;
  stored at `keyframe_max_side`;
* `posters.pack`: a bounded pool (`poster_pool`) of the best-scoring keyframe candidates at full
  resolution (capped at `poster_max_side`), at most `poster_per_segment` per stretch between cut
  candidates, the lowest evicted. The pool holds the decoded frames themselves and converts only the
  survivors, once, at the end.

Pictures are converted (swscale) and JPEG-encoded (libjpeg-turbo via simplejpeg) on one worker
thread, fed through a bounded queue, so decode and encode overlap and memory stays flat.

Nothing here imports torch: the pass runs on a CPU decode pool; models run in later steps.
"""

from __future__ import annotations

from array import array
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

DECODE_CODE_VERSION = "visual-pass-1"
STATS_SCHEMA_VERSION = "1.0"


class VisualDecodeError(RuntimeError):
    """The video cannot be decoded at all; str() is one line."""


@dataclass(frozen=True)
class VisualPassConfig:
    analysis_width: int = 128  # analysis picture width (height keeps the aspect ratio, even)
    analysis_interpolation: str = "fast_bilinear"  # swscale filter for the analysis picture (fast_bilinear | area | bilinear): 6x cheaper than area at 1080p, same accuracy on the benchmarks
    sample_fps: float = 1.0  # embedding samples per second
    sample_size: int = 224  # embedding sample side (CLIP input)
    window_s: float = 0.5  # keyframe-candidate window
    keyframe_max_side: int = 640
    colour_bars_every: int = 4  # frames between colour-bar tests (and at every cut candidate)
    poster_pool: int = 24  # full-resolution frames kept for poster ranking (2 x the default count)
    poster_per_segment: int = 2  # at most this many pool entries per stretch between cut candidates
    poster_max_side: int = 3840
    jpeg_quality: int = 90
    black_pix_th: float = 0.10  # blackdetect pix_th (fraction of full range)
    lags_s: tuple[float, ...] = (0.12, 0.25, 0.5)  # blend-feature lags, seconds
    cut_candidate_diff: float = 12.0  # online window break (any plausible cut; over-segmenting is harmless)
    threads: int = 0  # decoder threads (0 = auto)
    max_seconds: float | None = None  # stop after this much video (benchmarks); None = whole title

    @classmethod
    def from_config(cls, cfg: dict | None) -> "VisualPassConfig":
        cfg = dict(cfg or {})
        if "lags_s" in cfg:
            cfg["lags_s"] = tuple(float(x) for x in cfg["lags_s"])
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown visual pass settings: {', '.join(unknown)}")
        return cls(**cfg)


@dataclass
class VisualPass:
    stats: pd.DataFrame  # one row per decoded frame
    pictures: pd.DataFrame  # index of every kept picture (kind, frame, t_s, pack, offset, length, w, h, scores)
    packs: dict[str, Path]  # pack name -> local file
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# per-frame picture measures (on the small analysis picture)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


_sum = np.add.reduce
LAG_BATCH = 16


def quality_parts(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict:
    """Explainable picture-quality measures of one analysis picture (full-range Y as float32, U and V
    planes as uint8, any resolution): sharpness = variance of the Laplacian of Y; colourfulness =
    Hasler-Suesstrunk's measure on the chroma plane (std + 0.3 mean of the opponent components);
    saturation = mean chroma magnitude (0..1)."""
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


def _bars(luma: np.ndarray, th: float) -> tuple[float, float, float, float]:
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


# ---------------------------------------------------------------------------------------------


class _Columns:
    """Per-frame statistics as growing typed arrays (8 bytes a value, not a dict per frame), so a
    2-hour title's statistics stay tens of MB."""

    def __init__(self, nan_keys: tuple[str, ...] = ()):
        self.cols: dict[str, array] = {}
        self.nan_keys = nan_keys  # columns filled later (look-ahead features): NaN until then
        self.n = 0

    def append(self, row: dict) -> None:
        cols = self.cols
        for k, v in row.items():  # values are numbers or bools (never None)
            col = cols.get(k)
            if col is None:
                col = cols[k] = array("d", [math.nan] * self.n)
            col.append(v)
        for k in self.nan_keys:
            col = cols.get(k)
            if col is None:
                col = cols[k] = array("d", [math.nan] * self.n)
            col.append(math.nan)
        self.n += 1

    def set(self, i: int, key: str, value: float) -> None:
        self.cols[key][i] = value

    def value(self, i: int, key: str) -> float:
        return self.cols[key][i]

    def __len__(self) -> int:
        return self.n

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.frombuffer(v, dtype=np.float64).copy() for k, v in self.cols.items()})


class _Pack:
    """Append-only file of concatenated JPEGs."""

    def __init__(self, path: Path, quality: int):
        self.path = path
        self.quality = quality
        self.fh = open(path, "wb")
        self.offset = 0

    def add(self, rgb: np.ndarray) -> tuple[int, int]:
        data = encode_jpeg(rgb, self.quality)
        off = self.offset
        self.fh.write(data)
        self.offset += len(data)
        return off, len(data)

    def close(self):
        self.fh.close()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a uint8 RGB picture (libjpeg-turbo through simplejpeg; 3-4x faster than PIL)."""
    import simplejpeg

    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=int(quality), colorspace="RGB")


def decode_jpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def read_pack_image(path: Path, offset: int, length: int) -> np.ndarray:
    """One picture of a pack as uint8 RGB."""
    return decode_jpeg(read_pack_bytes(path, offset, length))


def read_pack_bytes(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(int(offset))
        return fh.read(int(length))


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display rotation (degrees counter-clockwise, as in the display matrix)."""
    r = rotation % 360
    if r == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=r // 90))


def _to_rgb(reformatter, frame, w: int, h: int, interpolation) -> np.ndarray:
    """RGB of a frame at w x h. A large downscale is done in the frame's own YUV format first (area
    filter on subsampled chroma is cheap), then converted; untagged HD is taken as BT.709."""
    from av.video.reformatter import Colorspace

    src_cs = None
    if int(frame.colorspace) not in (1, 5, 6, 7) and frame.height > 576:  # unspecified: HD is BT.709
        src_cs = Colorspace.ITU709
    if w * 1.5 < frame.width and h * 1.5 < frame.height and frame.format.name in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p"):
        frame = reformatter.reformat(frame, w, h, interpolation=interpolation)
    return reformatter.reformat(frame, w, h, "rgb24", src_colorspace=src_cs, interpolation=interpolation).to_ndarray()


def _fit(w: int, h: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(w, h))
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


class _PictureWriter:
    """Converts kept frames to RGB and JPEG-encodes them on one worker thread (swscale and
    libjpeg-turbo release the GIL), so the decode loop does not wait for pictures. One worker keeps
    each pack's order; the queue is bounded, so at most `depth` frames wait (flat memory)."""

    def __init__(self, packs: dict[str, "_Pack"], depth: int = 8):
        import queue
        import threading

        self.packs = packs
        self.q: "queue.Queue" = queue.Queue(maxsize=depth)
        self.records: list[dict] = []
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="prism-pictures", daemon=True)
        self.thread.start()

    def submit(self, pack: str, make_rgb: Callable[[], np.ndarray], record: dict) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((pack, make_rgb, record))

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            pack, make_rgb, record = item
            t0 = time.perf_counter()
            try:
                rgb = make_rgb()
                off, ln = self.packs[pack].add(rgb)
                self.records.append({**record, "pack": pack, "offset": off, "length": ln, "width": rgb.shape[1], "height": rgb.shape[0]})
            except BaseException as exc:  # surfaced in the decode loop / at close
                self.error = exc
            self.seconds += time.perf_counter() - t0

    def abort(self) -> None:
        """Stop the worker after a failure in the decode loop (drops what is queued)."""
        import queue

        self.error = self.error or RuntimeError("aborted")
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        self.q.put(None)
        self.thread.join(timeout=30)
        for p in self.packs.values():
            p.close()

    def close(self) -> list[dict]:
        self.q.put(None)
        self.thread.join()
        for p in self.packs.values():
            p.close()
        if self.error is not None:
            raise self.error
        return self.records


def run_visual_pass(path: str | Path, workdir: str | Path, cfg: VisualPassConfig | None = None,
                    progress: Callable[[int, float], None] | None = None) -> VisualPass:
    """Decode `path` once and return the per-frame statistics and the kept pictures.

    Corrupt packets are skipped and counted (`decode_errors`), never fatal unless no frame decodes.
    """
    import av
    from av.video.reformatter import ColorRange, Interpolation, VideoReformatter

    cfg = cfg or VisualPassConfig()
    path = Path(path)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VisualDecodeError(f"cannot open {path.name}: {getattr(exc, 'strerror', None) or exc}") from None
    writer = None
    with container:
        vids = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not vids:
            raise VisualDecodeError(f"no video stream in {path.name}")
        stream = vids[0]
        stream.thread_type = "FRAME"  # frame threads: the fastest for H.264/HEVC on few cores (FFmpeg falls back where unsupported)
        stream.thread_count = cfg.threads
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 25.0
        lags = sorted({max(1, int(round(s * fps))) for s in cfg.lags_s})
        kmax = max(lags)
        th = cfg.black_pix_th * 255.0

        packs = {name: _Pack(workdir / f"{name}.pack", cfg.jpeg_quality + (4 if name == "posters" else 0)) for name in ("samples", "keyframes", "posters")}
        writer = _PictureWriter(packs)
        try:
            return_value = _decode_loop(container, stream, cfg, fps, lags, kmax, th, writer, packs, progress, t0, path)
        except BaseException:
            writer.abort()
            raise
    return return_value


def _decode_loop(container, stream, cfg, fps, lags, kmax, th, writer, packs, progress, t0, path):
    import av
    from av.video.reformatter import ColorRange, Interpolation, VideoReformatter

    small = VideoReformatter()
    interp = getattr(Interpolation, cfg.analysis_interpolation.upper())
    pic_fmt = VideoReformatter()  # used only by the writer thread
    pool_fmt = VideoReformatter()

    lag_keys = {k: (f"span_{k}", f"cov_{k}", f"hspan_{k}", f"blend_{k}") for k in lags}
    rows = _Columns(nan_keys=("skip_diff",) + tuple(x for k in lags for x in lag_keys[k]))
    # look-ahead features are computed in batches of LAG_BATCH centre frames (vectorized: one set of
    # numpy calls per batch, not per frame), from the last 2*kmax+LAG_BATCH+1 frames kept here
    cap = 2 * kmax + LAG_BATCH + 2  # circular buffers of the last `cap` frames (index % cap)
    ring_l: np.ndarray | None = None  # (cap, pixels) float32 luma
    ring_h = np.zeros((cap, 128), dtype=np.float32)  # colour histograms
    lag_done = {k: k - 1 for k in lags}  # last centre frame whose lag-k features are filled
    skip_done = 0

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
            vals = np.abs(L[(c + 1) % cap] - L[(c - 1) % cap]).sum(axis=1) / n_pix
            col = rows.cols["skip_diff"]
            for j, v in zip(range(lo, hi + 1), vals.tolist()):
                col[j] = v
            skip_done = hi
        for k in lags:
            lo = max(lag_done[k] + 1, first + k)
            hi = last - k
            if hi < lo:
                continue
            c = np.arange(lo, hi + 1)
            A, M, B = L[(c - k) % cap], L[c % cap], L[(c + k) % cap]
            ab = np.abs(A - B)
            span = ab.sum(axis=1) / n_pix
            cov = np.count_nonzero(ab > 20.0, axis=1) / n_pix
            blend = np.abs(M - 0.5 * (A + B)).sum(axis=1) / n_pix
            hspan = 0.5 * np.abs(H[(c - k) % cap] - H[(c + k) % cap]).sum(axis=1)
            k_span, k_cov, k_hspan, k_blend = lag_keys[k]
            for name, arr in ((k_span, span), (k_cov, cov), (k_hspan, hspan), (k_blend, blend)):
                col = rows.cols[name]
                for j, v in zip(range(lo, hi + 1), arr.tolist()):
                    col[j] = v
            lag_done[k] = hi
    prev_luma = prev_hist = None
    decode_errors = 0
    error_times: list[float] = []
    rotation = 0
    aw = ah = None
    src_w = src_h = None
    next_sample_t = None
    win: dict | None = None  # current keyframe window
    bars_score = None
    segment = 0  # online segment (between cut candidates): poster diversity
    # poster pool: (score, frame index, t_s, segment, av frame, parts). The frames themselves are
    # kept (decoder-owned buffers, bounded by poster_pool) and converted once, at the end.
    pool: list[tuple] = []
    last_progress = time.perf_counter()

    def rgb_maker(frame, w, h, interp, crop: int | None = None):
        def make():
            rgb = _rotate(_to_rgb(pic_fmt, frame, w, h, interp), rotation)
            if crop:
                y0, x0 = (rgb.shape[0] - crop) // 2, (rgb.shape[1] - crop) // 2
                rgb = rgb[y0 : y0 + crop, x0 : x0 + crop]
            return np.ascontiguousarray(rgb)
        return make

    def close_window():
        nonlocal win
        if win is None or win["best"] is None:
            win = None
            return
        frame, idx_, t_s_, bars_, quality_ = win["best"]
        parts_ = {k: rows.value(idx_, k) for k in ("sharpness", "colorfulness", "saturation", "exposure", "luma_mean", "luma_std")}
        parts_["bars"], parts_["quality"] = bars_, quality_
        writer.submit("keyframes", rgb_maker(frame, *_fit(src_w, src_h, cfg.keyframe_max_side), Interpolation.AREA),
                      {"kind": "keyframe", "frame": idx_, "t_s": t_s_, "window": win["id"], **parts_})
        score = parts_["quality"]
        if score > 0 and cfg.poster_pool > 0:
            same = [i for i, e in enumerate(pool) if e[3] == win["segment"]]
            if len(same) >= cfg.poster_per_segment:  # this stretch already has its share: replace its worst
                slot = min(same, key=lambda i: pool[i][0])
            elif len(pool) < cfg.poster_pool:
                slot = len(pool)
                pool.append(None)
            else:
                slot = min(range(len(pool)), key=lambda i: pool[i][0])
            if pool[slot] is None or score > pool[slot][0]:
                kept = frame
                if max(src_w, src_h) > cfg.poster_max_side:  # bound the pool's memory: keep it at the poster size
                    kept = pool_fmt.reformat(frame, *_fit(src_w, src_h, cfg.poster_max_side), interpolation=Interpolation.AREA)
                pool[slot] = (score, idx_, t_s_, win["segment"], kept, parts_)
        win = None

    packets = container.demux(stream)
    idx = 0
    done = False
    while not done:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError:
            decode_errors += 1
            continue
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            decode_errors += 1
            if packet.pts is not None and packet.time_base:
                error_times.append(float(packet.pts * packet.time_base))
            continue
        for frame in frames:
            if src_w is None:
                src_w, src_h = frame.width, frame.height
                try:
                    rotation = int(frame.rotation or 0)
                except Exception:  # pragma: no cover - older PyAV
                    rotation = 0
                aw = max(8, cfg.analysis_width)
                ah = max(8, int(round(aw * src_h / src_w / 2)) * 2)
            t_s = float(frame.time) if frame.time is not None else idx / fps
            if cfg.max_seconds is not None and t_s >= cfg.max_seconds:
                done = True
                break
            a420 = small.reformat(frame, aw, ah, "yuv420p", interpolation=interp, dst_color_range=ColorRange.JPEG).to_ndarray()
            flat = a420.reshape(-1)
            ny, nc = ah * aw, (ah // 2) * (aw // 2)
            y8 = flat[:ny].reshape(ah, aw)
            u8 = flat[ny : ny + nc].reshape(ah // 2, aw // 2)
            v8 = flat[ny + nc : ny + 2 * nc].reshape(ah // 2, aw // 2)
            if rotation % 180:
                k_rot = (rotation % 360) // 90
                y8, u8, v8 = (np.ascontiguousarray(np.rot90(x, k=k_rot)) for x in (y8, u8, v8))
            luma = y8.astype(np.float32)
            lf = luma.reshape(-1)  # flat views: np.add.reduce / np.dot are the cheapest reductions
            N = lf.size
            lm = float(_sum(lf)) / N
            ls = math.sqrt(max(0.0, float(np.dot(lf, lf)) / N - lm * lm))
            hist = np.bincount(((y8[::2, ::2] >> 5).astype(np.int32) * 16 + (u8 >> 6) * 4 + (v8 >> 6)).ravel(), minlength=128).astype(np.float32)
            hist *= 1.0 / max(1.0, float(_sum(hist)))
            parts = quality_parts(luma, u8, v8)
            row = {
                "frame": idx,
                "t_s": t_s,
                "pts": frame.pts if frame.pts is not None else math.nan,  # never None in the row
                "key_frame": bool(frame.key_frame),
                "interlaced": bool(frame.interlaced_frame),
                "corrupt": bool(frame.is_corrupt),
                "luma_mean": lm,
                "luma_std": ls,
                "luma_min": float(y8.min()),
                "luma_max": float(y8.max()),
                "black_ratio": float(np.count_nonzero(y8 <= th)) / N,
                "diff": float(_sum(np.abs(lf - prev_luma))) / N if prev_luma is not None else 0.0,
                "hist_diff": float(0.5 * _sum(np.abs(hist - prev_hist))) if prev_hist is not None else 0.0,
            }
            row["bar_top"], row["bar_bottom"], row["bar_left"], row["bar_right"] = _bars(y8, th)
            # colour bars are saturated: skip the stripe test on unsaturated pictures
            # colour bars are saturated and last seconds: test unsaturated pictures never, others every
            # `colour_bars_every` frames and at every cut candidate (held in between)
            if parts["saturation"] <= 0.12:
                bars_score = 0.0
            elif idx % cfg.colour_bars_every == 0 or bars_score is None or row["diff"] >= cfg.cut_candidate_diff:
                bars_score = colour_bars_score(luma, u8, v8)
            row["colour_bars"] = bars_score
            row.update(parts)
            row["exposure"] = exposure_score(lm, ls)
            rows.append(row)
            hl = lf
            if ring_l is None:
                ring_l = np.zeros((cap, lf.size), dtype=np.float32)
            ring_l[idx % cap] = lf
            ring_h[idx % cap] = hist
            if idx % LAG_BATCH == LAG_BATCH - 1:
                fill_lag_features(idx)
            # embedding samples on a fixed time grid (short side to sample_size, center crop)
            if next_sample_t is None:
                next_sample_t = t_s
            if t_s + 1e-6 >= next_sample_t:
                sz = cfg.sample_size
                dw, dh = (src_h, src_w) if rotation % 180 else (src_w, src_h)
                sw, sh = (sz, max(sz, int(round(dh * sz / dw)))) if dw <= dh else (max(sz, int(round(dw * sz / dh))), sz)
                if rotation % 180:
                    sw, sh = sh, sw
                writer.submit("samples", rgb_maker(frame, sw, sh, Interpolation.BICUBIC, crop=sz),
                              {"kind": "sample", "frame": idx, "t_s": t_s, "window": None, **parts, "exposure": row["exposure"]})
                next_sample_t = max(next_sample_t + 1.0 / cfg.sample_fps, t_s + 0.5 / cfg.sample_fps)
            # keyframe windows: break on time, cut candidates and black changes
            is_black = row["black_ratio"] >= 0.98
            cut_like = row["diff"] >= cfg.cut_candidate_diff or row["hist_diff"] >= 0.35
            if cut_like or (win is not None and is_black != win["black"]):
                segment += 1
            if win is None or t_s - win["t0"] >= cfg.window_s or cut_like or is_black != win["black"]:
                close_window()
                win = {"t0": t_s, "black": is_black, "best": None, "score": -1.0, "id": idx, "segment": segment}
            bars = max(row["bar_top"] + row["bar_bottom"], row["bar_left"] + row["bar_right"])
            quality = 0.0 if (is_black or row["colour_bars"] >= 0.5) else (
                math.log1p(parts["sharpness"]) * row["exposure"] * (1.0 + 0.01 * min(parts["colorfulness"], 100.0)) * (1.0 - min(1.0, bars))
            )
            if quality > win["score"]:  # the window's best so far (its parts are read back at close)
                win["score"] = quality
                win["best"] = (frame, idx, t_s, bars, quality)
            prev_luma, prev_hist = hl, hist
            idx += 1
            if progress is not None and time.perf_counter() - last_progress >= 5.0:
                last_progress = time.perf_counter()
                progress(idx, t_s)
    fill_lag_features(idx - 1)
    close_window()
    # the poster pool at full resolution (capped at poster_max_side), best first
    for score, pidx, pt, seg, frame, parts_ in sorted(pool, key=lambda e: -e[0]):
        writer.submit("posters", rgb_maker(frame, *_fit(frame.width, frame.height, cfg.poster_max_side), Interpolation.AREA),
                      {"kind": "poster", "frame": pidx, "t_s": pt, "window": None, **parts_})
    pool.clear()
    records = writer.close()
    if not len(rows):
        raise VisualDecodeError(f"no decodable video frame in {path.name} ({decode_errors} decode errors)")
    stats = rows.frame()
    stats["frame"] = stats["frame"].astype("int64")
    for c in ("key_frame", "interlaced", "corrupt"):
        stats[c] = stats[c].astype(bool)
    pictures_df = pd.DataFrame(records)
    for c in ("offset", "length", "width", "height"):
        if c in pictures_df:
            pictures_df[c] = pictures_df[c].astype("int64")
    elapsed = time.perf_counter() - t0
    meta = {
        "frames": int(len(stats)),
        "fps": fps,
        "width": src_w,
        "height": src_h,
        "rotation": rotation,
        "display_width": src_h if rotation % 180 else src_w,
        "display_height": src_w if rotation % 180 else src_h,
        "analysis_size": [aw, ah] if not rotation % 180 else [ah, aw],
        "lags": lags,
        "decode_errors": decode_errors,
        "decode_error_times_s": error_times[:100],
        "corrupt_frames": int(stats["corrupt"].sum()),
        "codec": stream.codec_context.name,
        "seconds": round(elapsed, 3),
        "picture_seconds": round(writer.seconds, 3),
        "frames_per_s": round(len(stats) / elapsed, 1) if elapsed > 0 else None,
        "truncated_at_s": cfg.max_seconds if done else None,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "code_version": DECODE_CODE_VERSION,
    }
    return VisualPass(stats=stats, pictures=pictures_df, packs=dict(packs and {n: p.path for n, p in packs.items()}), meta=meta)
