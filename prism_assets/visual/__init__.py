"""Visual signals: one decode pass per title (frame statistics + kept pictures) -> shots, keyframes,
CLIP embeddings per sample and per shot, poster candidates."""

from ..core.domain import Domain
from .assets import KEYFRAMES, SHOTS, VISUAL_PASS
from .clip import ClipModelResource
from .embeddings import EMBEDDINGS, SHOT_EMBEDDINGS
from .posters import POSTERS

# The `visual:` profile section; every key is optional and may be overridden in profiles/<name>.yaml.
# Defaults of the settings not listed are in the code (VisualPassConfig, ShotParams, PosterParams).
DEFAULTS = {
    "pass": {
        "sample_fps": 1.0,  # CLIP samples per second
        "sample_size": 224,  # CLIP input side (square center crop, resized in libswscale)
        "window_s": 0.5,  # keyframe-candidate window (s)
        "poster_pool": 24,  # full-resolution frames kept for poster ranking
        "decode_lanes": 0,  # decoders on alternate closed GOPs (0 = one per CPU of the step, at most 4; 1 = one decoder)
    },
    "shots": {"detector": "prism-blend", "params": {}},  # swappable: prism_assets.visual.shots.DETECTORS
    "keyframes": {"per_shot": 1},
    "posters": {"count": 12},
    # hardware video decoding per device kind (decode/hardware.py): none | cuda (NVDEC) | vaapi | qsv ...; a chosen one
    # that cannot start fails the step in one line (no silent software fall back)
    "hardware_decode": {"cpu": "none", "cuda": "none"},
}

DESCRIPTION = ("Pictures: one decode per title (decode lanes) -> frame statistics and kept pictures -> shots and transitions, "
               "keyframes, CLIP embeddings (per sample, per shot), poster candidates.")
SIGNALS = (VISUAL_PASS, SHOTS, KEYFRAMES, EMBEDDINGS, SHOT_EMBEDDINGS, POSTERS)
DOMAIN = Domain("visual", DESCRIPTION, SIGNALS, DEFAULTS, resources=lambda ctx: {"clip": ClipModelResource(profile=ctx.profile)})
