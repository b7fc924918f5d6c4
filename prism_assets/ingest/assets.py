"""`source_video`: the probe of a title's delivered video, root of every per-title signal."""

import math
from datetime import date, timezone

import av
from dagster import AssetCheckSeverity, Failure, MetadataValue

from ..catalog import DeliveryRecord
from ..core import checks
from ..core.signal import Output, Result, Signal, SignalContext
from ..deliveries.layout import MAX_SIDECAR_BYTES, DeliveryError, parse_sidecar, sidecar_candidates
from ..partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_ETAG, TAG_DELIVERY_SIZE, TAG_DELIVERY_URI, season_key
from .probe import PROBE_CODE_VERSION, PROBE_SCHEMA_VERSION, ProbeError, probe_summary, probe_video

ASSET = "source_video"


def _finite_pos(x) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _audio_only(t: dict) -> bool:
    return "audio_only" in (t.get("flags") or [])


def _probe_complete(t: dict) -> tuple[bool, dict]:
    if _audio_only(t):  # no picture: the duration and the audio tracks are what there is to probe
        ok = _finite_pos(t.get("duration_s")) and bool(t["audio_tracks"])
        return ok, {"audio_only": True, "duration_s": t.get("duration_s"), "audio_tracks": len(t["audio_tracks"])}
    keys = ("duration_s", "fps", "width", "height", "frame_count")
    return all(_finite_pos(t.get(k)) for k in keys), {k: t.get(k) for k in keys}


RULES = [
    checks.CheckRule(
        "probe_complete",
        "Duration, frame rate, size and frame count are present, finite and positive "
        "(audio-only deliveries, flagged audio_only: duration and at least one audio track).",
        _probe_complete,
        blocking=True,
    ),
    checks.CheckRule(
        "timing_consistent",
        "frame_count / fps agrees with the measured duration within one frame (constant frame rate), "
        "and the container's duration within 1 s.",
        lambda t: _timing_consistent(t),
        severity=AssetCheckSeverity.WARN,
    ),
    checks.CheckRule(
        "has_audio",
        "The title has at least one audio track (a title without audio is flagged, not failed).",
        lambda t: (t["has_audio"], {"audio_tracks": len(t["audio_tracks"])}),
        severity=AssetCheckSeverity.WARN,
    ),
    checks.CheckRule(
        "audio_covers_video",
        "No audio track ends more than 2 frames before the picture.",
        lambda t: (
            _audio_only(t) or all(a["duration_s"] is None or t["duration_s"] - a["duration_s"] <= 2.0 / t["fps"] for a in t["audio_tracks"]),
            {"audio_durations_s": [a["duration_s"] for a in t["audio_tracks"]], "video_duration_s": None if _audio_only(t) else t["duration_s"]},
        ),
        severity=AssetCheckSeverity.WARN,
    ),
    checks.CheckRule(
        "container_integrity",
        "The whole file demuxed without errors or corrupt packets, and its SHA-256 was recorded.",
        lambda t: (
            t["demux_error"] is None and _corrupt(t) == 0 and len(t["checksum_sha256"] or "") == 64,
            {"demux_error": t["demux_error"] or "", "corrupt_packets": _corrupt(t)},
        ),
        severity=AssetCheckSeverity.WARN,
    ),
    checks.CheckRule(
        "constant_frame_rate",
        "The video has a constant frame rate (VFR titles are flagged for the frame-accurate signals).",
        lambda t: (not t["is_vfr"], {"is_vfr": t["is_vfr"], "fps": t["fps"]}),
        severity=AssetCheckSeverity.WARN,
    ),
]


def _corrupt(t: dict) -> int:
    return int(t.get("audio_corrupt_packets", 0)) if t.get("video") is None else int(t["video"]["corrupt_packets"])


def _series(sidecar: dict) -> dict | None:
    """The title's place in a series (sidecar `series_id`, `season`, `episode`) with its `seasons` partition key."""
    if sidecar.get("series_id") is None:
        return None
    return {"series_id": sidecar["series_id"], "season": sidecar["season"], "episode": sidecar.get("episode"),
            "season_key": season_key(sidecar["series_id"], sidecar["season"])}


def _read_sidecar(store, key: str) -> tuple[dict, list[str]]:
    """The delivery's sidecar JSON if any; a malformed one is reported, not fatal."""
    for cand in sidecar_candidates(key):
        if not store.exists(cand):
            continue
        try:
            return parse_sidecar(store.get_bytes(cand, max_bytes=MAX_SIDECAR_BYTES + 1), cand)
        except DeliveryError as exc:
            return {}, [str(exc)]
    return {}, []


def _timing_consistent(t: dict) -> tuple[bool, dict]:
    if _audio_only(t):
        return True, {"audio_only": True, "duration_s": t["duration_s"]}
    frame_ok = t["is_vfr"] or abs(t["frame_count"] / t["fps"] - t["duration_s"]) <= 1.0 / t["fps"] + 1e-6
    longest = max([t["duration_s"]] + [a["duration_s"] or 0 for a in t["audio_tracks"]])
    container = t["container"]["duration_s"]
    container_ok = container is None or abs(container - longest) <= 1.0
    return frame_ok and container_ok, {
        "frame_count": t["frame_count"],
        "fps": t["fps"],
        "duration_s": t["duration_s"],
        "container_duration_s": container,
    }


def compute(sc: SignalContext) -> Result:
    title_id = sc.title_id
    cat = sc.catalog
    tags = sc.run_tags
    uri = tags.get(TAG_DELIVERY_URI)
    delivery_date = tags.get(TAG_DELIVERY_DATE)
    known = cat.latest_delivery(title_id)
    # launched for a delivery by a sensor (a tick writes nothing), or for a file the catalog does not know: record it
    if uri and delivery_date and (TAG_DELIVERY_ETAG in tags or known is None or known.uri != uri):
        created = sc.context.instance.get_run_record_by_id(sc.run_id)
        discovered = created.create_timestamp.astimezone(timezone.utc).replace(tzinfo=None) if created else None
        cat.record_deliveries([DeliveryRecord(title_id, date.fromisoformat(delivery_date), uri, tags.get(TAG_DELIVERY_ETAG) or None,
                                              int(tags.get(TAG_DELIVERY_SIZE) or 0) or None, discovered_at=discovered)])
    delivery = cat.latest_delivery(title_id)
    if not uri:
        if delivery is None:
            raise Failure(description=f"no delivery registered for title {title_id!r} (run the sensor or `prism process`)")
        uri = delivery.uri
    if not delivery_date:
        if delivery is not None and delivery.uri == uri:
            delivery_date = delivery.delivery_date.isoformat()
        else:
            delivery_date = date.today().isoformat()
    store, key, local = sc.stage_delivery(uri)
    sidecar, warnings = _read_sidecar(store, key)
    sc.log.info(f"probing {uri}")
    probe = probe_video(local)
    for w in warnings:
        sc.log.warning(w)
    title = {
        "schema_version": PROBE_SCHEMA_VERSION,
        "title_id": title_id,
        "delivery_date": delivery_date,
        "source_uri": uri,
        "title_name": sidecar.get("title") or sidecar.get("name"),
        "provider": sidecar.get("provider"),
        "expected_languages": sidecar.get("expected_languages") or [],
        "original_language": sidecar.get("original_language"),
        "series": _series(sidecar),
        "sidecar_warnings": warnings,
        **probe,
        "producer": {"tool": "PyAV", "pyav_version": av.__version__, "code_version": PROBE_CODE_VERSION, "model": None, "profile": sc.profile.name},
    }
    sc.provenance = title["producer"]
    values = dict(duration_s=title["duration_s"], fps=title["fps"], width=title["width"], height=title["height"], status="processed")
    if title["title_name"]:
        values["name"] = title["title_name"]
    if title["provider"]:
        values["provider"] = title["provider"]
    if sidecar.get("expected_languages"):
        values["expected_languages"] = sidecar["expected_languages"]
    if title["series"]:
        values.update({k: title["series"][k] for k in ("series_id", "season", "episode")})
    cat.update_title(title_id, **values)
    sc.log.info(f"{title_id}: {probe_summary(title)}")
    return Result(title, tags={TAG_DELIVERY_DATE: delivery_date}, metadata={
        "title_id": title_id,
        "delivery_date": delivery_date,
        "source_uri": uri,
        "duration_s": float(title["duration_s"]),
        "fps": float(title["fps"]) if title["fps"] else 0.0,
        "width": title["width"] or 0,
        "height": title["height"] or 0,
        "frame_count": title["frame_count"],
        "audio_tracks": len(title["audio_tracks"]),
        "flags": MetadataValue.json(title["flags"]),
        "hdr": (title.get("hdr") or {}).get("format") or "none",
        "scan": (title.get("scan") or {}).get("type") or "none",
        "producer": MetadataValue.json(title["producer"]),
    })


SOURCE_VIDEO = Signal(
    name=ASSET, domain="ingest", code_version=PROBE_CODE_VERSION, pool="decode", compute=compute, errors=(ProbeError,),
    description="Probe of the title's delivered video (PyAV): container, duration, fps (VFR flagged), size, codecs, "
    "bit rate, colour (HDR10 / HLG and their metadata), scan (progressive / interlaced / telecined, FFmpeg idet), "
    "audio tracks with language and layout, SHA-256. Exported as title.json.",
    outputs=(Output(ASSET, PROBE_SCHEMA_VERSION, "titles/<title_id>/source_video.json", kinds=("video", "pyav"), rules=tuple(RULES),
                    export="title.json"),),
)
