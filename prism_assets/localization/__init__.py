"""Localization signals: every audio and subtitle track of a title.

    subtitles      every subtitle stream and sidecar file as cues (subtitles.json, subtitles/<label>.parquet + .vtt)
    localization   per audio track: language, role, dub offset/drift; per subtitle track: timing and style QC (localization.json)
    speaker_turns  speaker turns per track where a diarization model is configured (speaker_turns.json)
"""

from ..core.domain import Domain
from .assets import LOCALIZATION, SPEAKER_TURNS, SUBTITLES
from .resources import DiarizationModelResource

# The `localization:` profile section; profiles (prism_assets/profiles/<env>.yaml) override any of it.
DEFAULTS = {
    "dub_sync": {
        "max_early_ms": 40.0,  # EBU R37: sound at most 40 ms before the picture ...
        "max_late_ms": 60.0,  # ... and at most 60 ms after it; a dub is held to the original's timing alike
        "max_offset_search_s": 10.0,  # offsets searched within +-10 s
    },
    "subtitle_speech": {
        "min_uncovered_s": 2.0,  # speech this long without a cue is an event (not for forced tracks)
        "max_offset_ms": 200.0,  # cues this far from the speech onsets (5 frames at 25 fps) are out of sync
        "min_confidence": 0.3,  # the offset's activity correlation peak ...
        "min_onset_agreement": 0.6,  # ... or this share of the speech onsets confirming it (short titles)
        "max_drift_ms_per_hour": 500.0,
        "min_text_match": 0.2,  # original-language cues: share of their words spoken at that time
    },
    "timed_text": {},  # overrides of timed_text.yaml: default, providers, profiles
}

DESCRIPTION = ("Localization: every subtitle track as cues, and per audio track its language (no guess without speech), role, "
               "dub offset and drift; subtitle timing and style QC against the picture and the speech; optional speaker turns.")
DOMAIN = Domain("localization", DESCRIPTION, (SUBTITLES, LOCALIZATION, SPEAKER_TURNS), DEFAULTS,
                resources=lambda ctx: {"diarization": DiarizationModelResource(profile=ctx.profile)})
