"""On-screen text: Tesseract OCR of sampled frames (the JPEGs of the one visual pass), grouped into lines.

Method
------
* Prefilter (``text_likelihood``): a cheap numpy score so frames without text are never OCR'd. Text is rows
  of thin strokes: along a row, a strong rising luma edge followed within ``2..10 px`` by a strong falling
  edge (or the reverse: dark text on light) is a *stroke pair*. The picture is cut into 12-px horizontal
  bands; a band's density is its stroke pairs per 100 px of width per row. The score is the highest band
  density mapped to 0..1 (``1 - exp(-d / 6)``). Flat pictures score 0; busy textures score too, so it is a
  recall-first prefilter, never a text detector.
* Frame choice (``select_frames``): drop frames under ``prefilter``; keep the best-scoring frame per
  ``every_s``; past ``max_frames`` (long titles), cut the timeline into ``max_frames`` equal spans and keep
  each span's best frame, so the bound keeps both spread and likelihood.
* OCR (``ocr_image``): one ``tesseract stdin stdout -l eng+kor+jpn --psm N tsv`` per frame (OMP_THREAD_LIMIT=1,
  ``timeout_s`` per image; a timeout skips the frame with a warning). Frames whose longest side is under
  ``upscale_below`` px (pipeline JPEGs are <= 640 px) are upscaled 2x (Lanczos) and OCR'd as greyscale PNG,
  so 24-30 px text on a 360-px picture reaches the ~30-60 px cap height Tesseract's LSTM is trained on.
  Words (TSV level 5) are grouped into lines by geometry (vertical overlap >= 0.5 of the smaller height and
  a horizontal gap < 2.5 line heights), not by Tesseract's block numbers: sparse-text modes split lines into
  blocks. Lines without >= 2 letters/digits, mostly punctuation, or under ``min_confidence`` are dropped.
* Language (``text_language``): by Unicode script; Latin is called English only when English stop words
  appear; Han without kana is ambiguous (zh/ja) and left as script ``Hani``.

Evidence (tests/support/text_media.py titles, 640x360 frames, 2 shared CPU cores): psm 11 (sparse text) and
psm 3 found the slate, the cards, the burned-in lines and the Korean/Japanese lines; psm 6 (one uniform
block) merges text over busy pictures with garbage. psm 11 is the default (it also reads isolated words such
as "CAST"). Mean OCR time is ~0.6-1.5 s per frame with three languages. Garbage lines on busy backgrounds
(mandelbrot, colour bars) come with confidence < 50, the real lines with 80-96, hence ``min_confidence=55``.

Limits: Tesseract is not a scene-text reader: stylised, rotated, small (< ~10 px cap height in the 640-px
picture) or low-contrast text is missed; CJK vertical text is not read; language is guessed from the script.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

log = logging.getLogger(__name__)

OCR_COLUMNS = ["frame", "t_s", "line", "text", "language", "script", "confidence", "x", "y", "w", "h", "luma_mean", "luma_std"]
WORD_MIN_CONF = 30.0  # words below are background clutter read as glyphs (measured: real words 60-97 on the test titles)
SHORT_MIN_CONF = 80.0  # clutter read as 2-3 glyphs scores 55-75 on busy pictures; real short words ("CAST", "25") 90+
LANG_PACKS = {"eng": "tesseract-ocr-eng", "kor": "tesseract-ocr-kor", "jpn": "tesseract-ocr-jpn", "chi_sim": "tesseract-ocr-chi-sim"}


TESSERACT_CODES = {"en": "eng", "ko": "kor", "ja": "jpn", "zh": "chi_sim", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por",
                   "ru": "rus", "ar": "ara", "hi": "hin", "th": "tha", "nl": "nld", "sv": "swe", "pl": "pol", "tr": "tur"}


class OcrError(RuntimeError):
    """The OCR engine cannot run (binary or language pack missing, broken install). str() is one line."""


@dataclass(frozen=True)
class OcrConfig:
    languages: tuple[str, ...] = ("eng", "kor", "jpn")
    every_s: float = 1.0          # at most one OCR'd frame per this many seconds
    max_frames: int = 900         # per title: the bound for long titles
    min_confidence: float = 55.0  # drop lines whose mean word confidence is below
    prefilter: float = 0.15       # text_likelihood below this: not OCR'd
    timeout_s: float = 20.0       # per image; a timeout skips the frame with a warning
    workers: int = 0              # 0 = CPU count
    upscale_below: int = 1000     # longest side under this: upscale 2x before OCR
    psm: int = 11                 # Tesseract page segmentation mode (11: sparse text)
    tophat_px: int = 13           # white top-hat square (px at 640-px scale) before OCR; 0 = plain greyscale
    binary: str = "tesseract"
    languages_by_title: bool = True  # OCR with eng + those of `languages` the title speaks or subtitles (see for_title)

    @classmethod
    def from_config(cls, cfg: dict | None) -> OcrConfig:
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown OCR config key(s) {unknown}; known: {sorted(known)}")
        if "languages" in cfg:
            langs = cfg["languages"]
            cfg["languages"] = tuple(langs.split("+")) if isinstance(langs, str) else tuple(langs)
        return cls(**cfg)

    def for_title(self, iso_codes) -> OcrConfig:
        """The config for one title: with `languages_by_title`, English plus the configured languages the title
        has (ISO 639-1 codes of its audio, subtitles and sidecar): every extra Tesseract language costs about
        as much again per frame, and a Korean model reading an English-only title adds clutter, not text."""
        if not self.languages_by_title:
            return self
        codes = {str(c).split("-")[0].lower() for c in iso_codes if c}
        wanted = {TESSERACT_CODES.get(c, c) for c in codes}  # ISO 639-1, or already a Tesseract/639-2 code (kor, jpn)
        keep = tuple(lang for lang in self.languages if lang == "eng" or lang in wanted)
        return replace(self, languages=keep or self.languages[:1])

    def n_workers(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def _env() -> dict:
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def _binary(cfg: OcrConfig) -> str:
    exe = shutil.which(cfg.binary)
    if not exe:
        raise OcrError(f"{cfg.binary} not found: install tesseract-ocr")
    return exe


@functools.lru_cache(maxsize=8)
def _engine_info(exe: str, languages: tuple[str, ...], psm: int) -> dict:
    try:
        ver = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, env=_env())
        lst = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30, env=_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OcrError(f"tesseract does not run: {type(e).__name__}: {e}".splitlines()[0]) from None
    text = ver.stdout + ver.stderr
    m = re.search(r"tesseract\s+v?(\S+)", text)
    lep = re.search(r"leptonica-(\S+)", text)
    if ver.returncode or not m:
        raise OcrError(f"tesseract --version failed (rc {ver.returncode})")
    out = (lst.stdout + lst.stderr).splitlines()
    where = re.search(r'"([^"]+)"', out[0]) if out else None
    tessdata = Path(where.group(1)) if where else None
    available = {s.strip() for s in out[1:] if s.strip()}
    info = {"engine": "tesseract", "version": m.group(1), "leptonica": lep.group(1) if lep else None, "languages": list(languages),
            "traineddata": {}, "psm": psm, "tessdata": str(tessdata) if tessdata else None}
    for lang in languages:
        if lang not in available:
            raise OcrError(f"tesseract language pack '{lang}' missing ({LANG_PACKS.get(lang, 'tesseract-ocr-' + lang.replace('_', '-'))})")
        p = tessdata / f"{lang}.traineddata" if tessdata else None
        if p is None or not p.exists():
            info["traineddata"][lang] = {"path": str(p) if p else None, "bytes": None, "sha256": None}
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        info["traineddata"][lang] = {"path": str(p), "bytes": p.stat().st_size, "sha256": h.hexdigest()[:16]}
    return info


def engine_info(cfg: OcrConfig | None = None) -> dict:
    """The engine as a model record: version, leptonica, languages, traineddata (path, bytes, sha256[:16]), psm."""
    cfg = cfg or OcrConfig()
    return dict(_engine_info(_binary(cfg), tuple(cfg.languages), cfg.psm))


# ------------------------------------------------------------------------------------------ prefilter


def _grey(jpeg: bytes, draft: tuple[int, int] | None = None) -> np.ndarray:
    im = Image.open(io.BytesIO(jpeg))
    if draft:
        im.draft("L", draft)
    return np.asarray(im.convert("L"), dtype=np.int16)


def text_likelihood(jpeg: bytes) -> float:
    """0..1: density of thin-stroke edge pairs in the densest 12-px row band (see module docstring)."""
    g = _grey(jpeg)
    if g.shape[1] > 640:  # score at <= 640 px wide so densities are comparable
        g = g[:, :: int(np.ceil(g.shape[1] / 640))]
    d = np.diff(g, axis=1)
    strong = 40
    rise, fall = d > strong, d < -strong
    pair = np.zeros_like(rise)
    for k in range(2, 11):  # a stroke 2..10 px wide: an edge then the opposite edge k px later
        pair[:, :-k] |= (rise[:, :-k] & fall[:, k:]) | (fall[:, :-k] & rise[:, k:])
    rows = pair.sum(axis=1).astype(np.float64)
    band = 12
    n = len(rows) // band
    if n == 0:
        return 0.0
    dens = rows[: n * band].reshape(n, band).mean(axis=1) / g.shape[1] * 100.0
    return float(1.0 - np.exp(-dens.max() / 6.0))


def select_frames(index: pd.DataFrame, cfg: OcrConfig | None = None) -> pd.DataFrame:
    """From rows (frame, t_s, score) keep at most one per every_s (the best score) and at most max_frames, in time order."""
    cfg = cfg or OcrConfig()
    cols = list(index.columns)
    df = index[index["score"] >= cfg.prefilter].copy()
    if df.empty:
        return df.reset_index(drop=True)
    df["_bin"] = np.floor(df["t_s"].to_numpy(dtype=float) / max(cfg.every_s, 1e-6)).astype(np.int64)
    df = df.sort_values(["score", "t_s"], ascending=[False, True]).drop_duplicates("_bin").sort_values("t_s")
    if len(df) > cfg.max_frames:
        t = df["t_s"].to_numpy(dtype=float)
        lo, hi = t.min(), t.max() + 1e-9
        df["_span"] = np.minimum(((t - lo) / (hi - lo) * cfg.max_frames).astype(np.int64), cfg.max_frames - 1)
        best = df.sort_values(["score", "t_s"], ascending=[False, True]).drop_duplicates("_span")
        rest = df.drop(best.index).sort_values("score", ascending=False)
        df = pd.concat([best, rest.head(cfg.max_frames - len(best))]).sort_values("t_s")
    return df[cols].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ language

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


# ------------------------------------------------------------------------------------------ OCR


def _minmax(a: np.ndarray, k: int, op) -> np.ndarray:
    """Separable k x k min or max filter (edge-padded)."""
    r = k // 2
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        a = op(np.lib.stride_tricks.sliding_window_view(np.pad(a, pad, mode="edge"), k, axis=axis), axis=-1)
    return a


def tophat(grey: np.ndarray, k: int) -> np.ndarray:
    """Bright thin strokes on anything: grey - opening(grey) with a k x k square, stretched to 0..255 and inverted
    (dark text on white, what Tesseract binarises best). A light picture (median > 160) is inverted first (dark text)."""
    g = grey.astype(np.float32)
    if np.median(g) > 160:
        g = 255.0 - g
    th = g - _minmax(_minmax(g, k, np.min), k, np.max)
    th *= 255.0 / max(40.0, float(np.percentile(th, 99.5)))
    return (255.0 - np.clip(th, 0, 255)).astype(np.uint8)


def _prepare(jpeg: bytes, cfg: OcrConfig) -> tuple[bytes, int, int, float, float]:
    im = Image.open(io.BytesIO(jpeg)).convert("L")
    w, h = im.size
    a = np.asarray(im)
    if cfg.tophat_px > 0:
        k = max(3, int(round(cfg.tophat_px * max(w, h) / 640)) | 1)
        im = Image.fromarray(tophat(a, k))
    if max(w, h) < cfg.upscale_below:
        im = im.resize((w * 2, h * 2), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), im.size[0], im.size[1], float(a.mean()), float(a.std())


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


def _lines_from_tsv(tsv: str, W: int, H: int, min_conf: float) -> list[dict]:  # noqa: N803
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


def _ocr(jpeg: bytes, cfg: OcrConfig, exe: str) -> tuple[list[dict], float, float]:
    png, W, H, lm, ls = _prepare(jpeg, cfg)  # noqa: N806
    cmd = [exe, "stdin", "stdout", "-l", "+".join(cfg.languages), "--psm", str(cfg.psm), "tsv"]
    r = subprocess.run(cmd, input=png, capture_output=True, timeout=cfg.timeout_s, env=_env())
    if r.returncode:
        raise OcrError(f"tesseract failed (rc {r.returncode}): {r.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    return _lines_from_tsv(r.stdout.decode("utf-8", errors="replace"), W, H, cfg.min_confidence), lm, ls


def ocr_image(jpeg: bytes, cfg: OcrConfig | None = None) -> list[dict]:
    """Lines of one picture: {text, confidence (mean word conf 0-100), x, y, w, h (0-1 of the picture), words}."""
    cfg = cfg or OcrConfig()
    return _ocr(jpeg, cfg, _binary(cfg))[0]


def ocr_frames(frames: list[tuple[int, float, bytes]], cfg: OcrConfig | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """OCR (frame, t_s, jpeg) triples in parallel: a DataFrame of lines (OCR_COLUMNS) and warnings (timeouts, failures)."""
    cfg = cfg or OcrConfig()
    exe = _binary(cfg)
    engine_info(cfg)  # fail early, in one line, on a missing language pack
    rows, warnings = [], []
    total = len(frames)
    every = max(1, total // 20)
    with ThreadPoolExecutor(max_workers=cfg.n_workers()) as pool:
        futs = {pool.submit(_ocr, jpeg, cfg, exe): (frame, t) for frame, t, jpeg in frames}
        for done, fut in enumerate(as_completed(futs), 1):
            frame, t = futs[fut]
            try:
                lines, lm, ls = fut.result()
            except subprocess.TimeoutExpired:
                warnings.append(f"frame {frame} ({t:.2f} s): tesseract timed out after {cfg.timeout_s:g} s; skipped")
                lines = []
            except (OcrError, OSError, ValueError) as e:
                warnings.append(f"frame {frame} ({t:.2f} s): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; skipped")
                lines = []
            for i, ln in enumerate(lines):
                lang, script = text_language(ln["text"])
                rows.append({"frame": int(frame), "t_s": float(t), "line": i, "text": ln["text"], "language": lang, "script": script,
                             "confidence": ln["confidence"], "x": ln["x"], "y": ln["y"], "w": ln["w"], "h": ln["h"], "luma_mean": lm, "luma_std": ls})
            if progress and (done % every == 0 or done == total):
                progress(done, total)
    for w in warnings:
        log.warning("ocr: %s", w)
    df = pd.DataFrame(rows, columns=OCR_COLUMNS)
    df = df.astype({"frame": "int64", "t_s": "float64", "line": "int64", "confidence": "float64", "x": "float64", "y": "float64",
                    "w": "float64", "h": "float64", "luma_mean": "float64", "luma_std": "float64"})
    return df.sort_values(["t_s", "line"]).reset_index(drop=True), warnings
