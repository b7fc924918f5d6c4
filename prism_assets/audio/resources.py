"""The Whisper model resource of the audio assets (one model per process)."""

from __future__ import annotations

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
        """The profile's `models.whisper` with the environment's model overrides (WhisperConfig.from_profile:
        PRISM_MODEL_WHISPER[_LANGUAGE|_ALIGN] or PRISM_WHISPER_MODEL, ...; empty string = none); the resource's
        `model` field overrides both."""
        cfg = (self.profile.config().get("models") or {}).get("whisper") or {}
        try:
            return WhisperConfig.from_profile(cfg, model=self.model)
        except ValueError as exc:
            raise ValueError(f"profile {self.profile.name}: {exc}") from None

    def get(self) -> LoadedWhisper:
        return get_whisper(self.config(), self.profile.device())

    def release(self) -> bool:
        """Drop the process's loaded Whisper models (core/model_release.py); True when one was held."""
        held = get_whisper.cache_info().currsize > 0
        get_whisper.cache_clear()
        return held
