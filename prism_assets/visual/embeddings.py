"""CLIP embeddings of a title: `embeddings` (every embedding sample and keyframe, on the GPU pool)
and `shot_embeddings` (per shot, the mean of its embeddings; a cheap table step).

Each distinct picture is embedded once: a keyframe taken from the embedding samples, repeated black or still frames
(identical JPEG bytes) share one embedding; every sample and keyframe still has its row. The engine (torch or
onnxruntime, `models.clip.engine`) is recorded in the model info (`engine`) and the step's metadata.

    frame_samples + shots + keyframes -> embeddings   (pool: gpu, ClipModelResource)
    embeddings + shots -> shot_embeddings
"""

import hashlib
import time

import numpy as np
import pandas as pd
from dagster import MetadataValue

from ..core.signal import Output, Result, Signal, SignalContext
from .assets import DOMAIN, VISUAL_SCHEMA_VERSION, with_attrs
from .checks import EMB_RULES, SHOT_EMB_RULES
from .clip import ClipLoadError
from .packs import PacksMissingError, pack_paths, read_pack_bytes, read_pack_image

EMBEDDINGS_CODE_VERSION = "embeddings-1"


def unique_pictures(items: list[tuple], packs: dict) -> tuple[list[int], np.ndarray]:
    """(first item of each distinct picture, item -> distinct picture index). Pictures are the same when their JPEG
    bytes are (blake2b): a keyframe that is an embedding sample, repeated black or still frames. Identical bytes
    decode to identical pixels, so sharing their embedding changes nothing."""
    first: dict[tuple, int] = {}
    unique: list[int] = []
    src = np.zeros(len(items), dtype=np.int64)
    for i, it in enumerate(items):
        data = read_pack_bytes(packs[it[3]], it[4], it[5])
        key = (len(data), hashlib.blake2b(data, digest_size=16).digest())
        if key not in first:
            first[key] = len(unique)
            unique.append(i)
        src[i] = first[key]
    return unique, src


def compute_embeddings(sc: SignalContext, frame_samples: pd.DataFrame, shots: pd.DataFrame, keyframes: pd.DataFrame) -> Result:
    title_id = sc.title_id
    clip = sc.model
    model = clip.get()
    packs = pack_paths(sc.storage, title_id)
    samples = frame_samples[frame_samples["kind"] == "sample"]
    items = [("sample", r.frame, r.t_s, r.pack, r.offset, r.length) for r in samples.itertuples()]
    items += [("keyframe", r.frame, r.t_s, r.pack, r.offset, r.length) for r in keyframes.itertuples()]
    starts = shots["start_frame"].to_numpy()
    unique, src = unique_pictures(items, packs)
    embs = []
    bs = clip.batch_size
    t0 = time.monotonic()
    for i in range(0, len(unique), bs):
        imgs = [read_pack_image(packs[items[j][3]], items[j][4], items[j][5]) for j in unique[i : i + bs]]
        embs.append(model.encode_images(imgs, batch_size=bs))
        sc.log.debug(f"{title_id}: embedded {min(len(unique), i + bs)}/{len(unique)} distinct pictures")
    seconds = time.monotonic() - t0
    uniq_emb = np.concatenate(embs) if embs else np.zeros((0, model.embed_dim), np.float32)
    emb = uniq_emb[src] if len(items) else uniq_emb
    frames = np.array([it[1] for it in items], dtype=np.int64)
    shot_idx = np.searchsorted(starts, frames, side="right") - 1 if len(frames) else np.zeros(0, np.int64)
    info = dict(model.info)
    label = f"{info['model']}/{info['weights']}"
    df = pd.DataFrame({
        "kind": [it[0] for it in items], "frame": frames, "t_s": [float(it[2]) for it in items],
        "shot_index": shot_idx.astype(np.int64), "model": label, "embedding": list(emb.astype(np.float32)),
    })
    pictures = {"pictures": len(items), "embedded": len(unique), "duplicates_skipped": len(items) - len(unique)}
    df = with_attrs(df, sc.producer(EMBEDDINGS_CODE_VERSION, model=info, expected_rows=len(samples) + len(keyframes), pictures=pictures))
    sc.provenance = info
    if not info.get("weights_trained"):
        sc.log.warning(f"{title_id}: embeddings from {label}: weights are NOT trained (offline dev profile); not semantically meaningful")
    return Result(df, metadata={"rows": len(df), "model": label, "weights_trained": bool(info.get("weights_trained")), "device": info.get("device"),
                                "engine": info.get("engine", "torch"), **pictures, "encode_seconds": round(seconds, 3),
                                "images_per_s": round(len(unique) / seconds, 1) if seconds > 0 and unique else 0.0, "embed_dim": int(model.embed_dim), "producer": MetadataValue.json(info)})


EMBEDDINGS = Signal(
    name="embeddings", domain=DOMAIN, code_version=EMBEDDINGS_CODE_VERSION, inputs=("frame_samples", "shots", "keyframes"),
    pool="gpu", model="clip", compute=compute_embeddings, errors=(ClipLoadError, PacksMissingError),
    description="open_clip image embeddings (L2-normalized) of the 1/s samples and of the keyframes: t_s, frame, shot_index, embedding.",
    outputs=(Output("embeddings", VISUAL_SCHEMA_VERSION, "titles/<title_id>/embeddings.parquet", kinds=("pytorch", "parquet"),
                    rules=EMB_RULES, export="embeddings.parquet"),),
)


def compute_shot_embeddings(sc: SignalContext, embeddings: pd.DataFrame) -> Result:
    """Per shot: the mean of its sample and keyframe embeddings, re-normalized."""
    info = (embeddings.attrs.get("producer") or {}).get("model") or {}
    label = f"{info.get('model')}/{info.get('weights')}"
    emb = np.stack(embeddings["embedding"].to_numpy()) if len(embeddings) else np.zeros((0, int(info.get("embed_dim") or 0)), np.float32)
    shot_idx = embeddings["shot_index"].to_numpy(dtype=np.int64)
    rows = []
    for s in sorted(set(shot_idx.tolist())):
        v = emb[shot_idx == s].mean(axis=0)
        nv = float(np.linalg.norm(v))
        if nv > 0:
            rows.append({"shot_index": int(s), "n_embeddings": int((shot_idx == s).sum()), "model": label, "embedding": (v / nv).astype(np.float32)})
    sdf = pd.DataFrame(rows, columns=["shot_index", "n_embeddings", "model", "embedding"])
    sdf = with_attrs(sdf, sc.producer(EMBEDDINGS_CODE_VERSION, model=info))
    sc.provenance = info
    return Result(sdf, metadata={"shots": len(sdf), "model": label, "weights_trained": bool(info.get("weights_trained")),
                                 "embed_dim": int(emb.shape[1]) if emb.ndim == 2 else 0})


SHOT_EMBEDDINGS = Signal(
    name="shot_embeddings", domain=DOMAIN, code_version=EMBEDDINGS_CODE_VERSION, inputs=("embeddings",), compute=compute_shot_embeddings,
    description="Per shot: the mean of its sample and keyframe embeddings, re-normalized (same model as embeddings).",
    outputs=(Output("shot_embeddings", VISUAL_SCHEMA_VERSION, "titles/<title_id>/shot_embeddings.parquet", kinds=("parquet",),
                    rules=SHOT_EMB_RULES, export="shot_embeddings.parquet"),),
)
