"""The CLIP model resource of the visual assets (one per process; see `clip_model.py` for where
the weights come from and how frames are encoded, `clip_onnx.py` for the engines: torch | onnxruntime)."""

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
from .clip_onnx import ENGINES, select_engine  # noqa: F401  (re-exported)


class ClipModelResource(ConfigurableResource):
    """CLIP for the visual assets. The source comes from the profile (`models.clip`); the model is
    loaded on first use and once per process."""

    profile: PrismProfile
    batch_size: int = Field(default=64, description="Frames per forward pass")
    precision: str | None = Field(default=None, description="fp32, fp16 or bf16; default fp16 on CUDA, fp32 on CPU")

    def _cfg(self) -> dict:
        return (self.profile.config().get("models") or {}).get("clip") or {}

    def source(self) -> ClipSource:
        return ClipSource.from_config(self._cfg())

    def engine(self, device: str | None = None) -> str:
        """The engine `get()` runs on `device` (default: the profile's): `models.clip.engine` (a name or one per
        device kind; unset: onnxruntime on CPU, torch on CUDA) or PRISM_CLIP_ENGINE (clip_onnx.select_engine)."""
        kind = (device or self.profile.device()).split(":")[0]
        return select_engine(self._cfg().get("engine"), kind)

    def onnx_dir(self) -> str | None:
        return self._cfg().get("onnx_dir") or None

    def get(self) -> ClipModel:
        device = self.profile.device()
        return get_clip(self.source(), device, self.precision, engine=self.engine(device), onnx_dir=self.onnx_dir())

    def release(self) -> bool:
        """Drop the process's loaded CLIP models (core/model_release.py); True when one was held."""
        from .clip_model import release_clip

        return release_clip()
