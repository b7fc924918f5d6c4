"""The Whisper model resource of the audio assets (one model per process)."""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field

from ..resources import PrismProfile
from .whisper import LoadedWhisper, WhisperConfig, get_whisper


class WhisperModelResource(ConfigurableResource):
    """Whisper (WhisperX pipeline on faster-whisper / CTranslate2) for the transcript asset. The
    model sources and batch_size / compute_type come from the profile (`models.whisper`); loaded on
    first use, once per process (cached by configuration and device)."""

    profile: PrismProfile
    model: str | None = Field(default=None, description="Override models.whisper.model (hub name, local path or pkg:...)")

    def config(self) -> WhisperConfig:
        """The profile's `models.whisper`; PRISM_WHISPER_MODEL, PRISM_WHISPER_LANGUAGE_MODEL and
        PRISM_WHISPER_ALIGN_MODEL (hub name or local path; empty string = none) override it, and
        the resource's `model` field overrides both."""
        cfg = dict((self.profile.config().get("models") or {}).get("whisper") or {})
        for var, key in (("PRISM_WHISPER_MODEL", "model"), ("PRISM_WHISPER_LANGUAGE_MODEL", "language_model"), ("PRISM_WHISPER_ALIGN_MODEL", "align_model")):
            if var in os.environ:
                cfg[key] = os.environ[var] or None
        if self.model:
            cfg["model"] = self.model
        if not cfg.get("model"):
            raise ValueError(f"profile {self.profile.name}: models.whisper.model is not set")
        return WhisperConfig.from_config(cfg)

    def get(self) -> LoadedWhisper:
        return get_whisper(self.config(), self.profile.device())
