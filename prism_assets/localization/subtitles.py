"""Text subtitles as data: SubRip (.srt), WebVTT (.vtt) and ASS/SSA (.ass/.ssa) parsed into cues.

The parser is tolerant where deliveries are sloppy and explicit where they are broken:

- **Encoding**: a byte-order mark wins (UTF-8/16/32); then strict UTF-8; then the legacy encodings that
  subtitle files really arrive in (CP949/EUC-KR, Shift-JIS, GB18030, Big5, CP1252), ranked by
  charset-normalizer. The encoding used is recorded, and a guessed one is a warning.
- **Blocks**: a block whose timing line cannot be read is skipped with a counted warning; a cue whose
  end is not after its start is kept (QC flags it) and counted.
- **Failure**: a file with no readable cue at all, an unknown format or a file over `MAX_BYTES` raises
  `SubtitleError` with one line. Never a traceback, never a partial result presented as whole.

Markup is kept in `raw` and stripped from `text` (SRT/VTT tags, ASS override blocks; ASS `\\N` is a
line break), so reading speed and line counts are measured on what the viewer reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_BYTES = 8 * 1024 * 1024  # a feature film's subtitles are ~100 KB; anything this big is not a subtitle file
FORMATS = ("srt", "vtt", "ass")
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

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n") if self.text else []


@dataclass
class Subtitles:
    format: str
    encoding: str
    cues: list[Cue]
    warnings: list[str] = field(default_factory=list)


# -- encoding --------------------------------------------------------------------------------------
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


BY_LANGUAGE = {"ja": ("shift_jis", "cp932", "euc_jp"), "ko": ("cp949", "euc_kr"), "zh": ("gb18030", "big5"),
               "ru": ("cp1251", "koi8_r"), "uk": ("cp1251",), "el": ("cp1253",), "tr": ("cp1254",), "he": ("cp1255",), "ar": ("cp1256",),
               "th": ("cp874",), "vi": ("cp1258",), "pl": ("cp1250",), "cs": ("cp1250",), "hu": ("cp1250",)}


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


def _seconds(h, m, s, frac) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


def strip_markup(text: str) -> str:
    """What the viewer reads: SRT/VTT tags removed, lines trimmed, empty lines dropped."""
    lines = [TAG.sub("", ln).strip() for ln in text.replace("\r", "").split("\n")]
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
    if ext in ("srt", "vtt", "ass", "ssa"):
        return "ass" if ext == "ssa" else ext
    raise SubtitleError("not a subtitle file: no WEBVTT header, no [Events] section and no 'start --> end' timing line")


def _blocks(text: str, fmt: str) -> tuple[list[Cue], list[str]]:
    """SRT and WebVTT: blank-line separated blocks with a timing line."""
    cues, bad, empty_or_reversed = [], 0, 0
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
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        raw = "\n".join(lines[at + 1:]).strip("\n")
        cue = Cue(start, end, strip_markup(raw), raw)
        empty_or_reversed += cue.end <= cue.start
        cues.append(cue)
    return cues, _notes(bad, empty_or_reversed)


def ass_plain(raw: str) -> str:
    """What the viewer reads of an ASS text field: override blocks removed, \\N and \\n as line breaks."""
    return strip_markup(ASS_OVERRIDE.sub("", raw).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " "))


def _ass(text: str) -> tuple[list[Cue], list[str]]:
    cues, bad, reversed_ = [], 0, 0
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
        start, end = _seconds(*t0.groups()), _seconds(*t1.groups())  # ASS centiseconds: "1.50" is 1.5 s
        raw = parts[-1]
        cue = Cue(start, end, ass_plain(raw), raw, style=row.get("style") or None)
        reversed_ += cue.end <= cue.start
        cues.append(cue)
    return cues, _notes(bad, reversed_)


def _notes(bad: int, reversed_: int) -> list[str]:
    out = []
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
    text, encoding, guessed = decode(data, language)
    fmt = detect_format(text, name)
    cues, warnings = _ass(text) if fmt == "ass" else _blocks(text.lstrip("\ufeff"), fmt)
    if not cues:
        raise SubtitleError(f"no readable cue in this {fmt} file" + (f" ({warnings[0]})" if warnings else ""))
    if guessed:
        warnings.insert(0, f"not UTF-8: read as {encoding} (guessed{' from the language ' + language if language and encoding in BY_LANGUAGE.get(language.split('-')[0], ()) else ''})")
    cues.sort(key=lambda c: (c.start, c.end))
    return Subtitles(fmt, encoding, cues, warnings)


# -- output ----------------------------------------------------------------------------------------
def _vtt_time(t: float) -> str:
    ms = max(0, round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_vtt(cues: list[Cue]) -> str:
    """Normalised WebVTT: UTF-8, sorted, markup stripped, a blank line never inside a cue."""
    out = ["WEBVTT", ""]
    for c in cues:
        text = "\n".join(ln for ln in c.text.split("\n") if ln.strip()) or " "
        out += [f"{_vtt_time(c.start)} --> {_vtt_time(c.end)}", text.replace("-->", "->"), ""]
    return "\n".join(out)
