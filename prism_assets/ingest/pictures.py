"""The pictures of a delivered video as the probe records them (title.json `hdr` and `scan`).

* colour: the stream's transfer, primaries, matrix, range and bit depth, and the HDR static
  metadata carried as frame side data (SMPTE ST 2086 mastering display, CTA-861.3 MaxCLL /
  MaxFALL), HDR10+ / Dolby Vision side data; the same libav fields ffprobe prints
  (`color_transfer`, "Mastering display metadata", "Content light level metadata"), read in-process;
* scan: FFmpeg's `idet` filter (PyAV's libavfilter) over a bounded sample of frames, its counts
  (single / multi-frame TFF, BFF, progressive; repeated fields; read per frame through `metadata` select branches) classifying the title as
  progressive, interlaced or telecined (3:2 pulldown) with its field order. The visual pass
  deinterlaces (`bwdif`) or inverse-telecines (`fieldmatch` + `decimate`) from this block.
"""

from __future__ import annotations

import struct
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# colour: HDR10 / HLG signalling and static metadata (ffprobe's color_* fields and frame side data)

_TRC = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100", 10: "log316",
        11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
        17: "smpte428", 18: "arib-std-b67"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020", 10: "smpte428",
              11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
_MATRIX = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco", 9: "bt2020nc",
           10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp"}
_RANGE = {1: "tv", 2: "pc"}


def _named(table: dict, value) -> str | None:
    try:
        return table.get(int(value))
    except (TypeError, ValueError):
        return None


def mastering_display(buf: bytes) -> dict | None:
    """AVMasteringDisplayMetadata (SMPTE ST 2086): primaries R, G, B and white point as CIE 1931 xy,
    min / max luminance in cd/m2; None when it carries neither."""
    if len(buf) < 88:
        return None
    v = struct.unpack("=22i", buf[:88])
    q = lambda i: round(v[2 * i] / v[2 * i + 1], 5) if v[2 * i + 1] else None  # noqa: E731 - the i-th AVRational
    out = {}
    if v[20]:  # has_primaries
        out.update(red=[q(0), q(1)], green=[q(2), q(3)], blue=[q(4), q(5)], white_point=[q(6), q(7)])
    if v[21]:  # has_luminance
        out.update(min_luminance=q(8), max_luminance=q(9))
    return out or None


def hdr_info(cc, frames: list) -> dict:
    """The `hdr` block of title.json from the stream's colour signalling and the side data of the
    decoded frames: format (hdr10 | hdr10plus | dolby_vision | hlg | sdr), transfer, primaries,
    matrix, range, bit depth, the mastering display (ST 2086) and the content light level
    (MaxCLL / MaxFALL, CTA-861.3; 0 means unknown there, so null here). `missing_metadata` names
    the static metadata a PQ title lacks (QC event `hdr_metadata`)."""
    first = frames[0] if frames else None
    transfer = _named(_TRC, cc.color_trc) or _named(_TRC, getattr(first, "color_trc", None))
    primaries = _named(_PRIMARIES, cc.color_primaries) or _named(_PRIMARIES, getattr(first, "color_primaries", None))
    matrix = _named(_MATRIX, cc.colorspace) or (_named(_MATRIX, first.colorspace) if first is not None else None)
    rng = _named(_RANGE, cc.color_range) or (_named(_RANGE, first.color_range) if first is not None else None)
    fmt = cc.format or (first.format if first is not None else None)
    bit_depth = max((c.bits for c in fmt.components), default=None) if fmt is not None else None
    md = cll = None
    kinds: set[str] = set()
    for f in frames:
        for sd in f.side_data:
            kind = sd.type.name
            kinds.add(kind)
            if kind == "MASTERING_DISPLAY_METADATA" and md is None:
                md = mastering_display(bytes(sd))
            elif kind == "CONTENT_LIGHT_LEVEL" and cll is None and len(bytes(sd)) >= 8:
                cll = struct.unpack("=2I", bytes(sd)[:8])
    if transfer == "smpte2084":
        fmt_name = "dolby_vision" if kinds & {"DOVI_RPU_BUFFER", "DOVI_METADATA"} else "hdr10plus" if "DYNAMIC_HDR_PLUS" in kinds else "hdr10"
    elif transfer == "arib-std-b67":
        fmt_name = "hlg"
    else:
        fmt_name = "sdr"
    max_cll, max_fall = ((cll[0] or None), (cll[1] or None)) if cll else (None, None)
    missing = []
    if transfer == "smpte2084":
        if not md or md.get("max_luminance") is None:
            missing.append("mastering_display")
        if max_cll is None:
            missing.append("max_cll")
    return {"format": fmt_name, "transfer": transfer, "primaries": primaries, "matrix": matrix, "range": rng, "bit_depth": bit_depth,
            "pix_fmt": fmt.name if fmt is not None else None, "mastering_display": md, "max_cll": max_cll, "max_fall": max_fall,
            "missing_metadata": missing}


# ---------------------------------------------------------------------------------------------
# scan: progressive / interlaced / telecined, from FFmpeg's idet over a bounded sample

SCAN_WINDOWS = 3  # windows across the title (one from the start for a short title)
SCAN_WINDOW_FRAMES = 80
SCAN_MAX_HEIGHT = 1088  # no interlaced or telecined format has more lines: taller pictures are not sampled
_PROGRESSIVE_ONLY = {"vp8", "vp9", "av1", "png", "mjpeg", "gif", "webp"}
IDET_COUNTS = {"repeated": ("neither", "top", "bottom"), "single": ("tff", "bff", "progressive", "undetermined"),
               "multiple": ("tff", "bff", "progressive", "undetermined")}


def classify_scan(idet: dict | None, coded_interlaced: float) -> tuple[str, str | None]:
    """(type, field order) from idet's counts and the share of frames the decoder flags interlaced.

    * telecined: a 3:2 (2:3) pulldown repeats a field in 2 of every 5 frames, so repeated top +
      bottom fields make >= 20 % of the frames (at least 6); interlaced and progressive pictures
      repeat none (a still picture repeats both fields, which idet counts as neither);
    * interlaced: idet's multi-frame detection decides at least 6 frames and, for a stream coded
      interlaced, finds more TFF + BFF than progressive ones. A stream coded progressive must show
      overwhelming evidence (>= 95 % of >= 24 decided frames combed, >= 90 % of them with one
      parity): fast synthetic motion with sharp horizontal edges (lavfi testsrc2) fools idet into
      TFF / BFF on 60-80 % of progressive frames, with mixed parities;
    * otherwise progressive. Where idet decides too few frames (a still picture), the decoder's
      flags decide. Field order: the majority of idet's TFF / BFF."""
    coded = coded_interlaced >= 0.5
    if idet is None:
        return ("interlaced", None) if coded else ("progressive", "progressive")
    rep, multi, single = idet["repeated"], idet["multiple"], idet["single"]
    n = sum(rep.values())
    repeats = rep["top"] + rep["bottom"]
    order = lambda c: "tff" if c["tff"] >= c["bff"] else "bff"  # noqa: E731
    fields = multi if multi["tff"] + multi["bff"] else single
    if n and repeats >= max(6, 0.2 * n):
        return "telecined", order(fields)
    inter, prog = multi["tff"] + multi["bff"], multi["progressive"]
    if inter + prog >= 6:
        if coded:
            return ("interlaced", order(multi)) if inter > prog else ("progressive", "progressive")
        strong = inter >= 24 and inter >= 0.95 * (inter + prog) and max(multi["tff"], multi["bff"]) >= 0.9 * inter
        return ("interlaced", order(multi)) if strong else ("progressive", "progressive")
    if coded:
        return "interlaced", order(fields) if fields["tff"] + fields["bff"] else None
    return "progressive", "progressive"


def detect_scan(path: Path, index: int, frame_count: int, codec: str | None, height: int, first_frame=None) -> tuple[dict, list]:
    """The `scan` block of title.json and the first frames it decoded (their side data feeds
    `hdr_info`). idet runs over at most SCAN_WINDOWS x SCAN_WINDOW_FRAMES frames, a fresh filter per
    window (3 windows across a long title, one from the start of a short one)."""
    import av

    coded = float(bool(first_frame is not None and first_frame.interlaced_frame))
    if height > SCAN_MAX_HEIGHT or (codec or "").lower() in _PROGRESSIVE_ONLY:
        why = f"not sampled: {height} lines" if height > SCAN_MAX_HEIGHT else f"not sampled: {codec} is progressive only"
        kind, order = classify_scan(None, coded)
        return {"type": kind, "field_order": order, "method": why, "frames_sampled": 0, "coded_interlaced": coded, "idet": None}, []
    kept: list = []
    counts = {k: dict.fromkeys(names, 0) for k, names in IDET_COUNTS.items()}
    flagged = total = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            stream = c.streams[index]
            stream.thread_type = "AUTO"
            duration_s = float(c.duration / 1_000_000) if c.duration else 0.0
            short = frame_count <= 2 * SCAN_WINDOWS * SCAN_WINDOW_FRAMES or duration_s <= 0
            starts = [0.0] if short else [duration_s * (k + 0.5) / SCAN_WINDOWS for k in range(SCAN_WINDOWS)]
            budget = SCAN_WINDOWS * SCAN_WINDOW_FRAMES if short else SCAN_WINDOW_FRAMES
            for start in starts:
                if start > 0:
                    c.seek(int(start * 1_000_000))
                n, flagged_w = idet_window(c, stream, budget, counts, kept)
                total += n
                flagged += flagged_w
    except av.error.FFmpegError:
        pass  # what was sampled before the damage counts
    idet = counts if total >= 3 else None
    coded = flagged / total if total else coded
    kind, order = classify_scan(idet, coded)
    return {"type": kind, "field_order": order, "method": "idet" if idet else "decoder flags", "frames_sampled": total,
            "coded_interlaced": round(coded, 4), "idet": idet}, kept


def idet_window(container, stream, budget: int, counts: dict, kept: list) -> tuple[int, int]:
    """Decode up to `budget` frames from the container's position through a fresh idet graph and add
    idet's per-frame decisions to `counts`. idet writes them as frame metadata
    (`lavfi.idet.<single|multiple|repeated>.current_frame`), which PyAV does not expose: the graph
    splits idet's output into one `metadata=mode=select` branch per decision, each ending in its
    own sink, and counts the frames each sink lets through. (idet's end-of-stream log lines carry
    the same totals, but PyAV's log capture can deadlock against frame-threaded decoders.)"""
    import av

    graph = src = None
    sinks: list = []
    n = flagged = 0

    def drain():
        for key, value, sink in sinks:
            while True:
                try:
                    sink.pull()
                except (av.BlockingIOError, av.EOFError):
                    break
                counts[key][value] += 1

    try:
        for frame in container.decode(stream):
            if graph is None:
                graph = av.filter.Graph()
                src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=stream.time_base)
                idet = graph.add("idet")
                split = graph.add("split", str(sum(len(v) for v in IDET_COUNTS.values())))
                src.link_to(idet)
                idet.link_to(split)
                for key, values in IDET_COUNTS.items():
                    for value in values:
                        select = graph.add("metadata", f"mode=select:key=lavfi.idet.{key}.current_frame:value={value}")
                        split.link_to(select, len(sinks), 0)
                        sink = graph.add("buffersink")
                        select.link_to(sink)
                        sinks.append((key, value, sink))
                graph.configure()
            if len(kept) < 4:
                kept.append(frame)
            src.push(frame)
            drain()
            n += 1
            flagged += bool(frame.interlaced_frame)
            if n >= budget:
                break
    except av.error.FFmpegError:
        pass  # a damaged stretch: what decoded counts
    if graph is not None:
        src.push(None)
        drain()
    return n, flagged
