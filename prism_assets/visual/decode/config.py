"""Settings, result and error types of the visual pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...core.config import known_settings

# 7: the proxy's picture from this decode (tap.py, frame_samples gains proxy_video.mp4 + .json);
# 6: gm_diff (globally motion-compensated difference: whip pans); 5: HDR (PQ / HLG) pictures tone-mapped to SDR BT.709; interlaced sources deinterlaced, telecined ones inverse-telecined;
# 4: ref_diff (freezedetect's difference to a reference frame), mc_diff (motion-compensated difference);
# 3: decode lanes; keyframe windows and poster stretches also break at GOP starts; samples on the 1/sample_fps grid
DECODE_CODE_VERSION = "visual-pass-7"
STATS_SCHEMA_VERSION = "1.2"  # frame_stats; 1.1: ref_diff, mc_diff; 1.2: gm_diff
SAMPLES_SCHEMA_VERSION = "1.0"  # frame_samples


class VisualDecodeError(RuntimeError):
    """The video cannot be decoded at all; str() is one line."""


@dataclass(frozen=True)
class VisualPassConfig:
    analysis_width: int = 128  # analysis picture width (height keeps the aspect ratio, even)
    analysis_interpolation: str = "fast_bilinear"  # swscale filter for the analysis picture (fast_bilinear | area | bilinear): 6x cheaper than area at 1080p, same accuracy on the benchmarks
    sample_fps: float = 1.0  # embedding samples per second
    sample_size: int = 224  # embedding sample side (CLIP input)
    window_s: float = 0.5  # keyframe-candidate window
    keyframe_max_side: int = 640
    colour_bars_every: int = 4  # frames between colour-bar tests (and at every cut candidate)
    poster_pool: int = 24  # full-resolution frames kept for poster ranking (2 x the default count)
    poster_per_segment: int = 2  # at most this many pool entries per stretch between cut candidates
    poster_max_side: int = 3840
    jpeg_quality: int = 90
    black_pix_th: float = 0.10  # blackdetect pix_th (fraction of full range)
    lags_s: tuple[float, ...] = (0.12, 0.25, 0.5)  # blend-feature lags, seconds
    freeze_ref_reset: float = 0.255  # ref_diff: a new reference frame once the difference to it exceeds this (freezedetect n=-60 dB on 0..255)
    cut_candidate_diff: float = 12.0  # online window break (any plausible cut; over-segmenting is harmless)
    threads: int = 0  # decoder threads per lane (0 = auto: FFmpeg's choice with one lane, the CPUs shared out with several)
    decode_lanes: int = 0  # decoders working on alternate closed GOPs side by side (0 = one per CPU, at most 4; 1 = one decoder)
    max_seconds: float | None = None  # stop after this much video (benchmarks); None = whole title

    @classmethod
    def from_config(cls, cfg: dict | None) -> "VisualPassConfig":
        cfg = known_settings(cls, cfg, "visual pass settings")
        if "lags_s" in cfg:
            cfg["lags_s"] = tuple(float(x) for x in cfg["lags_s"])
        return cls(**cfg)


@dataclass
class VisualPass:
    stats: pd.DataFrame  # one row per decoded frame
    pictures: pd.DataFrame  # index of every kept picture (kind, frame, t_s, pack, offset, length, w, h, scores)
    packs: dict[str, Path]  # pack name -> local file
    meta: dict = field(default_factory=dict)
