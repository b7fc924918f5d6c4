"""Tesseract TSV words as text lines, and a line's language by script (the reading half of on-screen text OCR).

* ``lines_from_tsv``: words (TSV level 5) with confidence >= ``WORD_MIN_CONF`` are grouped into lines by geometry
  (vertical overlap >= 0.5 of the smaller height and a horizontal gap < 2.5 line heights), not by Tesseract's block
  numbers: sparse-text modes split lines into blocks. Lines without >= 2 letters/digits, mostly punctuation, or
  under the minimum confidence are dropped; short lines (< 4 letters/digits) need ``SHORT_MIN_CONF``.
* ``text_language``: by Unicode script; Latin is called English only when English stop words appear; Han without
  kana is ambiguous (zh/ja) and left as script ``Hani``.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

WORD_MIN_CONF = 30.0  # words below are background clutter read as glyphs (measured: real words 60-97 on the test titles)
SHORT_MIN_CONF = 80.0  # clutter read as 2-3 glyphs scores 55-75 on busy pictures; real short words ("CAST", "25") 90+

_EN_STOP = frozenset("the a an and or of to in on at for with by is are was were be been it this that you i we he she they my your our not "
                     "no do did what where when who how all from as but have has had will would can there here".split())


def _script_of(ch: str) -> str | None:
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "Hang"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
        return "Kana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "Hani"
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for key, code in (("LATIN", "Latn"), ("CYRILLIC", "Cyrl"), ("GREEK", "Grek"), ("ARABIC", "Arab"), ("HEBREW", "Hebr"), ("THAI", "Thai"),
                      ("DEVANAGARI", "Deva")):
        if name.startswith(key):
            return code
    return "Zyyy"


def text_language(text: str) -> tuple[str | None, str]:
    """(ISO 639-1 or None, ISO 15924 script): Hangul -> ko, kana -> ja (script Jpan), Han only -> (None, Hani),
    Latin -> en when English stop words are present else (None, Latn); others: script only; no letters: (None, Zyyy)."""
    counts: dict[str, int] = {}
    for ch in text:
        s = _script_of(ch)
        if s:
            counts[s] = counts.get(s, 0) + 1
    if not counts:
        return None, "Zyyy"
    if counts.get("Hang", 0) >= max(1, 0.3 * sum(counts.values())):
        return "ko", "Hang"
    if counts.get("Kana", 0):
        return "ja", "Jpan"
    top = max(counts, key=counts.get)
    if top == "Hani":
        return None, "Hani"
    if top == "Latn":
        words = re.findall(r"[a-z']+", text.casefold())
        return ("en" if any(w in _EN_STOP for w in words) else None), "Latn"
    return None, top


def _is_cjk(ch: str) -> bool:
    return _script_of(ch) in ("Kana", "Hani")


def _join(words: list[str]) -> str:
    out = ""
    for wd in words:
        out += wd if out and _is_cjk(out[-1]) and _is_cjk(wd[0]) else ((" " if out else "") + wd)
    return out


def _good(text: str, conf: float) -> bool:
    """>= 2 letters/digits making >= 60 % of the visible characters; a short line (< 4) needs confidence >= SHORT_MIN_CONF."""
    alnum = sum(ch.isalnum() and ch not in "ー〜" for ch in text)
    visible = sum(not ch.isspace() for ch in text)
    return alnum >= 2 and alnum >= 0.6 * visible and (alnum >= 4 or conf >= SHORT_MIN_CONF)


def lines_from_tsv(tsv: str, W: int, H: int, min_conf: float) -> list[dict]:  # noqa: N803
    """Lines of one TSV: {text, confidence, x, y, w, h (0-1 of W x H), words}, top to bottom."""
    words = []
    for row in tsv.splitlines()[1:]:
        p = row.split("\t")
        if len(p) < 12 or p[0] != "5" or not p[11].strip():
            continue
        conf = float(p[10])
        if conf < WORD_MIN_CONF:
            continue
        x, y, w, h = (int(v) for v in p[6:10])
        words.append({"x": x, "y": y, "w": w, "h": h, "conf": conf, "text": p[11].strip()})
    parent = list(range(len(words)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(words):  # same line: vertical overlap >= half the smaller height, horizontal gap < 2.5 heights
        for j in range(i + 1, len(words)):
            b = words[j]
            overlap = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            gap = max(b["x"] - (a["x"] + a["w"]), a["x"] - (b["x"] + b["w"]))
            if overlap >= 0.5 * min(a["h"], b["h"]) and gap < 2.5 * max(a["h"], b["h"]):
                parent[root(i)] = root(j)
    groups: dict[int, list[dict]] = {}
    for i, wd in enumerate(words):
        groups.setdefault(root(i), []).append(wd)
    lines = list(groups.values())
    out = []
    for ln in lines:
        ln.sort(key=lambda d: d["x"])
        text = _join([v["text"] for v in ln]).strip(" |_~=»«`")
        conf = float(np.mean([v["conf"] for v in ln]))
        if conf < min_conf or not _good(text, conf):
            continue
        x0, y0 = min(v["x"] for v in ln), min(v["y"] for v in ln)
        x1, y1 = max(v["x"] + v["w"] for v in ln), max(v["y"] + v["h"] for v in ln)
        out.append({"text": text, "confidence": round(conf, 2), "x": x0 / W, "y": y0 / H, "w": (x1 - x0) / W, "h": (y1 - y0) / H,
                    "words": [{"text": v["text"], "confidence": v["conf"]} for v in ln]})
    out.sort(key=lambda d: (d["y"], d["x"]))
    return out
