"""Audio signals: one decode pass per title (every track) -> window statistics, EBU R128 loudness,
16 kHz speech -> WhisperX transcript -> audio analysis (audio.json)."""

from ..core.domain import Domain
from .analysis import AUDIO_ANALYSIS
from .assets import AUDIO_PASS, TRANSCRIPT
from .resources import WhisperModelResource

# The `audio:` profile section (defaults in the code: AudioPassConfig, audio_analysis); profiles override.
DEFAULTS = {
    "pass": {
        "window_s": 0.01,  # audio_stats window (10 ms)
        "chunk_s": 1.0,  # decoded audio handed to the consumers at a time
    },
    "analysis": {
        "silence_dbfs": -60,  # RMS below this (or digital zero) for >= min_silence_s is silence
        "min_silence_s": 0.5,
        "speech_gap_s": 1.2,  # pauses shorter than this between VAD speech regions count as speech
    },
}

DESCRIPTION = ("Sound and speech: one decode per title (every track) -> 10 ms statistics, EBU R128 loudness, 16 kHz speech -> "
               "WhisperX transcript with word timings -> per-track analysis (language, loudness, speech/music/silence).")
DOMAIN = Domain("audio", DESCRIPTION, (AUDIO_PASS, TRANSCRIPT, AUDIO_ANALYSIS), DEFAULTS,
                resources=lambda ctx: {"whisper": WhisperModelResource(profile=ctx.profile)})
