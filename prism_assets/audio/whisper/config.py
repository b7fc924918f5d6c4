"""The Whisper settings (`models.whisper` in the profile)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...core.config import known_settings
from ...core.models import configured_source
from ...settings import model_override
from .sources import PKG_BASE


@dataclass(frozen=True)
class WhisperConfig:
    model: str = PKG_BASE
    language_model: str | None = None  # multilingual model for language ID when `model` is English-only
    align_model: str | None = None  # wav2vec2 hub name / local path for whisperx.align; None = faster-whisper words
    compute_type: str | None = None  # None: float16 on CUDA, int8 on CPU
    batch_size: int = 8
    beam_size: int = 5
    cpu_threads: int = 0  # 0: all cores of the machine
    vad_onset: float = 0.500
    vad_offset: float = 0.363
    chunk_size: int = 30
    max_gap_s: float = 1.0  # pause that ends a segment
    vad_block_s: float = 600.0  # the VAD runs on blocks this long (memory flat in the title's duration)
    per_chunk_language: bool = True  # detect each VAD chunk's language from its encoder output (multilingual models)
    switch_language_probability: float = 0.8  # a chunk this sure of another language is decoded in it
    language: str | None = None  # force a language (skips detection)
    # hallucination guard: a VAD chunk that decodes to at most this many words, all of them unsure
    # (mean word probability below `lone_words_min_probability`), is Whisper filling a non-speech
    # sound (a tone, music, a cough) with "you" / "Thank you.": dropped and counted.
    lone_words_max: int = 3
    lone_words_min_probability: float = 0.3

    @classmethod
    def from_config(cls, cfg: dict | None) -> "WhisperConfig":
        known = known_settings(cls, cfg, "models.whisper settings")
        if isinstance(known.get("compute_type"), dict):  # {cpu: int8, cuda: float16}
            known["compute_type"] = json.dumps(known["compute_type"], sort_keys=True)
        return cls(**known)

    @classmethod
    def from_profile(cls, cfg: dict | None, model: str | None = None, env=None) -> "WhisperConfig":
        """The profile's `models.whisper` after the environment (settings.model_override): PRISM_MODEL_WHISPER,
        PRISM_MODEL_WHISPER_LANGUAGE, PRISM_MODEL_WHISPER_ALIGN, or their older names PRISM_WHISPER_MODEL,
        PRISM_WHISPER_LANGUAGE_MODEL, PRISM_WHISPER_ALIGN_MODEL (empty: none), and PRISM_MODEL_WHISPER_CPU_THREADS
        (`cpu_threads`; empty: the profile's); `model` (a resource field) overrides all. No model at all: one-line
        ValueError."""
        cfg = dict(cfg or {})
        for family, key in (("whisper", "model"), ("whisper_language", "language_model"), ("whisper_align", "align_model")):
            cfg[key] = configured_source(family, cfg.get(key), env)
        over = model_override("whisper", "cpu_threads", env)  # PRISM_MODEL_WHISPER_CPU_THREADS (empty: the profile's)
        if over and over[1]:
            try:
                cfg["cpu_threads"] = int(over[1])
            except ValueError:
                raise ValueError(f"{over[0]}={over[1]!r} is not an integer") from None
            if cfg["cpu_threads"] < 0:
                raise ValueError(f"{over[0]}={over[1]}: expected 0 (all cores) or a number of threads")
        if model:
            cfg["model"] = model
        if not cfg.get("model"):
            raise ValueError("models.whisper.model is not set (profile, or PRISM_MODEL_WHISPER)")
        return cls.from_config(cfg)

    def compute_type_for(self, device: str) -> str:
        ct = self.compute_type
        if ct and ct.startswith("{"):
            ct = json.loads(ct).get(device)
        return ct or ("float16" if device == "cuda" else "int8")
