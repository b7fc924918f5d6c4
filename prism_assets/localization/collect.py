"""Every subtitle track of a title, from its two sources, as one list: the text streams inside the
container (streams.py) and the sidecar subtitle files delivered beside the video (subtitles.py).

A sidecar belongs to the video when it lies in the video's folder and either its name starts with
the video's stem (`movie.en.srt` beside `movie.mp4`) or the folder is a delivery title folder
(`<date>/<title_id>/`, which holds one title). At most MAX_SIDECARS files are read, each bounded by
subtitles.MAX_BYTES; a file that cannot be read becomes a track with an error, never a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from ..audio.analysis import iso639_1
from ..deliveries.layout import parse_video_key
from .captions_files import read_delivery_file
from .streams import StreamTrack, is_sidecar, read_streams, sidecar_language, sidecar_language_problem, sidecar_sdh
from .subtitles import MAX_BYTES, Cue, SubtitleError, parse, to_vtt

MAX_SIDECARS = 64
CUE_COLUMNS = ["start_s", "end_s", "text", "raw", "style", "region", "language", "source", "track"]
SAFE_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")


@dataclass
class SubtitleTrack:
    """One subtitle track: a container stream or a sidecar file."""

    track: str  # "s<stream index>" or "f<n>" (file)
    source: str  # "stream" | "sidecar"
    language: str | None
    label: str = ""  # file stem of its exports: "<language>[.forced][.<n>]"
    codec: str | None = None  # stream codec or sidecar format (srt, vtt, ass)
    file: str | None = None  # sidecar file name
    stream_index: int | None = None
    title: str | None = None
    forced: bool = False
    sdh: bool = False  # captions for the deaf and hard of hearing (SCC, or `.sdh`/`.cc` in the file name)
    parsed: bool = True  # False: image subtitles, or a file that could not be read
    encoding: str | None = None
    cues: list[Cue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"track": self.track, "source": self.source, "language": self.language, "label": self.label if self.parsed and self.cues else None,
                "codec": self.codec, "file": self.file, "stream_index": self.stream_index, "title": self.title, "forced": self.forced,
                "sdh": self.sdh, "parsed": self.parsed, "encoding": self.encoding, "cues": len(self.cues), "warnings": self.warnings, "error": self.error}


def normal_language(tag: str | None) -> str | None:
    """A language tag made safe for a file name and comparable: lower case, `_` -> `-`, ISO 639-2
    codes as ISO 639-1 where one exists (`ger` -> `de`, `pt-BR` -> `pt-br`); None for
    und/empty/anything that is not a language tag."""
    if not tag:
        return None
    t = str(tag).strip().replace("_", "-").lower()
    if not SAFE_LANGUAGE.fullmatch(t) or t.split("-")[0] in ("und", "zxx", "mis", "mul"):
        return None
    head, _, region = t.partition("-")
    return (iso639_1(head) or head) + (f"-{region}" if region else "")


def from_stream(s: StreamTrack) -> SubtitleTrack:
    return SubtitleTrack(f"s{s.index}", "stream", normal_language(s.language), codec=s.codec, stream_index=s.index, title=s.title,
                         forced=s.forced, parsed=s.parsed, encoding="utf-8" if s.parsed else None, cues=list(s.cues),
                         warnings=list(s.warnings))


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
            if t.language is None and subs.language:  # the language the file declares (TTML xml:lang, EBU-STL GSI)
                t.language = normal_language(subs.language)
    if problem:
        t.warnings.insert(0, problem)
    if error is not None:
        t.parsed, t.error = False, error
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
                          "source": t.file or f"stream {t.stream_index}", "track": t.track} for c in t.cues], columns=CUE_COLUMNS)


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
