"""Picture features for query by frame, and timecodes: shared by the index writer and the API.

Without trained CLIP weights a picture cannot be searched by meaning, but it can be found again:
a reference frame (a keyframe a user saved, a screenshot, a frame re-encoded at another size) is
matched to the shot it came from by two cheap, robust descriptors of the whole picture:

- a colour layout: the mean Y, Cb and Cr of a 4 x 4 grid (48 values, 0-1), robust to scaling,
  re-compression and small crops;
- a difference hash (dHash): 64 bits, the sign of the horizontal luma gradient on a 9 x 8 grid
  (Krawetz's dHash), robust to scaling and compression, sensitive to layout.

`frame_vector` concatenates them (the hash bits as +-`HASH_WEIGHT`) into one float32 vector whose
L2 distance ranks candidates; `match_score` turns a distance into 0-1. Pure numpy: the API image
needs no imaging stack beyond a JPEG decoder.
"""

from __future__ import annotations

import math
import re

import numpy as np

GRID = 4
HASH_W, HASH_H = 9, 8
HASH_WEIGHT = 0.08  # one flipped bit moves the vector by 2 * 0.08 (a colour cell by up to 1)
FRAME_DIM = GRID * GRID * 3 + (HASH_W - 1) * HASH_H
FEATURES_VERSION = "colour-layout-4x4+dhash-64/1"


def _block_means(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Area-average an (H, W[, C]) array down to (rows, cols[, C]) (every pixel counted once)."""
    h, w = x.shape[:2]
    r_edges = np.linspace(0, h, rows + 1).round().astype(int)
    c_edges = np.linspace(0, w, cols + 1).round().astype(int)
    r_edges[1:] = np.maximum(r_edges[1:], r_edges[:-1] + 1).clip(max=h)
    c_edges[1:] = np.maximum(c_edges[1:], c_edges[:-1] + 1).clip(max=w)
    s = np.add.reduceat(np.add.reduceat(x.astype(np.float64), r_edges[:-1], axis=0), c_edges[:-1], axis=1)
    counts = np.outer(np.diff(r_edges), np.diff(c_edges))
    return s / (counts[..., None] if s.ndim == 3 else counts)


def _ycbcr(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def colour_layout(rgb: np.ndarray) -> np.ndarray:
    return (_block_means(_ycbcr(rgb), GRID, GRID) / 255.0).astype(np.float32).reshape(-1)


def dhash_bits(rgb: np.ndarray) -> np.ndarray:
    y = _ycbcr(rgb)[..., 0]
    small = _block_means(y, HASH_H, HASH_W)
    return (small[:, 1:] > small[:, :-1]).reshape(-1)


def dhash_hex(bits: np.ndarray) -> str:
    return "".join(f"{int(''.join('1' if b else '0' for b in bits[i:i + 4]), 2):x}" for i in range(0, len(bits), 4))


def frame_vector(rgb: np.ndarray) -> np.ndarray:
    """The search vector of a picture (uint8 RGB, any size >= 9 x 8)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[0] < HASH_H or rgb.shape[1] < HASH_W:
        raise ValueError(f"a picture of at least {HASH_W}x{HASH_H} RGB pixels is needed, got shape {tuple(rgb.shape)}")
    rgb = rgb[..., :3]
    bits = dhash_bits(rgb).astype(np.float32) * 2 - 1
    return np.concatenate([colour_layout(rgb), bits * HASH_WEIGHT]).astype(np.float32)


def match_score(distance: float) -> float:
    """0-1 from the L2 distance of two frame vectors (1: the same picture; 0.5 at distance 0.5)."""
    return float(1.0 / (1.0 + (max(distance, 0.0) / 0.5) ** 2))


def decode_image(data: bytes) -> np.ndarray:
    """uint8 RGB of a JPEG or PNG; ValueError in one line for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        import simplejpeg

        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except Exception as exc:  # noqa: BLE001  (a damaged upload)
            raise ValueError(f"the JPEG cannot be decoded: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > 50_000_000:
                    raise ValueError("the PNG is larger than 50 megapixels")
                return np.asarray(im.convert("RGB"))
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"the PNG cannot be decoded: {type(exc).__name__}") from None
    raise ValueError("the image must be a JPEG or PNG")


_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]+")


def cjk_runs(text: str) -> str:
    """The Hangul / kana / Han runs of a text, space-separated ("" without any)."""
    return " ".join(_CJK.findall(str(text or "")))


def smpte(t_s: float, fps: float | None) -> str:
    """SMPTE timecode HH:MM:SS:FF of a time (non-drop frame at the rounded rate; 29.97/59.94 use
    drop-frame HH:MM:SS;FF)."""
    if t_s is None or not math.isfinite(float(t_s)):
        return ""
    fps = float(fps or 25.0)
    nominal = max(int(round(fps)), 1)
    frame = int(math.floor(float(t_s) * fps + 1e-6))
    drop = abs(fps * 1001 / 1000 - nominal) < 0.01 and nominal in (30, 60)
    if drop:  # SMPTE 12M drop-frame: skip 2 (4) frame numbers every minute but every tenth
        d = nominal // 15
        per_10min = nominal * 600 - d * 9
        per_min = nominal * 60 - d
        tens, rem = divmod(frame, per_10min)
        frame += d * 9 * tens + (d * ((rem - d) // per_min) if rem > d else 0)
    ff = frame % nominal
    total_s = frame // nominal
    sep = ";" if drop else ":"
    return f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}{sep}{ff:02d}"
