"""QC thresholds and the loudness / technical profiles (profiles.yaml), chosen per provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.config import known_settings

PROFILES_PATH = Path(__file__).resolve().parent / "profiles.yaml"


@dataclass(frozen=True)
class QCThresholds:
    black_min_s: float = 2.0  # blackdetect d
    black_pic_th: float = 0.98  # blackdetect pic_th
    black_pix_th: float = 0.10  # blackdetect pix_th (applied by the visual pass; recorded, and checked against it)
    black_fade_luma: float = 1.0  # edge frames of a black run brighter than its median luma by this much belong to the fade (0 = off)
    freeze_min_s: float = 2.0  # freezedetect d
    freeze_noise_db: float = -60.0  # freezedetect n, on diff/255
    freeze_median_db: float = -80.0  # the run's median diff must be below this (a held picture decodes to ~0: skip blocks)
    freeze_hold_luma: float = 1.0  # luma mean/std may drift at most this much over a freeze (0..255)
    freeze_glitch_db: float = -48.0  # an isolated frame up to this level does not end a freeze ...
    freeze_glitch_gap_s: float = 2.0  # ... a codec refresh: at a key frame; statistics without key frames: no other such
    # frame this close (a series of steps is a picture changing in steps)
    silence_min_s: float = 2.0  # silencedetect d
    silence_noise_db: float = -60.0  # silencedetect n (window peak, dBFS)
    digital_silence_min_s: float = 1.0
    long_silence_s: float = 30.0
    long_black_s: float = 30.0
    long_freeze_s: float = 30.0
    whole_ratio: float = 0.9
    colour_bars_min: float = 0.5
    colour_bars_min_s: float = 0.5
    bars_min_fraction: float = 0.04
    bars_min_s: float = 2.0
    interlaced_ratio: float = 0.5
    av_short_frames: float = 2.0
    av_long_s: float = 2.0
    decode_errors_fail: int = 10
    truncated_min_s: float = 1.0  # decodable media shorter than the header's duration by this much ...
    truncated_ratio: float = 0.02  # ... and by this fraction of it: an incomplete file

    @classmethod
    def from_config(cls, cfg: dict | None) -> "QCThresholds":
        cfg = known_settings(cls, cfg, "qc thresholds")
        return cls(**{k: type(getattr(cls, k))(v) for k, v in cfg.items()})


def db_to_lin(db: float) -> float:
    return 10.0 ** (db / 20.0)


# ---------------------------------------------------------------------------------------------
# profiles


def load_profiles(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """The profiles document (profiles.yaml), with a deployment's `qc:` overrides applied:
    `default`, `providers` (merged), `thresholds` (merged), `profiles` (merged per profile)."""
    import yaml

    doc = yaml.safe_load(Path(path or PROFILES_PATH).read_text()) or {}
    ov = dict(overrides or {})
    if ov.get("profiles_file"):
        doc = yaml.safe_load(Path(ov["profiles_file"]).read_text()) or {}
    if ov.get("default"):
        doc["default"] = ov["default"]
    doc["providers"] = {**(doc.get("providers") or {}), **(ov.get("providers") or {})}
    doc["thresholds"] = {**(doc.get("thresholds") or {}), **(ov.get("thresholds") or {})}
    profiles = {k: dict(v) for k, v in (doc.get("profiles") or {}).items()}
    for name, p in (ov.get("profiles") or {}).items():
        profiles[name] = {**profiles.get(name, {}), **p}
    doc["profiles"] = profiles
    if doc.get("default") not in profiles:
        raise ValueError(f"qc default profile {doc.get('default')!r} is not defined (have: {', '.join(sorted(profiles))})")
    bad = {p: v for p, v in doc["providers"].items() if v not in profiles}
    if bad:
        raise ValueError(f"qc providers map to unknown profiles: {bad}")
    QCThresholds.from_config(doc["thresholds"])  # validate
    return doc


def select_profile(doc: dict, provider: str | None) -> tuple[str, dict, str]:
    """(name, profile, why) for a title: the provider's profile, else the default."""
    providers = doc.get("providers") or {}
    if provider and provider in providers:
        name, why = providers[provider], f"provider {provider!r}"
    else:
        name = doc["default"]
        why = "default" + (f" (provider {provider!r} has no profile)" if provider else " (no provider in the sidecar)")
    prof = dict(doc["profiles"][name])
    prof["thresholds"] = {**(doc.get("thresholds") or {}), **(prof.get("thresholds") or {})}
    return name, prof, why


# ---------------------------------------------------------------------------------------------
# helpers
