"""Settings and shared objects of one pass, read by every lane."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .config import VisualPassConfig
from .lanes import LaneShared
from .pictures import PictureWriter, rotate, to_rgb
from .stats import LAG_BATCH
from .system import frame_mb
from .tonemap import ToneMap


class PassContext:
    """Settings and shared objects of one pass, read by every lane."""

    def __init__(self, cfg: VisualPassConfig, fps: float, stream_pos: int, gop_start: Callable | None, lanes: int,
                 tonemap: ToneMap | None = None, scan_chain: list | None = None, interlaced_source: bool = False):
        from av.video.reformatter import Interpolation, VideoReformatter

        self.cfg, self.fps, self.stream_pos, self.gop_start = cfg, fps, stream_pos, gop_start
        self.tonemap = tonemap  # HDR (PQ / HLG) source: every picture tone-mapped to SDR BT.709
        self.scan_chain = scan_chain or []  # deinterlace / inverse-telecine filters (one lane, one GOP)
        self.interlaced_source = interlaced_source  # frame_stats `interlaced`: the source's pictures, before the filters
        self.th = cfg.black_pix_th * 255.0
        self.interp = getattr(Interpolation, cfg.analysis_interpolation.upper())
        self.pic_fmt = VideoReformatter()  # used only by the writer thread
        self.shared = LaneShared(lanes)
        self.writer: PictureWriter | None = None
        self.tap = None  # a ProxyTap (tap.py) when the pass makes the proxy's picture too
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
        self.batch_frames = int(max(1, min(LAG_BATCH, 64 // frame_mb(frame))))

    def prepare(self, small, frame) -> list[np.ndarray]:
        """The analysis picture (swscale releases the GIL) as Y, U, V."""
        from av.video.reformatter import ColorRange

        g = self.geom
        if self.tonemap is not None:  # SDR analysis picture of an HDR frame: the thresholds (black, freeze, bars) stay SDR's
            planes = self.tonemap.yuv420(small, frame, g["aw"], g["ah"], self.interp)
        else:
            a = small.reformat(frame, g["aw"], g["ah"], "yuv420p", interpolation=self.interp, dst_color_range=ColorRange.JPEG)
            planes = [np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, : pl.width] for pl in a.planes]
        if g["rotation"] % 180:
            k_rot = (g["rotation"] % 360) // 90
            return [np.ascontiguousarray(np.rot90(x, k=k_rot)) for x in planes]
        return [x.copy() for x in planes]

    def rgb_maker(self, frame, w, h, interp: str, crop: int | None = None):
        from av.video.reformatter import Interpolation

        fmt, rotation, interpolation, tm = self.pic_fmt, self.geom["rotation"], getattr(Interpolation, interp), self.tonemap

        def make():
            rgb = rotate(tm.rgb(fmt, frame, w, h, interpolation) if tm is not None else to_rgb(fmt, frame, w, h, interpolation), rotation)
            if crop:
                y0, x0 = (rgb.shape[0] - crop) // 2, (rgb.shape[1] - crop) // 2
                rgb = rgb[y0 : y0 + crop, x0 : x0 + crop]
            return np.ascontiguousarray(rgb)
        return make
