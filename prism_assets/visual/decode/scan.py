"""Progressive pictures from interlaced and telecined sources: a libavfilter graph (PyAV) between a
lane's decoder and the analysis, chosen from the probe's `scan` block (title.json).

* interlaced: `bwdif=mode=send_frame:parity=<tff|bff>:deint=all`, one progressive picture per frame
  at the frame's own time, so combing is never measured as motion (cuts) and frame numbers stay
  those of the source;
* telecined (3:2 pulldown): `fieldmatch=order=<tff|bff>:combmatch=full` puts each film frame's two
  fields back together, `bwdif=...:deint=interlaced` deinterlaces the rare frame left combed, and
  `decimate` drops the one duplicate in every cycle of 5: 29.97i becomes the 23.976p film frames
  (FFmpeg's recommended inverse telecine; PyAV's FFmpeg has no `pullup`).

The parity comes from the probe (idet's majority), not from the frames' flags: a stream coded
progressive carries no field order. bwdif doubles the time base and decimate re-times frames on the
new rate; output timestamps are put back on the stream's time base.

Such a title is decoded by one lane as one GOP: the filters hold frames across GOP boundaries and
decimate works in cycles of 5, so per-GOP graphs would make the output depend on the split.
Interlaced formats stop at 1080 lines, which one lane decodes fast enough.
"""

from __future__ import annotations

from fractions import Fraction


def scan_chain(scan: dict | None) -> list[tuple[str, str]]:
    """The filters (name, args) for the probe's scan block; [] for a progressive title."""
    kind = (scan or {}).get("type")
    order = (scan or {}).get("field_order")
    parity = order if order in ("tff", "bff") else "auto"
    if kind == "interlaced":
        return [("bwdif", f"mode=send_frame:parity={parity}:deint=all")]
    if kind == "telecined":
        match_order = order if order in ("tff", "bff") else "auto"
        return [("fieldmatch", f"order={match_order}:combmatch=full"), ("bwdif", f"mode=send_frame:parity={parity}:deint=interlaced"),
                ("decimate", "")]
    return []


def rate_factor(scan: dict | None) -> Fraction:
    """Output frames per source frame: 4/5 after inverse telecine, else 1."""
    return Fraction(4, 5) if (scan or {}).get("type") == "telecined" else Fraction(1)


def describe(chain: list[tuple[str, str]]) -> str | None:
    return ",".join(f"{n}={a}" if a else n for n, a in chain) or None


class ScanFilter:
    """One filter graph for the whole stream: push decoded frames, get progressive ones back (in
    order, timestamps on the stream's time base); `flush` at the end of the stream. A change of
    picture size or format mid-stream flushes the graph and starts a new one."""

    def __init__(self, stream, chain: list[tuple[str, str]]):
        self.stream, self.chain = stream, chain
        self.tb = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        self.rate = Fraction(rate)
        self.graph = self.src = self.sink = None
        self.key: tuple | None = None

    def _build(self, frame) -> None:
        import av

        sar = self.stream.codec_context.sample_aspect_ratio or Fraction(1)
        g = av.filter.Graph()
        args = (f"video_size={frame.width}x{frame.height}:pix_fmt={frame.format.name}:time_base={self.tb.numerator}/{self.tb.denominator}"
                f":frame_rate={self.rate.numerator}/{self.rate.denominator}:pixel_aspect={sar.numerator}/{sar.denominator}")
        last = src = g.add("buffer", args)  # explicit frame rate: decimate needs it
        for name, fargs in self.chain:
            f = g.add(name, fargs) if fargs else g.add(name)
            last.link_to(f)
            last = f
        sink = g.add("buffersink")
        last.link_to(sink)
        g.configure()
        self.graph, self.src, self.sink = g, src, sink
        self.key = (frame.width, frame.height, frame.format.name)

    def _drain(self) -> list:
        import av

        out = []
        while True:
            try:
                f = self.sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return out
            if f.pts is not None and f.time_base:
                f.pts = int(round(f.pts * f.time_base / self.tb))
            f.time_base = self.tb
            out.append(f)

    def push(self, frame) -> list:
        out = []
        key = (frame.width, frame.height, frame.format.name)
        if self.graph is not None and key != self.key:
            out += self.flush()
        if self.graph is None:
            self._build(frame)
        self.src.push(frame)
        return out + self._drain()

    def flush(self) -> list:
        if self.graph is None:
            return []
        self.src.push(None)
        out = self._drain()
        self.graph = self.src = self.sink = None
        return out
