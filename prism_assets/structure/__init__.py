"""Structure signals: where the text, the scenes, the credits, the slates, the intro and the recap are.

    text              on-screen text by OCR (Tesseract) of the visual pass's keyframe candidates (text.parquet)
    scenes            shots grouped into scenes (scenes.parquet)
    structure         credits, next-episode point, slates, burned-in subtitles; QC events (structure.json)
    fingerprint       an episode's audio (Chromaprint) and picture fingerprints (fingerprint.json; series only)
    season_structure  intro and recap of every episode of a season (seasons partitions; season_sensor)
"""

from ..core.domain import Domain
from .assets import SCENES, STRUCTURE, TEXT
from .seasons import FINGERPRINT, SEASON_STRUCTURE, build_season_sensor, season_job

# The `structure:` profile section; profiles (prism_assets/profiles/<env>.yaml) override any of it.
DEFAULTS = {
    "ocr": {},  # prism_assets.structure.ocr.OcrConfig: languages, every_s, max_frames, min_confidence, ...
    "text_flags": {},  # burned-in subtitle / slate / rolling rules (text_flags.py)
    "scenes": {},  # prism_assets.structure.scenes.SceneParams
    "credits": {},  # credits.py parameters
    "season": {},  # season.py parameters
    # burned-in subtitles as a QC finding: allowed | info | warn | fail, by provider (sidecar `provider`)
    "burned_in_subtitles": {"default": "allowed", "providers": {}},
}

DESCRIPTION = ("Structure: on-screen text (OCR), scenes, opening/end credits and the next-episode point, slates and burned-in "
               "subtitles per title; intro and recap of every episode across a season.")
DOMAIN = Domain("structure", DESCRIPTION, (TEXT, SCENES, STRUCTURE, FINGERPRINT, SEASON_STRUCTURE), DEFAULTS,
                jobs=lambda ctx: [season_job(ctx.settings.run_max_runtime_s)], sensors=lambda ctx: [build_season_sensor()])
