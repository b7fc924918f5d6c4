"""The speaker-diarization model resource (optional): pyannote through WhisperX's DiarizationPipeline.

`models.diarization.model` in the profile (or PRISM_DIARIZATION_MODEL) is a hub name
(`pyannote/speaker-diarization-community-1`, gated: a token in the variable named by `token_env`)
or a local folder holding the pipeline's `config.yaml`. Unset means not configured: the
speaker_turns output then says so, and no turns are invented. A configured model that cannot be
loaded (offline, wrong path, no token) fails the step in one line, never falls back silently.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from dagster import ConfigurableResource

from ..resources import PrismProfile


class DiarizationLoadError(RuntimeError):
    """The configured diarization model cannot be loaded (one line)."""


@dataclass(frozen=True)
class DiarizationConfig:
    model: str | None
    token_env: str = "HF_TOKEN"
    min_speakers: int | None = None
    max_speakers: int | None = None

    @classmethod
    def from_config(cls, cfg: dict | None) -> "DiarizationConfig":
        cfg = dict(cfg or {})
        if "PRISM_DIARIZATION_MODEL" in os.environ:
            cfg["model"] = os.environ["PRISM_DIARIZATION_MODEL"] or None
        return cls(cfg.get("model") or None, str(cfg.get("token_env") or "HF_TOKEN"),
                   int(cfg["min_speakers"]) if cfg.get("min_speakers") else None, int(cfg["max_speakers"]) if cfg.get("max_speakers") else None)

    def describe(self) -> dict:
        return {"model": self.model, "configured": bool(self.model), "min_speakers": self.min_speakers, "max_speakers": self.max_speakers}


@dataclass
class LoadedDiarization:
    cfg: DiarizationConfig
    pipeline: object
    device: str
    lock: threading.Lock

    def turns(self, audio) -> list[dict]:
        """Speaker turns of one 16 kHz mono float32 track: [{start_s, end_s, speaker}]."""
        with self.lock:
            df = self.pipeline(audio, min_speakers=self.cfg.min_speakers, max_speakers=self.cfg.max_speakers)
        return [{"start_s": round(float(r.start), 3), "end_s": round(float(r.end), 3), "speaker": str(r.speaker)} for r in df.itertuples()]


_CACHE: dict[tuple, LoadedDiarization] = {}
_CACHE_LOCK = threading.Lock()


def load_diarization(cfg: DiarizationConfig, device: str) -> LoadedDiarization:
    """The pipeline for `cfg` on `device`, once per process."""
    key = (cfg, device)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if os.path.isabs(cfg.model) or cfg.model.startswith((".", "~")) or os.path.exists(cfg.model):  # a folder; else a hub name (owner/name)
            if not os.path.isfile(os.path.join(os.path.expanduser(cfg.model), "config.yaml")):
                raise DiarizationLoadError(f"diarization model {cfg.model}: no config.yaml there (a pyannote pipeline folder)")
        try:
            from whisperx.diarize import DiarizationPipeline

            pipe = DiarizationPipeline(model_name=os.path.expanduser(cfg.model), token=os.environ.get(cfg.token_env) or None, device=device)
        except Exception as exc:  # noqa: BLE001 - hub, auth and file errors of pyannote: one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            offline = " (HF_HUB_OFFLINE is set: only a local folder or the hub cache can serve it)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise DiarizationLoadError(f"diarization model {cfg.model} cannot be loaded: {first}{offline}") from None
        _CACHE[key] = LoadedDiarization(cfg, pipe, device, threading.Lock())
        return _CACHE[key]


class DiarizationModelResource(ConfigurableResource):
    """Speaker diarization for the speaker_turns asset (`models.diarization` in the profile)."""

    profile: PrismProfile

    def config(self) -> DiarizationConfig:
        return DiarizationConfig.from_config((self.profile.config().get("models") or {}).get("diarization"))

    def get(self) -> LoadedDiarization | None:
        """The loaded pipeline, or None when no model is configured."""
        cfg = self.config()
        if not cfg.model:
            return None
        return load_diarization(cfg, self.profile.device())
