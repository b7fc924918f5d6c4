"""GPU throughput of the model steps, for a machine with CUDA (run where a GPU is lent).

    python3 -m benchmarks.gpu_benchmark --out benchmarks/results/gpu_throughput.json

Measures, each after a warm-up, with `torch.cuda.synchronize()` around the timed region:

* CLIP image embeddings through Prism's own loading and encoding code
  (`prism_assets.visual.clip_model.load_clip` + `ClipModel.encode_images`: uint8 frames from
  pinned host memory, normalization on the device, autocast fp16/bf16), ViT-B-32 and ViT-L-14 at
  batch 256, on 224x224 frames (what the decode pass stores) and on 640x360 frames (keyframes, which
  are resized on the device). Random-init weights: throughput does not depend on the weight values.
* Whisper large-v3 *architecture* real-time factor (transformers' WhisperForConditionalGeneration,
  random init from the large-v3 dimensions, fp16, batched 30-s windows, a fixed 120 decoded tokens
  per window forced with min/max_new_tokens): a proxy for the transcript step's GPU cost. It is NOT
  the CTranslate2 / faster-whisper path Prism runs (its CUDA 12 build cannot be installed on the lent
  CUDA 13 machine), and the weights carry no language, so only the compute is measured.

This module imports neither Dagster nor the platform resources, so it runs with torch, open_clip and
numpy alone (the lent machine's image has torch; open_clip is carried as a wheel).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path


def _sync():
    import torch

    torch.cuda.synchronize()


def clip_throughput(batch: int = 256, n_batches: int = 8) -> dict:
    import numpy as np
    import torch

    from prism_assets.visual.clip_model import ClipSource, load_clip

    out: dict = {}
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(batch * n_batches, 224, 224, 3), dtype=np.uint8)
    wide = rng.integers(0, 256, size=(batch * 2, 360, 640, 3), dtype=np.uint8)
    for name in ("ViT-B-32", "ViT-L-14"):
        for precision in ("fp16", "bf16"):
            m = load_clip(ClipSource(model=name, random_init=True), device="cuda", precision=precision)
            m.encode_images(small[: batch * 2], batch_size=batch)  # warm-up (cuDNN autotune, allocator)
            _sync()
            t0 = time.perf_counter()
            e = m.encode_images(small, batch_size=batch)
            _sync()
            dt = time.perf_counter() - t0
            assert e.shape == (len(small), m.embed_dim) and np.isfinite(e).all()
            rec = {"images_per_s_224": round(len(small) / dt, 1), "embed_dim": m.embed_dim}
            m.encode_images(wide[:batch], batch_size=batch)
            _sync()
            t0 = time.perf_counter()
            m.encode_images(wide, batch_size=batch)
            _sync()
            rec["images_per_s_640x360_resized_on_gpu"] = round(len(wide) / (time.perf_counter() - t0), 1)
            rec["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            out[f"{name}_b{batch}_{precision}"] = rec
            print(f"  CLIP {name} {precision} b{batch}: {rec}", flush=True)
            del m
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    return out


def whisper_large_v3_proxy(batch: int = 16, tokens: int = 120) -> dict:
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(  # large-v3 dimensions
        vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32, decoder_layers=32,
        encoder_attention_heads=20, decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120,
        max_source_positions=1500, max_target_positions=448, decoder_start_token_id=50258, pad_token_id=50257,
        eos_token_id=50257, bos_token_id=50257,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).to("cuda", dtype=torch.float16).eval()
    params = sum(p.numel() for p in model.parameters())
    feats = torch.randn(batch, 128, 3000, device="cuda", dtype=torch.float16)
    start = torch.full((batch, 1), cfg.decoder_start_token_id, device="cuda", dtype=torch.long)

    def run():
        with torch.inference_mode():
            enc = model.model.encoder(feats).last_hidden_state
            ids = start
            past = None
            for _ in range(tokens):  # greedy, fixed length: the compute of `tokens` decoded tokens per window
                o = model(encoder_outputs=(enc,), decoder_input_ids=ids[:, -1:], past_key_values=past, use_cache=True)
                past = o.past_key_values
                ids = torch.cat([ids, o.logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            return ids

    run()
    _sync()
    t0 = time.perf_counter()
    run()
    _sync()
    dt = time.perf_counter() - t0
    audio_s = 30.0 * batch
    res = {"params_m": round(params / 1e6, 1), "batch_windows": batch, "tokens_per_window": tokens, "seconds": round(dt, 3),
           "audio_seconds": audio_s, "real_time_factor": round(dt / audio_s, 5), "x_real_time": round(audio_s / dt, 1),
           "peak_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
           "note": "transformers Whisper, large-v3 dimensions, random init, fp16, greedy with a KV cache, fixed token count; "
                   "a proxy for the GPU cost, not the CTranslate2 path"}
    print(f"  whisper large-v3 proxy: {res}", flush=True)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_throughput.json"))
    ap.add_argument("--skip-whisper", action="store_true")
    a = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark runs on a GPU machine")
    env = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": torch.cuda.get_device_name(0),
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        import open_clip

        env["open_clip"] = open_clip.__version__
    except Exception:  # pragma: no cover
        pass
    print(f"GPU benchmark on {env['device']}", flush=True)
    res = {"environment": env, "clip": clip_throughput()}
    if not a.skip_whisper:
        res["whisper_large_v3_proxy"] = {f"b{b}": whisper_large_v3_proxy(batch=b) for b in (8, 16)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
