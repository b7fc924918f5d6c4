"""The CLIP image tower run by ONNX Runtime on CPU: which engine runs where, and the exported graph's cache.

Engines (`models.clip.engine` in the profile, or PRISM_MODEL_CLIP_ENGINE / PRISM_CLIP_ENGINE):

* `torch`: open_clip's own forward pass (CUDA: fp16/bf16 autocast batches; CPU: fp32);
* `onnxruntime`: the visual tower exported once from the loaded torch model with `torch.onnx.export` (opset 17,
  dynamic batch), run by one `onnxruntime.InferenceSession` on the CPUExecutionProvider (fp32);
* `onnxruntime-int8`: the same graph with its MatMul/Gemm weights quantized to int8 (`quantize_dynamic`). Opt-in:
  kept only when its agreement with torch meets `PARITY_MIN_COSINE["onnxruntime-int8"]` on the check images.

The setting is one engine name or one per device kind, e.g. `{cpu: onnxruntime, cuda: torch}`; unset, CPU gets
`onnxruntime` and CUDA `torch`. The ONNX engines are CPU only (onnxruntime's CPU provider): asking for one on CUDA is
an error, not a silent switch.

The exported file is cached (`models.clip.onnx_dir`, else `default_onnx_dir()`: PRISM_CLIP_ONNX_DIR, next to the CLIP
weights' cache_dir, or `~/.cache/prism/clip-onnx`) under a key made of the model name, the sha256 of the visual tower's weights, its
architecture, the opset, the quantization and the torch / open_clip versions, with a JSON sidecar holding the file's
sha256 and the parity measured when it was built. Every load checks the sidecar and the file's sha256: a corrupted or
stale file is rebuilt (a warning says so). Every build is checked against the torch tower on `check_images()`
(noise, gradients, blurred noise): the minimum per-image cosine must reach `PARITY_MIN_COSINE`, or loading fails
with a one-line `ClipLoadError`. The measured cosine is recorded in the model info (`engine_parity_min_cosine`).

torch, onnx and onnxruntime are imported lazily. This module imports neither Dagster nor the platform resources.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.models import file_sha256
from ..core.store import sha256_file
from ..settings import model_override
from .clip_model import ClipLoadError

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnxruntime", "onnxruntime-int8")
ONNX_ENGINES = ("onnxruntime", "onnxruntime-int8")
DEFAULT_ENGINE = {"cpu": "onnxruntime", "cuda": "torch"}
PARITY_MIN_COSINE = {"onnxruntime": 0.999, "onnxruntime-int8": 0.99}
OPSET = 17
FORMAT = 1  # bump when the export changes in a way the key does not capture
INPUT, OUTPUT = "pixels", "features"


class ClipEngineError(ClipLoadError):
    """An engine setting or an ONNX build that cannot be used (a ClipLoadError: the step fails with it). One line."""


def select_engine(setting: Any, device_kind: str, env: Mapping[str, str] = os.environ) -> str:
    """The engine for a device kind ("cpu" or "cuda") from the `engine` setting: a name, a {cpu: .., cuda: ..} map,
    or None (DEFAULT_ENGINE). PRISM_MODEL_CLIP_ENGINE or PRISM_CLIP_ENGINE overrides the setting (settings.model_override)."""
    if device_kind not in DEFAULT_ENGINE:
        raise ClipEngineError(f"unknown device kind {device_kind!r}: expected cpu or cuda")
    over = model_override("clip", "engine", env)
    if over and over[1]:
        setting = over[1]
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(DEFAULT_ENGINE))
        if unknown:
            raise ClipEngineError(f"models.clip.engine: unknown device kinds {unknown}: expected cpu, cuda")
        setting = setting.get(device_kind)
    engine = str(setting).strip().lower() if setting not in (None, "") else DEFAULT_ENGINE[device_kind]
    if engine not in ENGINES:
        raise ClipEngineError(f"models.clip.engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if device_kind == "cuda" and engine in ONNX_ENGINES:
        raise ClipEngineError(f"models.clip.engine {engine} runs on CPU only (onnxruntime CPUExecutionProvider); "
                              "use engine torch on CUDA, e.g. engine: {cpu: onnxruntime, cuda: torch}")
    return engine


def default_onnx_dir(clip_cache_dir: str | None = None) -> Path:
    """Where exports are cached when `models.clip.onnx_dir` is not set: PRISM_MODEL_CLIP_ONNX_DIR or PRISM_CLIP_ONNX_DIR, else next to the CLIP
    weights (`<models.clip.cache_dir>/prism-onnx`), else `$XDG_CACHE_HOME/prism/clip-onnx` (default `~/.cache`), like
    the hub cache the weights come from. Content-keyed and checksum-verified, so one folder serves every data dir."""
    over = model_override("clip", "onnx_dir")
    if over and over[1]:
        return Path(over[1]).expanduser()
    if clip_cache_dir:
        return Path(clip_cache_dir).expanduser() / "prism-onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "prism" / "clip-onnx"


def weights_digest(module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state_dict (its weights, wherever they came from)."""
    import torch

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_images(mean, std, size: int, n: int = 8, seed: int = 0) -> np.ndarray:
    """Deterministic parity-check inputs, normalized like the encoder's (n, 3, size, size) float32: uniform noise,
    smooth colour gradients and blurred noise (textures closer to pictures than white noise is)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    imgs = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            img = rng.integers(0, 256, (size, size, 3)).astype(np.float32)
        elif kind == 1:
            a, b, c = rng.uniform(0, 255, 3), rng.uniform(-255, 255, 3), rng.uniform(-255, 255, 3)
            img = a + b * xx[..., None] + c * yy[..., None]
        else:
            k = 8
            small = rng.uniform(0, 255, (size // k + 1, size // k + 1, 3)).astype(np.float32)
            img = np.repeat(np.repeat(small, k, 0), k, 1)[:size, :size]
            img = (img + np.roll(img, k // 2, 0) + np.roll(img, k // 2, 1) + np.roll(img, (k // 2, k // 2), (0, 1))) / 4
        imgs.append(np.clip(np.round(img), 0, 255))
    x = np.stack(imgs).transpose(0, 3, 1, 2)
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1) * 255.0
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1) * 255.0
    return ((x - m) / s).astype(np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of two (n, d) arrays."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


@contextlib.contextmanager
def _no_mha_fastpath():
    """nn.MultiheadAttention's inference fast path (aten::_native_multi_head_attention) has no ONNX export."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):  # pragma: no cover - torch < 2.1
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def _ort():
    from ..core.caches import import_contained

    import_contained("onnxruntime")  # its telemetry id goes under the data dir, as elsewhere
    import onnxruntime

    return onnxruntime


def _session(path: Path, threads: int):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # no busy-waiting between runs: the step decodes the next pictures on the same (shared, few) CPUs meanwhile
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxImageTower:
    """The exported image tower: normalized (n, 3, S, S) float32 -> (n, embed_dim) float32 features (not normalized),
    like `open_clip` `model.encode_image`. `InferenceSession.run` is thread safe."""

    def __init__(self, session, path: Path, meta: dict, threads: int):
        self._session = session
        self.path = path
        self.meta = meta
        self.threads = threads

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def info(self) -> dict:
        """What goes into the model info of every output."""
        import onnxruntime

        m = self.meta
        return {"engine": m["engine"], "engine_version": f"onnxruntime {onnxruntime.__version__}", "onnx_file": self.path.name,
                "onnx_sha256": m["onnx_sha256"], "onnx_opset": m["opset"], "onnx_quantization": m["quantization"],
                "engine_threads": self.threads, "engine_parity_min_cosine": m["parity"]["min_cosine"],
                "engine_parity_tolerance": m["parity"]["tolerance"], "visual_weights_sha256": m["weights_sha256"]}


def _encode_module(model):
    """The module exported: exactly `model.encode_image` (the visual tower, whatever open_clip puts in it)."""
    import torch

    class EncodeImage(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.encode_image(x)

    return EncodeImage(model).eval()


def _key(model, model_name: str, engine: str, weights_sha256: str) -> dict:
    import open_clip
    import torch

    arch = hashlib.sha256(repr(model.visual).encode()).hexdigest()[:16]
    return {"format": FORMAT, "model": model_name, "weights_sha256": weights_sha256, "arch": arch,
            "opset": OPSET, "quantization": "int8-dynamic-7bit" if engine == "onnxruntime-int8" else None,
            "torch": torch.__version__.split("+")[0], "open_clip": open_clip.__version__}


def _key_id(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _paths(cache_dir: Path, key: dict) -> tuple[Path, Path]:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key["model"])
    stem = f"{safe}-visual-{_key_id(key)}" + ("-int8" if key["quantization"] else "")
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"


def _cached(onnx_path: Path, meta_path: Path, key: dict) -> tuple[dict | None, str]:
    """(sidecar, '') when the cached file is there, for this key and intact; else (None, why not)."""
    if not onnx_path.exists() and not meta_path.exists():
        return None, "not built yet"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"sidecar {meta_path.name} unreadable ({type(exc).__name__})"
    if meta.get("key") != key:
        return None, "sidecar is for other weights or versions"
    if not onnx_path.is_file():
        return None, f"{onnx_path.name} missing"
    digest = file_sha256(onnx_path)  # cached by path, mtime and size (core/models.py)
    if digest != meta.get("onnx_sha256"):
        return None, f"{onnx_path.name} checksum mismatch (sha256 {digest[:12]} != recorded {str(meta.get('onnx_sha256'))[:12]})"
    return meta, ""


def _export_fp32(model, dest: Path, image_size: int) -> None:
    import torch

    dummy = torch.zeros((2, 3, image_size, image_size), dtype=torch.float32)
    with _no_mha_fastpath(), torch.no_grad(), _quiet_export():
        torch.onnx.export(_encode_module(model), (dummy,), str(dest), opset_version=OPSET, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, do_constant_folding=True, dynamo=False)


@contextlib.contextmanager
def _quiet_export():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _quantize(src: Path, dest: Path) -> None:
    _ort()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a 'consider pre-processing' warning on the root logger
    try:
        # 7-bit weights (`reduce_range`): without AVX-512 VNNI, onnxruntime's u8s8 kernels saturate 8-bit products and
        # the int8 tower fell to cosine 0.984 of torch on an AVX2-only machine (0.99 needed); 7 bits keep it exact there
        quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"], reduce_range=True)
    finally:
        root.setLevel(level)


def _torch_features(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model.encode_image(torch.from_numpy(x)).float().numpy()


def _build(model, key: dict, engine: str, onnx_path: Path, meta_path: Path, *, image_size: int, mean, std, threads: int):
    """Export (int8: quantize the cached fp32 graph, built first if needed), check against torch, then move the file and
    its sidecar into the cache. Returns (sidecar, the checked session)."""
    t0 = time.monotonic()
    tmp = onnx_path.with_name(f".{onnx_path.name}.{os.getpid()}.tmp")
    try:
        if engine == "onnxruntime-int8":
            fp32_path, _, _ = _ensure(model, {**key, "quantization": None}, "onnxruntime", onnx_path.parent, image_size=image_size,
                                      mean=mean, std=std, threads=threads, session=False)
            _quantize(fp32_path, tmp)
        else:
            _export_fp32(model, tmp, image_size)
        session = _session(tmp, threads)  # reads the whole file: it stays valid after the file is moved
        x = check_images(mean, std, image_size)
        cos = cosines(session.run([OUTPUT], {INPUT: x})[0], _torch_features(model, x))
        tolerance = PARITY_MIN_COSINE[engine]
        if not np.isfinite(cos).all() or float(cos.min()) < tolerance:
            raise ClipEngineError(f"the {engine} export of CLIP {key['model']} disagrees with torch: min cosine "
                                  f"{float(np.nanmin(cos)):.5f} < {tolerance} on {len(x)} check images; use engine torch"
                                  + (" or onnxruntime" if engine == "onnxruntime-int8" else ""))
        meta = {"key": key, "engine": engine, "opset": OPSET, "quantization": key["quantization"],
                "weights_sha256": key["weights_sha256"], "onnx_sha256": sha256_file(tmp), "bytes": tmp.stat().st_size,
                "parity": {"min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6),
                           "tolerance": tolerance, "images": len(x)},
                "built_s": round(time.monotonic() - t0, 2), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.replace(tmp, onnx_path)
        mtmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
        mtmp.write_text(json.dumps(meta, indent=1))
        os.replace(mtmp, meta_path)
        return meta, session
    finally:
        tmp.unlink(missing_ok=True)


def _ensure(model, key: dict, engine: str, cache_dir: Path, *, image_size: int, mean, std, threads: int, session: bool = True):
    """(path, sidecar, session or None) of the cached export for `key`: reused when intact, else (re)built."""
    onnx_path, meta_path = _paths(cache_dir, key)
    meta, why = _cached(onnx_path, meta_path, key)
    if meta is not None:
        if not session:
            return onnx_path, meta, None
        try:
            return onnx_path, meta, _session(onnx_path, threads)
        except Exception as exc:  # noqa: BLE001 - a file onnxruntime cannot read is rebuilt like a corrupted one
            why = f"onnxruntime cannot load {onnx_path.name}: {type(exc).__name__}"
    if why != "not built yet":
        log.warning("CLIP %s ONNX cache %s: %s; rebuilding", key["model"], cache_dir, why)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta, sess = _build(model, key, engine, onnx_path, meta_path, image_size=image_size, mean=mean, std=std, threads=threads)
    log.info("CLIP %s %s engine built in %.1f s (%s, min cosine vs torch %.5f)", key["model"], engine, meta["built_s"],
             onnx_path.name, meta["parity"]["min_cosine"])
    return onnx_path, meta, sess if session else None


def load_onnx_tower(model, model_name: str, engine: str = "onnxruntime", *, cache_dir: str | Path | None = None,
                    image_size: int, mean, std, threads: int | None = None) -> OnnxImageTower:
    """The ONNX image tower of a loaded open_clip `model` for `engine`: from the cache when it is there and intact,
    else exported (and, for int8, quantized), parity-checked against torch and cached. Raises ClipEngineError."""
    import torch

    if engine not in ONNX_ENGINES:
        raise ClipEngineError(f"not an ONNX engine: {engine!r}")
    try:
        _ort()
    except ImportError as exc:
        raise ClipEngineError(f"engine {engine} needs the packages onnx and onnxruntime ({exc}); or set models.clip.engine: torch") from None
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_onnx_dir()
    threads = int(threads or torch.get_num_threads())
    key = _key(model, model_name, engine, weights_digest(model.visual))
    try:
        path, meta, session = _ensure(model, key, engine, cache_dir, image_size=image_size, mean=mean, std=std, threads=threads)
    except ClipEngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - export / onnxruntime errors are long and multi-line
        raise ClipEngineError(f"cannot build the {engine} engine for CLIP {model_name} in {cache_dir}: {type(exc).__name__}: {exc}") from None
    return OnnxImageTower(session, path, meta, threads)
