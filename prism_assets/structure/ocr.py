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
* OCR (``ocr_frames``, ``ocr_read.read_frames``): each frame's top-hats (``tophat``, strokes dark on white; light
  text always, dark text too on a light picture) are cut into text blocks (``ocr_regions.text_blocks``); a block
  whose ink is unchanged at the same place since it was read reuses that read (``ocr_regions.same_text``); only new
  blocks are read, upscaled 2x (Lanczos) when the picture is under ``upscale_below`` px (pipeline JPEGs are <= 640
  px) so 24-30 px text on a 360-px picture reaches the ~30-60 px cap height Tesseract's LSTM is trained on, with
  ``crop_psm`` (3: automatic layout; ``psm`` 11 for a whole frame), by Tesseract models kept loaded
  (``ocr_engine``: tesserocr worker processes, else the ``tesseract`` binary on batches of images),
  OMP_THREAD_LIMIT=1, ``timeout_s`` per image (a timeout skips the frames that read it, with a warning). Words are
  grouped into lines by geometry (``ocr_lines.lines_from_tsv``) and mapped back to frame coordinates.
  ``crop=False, reuse=False, engine="cli", batch=1`` is the previous path: the whole frame, one ``tesseract``
  process per frame.
* Language (``text_language``): by Unicode script; Latin is called English only when English stop words
  appear; Han without kana is ambiguous (zh/ja) and left as script ``Hani``.

Evidence (prism_assets_tests/support/text_media.py titles, 640x360 frames, 2 shared CPU cores): on whole frames
psm 11 (sparse text) and psm 3 found the slate, the cards, the burned-in lines and the Korean/Japanese lines; psm 6
(one uniform block) merges text over busy pictures with garbage. On blocks (benchmarks/results/ocr_speed.json: two
titles, and real footage under lower thirds, signs and a logo; character accuracy and CPU s, min of 2 runs):
psm 6 0.998/0.950/0.739 for 3.1/2.0/26.7 s, psm 3 0.996/0.931/0.714 for 2.3/0.9/12.0 s, psm 11 0.991/0.906/0.732
for 2.5/1.0/19.6 s; the previous path 0.975/0.912/0.480 for 6.1/4.2/36.2 s. psm 6 recognises every block, clutter
included; psm 3's layout analysis drops most clutter blocks before recognition, at the price of a few real ones:
half the CPU of psm 6 for 1-2.5 points, hence ``crop_psm=3`` (6 where every line counts more than time).
Garbage lines on busy backgrounds (mandelbrot, colour bars) come with confidence < 50, the real lines with 80-96,
hence ``min_confidence=55``. The traineddata is Debian's (tessdata_fast: eng.traineddata has the same sha256);
tessdata's eng (integer "best" + legacy, 23 MB) read 0.835 against 0.834 of the characters on the same media (blocks
at psm 6) for 8 % more CPU: not worth a download. Old and new paths side by side: benchmarks/results/ocr_speed.json.

Limits: Tesseract is not a scene-text reader: stylised, rotated, small (< ~10 px cap height in the 640-px
picture) or low-contrast text is missed; CJK vertical text is not read; language is guessed from the script.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import ocr_engine as E
from .ocr_lines import SHORT_MIN_CONF, WORD_MIN_CONF, text_language  # noqa: F401 (re-exported: the module's API)
from .ocr_read import read_frames
from .ocr_regions import tophat  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

OCR_COLUMNS = ["frame", "t_s", "line", "text", "language", "script", "confidence", "x", "y", "w", "h", "luma_mean", "luma_std"]
LANG_PACKS = {"eng": "tesseract-ocr-eng", "kor": "tesseract-ocr-kor", "jpn": "tesseract-ocr-jpn", "chi_sim": "tesseract-ocr-chi-sim"}


TESSERACT_CODES = {"en": "eng", "ko": "kor", "ja": "jpn", "zh": "chi_sim", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por",
                   "ru": "rus", "ar": "ara", "hi": "hin", "th": "tha", "nl": "nld", "sv": "swe", "pl": "pol", "tr": "tur"}

OcrError = E.EngineError  # the OCR engine cannot run (binary, library or language pack missing, broken install); str() is one line


@dataclass(frozen=True)
class OcrConfig:
    languages: tuple[str, ...] = ("eng", "kor", "jpn")
    every_s: float = 1.0          # at most one OCR'd frame per this many seconds
    max_frames: int = 900         # per title: the bound for long titles
    min_confidence: float = 55.0  # drop lines whose mean word confidence is below
    prefilter: float = 0.15       # text_likelihood below this: not OCR'd
    timeout_s: float = 20.0       # per image read; a timeout skips the frames that read it, with a warning
    workers: int = 0              # 0 = CPU count
    upscale_below: int = 1000     # longest side under this: upscale 2x before OCR
    psm: int = 11                 # Tesseract page segmentation mode for whole frames (11: sparse text)
    crop_psm: int = 3             # ... for text blocks (3: automatic layout; see the module docstring)
    tophat_px: int = 13           # white top-hat square (px at 640-px scale) before OCR; 0 = plain greyscale
    binary: str = "tesseract"
    languages_by_title: bool = True  # OCR with eng + those of `languages` the title speaks or subtitles (see for_title)
    engine: str = "auto"          # auto | tesserocr (kept worker processes) | cli (the binary, batches) | inproc (see ocr_engine)
    crop: bool = True             # read the text blocks of a frame, not the whole frame
    reuse: bool = True            # a block unchanged at its place since it was read reuses that read
    reuse_gap_s: float = 10.0     # ... while it is seen again within this many seconds
    batch: int = 8                # images per engine call (cli: per process)

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


def _binary(cfg: OcrConfig) -> str | None:
    """The tesseract binary's path; None when it is missing and the engine does not need it."""
    exe = shutil.which(cfg.binary)
    if not exe and (cfg.engine == "cli" or E.resolve(cfg.engine) == "cli"):
        raise OcrError(f"{cfg.binary} not found: install tesseract-ocr")
    return exe


def _sha16(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _engine_info(engine: str, exe: str | None, languages: tuple[str, ...], psm: int, crop_psm: int | None, crop: bool, reuse: bool) -> dict:
    tessdata = E.tessdata_dir(exe)
    if engine == "cli":
        _, version, leptonica, available = E.cli_langs(exe)
        api = "cli"
    else:
        v = E.tesserocr_versions()
        version, leptonica = v["tesseract"], v["leptonica"]
        api = f"tesserocr {v['tesserocr']}" + (" in-process" if engine == "inproc" else "")
        available = frozenset(p.name.removesuffix(".traineddata") for p in Path(tessdata).glob("*.traineddata")) if tessdata else frozenset()
    info = {"engine": "tesseract", "version": version, "leptonica": leptonica, "languages": list(languages), "traineddata": {}, "psm": psm,
            "crop_psm": crop_psm,
            "tessdata": tessdata, "api": api, "oem": "lstm", "crop": crop, "reuse": reuse}
    for lang in languages:
        if lang not in available:
            raise OcrError(f"tesseract language pack '{lang}' missing ({LANG_PACKS.get(lang, 'tesseract-ocr-' + lang.replace('_', '-'))})")
        p = Path(tessdata) / f"{lang}.traineddata" if tessdata else None
        if p is None or not p.exists():
            info["traineddata"][lang] = {"path": str(p) if p else None, "bytes": None, "sha256": None}
            continue
        info["traineddata"][lang] = {"path": str(p), "bytes": p.stat().st_size, "sha256": _sha16(p)}
    return info


def engine_info(cfg: OcrConfig | None = None) -> dict:
    """The engine as a model record: engine, version (of the libtesseract that reads), leptonica, api (tesserocr <v> | cli),
    languages, traineddata (path, bytes, sha256[:16]), psm (whole frames), crop_psm (text blocks), oem, tessdata, crop, reuse."""
    cfg = cfg or OcrConfig()
    exe = _binary(cfg)
    return dict(_engine_info(E.resolve(cfg.engine, exe), exe, tuple(cfg.languages), cfg.psm, cfg.crop_psm if cfg.crop else None, cfg.crop, cfg.reuse))


_READERS: dict[tuple, object] = {}  # the kept engines, oldest first
_READERS_LOCK = threading.Lock()
KEPT_READERS = 2  # ~73 MB per loaded eng+kor+jpn model, one per worker


def _reader(engine: str, exe: str | None, tessdata: str | None, languages: tuple[str, ...]):
    """One reader per (engine, languages), kept for the process: its models stay loaded between titles; past
    KEPT_READERS language sets the oldest is closed (its worker processes end)."""
    key = (engine, exe, tessdata, languages)
    with _READERS_LOCK:
        if key not in _READERS:
            _READERS[key] = E.make_reader(engine, exe, tessdata, languages)
            while len(_READERS) > KEPT_READERS:
                _READERS.pop(next(iter(_READERS))).close()
        return _READERS[key]


def reader_for(cfg: OcrConfig):
    exe = _binary(cfg)
    return _reader(E.resolve(cfg.engine, exe), exe, E.tessdata_dir(exe), tuple(cfg.languages))


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

# ------------------------------------------------------------------------------------------ OCR


def ocr_image(jpeg: bytes, cfg: OcrConfig | None = None) -> list[dict]:
    """Lines of one picture: {text, confidence (mean word conf 0-100), x, y, w, h (0-1 of the picture), words}."""
    cfg = cfg or OcrConfig()
    frames, warnings, _ = read_frames([(0, 0.0, jpeg)], replace(cfg, reuse=False, workers=1), reader_for(cfg))
    if warnings:
        raise OcrError(warnings[0])
    return frames[0]["lines"]


def ocr_frames(frames: list[tuple[int, float, bytes]], cfg: OcrConfig | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """OCR (frame, t_s, jpeg) triples: a DataFrame of lines (OCR_COLUMNS) and warnings (timeouts, failures).
    df.attrs["ocr_read"]: the read counts (ocr_read.ReadStats: frames, blocks, reads, reused blocks, pixels read)."""
    cfg = cfg or OcrConfig()
    engine_info(cfg)  # fail early, in one line, on a missing binary, library or language pack
    out, warnings, stats = read_frames(frames, cfg, reader_for(cfg), progress)
    rows = []
    for fr in out:
        for i, ln in enumerate(fr["lines"]):
            lang, script = text_language(ln["text"])
            rows.append({"frame": int(fr["frame"]), "t_s": float(fr["t_s"]), "line": i, "text": ln["text"], "language": lang, "script": script,
                         "confidence": ln["confidence"], "x": ln["x"], "y": ln["y"], "w": ln["w"], "h": ln["h"],
                         "luma_mean": fr["luma_mean"], "luma_std": fr["luma_std"]})
    for w in warnings:
        log.warning("ocr: %s", w)
    log.info("ocr: %s", stats.as_dict())
    df = pd.DataFrame(rows, columns=OCR_COLUMNS)
    df = df.astype({"frame": "int64", "t_s": "float64", "line": "int64", "confidence": "float64", "x": "float64", "y": "float64",
                    "w": "float64", "h": "float64", "luma_mean": "float64", "luma_std": "float64"})
    df = df.sort_values(["t_s", "line"]).reset_index(drop=True)
    df.attrs["ocr_read"] = stats.as_dict()
    return df, warnings
