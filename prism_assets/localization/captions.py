"""Caption formats beyond SRT/VTT/ASS, through ttconv: TTML/IMSC 1.x/DFXP (.ttml, .dfxp, .xml), SCC
(CEA-608, .scc) and EBU-STL (.stl), read into the one cue model of subtitles.py (so the same QC rules
apply to them).

Why ttconv (https://github.com/sandflow/ttconv, BSD-2, maintained by the IMSC editors, no
dependencies): it reads every format we are sent (TTML/IMSC 1.0.1/1.1, SCC, EBU-STL, SRT, WebVTT)
into one timed-text model and resolves it into ISDs (what is on screen between two significant
times, per region, timing inherited and offsets applied as a player would). pycaption reads
DFXP/SCC/SRT/WebVTT but not EBU-STL, and its SCC timing and IMSC support are weaker; pysubs2 reads
SRT/ASS/WebVTT/MicroDVD/TMP but no TTML, SCC or STL. SRT/VTT/ASS keep our own parser (subtitles.py),
which already knows the delivery quirks (legacy encodings, ASS styles that may overlap).

How a document becomes cues: the ISD sequence is walked; each paragraph (`p`) on screen is keyed by
its region and text, and a key present in consecutive ISDs is one cue from its first to its last
ISD. Cues keep their region (`region`: TTML region id with origin/extent, SCC/STL rows). What the
format says about the track is kept: `language` (TTML `xml:lang`, EBU-STL GSI language code),
`forced` (IMSC `itts:forcedDisplay="true"` on every cue; ttconv's model drops it, so it is read
from the XML), `sdh` (SCC is CEA-608 closed captioning: True; TTML: a `ttm:role` of `caption` or `sound`
on the document or its content (TTML's roles for captions and sound descriptions), or a head
`ttm:title`/`ttm:desc` naming SDH/closed captions/hard of hearing; ttconv drops both, read from the XML).
Where each was read is kept in `Subtitles.notes`.

A file that ttconv cannot read raises `SubtitleError` with one line (the library's own message
first line), never a traceback.
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

from .subtitles import MAX_CUES, Cue, SubtitleError, Subtitles

ITTS = "http://www.w3.org/ns/ttml/profile/imsc1#styling"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TT_NS = "http://www.w3.org/ns/ttml"
TTM_NS = "http://www.w3.org/ns/ttml#metadata"
SDH_ROLES = frozenset({"caption", "sound"})  # TTML ttm:role values that only captions for the deaf and hard of hearing carry
SDH_WORDS = re.compile(r"(?<![a-z])(sdh|cc|closed[ -]?captions?|hard[ -]of[ -]hearing|hearing[ -]impaired)(?![a-z])", re.I)
MAX_ISDS = 4 * MAX_CUES  # a caption document with more states than this is not captions
log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def _length(x) -> str:
    return f"{round(float(x.value), 2):g}{x.units.value}"


def _region_label(region) -> str | None:
    from ttconv.style_properties import StyleProperties

    rid = region.get_id()
    origin = region.get_style(StyleProperties.Origin)
    extent = region.get_style(StyleProperties.Extent)
    where = ""
    if origin is not None:
        where += f" origin {_length(origin.x)},{_length(origin.y)}"
    if extent is not None:
        where += f" extent {_length(extent.width)}x{_length(extent.height)}"
    label = (rid or "") + where
    return label.strip() or None


def _paragraphs(element):
    from ttconv import model

    if isinstance(element, model.P):
        yield element
        return
    for child in element:
        yield from _paragraphs(child)


def _text(element) -> str:
    from ttconv import model

    if isinstance(element, model.Text):
        return element.get_text()
    if isinstance(element, model.Br):
        return "\n"
    return "".join(_text(c) for c in element)


def _lines(text: str) -> str:
    lines = [re.sub(r"[ \t\u00a0]+", " ", ln).strip() for ln in text.replace("\r", "").split("\n")]
    return "\n".join(ln for ln in lines if ln)


def cues_of_document(doc) -> tuple[list[Cue], list[str]]:
    """Cues of a ttconv ContentDocument, from its ISD sequence."""
    from ttconv.isd import ISD

    sig = ISD.significant_times(doc)
    times = list(sig)
    warnings: list[str] = []
    if len(times) > MAX_ISDS:
        warnings.append(f"{len(times)} caption states: more than {MAX_ISDS}, the rest not read")
        times = times[:MAX_ISDS]
    open_: dict[tuple, list] = {}  # key -> [start, end, text, region]
    cues: list[Cue] = []
    for i, t in enumerate(times):
        end_of_state = times[i + 1] if i + 1 < len(times) else None
        isd = ISD.from_model(doc, t, sig)
        present = set()
        for region in isd.iter_regions():
            rlabel = _region_label(region)
            for p in _paragraphs(region):
                text = _lines(_text(p))
                if not text:
                    continue
                key = (rlabel, text)
                if key in present:
                    continue
                present.add(key)
                if key in open_:
                    open_[key][1] = end_of_state
                else:
                    open_[key] = [t, end_of_state, text, rlabel]
        for key in [k for k in open_ if k not in present]:
            start, end, text, rlabel = open_.pop(key)
            cues.append(_cue(start, end if end is not None else t, text, rlabel))
    for start, end, text, rlabel in open_.values():  # still on screen at the last significant time: no end
        warnings.append(f"a cue at {float(start):.3f} s has no end time: ended there")
        cues.append(_cue(start, end if end is not None else start, text, rlabel))
    return cues, warnings


def _cue(start: Fraction, end: Fraction, text: str, region: str | None) -> Cue:
    return Cue(round(float(start), 3), round(float(end), 3), text, text, None, region)


# -- TTML / IMSC / DFXP -----------------------------------------------------------------------------------
def _forced_share(root) -> tuple[int, int]:
    """(paragraphs shown with itts:forcedDisplay="true", paragraphs) of a TTML tree: on the p, an
    ancestor, or a style it or an ancestor references."""
    attr = f"{{{ITTS}}}forcedDisplay"
    forced_styles = {s.get("{http://www.w3.org/XML/1998/namespace}id") for s in root.iter() if s.tag.endswith("}style") and s.get(attr) == "true"}

    def forced(el) -> bool | None:
        if el.get(attr) in ("true", "false"):
            return el.get(attr) == "true"
        if any(ref in forced_styles for ref in (el.get("style") or "").split()):
            return True
        return None

    total = n = 0

    def walk(el, inherited: bool):
        nonlocal total, n
        here = forced(el)
        f = inherited if here is None else here
        if el.tag.endswith("}p"):
            total += 1
            n += f
            return
        for c in el:
            walk(c, f)

    body = next((e for e in root.iter() if e.tag.endswith("}body")), None)
    if body is not None:
        walk(body, False)
    return n, total


def ttml_sdh(root) -> str | None:
    """Why a TTML document is captions for the deaf and hard of hearing (one line), or None: a `ttm:role`
    of caption/sound anywhere, or head metadata (`ttm:title`, `ttm:desc`) naming SDH / closed captions."""
    for el in root.iter():
        roles = set((el.get(f"{{{TTM_NS}}}role") or "").split())
        if roles & SDH_ROLES:
            return f"TTML ttm:role {' '.join(sorted(roles & SDH_ROLES))}"
    head = next((e for e in root if e.tag.endswith("}head")), None)
    for el in head.iter() if head is not None else ():
        if el.tag in (f"{{{TTM_NS}}}title", f"{{{TTM_NS}}}desc") and el.text and SDH_WORDS.search(el.text):
            return f"TTML {el.tag.split('}')[1]} {el.text.strip()[:60]!r}"
    return None


def parse_ttml(text: str) -> Subtitles:
    from ttconv.imsc.reader import to_model

    text = re.sub(r"^(\s*<\?xml[^>]*?)\s+encoding=[\"'][^\"']*[\"']", r"\1", text)  # already decoded
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise SubtitleError(f"TTML is not well-formed XML: {exc}") from None
    if not root.tag.endswith("}tt") and root.tag != "tt":
        raise SubtitleError(f"an XML file whose root is <{root.tag.split('}')[-1]}>, not TTML <tt>")
    if root.tag == "tt" or not root.tag.startswith(f"{{{TT_NS}"):
        raise SubtitleError("TTML without the TTML namespace (http://www.w3.org/ns/ttml): not read")
    try:
        doc = _quiet(to_model, ET.ElementTree(root))
    except Exception as exc:  # noqa: BLE001 - the library's error, in one line
        raise SubtitleError(f"TTML not read by ttconv: {_one_line(exc)}") from None
    if doc is None:
        raise SubtitleError("TTML not read by ttconv (no document)")
    cues, warnings = _cues_or_error(doc, "TTML")
    forced_n, total = _forced_share(root)
    lang = root.get(XML_LANG) or None
    forced, sdh = bool(total) and forced_n == total, ttml_sdh(root)
    notes = (["IMSC itts:forcedDisplay=true on every cue"] if forced else []) + ([sdh] if sdh else [])
    return Subtitles("ttml", "utf-8", cues, warnings, language=lang, forced=forced, sdh=True if sdh else None, notes=notes)


# -- SCC (CEA-608) ----------------------------------------------------------------------------------------
def parse_scc(text: str) -> Subtitles:
    from ttconv.scc.reader import to_model

    if not text.lstrip().startswith("Scenarist_SCC"):
        raise SubtitleError("SCC without the 'Scenarist_SCC V1.0' header")
    try:
        doc = _quiet(to_model, text)
    except Exception as exc:  # noqa: BLE001
        raise SubtitleError(f"SCC not read by ttconv: {_one_line(exc)}") from None
    cues, warnings = _cues_or_error(doc, "SCC")
    return Subtitles("scc", "ascii", cues, warnings, language=None, forced=None, sdh=True, notes=["SCC: CEA-608 closed captions"])


# -- EBU-STL ----------------------------------------------------------------------------------------------
STL_LANGUAGES = {0x09: "en", 0x0F: "fr", 0x08: "de", 0x0A: "es", 0x15: "it", 0x1D: "nl", 0x28: "sv", 0x07: "da", 0x1E: "no",
                 0x27: "fi", 0x21: "pt", 0x20: "pl", 0x1B: "hu", 0x06: "cs", 0x56: "ru", 0x57: "el", 0x45: "tr", 0x69: "ja",
                 0x75: "zh", 0x6A: "ko", 0x4E: "ar", 0x49: "he"}  # EBU Tech 3264 Appendix 3 (the common ones)


def parse_stl(data: bytes) -> Subtitles:
    from ttconv.stl.reader import to_model

    if len(data) < 1024 + 128:
        raise SubtitleError(f"EBU-STL of {len(data)} bytes: shorter than the GSI block and one TTI block")
    try:
        doc = _quiet(to_model, io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise SubtitleError(f"EBU-STL not read by ttconv: {_one_line(exc)}") from None
    cues, warnings = _cues_or_error(doc, "EBU-STL")
    lang = None
    try:
        lang = STL_LANGUAGES.get(int(data[14:16].decode("ascii"), 16))
    except (ValueError, UnicodeDecodeError):
        pass
    return Subtitles("stl", "iso6937", cues, warnings, language=lang, forced=None, sdh=None)


def _cues_or_error(doc, what: str) -> tuple[list[Cue], list[str]]:
    try:
        return cues_of_document(doc)
    except Exception as exc:  # noqa: BLE001
        raise SubtitleError(f"{what} not timed by ttconv: {_one_line(exc)}") from None


def _quiet(fn, *args):
    """ttconv logs every oddity of a file at ERROR/WARNING; those are not ours to print."""
    logger = logging.getLogger("ttconv")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return fn(*args)
    finally:
        logger.setLevel(level)


def parse_caption(data: bytes | str, fmt: str) -> Subtitles:
    """Cues of a TTML (`text`), SCC (`text`) or EBU-STL (`bytes`) document."""
    if fmt == "stl":
        return parse_stl(data if isinstance(data, bytes) else data.encode("latin-1"))
    if fmt == "ttml":
        return parse_ttml(data)
    if fmt == "scc":
        return parse_scc(data)
    raise SubtitleError(f"unknown caption format {fmt!r}")
