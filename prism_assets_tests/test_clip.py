"""CLIP loading and embedding (prism_assets.visual.clip).

No CLIP weights exist offline, so the model here is a RANDOM-INIT ViT-B-32 created through the same
loading code as production; the checkpoint round trip then proves the production path (a local
weights file through open_clip.create_model) on a real model. ViT-B-32 is created once per module.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from prism_assets.resources import PrismProfile
from prism_assets.visual.clip import ClipLoadError, ClipModel, ClipModelResource, ClipSource, get_clip, load_clip

CLIP_ENV = ("PRISM_CLIP_MODEL", "PRISM_CLIP_PRETRAINED", "PRISM_CLIP_RANDOM_INIT")


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    # get_clip -> load_clip: the same process-wide model the dev-profile resource gets (tested below)
    model = get_clip(ClipSource(model="ViT-B-32", pretrained=None, random_init=True), device="cpu")
    assert get_clip(ClipSource(random_init=True), device="cpu") is model
    return model


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(3, 224, 224, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def frame_emb(clip, frames) -> np.ndarray:
    return clip.encode_images(frames, batch_size=2)


def _check_embeddings(e: np.ndarray, n: int) -> None:
    assert e.shape == (n, 512)
    assert e.dtype == np.float32
    assert np.isfinite(e).all()
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)


def _one_line_error(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def test_random_init_loads_and_says_so(clip):
    info = clip.info
    assert info["model"] == "ViT-B-32"
    assert info["pretrained"] is None
    assert info["weights"] == "random-init"
    assert info["weights_trained"] is False
    assert info["checkpoint_sha256"] is None
    assert (info["embed_dim"], info["image_size"]) == (512, 224) == (clip.embed_dim, clip.image_size)
    assert (info["device"], info["precision"]) == ("cpu", "fp32")
    assert info["engine"] == "onnxruntime" == clip.engine  # the default on CPU (tests: test_clip_onnx.py)
    assert info["open_clip_version"]
    assert len(info["mean"]) == len(info["std"]) == 3
    model = clip.torch_model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_encode_images_normalized_deterministic_distinct(clip, frames, frame_emb):
    e = frame_emb
    _check_embeddings(e, 3)
    # same input, same batching -> same output
    np.testing.assert_allclose(clip.encode_images(frames[:2], batch_size=2), e[:2], rtol=0, atol=1e-6)
    # different images -> different embeddings
    for i in range(3):
        for j in range(i + 1, 3):
            assert float(e[i] @ e[j]) < 1 - 1e-4


def test_encode_images_other_sizes_resized_like_open_clip(clip, frames, frame_emb):
    import torch
    import torchvision.transforms.functional as TF

    rng = np.random.default_rng(1)
    wide = rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, size=(300, 200, 3), dtype=np.uint8)
    tiny = rng.integers(0, 256, size=(1, 1, 3), dtype=np.uint8)  # upsampled
    e = clip.encode_images([wide, frames[1], tall, tiny], batch_size=64)
    _check_embeddings(e, 4)
    # an already-224 frame is only normalized: the same embedding as in the NHWC batch
    np.testing.assert_allclose(e[1], frame_emb[1], rtol=0, atol=1e-5)

    # the others as open_clip's eval transform has them: torchvision Resize(224, bicubic, antialias) + CenterCrop
    def reference(img):
        t = torch.from_numpy(img).permute(2, 0, 1)
        t = TF.resize(t, 224, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        return TF.center_crop(t, [224, 224]).permute(1, 2, 0).numpy()

    ref = clip.encode_images(np.stack([reference(wide), reference(tall), reference(tiny)]))
    np.testing.assert_allclose(e[[0, 2, 3]], ref, rtol=0, atol=1e-5)


def test_encode_images_empty_and_bad_input(clip):
    assert clip.encode_images([]).shape == (0, 512)
    assert clip.encode_images(np.zeros((0, 224, 224, 3), np.uint8)).dtype == np.float32
    with pytest.raises(ValueError):
        clip.encode_images(np.zeros((2, 224, 224, 3), np.float32))
    with pytest.raises(ValueError):
        clip.encode_images(np.zeros((224, 224, 3), np.uint8))  # one frame, not NHWC


def test_encode_text(clip):
    t = clip.encode_text(["a photo of a dog", "a photo of a cat", "the end credits"])
    _check_embeddings(t, 3)
    assert float(t[0] @ t[2]) < 1 - 1e-4
    assert clip.encode_text([]).shape == (0, 512)


def test_checkpoint_round_trip(clip, frames, frame_emb, tmp_path):
    import torch

    path = tmp_path / "ckpt.pt"
    torch.save(clip.torch_model.state_dict(), path)
    loaded = load_clip(ClipSource(model="ViT-B-32", pretrained=str(path)))
    info = loaded.info
    assert info["weights"] == f"checkpoint:{path.resolve()}"
    assert info["weights_trained"] is True
    assert info["pretrained"] == str(path)
    with open(path, "rb") as fh:
        assert info["checkpoint_sha256"] == hashlib.file_digest(fh, "sha256").hexdigest()
    assert loaded is not clip
    np.testing.assert_allclose(loaded.encode_images(frames, batch_size=2), frame_emb, rtol=0, atol=1e-5)
    texts = ["a photo of a dog", "a photo of a cat"]
    np.testing.assert_allclose(loaded.encode_text(texts), clip.encode_text(texts), rtol=0, atol=1e-5)


def test_error_missing_checkpoint(tmp_path):
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(pretrained=str(tmp_path / "nope.pt")))
    assert "not found" in _one_line_error(exc)


def test_error_checkpoint_for_another_model(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(pretrained=str(bad)))
    assert "does not load" in _one_line_error(exc)


def test_error_unknown_model():
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(model="ViT-Q-99", random_init=True))
    msg = _one_line_error(exc)
    assert "unknown model name" in msg and "ViT-B-32" in msg


def test_error_unknown_hub_tag():
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(pretrained="no_such_tag_s1b"))
    msg = _one_line_error(exc)
    assert "not a known hub tag" in msg and "laion2b_s34b_b79k" in msg


def test_error_hub_tag_offline_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(pretrained="laion2b_s34b_b79k", cache_dir=str(tmp_path)))
    assert time.monotonic() - t0 < 30
    msg = _one_line_error(exc)
    assert "laion2b_s34b_b79k" in msg and "offline" in msg and "random_init" in msg


def test_error_no_weights_configured():
    with pytest.raises(ClipLoadError) as exc:
        load_clip(ClipSource(pretrained=None, random_init=False))
    assert "no weights configured" in _one_line_error(exc)


def test_source_from_config_and_env():
    cfg = {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "random_init": False}
    assert ClipSource.from_config(cfg, env={}) == ClipSource("ViT-B-32", "laion2b_s34b_b79k", False)
    assert ClipSource.from_config({}, env={}) == ClipSource()
    env = {"PRISM_CLIP_MODEL": "ViT-B-16", "PRISM_CLIP_PRETRAINED": "/models/clip.pt", "PRISM_CLIP_RANDOM_INIT": "true"}
    assert ClipSource.from_config(cfg, env=env) == ClipSource("ViT-B-16", "/models/clip.pt", True)
    assert ClipSource.from_config(cfg, env={"PRISM_CLIP_PRETRAINED": "", "PRISM_CLIP_RANDOM_INIT": "1"}) == ClipSource(
        "ViT-B-32", None, True
    )
    assert ClipSource.from_config({"random_init": True}, env={"PRISM_CLIP_RANDOM_INIT": "0"}).random_init is False
    with pytest.raises(ValueError):
        ClipSource.from_config({"pretrianed": "x"}, env={})
    with pytest.raises(ValueError):
        ClipSource.from_config({}, env={"PRISM_CLIP_RANDOM_INIT": "maybe"})


def test_profiles_declare_clip():
    dev = ClipSource.from_config(PrismProfile(name="dev").config()["models"]["clip"], env={})
    assert dev == ClipSource("ViT-B-32", None, True)
    prod = ClipSource.from_config(PrismProfile(name="prod").config()["models"]["clip"], env={})
    assert prod == ClipSource("ViT-B-32", "laion2b_s34b_b79k", False)


def test_resource_dev_profile_loads_once(monkeypatch, clip, frames, frame_emb):
    for var in CLIP_ENV:
        monkeypatch.delenv(var, raising=False)
    resource = ClipModelResource(profile=PrismProfile(name="dev"))
    assert resource.batch_size == 64
    model = resource.get()
    assert model.info["weights"] == "random-init" and model.info["weights_trained"] is False
    assert model.info["device"] == "cpu"
    assert resource.get() is model
    # the profile's source is the fixture's: the process-wide cache hands out the one model
    assert model is clip
    np.testing.assert_allclose(model.encode_images(frames[:1], batch_size=resource.batch_size), frame_emb[:1], atol=1e-5)


def test_large_frames_are_resized_a_few_at_a_time_with_the_same_embeddings(clip, monkeypatch):
    """The resize's float32 working set is bounded (clip_model.RESIZE_WORKING_BYTES): 24 posters of 1080p resized at
    once were a 0.6 GB spike in a title's run; resized two at a time they give the same embeddings."""
    from prism_assets.visual import clip_model

    big = np.random.default_rng(2).integers(0, 256, size=(5, 270, 480, 3), dtype=np.uint8)
    mixed = [big[0], big[1], np.ascontiguousarray(big[2, :200, :300]), big[3], big[4]]
    whole_array, whole_list = clip.encode_images(big), clip.encode_images(mixed)
    monkeypatch.setattr(clip_model, "RESIZE_WORKING_BYTES", 2 * 4 * 3 * 270 * 480)  # two frames per resize
    np.testing.assert_allclose(clip.encode_images(big), whole_array, rtol=0, atol=1e-6)
    np.testing.assert_allclose(clip.encode_images(mixed), whole_list, rtol=0, atol=1e-6)
    monkeypatch.setattr(clip_model, "RESIZE_WORKING_BYTES", 1)  # one frame per resize
    np.testing.assert_allclose(clip.encode_images(big), whole_array, rtol=0, atol=1e-6)
