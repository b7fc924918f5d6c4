"""Reading the chosen frames: each distinct piece of on-screen text once, cropped, on a kept engine.

Steps (``read_frames``; frames in time order):

1. Prepare (``prepare``): the JPEG as greyscale at its size, its luma mean/std, and its top-hat views
   (``ocr_regions.tophat``: strokes dark on white): light text always, dark text too on a light picture.
2. Crop: the text blocks of each view (``ocr_regions.text_blocks``); a frame without one has no text and is not
   read. ``crop=False`` reads the whole frame as one block of the one view ``tophat`` picks (the previous path).
3. Reuse (``reuse``): a block whose ink matches a block of the same view read earlier at the same place
   (``ocr_regions.same_text``, against the block that was *read*, not the last one matched, so slow changes such as a
   fade-in are read again) takes that read's lines, at that read's boxes; a read stays reusable while its text is
   seen again within ``reuse_gap_s``.
4. Read: each new block, with its margin, upscaled 2x (Lanczos) when the picture's longest side is under
   ``upscale_below`` (the ~30-60 px cap height Tesseract's LSTM is trained on), goes to the engine in batches of
   ``batch`` images on ``workers`` threads (``ocr_engine``), with ``crop_psm`` (``psm`` for a whole frame); its TSV
   becomes lines (``ocr_lines``) whose boxes are mapped back to the frame (0-1 of the frame). Where both views read a
   line at one place, the one with more confident characters stays (``frame_lines``).
5. A block that timed out or failed skips every frame that reads it, with one warning per frame.

Counts (``ReadStats``): frames, blocks, reads, reused blocks, frames fully reused, pixels read against whole frames.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from . import ocr_engine as E
from . import ocr_lines as L
from . import ocr_regions as R


@dataclass
class ReadStats:
    frames: int = 0
    frames_with_blocks: int = 0
    blocks: int = 0
    reads: int = 0
    reused_blocks: int = 0
    frames_fully_reused: int = 0
    pixels_read: int = 0
    pixels_frames: int = 0
    seconds_prepare: float = 0.0
    engine: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["read_fraction_of_pixels"] = round(self.pixels_read / self.pixels_frames, 4) if self.pixels_frames else None
        d["seconds_prepare"] = round(self.seconds_prepare, 3)
        return d


@dataclass
class _Read:
    """One engine read: a block's crop, and once read its lines in frame coordinates (or the error)."""
    block: R.Block
    image: np.ndarray | None
    W: int = 0  # noqa: N815 (the frame's size, for the boxes)
    H: int = 0  # noqa: N815
    psm: int = 11
    polarity: str = "auto"
    lines: list[dict] = field(default_factory=list)
    error: Exception | None = None
    done: bool = False


def prepare(jpeg: bytes, tophat_px: int, both: bool = False) -> tuple[np.ndarray, list[tuple[str, np.ndarray]], float, float]:
    """(grey, views, luma mean, luma std) of one JPEG. views: [(polarity, top-hat)]: with both, the light-text top-hat
    and, on a light picture (median > 160), the dark-text one; else the one ``tophat`` picks; the plain grey with
    tophat_px 0."""
    grey = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    h, w = grey.shape
    if tophat_px <= 0:
        return grey, [("plain", grey)], float(grey.mean()), float(grey.std())
    k = max(3, int(round(tophat_px * max(w, h) / 640)) | 1)
    if not both:
        views = [("auto", R.tophat(grey, k))]
    else:
        views = [("bright", R.tophat(grey, k, "bright"))]
        if np.median(grey) > 160:
            views.append(("dark", R.tophat(grey, k, "dark")))
    return grey, views, float(grey.mean()), float(grey.std())


def crop_image(th: np.ndarray, block: R.Block, upscale_below: int) -> np.ndarray:
    c = th[block.y0:block.y1, block.x0:block.x1]
    if max(th.shape) < upscale_below:
        c = np.asarray(Image.fromarray(c).resize((c.shape[1] * 2, c.shape[0] * 2), Image.LANCZOS))
    return c


def place(lines: list[dict], block: R.Block, W: int, H: int) -> list[dict]:  # noqa: N803
    """Lines read on a block's crop (0-1 of the crop) in 0-1 of the W x H frame."""
    cw, ch = block.x1 - block.x0, block.y1 - block.y0
    return [{**ln, "x": (block.x0 + ln["x"] * cw) / W, "y": (block.y0 + ln["y"] * ch) / H, "w": ln["w"] * cw / W, "h": ln["h"] * ch / H}
            for ln in lines]


class _Live:
    """Reads that later frames may reuse: (polarity, key of the read block, read, last time seen)."""

    def __init__(self, gap_s: float):
        self.gap_s = gap_s
        self.items: list[tuple[str, R.InkKey, _Read, float]] = []

    def find(self, polarity: str, key: R.InkKey, t: float) -> _Read | None:
        self.items = [it for it in self.items if t - it[3] <= self.gap_s]
        for i, (pol, k, rd, _) in enumerate(self.items):
            if pol == polarity and R.same_text(k, key):
                self.items[i] = (pol, k, rd, t)
                return rd
        return None

    def add(self, polarity: str, key: R.InkKey, rd: _Read, t: float) -> None:
        self.items.append((polarity, key, rd, t))


def _overlap(a: dict, b: dict) -> float:
    """Intersection over the smaller of two line boxes (0-1 coordinates)."""
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    small = min(a["w"] * a["h"], b["w"] * b["h"])
    return w * h / small if w > 0 and h > 0 and small > 0 else 0.0


def frame_lines(reads: list[_Read]) -> list[dict]:
    """The frame's lines, top to bottom; where reads of the two polarities found the same place (overlap >= 0.5 of the
    smaller box), the line with more confident characters (confidence x letters/digits: a whole line read at 76 over
    its two halves read at 95 and 77 with a word lost between them)."""
    lines = [(ln, i) for i, rd in enumerate(reads) for ln in rd.lines]
    keep = []
    for ln, i in sorted(lines, key=lambda x: -x[0]["confidence"] * sum(c.isalnum() for c in x[0]["text"])):
        if not any(j != i and reads[j].polarity != reads[i].polarity and _overlap(ln, k) >= 0.5 for k, j in keep):
            keep.append((ln, i))
    return sorted((ln for ln, _ in keep), key=lambda d: (d["y"], d["x"]))


def read_frames(frames: list[tuple[int, float, bytes]], cfg, reader, progress: Callable[[int, int], None] | None = None,
                ) -> tuple[list[dict], list[str], ReadStats]:
    """Lines of each frame: ([{frame, t_s, lines, luma_mean, luma_std}] in time order, warnings, stats).

    cfg: an ``ocr.OcrConfig`` (crop, reuse, reuse_gap_s, batch, tophat_px, upscale_below, min_confidence, timeout_s)."""
    stats = ReadStats(engine=type(reader).__name__)
    order = sorted(frames, key=lambda f: (f[1], f[0]))
    live = _Live(cfg.reuse_gap_s)
    per_frame: list[tuple[int, float, float, float, int, int, list[_Read]]] = []
    pending: dict[int, list[_Read]] = {}  # psm -> reads not yet handed to the engine
    futures: list[Future] = []
    lock = threading.Lock()
    state = {"done_reads": 0}

    def run_batch(batch: list[_Read]) -> None:
        out = reader.read_many([rd.image for rd in batch], cfg.timeout_s, batch[0].psm)
        for rd, res in zip(batch, out):
            if isinstance(res, Exception):
                rd.error = res
            else:
                ih, iw = rd.image.shape
                rd.lines = place(L.lines_from_tsv(res, iw, ih, cfg.min_confidence), rd.block, rd.W, rd.H)
            rd.image = None
            rd.done = True
        with lock:
            state["done_reads"] += len(batch)

    with ThreadPoolExecutor(max_workers=cfg.n_workers()) as pool:
        for frame, t, jpeg in order:
            t0 = time.perf_counter()
            try:
                grey, views, lm, ls = prepare(jpeg, cfg.tophat_px, both=cfg.crop)
            except (OSError, ValueError) as e:
                per_frame.append((frame, t, float("nan"), float("nan"), 0, 0, [_Read(R.Block(0, 0, 0, 0, 0), None, error=e, done=True)]))
                continue
            H, W = grey.shape  # noqa: N806
            reads, reused, n_blocks = [], 0, 0
            for pol, th in views:
                blocks = R.text_blocks(th) if cfg.crop else [R.Block(0, 0, W, H, 0.0)]
                n_blocks += len(blocks)
                for b in blocks:
                    key = R.ink_key(th, b) if cfg.reuse else None
                    rd = live.find(pol, key, t) if key is not None else None
                    if rd is None:
                        psm = cfg.psm if b.area == W * H else cfg.crop_psm  # a whole frame is sparse text, a block one block
                        rd = _Read(b, crop_image(th, b, cfg.upscale_below), W, H, psm, pol)
                        pending.setdefault(psm, []).append(rd)
                        stats.reads += 1
                        stats.pixels_read += b.area
                        if key is not None:
                            live.add(pol, key, rd, t)
                    else:
                        reused += 1
                    reads.append(rd)
            stats.frames += 1
            stats.pixels_frames += W * H
            stats.blocks += n_blocks
            stats.reused_blocks += reused
            stats.frames_with_blocks += bool(n_blocks)
            stats.frames_fully_reused += bool(n_blocks) and reused == n_blocks
            per_frame.append((frame, t, lm, ls, W, H, reads))
            stats.seconds_prepare += time.perf_counter() - t0
            for psm, batch in list(pending.items()):
                if len(batch) >= cfg.batch:
                    futures.append(pool.submit(run_batch, pending.pop(psm)))
        for batch in pending.values():
            futures.append(pool.submit(run_batch, batch))
        _wait_with_progress(futures, per_frame, progress)
    out, warnings = [], []
    for frame, t, lm, ls, _W, _H, reads in per_frame:
        err = next((rd.error for rd in reads if rd.error is not None), None)
        if err is not None:
            what = str(err) if isinstance(err, E.ReadTimeout) else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.append(f"frame {frame} ({t:.2f} s): {what}; skipped")
            lines: list[dict] = []
        else:
            lines = frame_lines(reads)
        out.append({"frame": frame, "t_s": t, "lines": lines, "luma_mean": lm, "luma_std": ls})
    return out, warnings, stats


def _wait_with_progress(futures: list[Future], per_frame: list, progress: Callable[[int, int], None] | None) -> None:
    """Wait for the reads; report frames whose reads are all done (about every 5 %, and at the end)."""
    total = len(per_frame)
    every = max(1, total // 20)
    last = -1
    pending = set(futures)
    while True:
        if pending:
            done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            for f in done:
                f.result()
        n = sum(all(rd.done for rd in reads) for *_, reads in per_frame)
        if progress and n != last and (n - max(last, 0) >= every or n == total):
            progress(n, total)
            last = n
        if not pending:
            if progress and last != total:
                progress(total, total)
            return
