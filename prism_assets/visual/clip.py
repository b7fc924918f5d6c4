"""The CLIP model resource of the visual assets (one per process; see `clip_model.py` for where
the weights come from and how frames are encoded)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from ..resources import PrismProfile
from .clip_model import (  # noqa: F401  (re-exported: the visual domain's CLIP API)
    PRECISIONS,
    ClipLoadError,
    ClipModel,
    ClipSource,
    get_clip,
    load_clip,
)


class ClipModelResource(ConfigurableResource):
    """CLIP for the visual assets. The source comes from the profile (`models.clip`); the model is
    loaded on first use and once per process."""

    profile: PrismProfile
    batch_size: int = Field(default=64, description="Frames per forward pass")
    precision: str | None = Field(default=None, description="fp32, fp16 or bf16; default fp16 on CUDA, fp32 on CPU")

    def source(self) -> ClipSource:
        return ClipSource.from_config((self.profile.config().get("models") or {}).get("clip") or {})

    def get(self) -> ClipModel:
        return get_clip(self.source(), self.profile.device(), self.precision)
