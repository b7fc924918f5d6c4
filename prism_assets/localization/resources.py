"""The speaker-diarization model resource (optional): pyannote through WhisperX's DiarizationPipeline.

`models.diarization.model` in the profile (or PRISM_MODEL_DIARIZATION, older name PRISM_DIARIZATION_MODEL; read in
settings.py) is a hub name (`pyannote/speaker-diarization-community-1` or `hub:...`, gated: a token in the variable
named by `token_env`) or a local folder holding the pipeline's `config.yaml` (`path:...` or a bare path): the
platform's model idiom, core/models.py. Unset means not configured: the speaker_turns output then says so, and no
turns are invented. A configured model that cannot be loaded (offline, wrong path, no token) fails the step in one
line, never falls back silently. The loaded pipeline's `describe()` embeds its model record (source, offline, sha256
of the pipeline's config.yaml).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from dagster import ConfigurableResource

from ..core.models import ModelSourceError, ModelSpec, configured_source, hub_offline, model_record, model_spec
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
        cfg["model"] = configured_source("diarization", cfg.get("model"))
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
    record: dict | None = None  # core/models.model_record of the pipeline

    def describe(self) -> dict:
        return {**self.cfg.describe(), "record": self.record}

    def turns(self, audio) -> list[dict]:
        """Speaker turns of one 16 kHz mono float32 track: [{start_s, end_s, speaker}]."""
        with self.lock:
            df = self.pipeline(audio, min_speakers=self.cfg.min_speakers, max_speakers=self.cfg.max_speakers)
        return [{"start_s": round(float(r.start), 3), "end_s": round(float(r.end), 3), "speaker": str(r.speaker)} for r in df.itertuples()]


_CACHE: dict[tuple, LoadedDiarization] = {}
_CACHE_LOCK = threading.Lock()


def _config_file(spec: ModelSpec) -> str | None:
    """The pipeline's config.yaml (what the record's sha256 is of): in the folder, or in the local hub cache."""
    if spec.source.kind == "path":
        return os.path.join(os.path.expanduser(spec.source.ref), "config.yaml")
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.source.ref, "config.yaml")
    return found if isinstance(found, str) else None


def load_diarization(cfg: DiarizationConfig, device: str) -> LoadedDiarization:
    """The pipeline for `cfg` on `device`, once per process."""
    key = (cfg, device)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            spec = model_spec("diarization", cfg.model, device=device)
            if spec.source.kind == "package":
                raise spec.error("pyannote pipelines are not shipped as packages here: use a path: folder or a hub: name")
            if spec.source.revision:
                raise spec.error("a hub revision is not supported for diarization (WhisperX loads the default branch)")
            if spec.source.kind == "path" and not os.path.isfile(os.path.join(os.path.expanduser(spec.source.ref), "config.yaml")):
                raise spec.error("no config.yaml there (a pyannote pipeline folder)")
        except ModelSourceError as exc:
            raise DiarizationLoadError(str(exc)) from None
        try:
            from whisperx.diarize import DiarizationPipeline

            with hub_offline(spec.offline):
                pipe = DiarizationPipeline(model_name=os.path.expanduser(spec.source.ref), token=os.environ.get(cfg.token_env) or None, device=device)
        except Exception as exc:  # noqa: BLE001 - hub, auth and file errors of pyannote: one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            offline = f", offline ({spec.offline_var or 'PRISM_OFFLINE'}=1): only a local folder or the hub cache can serve it" if spec.offline else ""
            raise DiarizationLoadError(str(spec.error(f"cannot be loaded{offline}", first))) from None
        config_file = _config_file(spec)
        _CACHE[key] = LoadedDiarization(cfg, pipe, device, threading.Lock(), model_record(spec, [config_file] if config_file else []))
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

    def release(self) -> bool:
        """Drop the process's loaded diarization pipelines (core/model_release.py); True when one was held."""
        with _CACHE_LOCK:
            held = bool(_CACHE)
            _CACHE.clear()
        return held
