"""Frame packs: the pictures the visual pass keeps, as concatenated JPEGs in one file per kind
(`samples.pack`, `keyframes.pack`, `posters.pack`) with an index (the `frame_samples` table:
kind, frame, t_s, pack, offset, length, width, height, scores). The public reader and writer of
that format, used by the pass, the visual assets and QC (thumbnails); see docs/schema.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PACK_NAMES = ("samples", "keyframes", "posters")


class PacksMissingError(RuntimeError):
    """A title's frame_samples bundle has no picture packs; str() is one line."""


class PackWriter:
    """Append-only file of concatenated JPEGs."""

    def __init__(self, path: Path, quality: int, subsampling: str = "444"):
        self.path = path
        self.quality = quality
        self.subsampling = subsampling
        self.fh = open(path, "wb")
        self.offset = 0

    def add(self, rgb: np.ndarray) -> tuple[int, int]:
        data = encode_jpeg(rgb, self.quality, self.subsampling)
        off = self.offset
        self.fh.write(data)
        self.offset += len(data)
        return off, len(data)

    def close(self):
        self.fh.close()


def encode_jpeg(rgb: np.ndarray, quality: int, subsampling: str = "444") -> bytes:
    """JPEG bytes of a uint8 RGB picture (libjpeg-turbo through simplejpeg; 3-4x faster than PIL).
    `subsampling` is the JPEG chroma subsampling ("444" or "420")."""
    import simplejpeg

    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=int(quality), colorspace="RGB", colorsubsampling=subsampling)


def decode_jpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def read_pack_image(path: Path, offset: int, length: int) -> np.ndarray:
    """One picture of a pack as uint8 RGB."""
    return decode_jpeg(read_pack_bytes(path, offset, length))


def read_pack_bytes(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(int(offset))
        return fh.read(int(length))


def pack_paths(storage, title_id: str) -> dict[str, Path]:
    """Local paths of a title's packs (pack name -> file), staged from the artifact store (downloaded
    to scratch once for an S3 artifact root)."""
    files = storage.stage_bundle("frame_samples", title_id, "packs")
    out = {name[: -len(".pack")]: path for name, path in files.items() if name.endswith(".pack")}
    if not out:
        raise PacksMissingError("frame_samples has no picture packs (re-run visual_pass)")
    return out
