"""Subtitle streams inside the container (MKV, MP4, MOV) as cues, and sidecar subtitle files as tracks.

Language tags of streams and sidecar names are checked (`language_problem`): a tag that is not a
language (`xx-INVALID`) is not kept as one, and the track carries a one-line warning. A stream with
no packet at all is warned about ("empty subtitle stream"); NUL and other control characters are
removed from cue text, counted in a warning.

Text streams (SubRip, ASS/SSA, WebVTT, mov_text, ...) are decoded by PyAV into ASS events and become
`Cue`s; image streams (PGS, DVB, VobSub) cannot be read as text: they are listed and flagged
`not_parsed`. A MOV/MP4 `c608` closed-caption track (codec `eia_608`) is CEA-608 byte pairs, decoded by
captions_embedded.py: one track per caption channel with captions (CC1..CC4). `Collector` takes packets
one at a time, so the demux loop that already reads a title (its probe) can feed it without another
pass; `read_streams` demuxes the subtitle streams alone for a file on its own.

Forced and SDH come from what the container says (`stream_flags`): the `forced`, `hearing_impaired`
and `captions` dispositions, and a title naming them (`English (Forced)`, `English SDH`, `CC`); a
CEA-608 track is SDH (closed captions). Each flag keeps its evidence in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..core.language import language_problem, valid_language
from .captions_embedded import CC_CODECS, CaptionData, decode
from .subtitles import MAX_CUES, Cue, ass_plain, clean_controls, override_region

IMAGE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle", "xsub", "dvb_teletext"})
SIDECAR_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa", ".ttml", ".dfxp", ".scc", ".stl")  # + .xml named as captions (is_sidecar)
CAPTION_XML = re.compile(r"(?:[._-](?:ttml|dfxp|imsc1?|captions?|subtitles?|cc|sdh|forced)|[._-][a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)$", re.I)

SDH_TITLE = re.compile(r"(?<![a-z])(sdh|cc|closed[ -]?captions?|hard[ -]of[ -]hearing|hearing[ -]impaired|hoh)(?![a-z])", re.I)
FORCED_TITLE = re.compile(r"(?<![a-z])forced(?![a-z])", re.I)


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
    sdh: bool = False  # for the deaf and hard of hearing (see stream_flags)
    evidence: list[str] = field(default_factory=list)  # why forced / sdh, one line each
    channel: str | None = None  # CEA-608 caption channel (CC1..CC4) of a caption track
    embedded: bool = False  # captions carried in the video stream's pictures (A53 SEI), not a stream of their own

    @property
    def parsed(self) -> bool:
        return self.kind == "text"


def kind_of(codec: str | None) -> str:
    return "image" if codec in IMAGE_CODECS else "text"


def stream_flags(disposition, title: str | None) -> tuple[bool, bool, list[str]]:
    """(forced, sdh, evidence) of a stream from its disposition (`forced`; `hearing_impaired`, `captions`) and title."""
    names = set(re.findall(r"[a-z_]+", str(disposition or "").lower())) - {"disposition"}
    forced, sdh, why = "forced" in names, False, []
    if forced:
        why.append("disposition forced")
    for flag in ("hearing_impaired", "captions"):
        if flag in names:
            sdh = True
            why.append(f"disposition {flag}")
    if title and FORCED_TITLE.search(title) and not forced:
        forced = True
        why.append(f"title {title!r}")
    if title and SDH_TITLE.search(title):
        sdh = True
        why.append(f"title {title!r}")
    return forced, sdh, why


def _language(meta: dict) -> str | None:
    return valid_language((meta or {}).get("language"))


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
        self._cc: dict[int, CaptionData] = {}  # CEA-608 tracks (MOV c608): their byte pairs, decoded at the end
        for s in streams:
            codec = s.codec_context.name if s.codec_context else None
            title = (s.metadata or {}).get("title")
            forced, sdh, why = stream_flags(getattr(s, "disposition", None), title)
            if codec in CC_CODECS:
                codec, sdh = "eia_608", True
                self._cc[s.index] = CaptionData()
                why.append("CEA-608 closed captions")
            self.tracks[s.index] = StreamTrack(s.index, codec, _language(s.metadata), title, forced, kind_of(codec), sdh=sdh,
                                               evidence=why)
            problem = language_problem((s.metadata or {}).get("language"))
            if problem:
                self.tracks[s.index].warnings.append(problem)
        self._failed: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._controls: dict[int, int] = {}
        self._packets: dict[int, int] = {}

    def feed(self, packet) -> None:
        track = self.tracks.get(packet.stream.index)
        if track is None or packet.size == 0 or packet.pts is None:
            return
        self._packets[track.index] = self._packets.get(track.index, 0) + 1
        if not track.parsed:
            return
        if track.index in self._cc:
            self._cc[track.index].add(float(packet.pts * packet.time_base), bytes(packet))
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
                raw, n_raw = clean_controls(raw)
                plain, n = clean_controls(plain)
                if n or n_raw:
                    self._controls[track.index] = self._controls.get(track.index, 0) + max(n, n_raw)
                if plain:
                    track.cues.append(Cue(start, end, plain, raw, style, override_region(raw)))

    def finish(self) -> list[StreamTrack]:
        out = []
        for idx, track in sorted(self.tracks.items()):
            if idx in self._truncated:
                track.warnings.append(f"more than {MAX_CUES} cues: the rest not read")
            if self._failed.get(idx):
                track.warnings.append(f"{self._failed[idx]} damaged subtitle packet(s) skipped")
            if self._controls.get(idx):
                track.warnings.append(f"{self._controls[idx]} NUL/control character(s) removed from the text")
            if not track.parsed:
                track.warnings.append(f"{track.codec}: image-based subtitles, not parsed (no text to read)")
            if not self._packets.get(idx):
                track.warnings.append("empty subtitle stream: no subtitle packet in it")
            elif idx in self._cc:
                out += self._caption_tracks(track, self._cc[idx])
                continue
            elif track.parsed and not track.cues and not self._failed.get(idx):
                track.warnings.append(f"no text in its {self._packets[idx]} subtitle packet(s)")
            track.cues.sort(key=lambda c: (c.start, c.end))
            out.append(track)
        return out

    def _caption_tracks(self, track: StreamTrack, data: CaptionData) -> list[StreamTrack]:
        """A CEA-608 track as one track per caption channel with captions; itself with a warning when it has none."""
        channels, notes = decode(data)
        if not channels:
            track.warnings += notes + [f"no CEA-608 caption in its {self._packets[track.index]} sample(s)"]
            return [track]
        return [StreamTrack(track.index, track.codec, track.language, track.title, track.forced, track.kind,
                            sorted(ch.cues, key=lambda c: (c.start, c.end)), track.warnings + notes + ch.warnings, track.sdh,
                            list(track.evidence), ch.channel) for ch in channels]


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


def _name_tag(name: str) -> tuple[str | None, bool]:
    stem = PurePosixPath(name).name.rsplit(".", 1)[0]
    m = LANG_SUFFIX.search(stem)
    if not m:
        return None, False
    tag = m.group(1).replace("_", "-")
    if tag.lower() in ("cc", "sdh"):  # `movie.sdh.srt`: a kind, not a language
        return None, False
    return tag, (m.group(2) or "").lower() == "forced"


def sidecar_sdh(name: str) -> bool:
    """A sidecar named as SDH / closed captions: `title.en.sdh.srt`, `title.en.cc.vtt`, `title.sdh.srt`."""
    stem = PurePosixPath(name).name.rsplit(".", 1)[0].lower()
    return re.search(r"[._-](sdh|cc)$", stem) is not None


def sidecar_language(name: str) -> tuple[str | None, bool]:
    """(language, forced) from a sidecar's name: `title.ko.srt`, `title_en-GB.vtt`, `title.ja.forced.ass`.
    A tag that is not a language (`title.xx-INVALID.srt`) gives no language (sidecar_language_problem says why)."""
    tag, forced = _name_tag(name)
    return valid_language(tag), forced


def sidecar_language_problem(name: str) -> str | None:
    """One line when the language tag in a sidecar's name is not a language, else None."""
    tag, _ = _name_tag(name)
    problem = language_problem(tag)
    return f"file name's {problem}" if problem else None


def is_sidecar(name: str) -> bool:
    """A subtitle or caption file by its name. `.xml` only when named as captions (`movie.en.xml`,
    `movie.ttml.xml`, `movie_captions.xml`): a delivery folder holds other XML (metadata, MXF sidecars)."""
    p = PurePosixPath(name)
    suffix = p.suffix.lower()
    if suffix == ".xml":
        return CAPTION_XML.search(p.name[: -len(p.suffix)]) is not None
    return suffix in SIDECAR_EXTENSIONS
