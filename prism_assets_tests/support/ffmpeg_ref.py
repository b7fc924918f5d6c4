"""ffmpeg as the reference the loudness code is held to (tests and benchmarks)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def ffmpeg_r128(path: Path) -> dict:
    """ffmpeg's `ebur128=peak=true` summary of a file: the reference the loudness code is held to
    (tests and benchmarks/audio_benchmark.py). Silence gives -inf."""
    out = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=600).stderr
    s = out[out.rfind("Summary:"):]
    return {"integrated_lufs": float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", s).group(1)), "lra_lu": float(re.search(r"LRA:\s+([\d.]+) LU", s).group(1)),
            "true_peak_dbtp": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", s).group(1))}
