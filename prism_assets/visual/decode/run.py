"""`run_visual_pass`: open the title, choose lanes, start the writer and lanes, consume."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from ..packs import PACK_NAMES, PackWriter
from .bitstream import gop_start_test
from .config import VisualDecodeError, VisualPass, VisualPassConfig
from .consumer import consume
from .context import PassContext
from .hardware import HardwareDecodeError, hwaccel_for
from .lanes import Lane, stop_lanes
from .pictures import PictureWriter
from .scan import describe, rate_factor, scan_chain
from .system import decode_lanes_for, frame_mb, tune_allocator
from .tap import ProxyTap
from .tonemap import ToneMap


def run_visual_pass(path: str | Path, workdir: str | Path, cfg: VisualPassConfig | None = None,
                    progress: Callable[[int, float], None] | None = None, source: dict | None = None, hwaccel: str = "none",
                    tap: ProxyTap | None = None) -> VisualPass:
    """Decode `path` once and return the per-frame statistics and the kept pictures.

    `source` is the title's probe (title.json): its `hdr` block turns on tone mapping (PQ / HLG ->
    SDR BT.709; without the block, the stream's transfer decides), its `scan` block deinterlacing or
    inverse telecine (`scan.py`). Corrupt packets are skipped and counted (`decode_errors`), never
    fatal unless no frame decodes. `hwaccel` (hardware.py: `none`, `cuda`...) decodes on the GPU's decoder; one that
    cannot start is a VisualDecodeError. `tap` (tap.py), when given, also makes the proxy's picture from this decode
    where the source allows (`meta["proxy_tap"]` says what it did; it never fails the pass).
    """
    import av

    cfg = cfg or VisualPassConfig()
    tune_allocator()
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
        source = source or {}
        tonemap = ToneMap.for_title(source.get("hdr"), stream.codec_context.color_trc if source.get("hdr") is None else None)
        scan = source.get("scan")
        chain = scan_chain(scan)
        # the scan filters hold frames across GOPs (decimate: cycles of 5): one lane, one GOP
        gop_start = None if chain else gop_start_test(codec, stream.codec_context.extradata)
        fps = fps * float(rate_factor(scan))
        first = _first_frame(probe, stream, path)
        n_lanes, threads = decode_lanes_for(cfg, gop_start is not None, frame_mb(first))
        ctx = PassContext(cfg, fps, list(probe.streams.video).index(stream), gop_start, n_lanes, tonemap=tonemap, scan_chain=chain,
                          interlaced_source=(scan or {}).get("type") in ("interlaced", "telecined"))
        ctx.geometry(first)
        tap_source = None
        if tap is not None:
            tap.skipped = ProxyTap.unsupported(tonemap is not None, bool(chain) or ctx.interlaced_source, ctx.geom["rotation"])
            cc = stream.codec_context
            tap_source = (first.width, first.height, cc.sample_aspect_ratio or stream.sample_aspect_ratio,
                          {"primaries": int(cc.color_primaries or 2), "trc": int(cc.color_trc or 2), "matrix": int(cc.colorspace or 2),
                           "range": int(cc.color_range or 0)})
        first_mb = frame_mb(first)
        del first
        try:
            accel = hwaccel_for(hwaccel, stream.codec_context.codec)
        except HardwareDecodeError as exc:
            raise VisualDecodeError(str(exc)) from None
    try:
        containers.extend(av.open(str(path), metadata_errors="ignore", hwaccel=accel) for _ in range(n_lanes))

        # keyframes and posters: 4:2:0 JPEG chroma, like the 4:2:0 video they come from (a poster at the
        # source size loses no colour detail; half the encode time, ~35 % smaller); the 224-px
        # embedding samples keep full chroma (they are CLIP's input)
        packs = {name: PackWriter(workdir / f"{name}.pack", cfg.jpeg_quality + (4 if name == "posters" else 0), "444" if name == "samples" else "420")
                 for name in PACK_NAMES}
        # pictures waiting for the writer hold their decoded frames: 8 at 1080p, 2 at 8K
        writer = ctx.writer = PictureWriter(packs, depth=int(max(2, min(8, 64 // first_mb))))
        if tap is not None and tap.skipped is None:
            tap.start(*tap_source)
            ctx.tap = tap if tap.active else None
        lanes = [Lane(k, ctx, containers[k], threads) for k in range(n_lanes)]
        try:
            vp = consume(ctx, lanes, packs, progress, t0, path, codec, threads)
            vp.meta["hwaccel"] = hwaccel
            if tap is not None:
                vp.meta["proxy_tap"] = tap.finish()
            vp.meta["pictures"] = {"tone_map": tonemap.describe() if tonemap else None, "scan": (scan or {}).get("type"), "scan_filter": describe(chain)}
            if source.get("frame_count"):  # the frames the pass should see: 4 of every 5 after inverse telecine
                vp.meta["expected_frames"] = int(round(source["frame_count"] * float(rate_factor(scan))))
            return vp
        except BaseException:
            stop_lanes(ctx, lanes)
            writer.abort()
            raise
    finally:
        if tap is not None and not tap.finished:  # the pass failed: no picture of it stays
            tap.abort()
        for c in containers:
            c.close()



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
