"""Text subtitles as data: SubRip (.srt), WebVTT (.vtt) and ASS/SSA (.ass/.ssa) parsed into cues here;
TTML/IMSC/DFXP (.ttml/.dfxp/.xml), SCC (CEA-608) and EBU-STL (.stl) through ttconv (captions.py) into
the same cues.

The parser is tolerant where deliveries are sloppy and explicit where they are broken:

- **Encoding**: a byte-order mark wins (UTF-8/16/32); then strict UTF-8; then the legacy encodings that
  subtitle files really arrive in (CP949/EUC-KR, Shift-JIS, GB18030, Big5, CP1252), ranked by
  charset-normalizer. The encoding used is recorded, and a guessed one is a warning.
- **Blocks**: a block whose timing line cannot be read is skipped with a counted warning; a cue whose
  end is not after its start is kept (QC flags it) and counted.
- **Mixed encodings**: a file whose lines are partly UTF-8 and partly another encoding is read line by
  line (UTF-8 where a line is UTF-8, the guessed legacy encoding elsewhere) with a warning that says so.
- **Impossible times**: a timing line with minutes or seconds over 59 (`99:99:99,999`) is not read as
  362,440 s: the cue is skipped and counted in one warning.
- **NUL characters** (and other C0 controls but tab/newline) are removed from the text, counted.
- **Size**: at most `MAX_CUES` cues are kept (as for container streams); the rest is counted.
- **Failure**: a file with no readable cue at all, an unknown format or a file over `MAX_BYTES` raises
  `SubtitleError` with one line. Never a traceback, never a partial result presented as whole.

Markup is kept in `raw` and stripped from `text` (SRT/VTT tags, ASS override blocks, also the `{\\an8}` that
SRT files borrow from ASS; ASS `\\N` is a line break), so reading speed and line counts are measured on what
the viewer reads. Where a cue is placed is kept as its `region` when the format says it: WebVTT cue
settings (`line:10% position:50% align:start`), SRT `X1:.. Y1:..` coordinates, ASS/SRT `\\anN` alignment and
`\\pos(x,y)`. What a file says about the whole track is kept too: a WebVTT header's `Kind: captions` (SDH)
and `Language:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_BYTES = 8 * 1024 * 1024  # a feature film's subtitles are ~100 KB; anything this big is not a subtitle file
MAX_CUES = 50_000  # a feature has ~1,500; beyond this the file is not subtitles (the same limit as for streams)
FORMATS = ("srt", "vtt", "ass", "ttml", "scc", "stl")
CAPTION_EXTENSIONS = {"ttml": "ttml", "dfxp": "ttml", "xml": "ttml", "scc": "scc", "stl": "stl"}  # read by captions.py
LEGACY = ("cp949", "shift_jis", "gb18030", "big5", "cp1252")


class SubtitleError(ValueError):
    """A subtitle file that cannot be used, in one line."""


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str  # what the viewer reads, lines joined by "\n"
    raw: str  # as written, markup included
    style: str | None = None  # ASS style name
    region: str | None = None  # where the format places it: TTML region id / origin+extent, SCC row+column, STL vertical position

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n") if self.text else []


@dataclass
class Subtitles:
    format: str
    encoding: str
    cues: list[Cue]
    warnings: list[str] = field(default_factory=list)
    language: str | None = None  # declared inside the file (TTML xml:lang, EBU-STL GSI language code), as written
    forced: bool | None = None  # from the format (IMSC itts:forcedDisplay on every cue); None: the format does not say
    sdh: bool | None = None  # captions for the deaf and hard of hearing (CEA-608 SCC is); None: the format does not say
    notes: list[str] = field(default_factory=list)  # where `forced` / `sdh` / `language` were read in the file, one line each


# -- encoding --------------------------------------------------------------------------------------
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


BY_LANGUAGE = {"ja": ("shift_jis", "cp932", "euc_jp"), "ko": ("cp949", "euc_kr"), "zh": ("gb18030", "big5"),
               "ru": ("cp1251", "koi8_r"), "uk": ("cp1251",), "el": ("cp1253",), "tr": ("cp1254",), "he": ("cp1255",), "ar": ("cp1256",),
               "th": ("cp874",), "vi": ("cp1258",), "pl": ("cp1250",), "cs": ("cp1250",), "hu": ("cp1250",)}


def mixed_utf8(data: bytes) -> tuple[list[bytes], list[int]] | None:
    """(lines, indices of the lines that are not UTF-8) when a file that is not UTF-8 as a whole has
    lines with non-ASCII text that are (a UTF-8 file edited in a legacy editor, or two files pasted
    together); None otherwise."""
    lines = data.split(b"\n")
    bad, good_non_ascii = [], 0
    for i, ln in enumerate(lines):
        try:
            ln.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        good_non_ascii += any(b > 0x7F for b in ln)
    return (lines, bad) if bad and good_non_ascii else None


def decode(data: bytes, language: str | None = None) -> tuple[str, str, bool]:
    """(text, encoding, guessed). A BOM or valid UTF-8 is certain; a legacy encoding is a guess:
    first the legacy encodings of the file's language when it is known (a short Shift-JIS file is
    valid CP949 too, so the bytes alone cannot tell them apart), then charset-normalizer's ranking."""
    for bom, enc in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, False
            except UnicodeDecodeError as exc:
                raise SubtitleError(f"byte-order mark says {enc} but the text is not ({exc.reason} at byte {exc.start})") from None
    try:
        return data.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        pass
    mixed = mixed_utf8(data)
    if mixed is not None:
        lines, bad = mixed
        _, legacy, _ = decode(b"\n".join(lines[i] for i in bad).replace(b"\n", b" "), language)
        if legacy not in ("utf-8", "utf-8-sig"):
            bad_set = set(bad)
            text = "\n".join(ln.decode(legacy, "replace") if i in bad_set else ln.decode("utf-8") for i, ln in enumerate(lines))
            return text, f"mixed:utf-8+{legacy}:{len(bad)}/{len(lines)}", True
    for enc in BY_LANGUAGE.get((language or "").split("-")[0].lower(), ()):
        try:
            return data.decode(enc), enc, True
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    ranked = [m.encoding for m in from_bytes(data, cp_isolation=list(LEGACY))]
    for enc in ranked + [e for e in LEGACY if e not in ranked]:
        try:
            return data.decode(enc), enc, True
        except (UnicodeDecodeError, LookupError):
            continue
    raise SubtitleError("text in no known encoding (not UTF-8/16/32, CP949, Shift-JIS, GB18030, Big5 or CP1252)")


# -- formats ---------------------------------------------------------------------------------------
TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
TIMING = re.compile(rf"^\s*{TIME}\s*-->\s*{TIME}")
TAG = re.compile(r"</?[a-zA-Z][^>]*>|</?[cvb]\.[^>]*>|<\d[^>]*>")
ASS_OVERRIDE = re.compile(r"\{[^}]*\}")
SRT_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # `{\an8}`, `{\pos(10,20)}` in SRT/VTT text (ASS overrides, as players read them)
AN = re.compile(r"\\an([1-9])")
POS = re.compile(r"\\pos\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)")
SRT_COORDS = re.compile(r"\b([XY][12]):\s*(-?\d+)", re.I)


def override_region(raw: str) -> str | None:
    """Where ASS override tags place a cue: `an8` (numpad alignment: 7-9 top, 1-3 bottom), `pos 320,50`."""
    if "\\" not in raw:
        return None
    parts = []
    an, pos = AN.search(raw), POS.search(raw)
    if an:
        parts.append(f"an{an.group(1)}")
    if pos:
        parts.append(f"pos {pos.group(1)},{pos.group(2)}")
    return " ".join(parts) or None


class BadTime(ValueError):
    """A time with minutes or seconds over 59: not a time (`99:99:99,999` is not 362,440 s)."""


def _seconds(h, m, s, frac) -> float:
    if int(m) > 59 or int(s) > 59:
        raise BadTime(f"{h or 0}:{m}:{s}.{frac}")
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_controls(text: str) -> tuple[str, int]:
    """(text without NUL and other C0 control characters but tab/newline/CR, how many were removed)."""
    n = len(CONTROL.findall(text))
    return (CONTROL.sub("", text), n) if n else (text, 0)


def strip_markup(text: str) -> str:
    """What the viewer reads: SRT/VTT tags removed, lines trimmed, empty lines dropped."""
    lines = [TAG.sub("", SRT_OVERRIDE.sub("", ln)).strip() for ln in text.replace("\r", "").split("\n")]
    return "\n".join(ln for ln in lines if ln)


def detect_format(text: str, name: str = "") -> str:
    head = text.lstrip("\ufeff \t\r\n")[:4096]
    if head.startswith("WEBVTT"):
        return "vtt"
    if re.search(r"^\s*\[(Script Info|V4\+? Styles|Events)\]", head, re.M | re.I):
        return "ass"
    if TIMING.search(head) or re.search(TIME + r"\s*-->", head):
        return "srt"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if re.match(r"(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(\w+:)?tt[\s>]", head, re.S):
        return "ttml"
    if head.startswith("Scenarist_SCC"):
        return "scc"
    if ext in ("ttml", "dfxp", "xml") and head.startswith("<"):
        return "ttml"  # XML named as captions: TTML, or one line saying it is not
    if ext in ("srt", "vtt", "ass", "ssa"):
        return "ass" if ext == "ssa" else ext
    raise SubtitleError("not a subtitle file: no WEBVTT header, no [Events] section, no 'start --> end' timing line, no TTML <tt> "
                        "root and no Scenarist_SCC header")


def _blocks(text: str, fmt: str) -> tuple[list[Cue], list[str]]:
    """SRT and WebVTT: blank-line separated blocks with a timing line; the cue's region from what follows the
    end time (WebVTT cue settings, SRT X1/X2/Y1/Y2) or from `{\\anN}`/`{\\pos()}` in its text."""
    cues, bad, empty_or_reversed, impossible = [], 0, 0, 0
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [ln for ln in block.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            continue
        if fmt == "vtt" and (lines[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION"))):
            continue
        at = next((i for i, ln in enumerate(lines[:3]) if "-->" in ln), None)
        m = TIMING.match(lines[at]) if at is not None else None
        if not m:
            bad += 1
            continue
        try:
            start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        except BadTime:
            impossible += 1
            continue
        raw = "\n".join(lines[at + 1:]).strip("\n")
        cue = Cue(start, end, strip_markup(raw), raw, None, _block_region(lines[at][m.end():], raw, fmt))
        empty_or_reversed += cue.end <= cue.start
        cues.append(cue)
    return cues, _notes(bad, empty_or_reversed, impossible)


def _block_region(settings: str, raw: str, fmt: str) -> str | None:
    settings = " ".join(settings.split())
    if fmt == "vtt" and settings:
        return settings  # line:10% position:50% align:start size:.. region:..
    if fmt == "srt" and SRT_COORDS.search(settings):
        return " ".join(f"{k.upper()}:{v}" for k, v in SRT_COORDS.findall(settings))
    return override_region(raw)


def vtt_header(text: str) -> dict[str, str]:
    """`Kind:` and `Language:` of a WebVTT header (the lines after `WEBVTT` before the first blank line), lower-case keys."""
    head = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")[1:]
    out = {}
    for ln in head:
        key, sep, value = ln.partition(":")
        if sep and "-->" not in ln and key.strip().lower() in ("kind", "language"):
            out[key.strip().lower()] = value.strip()
    return out


def ass_plain(raw: str) -> str:
    """What the viewer reads of an ASS text field: override blocks removed, \\N and \\n as line breaks."""
    return strip_markup(ASS_OVERRIDE.sub("", raw).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " "))


def _ass(text: str) -> tuple[list[Cue], list[str]]:
    cues, bad, reversed_, impossible = [], 0, 0, 0
    fields: list[str] | None = None
    section = ""
    for line in text.replace("\r", "").split("\n"):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s.lower()
            continue
        if section != "[events]":
            continue
        if s.lower().startswith("format:"):
            fields = [f.strip().lower() for f in s.split(":", 1)[1].split(",")]
            continue
        if not s.lower().startswith("dialogue:"):
            continue
        if not fields or "text" not in fields:
            fields = ["layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text"]
        parts = s.split(":", 1)[1].split(",", len(fields) - 1)
        if len(parts) < len(fields):
            bad += 1
            continue
        row = dict(zip(fields, (p.strip() for p in parts)))
        t0 = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})[.](\d{1,3})", row.get("start", ""))
        t1 = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})[.](\d{1,3})", row.get("end", ""))
        if not (t0 and t1):
            bad += 1
            continue
        try:
            start, end = _seconds(*t0.groups()), _seconds(*t1.groups())  # ASS centiseconds: "1.50" is 1.5 s
        except BadTime:
            impossible += 1
            continue
        raw = parts[-1]
        cue = Cue(start, end, ass_plain(raw), raw, style=row.get("style") or None, region=override_region(raw))
        reversed_ += cue.end <= cue.start
        cues.append(cue)
    return cues, _notes(bad, reversed_, impossible)


def _notes(bad: int, reversed_: int, impossible: int = 0) -> list[str]:
    out = []
    if impossible:
        out.append(f"{impossible} cue(s) with an impossible time (minutes or seconds over 59, e.g. 99:99:99,999) skipped")
    if bad:
        out.append(f"{bad} block(s) without a readable timing line skipped")
    if reversed_:
        out.append(f"{reversed_} cue(s) ending at or before their start")
    return out


def parse(data: bytes, name: str = "", language: str | None = None) -> Subtitles:
    """Cues of one subtitle file (`name` only helps to tell the format of an unusual file,
    `language` (ISO 639-1) the encoding of a file that is not Unicode)."""
    if len(data) > MAX_BYTES:
        raise SubtitleError(f"{len(data)} bytes: larger than {MAX_BYTES} bytes, not read")
    if not data.strip():
        raise SubtitleError("empty file")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext == "stl" or data[3:11] in (b"STL25.01", b"STL30.01", b"STL24.01", b"STL23.01", b"STL50.01", b"STL60.01"):
        from .captions import parse_caption

        return _finish(parse_caption(data, "stl"))
    text, encoding, guessed = decode(data, language)
    text, nuls = clean_controls(text)
    fmt = detect_format(text, name)
    if fmt in ("ttml", "scc"):
        from .captions import parse_caption

        subs = parse_caption(text.lstrip("\ufeff"), fmt)
        subs.encoding = encoding
        warnings = subs.warnings
    else:
        cues, warnings = _ass(text) if fmt == "ass" else _blocks(text.lstrip("\ufeff"), fmt)
        subs = Subtitles(fmt, encoding, cues, warnings)
        if fmt == "vtt":
            _vtt_track(subs, vtt_header(text))
    if not subs.cues:
        raise SubtitleError(f"no readable cue in this {fmt} file" + (f" ({warnings[0]})" if warnings else ""))
    if nuls:
        warnings.insert(0, f"{nuls} NUL/control character(s) removed from the text")
    if encoding.startswith("mixed:"):
        _, encs, share = encoding.split(":")
        warnings.insert(0, f"mixed encodings: {share.split('/')[0]} of {share.split('/')[1]} lines are not UTF-8 and were read as "
                           f"{encs.split('+')[1]} (guessed), the rest as UTF-8: check the file")
        subs.encoding = encs
    elif guessed:
        warnings.insert(0, f"not UTF-8: read as {encoding} (guessed{' from the language ' + language if language and encoding in BY_LANGUAGE.get(language.split('-')[0], ()) else ''})")
    return _finish(subs)


def _vtt_track(subs: Subtitles, header: dict[str, str]) -> None:
    """A WebVTT header's `Kind: captions` (the HTML track kind for the deaf and hard of hearing) / `Kind: subtitles`, `Language:`."""
    kind = header.get("kind", "").lower()
    if kind in ("captions", "subtitles"):
        subs.sdh = kind == "captions"
        subs.notes.append(f"WebVTT header Kind: {kind}")
    if header.get("language"):
        subs.language = header["language"]
        subs.notes.append(f"WebVTT header Language: {header['language']}")


def _finish(subs: Subtitles) -> Subtitles:
    """Sorted cues, at most MAX_CUES of them."""
    if not subs.cues:
        raise SubtitleError(f"no readable cue in this {subs.format} file" + (f" ({subs.warnings[0]})" if subs.warnings else ""))
    subs.cues.sort(key=lambda c: (c.start, c.end))
    if len(subs.cues) > MAX_CUES:
        subs.warnings.append(f"{len(subs.cues)} cues: more than {MAX_CUES}, the rest not read")
        del subs.cues[MAX_CUES:]
    return subs


# -- output ----------------------------------------------------------------------------------------
def _vtt_time(t: float) -> str:
    ms = max(0, round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_vtt(cues: list[Cue]) -> str:
    """Normalised WebVTT: UTF-8, sorted, markup stripped, a blank line never inside a cue."""
    out = ["WEBVTT", ""]
    for c in cues:
        text = "\n".join(ln for ln in clean_controls(c.text)[0].split("\n") if ln.strip()) or " "
        out += [f"{_vtt_time(c.start)} --> {_vtt_time(c.end)}", text.replace("-->", "->"), ""]
    return "\n".join(out)
