"""Subtitle streams inside the container (MKV, MP4, MOV) as cues, and sidecar subtitle files as tracks.

Text streams (SubRip, ASS/SSA, WebVTT, mov_text, ...) are decoded by PyAV into ASS events and become
`Cue`s; image streams (PGS, DVB, VobSub) cannot be read as text: they are listed and flagged
`not_parsed`. `Collector` takes packets one at a time, so the demux loop that already reads a
title (its probe) can feed it without another pass; `read_streams` demuxes the subtitle streams
alone for a file on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .subtitles import Cue, ass_plain

IMAGE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub", "dvb_teletext"})
SIDECAR_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
MAX_CUES = 50_000  # a feature has ~1,500; beyond this the stream is not subtitles


@dataclass
class StreamTrack:
    index: int
    codec: str | None
    language: str | None
    title: str | None = None
    forced: bool = False
    kind: str = "text"  # text | image
    cues: list[Cue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def parsed(self) -> bool:
        return self.kind == "text"


def kind_of(codec: str | None) -> str:
    return "image" if codec in IMAGE_CODECS else "text"


def _language(meta: dict) -> str | None:
    lang = (meta or {}).get("language")
    return None if lang in (None, "", "und") else lang


def _ass_text(event: bytes | str) -> tuple[str, str, str | None]:
    """(raw text, plain text, style) of one ASS event line as FFmpeg gives it:
    ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text."""
    s = event.decode("utf-8", "replace") if isinstance(event, bytes) else event
    parts = s.split(",", 8)
    raw = parts[-1] if len(parts) == 9 else s
    style = parts[2] or None if len(parts) == 9 else None
    return raw, ass_plain(raw), style


class Collector:
    """Cues of a container's subtitle streams, packet by packet."""

    def __init__(self, streams):
        self.tracks: dict[int, StreamTrack] = {}
        for s in streams:
            codec = s.codec_context.name if s.codec_context else None
            disposition = getattr(s, "disposition", None)
            forced = bool(disposition and "forced" in str(disposition).lower())
            self.tracks[s.index] = StreamTrack(s.index, codec, _language(s.metadata), (s.metadata or {}).get("title"), forced,
                                               kind_of(codec))
        self._failed: dict[int, int] = {}
        self._truncated: set[int] = set()

    def feed(self, packet) -> None:
        track = self.tracks.get(packet.stream.index)
        if track is None or not track.parsed or packet.size == 0 or packet.pts is None:
            return
        if len(track.cues) >= MAX_CUES:
            self._truncated.add(track.index)
            return
        start = round(float(packet.pts * packet.time_base), 3)  # milliseconds, as the text formats carry
        end = round(start + float((packet.duration or 0) * packet.time_base), 3)
        try:
            subs = packet.decode()
        except Exception:  # a damaged packet: counted, never fatal
            self._failed[track.index] = self._failed.get(track.index, 0) + 1
            return
        for sub in subs:
            items = sub if isinstance(sub, (list, tuple)) else [sub]
            for item in items:
                event = getattr(item, "ass", None)
                if event is None:
                    text = getattr(item, "text", b"")
                    event = b"0,0,,,0,0,0,," + (text if isinstance(text, bytes) else str(text).encode())
                raw, plain, style = _ass_text(event)
                if plain:
                    track.cues.append(Cue(start, end, plain, raw, style))

    def finish(self) -> list[StreamTrack]:
        out = []
        for idx, track in sorted(self.tracks.items()):
            if idx in self._truncated:
                track.warnings.append(f"more than {MAX_CUES} cues: the rest not read")
            if self._failed.get(idx):
                track.warnings.append(f"{self._failed[idx]} damaged subtitle packet(s) skipped")
            if not track.parsed:
                track.warnings.append(f"{track.codec}: image-based subtitles, not parsed (no text to read)")
            track.cues.sort(key=lambda c: (c.start, c.end))
            out.append(track)
        return out


def read_streams(path: str) -> list[StreamTrack]:
    """Every subtitle stream of a media file, demuxing those streams only."""
    import av

    with av.open(str(path)) as container:
        streams = list(container.streams.subtitles)
        if not streams:
            return []
        collector = Collector(streams)
        for packet in container.demux(*streams):
            collector.feed(packet)
        return collector.finish()


LANG_SUFFIX = re.compile(r"[._-]([a-z]{2,3}(?:[-_][A-Za-z]{2,4})?)(?:[._-](forced|sdh|cc))?$", re.I)


def sidecar_language(name: str) -> tuple[str | None, bool]:
    """(language, forced) from a sidecar's name: `title.ko.srt`, `title_en-GB.vtt`, `title.ja.forced.ass`."""
    stem = PurePosixPath(name).name.rsplit(".", 1)[0]
    m = LANG_SUFFIX.search(stem)
    if not m:
        return None, False
    return m.group(1).replace("_", "-"), (m.group(2) or "").lower() == "forced"


def is_sidecar(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in SIDECAR_EXTENSIONS
