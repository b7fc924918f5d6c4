"""The one visual decode pass of a title.

Every frame is decoded once (PyAV) and scaled *inside libswscale* to a small analysis picture
(default 128 px wide, full-range YUV 4:2:0); full-resolution RGB is produced only for the few frames that are kept as pictures. From the
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

**Decode lanes.** Where the codec's GOPs are closed (H.264 and HEVC IDR, VP8/VP9 key frames,
intra-only codecs; `gop_start_test`), the stream is split at those points (at least `MIN_GOP`
packets apart) and `decode_lanes` decoders (default one per CPU, at most 4) decode GOPs side by
side, each on its own thread with its own demuxer (the other GOPs' packets are read and skipped).
A lane claims the next GOP when it is free, at most `2 x lanes` GOPs ahead of the one consumed, and
does everything that is decided inside a GOP: analysis pictures, `batch_stats`, colour-bar tests,
samples, keyframe windows (which also break at GOP starts) and poster candidates. The consumer takes
the GOPs in order and does what crosses them: the first frame's differences to the previous GOP's
last frame, the look-ahead features over a ring of recent frames, the poster pool. GOPs are split
the same way whatever the number of lanes, so one lane and four give identical outputs (tested).
Other codecs (HEVC CRA, MPEG-2, AV1, ...) are one GOP decoded by one lane with FFmpeg frame threads.
On 2 CPUs two single-threaded decoders use ~20 % less CPU than FFmpeg's frame threads and keep both
cores busy (frame threads wait on each other's reference rows).

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

DECODE_CODE_VERSION = "visual-pass-3"  # 3: decode lanes; keyframe windows and poster stretches also break at GOP starts; samples on the 1/sample_fps grid
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
    threads: int = 0  # decoder threads per lane (0 = auto: FFmpeg's choice with one lane, the CPUs shared out with several)
    decode_lanes: int = 0  # decoders working on alternate closed GOPs side by side (0 = one per CPU, at most 4; 1 = one decoder)
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
    libjpeg-turbo release the GIL), so the decode lanes do not wait for pictures. One worker keeps
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


# ---------------------------------------------------------------------------------------------
# decode lanes: GOPs decoded side by side, consumed in order

# a key frame of these codecs resets every reference (VP8/VP9), or every frame is a key frame
_KEY_IS_CLOSED = {"vp8", "vp9", "prores", "mjpeg", "dnxhd", "rawvideo", "png", "v210", "qtrle", "utvideo"}


def _nal_headers(data: bytes, length_size: int | None):
    """First header byte of each NAL unit of an H.264/HEVC packet (length-prefixed or Annex B)."""
    if length_size:
        i, n = 0, len(data)
        while i + length_size < n:
            ln = int.from_bytes(data[i : i + length_size], "big")
            i += length_size
            if ln <= 0 or i + ln > n:
                return  # malformed: whatever was read so far
            yield data[i]
            i += ln
        return
    i = data.find(b"\x00\x00\x01")
    while 0 <= i and i + 3 < len(data):
        yield data[i + 3]
        i = data.find(b"\x00\x00\x01", i + 3)


def gop_start_test(codec: str, extradata: bytes | None) -> Callable | None:
    """A function telling whether a key packet starts a *closed* GOP: no frame from it on refers to
    an earlier frame, and every earlier frame is presented before it (H.264 IDR, HEVC IDR, VP8/VP9 key
    frames, intra-only codecs). Such GOPs decode independently, so lanes can decode them side by side.
    None for codecs whose key frames may open a GOP (HEVC CRA, MPEG-2, AV1, ...): one lane decodes
    all of those."""
    codec = (codec or "").lower()
    if codec in _KEY_IS_CLOSED:
        return lambda packet: bool(packet.is_keyframe)
    ex = bytes(extradata or b"")
    if codec == "h264":
        size = (ex[4] & 3) + 1 if len(ex) > 4 and ex[0] == 1 else None  # avcC or Annex B
        return lambda packet: bool(packet.is_keyframe) and any(b & 0x1F == 5 for b in _nal_headers(bytes(packet), size))
    if codec == "hevc":
        size = (ex[21] & 3) + 1 if len(ex) > 22 and ex[0] == 1 else None  # hvcC or Annex B
        return lambda packet: bool(packet.is_keyframe) and any((b >> 1) & 0x3F in (19, 20) for b in _nal_headers(bytes(packet), size))
    return None


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (ECS and
    Kubernetes limits show up there, not in the affinity mask)."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _frame_mb(frame) -> float:
    """MB of one decoded picture (4:2:0; twice that for >8-bit formats)."""
    return max(1, frame.width * frame.height) * 1.5 * (2 if "10" in frame.format.name or "12" in frame.format.name else 1) / 2**20


def decode_lanes_for(cfg: "VisualPassConfig", closed_gops: bool, frame_mb: float = 3.0) -> tuple[int, int]:
    """(lanes, decoder threads per lane). One lane with FFmpeg frame threads where GOPs cannot be
    split; otherwise `decode_lanes` (0 = one per usable CPU, at most 4, and no more than ~6
    reference pictures per decoder fit in 512 MB: one lane at 8K), the CPUs shared between them."""
    cpus = usable_cpus()
    lanes = cfg.decode_lanes or min(4, cpus, max(1, int(512 // (6 * frame_mb))))
    if not closed_gops:
        lanes = 1
    lanes = max(1, int(lanes))
    threads = cfg.threads if cfg.threads else (0 if lanes == 1 else max(1, cpus // lanes))
    return lanes, threads


MIN_GOP = 24  # packets


class _Stop(Exception):
    pass


class _LaneShared:
    """What the lanes and the consumer share. GOPs are claimed in order by whichever lane is free (GOPs
    differ in decode cost; a fixed round robin leaves one lane idle behind a heavy GOP of the other),
    at most `ahead` GOPs past the one being consumed; `owner` says which lane decodes which GOP. Also
    the stop flag and the poster pool's admission bar (a lane hands over a candidate frame only when
    it could enter the pool)."""

    def __init__(self, lanes: int):
        import threading

        self.lanes = lanes
        self.ahead = 2 * lanes
        self.consuming = 0
        self.next_gop = 0
        self.owner: dict[int, int] = {}
        self.total: int | None = None  # GOPs in the stream, once a lane has read it to the end
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.pool_bar = -math.inf  # -inf while the pool is not full; its lowest score after (non-decreasing)

    def _wait(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self.stop.is_set():
                raise _Stop
            self.cond.wait(0.2)
        if self.stop.is_set():
            raise _Stop

    def claim(self, lane: int) -> int:
        """The next unclaimed GOP for `lane` (blocks while it would run too far ahead)."""
        with self.cond:
            self._wait(lambda: self.next_gop < self.consuming + self.ahead or self.total is not None)
            g = self.next_gop
            self.next_gop += 1
            self.owner[g] = lane
            self.cond.notify_all()
            return g

    def end_of_stream(self, gops: int) -> None:
        with self.cond:
            self.total = gops
            self.cond.notify_all()

    def owner_of(self, gop: int) -> int | None:
        """The lane decoding `gop` (set by the consumer as the GOP being consumed); None past the end."""
        with self.cond:
            self.consuming = gop
            self.cond.notify_all()
            self._wait(lambda: gop in self.owner or (self.total is not None and gop >= self.total))
            return self.owner.get(gop) if self.total is None or gop < self.total else None


class _Gop:
    """Per-GOP state of a lane: everything that is decided frame by frame inside one GOP."""

    def __init__(self, gop: int, base: int, prev_t: float | None):
        self.gop, self.base, self.prev_t = gop, base, prev_t
        self.n = 0  # frames decoded so far in this GOP
        self.batch: list = []
        self.prev_luma = self.prev_hist = None
        self.bars_score = None
        self.win: dict | None = None
        self.segment = 0
        self.truncated = False
        self.cands: list = []  # poster candidates of windows closed since the last message


class _Lane:
    """One decoder (own container, own demuxer) that decodes the closed GOPs it claims and, for their
    frames, makes the analysis pictures, the per-frame statistics, the sample and keyframe decisions
    (pictures go to the shared writer) and the poster candidates. Everything goes to the consumer
    through a bounded queue, per GOP, in frame order. The other GOPs' packets are read and skipped
    (demuxing costs next to nothing), so every lane sees the same packet sequence and GOP numbers.

    Messages: ("batch", ...) items, ("end", gop, truncated, poster candidates) after each of its
    GOPs, ("done", gops) at the end of the stream; an exception is forwarded and re-raised by the
    consumer."""

    END = "end"

    def __init__(self, k: int, ctx: "_PassContext", container, threads: int):
        import queue
        import threading

        self.k, self.ctx, self.container = k, ctx, container
        self.stream = container.streams.video[ctx.stream_pos]
        self.stream.thread_type = "FRAME"  # frame threads within a lane (FFmpeg falls back where unsupported)
        self.stream.thread_count = threads
        self.q: "queue.Queue" = queue.Queue(maxsize=max(4, ctx.lane_frames_ahead // ctx.batch_frames + 2))
        self.decode_errors = 0
        self.error_times: list[float] = []
        from av.video.reformatter import VideoReformatter

        self.small = VideoReformatter()  # analysis pictures
        self.pool_fmt = VideoReformatter()  # poster candidates above poster_max_side
        self.thread = threading.Thread(target=self._run, name=f"prism-decode-{k}", daemon=True)

    # -- plumbing
    def _put(self, item) -> None:
        import queue

        while True:
            if self.ctx.shared.stop.is_set():
                raise _Stop
            try:
                self.q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def get(self):
        import queue

        while True:
            try:
                item = self.q.get(timeout=0.5)
            except queue.Empty:
                if not self.thread.is_alive() and self.q.empty():
                    raise RuntimeError(f"decode lane {self.k} ended without a word")
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def drain(self) -> None:
        import queue

        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                return

    # -- the lane
    def _run(self) -> None:
        try:
            self._lane()
        except _Stop:
            return
        except BaseException as exc:  # surfaced in the consumer
            try:
                self._put(exc)
            except _Stop:
                pass

    def _lane(self) -> None:
        import av

        ctx, k = self.ctx, self.k
        cc = self.stream.codec_context
        tb = self.stream.time_base
        packets = self.container.demux(self.stream)
        gop, n_packets, last_t, gop_start_at = -1, 0, None, 0
        target = ctx.shared.claim(k)
        gop_max_t = None
        st: _Gop | None = None
        while True:
            if ctx.shared.stop.is_set():
                raise _Stop
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                if k == 0:  # every lane reads the same packets: lane 0 counts demux errors
                    self.decode_errors += 1
                continue
            if packet.size == 0:  # the demuxer's end-of-stream flush packet: drained below
                continue
            # GOPs split the same way whatever the number of lanes (the outputs do not depend on it); at
            # least MIN_GOP packets each, so intra-only streams are not split frame by frame
            if gop < 0 or (ctx.gop_start is not None and n_packets - gop_start_at >= MIN_GOP and ctx.gop_start(packet)):
                if st is not None:
                    self._finish(st, cc)
                    st = None
                    target = ctx.shared.claim(k)
                gop += 1
                gop_start_at = n_packets
                last_t, gop_max_t = gop_max_t, None
                if gop == target:
                    st = _Gop(gop, n_packets, last_t)
            n_packets += 1
            if packet.pts is not None and tb:
                t = float(packet.pts * tb)
                gop_max_t = t if gop_max_t is None else max(gop_max_t, t)
            if st is None or st.truncated:
                continue
            try:
                frames = cc.decode(packet)
            except av.error.FFmpegError:
                self.decode_errors += 1
                if packet.pts is not None and tb:
                    self.error_times.append(float(packet.pts * tb))
                continue
            for frame in frames:
                self._frame(st, frame)
        if st is not None:
            self._finish(st, cc)
        ctx.shared.end_of_stream(gop + 1)
        self._put(("done", gop + 1))

    def _finish(self, st: _Gop, cc) -> None:
        """Drain the decoder (its delayed frames belong to this GOP), analyse the rest, end the GOP."""
        import av

        if not st.truncated:
            try:
                for frame in cc.decode(None):
                    self._frame(st, frame)
            except av.error.FFmpegError:
                self.decode_errors += 1
        try:
            cc.flush_buffers()
        except Exception:  # pragma: no cover - a decoder that cannot flush decodes nothing more anyway
            pass
        if st.batch:
            self._analyse(st)
        self._close_window(st)
        cands, st.cands = st.cands, []
        self._put((self.END, st.gop, st.truncated, cands))

    def _frame(self, st: _Gop, frame) -> None:
        if st.truncated:
            return
        ctx = self.ctx
        pts, tb = frame.pts, self.stream.time_base
        t_s = float(pts * tb) if pts is not None and tb else (st.base + st.n + len(st.batch)) / ctx.fps
        if ctx.cfg.max_seconds is not None and t_s >= ctx.cfg.max_seconds:
            st.truncated = True
            return
        st.batch.append((frame, t_s, ctx.prepare(self.small, frame)))
        if len(st.batch) >= ctx.batch_frames:
            self._analyse(st)

    def _analyse(self, st: _Gop) -> None:
        """Statistics, samples, keyframe windows and poster candidates for a batch of this GOP."""
        ctx, cfg = self.ctx, self.ctx.cfg
        batch, st.batch = st.batch, []
        nb = len(batch)
        y8 = np.stack([e[2][0] for e in batch])
        u8 = np.stack([e[2][1] for e in batch])
        v8 = np.stack([e[2][2] for e in batch])
        cols, lum, hist = batch_stats(y8, u8, v8, st.prev_luma, st.prev_hist, ctx.th)
        st.prev_luma, st.prev_hist = lum[-1], hist[-1]
        sat, dif, hdf = cols["saturation"].tolist(), cols["diff"].tolist(), cols["hist_diff"].tolist()
        first = st.n  # GOP-local index of the batch's first frame
        cbars = []
        for j in range(nb):  # colour bars are saturated and last seconds: tested every few frames, at cut candidates and GOP starts
            if sat[j] <= 0.12:
                st.bars_score = 0.0
            elif (st.base + first + j) % cfg.colour_bars_every == 0 or st.bars_score is None or dif[j] >= cfg.cut_candidate_diff:
                st.bars_score = colour_bars_score(lum[j].reshape(y8.shape[1:]), u8[j], v8[j])
            cbars.append(st.bars_score)
        frames = [e[0] for e in batch]
        t_list = [e[1] for e in batch]
        sharp, colf, expo = cols["sharpness"].tolist(), cols["colorfulness"].tolist(), cols["exposure"].tolist()
        black = cols["black_ratio"].tolist()
        bar_v = (cols["bar_top"] + cols["bar_bottom"]).tolist()
        bar_h = (cols["bar_left"] + cols["bar_right"]).tolist()
        g = ctx.geom
        src_w, src_h, rotation = g["src_w"], g["src_h"], g["rotation"]
        fs = cfg.sample_fps
        for j, frame in enumerate(frames):
            i, t_s = first + j, t_list[j]
            # embedding samples on a fixed time grid: the first frame at or past each multiple of 1/sample_fps
            prev_t = st.prev_t if st.prev_t is not None else (t_s - 1.0 / ctx.fps if st.gop > 0 else None)
            if prev_t is None or math.floor(t_s * fs + 1e-6) > math.floor(prev_t * fs + 1e-6):
                sz = cfg.sample_size
                dw, dh = (src_h, src_w) if rotation % 180 else (src_w, src_h)
                sw, sh = (sz, max(sz, int(round(dh * sz / dw)))) if dw <= dh else (max(sz, int(round(dw * sz / dh))), sz)
                if rotation % 180:
                    sw, sh = sh, sw
                ctx.writer.submit("samples", ctx.rgb_maker(frame, sw, sh, "BICUBIC", crop=sz),
                                  {"kind": "sample", "gop": st.gop, "local": i, "t_s": t_s, "window": None, "sharpness": sharp[j],
                                   "colorfulness": colf[j], "saturation": sat[j], "exposure": expo[j]})
            st.prev_t = t_s
            # keyframe windows: break on time, cut candidates, black changes and GOP starts
            is_black = black[j] >= 0.98
            cut_like = dif[j] >= cfg.cut_candidate_diff or hdf[j] >= 0.35
            if cut_like or (st.win is not None and is_black != st.win["black"]):
                st.segment += 1
            if st.win is None or t_s - st.win["t0"] >= cfg.window_s or cut_like or is_black != st.win["black"]:
                self._close_window(st)
                st.win = {"t0": t_s, "black": is_black, "best": None, "score": -1.0, "id": i, "segment": st.segment}
            bars = max(bar_v[j], bar_h[j])
            quality = 0.0 if (is_black or cbars[j] >= 0.5) else (
                math.log1p(sharp[j]) * expo[j] * (1.0 + 0.01 * min(colf[j], 100.0)) * (1.0 - min(1.0, bars))
            )
            if quality > st.win["score"]:  # the window's best so far, with its parts
                st.win["score"] = quality
                st.win["best"] = (frame, i, t_s, {"sharpness": sharp[j], "colorfulness": colf[j], "saturation": sat[j], "exposure": expo[j],
                                                   "luma_mean": float(cols["luma_mean"][j]), "luma_std": float(cols["luma_std"][j]),
                                                   "bars": bars, "quality": quality})
        st.n += nb
        cands, st.cands = st.cands, []
        self._put(("batch", st.gop, first, nb, t_list,
                   [f.pts if f.pts is not None else math.nan for f in frames],  # never None in the row
                   [f.key_frame for f in frames], [f.interlaced_frame for f in frames], [f.is_corrupt for f in frames],
                   cols, lum, hist, cbars, cands))

    def _close_window(self, st: _Gop) -> None:
        ctx, cfg = self.ctx, self.ctx.cfg
        win, st.win = st.win, None
        if win is None or win["best"] is None:
            return
        frame, i, t_s, parts = win["best"]
        g = ctx.geom
        ctx.writer.submit("keyframes", ctx.rgb_maker(frame, *_fit(g["src_w"], g["src_h"], cfg.keyframe_max_side), "AREA"),
                          {"kind": "keyframe", "gop": st.gop, "local": i, "t_s": t_s, "window_local": win["id"], **parts})
        score = parts["quality"]
        if score > 0 and cfg.poster_pool > 0 and score > ctx.shared.pool_bar:  # could enter the pool: hand the frame over
            kept = frame
            if max(g["src_w"], g["src_h"]) > cfg.poster_max_side:  # bound the pool's memory: keep it at the poster size
                from av.video.reformatter import Interpolation

                kept = self.pool_fmt.reformat(frame, *_fit(g["src_w"], g["src_h"], cfg.poster_max_side), interpolation=Interpolation.AREA)
            st.cands.append((score, i, t_s, win["segment"], kept, parts))


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
        probe = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VisualDecodeError(f"cannot open {path.name}: {getattr(exc, 'strerror', None) or exc}") from None
    containers: list = []
    with probe:  # stream choice and the first frame (geometry); every lane then opens its own container
        vids = [s for s in probe.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not vids:
            raise VisualDecodeError(f"no video stream in {path.name}")
        stream = vids[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 25.0
        codec = stream.codec_context.name
        gop_start = gop_start_test(codec, stream.codec_context.extradata)
        first = _first_frame(probe, stream, path)
        n_lanes, threads = decode_lanes_for(cfg, gop_start is not None, _frame_mb(first))
        ctx = _PassContext(cfg, fps, list(probe.streams.video).index(stream), gop_start, n_lanes)
        ctx.geometry(first)
        first_mb = _frame_mb(first)
        del first
    try:
        containers.extend(av.open(str(path), metadata_errors="ignore") for _ in range(n_lanes))

        # keyframes and posters: 4:2:0 JPEG chroma, like the 4:2:0 video they come from (a poster at the
        # source size loses no colour detail; half the encode time, ~35 % smaller); the 224-px
        # embedding samples keep full chroma (they are CLIP's input)
        packs = {name: _Pack(workdir / f"{name}.pack", cfg.jpeg_quality + (4 if name == "posters" else 0), "444" if name == "samples" else "420")
                 for name in ("samples", "keyframes", "posters")}
        # pictures waiting for the writer hold their decoded frames: 8 at 1080p, 2 at 8K
        writer = ctx.writer = _PictureWriter(packs, depth=int(max(2, min(8, 64 // first_mb))))
        lanes = [_Lane(k, ctx, containers[k], threads) for k in range(n_lanes)]
        try:
            return _consume(ctx, lanes, packs, progress, t0, path, codec, threads)
        except BaseException:
            _stop_lanes(ctx, lanes)
            writer.abort()
            raise
    finally:
        for c in containers:
            c.close()


def _stop_lanes(ctx: "_PassContext", lanes: list["_Lane"]) -> None:
    """Stop every lane (end of the title, early stop or failure) and wait for it: a lane blocked on
    its queue or on a claim sees the stop flag within 0.2 s."""
    ctx.shared.stop.set()
    for lane in lanes:
        if lane.thread.ident is None:  # never started
            continue
        while lane.thread.is_alive():
            lane.drain()
            lane.thread.join(timeout=0.1)
        lane.drain()


def _first_frame(container, stream, path: Path):
    """The first decodable frame (the pass's geometry: size, rotation); one clear error if none."""
    import av

    stream.thread_type, stream.thread_count = "SLICE", 1
    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.error.FFmpegError:
                errors += 1
    except av.error.FFmpegError:
        errors += 1
    raise VisualDecodeError(f"no decodable video frame in {path.name} ({errors} decode errors)")


class _PassContext:
    """Settings and shared objects of one pass, read by every lane."""

    def __init__(self, cfg: VisualPassConfig, fps: float, stream_pos: int, gop_start: Callable | None, lanes: int):
        from av.video.reformatter import Interpolation, VideoReformatter

        self.cfg, self.fps, self.stream_pos, self.gop_start = cfg, fps, stream_pos, gop_start
        self.th = cfg.black_pix_th * 255.0
        self.interp = getattr(Interpolation, cfg.analysis_interpolation.upper())
        self.pic_fmt = VideoReformatter()  # used only by the writer thread
        self.shared = _LaneShared(lanes)
        self.writer: _PictureWriter | None = None
        self.geom: dict = {}
        self.batch_frames = LAG_BATCH
        self.lane_frames_ahead = 256  # analysed frames a lane may queue ahead of the consumer (~10 MB; about a GOP)

    def geometry(self, frame) -> None:
        """Analysis geometry and frames in flight, fixed by the first frame."""
        try:
            rot = int(frame.rotation or 0)
        except Exception:  # pragma: no cover - older PyAV
            rot = 0
        aw = max(8, self.cfg.analysis_width // 2 * 2)
        self.geom.update(src_w=frame.width, src_h=frame.height, rotation=rot, aw=aw,
                         ah=max(8, int(round(aw * frame.height / frame.width / 2)) * 2))
        # decoded frames held by a lane's batch within ~64 MB whatever the picture size: 16 at 1080p,
        # 5 at 4K, 1 at 8K (batches never exceed LAG_BATCH)
        self.batch_frames = int(max(1, min(LAG_BATCH, 64 // _frame_mb(frame))))

    def prepare(self, small, frame) -> list[np.ndarray]:
        """The analysis picture (swscale releases the GIL) as Y, U, V."""
        from av.video.reformatter import ColorRange

        g = self.geom
        a = small.reformat(frame, g["aw"], g["ah"], "yuv420p", interpolation=self.interp, dst_color_range=ColorRange.JPEG)
        planes = [np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, : pl.width] for pl in a.planes]
        if g["rotation"] % 180:
            k_rot = (g["rotation"] % 360) // 90
            return [np.ascontiguousarray(np.rot90(x, k=k_rot)) for x in planes]
        return [x.copy() for x in planes]

    def rgb_maker(self, frame, w, h, interp: str, crop: int | None = None):
        from av.video.reformatter import Interpolation

        fmt, rotation, interpolation = self.pic_fmt, self.geom["rotation"], getattr(Interpolation, interp)

        def make():
            rgb = _rotate(_to_rgb(fmt, frame, w, h, interpolation), rotation)
            if crop:
                y0, x0 = (rgb.shape[0] - crop) // 2, (rgb.shape[1] - crop) // 2
                rgb = rgb[y0 : y0 + crop, x0 : x0 + crop]
            return np.ascontiguousarray(rgb)
        return make


def _consume(ctx: _PassContext, lanes: list[_Lane], packs: dict, progress, t0: float, path: Path, codec: str, threads: int) -> VisualPass:
    """The GOPs in order, each from the lane that claimed it: per-frame rows, the cross-GOP features (the first
    frame's differences to the previous GOP's last frame, the look-ahead features over the ring of
    recent frames) and the poster pool."""
    cfg, fps, writer = ctx.cfg, ctx.fps, ctx.writer
    lags = sorted({max(1, int(round(s * fps))) for s in cfg.lags_s})
    kmax = max(lags)
    lag_keys = {k: (f"span_{k}", f"cov_{k}", f"hspan_{k}", f"blend_{k}") for k in lags}
    rows = _Columns(nan_keys=("skip_diff",) + tuple(x for k in lags for x in lag_keys[k]))
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
            if kind == _Lane.END:
                gops += 1
                for score, local, t_s, seg, kept, parts_ in item[3]:
                    admit(score, gop_base[g] + local, t_s, (g, seg), kept, parts_)
                if item[2]:  # reached max_seconds
                    done = truncated = True
                break
            _, gop, local0, nb, t_list, pts, key, inter, corrupt, cols, lum, hist, cbars, cands = item
            if first_batch and prev_luma is not None:  # the GOP's first frame against the previous GOP's last
                n_pix = lum.shape[1]
                cols["diff"][0] = float(np.abs(lum[0] - prev_luma).sum(dtype=np.float64)) / n_pix
                cols["hist_diff"][0] = 0.5 * float(np.abs(hist[0] - prev_hist).sum(dtype=np.float64))
            first_batch = False
            rows.extend({
                "frame": np.arange(idx, idx + nb),
                "t_s": t_list,
                "pts": pts,
                "key_frame": key,
                "interlaced": inter,
                "corrupt": corrupt,
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
            for score, local, t_s, seg, kept, parts_ in cands:
                admit(score, gop_base[g] + local, t_s, (g, seg), kept, parts_)
            idx += nb
            if progress is not None and time.perf_counter() - last_progress >= 5.0:
                last_progress = time.perf_counter()
                progress(idx, t_list[-1])
        g += 1
    _stop_lanes(ctx, lanes)  # lanes past the end (or past max_seconds) have nothing more to say
    fill_lag_features(idx - 1)
    # the poster pool at full resolution (capped at poster_max_side), best first
    for score, pidx, pt, seg, frame, parts_ in sorted(pool, key=lambda e: -e[0]):
        writer.submit("posters", ctx.rgb_maker(frame, *_fit(frame.width, frame.height, cfg.poster_max_side), "AREA"),
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
