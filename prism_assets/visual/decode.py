"""The one visual decode pass of a title.

Every frame is decoded once (PyAV, FFmpeg frame threads, on a decode thread of its own) and scaled
*inside libswscale* to a small analysis picture (default 128 px wide, full-range YUV 4:2:0);
full-resolution RGB is produced only for the few frames that are kept as pictures. From the
analysis pictures the pass computes, in batches of 16 frames (`batch_stats`), per frame:

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

DECODE_CODE_VERSION = "visual-pass-2"  # 2: keyframe and poster JPEGs in 4:2:0 (statistics equal to float32 rounding)
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


# ---------------------------------------------------------------------------------------------


class _Columns:
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

    def __init__(self, path: Path, quality: int, subsampling: str = "444"):
        self.path = path
        self.quality = quality
        self.subsampling = subsampling
        self.fh = open(path, "wb")
        self.offset = 0

    def add(self, rgb: np.ndarray) -> tuple[int, int]:
        data = encode_jpeg(rgb, self.quality, self.subsampling)
        off = self.offset
        self.fh.write(data)
        self.offset += len(data)
        return off, len(data)

    def close(self):
        self.fh.close()


def encode_jpeg(rgb: np.ndarray, quality: int, subsampling: str = "444") -> bytes:
    """JPEG bytes of a uint8 RGB picture (libjpeg-turbo through simplejpeg; 3-4x faster than PIL).
    `subsampling` is the JPEG chroma subsampling ("444" or "420")."""
    import simplejpeg

    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=int(quality), colorspace="RGB", colorsubsampling=subsampling)


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


class _DecodeThread:
    """Demux and decode on their own thread, handing decoded frames to the analysis loop through a
    bounded queue. FFmpeg's demuxer, decoder and swscale all run without the GIL, so the decoder's
    frame threads keep being fed while the analysis loop computes statistics: on two cores the
    decoder alone leaves ~20 % of the CPU idle waiting for its caller. Corrupt packets are skipped and
    counted (`decode_errors`, `error_times`); any other failure is re-raised in the consumer."""

    _END = object()

    def __init__(self, container, stream, prepare: Callable, depth: int = 8):
        import queue
        import threading

        self.container, self.stream, self.prepare = container, stream, prepare
        self.q: "queue.Queue" = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.decode_errors = 0
        self.error_times: list[float] = []
        self.thread = threading.Thread(target=self._run, name="prism-decode", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        import av

        try:
            packets = self.container.demux(self.stream)
            while not self.stop.is_set():
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    self.decode_errors += 1
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    self.decode_errors += 1
                    if packet.pts is not None and packet.time_base:
                        self.error_times.append(float(packet.pts * packet.time_base))
                    continue
                for frame in frames:
                    if not self._put((frame, self.prepare(frame))):
                        return
        except BaseException as exc:  # surfaced in the consumer
            self._put(exc)
        finally:
            self._put(self._END)

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (early stop or failure) and wait for it, before the container closes."""
        import queue

        self.stop.set()
        while self.thread.is_alive():
            try:
                self.q.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()
        while True:  # drop what is left (decoder-owned frames)
            try:
                self.q.get_nowait()
            except queue.Empty:
                break


_ALLOCATOR_TUNED = False


def _tune_allocator() -> None:
    """Keep freed large blocks in the process heap (glibc only, once per process).

    The pass allocates and frees frame-sized buffers at frame rate (swscale outputs, numpy work
    arrays). By default glibc hands blocks over its adaptive mmap threshold back to the kernel and
    trims the heap top, so every reuse costs fresh zeroed pages: ~100 page faults per 1080p frame,
    ~8 % of the pass's CPU on two cores. A fixed 32 MB mmap threshold and a 256 MB trim threshold
    keep them for reuse (resident memory stays bounded by the pass's own working set).
    `PRISM_MALLOC_TUNING=0` turns this off."""
    global _ALLOCATOR_TUNED
    import os

    if _ALLOCATOR_TUNED or os.environ.get("PRISM_MALLOC_TUNING", "1") == "0":
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 256 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def run_visual_pass(path: str | Path, workdir: str | Path, cfg: VisualPassConfig | None = None,
                    progress: Callable[[int, float], None] | None = None) -> VisualPass:
    """Decode `path` once and return the per-frame statistics and the kept pictures.

    Corrupt packets are skipped and counted (`decode_errors`), never fatal unless no frame decodes.
    """
    import av

    cfg = cfg or VisualPassConfig()
    _tune_allocator()
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

        # keyframes and posters: 4:2:0 JPEG chroma, like the 4:2:0 video they come from (a poster at the
        # source size loses no colour detail; half the encode time, ~35 % smaller); the 224-px
        # embedding samples keep full chroma (they are CLIP's input)
        packs = {name: _Pack(workdir / f"{name}.pack", cfg.jpeg_quality + (4 if name == "posters" else 0), "444" if name == "samples" else "420")
                 for name in ("samples", "keyframes", "posters")}
        writer = _PictureWriter(packs)
        try:
            return_value = _decode_loop(container, stream, cfg, fps, lags, kmax, th, writer, packs, progress, t0, path)
        except BaseException:
            writer.abort()
            raise
    return return_value


def _decode_loop(container, stream, cfg, fps, lags, kmax, th, writer, packs, progress, t0, path):
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

    scratch_bufs: list = []

    def _scratch(m: int, n_pix: int) -> tuple:
        """Three float32 (m, n_pix) work arrays and a bool one, reused from call to call."""
        if not scratch_bufs or scratch_bufs[0].shape[0] < m or scratch_bufs[0].shape[1] != n_pix:
            rows_ = max(m, LAG_BATCH)
            scratch_bufs[:] = [np.empty((rows_, n_pix), np.float32) for _ in range(3)] + [np.empty((rows_, n_pix), bool)]
        return tuple(b[:m] for b in scratch_bufs)

    prev_luma = prev_hist = None
    rotation = 0
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

    geom: dict = {}  # analysis geometry, fixed by the first frame

    def prepare(frame):
        """Runs on the decode thread: the analysis picture (swscale releases the GIL) as Y, U, V."""
        if not geom:
            try:
                rot = int(frame.rotation or 0)
            except Exception:  # pragma: no cover - older PyAV
                rot = 0
            aw_ = max(8, cfg.analysis_width // 2 * 2)
            geom.update(src_w=frame.width, src_h=frame.height, rotation=rot, aw=aw_,
                        ah=max(8, int(round(aw_ * frame.height / frame.width / 2)) * 2))
        a = small.reformat(frame, geom["aw"], geom["ah"], "yuv420p", interpolation=interp, dst_color_range=ColorRange.JPEG)
        planes = [np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, : pl.width] for pl in a.planes]
        if geom["rotation"] % 180:
            k_rot = (geom["rotation"] % 360) // 90
            return [np.ascontiguousarray(np.rot90(x, k=k_rot)) for x in planes]
        return [x.copy() for x in planes]

    def analyse(batch: list) -> None:
        """Statistics, samples, keyframe windows and the poster pool for a batch of frames."""
        nonlocal idx, prev_luma, prev_hist, bars_score, ring_l, next_sample_t, win, segment, last_progress, src_w, src_h, rotation
        nb = len(batch)
        y8 = np.stack([e[2][0] for e in batch])
        u8 = np.stack([e[2][1] for e in batch])
        v8 = np.stack([e[2][2] for e in batch])
        cols, lum, hist = batch_stats(y8, u8, v8, prev_luma, prev_hist, th)
        sat, dif, hdf = cols["saturation"].tolist(), cols["diff"].tolist(), cols["hist_diff"].tolist()
        cbars = []
        for j in range(nb):  # colour bars are saturated and last seconds: tested every few frames and at cut candidates
            if sat[j] <= 0.12:
                bars_score = 0.0
            elif (idx + j) % cfg.colour_bars_every == 0 or bars_score is None or dif[j] >= cfg.cut_candidate_diff:
                bars_score = colour_bars_score(lum[j].reshape(y8.shape[1:]), u8[j], v8[j])
            cbars.append(bars_score)
        frames = [e[0] for e in batch]
        t_list = [e[1] for e in batch]
        rows.extend({
            "frame": np.arange(idx, idx + nb),
            "t_s": t_list,
            "pts": [f.pts if f.pts is not None else math.nan for f in frames],  # never None in the row
            "key_frame": [f.key_frame for f in frames],
            "interlaced": [f.interlaced_frame for f in frames],
            "corrupt": [f.is_corrupt for f in frames],
            **{k: cols[k] for k in ("luma_mean", "luma_std", "luma_min", "luma_max", "black_ratio", "diff", "hist_diff",
                                    "bar_top", "bar_bottom", "bar_left", "bar_right")},
            "colour_bars": cbars,
            **{k: cols[k] for k in ("sharpness", "colorfulness", "saturation", "exposure")},
        }, nb)
        if ring_l is None:
            ring_l = np.zeros((cap, lum.shape[1]), dtype=np.float32)
        slots = np.arange(idx, idx + nb) % cap
        ring_l[slots] = lum
        ring_h[slots] = hist
        fill_lag_features(idx + nb - 1)
        prev_luma, prev_hist = lum[-1], hist[-1]
        sharp, colf, expo = cols["sharpness"].tolist(), cols["colorfulness"].tolist(), cols["exposure"].tolist()
        black = cols["black_ratio"].tolist()
        bar_v = (cols["bar_top"] + cols["bar_bottom"]).tolist()
        bar_h = (cols["bar_left"] + cols["bar_right"]).tolist()
        src_w, src_h, rotation = geom["src_w"], geom["src_h"], geom["rotation"]
        for j, frame in enumerate(frames):
            i, t_s = idx + j, t_list[j]
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
                              {"kind": "sample", "frame": i, "t_s": t_s, "window": None, "sharpness": sharp[j],
                               "colorfulness": colf[j], "saturation": sat[j], "exposure": expo[j]})
                next_sample_t = max(next_sample_t + 1.0 / cfg.sample_fps, t_s + 0.5 / cfg.sample_fps)
            # keyframe windows: break on time, cut candidates and black changes
            is_black = black[j] >= 0.98
            cut_like = dif[j] >= cfg.cut_candidate_diff or hdf[j] >= 0.35
            if cut_like or (win is not None and is_black != win["black"]):
                segment += 1
            if win is None or t_s - win["t0"] >= cfg.window_s or cut_like or is_black != win["black"]:
                close_window()
                win = {"t0": t_s, "black": is_black, "best": None, "score": -1.0, "id": i, "segment": segment}
            bars = max(bar_v[j], bar_h[j])
            quality = 0.0 if (is_black or cbars[j] >= 0.5) else (
                math.log1p(sharp[j]) * expo[j] * (1.0 + 0.01 * min(colf[j], 100.0)) * (1.0 - min(1.0, bars))
            )
            if quality > win["score"]:  # the window's best so far (its parts are read back at close)
                win["score"] = quality
                win["best"] = (frame, i, t_s, bars, quality)
        idx += nb
        if progress is not None and time.perf_counter() - last_progress >= 5.0:
            last_progress = time.perf_counter()
            progress(idx, t_list[-1])

    # decoded frames held in flight (the decode queue and the batch) within ~100 MB whatever the
    # picture size: 16 + 8 at 1080p, 5 + 3 at 4K, 1 + 2 at 8K (batches never exceed LAG_BATCH)
    cc = stream.codec_context
    frame_mb = max(1, (cc.width or 1920) * (cc.height or 1080)) * 1.5 * (2 if "10" in (cc.format.name if cc.format else "") else 1) / 2**20
    batch_frames = int(max(1, min(LAG_BATCH, 64 // frame_mb)))
    source = _DecodeThread(container, stream, prepare, depth=int(max(2, min(8, 36 // frame_mb))))
    idx = 0
    done = False
    try:
        frames_in = iter(source)
        while not done:
            batch = []
            for frame, planes in frames_in:
                t_s = float(frame.time) if frame.time is not None else (idx + len(batch)) / fps
                if cfg.max_seconds is not None and t_s >= cfg.max_seconds:
                    done = True
                    break
                batch.append((frame, t_s, planes))
                if len(batch) == batch_frames:
                    break
            else:
                done = True  # end of stream
            if batch:
                analyse(batch)
    finally:
        source.close()
    decode_errors, error_times = source.decode_errors, source.error_times
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
        "analysis_size": [geom["aw"], geom["ah"]] if not rotation % 180 else [geom["ah"], geom["aw"]],
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
