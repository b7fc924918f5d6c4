"""Per-episode fingerprints for the season intro/recap matcher: Chromaprint items for the sound, a
64-bit difference hash per 1/s picture sample for the picture.

Audio: ``fpcalc -raw`` (Chromaprint 1.5, Debian ``libchromaprint-tools``) on the pipeline's 16 kHz
mono PCM WAV of the original audio track; the video is never decoded again.

* Why Chromaprint and not an own spectral fingerprint: its 32-bit items are designed for exactly
  this (the same recording re-encoded, at an arbitrary sub-frame phase, compared by bit error rate);
  it is a maintained C library packaged by Debian, fast (a 45-minute track in ~2-3 s on one core),
  and its granularity is fine enough: one item every 1365 samples at 11025 Hz = 0.1238 s. Measured
  on the generated seasons of ``prism_assets_tests/support/season_media.py`` (AAC 48 kHz -> 16 kHz
  WAV, the intro placed at a different sub-item phase in each episode): items of the shared jingle
  at the aligned offset differ by ~1-4 of 32 bits, unrelated audio by ~16 (random), and the
  matcher's coarse intro boundaries fall within ~0.4 s of the truth, but up to 1.8 s off when the
  loudness differs a lot across the boundary; the 20-ms band envelope (``band_envelope``, our own
  spectral frames, stored with the items) then places the edges to a 20-ms frame (see ``season_align.py``). An own STFT/peak
  fingerprint would have to re-derive that robustness and would not be any finer in time.
* Whole file: fpcalc's ``-length`` defaults to 120 s; ``-length 0`` processes everything.
  ``-algorithm 2`` (fpcalc's default, spelled out) because algorithm 4 strips leading silence,
  which would shift the time line.
* Time of item i: fpcalc resamples to 11025 Hz and frames 4096 samples every 1365; item i is
  computed from frames i .. i+18 (16-frame classifier window after the 5-tap chroma filter;
  measured: n_items = n_frames - 18, e.g. 949 items for 120 s and 1595 for 200 s of audio), so it
  describes ~2.6 s of audio centred ``ITEM_CENTRE_S`` = (18 * 1365 + 4096) / 2 / 11025 = 1.300 s
  after ``i * item_s``. ``item_time(i)`` = start_s + centre offset + i * item_s; the matcher uses it
  for both boundary kinds (an item matches when most of its window is inside the shared audio).
* fpcalc 1.5.1 exits with status 3 and "Error decoding audio frame (End of file)" at the end of
  some WAV files after printing the complete fingerprint: that case is accepted, any other failure
  raises ``FingerprintError``.

Picture: a 64-bit dHash (the 224x224 JPEG sample converted to 9x8 grayscale with a box filter, one
bit per horizontally adjacent pair: left < right) and the 4 x 4 colour layout of ``index/features.py``.
Unrelated pictures differ by ~32 bits, the same picture re-encoded by 0-4; at 1 sample/s it confirms an
audio match and, where a recap's sound was re-mixed, finds the recap's pieces by itself
(``season_pictures.py``; the sample grid is not aligned with the content across episodes, so a moving
picture differs by up to half a second).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

SAMPLE_RATE = 11025  # Chromaprint's internal rate
HOP = 1365  # 4096 - 4096 * 2 // 3 overlap
FRAME = 4096
ITEM_SPAN_FRAMES = 18  # item i is computed from frames i .. i + 18
ITEM_S = HOP / SAMPLE_RATE  # 0.12380952... s per item
ITEM_CENTRE_S = (ITEM_SPAN_FRAMES * HOP + FRAME) / 2 / SAMPLE_RATE  # 1.300 s
ALGORITHM = 2
DHASH_SIZE = 8


class FingerprintError(RuntimeError):
    """A fingerprint cannot be computed; str() is one line."""


def _fpcalc() -> str:
    exe = shutil.which("fpcalc")
    if not exe:
        raise FingerprintError("fpcalc not found: install libchromaprint-tools")
    return exe


def chromaprint_info() -> dict:
    """Provenance of the audio fingerprints: tool, Chromaprint version, algorithm, item timing."""
    exe = _fpcalc()
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FingerprintError(f"fpcalc -version failed: {e}") from None
    m = re.search(r"fpcalc version (\S+)", out.stdout + out.stderr)
    return {"tool": "fpcalc", "library": "chromaprint", "version": m.group(1) if m else None, "algorithm": ALGORITHM,
            "item_s": ITEM_S, "item_centre_s": ITEM_CENTRE_S, "path": exe}


def item_time(audio: dict, i) -> np.ndarray | float:
    """Title time line (s) of the centre of item(s) ``i`` of an ``audio_fingerprint`` result."""
    return audio["start_s"] + audio.get("centre_s", ITEM_CENTRE_S) + np.asarray(i, dtype=np.float64) * audio["item_s"]


def audio_fingerprint(wav_path, start_s: float = 0.0, timeout_s: float = 600.0, envelope: bool = True) -> dict:
    """Raw Chromaprint items of the whole WAV: {"items": uint32 array, "item_s", "centre_s", "start_s", "duration_s",
    "envelope": band_envelope() (when ``envelope``)}.

    ``start_s`` is the offset of the track on the title's time line (``item_time`` adds it)."""
    path = Path(wav_path)
    if not path.is_file():
        raise FingerprintError(f"audio file not found: {path}")
    cmd = [_fpcalc(), "-raw", "-json", "-length", "0", "-algorithm", str(ALGORITHM), str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise FingerprintError(f"fpcalc timed out after {timeout_s:.0f} s on {path.name}") from None
    except OSError as e:
        raise FingerprintError(f"fpcalc failed to start: {e}") from None
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and "End of file" not in ln]
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = None
    if doc is None or (proc.returncode != 0 and errors):
        msg = (errors or proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise FingerprintError(f"fpcalc failed on {path.name}: {msg.strip()}")
    items = np.asarray(doc.get("fingerprint") or [], dtype=np.int64).astype(np.uint32)
    out = {"items": items, "item_s": ITEM_S, "centre_s": ITEM_CENTRE_S, "start_s": float(start_s), "duration_s": float(doc.get("duration") or 0.0)}
    if envelope:
        try:
            out["envelope"] = band_envelope(path)
        except (OSError, EOFError, ValueError) as e:  # wave.Error is an Exception subclass raised as such
            raise FingerprintError(f"cannot read {path.name} for its band envelope: {e}") from None
        except Exception as e:  # noqa: BLE001 - wave.Error
            raise FingerprintError(f"cannot read {path.name} for its band envelope: {e}") from None
    return out


ENV_HOP_S = 0.02  # band envelope: one frame every 20 ms ...
ENV_BANDS = 16  # ... of up to 16 log-spaced bands (duplicate low edges merge: 15 at 16 kHz), 100 Hz - 8 kHz, in 0.5 dB steps (uint8)


def band_envelope(wav_path, chunk_s: float = 60.0) -> dict:
    """Log band energies of the WAV every 20 ms: {"db": uint8 (n, 16) = 2 * (dB re full scale + 90), "hop_s"}.

    Chromaprint places a boundary only to within its ~2.6 s item window (how far depends on the loudness
    of the audio on each side); the season matcher aligns these frames of the episodes that share a stretch
    to place its edges frame by frame and to confirm short recap pieces (``season_align.py``)."""
    import wave

    with wave.open(str(wav_path)) as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        if width != 2:
            raise FingerprintError(f"{Path(wav_path).name}: 16-bit PCM WAV expected")
        hop = int(round(rate * ENV_HOP_S))
        edges = np.unique(np.geomspace(max(1, round(100 * hop / rate)), hop // 2, ENV_BANDS + 1).astype(int))
        out = []
        per = hop * int(chunk_s / ENV_HOP_S)
        while True:
            raw = w.readframes(per)
            if not raw:
                break
            x = np.frombuffer(raw, dtype="<i2").astype(np.float32).reshape(-1, ch).mean(axis=1) / 32768.0
            n = len(x) // hop
            if n == 0:
                break
            spec = np.abs(np.fft.rfft(x[: n * hop].reshape(n, hop) * np.hanning(hop).astype(np.float32), axis=1)) ** 2 / hop
            bands = np.add.reduceat(spec, edges[:-1], axis=1)[:, : len(edges) - 1]
            db = 10 * np.log10(bands + 1e-12)
            out.append(np.clip((db + 90.0) * 2.0, 0, 255).astype(np.uint8))
    db = np.concatenate(out) if out else np.zeros((0, len(edges) - 1), dtype=np.uint8)
    return {"db": db, "hop_s": hop / rate}


def dhash(image) -> int:
    """64-bit difference hash of a PIL image."""
    from PIL import Image

    g = image.convert("L").resize((DHASH_SIZE + 1, DHASH_SIZE), Image.Resampling.BOX)
    px = np.asarray(g, dtype=np.int16)
    bits = (px[:, 1:] > px[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def picture_signature(samples: list[tuple[float, bytes]]) -> dict:
    """dHash and colour layout of each (t_s, JPEG bytes) sample: {"t_s": float64 array, "hash": uint64 array,
    "layout": uint8 (n, 48) array}, sorted by time. The layout is ``index.features.colour_layout`` (mean Y, Cb, Cr
    of a 4 x 4 grid, 0-1) in 1/255 steps: the dHash sees only the luma gradients, so two pictures of one structure
    in other colours (a test card with another hue, a set lit differently) need it to tell them apart."""
    from PIL import Image, UnidentifiedImageError

    from ..index.features import colour_layout

    ts, hs, lay = [], [], []
    for t, data in sorted(samples, key=lambda s: s[0]):
        try:
            with Image.open(io.BytesIO(data)) as im:
                hs.append(dhash(im))
                lay.append(np.round(colour_layout(np.asarray(im.convert("RGB"))) * 255.0))
        except (UnidentifiedImageError, OSError) as e:
            raise FingerprintError(f"picture sample at {t:.3f} s is not a readable image: {e}") from None
        ts.append(float(t))
    layout = np.clip(np.asarray(lay, dtype=np.float64).reshape(len(ts), -1), 0, 255).astype(np.uint8) if lay else np.zeros((0, 48), dtype=np.uint8)
    return {"t_s": np.asarray(ts, dtype=np.float64), "hash": np.asarray(hs, dtype=np.uint64), "layout": layout}


# ---- comparisons of two episodes' fingerprints (used by season.py; ep/other have .audio and .pictures)


def picture_agreement(ep, other, t0: float, t1: float, dt: float, p: dict) -> tuple[int, int]:
    """(samples within picture_max_bits, samples compared) of ep in [t0, t1] vs other at t + dt."""
    pa, pb = ep.pictures, other.pictures
    if not pa or not pb or len(pa["t_s"]) == 0 or len(pb["t_s"]) == 0:
        return 0, 0
    sel = (pa["t_s"] >= t0 + 0.5) & (pa["t_s"] <= t1 - 0.5)
    ta, ha = pa["t_s"][sel], pa["hash"][sel]
    j = np.clip(np.searchsorted(pb["t_s"], ta + dt), 1, len(pb["t_s"]) - 1)
    j = np.where(np.abs(pb["t_s"][j - 1] - (ta + dt)) < np.abs(pb["t_s"][j] - (ta + dt)), j - 1, j)
    close = np.abs(pb["t_s"][j] - (ta + dt)) <= 0.75
    bits = np.bitwise_count(ha[close] ^ pb["hash"][j[close]])
    return int((bits <= p["picture_max_bits"]).sum()), int(close.sum())
