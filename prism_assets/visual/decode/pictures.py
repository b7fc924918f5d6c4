"""Kept pictures: RGB conversion at the wanted size (swscale), rotation, and the writer thread that
JPEG-encodes them into the packs."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..packs import PackWriter


def rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display rotation (degrees counter-clockwise, as in the display matrix)."""
    r = rotation % 360
    if r == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=r // 90))


def to_rgb(reformatter, frame, w: int, h: int, interpolation) -> np.ndarray:
    """RGB of a frame at w x h. A large downscale is done in the frame's own YUV format first (area
    filter on subsampled chroma is cheap), then converted; untagged HD is taken as BT.709."""
    from av.video.reformatter import Colorspace

    src_cs = None
    if int(frame.colorspace) not in (1, 5, 6, 7) and frame.height > 576:  # unspecified: HD is BT.709
        src_cs = Colorspace.ITU709
    if w * 1.5 < frame.width and h * 1.5 < frame.height and frame.format.name in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p"):
        frame = reformatter.reformat(frame, w, h, interpolation=interpolation)
    return reformatter.reformat(frame, w, h, "rgb24", src_colorspace=src_cs, interpolation=interpolation).to_ndarray()


def fit(w: int, h: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(w, h))
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


class PictureWriter:
    """Converts kept frames to RGB and JPEG-encodes them on one worker thread (swscale and
    libjpeg-turbo release the GIL), so the decode lanes do not wait for pictures. One worker keeps
    each pack's order; the queue is bounded, so at most `depth` frames wait (flat memory)."""

    def __init__(self, packs: dict[str, PackWriter], depth: int = 8):
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
