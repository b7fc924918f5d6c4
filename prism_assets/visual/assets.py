"""Visual signal assets: one decode pass -> frame statistics + kept pictures -> shots, keyframes,
CLIP embeddings (per sample and per shot) and poster candidates. Only `visual_pass` decodes.

Graph (all partitioned by title):

    source_video -> visual_pass [frame_stats, frame_samples]   (pool: decode)
    frame_stats -> shots
    shots + frame_samples -> keyframes
    frame_samples + shots + keyframes -> clip_embeddings [embeddings, shot_embeddings]  (pool: gpu)
    frame_stats + frame_samples + shots -> posters   (pool: gpu: CLIP prompt score + de-duplication)
"""

import io
import math
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, AssetIn, AssetOut, Failure, MetadataValue, Output, asset, multi_asset

from ..core import checks
from ..core.artifacts import Bundle
from ..core.signals import default_freshness_policy, tracked_signal_run
from ..core.routing import CPU_OP_TAGS, GPU_OP_TAGS, TRANSIENT_RETRY_POLICY
from ..core.store import StoreError
from ..ingest.assets import _open_uri
from ..partitions import titles_partitions
from ..resources import CatalogResource, PrismProfile, PrismStorage
from .clip import ClipLoadError, ClipModelResource
from .decode import DECODE_CODE_VERSION, STATS_SCHEMA_VERSION, VisualDecodeError, VisualPassConfig, read_pack_bytes, read_pack_image, run_visual_pass
from .select import KEYFRAMES_CODE_VERSION, POSTERS_CODE_VERSION, PosterParams, poster_exclusions, poster_score_parts, rank_posters, select_keyframes
from .shots import SHOTS_CODE_VERSION, SHOTS_SCHEMA_VERSION, TRANSITIONS, detect_shots, transition_frames

VISUAL_SCHEMA_VERSION = "1.0"
EMBEDDINGS_CODE_VERSION = "embeddings-1"
NORM_TOL = 1e-3


def _visual_cfg(profile: PrismProfile) -> dict:
    return profile.config().get("visual", {}) or {}


def _producer(profile: PrismProfile, code_version: str, model=None, **extra) -> dict:
    return {"tool": "prism-visual", "pyav_version": av.__version__, "code_version": code_version, "model": model, "profile": profile.name, **extra}


def _with_attrs(df: pd.DataFrame, producer: dict, schema_version: str = VISUAL_SCHEMA_VERSION) -> pd.DataFrame:
    """Schema version and producer travel inside the Parquet file (pandas stores df.attrs)."""
    df.attrs = {"schema_version": schema_version, "producer": producer}
    return df


def _pack_paths(storage: PrismStorage, title_id: str) -> dict[str, Path]:
    """Local paths of the frame_samples packs (downloaded to scratch for an S3 artifact root)."""
    files = storage.stage_bundle("frame_samples", title_id, "packs")
    out = {name[: -len(".pack")]: path for name, path in files.items() if name.endswith(".pack")}
    if not out:
        raise Failure(description=f"{title_id}: frame_samples has no picture packs (re-run visual_pass)")
    return out


# ---------------------------------------------------------------------------------------------
# checks


def _stats_contiguous(df: pd.DataFrame):
    f = df["frame"].to_numpy()
    ok = len(f) > 0 and f[0] == 0 and bool(np.all(np.diff(f) == 1))
    t = df["t_s"].to_numpy()
    mono = bool(np.all(np.diff(t) >= 0)) if len(t) > 1 else True
    return ok and mono, {"frames": int(len(f)), "t_monotonic": mono}


def _stats_finite(df: pd.DataFrame):
    cols = ["luma_mean", "luma_std", "black_ratio", "diff", "hist_diff", "sharpness", "exposure", "colorfulness"]
    bad = {c: int((~np.isfinite(df[c].to_numpy(dtype=float))).sum()) for c in cols}
    return sum(bad.values()) == 0, {"non_finite": bad}


def _stats_frame_count(df: pd.DataFrame):
    expected = df.attrs.get("producer", {}).get("expected_frames")
    if not expected:
        return True, {"frames": len(df), "expected_frames": None}
    return abs(len(df) - expected) <= 1, {"frames": len(df), "expected_frames": int(expected)}


STATS_RULES = [
    checks.CheckRule("frames_contiguous", "One row per decoded frame, numbered 0..n-1, timestamps non-decreasing.", _stats_contiguous, blocking=True),
    checks.CheckRule("stats_finite", "Every per-frame statistic is finite.", _stats_finite),
    checks.CheckRule("frame_count_matches_probe", "Decoded frames = the probe's frame count (±1); a mismatch means decode errors.",
                     _stats_frame_count, severity=AssetCheckSeverity.WARN),
]


def _samples_index_ok(b: Bundle):
    df = b.main
    sizes = {name[:-5]: Path(p).stat().st_size for name, p in b.files.items()}
    bad = 0
    for r in df.itertuples():
        if r.offset < 0 or r.length <= 0 or r.offset + r.length > sizes.get(r.pack, -1):
            bad += 1
    return bad == 0, {"pictures": len(df), "out_of_pack": bad, "pack_bytes": sizes}


def _samples_rate(b: Bundle):
    df = b.main
    meta = df.attrs.get("producer", {})
    dur, rate = meta.get("duration_s"), meta.get("sample_fps")
    n = int((df["kind"] == "sample").sum())
    if not dur or not rate:
        return n > 0, {"samples": n}
    expected = math.ceil(dur * rate - 1e-6)
    return abs(n - expected) <= 1, {"samples": n, "expected": expected}


SAMPLES_RULES = [
    checks.CheckRule("pictures_in_packs", "Every picture of the index lies inside its pack.", _samples_index_ok, blocking=True),
    checks.CheckRule("sample_rate", "One embedding sample per 1/sample_fps seconds (±1).", _samples_rate),
]


def _shots_cover(df: pd.DataFrame):
    n = df.attrs.get("producer", {}).get("frames")
    s, e = df["start_frame"].to_numpy(), df["end_frame"].to_numpy()
    ok = len(df) > 0 and s[0] == 0 and bool(np.all(s[1:] == e[:-1] + 1)) and bool(np.all(e >= s))
    if n is not None:
        ok = ok and int(e[-1]) == n - 1
    return ok, {"shots": len(df), "frames": n, "last_end_frame": int(e[-1]) if len(e) else None}


def _shots_transitions(df: pd.DataFrame):
    problems = []
    for r in df.itertuples():
        if r.transition_in not in TRANSITIONS:
            problems.append(f"shot {r.shot_index}: unknown transition {r.transition_in}")
        if (r.shot_index == 0) != (r.transition_in == "start"):
            problems.append(f"shot {r.shot_index}: 'start' must be the first shot's and only its")
        if r.transition_in_first > r.transition_in_last:
            problems.append(f"shot {r.shot_index}: transition span reversed")
        if r.transition_in in ("dissolve", "fade_in", "fade_out") and not (r.transition_in_first <= r.start_frame <= r.transition_in_last + 1):
            problems.append(f"shot {r.shot_index}: boundary {r.start_frame} outside its transition {r.transition_in_first}-{r.transition_in_last}")
        if not r.end_s > r.start_s:
            problems.append(f"shot {r.shot_index}: end_s <= start_s")
    return not problems, {"problems": problems[:20]}


SHOTS_RULES = [
    checks.CheckRule("shots_cover_all_frames", "Shots are contiguous, start at frame 0 and end at the last frame.", _shots_cover, blocking=True),
    checks.CheckRule("transitions_well_formed", "Known transition types; 'start' only first; gradual spans contain their boundary; times increase.", _shots_transitions),
]


def _kf_per_shot(b: Bundle):
    df = b.main
    shots = df.attrs.get("producer", {}).get("non_black_shots", [])
    have = set(df["shot_index"].tolist())
    missing = [s for s in shots if s not in have]
    return not missing, {"non_black_shots": len(shots), "missing": missing[:50]}


def _kf_inside(b: Bundle):
    df = b.main
    ranges = df.attrs.get("producer", {}).get("shot_ranges", {})
    bad = [int(r.frame) for r in df.itertuples() if not (ranges[str(r.shot_index)][0] <= r.frame <= ranges[str(r.shot_index)][1])]
    finite = bool(np.isfinite(df["score"].to_numpy(dtype=float)).all()) if len(df) else True
    return not bad and finite, {"outside_shot": bad[:20], "scores_finite": finite}


KEYFRAME_RULES = [
    checks.CheckRule("keyframe_per_shot", "Every non-black shot has at least one keyframe.", _kf_per_shot),
    checks.CheckRule("keyframes_inside_shots", "Every keyframe lies inside its shot and has a finite score.", _kf_inside),
]


def _emb_ok(df: pd.DataFrame):
    if not len(df):
        return False, {"rows": 0}
    m = np.stack(df["embedding"].to_numpy())
    norms = np.linalg.norm(m, axis=1)
    dims = {int(len(e)) for e in df["embedding"]}
    finite = bool(np.isfinite(m).all())
    ok = finite and len(dims) == 1 and bool(np.all(np.abs(norms - 1) <= NORM_TOL))
    return ok, {"rows": len(df), "dims": sorted(dims), "norm_min": float(norms.min()), "norm_max": float(norms.max()), "finite": finite}


def _emb_count(df: pd.DataFrame):
    meta = df.attrs.get("producer", {})
    exp = meta.get("expected_rows")
    return exp is not None and len(df) == exp, {"rows": len(df), "expected": exp}


def _emb_dim(df: pd.DataFrame):
    want = (df.attrs.get("producer", {}).get("model") or {}).get("embed_dim")
    dims = {int(len(e)) for e in df["embedding"]}
    return dims == {want}, {"dims": sorted(dims), "model_embed_dim": want}


EMB_RULES = [
    checks.CheckRule("count_matches_samples", "One embedding per sample and per keyframe.", _emb_count),
    checks.CheckRule("dims_fixed", "Every embedding has the model's dimension.", _emb_dim),
    checks.CheckRule("normalized_finite", "Embeddings are finite and L2-normalized (|norm - 1| <= 1e-3).", _emb_ok),
]
SHOT_EMB_RULES = [
    checks.CheckRule("normalized_finite", "Shot embeddings are finite and L2-normalized.", _emb_ok),
    checks.CheckRule("one_per_shot", "One pooled embedding per shot that has any embedding.",
                     lambda df: (bool(df["shot_index"].is_unique), {"shots": len(df)})),
]


def _posters_clean(b: Bundle):
    df = b.main
    bad = df.attrs.get("producer", {}).get("excluded_chosen", [])
    return not bad and bool(np.isfinite(df["score"].to_numpy(dtype=float)).all()) if len(df) else True, {"posters": len(df), "bad": bad}


def _posters_count(b: Bundle):
    df = b.main
    meta = df.attrs.get("producer", {})
    want, avail = meta.get("count"), meta.get("eligible")
    ok = len(df) == min(want, avail) if want is not None and avail is not None else len(df) > 0
    return ok, {"posters": len(df), "requested": want, "eligible_candidates": avail}


POSTER_RULES = [
    checks.CheckRule("no_black_bars_transition", "No poster comes from a black, blank, colour-bar or transition frame; scores finite.", _posters_clean),
    checks.CheckRule("poster_count", "min(N, eligible candidates) posters, ranked.", _posters_count, severity=AssetCheckSeverity.WARN),
]


# ---------------------------------------------------------------------------------------------
# assets


@multi_asset(
    outs={
        "frame_stats": AssetOut(
            is_required=False,  # not produced for an audio-only title: its visual descendants and QC are skipped
            code_version=DECODE_CODE_VERSION, kinds={"video", "pyav", "parquet"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": STATS_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/frame_stats.parquet"},
            description="Per-frame statistics of the one visual decode pass: shot features, luma/black/bars/colour-bar evidence, "
            "quality measures. Read by shots, QC and posters; nothing decodes again.",
        ),
        "frame_samples": AssetOut(
            is_required=False,
            code_version=DECODE_CODE_VERSION, kinds={"video", "jpeg"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": STATS_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/frame_samples/<version>/"},
            description="Pictures kept by the decode pass: embedding samples (1/s, 224 px CLIP crops), keyframe candidates "
            "(best frame per window) and the full-resolution poster pool, as JPEG packs with an index.",
        ),
    },
    ins={"source_video": AssetIn()},
    partitions_def=titles_partitions,
    group_name="visual",
    pool="decode",
    op_tags=CPU_OP_TAGS,
    retry_policy=TRANSIENT_RETRY_POLICY,
    check_specs=checks.specs("frame_stats", STATS_RULES) + checks.specs("frame_samples", SAMPLES_RULES),
)
def visual_pass(context: AssetExecutionContext, source_video: dict, storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile):
    """Decode the title once (threaded PyAV, scaling in libswscale) for all visual work."""
    title_id = context.partition_key
    if "audio_only" in (source_video.get("flags") or []):
        # an audio-only delivery has no picture: nothing is materialized, so every visual asset and
        # QC downstream is skipped (not failed) and the audio signals run; the checks say why
        why = "audio-only delivery (no video stream): visual signals skipped"
        context.log.warning(f"{title_id}: {why}")
        for asset_name, rules in (("frame_stats", STATS_RULES), ("frame_samples", SAMPLES_RULES)):
            for r in rules:
                yield AssetCheckResult(asset_key=asset_name, check_name=r.name, passed=True, severity=AssetCheckSeverity.WARN,
                                       metadata={"skipped": why})
        return
    with tracked_signal_run(context, catalog, signal="visual_pass", code_version=DECODE_CODE_VERSION) as rec:
        cfg = VisualPassConfig.from_config(_visual_cfg(profile).get("pass"))
        store, key = _open_uri(storage, source_video["source_uri"])
        try:
            local = storage.stage_local(store, key)
        except (StoreError, OSError) as exc:
            raise Failure(description=f"cannot read delivery {source_video['source_uri']}: {exc}") from None
        workdir = Path(storage.scratch_dir) / "visual" / title_id / context.run_id[:8]
        shutil.rmtree(workdir, ignore_errors=True)

        def progress(frames: int, t_s: float):
            dur = source_video.get("duration_s") or 0
            pct = f" ({100 * t_s / dur:.0f}%)" if dur else ""
            context.log.info(f"{title_id}: decoded {frames} frames, {t_s:.0f}s{pct}")

        try:
            vp = run_visual_pass(local, workdir, cfg, progress=progress)
        except VisualDecodeError as exc:
            raise Failure(description=f"{title_id}: {exc}") from None
        producer = _producer(profile, DECODE_CODE_VERSION, expected_frames=source_video.get("frame_count"),
                             duration_s=source_video.get("duration_s"), sample_fps=cfg.sample_fps, pass_meta=vp.meta)
        rec.model = {"tool": "PyAV", "code_version": DECODE_CODE_VERSION}
        stats = _with_attrs(vp.stats, producer, STATS_SCHEMA_VERSION)
        pictures = _with_attrs(vp.pictures, producer, STATS_SCHEMA_VERSION)
        bundle = Bundle(pictures, files={f"{name}.pack": path for name, path in vp.packs.items()})
        if vp.meta["decode_errors"]:
            context.log.warning(f"{title_id}: {vp.meta['decode_errors']} packets failed to decode (skipped)")
    m = vp.meta
    yield Output(stats, output_name="frame_stats", metadata={
        "frames": m["frames"], "fps": m["fps"], "decode_seconds": m["seconds"], "frames_per_s": m["frames_per_s"],
        "decode_errors": m["decode_errors"], "decode_lanes": m["decode_lanes"], "gops": m["gops"], "rotation": m["rotation"], "analysis_size": MetadataValue.json(m["analysis_size"]),
        "producer": MetadataValue.json({k: v for k, v in producer.items() if k != "pass_meta"}),
    })
    counts = pictures["kind"].value_counts().to_dict() if len(pictures) else {}
    yield Output(bundle, output_name="frame_samples", metadata={
        "samples": int(counts.get("sample", 0)), "keyframe_candidates": int(counts.get("keyframe", 0)),
        "poster_pool": int(counts.get("poster", 0)),
    })
    yield from checks.evaluate("frame_stats", STATS_RULES, stats)
    yield from checks.evaluate("frame_samples", SAMPLES_RULES, bundle)
    shutil.rmtree(workdir, ignore_errors=True)


@asset(
    partitions_def=titles_partitions,
    group_name="visual",
    code_version=SHOTS_CODE_VERSION,
    kinds={"parquet"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs("shots", SHOTS_RULES),
    metadata={"prism/schema_version": SHOTS_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/shots.parquet"},
    description="Shots and transitions (cut, dissolve, fade_in, fade_out; black segments are shots flagged is_black), "
    "detected from frame_stats by a swappable detector (profile visual.shots.detector).",
)
def shots(context: AssetExecutionContext, frame_stats: pd.DataFrame, source_video: dict, catalog: CatalogResource, profile: PrismProfile):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="shots", code_version=SHOTS_CODE_VERSION) as rec:
        cfg = _visual_cfg(profile).get("shots", {}) or {}
        detector = cfg.get("detector", "prism-blend")
        fps = float(frame_stats.attrs.get("producer", {}).get("pass_meta", {}).get("fps") or source_video["fps"])
        try:
            df = detect_shots(frame_stats, fps, detector=detector, params=cfg.get("params"))
        except ValueError as exc:
            raise Failure(description=f"{title_id}: {exc}") from None
        rec.model = {"detector": detector, "params": cfg.get("params") or {}}
        df = _with_attrs(df, _producer(profile, SHOTS_CODE_VERSION, model={"detector": detector, "params": cfg.get("params") or {}}, frames=len(frame_stats), fps=fps), SHOTS_SCHEMA_VERSION)
    counts = df["transition_in"].value_counts().to_dict()
    context.log.info(f"{title_id}: {len(df)} shots {counts}")
    yield Output(df, metadata={"shots": len(df), "black_shots": int(df["is_black"].sum()), "transitions": MetadataValue.json(counts),
                               "detector": detector, "median_shot_s": float((df["end_s"] - df["start_s"]).median()) if len(df) else 0.0})
    yield from checks.evaluate("shots", SHOTS_RULES, df)


@asset(
    partitions_def=titles_partitions,
    group_name="visual",
    code_version=KEYFRAMES_CODE_VERSION,
    kinds={"parquet", "jpeg"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs("keyframes", KEYFRAME_RULES),
    metadata={"prism/schema_version": VISUAL_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/keyframes/<version>/ (keyframes.parquet + keyframes/*.jpg)"},
    description="Per shot, the sharpest well-exposed frame(s) away from transitions, with their scores and images.",
)
def keyframes(context: AssetExecutionContext, shots: pd.DataFrame, frame_samples: pd.DataFrame, storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="keyframes", code_version=KEYFRAMES_CODE_VERSION):
        per_shot = int((_visual_cfg(profile).get("keyframes", {}) or {}).get("per_shot", 1))
        prod = shots.attrs.get("producer", {})
        n, fps = int(prod.get("frames") or shots["end_frame"].max() + 1), float(prod.get("fps") or 25.0)
        df = select_keyframes(shots, frame_samples, n, fps, per_shot=per_shot)
        packs = _pack_paths(storage, title_id)
        files = {r.image: read_pack_bytes(packs[r.pack], r.offset, r.length) for r in df.itertuples()}
        non_black = shots.loc[~shots["is_black"], "shot_index"].astype(int).tolist()
        df = _with_attrs(df, _producer(profile, KEYFRAMES_CODE_VERSION, per_shot=per_shot, non_black_shots=non_black,
                                       shot_ranges={str(int(r.shot_index)): [int(r.start_frame), int(r.end_frame)] for r in shots.itertuples()}))
        bundle = Bundle(df, files=files)
    yield Output(bundle, metadata={"keyframes": len(df), "shots_covered": int(df["shot_index"].nunique()) if len(df) else 0,
                                   "in_transition": int(df["in_transition"].sum()) if len(df) else 0,
                                   "from_samples": int((df["source"] == "sample").sum()) if len(df) else 0})
    yield from checks.evaluate("keyframes", KEYFRAME_RULES, bundle)


@multi_asset(
    outs={
        "embeddings": AssetOut(
            code_version=EMBEDDINGS_CODE_VERSION, kinds={"pytorch", "parquet"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": VISUAL_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/embeddings.parquet"},
            description="open_clip image embeddings (L2-normalized) of the 1/s samples and of the keyframes: t_s, frame, shot_index, embedding.",
        ),
        "shot_embeddings": AssetOut(
            code_version=EMBEDDINGS_CODE_VERSION, kinds={"pytorch", "parquet"}, freshness_policy=default_freshness_policy(),
            metadata={"prism/schema_version": VISUAL_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/shot_embeddings.parquet"},
            description="Per shot: the mean of its sample and keyframe embeddings, re-normalized.",
        ),
    },
    ins={"frame_samples": AssetIn(), "shots": AssetIn(), "keyframes": AssetIn()},
    partitions_def=titles_partitions,
    group_name="visual",
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    retry_policy=TRANSIENT_RETRY_POLICY,
    check_specs=checks.specs("embeddings", EMB_RULES) + checks.specs("shot_embeddings", SHOT_EMB_RULES),
)
def clip_embeddings(context: AssetExecutionContext, frame_samples: pd.DataFrame, shots: pd.DataFrame, keyframes: pd.DataFrame,
                    storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile, clip: ClipModelResource):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="embeddings", code_version=EMBEDDINGS_CODE_VERSION) as rec:
        try:
            model = clip.get()
        except ClipLoadError as exc:
            raise Failure(description=str(exc)) from None
        packs = _pack_paths(storage, title_id)
        samples = frame_samples[frame_samples["kind"] == "sample"]
        items = [("sample", r.frame, r.t_s, r.pack, r.offset, r.length) for r in samples.itertuples()]
        items += [("keyframe", r.frame, r.t_s, r.pack, r.offset, r.length) for r in keyframes.itertuples()]
        starts = shots["start_frame"].to_numpy()
        embs = []
        bs = clip.batch_size
        for i in range(0, len(items), bs):
            chunk = items[i : i + bs]
            imgs = [read_pack_image(packs[it[3]], it[4], it[5]) for it in chunk]
            embs.append(model.encode_images(imgs, batch_size=bs))
            context.log.debug(f"{title_id}: embedded {min(len(items), i + bs)}/{len(items)}")
        emb = np.concatenate(embs) if embs else np.zeros((0, model.embed_dim), np.float32)
        frames = np.array([it[1] for it in items], dtype=np.int64)
        shot_idx = np.searchsorted(starts, frames, side="right") - 1 if len(frames) else np.zeros(0, np.int64)
        info = dict(model.info)
        label = f"{info['model']}/{info['weights']}"
        df = pd.DataFrame({
            "kind": [it[0] for it in items], "frame": frames, "t_s": [float(it[2]) for it in items],
            "shot_index": shot_idx.astype(np.int64), "model": label, "embedding": list(emb.astype(np.float32)),
        })
        df = _with_attrs(df, _producer(profile, EMBEDDINGS_CODE_VERSION, model=info, expected_rows=len(samples) + len(keyframes)))
        rows = []
        for s in sorted(set(shot_idx.tolist())):
            v = emb[shot_idx == s].mean(axis=0)
            nv = float(np.linalg.norm(v))
            if nv > 0:
                rows.append({"shot_index": int(s), "n_embeddings": int((shot_idx == s).sum()), "model": label, "embedding": (v / nv).astype(np.float32)})
        sdf = pd.DataFrame(rows, columns=["shot_index", "n_embeddings", "model", "embedding"])
        sdf = _with_attrs(sdf, _producer(profile, EMBEDDINGS_CODE_VERSION, model=info))
        rec.model = info
        if not info.get("weights_trained"):
            context.log.warning(f"{title_id}: embeddings from {label}: weights are NOT trained (offline dev profile); not semantically meaningful")
    meta = {"model": label, "weights_trained": bool(info.get("weights_trained")), "device": info.get("device"), "embed_dim": int(model.embed_dim)}
    yield Output(df, output_name="embeddings", metadata={"rows": len(df), **meta, "producer": MetadataValue.json(info)})
    yield Output(sdf, output_name="shot_embeddings", metadata={"shots": len(sdf), **meta})
    yield from checks.evaluate("embeddings", EMB_RULES, df)
    yield from checks.evaluate("shot_embeddings", SHOT_EMB_RULES, sdf)


@asset(
    partitions_def=titles_partitions,
    group_name="visual",
    code_version=POSTERS_CODE_VERSION,
    kinds={"parquet", "jpeg"},
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    retry_policy=TRANSIENT_RETRY_POLICY,
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs("posters", POSTER_RULES),
    metadata={"prism/schema_version": VISUAL_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/posters/<version>/ (posters.parquet + posters/*.jpg)"},
    description="Top-N poster candidates at full resolution ranked by explainable scores (sharpness, exposure, contrast, "
    "colourfulness, optional CLIP prompt score), no black/blank/colour-bar/transition frames, diverse across shots; bars cropped.",
)
def posters(context: AssetExecutionContext, frame_stats: pd.DataFrame, frame_samples: pd.DataFrame, shots: pd.DataFrame,
            storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile, clip: ClipModelResource):
    from PIL import Image

    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal="posters", code_version=POSTERS_CODE_VERSION) as rec:
        p = PosterParams.from_config(_visual_cfg(profile).get("posters"))
        fps = float(shots.attrs.get("producer", {}).get("fps") or 25.0)
        cands = frame_samples[frame_samples["kind"] == "poster"].reset_index(drop=True)
        packs = _pack_paths(storage, title_id) if len(cands) else {}
        excluded = poster_exclusions(cands, frame_stats, shots, fps, p) if len(cands) else pd.Series([], dtype=object)
        parts = poster_score_parts(cands, p) if len(cands) else pd.DataFrame()
        emb = prompt = None
        info = None
        eligible = int((excluded == "").sum()) if len(cands) else 0
        if eligible:
            try:
                model = clip.get()
            except ClipLoadError as exc:
                raise Failure(description=str(exc)) from None
            info = model.info
            imgs = [read_pack_image(packs["posters"], r.offset, r.length) for r in cands.itertuples()]
            emb = model.encode_images(imgs, batch_size=clip.batch_size)
            if info.get("weights_trained") and p.prompts:
                pos = model.encode_text(list(p.prompts)).mean(axis=0)
                neg = model.encode_text(list(p.negative_prompts)).mean(axis=0) if p.negative_prompts else 0 * pos
                prompt = np.clip(0.5 + 2.0 * (emb @ pos - emb @ neg), 0, 1)
        # random-init embeddings say nothing about similarity: de-duplicate only with trained weights
        dedupe = emb if (info or {}).get("weights_trained") else None
        df = rank_posters(cands, parts, excluded, shots, p, embeddings=dedupe, prompt_score=prompt)
        st = frame_stats.set_index("frame")
        files, crops = {}, []
        for r in df.itertuples():
            img = Image.open(io.BytesIO(read_pack_bytes(packs["posters"], r.offset, r.length)))
            s = st.loc[r.frame]
            w, h = img.size
            box = (int(s["bar_left"] * w), int(s["bar_top"] * h), w - int(s["bar_right"] * w), h - int(s["bar_bottom"] * h))
            cropped = box != (0, 0, w, h) and box[2] - box[0] > w // 4 and box[3] - box[1] > h // 4
            if cropped:
                img = img.crop(box)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=94)
                files[r.image] = buf.getvalue()
            else:
                files[r.image] = read_pack_bytes(packs["posters"], r.offset, r.length)
            crops.append(bool(cropped))
        df["cropped_bars"] = crops
        df["width"] = [Image.open(io.BytesIO(files[i])).size[0] for i in df["image"]] if len(df) else []
        df["height"] = [Image.open(io.BytesIO(files[i])).size[1] for i in df["image"]] if len(df) else []
        df = df.drop(columns=["offset", "length"])
        chosen_bad = [int(f) for f in df["frame"] if excluded[cands["frame"] == f].ne("").any()] if len(df) else []
        # independent re-check of the chosen frames against the shots' transitions and the stats
        trans = transition_frames(shots, len(frame_stats), guard=0)
        chosen_bad += [int(f) for f in df["frame"] if trans[int(f)] or st.loc[int(f), "black_ratio"] >= 0.5 or st.loc[int(f), "colour_bars"] >= 0.5]
        df = _with_attrs(df, _producer(profile, POSTERS_CODE_VERSION, model=info, params=p.as_dict(), count=p.count, eligible=eligible,
                                       prompt_score_used=prompt is not None, excluded_chosen=sorted(set(chosen_bad)),
                                       excluded_reasons={k: int(v) for k, v in excluded[excluded != ""].value_counts().items()} if len(cands) else {}))
        rec.model = info
        bundle = Bundle(df, files=files)
    yield Output(bundle, metadata={"posters": len(df), "candidates": len(cands), "eligible": eligible, "prompt_score_used": prompt is not None,
                                   "top_score": float(df["score"].max()) if len(df) else 0.0})
    yield from checks.evaluate("posters", POSTER_RULES, bundle)
