"""The CLIP image tower on ONNX Runtime (prism_assets.visual.clip_onnx) and the embeddings step's duplicate skipping.

No CLIP weights exist offline: the export is tested on RANDOM-INIT open_clip models created through the same loading
code as production. Most tests use ViT-S-32 (the smallest ViT config open_clip ships: a 22M-parameter tower, export in
a few seconds); one test runs the project's configured ViT-B-32 through the dev profile's resource. Agreement with the
torch path is measured per image (cosine >= 0.999 fp32, >= 0.99 int8), on pictures of several kinds and sizes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prism_assets.resources import PrismProfile
from prism_assets.visual import clip_onnx
from prism_assets.visual.clip import ClipLoadError, ClipModelResource, ClipSource, load_clip
from prism_assets.visual.clip_model import resolve_device
from prism_assets.visual.clip_onnx import ClipEngineError, cosines, default_onnx_dir, select_engine
from prism_assets.visual.embeddings import compute_embeddings, unique_pictures
from prism_assets.visual.packs import PackWriter, read_pack_image

SMALL = ClipSource(model="ViT-S-32", pretrained=None, random_init=True)
FP32_TOL, INT8_TOL = 0.999, 0.99


def _sha(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Noise, smooth gradients and blocky textures at the input size, plus frames that go through the resize."""
    rng = np.random.default_rng(7)
    out = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    yy, xx = np.mgrid[0:224, 0:224]
    for c in ((30, 200, 90), (240, 10, 128)):
        out.append(np.stack([(xx * c[0] / 224 + yy * c[1] / 224 + c[2]) % 256] * 3, axis=-1).astype(np.uint8))
    blocks = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    out.append(np.repeat(np.repeat(blocks, 16, 0), 16, 1))
    out.append(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8))  # resized + center-cropped
    out.append(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8))
    return out


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clip-onnx")


@pytest.fixture(scope="module")
def small_torch():
    return load_clip(SMALL, device="cpu", engine="torch")


@pytest.fixture(scope="module")
def small_onnx(onnx_dir):
    return load_clip(SMALL, device="cpu", onnx_dir=str(onnx_dir))  # engine unset: onnxruntime on CPU


@pytest.fixture(scope="module")
def torch_emb(small_torch, frames):
    return small_torch.encode_images(frames, batch_size=4)


def test_export_and_load_small_model(small_onnx, onnx_dir):
    import onnx

    info = small_onnx.info
    assert small_onnx.engine == info["engine"] == "onnxruntime"
    assert info["engine_version"].startswith("onnxruntime ")
    assert (info["device"], info["precision"], info["weights"], info["weights_trained"]) == ("cpu", "fp32", "random-init", False)
    path = onnx_dir / info["onnx_file"]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert info["onnx_sha256"] == meta["onnx_sha256"] == _sha(path)
    assert meta["key"]["model"] == "ViT-S-32" and meta["key"]["weights_sha256"] == info["visual_weights_sha256"]
    assert info["onnx_opset"] >= 17 and info["onnx_quantization"] is None
    assert meta["parity"]["tolerance"] == FP32_TOL <= meta["parity"]["min_cosine"] == info["engine_parity_min_cosine"]
    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert "RANDOM" not in repr(small_onnx) and "engine=onnxruntime" in repr(small_onnx)


def test_onnx_matches_torch_per_image(small_onnx, frames, torch_emb):
    e = small_onnx.encode_images(frames, batch_size=4)
    assert e.shape == torch_emb.shape == (len(frames), 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    cos = cosines(e, torch_emb)
    assert cos.min() >= FP32_TOL, cos
    # dynamic batch: one frame at a time gives the same vectors as batches of four
    np.testing.assert_allclose(small_onnx.encode_images(frames[:3], batch_size=1), e[:3], rtol=0, atol=1e-5)
    assert small_onnx.encode_images([]).shape == (0, 384)


def test_cache_reused_on_second_load(small_onnx, onnx_dir, frames, monkeypatch):
    import torch

    path = onnx_dir / small_onnx.info["onnx_file"]
    before = (path.stat().st_mtime_ns, path.with_suffix(".json").read_text())

    def no_export(*a, **k):
        raise AssertionError("the cached export must be reused, not exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = load_clip(SMALL, device="cpu", onnx_dir=str(onnx_dir))
    assert again is not small_onnx and again.info["onnx_file"] == path.name
    assert (path.stat().st_mtime_ns, path.with_suffix(".json").read_text()) == before
    assert sorted(p.name for p in onnx_dir.iterdir()) == sorted([path.name, path.with_suffix(".json").name])
    np.testing.assert_allclose(again.encode_images(frames[:2]), small_onnx.encode_images(frames[:2]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("damage", ["flip-bytes", "sidecar-garbage"])
def test_damaged_cache_is_rebuilt(small_onnx, small_torch, onnx_dir, frames, torch_emb, tmp_path, caplog, damage):
    d = tmp_path / "cache"
    shutil.copytree(onnx_dir, d)
    path = d / small_onnx.info["onnx_file"]
    side = path.with_suffix(".json")
    if damage == "flip-bytes":
        with open(path, "r+b") as fh:
            fh.seek(path.stat().st_size // 2)
            fh.write(b"\x00garbage\xff" * 64)
    else:
        side.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="prism_assets.visual.clip_onnx"):
        rebuilt = load_clip(SMALL, device="cpu", onnx_dir=str(d))
    assert any("rebuilding" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert _sha(path) == json.loads(side.read_text())["onnx_sha256"] == rebuilt.info["onnx_sha256"]
    assert cosines(rebuilt.encode_images(frames, batch_size=4), torch_emb).min() >= FP32_TOL
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_parity_failure_and_unusable_cache_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(clip_onnx.PARITY_MIN_COSINE, "onnxruntime", 1.5)  # unreachable: the build must refuse
    with pytest.raises(ClipEngineError) as exc:
        load_clip(SMALL, device="cpu", onnx_dir=str(tmp_path / "strict"))
    assert "disagrees with torch" in _one_line(exc) and isinstance(exc.value, ClipLoadError)
    assert not any((tmp_path / "strict").iterdir())  # nothing half-built is left to be trusted later
    monkeypatch.undo()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ClipLoadError) as exc:
        load_clip(SMALL, device="cpu", onnx_dir=str(blocker / "clip"))
    assert "cannot build the onnxruntime engine" in _one_line(exc)


def test_int8_engine_within_tolerance(small_onnx, onnx_dir, frames, torch_emb):
    q = load_clip(SMALL, device="cpu", engine="onnxruntime-int8", onnx_dir=str(onnx_dir))
    info = q.info
    assert q.engine == "onnxruntime-int8" and info["onnx_quantization"] == "int8-dynamic-7bit"
    assert info["engine_parity_tolerance"] == INT8_TOL <= info["engine_parity_min_cosine"]
    assert info["onnx_file"] != small_onnx.info["onnx_file"]
    assert (onnx_dir / info["onnx_file"]).stat().st_size < 0.5 * (onnx_dir / small_onnx.info["onnx_file"]).stat().st_size
    assert cosines(q.encode_images(frames, batch_size=4), torch_emb).min() >= INT8_TOL


def test_engine_selection_by_configuration(monkeypatch):
    monkeypatch.delenv("PRISM_CLIP_ENGINE", raising=False)
    assert select_engine(None, "cpu") == "onnxruntime" and select_engine(None, "cuda") == "torch"
    assert select_engine("torch", "cpu") == "torch"
    assert select_engine({"cpu": "onnxruntime-int8"}, "cpu") == "onnxruntime-int8"
    assert select_engine({"cpu": "onnxruntime"}, "cuda") == "torch"  # a kind left out gets the default
    assert select_engine("onnxruntime", "cpu", env={"PRISM_CLIP_ENGINE": "torch"}) == "torch"
    for bad, kind, words in (("tensorrt", "cpu", "expected one of"), ("onnxruntime", "cuda", "CPU only"),
                             ({"tpu": "torch"}, "cpu", "unknown device kinds")):
        with pytest.raises(ClipEngineError) as exc:
            select_engine(bad, kind, env={})
        assert words in _one_line(exc)

    dev, prod = ClipModelResource(profile=PrismProfile(name="dev")), ClipModelResource(profile=PrismProfile(name="prod"))
    assert dev.engine() == "onnxruntime"  # dev: device cpu
    assert prod.engine("cpu") == "onnxruntime" and prod.engine("cuda") == "torch" and prod.engine("cuda:1") == "torch"
    # ClipSource takes the same models.clip section, engine keys included
    assert ClipSource.from_config(PrismProfile(name="prod").config()["models"]["clip"], env={}).model == "ViT-B-32"

    # the GPU node: prod on CUDA asks get_clip for torch with the default precision, which is fp16 on CUDA
    import torch

    import prism_assets.visual.clip as clip_resource

    calls = []
    monkeypatch.setattr(PrismProfile, "device", lambda self: "cuda")
    monkeypatch.setattr(clip_resource, "get_clip", lambda *a, **k: calls.append((a, k)) or "model")
    assert prod.get() == "model"
    (args, kwargs), = calls
    assert args[1:] == ("cuda", None) and kwargs["engine"] == "torch"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda", None) == ("cuda", "fp16") and resolve_device("cpu", None) == ("cpu", "fp32")


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("PRISM_CLIP_ONNX_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_onnx_dir() == tmp_path / "xdg" / "prism" / "clip-onnx"  # shared by every data dir: content-keyed
    assert default_onnx_dir("/models/clip-cache") == Path("/models/clip-cache/prism-onnx")  # next to the weights
    monkeypatch.setenv("PRISM_CLIP_ONNX_DIR", str(tmp_path / "env"))
    assert default_onnx_dir("/models/clip-cache") == tmp_path / "env"
    assert ClipModelResource(profile=PrismProfile(name="dev", overrides={"models": {"clip": {"onnx_dir": "/x"}}})).onnx_dir() == "/x"


def test_project_model_dev_profile_onnx_vs_torch(frames, monkeypatch, tmp_path):
    """The configured architecture (dev profile: ViT-B-32, random init) through the resource, against torch."""
    for var in ("PRISM_CLIP_MODEL", "PRISM_CLIP_PRETRAINED", "PRISM_CLIP_RANDOM_INIT", "PRISM_CLIP_ENGINE"):
        monkeypatch.delenv(var, raising=False)
    resource = ClipModelResource(profile=PrismProfile(name="dev"))
    model = resource.get()
    assert model.info["model"] == "ViT-B-32" and model.info["engine"] == "onnxruntime"
    ref = load_clip(resource.source(), device="cpu", engine="torch")
    assert ref.info["engine"] == "torch" and ref.info["engine_version"].startswith("torch ")
    cos = cosines(model.encode_images(frames, batch_size=8), ref.encode_images(frames, batch_size=8))
    assert cos.min() >= FP32_TOL, cos


# -- the embeddings step embeds each distinct picture once ------------------------------------------------------------


class _CountingModel:
    """A stand-in CLIP: a fixed random projection of the pixels (so equal pictures give equal vectors), counting calls."""

    embed_dim = 16
    info = {"model": "fake", "weights": "random-init", "weights_trained": False, "device": "cpu", "engine": "onnxruntime"}

    def __init__(self):
        self.seen = 0
        self._proj = np.random.default_rng(0).standard_normal((3, self.embed_dim)).astype(np.float32)

    def encode_images(self, images, batch_size=64):
        self.seen += len(images)
        v = np.stack([(img.astype(np.float32).mean(axis=(0, 1)) + 1.0) @ self._proj + img.astype(np.float32).std() for img in images])
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _pack(tmp_path, pictures):
    w = PackWriter(tmp_path / "samples.pack", quality=90)
    locs = [w.add(p) for p in pictures]
    w.close()
    return {"samples": tmp_path / "samples.pack"}, locs


def test_unique_pictures_by_bytes(tmp_path):
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    packs, (la, lb, la2) = _pack(tmp_path, [a, b, a.copy()])  # a stored twice: identical JPEG bytes
    items = [("sample", 0, 0.0, "samples", *la), ("sample", 25, 1.0, "samples", *lb), ("sample", 50, 2.0, "samples", *la2),
             ("keyframe", 25, 1.0, "samples", *lb)]  # a keyframe taken from the samples
    unique, src = unique_pictures(items, packs)
    assert unique == [0, 1] and src.tolist() == [0, 1, 0, 1]
    assert unique_pictures([], packs)[0] == []


def test_compute_embeddings_embeds_distinct_pictures_once(tmp_path):
    rng = np.random.default_rng(4)
    black = np.zeros((24, 24, 3), np.uint8)
    pics = [black, rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), black, black, rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)]
    packs, locs = _pack(tmp_path, pics)
    samples = pd.DataFrame([{"kind": "sample", "frame": 25 * i, "t_s": float(i), "pack": "samples", "offset": o, "length": n}
                            for i, (o, n) in enumerate(locs)])
    keyframes = pd.DataFrame([{"frame": 25, "t_s": 1.0, "pack": "samples", "offset": locs[1][0], "length": locs[1][1]}])
    shots = pd.DataFrame({"start_frame": [0, 60]})
    model = _CountingModel()
    sc = SimpleNamespace(title_id="t1", model=SimpleNamespace(get=lambda: model, batch_size=2), profile=SimpleNamespace(name="dev"),
                         storage=SimpleNamespace(stage_bundle=lambda *a: {"samples.pack": packs["samples"]}),
                         log=logging.getLogger("test"), provenance=None, producer=lambda code_version=None, model=None, **extra: {"model": model, **extra})
    res = compute_embeddings(sc, samples, shots, keyframes)
    df = res.value
    assert model.seen == 3  # black once, two distinct pictures; the keyframe is sample 1
    assert len(df) == 6 and df["kind"].tolist() == ["sample"] * 5 + ["keyframe"]
    assert list(df.columns) == ["kind", "frame", "t_s", "shot_index", "model", "embedding"]
    emb = np.stack(df["embedding"].to_numpy())
    stored = [read_pack_image(packs["samples"], o, n) for o, n in [*locs, locs[1]]]
    expected = _CountingModel().encode_images(stored)  # every row as if its picture were embedded on its own
    np.testing.assert_allclose(emb, expected, rtol=0, atol=1e-6)
    assert df.attrs["producer"]["pictures"] == {"pictures": 6, "embedded": 3, "duplicates_skipped": 3}
    assert df.attrs["producer"]["model"]["engine"] == "onnxruntime"
