"""Every subtitle track of a title, from its three sources, as one list: the text streams inside the
container (streams.py, MOV c608 caption tracks included), the sidecar subtitle files delivered beside the
video (subtitles.py, captions.py), and the CEA-608/708 captions carried in the video stream itself
(captions_embedded.py; listed last, so that they never change the labels of the other tracks).

A sidecar belongs to the video when it lies in the video's folder and either its name starts with
the video's stem (`movie.en.srt` beside `movie.mp4`) or the folder is a delivery title folder
(`<date>/<title_id>/`, which holds one title). At most MAX_SIDECARS files are read, each bounded by
subtitles.MAX_BYTES; a file that cannot be read becomes a track with an error, never a failure.

Each track says what it is: `kind` `cea608` (CEA-608 closed captions: in the video stream or a c608
track), `cea708` (a CEA-708 caption service in the video stream), `sdh` (subtitles for the deaf and hard
of hearing, by what the container, the file name or the format says) or `subtitles`; `format` names the format in words; `evidence` says where `forced` and
`sdh` were read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from ..core.language import language_problem, normal_language
from ..deliveries.layout import parse_video_key
from .captions_embedded import CODEC_708, FORMAT_708, VideoCaptions, read_video_captions
from .captions_embedded import FORMAT as EMBEDDED_FORMAT
from .captions_files import read_delivery_file
from .streams import StreamTrack, is_sidecar, read_streams, sidecar_language, sidecar_language_problem, sidecar_sdh
from .subtitles import MAX_BYTES, Cue, SubtitleError, parse, to_vtt

MAX_SIDECARS = 64
CUE_COLUMNS = ["start_s", "end_s", "text", "raw", "style", "region", "language", "source", "track"]
FORMAT_NAMES = {"srt": "SubRip", "subrip": "SubRip", "vtt": "WebVTT", "webvtt": "WebVTT", "ass": "ASS/SSA", "ssa": "ASS/SSA",
                "mov_text": "MP4 timed text (tx3g)", "ttml": "TTML/IMSC", "scc": "SCC (CEA-608)", "stl": "EBU-STL",
                "eia_608": "CEA-608 (c608 track)", "eia_708": FORMAT_708, "hdmv_pgs_subtitle": "PGS (image)", "dvb_subtitle": "DVB subtitles (image)",
                "dvd_subtitle": "VobSub (image)", "dvb_teletext": "DVB teletext", "xsub": "XSUB (image)"}


@dataclass
class SubtitleTrack:
    """One subtitle track: a container stream or a sidecar file."""

    track: str  # "s<stream index>", "f<n>" (file), "s<stream index>.cc<n>" (a CEA-608 caption channel), "s<i>.service<n>" (CEA-708)
    source: str  # "stream" | "sidecar" | "video" (captions carried in the video stream's pictures)
    language: str | None
    label: str = ""  # file stem of its exports: "<language>[.forced][.<n>]"
    codec: str | None = None  # stream codec or sidecar format (srt, vtt, ass)
    file: str | None = None  # sidecar file name
    stream_index: int | None = None
    title: str | None = None
    forced: bool = False
    sdh: bool = False  # captions for the deaf and hard of hearing (SCC, or `.sdh`/`.cc` in the file name)
    kind: str = ""  # cea608 | cea708 | sdh | subtitles ("" until finished: see track_kind)
    format: str | None = None  # the format in words ("SubRip", "CEA-608 (embedded)")
    channel: str | None = None  # CEA-608 caption channel (CC1..CC4), CEA-708 service (SERVICE1..)
    evidence: list[str] = field(default_factory=list)  # where forced / sdh were read, one line each
    parsed: bool = True  # False: image subtitles, or a file that could not be read
    encoding: str | None = None
    cues: list[Cue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"track": self.track, "source": self.source, "language": self.language, "label": self.label if self.parsed and self.cues else None,
                "codec": self.codec, "file": self.file, "stream_index": self.stream_index, "title": self.title, "forced": self.forced,
                "sdh": self.sdh, "kind": self.kind or track_kind(self.codec, self.sdh), "format": self.format or format_name(self.codec),
                "channel": self.channel, "evidence": self.evidence, "parsed": self.parsed, "encoding": self.encoding, "cues": len(self.cues),
                "warnings": self.warnings, "error": self.error}


def track_kind(codec: str | None, sdh: bool) -> str:
    """`cea608` / `cea708` for CEA-608 / CEA-708 closed captions carried with the video, `sdh` for other subtitles
    for the deaf and hard of hearing, `subtitles` otherwise."""
    return "cea608" if codec == "eia_608" else "cea708" if codec == CODEC_708 else "sdh" if sdh else "subtitles"


def format_name(codec: str | None) -> str | None:
    return FORMAT_NAMES.get(codec or "", codec)


def from_stream(s: StreamTrack) -> SubtitleTrack:
    track = f"s{s.index}" + (f".{s.channel.lower()}" if s.channel else "")
    fmt = (FORMAT_708 if s.codec == CODEC_708 else EMBEDDED_FORMAT) if s.embedded else format_name(s.codec)
    return SubtitleTrack(track, "video" if s.embedded else "stream", normal_language(s.language), codec=s.codec, stream_index=s.index,
                         title=s.title, forced=s.forced, sdh=s.sdh, kind=track_kind(s.codec, s.sdh), format=fmt, channel=s.channel,
                         evidence=list(s.evidence), parsed=s.parsed, encoding="utf-8" if s.parsed else None, cues=list(s.cues),
                         warnings=list(s.warnings))


def from_video_captions(vc: VideoCaptions) -> tuple[list[SubtitleTrack], list[str]]:
    """(one track per CEA-608 channel / CEA-708 service with caption data in the video stream, title-level warnings)."""
    where = f"captions in video stream {vc.stream_index} ({vc.codec})"
    if not vc.channels:
        return [], [f"{where}: {w}" for w in vc.warnings]
    tracks = []
    for ch in vc.channels:
        language = ch.language or vc.language  # a 708 service's caption service descriptor, else the video stream's tag
        problem = language_problem(language)
        what = "CEA-708 closed captions (DTVCC in the video stream)" if ch.codec == CODEC_708 else "CEA-608 closed captions (A53 in the video stream)"
        s = StreamTrack(vc.stream_index, ch.codec, language if not problem else None, vc.title, cues=sorted(ch.cues, key=lambda c: (c.start, c.end)),
                        warnings=([problem] if problem else []) + vc.warnings + ch.warnings, sdh=True,
                        evidence=[what], channel=ch.channel, embedded=True)
        tracks.append(from_stream(s))
    return tracks, []


def sidecar_keys(store, video_key: str) -> tuple[list[str], list[str]]:
    """(keys of the video's sidecar subtitle files, warnings) in its folder, sorted."""
    folder, _, filename = video_key.rpartition("/")
    stem = filename.rsplit(".", 1)[0]
    whole_folder = parse_video_key(video_key) is not None
    prefix = f"{folder}/" if folder else ""
    keys = []
    for info in store.list(prefix):
        rel = info.key[len(prefix):]
        if "/" in rel or not is_sidecar(rel):
            continue
        if whole_folder or rel.startswith(stem + ".") or rel.startswith(stem + "_") or rel.startswith(stem + "-"):
            keys.append(info.key)
    keys.sort()
    warnings = []
    if len(keys) > MAX_SIDECARS:
        warnings.append(f"{len(keys)} subtitle files beside the video: the first {MAX_SIDECARS} read")
        keys = keys[:MAX_SIDECARS]
    return keys, warnings


def from_sidecar(n: int, name: str, data: bytes | None, error: str | None = None) -> SubtitleTrack:
    lang, forced = sidecar_language(name)
    t = SubtitleTrack(f"f{n}", "sidecar", normal_language(lang), codec=PurePosixPath(name).suffix.lower().lstrip("."), file=name, forced=forced,
                      sdh=sidecar_sdh(name))
    t.evidence = ([f"file name {name!r} (forced)"] if forced else []) + ([f"file name {name!r} (SDH/CC)"] if t.sdh else [])
    problem = sidecar_language_problem(name)
    if error is None:
        try:
            subs = parse(data, name, t.language)
        except SubtitleError as exc:
            error = str(exc)
        else:
            t.codec, t.encoding, t.cues, t.warnings = subs.format, subs.encoding, subs.cues, subs.warnings
            t.forced = t.forced or bool(subs.forced)
            t.sdh = t.sdh or bool(subs.sdh)
            t.evidence += subs.notes
            if t.language is None and subs.language:  # the language the file declares (TTML xml:lang, EBU-STL GSI)
                t.language = normal_language(subs.language)
    if problem:
        t.warnings.insert(0, problem)
    if error is not None:
        t.parsed, t.error = False, error
    t.kind, t.format = track_kind(t.codec, t.sdh), format_name(t.codec)
    return t


def collect(store, video_key: str, local_video, has_streams: bool) -> tuple[list[SubtitleTrack], list[str]]:
    """Every subtitle track of the video (streams first, then sidecars) and title-level warnings."""
    tracks: list[SubtitleTrack] = []
    warnings: list[str] = []
    if has_streams:
        try:
            tracks += [from_stream(s) for s in read_streams(str(local_video))]
        except Exception as exc:  # noqa: BLE001 - a damaged container: its subtitles are reported, the title goes on
            warnings.append(f"subtitle streams not read: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
    keys, more = sidecar_keys(store, video_key)
    warnings += more
    for n, key in enumerate(keys):
        name = key.rsplit("/", 1)[-1]
        try:
            data = read_delivery_file(store, key, MAX_BYTES + 1)  # a regular file only: never blocks on a FIFO
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a track with an error
            tracks.append(from_sidecar(n, name, None, f"cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
            continue
        tracks.append(from_sidecar(n, name, data))
    if local_video is not None:
        try:
            found = read_video_captions(str(local_video))
        except Exception as exc:  # noqa: BLE001 - damaged video data: the captions are reported, the title goes on
            warnings.append(f"captions in the video stream not read: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
        else:
            if found is not None:
                more_tracks, more = from_video_captions(found)
                tracks += more_tracks
                warnings += more
    label(tracks)
    return tracks, warnings


def label(tracks: list[SubtitleTrack]) -> None:
    """Export names: `<language>` (`und` when unknown), `.forced` for forced tracks, `.2`, `.3` for
    further tracks of the same language."""
    seen: dict[str, int] = {}
    for t in tracks:
        if not (t.parsed and t.cues):
            continue
        base = (t.language or "und") + (".forced" if t.forced else "")
        seen[base] = seen.get(base, 0) + 1
        t.label = base if seen[base] == 1 else f"{base}.{seen[base]}"


def cue_frame(t: SubtitleTrack) -> pd.DataFrame:
    return pd.DataFrame([{"start_s": c.start, "end_s": c.end, "text": c.text, "raw": c.raw, "style": c.style, "region": c.region, "language": t.language,
                          "source": source_name(t), "track": t.track} for c in t.cues], columns=CUE_COLUMNS)


def source_name(t: SubtitleTrack) -> str:
    """Where the cues were read: the file name, `stream <index>`, or `video stream <index> CC1` for captions in the picture."""
    if t.file:
        return t.file
    where = f"{'video ' if t.source == 'video' else ''}stream {t.stream_index}"
    return f"{where} {t.channel}" if t.channel else where


def files_of(tracks: list[SubtitleTrack]) -> dict[str, bytes]:
    """`subtitles/<label>.parquet` + `subtitles/<label>.vtt` per parsed track with cues."""
    out: dict[str, bytes] = {}
    for t in tracks:
        if t.parsed and t.cues:
            out[f"subtitles/{t.label}.parquet"] = cue_frame(t).to_parquet(index=False)
            out[f"subtitles/{t.label}.vtt"] = to_vtt(t.cues).encode()
    return out


def cues_of(frame: pd.DataFrame) -> list[Cue]:
    regions = frame["region"] if "region" in frame.columns else [None] * len(frame)
    return [Cue(float(r.start_s), float(r.end_s), str(r.text), str(r.raw), None if pd.isna(r.style) else str(r.style),
                None if region is None or pd.isna(region) else str(region))
            for r, region in zip(frame.itertuples(index=False), regions)]
