"""The 16 kHz mono 16-bit speech signal the audio pass writes: reading it (in memory or memory-mapped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def load_wav16(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV written by the audio pass: float32 in memory, or (mmap=True) the
    int16 samples memory-mapped (a 2-hour track is then not held in memory; slices are converted
    as they are used)."""
    import wave

    with wave.open(str(path), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        n = w.getnframes()
        if not mmap:
            return np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    if n == 0:
        return np.zeros(0, dtype="<i2")
    offset = Path(path).stat().st_size - 2 * n  # the data chunk is the file's last chunk
    return np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(n,))


def f32(audio: np.ndarray, a: int = 0, b: int | None = None) -> np.ndarray:
    x = audio[a:b]
    return (x.astype(np.float32) / 32768.0) if x.dtype.kind == "i" else np.asarray(x, dtype=np.float32)
