"""Visual signals of the one decode pass: `visual_pass` [frame_stats, frame_samples] -> `shots` ->
`keyframes`. Only `visual_pass` decodes; everything downstream reads its statistics and packs.

    source_video -> visual_pass [frame_stats, frame_samples]   (pool: decode)
    frame_stats -> shots
    shots + frame_samples -> keyframes
"""

import json

import pandas as pd
from dagster import MetadataValue

from ..core.artifacts import Bundle
from ..core.pictures import Picture, spread
from ..core.proxy_spec import ProxyConfig, ProxyError, target_rate
from ..core.signal import Output, Result, Signal, SignalContext, Skip
from .checks import KEYFRAME_RULES, SAMPLES_RULES, SHOTS_RULES, STATS_RULES
from .decode import DECODE_CODE_VERSION, SAMPLES_SCHEMA_VERSION, STATS_SCHEMA_VERSION, VisualDecodeError, VisualPassConfig, run_visual_pass
from .decode.hardware import HardwareDecodeError, select_hwaccel
from .decode.tap import FILE as TAP_FILE
from .decode.tap import INFO as TAP_INFO
from .decode.tap import ProxyTap
from .packs import PacksMissingError, pack_paths, read_pack_bytes
from .select import KEYFRAMES_CODE_VERSION, select_keyframes
from .shots import SHOTS_CODE_VERSION, SHOTS_SCHEMA_VERSION, detect_shots

VISUAL_SCHEMA_VERSION = "1.0"
DOMAIN = "visual"



def with_attrs(df: pd.DataFrame, producer: dict, schema_version: str = VISUAL_SCHEMA_VERSION) -> pd.DataFrame:
    """Schema version and producer travel inside the Parquet file (pandas stores df.attrs)."""
    df.attrs = {"schema_version": schema_version, "producer": producer}
    return df


# ---------------------------------------------------------------------------------------------
# visual_pass


def compute_visual_pass(sc: SignalContext, source_video: dict):
    """Decode the title once (PyAV decode lanes, scaling in libswscale) for all visual work."""
    title_id = sc.title_id
    if "audio_only" in (source_video.get("flags") or []):
        # no picture: nothing is materialized, so every visual asset and QC downstream is skipped (not
        # failed) and the audio signals run; the checks say why
        return Skip("audio-only delivery (no video stream): visual signals skipped")
    cfg = VisualPassConfig.from_config(sc.config.get("pass"))
    try:
        hwaccel = select_hwaccel(sc.config.get("hardware_decode"), sc.profile.device())
    except HardwareDecodeError as exc:
        raise sc.fail(str(exc)) from None
    _, _, local = sc.stage_delivery(source_video["source_uri"])

    def progress(frames: int, t_s: float):
        dur = source_video.get("duration_s") or 0
        pct = f" ({100 * t_s / dur:.0f}%)" if dur else ""
        sc.log.info(f"{title_id}: decoded {frames} frames, {t_s:.0f}s{pct}")

    work = sc.workdir("visual")
    tap = proxy_tap(sc, source_video, work)
    vp = run_visual_pass(local, work, cfg, progress=progress, source=source_video, hwaccel=hwaccel, tap=tap)  # hdr / scan: tone map, deinterlace
    prod = sc.producer(DECODE_CODE_VERSION, expected_frames=vp.meta.get("expected_frames", source_video.get("frame_count")),
                    duration_s=source_video.get("duration_s"), sample_fps=cfg.sample_fps, pass_meta=vp.meta)
    sc.provenance = {"tool": "PyAV", "code_version": DECODE_CODE_VERSION}
    stats = with_attrs(vp.stats, prod, STATS_SCHEMA_VERSION)
    pictures = with_attrs(vp.pictures, prod, SAMPLES_SCHEMA_VERSION)
    files = {f"{name}.pack": path for name, path in vp.packs.items()}
    tapped = vp.meta.get("proxy_tap")
    if tapped is not None:
        if tapped["file"] and vp.meta.get("truncated_at_s") is None:  # the whole title's picture: the proxy asset adds the sound
            files[TAP_FILE] = work / TAP_FILE
        else:
            tapped["file"] = None
            sc.log.info(f"{title_id}: no proxy picture from this decode ({tapped['skipped'] or tapped['error'] or 'stopped at max_seconds'}): "
                        "the proxy asset makes its own")
        (work / TAP_INFO).write_text(json.dumps(tapped))
        files[TAP_INFO] = work / TAP_INFO
    bundle = Bundle(pictures, files=files)
    if vp.meta["decode_errors"]:
        sc.log.warning(f"{title_id}: {vp.meta['decode_errors']} packets failed to decode (skipped)")
    m = vp.meta
    counts = pictures["kind"].value_counts().to_dict() if len(pictures) else {}
    return {
        "frame_stats": Result(stats, metadata={
            "frames": m["frames"], "fps": m["fps"], "decode_seconds": m["seconds"], "frames_per_s": m["frames_per_s"],
            "decode_errors": m["decode_errors"], "decode_lanes": m["decode_lanes"], "gops": m["gops"], "rotation": m["rotation"],
            "analysis_size": MetadataValue.json(m["analysis_size"]),
            "producer": MetadataValue.json({k: v for k, v in prod.items() if k != "pass_meta"})}),
        "frame_samples": Result(bundle, metadata={
            "samples": int(counts.get("sample", 0)), "keyframe_candidates": int(counts.get("keyframe", 0)),
            "poster_pool": int(counts.get("poster", 0))}),
    }


def proxy_tap(sc: SignalContext, source_video: dict, work) -> ProxyTap | None:
    """The tap that makes the proxy's picture from this decode (decode/tap.py), with the `index.proxy` settings the
    `proxy` asset encodes with; None when the profile turns it off (`index.proxy.from_decode: false`) or the settings
    are invalid (the proxy asset reports them)."""
    try:
        pcfg = ProxyConfig.from_config(sc.profile.section("index").get("proxy"))
    except ProxyError:
        return None
    if not pcfg.from_decode:
        return None
    return ProxyTap(pcfg, target_rate(source_video, pcfg.max_fps), work / TAP_FILE, source_video.get("duration_s"),
                    timeout_s=pcfg.timeout_s(source_video.get("duration_s")))


VISUAL_PASS = Signal(
    name="visual_pass", domain=DOMAIN, code_version=DECODE_CODE_VERSION, inputs=("source_video",),
    pool="decode", compute=compute_visual_pass, errors=(VisualDecodeError,),
    description="The one visual decode of the title: per-frame statistics and the kept pictures (JPEG packs).",
    outputs=(
        Output("frame_stats", STATS_SCHEMA_VERSION, "titles/<title_id>/frame_stats.parquet",
               description="Per-frame statistics of the one visual decode pass: shot features, luma/black/bars/colour-bar evidence, "
               "quality measures. Read by shots, QC and posters; nothing decodes again.",
               kinds=("video", "pyav", "parquet"), rules=STATS_RULES, export="frame_stats.parquet", required=False),
        Output("frame_samples", SAMPLES_SCHEMA_VERSION, "titles/<title_id>/frame_samples/<version>/ (main.parquet + samples/keyframes/posters.pack)",
               description="Pictures kept by the decode pass: embedding samples (1/s, 224 px CLIP crops), keyframe candidates "
               "(best frame per window) and the full-resolution poster pool, as JPEG packs with an index.",
               kinds=("video", "jpeg"), rules=SAMPLES_RULES, required=False),
    ),
)


# ---------------------------------------------------------------------------------------------
# shots


def compute_shots(sc: SignalContext, frame_stats: pd.DataFrame, source_video: dict) -> Result:
    cfg = sc.config.get("shots", {}) or {}
    detector = cfg.get("detector", "prism-blend")
    fps = float(frame_stats.attrs.get("producer", {}).get("pass_meta", {}).get("fps") or source_video["fps"])
    df = detect_shots(frame_stats, fps, detector=detector, params=cfg.get("params"))
    model = {"detector": detector, "params": cfg.get("params") or {}}
    sc.provenance = model
    df = with_attrs(df, sc.producer(SHOTS_CODE_VERSION, model=model, frames=len(frame_stats), fps=fps), SHOTS_SCHEMA_VERSION)
    counts = df["transition_in"].value_counts().to_dict()
    sc.log.info(f"{sc.title_id}: {len(df)} shots {counts}")
    return Result(df, table=df, table_columns=["shot_index", "start_s", "end_s", "transition_in", "is_black"], metadata={
        "shots": len(df), "black_shots": int(df["is_black"].sum()), "transitions": MetadataValue.json(counts),
        "detector": detector, "median_shot_s": float((df["end_s"] - df["start_s"]).median()) if len(df) else 0.0})


SHOTS = Signal(
    name="shots", domain=DOMAIN, code_version=SHOTS_CODE_VERSION, inputs=("frame_stats", "source_video"), compute=compute_shots, errors=(ValueError,),
    description="Shots and transitions (cut, dissolve, fade_in, fade_out; black segments are shots flagged is_black), "
    "detected from frame_stats by a swappable detector (profile visual.shots.detector).",
    outputs=(Output("shots", SHOTS_SCHEMA_VERSION, "titles/<title_id>/shots.parquet", kinds=("parquet",), rules=SHOTS_RULES,
                    export="shots.parquet"),),
)


# ---------------------------------------------------------------------------------------------
# keyframes


def compute_keyframes(sc: SignalContext, shots: pd.DataFrame, frame_samples: pd.DataFrame) -> Result:
    per_shot = int((sc.config.get("keyframes", {}) or {}).get("per_shot", 1))
    prod = shots.attrs.get("producer", {})
    n, fps = int(prod.get("frames") or shots["end_frame"].max() + 1), float(prod.get("fps") or 25.0)
    df = select_keyframes(shots, frame_samples, n, fps, per_shot=per_shot)
    packs = pack_paths(sc.storage, sc.title_id)
    files = {r.image: read_pack_bytes(packs[r.pack], r.offset, r.length) for r in df.itertuples()}
    non_black = shots.loc[~shots["is_black"], "shot_index"].astype(int).tolist()
    df = with_attrs(df, sc.producer(KEYFRAMES_CODE_VERSION, per_shot=per_shot, non_black_shots=non_black,
                                 shot_ranges={str(int(r.shot_index)): [int(r.start_frame), int(r.end_frame)] for r in shots.itertuples()}))
    pictures = [Picture(f"shot {int(r.shot_index)}, {r.t_s:.2f} s (frame {int(r.frame)})", files[r.image]) for r in spread(list(df.itertuples()))]
    return Result(Bundle(df, files=files), pictures=pictures, pictures_title=f"{len(df)} keyframes (a spread)", metadata={
        "keyframes": len(df), "shots_covered": int(df["shot_index"].nunique()) if len(df) else 0,
        "in_transition": int(df["in_transition"].sum()) if len(df) else 0,
        "from_samples": int((df["source"] == "sample").sum()) if len(df) else 0})


KEYFRAMES = Signal(
    name="keyframes", domain=DOMAIN, code_version=KEYFRAMES_CODE_VERSION, inputs=("shots", "frame_samples"),
    compute=compute_keyframes, errors=(PacksMissingError,),
    description="Per shot, the sharpest well-exposed frame(s) away from transitions, with their scores and images.",
    outputs=(Output("keyframes", VISUAL_SCHEMA_VERSION, "titles/<title_id>/keyframes/<version>/ (keyframes.parquet + keyframes/*.jpg)",
                    kinds=("parquet", "jpeg"), rules=KEYFRAME_RULES, export="keyframes.parquet"),),
)
