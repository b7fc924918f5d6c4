"""The sentence-embedding BERT of text_embedding.py run by onnxruntime: same tokens, same batching, same vectors.

`OnnxTextEmbedder(inner)` wraps a loaded `TextEmbedder` (numpy engine) and replaces only its forward pass: the ONNX
graph is written here from the model's safetensors with `onnx.helper` (no torch, no export, no download), kept in
memory (built in ~1 s) and run by one `onnxruntime.InferenceSession` with one intra-op and one inter-op thread.
Tokenization, truncation at max_seq_length and length-sorted batching are the inner embedder's own code.

Two equivalent graphs can be built (`fused=`):
- fused=False (default): standard opset-17 ops only, laid out as a torch export (separate Q/K/V MatMul + Add, Div by
  sqrt(d), additive -10000 mask, Erf GELU); ORT_ENABLE_ALL fuses BiasGelu and the scaled MatMul itself;
- fused=True: ONNX Runtime's BERT contrib ops (com.microsoft Attention, SkipLayerNormalization, BiasGelu) written
  directly: the graph `onnxruntime.transformers.optimizer.optimize_model(model_type="bert")` makes of the plain one
  (6 Attention, 12 SkipLayerNormalization, 6 BiasGelu). On a 2-core AMD EPYC with one thread it was no faster
  (within noise, 0-10 % slower) for 3-8 word queries at batch 1-16, so it is not the default.
Both are ~3x faster than numpy for one query and ~1.4x at batch 16 (weights are read once per pass: batch 1 is
memory-bound). Both take input_ids and attention_mask (int64, [batch, seq]) and give L2-normalised mean-pooled
[batch, hidden] float32. Parity with the numpy engine: prism_assets_tests/test_text_onnx.py (max |diff| < 1e-4).

`int8=True` (query encoders only: the server's `models.text.query_int8`, serving/app.py): the graph's weight MatMuls
but the FFN output projections quantized by onnxruntime's dynamic quantization (7-bit int8 weights per output channel,
uint8 activations per call; the attention's activation x activation MatMuls, the embeddings, LayerNorms and pooling
stay float). Less CPU per query (first measured 1.4 vs 3.5 ms for 3-8 words on a 2-core EPYC with AVX-512 VNNI; 4.4
vs 6.0 ms on an AVX2-only one); its vectors agree with float32 at cosine >= 0.99 for queries of two words or more
(test_text_onnx.py), ~0.975 for a one-token text like "OK"; per-tensor quantization only reached ~0.93. Without VNNI,
onnxruntime's u8s8 kernels saturate 8-bit products: with full 8-bit weights and only the first layer's FFN output
kept float the worst cosine fell to 0.978 on an AVX2-only machine, hence 7-bit weights (`reduce_range`) and every
layer's FFN output in float (worst 0.993 there). Rows are embedded in float32 (the index); only the query side may
be int8.

onnx and onnxruntime are optional: without them `OnnxTextEmbedder` raises `TextModelError` (one line).
"""

from __future__ import annotations

import json
import re

import numpy as np

from prism_assets.core.text_embedding import TextEmbedder, TextModelError

_MS = "com.microsoft"
FFN_OUT = re.compile(r"l\d+/output\.dense/mm")  # the FFN output projections (kept float in int8 mode)


def _modules(source: str):
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise TextModelError(source, f"the onnxruntime engine needs the packages onnx and onnxruntime ({exc}): "
                                     "pip install onnx onnxruntime, or use the numpy engine") from None
    return onnx, onnxruntime


def build_bert_onnx(folder, *, fused: bool = False, source: str = "", max_seq_length: int = 512):
    """The ONNX ModelProto (opset 17) of the sentence-embedding BERT in `folder` (config.json + model.safetensors)."""
    from safetensors.numpy import load_file

    onnx, _ = _modules(source or str(folder))
    from onnx import TensorProto, helper, numpy_helper

    cfg = json.loads((folder / "config.json").read_text())
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    head_dim, eps = hidden // heads, float(cfg.get("layer_norm_eps", 1e-12))
    raw = load_file(str(folder / "model.safetensors"))
    w = {(k[5:] if k.startswith("bert.") else k): v for k, v in raw.items()}
    nodes, inits = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def get(name: str) -> np.ndarray:
        if name not in w:
            raise TextModelError(source or str(folder), f"weight {name} missing from {folder / 'model.safetensors'}")
        return np.asarray(w[name], dtype=np.float32)

    def weight(name: str) -> str:  # torch Linear (out, in) -> (in, out) for x @ W
        return const(name + ".weight", get(name + ".weight").T)

    def node(op: str, inputs: list[str], out: str, domain: str | None = None, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def linear(x: str, name: str, out: str) -> str:
        return node("Add", [node("MatMul", [x, weight(name)], out + "/mm"), const(name + ".bias", get(name + ".bias"))], out)

    def layer_norm(x: str, name: str, out: str) -> str:
        return node("LayerNormalization", [x, const(name + ".weight", get(name + ".weight")),
                                           const(name + ".bias", get(name + ".bias"))], out, axis=-1, epsilon=eps)

    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    # embeddings: word[ids] + pos[:L] + type[0], LayerNorm
    seq = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    pos = node("Slice", [const("embeddings.position_embeddings.weight",
                               get("embeddings.position_embeddings.weight")[:max_seq_length]),
                         const("zero_1d", i64([0])), seq, const("zero_1d_axis", i64([0]))], "pos_emb")
    word = node("Gather", [const("embeddings.word_embeddings.weight", get("embeddings.word_embeddings.weight")),
                           "input_ids"], "word_emb")
    emb = node("Add", [node("Add", [word, pos], "emb/wp"),
                       const("type0", get("embeddings.token_type_embeddings.weight")[0])], "emb/sum")
    x = layer_norm(emb, "embeddings.LayerNorm", "emb/ln")
    maskf = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    if fused:
        mask_i = node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)  # raw 2D mask
    else:  # torch's extended mask: (1 - mask[:, None, None, :]) * -10000
        m4 = node("Unsqueeze", [node("Unsqueeze", ["attention_mask", const("ax1", i64([1]))], "mask_u1"),
                                const("ax2", i64([2]))], "mask_u2")
        mask_add = node("Mul", [node("Sub", [const("one", f32(1.0)), node("Cast", [m4], "mask_c", to=TensorProto.FLOAT)],
                                     "mask_inv"), const("neg", f32(-10000.0))], "mask_add")
        split_heads = const("split_heads", i64([0, 0, heads, head_dim]))
        merge_heads = const("merge_heads", i64([0, 0, hidden]))
    for i in range(int(cfg["num_hidden_layers"])):
        p, t = f"encoder.layer.{i}.", f"l{i}/"
        att = p + "attention.self."
        if fused:
            qkv_w = np.concatenate([get(att + n + ".weight").T for n in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([get(att + n + ".bias") for n in ("query", "key", "value")])
            ctx = node("Attention", [x, const(att + "qkv.weight", qkv_w), const(att + "qkv.bias", qkv_b), mask_i],
                       t + "ctx", domain=_MS, num_heads=heads)
        else:
            def head_split(n: str, perm: list[int], x: str = x, att: str = att, t: str = t) -> str:
                y = node("Reshape", [linear(x, att + n, t + n), split_heads], t + n + "/4d")
                return node("Transpose", [y], t + n + "/t", perm=perm)

            q, k, v = head_split("query", [0, 2, 1, 3]), head_split("key", [0, 2, 3, 1]), head_split("value", [0, 2, 1, 3])
            s = node("Div", [node("MatMul", [q, k], t + "qk"), const(t + "sqrt_d", f32(np.sqrt(head_dim)))], t + "scores")
            probs = node("Softmax", [node("Add", [s, mask_add], t + "masked")], t + "probs", axis=-1)
            c = node("Transpose", [node("MatMul", [probs, v], t + "ctx4")], t + "ctx_t", perm=[0, 2, 1, 3])
            ctx = node("Reshape", [c, merge_heads], t + "ctx")
        for sub, inp, ln in (("attention.output.dense", ctx, "attention.output.LayerNorm"), ("ffn", None, "output.LayerNorm")):
            if sub == "ffn":  # intermediate dense + exact GELU, then output dense
                if fused:
                    h = node("BiasGelu", [node("MatMul", [x, weight(p + "intermediate.dense")], t + "ffn_in/mm"),
                                          const(p + "intermediate.dense.bias", get(p + "intermediate.dense.bias"))],
                             t + "gelu", domain=_MS)
                else:
                    a = linear(x, p + "intermediate.dense", t + "ffn_in")
                    erf = node("Erf", [node("Div", [a, const(t + "sqrt2", f32(np.sqrt(2.0)))], t + "gelu/div")], t + "gelu/erf")
                    g = node("Mul", [a, node("Add", [erf, const(t + "one", f32(1.0))], t + "gelu/add")], t + "gelu/mul")
                    h = node("Mul", [g, const(t + "half", f32(0.5))], t + "gelu")
                inp, sub = h, "output.dense"
            if fused:
                mm = node("MatMul", [inp, weight(p + sub)], t + sub + "/mm")
                x = node("SkipLayerNormalization", [mm, x, const(p + ln + ".weight", get(p + ln + ".weight")),
                                                    const(p + ln + ".bias", get(p + ln + ".bias")),
                                                    const(p + sub + ".bias", get(p + sub + ".bias"))],
                         t + ln, domain=_MS, epsilon=eps)
            else:
                x = layer_norm(node("Add", [linear(inp, p + sub, t + sub), x], t + sub + "/res"), p + ln, t + ln)
    # mean pooling over real tokens, then L2 normalisation
    m3 = node("Unsqueeze", [maskf, const("ax_last", i64([-1]))], "mask_3d")
    ax1 = const("pool_axis", i64([1]))
    total = node("ReduceSum", [node("Mul", [x, m3], "pool/masked"), ax1], "pool/sum", keepdims=0)
    count = node("Max", [node("ReduceSum", [m3, ax1], "pool/count_raw", keepdims=0), const("tiny", f32(1e-9))], "pool/count")
    pooled = node("Div", [total, count], "pooled")
    norm = node("Max", [node("ReduceL2", [pooled], "norm_raw", axes=[1], keepdims=1), const("tiny2", f32(1e-12))], "norm")
    node("Div", [pooled, norm], "sentence_embedding")

    ids_info = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    out_info = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])]
    graph = helper.make_graph(nodes, "sentence_bert", ids_info, out_info, inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(_MS, 1)] if fused else [])
    return helper.make_model(graph, opset_imports=opsets, producer_name="prism_assets.text_onnx", ir_version=8)


def quantize_int8(model):
    """The ModelProto with its weight MatMuls int8 (dynamic quantization, per output channel): see the module notes."""
    import logging
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic

    inits = {i.name for i in model.graph.initializer}
    # every weight MatMul but the layers' FFN output projections (the widest activation ranges, after GELU: their int8
    # error carries through the later layers; see the module notes for the numbers)
    weight_mm = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits and not FFN_OUT.fullmatch(n.name)]
    root = logging.getLogger()  # the quantizer logs a pre-processing hint at WARNING on the root logger
    level = root.level
    with tempfile.TemporaryDirectory(prefix="prism_int8_") as tmp:
        out = Path(tmp) / "model.int8.onnx"
        root.setLevel(max(level, logging.ERROR))
        try:
            # 7-bit weights (`reduce_range`): onnxruntime's u8s8 kernels without AVX-512 VNNI saturate 8-bit products
            quantize_dynamic(model, out, op_types_to_quantize=["MatMul"], nodes_to_quantize=weight_mm, per_channel=True,
                             weight_type=QuantType.QInt8, reduce_range=True)
        finally:
            root.setLevel(level)
        import onnx

        return onnx.load(str(out))


class OnnxTextEmbedder:
    """A `TextEmbedder` whose forward pass runs in onnxruntime (one thread). Same public interface and vectors (`int8`:
    close to them, for queries); `InferenceSession.run` is thread safe, so several threads may call `embed` at once."""

    def __init__(self, inner: TextEmbedder, *, fused: bool = False, int8: bool = False):
        _, ort = _modules(inner.source)
        self.inner, self.fused, self.int8 = inner, fused, bool(int8)
        try:
            model = build_bert_onnx(inner.folder, fused=fused, source=inner.source, max_seq_length=inner.max_seq_length)
            if self.int8:
                model = quantize_int8(model)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except TextModelError:
            raise
        except Exception as exc:  # onnxruntime errors are long and multi-line
            raise TextModelError(inner.source, f"cannot build the onnxruntime engine: {type(exc).__name__}: {exc}") from None
        self._engine = f"onnxruntime {ort.__version__}" + (" int8" if self.int8 else "")

    def __getattr__(self, name):  # source, folder, max_seq_length, dim, _tok, _pad_id, _dim ... of the inner embedder
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def provenance(self) -> dict:
        return {**self.inner.provenance, "engine": self._engine}

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(B, L) int64 token ids and 0/1 mask -> (B, hidden) L2-normalised mean-pooled sentence embeddings."""
        return self._session.run(None, {"input_ids": np.ascontiguousarray(ids, dtype=np.int64),
                                        "attention_mask": np.ascontiguousarray(mask, dtype=np.int64)})[0]

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 unit vectors in the order of `texts`: the inner embedder's tokenization and length-sorted
        batching (`TextEmbedder.embed` itself, run on this object), with this object's `_forward`."""
        return TextEmbedder.embed(self, texts, batch_size)

    def __repr__(self) -> str:
        return f"OnnxTextEmbedder(source={self.inner.source!r}, dim={self.dim}, fused={self.fused}, int8={self.int8}, engine={self._engine!r})"
