"""The onnxruntime engine of the sentence embedder (prism_assets/core/text_onnx.py): same vectors as the numpy engine."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from prism_assets.core.text_embedding import DEFAULT_TEXT_MODEL, TextModelError, load_text_embedder  # noqa: E402
from prism_assets.core.text_onnx import OnnxTextEmbedder  # noqa: E402

TEXTS = [
    "car chase at night",
    "A man is playing a guitar on stage.",
    "Two dogs chase a ball across the park.",
    "The quarterly earnings report was released this morning.",
    "woman crying alone in the rain",
    "Ein Mann spielt Gitarre auf der Bühne.",
    "Die Polizei verfolgt das Auto durch die nächtliche Stadt.",
    "비 오는 밤 서울 거리에서 벌어지는 자동차 추격전",
    "남자가 무대에서 기타를 치고 있다.",
    "雨の夜、東京の街でカーチェイスが始まる。",
    "男性がステージでギターを弾いている。",
    "¿Dónde está la estación de tren?",
    "Episode 12 — the detective (played by J. Smith) returns to 221B; costs: $3,400.50 & 15% tax!",
    "OK",
    "a",
    "",
    "   ",
    "The film follows a family over three generations as they rebuild their village after the flood, " * 20,
    "helicopter flying over snowy mountains at dawn",
    "Breaking: storm warning issued for the coast; residents told to stay indoors until Sunday.",
]


@pytest.fixture(scope="module")
def emb():
    return load_text_embedder(DEFAULT_TEXT_MODEL)


@pytest.fixture(scope="module")
def ref(emb) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return emb.embed(TEXTS, batch_size=8)  # small batches: the long text is not padded into all of them


@pytest.fixture(scope="module")
def onnx_emb(emb) -> OnnxTextEmbedder:
    return OnnxTextEmbedder(emb)


def _check_parity(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.shape == ref.shape and got.dtype == np.float32
    assert float(np.abs(got - ref).max()) < 1e-4
    assert float((got * ref).sum(axis=1).min()) > 0.9999


def test_long_text_is_truncated(emb):
    assert len(emb._tok.encode(TEXTS[-3]).ids) == emb.max_seq_length == 256  # the text exceeds max_seq_length


def test_parity_with_numpy(onnx_emb, ref):
    got = onnx_emb.embed(TEXTS, batch_size=8)
    _check_parity(got, ref)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_parity_fused_contrib_graph(emb, ref):
    _check_parity(OnnxTextEmbedder(emb, fused=True).embed(TEXTS, batch_size=8), ref)


def test_batch_size_independence(onnx_emb, ref):
    full = onnx_emb.embed(TEXTS, batch_size=8)
    for bs in (1, 3):
        np.testing.assert_allclose(onnx_emb.embed(TEXTS, batch_size=bs), full, atol=1e-5)
    short = TEXTS[:-3] + TEXTS[-2:]  # without the long text: one batch of all
    np.testing.assert_allclose(onnx_emb.embed(short), np.concatenate([full[:-3], full[-2:]]), atol=1e-5)


def test_interface(emb, onnx_emb):
    import onnxruntime

    assert onnx_emb.dim == emb.dim == 384
    assert onnx_emb.source == emb.source and onnx_emb.max_seq_length == emb.max_seq_length
    prov = onnx_emb.provenance
    assert prov == {**emb.provenance, "engine": f"onnxruntime {onnxruntime.__version__}"}
    assert emb.provenance["engine"] == "numpy"
    empty = onnx_emb.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(ValueError):
        onnx_emb.embed("not a list")
    with pytest.raises(ValueError):
        onnx_emb.embed(["x"], batch_size=0)


def test_thread_safe(onnx_emb, ref):
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: onnx_emb.embed([TEXTS[i % len(TEXTS)]])[0], range(40)))
    for i, v in enumerate(outs):
        np.testing.assert_allclose(v, ref[i % len(TEXTS)], atol=1e-4)


def test_missing_onnxruntime_is_one_line_error(emb, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(TextModelError) as info:
        OnnxTextEmbedder(emb)
    assert "onnxruntime" in str(info.value) and "\n" not in str(info.value)


def test_the_configured_engine_is_the_one_used_and_named():
    """The profile's `models.text.engine` picks the engine of the index writer and the API; an unknown one is one line."""
    from prism_assets.core.text_embedding import QueryEmbedder, with_engine
    from prism_assets.index.resources import TextModelResource
    from prism_assets.resources import PrismProfile
    from prism_assets.serving.data import text_model_engine
    from prism_assets.settings import PrismSettings

    base = load_text_embedder(DEFAULT_TEXT_MODEL)
    assert with_engine(base, "numpy") is base
    fast = with_engine(base, "onnxruntime")
    assert fast.provenance["engine"].startswith("onnxruntime ") and fast.provenance["sha256"] == base.provenance["sha256"]
    with pytest.raises(TextModelError, match="unknown engine 'tensorrt'"):
        with_engine(base, "tensorrt")
    assert text_model_engine(PrismSettings.from_env(env={})) == "onnxruntime"
    assert text_model_engine(PrismSettings.from_env(env={}, profile_overrides={"models": {"text": {"engine": "numpy"}}})) == "numpy"
    assert TextModelResource(profile=PrismProfile(name="dev")).get().provenance["engine"].startswith("onnxruntime")
    q = QueryEmbedder(fast)
    v = q.embed(["car chase at night"])[0]
    assert abs(float(v @ base.embed(["car chase at night"])[0]) - 1.0) < 1e-5


def test_int8_query_encoder_agrees_with_float32(emb, ref):
    """int8 (query side only): cosine >= 0.99 with the float32 vectors of every text of two words or more (long, CJK,
    German included) and >= 0.97 for the rest ("OK", "a", empty: a vector of little more than [CLS] [SEP] is the
    hardest to quantize), and named so in its provenance."""
    q8 = OnnxTextEmbedder(emb, int8=True)
    got = q8.embed(TEXTS, batch_size=8)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = (got * ref).sum(axis=1)
    words = np.array([len(t.split()) >= 2 for t in TEXTS])
    assert float(cos[words].min()) >= 0.99 and float(cos.min()) >= 0.97, cos.round(4)
    assert float(np.abs(got - ref).max()) > 1e-4  # really quantized: not the float32 graph under another name
    assert q8.provenance["engine"].endswith(" int8") and q8.provenance["sha256"] == emb.provenance["sha256"]
    # the same ranking of the texts against a query as float32
    q, fq = q8.embed(["a man plays the guitar"])[0], OnnxTextEmbedder(emb).embed(["a man plays the guitar"])[0]
    assert list(np.argsort(-(ref @ q))[:3]) == list(np.argsort(-(ref @ fq))[:3])


def test_int8_query_encoder_is_selected_by_setting(monkeypatch):
    """`models.text.query_int8` (or PRISM_TEXT_QUERY_INT8) makes the server's query encoder int8; default float32; a bad
    value or the numpy engine with it is one line."""
    from prism_assets.serving.app import query_embedder, query_int8
    from prism_assets.settings import PrismSettings

    monkeypatch.delenv("PRISM_TEXT_QUERY_INT8", raising=False)
    plain = PrismSettings.from_env(env={})
    on = PrismSettings.from_env(env={}, profile_overrides={"models": {"text": {"query_int8": True}}})
    assert query_int8(plain) is False and query_int8(on) is True
    assert query_int8(plain, env={"PRISM_TEXT_QUERY_INT8": "1"}) is True and query_int8(on, env={"PRISM_TEXT_QUERY_INT8": "0"}) is False
    with pytest.raises(ValueError, match="PRISM_TEXT_QUERY_INT8") as info:
        query_int8(plain, env={"PRISM_TEXT_QUERY_INT8": "maybe"})
    assert "\n" not in str(info.value)
    assert query_embedder(on).inner.provenance["engine"].endswith(" int8")
    assert not query_embedder(plain).inner.provenance["engine"].endswith(" int8")
    numpy_int8 = PrismSettings.from_env(env={}, profile_overrides={"models": {"text": {"engine": "numpy", "query_int8": True}}})
    with pytest.raises(TextModelError, match="query_int8 needs the onnxruntime engine"):
        query_embedder(numpy_int8)
