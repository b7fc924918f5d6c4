"""What a title's browser proxy is encoded as (the `index.proxy` profile settings), shared by the two places that
make one: the `proxy` asset (index/proxy.py: its own ffmpeg pass over the delivered file) and the visual pass
(visual/decode/tap.py: the picture from its decode, scaled in the decode lanes and encoded beside them). Both take
the settings, the frame rate and the x264 arguments from here, so a proxy is the same whichever made it.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction

MIN_DECIMATED_FPS = 20.0  # 50/60/120 fps -> 25/30/30; a rate whose whole divisor falls below this is capped at max_fps instead
SCALERS = ("area", "bicubic", "bilinear", "fast_bilinear", "lanczos", "spline", "gauss", "bicublin")  # libswscale flags
STANDARD_RATES = tuple(Fraction(x) for x in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60"))


class ProxyError(RuntimeError):
    """The proxy cannot be made; str() is one line for the user."""


@dataclass(frozen=True)
class ProxyConfig:
    """The `proxy:` key of the index profile section (every key optional)."""

    max_side: int = 640
    max_fps: float = 30.0
    crf: int = 32
    preset: str = "superfast"
    threads: int = 2
    audio_bitrate_k: int = 128
    maxrate_k: int = 1500  # VBV cap over CRF: grain and noise cannot blow a proxy up
    # libswscale's filter for the downscale (benchmarks/results/proxy_speed.json): area (a box average) against
    # ffmpeg's default bicubic from 1080p: 1.2 against 3.3 CPU-s per minute of 1080p24 on top of a 6.5 CPU-s decode
    scaler: str = "area"
    gop_s: float = 2.0  # a keyframe at least every 2 s: seeking in a browser stays quick
    timeout_base_s: float = 60.0
    timeout_per_s: float = 2.0  # the encode may take 60 s + 2 x the title's duration
    # the picture made from the visual pass's decode (visual/decode/tap.py) where the source allows, the proxy asset adding
    # the sound; false: the proxy asset always decodes the master itself
    from_decode: bool = True

    @classmethod
    def from_config(cls, cfg: dict | None) -> "ProxyConfig":
        try:
            c = cls(**(cfg or {}))
        except TypeError as exc:
            raise ProxyError(f"index.proxy settings: {exc}") from None
        if (c.max_side < 16 or c.max_side % 2 or c.max_fps <= 0 or not 0 <= c.crf <= 51 or c.threads < 1 or c.timeout_per_s <= 0
                or c.scaler not in SCALERS):
            raise ProxyError(f"index.proxy settings out of range: {asdict(c)}")
        return c

    def timeout_s(self, duration_s: float | None) -> float:
        return self.timeout_base_s + self.timeout_per_s * float(duration_s or 0.0)

    def encoder(self) -> dict:
        """The settings that decide the picture (what a proxy records, and what a picture made elsewhere must match)."""
        return {"max_side": self.max_side, "crf": self.crf, "preset": self.preset, "scaler": self.scaler, "threads": self.threads,
                "maxrate_k": self.maxrate_k, "audio_bitrate_k": self.audio_bitrate_k, "gop_s": self.gop_s, "max_fps": self.max_fps}


def target_rate(source_video: dict, max_fps: float) -> Fraction:
    """The proxy's constant frame rate: the source's (its nominal rate, or the measured mean of a VFR
    title), decimated by a whole factor above `max_fps` (60 -> 30, 50 -> 25) or capped at it."""
    rate = None
    if source_video.get("frame_rate") and not source_video.get("is_vfr"):
        try:
            rate = Fraction(source_video["frame_rate"])
        except (ValueError, ZeroDivisionError):
            rate = None
    if not rate and source_video.get("fps"):  # VFR: the measured mean, snapped to a broadcast rate within 0.5 %
        fps = float(source_video["fps"])
        near = min(STANDARD_RATES, key=lambda r: abs(fps / r - 1))
        rate = near if abs(fps / near - 1) <= 0.005 else Fraction(fps).limit_denominator(1001)
    if not rate or rate <= 0:
        rate = Fraction(25)
    cap = Fraction(max_fps).limit_denominator(1001)
    if rate <= cap * Fraction(1001, 1000):  # 30000/1001 and 30 both pass a cap of 30
        return rate
    decimated = rate / math.ceil(rate / cap)
    return decimated if decimated >= MIN_DECIMATED_FPS else cap


@functools.lru_cache(maxsize=1)
def ffmpeg_info() -> tuple[str, str, frozenset]:
    """(path, `ffmpeg -version` first line, filter names) of the ffmpeg on PATH."""
    exe = shutil.which("ffmpeg")
    if not exe:
        raise ProxyError("ffmpeg not found on PATH")
    try:
        ver = subprocess.run([exe, "-nostdin", "-hide_banner", "-version"], capture_output=True, text=True, timeout=30)
        flt = subprocess.run([exe, "-nostdin", "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProxyError(f"ffmpeg -version failed: {exc}") from None
    names = frozenset(ln.split()[1] for ln in flt.stdout.splitlines() if len(ln.split()) > 2 and ln.startswith(" "))
    return exe, (ver.stdout.strip().splitlines() or ["ffmpeg (unknown version)"])[0], names


def x264_args(cfg: ProxyConfig, rate: Fraction) -> list[str]:
    """The proxy's video encoder arguments (H.264 High, yuv420p, CRF with a VBV cap, a keyframe every `gop_s`)."""
    return ["-c:v", "libx264", "-preset", cfg.preset, "-crf", str(cfg.crf), "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-maxrate", f"{cfg.maxrate_k}k", "-bufsize", f"{2 * cfg.maxrate_k}k", "-g", str(max(1, round(float(rate) * cfg.gop_s))),
            "-threads", str(cfg.threads)]


def proxy_size(width: int, height: int, sar: Fraction | float | None, max_side: int) -> tuple[int, int]:
    """The proxy's picture size for a source picture: square pixels (the sample aspect ratio applied to the width), the
    long side at most `max_side`, even sides (as the asset's ffmpeg scale expression computes it)."""
    sar = float(sar) if sar and float(sar) > 0 else 1.0
    k = min(1.0, max_side / max(width * sar, height))
    return 2 * max(1, math.floor(width * sar * k / 2 + 0.5)), 2 * max(1, math.floor(height * k / 2 + 0.5))  # ffmpeg's round(): half away from zero
