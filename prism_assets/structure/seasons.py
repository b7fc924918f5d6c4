"""Intro and recap across a season: per-title fingerprints, one season-level asset, and the sensor
that keeps each season up to date as its episodes arrive.

    audio_speech + frame_samples + localization + source_video -> fingerprint (fingerprint.json)   (titles)
    fingerprint (every episode of the season, read directly) -> season_structure                 (seasons)

Partitioning (docs/architecture.md, "Partitions"): `season_structure` spans titles, so it is not
a title partition; it has one dynamic partition per season (`seasons`, key `<series_id>.S<season>`
from the sidecar's `series_id`/`season`), which grows with seasons, not titles x days. Its episodes
are the catalog's titles of that series and season (`titles.series_id/season`, set by `source_video`);
their fingerprints are read from the artifact store (a lineage dependency on `fingerprint`, all
partitions), never recomputed. A late episode: its `fingerprint` materialization (tagged with the
season key) is seen by `season_sensor`, which adds the season partition if new and requests a run of
that season (run key `<season>:<event storage id>`: one run per new fingerprint batch, never two for
the same one); the run recomputes every episode's intro/recap of the season with the newcomer, so
the earlier episodes gain a matching partner too. Episodes not fingerprinted yet are listed as
`pending`. The season also reads each episode's `structure` (its OCR end credits tell the theme
under the end credits from the intro), so the order is made certain: the sensor also watches
`structure` materializations and requests a season run only once an episode's structure exists
(a fingerprint whose episode has none yet waits for it; a later structure materialization, e.g. a
new code version, re-requests the season), and an episode fingerprinted but without a structure
(not run yet, or failed) is never decided by position: it is listed as `pending`, its reason in
`pending_reasons`. Two titles claiming one episode number are listed in `duplicate_episodes` and noted on both rows.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from ..core.artifacts import ArtifactStore
from ..core.signal import SEASONS, Output, Result, Signal, SignalContext
from ..partitions import SEASONS_PARTITIONS_NAME, parse_season_key, seasons_partitions
from ..visual.packs import PacksMissingError, pack_paths, read_pack_bytes
from . import fingerprint as fp
from . import season as season_mod
from .checks import FINGERPRINT_RULES, SEASON_RULES
from .sound import original_track

DOMAIN = "structure"
SCHEMA_VERSION = "1.0"
FINGERPRINT_CODE_VERSION = "fingerprint-2"  # 2: a colour layout per picture sample
# 4: episodes without a structure pending (pending_reasons), not decided by position;
SEASON_CODE_VERSION = "season-4"
# 2: episodes claimed by two titles noted (duplicate_episodes); 3: end credits over the theme, recaps by pictures and from earlier episodes
SEASON_KEY_TAG = "prism/season"
SEASON_JOB = "season_structure_job"


def compute_fingerprint(sc: SignalContext, audio_speech: dict, frame_samples: pd.DataFrame, localization: dict, source_video: dict):
    title_id = sc.title_id
    series = source_video.get("series")
    if not series:
        # materialized as "not applicable" (a film is complete without it), not skipped: a skipped partition shows as
        # missing in the Dagster UI for ever
        reason = "not applicable: not part of a series (no series_id/season in the sidecar), nothing to match across episodes"
        doc = {"schema_version": SCHEMA_VERSION, "title_id": title_id, "applicable": False, "series": None,
               "duration_s": float(source_video.get("duration_s") or 0.0), "audio": None, "pictures": None, "note": reason,
               "producer": {"tool": "prism-structure", "code_version": FINGERPRINT_CODE_VERSION, "profile": sc.profile.name, "model": None}}
        return Result(doc, metadata={"applicable": False, "not_applicable": reason})
    track = original_track(localization)
    tracks = audio_speech.get("tracks") or []
    t = next((x for x in tracks if x["track"] == track), tracks[0] if tracks else None)
    doc = {"schema_version": SCHEMA_VERSION, "title_id": title_id, "applicable": True, "series": series, "duration_s": float(source_video.get("duration_s") or 0.0),
           "audio": None, "pictures": None, "note": None}
    if t is not None:
        wavs = sc.storage.stage_bundle("audio_speech", title_id, "speech")
        doc["audio"] = {"track": t["track"], **pack(fp.audio_fingerprint(wavs[t["file"]], start_s=float(t.get("start_s") or 0.0)))}
    else:
        doc["note"] = "no audio track: matched on pictures only"
    samples = frame_samples[frame_samples["kind"] == "sample"].sort_values("frame")
    if len(samples):
        packs = pack_paths(sc.storage, title_id)
        doc["pictures"] = pack(fp.picture_signature([(float(r.t_s), read_pack_bytes(packs[r.pack], r.offset, r.length)) for r in samples.itertuples()]))
    info = fp.chromaprint_info()
    doc["producer"] = {"tool": "prism-structure", "code_version": FINGERPRINT_CODE_VERSION, "profile": sc.profile.name,
                       "model": {"audio": info, "pictures": "64-bit difference hash and 4x4 colour layout of the 1/s samples (prism)"}}
    sc.provenance = doc["producer"]["model"]
    return Result(doc, tags={SEASON_KEY_TAG: series["season_key"]}, metadata={
        "season_key": series["season_key"], "episode": int(series["episode"]) if series.get("episode") is not None else None,
        "audio_items": int(((doc["audio"] or {}).get("items") or {}).get("shape", [0])[0]),
        "pictures": int(((doc["pictures"] or {}).get("hash") or {}).get("shape", [0])[0])})


FINGERPRINT = Signal(
    name="fingerprint", domain=DOMAIN, code_version=FINGERPRINT_CODE_VERSION,
    inputs=("audio_speech", "frame_samples", "localization", "source_video"), compute=compute_fingerprint,
    errors=(fp.FingerprintError, PacksMissingError),
    description="For an episode of a series (sidecar series_id/season/episode): Chromaprint fingerprints of its original audio track (the "
    "audio pass's 16 kHz WAV) and a 64-bit picture hash and 4x4 colour layout per 1/s sample; what season_structure matches across the episodes. For "
    "titles outside a series it is materialized as not applicable (applicable: false, with the reason).",
    outputs=(Output("fingerprint", SCHEMA_VERSION, "titles/<title_id>/fingerprint.json", kinds=("chromaprint", "json"), rules=FINGERPRINT_RULES),),
)


def pack(value):
    """A fingerprint (numpy arrays, numbers, nested dicts) as JSON: each array as {dtype, shape, b64} (little-endian bytes)."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape), "b64": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}
    if isinstance(value, dict):
        return {k: pack(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def unpack(value):
    """The inverse of `pack`: the arrays back with their dtype and shape."""
    if isinstance(value, dict) and set(value) == {"dtype", "shape", "b64"}:
        return np.frombuffer(base64.b64decode(value["b64"]), dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
    if isinstance(value, dict):
        return {k: unpack(v) for k, v in value.items()}
    return value


def _episode(doc: dict, ep, structure: dict | None = None) -> season_mod.Episode:
    audio = unpack(doc["audio"]) if doc.get("audio") else None
    if audio is not None:
        audio.pop("track", None)
    pics = unpack(doc["pictures"]) if doc.get("pictures") else None
    end = ((structure or {}).get("credits") or {}).get("end")
    credits = {"start_s": float(end["start_s"]), "end_s": float(end["end_s"])} if end else None
    return season_mod.Episode(title_id=doc["title_id"], episode=ep, duration_s=float(doc.get("duration_s") or 0.0), audio=audio, pictures=pics,
                              end_credits=credits)


def _structure_of(arts, title_id: str) -> tuple[dict | None, str | None]:
    """(the episode's structure.json, None), or (None, why the episode must wait): its OCR end credits are the
    text evidence that tells the theme under the end credits from the intro, so an episode without one is pending,
    never decided by position alone."""
    base = ArtifactStore.base_key("structure", title_id)
    try:
        if not arts.exists(base):
            return None, "structure not materialized yet (not run, or failed): end credits cannot be told from the intro"
        return arts.read(base), None
    except Exception as exc:  # noqa: BLE001 - one line, the episode waits
        return None, f"structure.json not readable ({type(exc).__name__}): end credits cannot be told from the intro"


def compute_season(sc: SignalContext) -> Result:
    key = sc.partition
    try:
        series_id, season = parse_season_key(key)
    except ValueError as exc:
        raise sc.fail(str(exc)) from None
    arts = sc.storage.artifacts()
    episodes, pending, reasons = [], [], {}
    titles = sc.catalog.season_titles(series_id, season)
    claimed: dict[int, list[str]] = {}
    for t in titles:
        if t.episode is not None:
            claimed.setdefault(int(t.episode), []).append(t.title_id)
    duplicates = [{"episode": ep, "title_ids": ids} for ep, ids in sorted(claimed.items()) if len(ids) > 1]
    for d in duplicates:
        sc.log.warning(f"{key}: episode {d['episode']} claimed by {len(d['title_ids'])} titles: {', '.join(d['title_ids'])}")
    for t in titles:
        base = ArtifactStore.base_key("fingerprint", t.title_id)
        if not arts.exists(base):
            pending.append(t.title_id)
            reasons[t.title_id] = "not fingerprinted yet"
            continue
        structure, why = _structure_of(arts, t.title_id)
        if why:
            sc.log.warning(f"{key}: {t.title_id} pending: {why}")
            pending.append(t.title_id)
            reasons[t.title_id] = why
            continue
        episodes.append(_episode(arts.read(base), t.episode, structure))
    sc.log.info(f"{key}: {len(episodes)} fingerprinted episode(s), {len(pending)} pending")
    found = season_mod.find_intros_and_recaps(episodes, sc.config.get("season"))
    rows = []
    for e in sorted(episodes, key=lambda e: (e.episode is None, e.episode or 0, e.title_id)):
        f = found.get(e.title_id) or {}
        others = [x for x in claimed.get(int(e.episode), []) if x != e.title_id] if e.episode is not None else []
        dup = f"episode {e.episode} also claimed by {', '.join(others)}" if others else None
        rows.append({"title_id": e.title_id, "episode": e.episode, "duration_s": e.duration_s, "intro": f.get("intro"), "recap": f.get("recap"),
                     "end_credits": f.get("end_credits"), "note": "; ".join(x for x in (f.get("note"), dup) if x) or None})
    doc = {"schema_version": SCHEMA_VERSION, "season_key": key, "series_id": series_id, "season": season, "episodes": rows, "pending": pending, "pending_reasons": reasons,
           "duplicate_episodes": duplicates,
           "producer": {"tool": "prism-structure", "code_version": SEASON_CODE_VERSION, "profile": sc.profile.name,
                        "model": {"match": "Chromaprint items (bit error rate) by offset voting, confirmed by picture hashes; recaps also by "
                                           "picture hash + colour layout chains; intro vs end credits by position and OCR end credits (prism)",
                                  "params": sc.config.get("season") or {}}}}
    sc.provenance = doc["producer"]["model"]
    table = pd.DataFrame([{"episode": r["episode"], "title_id": r["title_id"], "intro_start_s": (r["intro"] or {}).get("start_s"),
                           "intro_end_s": (r["intro"] or {}).get("end_s"), "recap_start_s": (r["recap"] or {}).get("start_s"),
                           "recap_end_s": (r["recap"] or {}).get("end_s"), "end_credits_start_s": (r["end_credits"] or {}).get("start_s")} for r in rows],
                         columns=["episode", "title_id", "intro_start_s", "intro_end_s", "recap_start_s", "recap_end_s", "end_credits_start_s"])
    return Result(doc, table=table, metadata={"episodes": len(rows), "pending": len(pending), "duplicate_episodes": len(duplicates),
                                              "intros": sum(1 for r in rows if r["intro"]), "recaps": sum(1 for r in rows if r["recap"]),
                                              "end_credits": sum(1 for r in rows if r["end_credits"])})


SEASON_STRUCTURE = Signal(
    name="season_structure", domain=DOMAIN, code_version=SEASON_CODE_VERSION, deps=("fingerprint", "structure"), partitions=SEASONS, compute=compute_season,
    description="Per season of a series: each episode's intro (the stretch near its start it shares with the other episodes, after a cold open "
    "of any length), end credits (shared music at its end, e.g. the theme again; told from the intro by position and the OCR end credits) and "
    "recap (material near its start repeated from the previous episodes, by sound or pictures), start/end with confidence, from the episodes' "
    "fingerprints. "
    "Re-materialized by season_sensor whenever an episode of the season has both its fingerprint and its structure (late episodes and "
    "recomputed structures update the season); episodes without a structure yet are listed as pending with the reason.",
    outputs=(Output("season_structure", SCHEMA_VERSION, "seasons/<series_id>.S<season>/season_structure.json", kinds=("json",),
                    rules=SEASON_RULES),),
)


def season_job(max_runtime_s: int):
    return define_asset_job(SEASON_JOB, selection=[SEASON_STRUCTURE.name], partitions_def=seasons_partitions,
                            description="Intro/recap of one season (partition <series_id>.S<season>) from its episodes' fingerprints.",
                            tags={"dagster/max_runtime": str(max_runtime_s)})


def _cursor(raw: str | None) -> dict[str, int]:
    """The sensor's cursor: the last storage id seen per watched asset (an older plain number: fingerprints only)."""
    if not raw:
        return {}
    if raw.isdigit():
        return {FINGERPRINT.name: int(raw), "structure": int(raw)}
    try:
        return {k: int(v) for k, v in json.loads(raw).items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def _latest(instance, asset: str, title_id: str):
    recs = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[title_id]), limit=1,
                                           ascending=False).records
    return recs[0] if recs else None


def season_tick(context: SensorEvaluationContext, limit: int = 500) -> SensorResult:
    """Seasons to (re)compute from the fingerprint and structure materializations since the cursor: an episode
    counts once it has both (its latest fingerprint names its season); a fingerprint without a structure waits
    for the structure's own materialization, which requests the run. One run per season per tick, keyed by the
    newest event (never two for the same one)."""
    instance = context.instance
    cur = _cursor(context.cursor)
    latest: dict[str, int] = {}
    seen: dict[str, int] = {}
    waiting = 0
    for asset in (FINGERPRINT.name, "structure"):
        after = cur.get(asset, 0)
        records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(asset), after_storage_id=after),
                                                  limit=limit, ascending=True).records
        seen[asset] = records[-1].storage_id if records else after
        for rec in records:
            tid = rec.partition_key
            fp_rec = rec if asset == FINGERPRINT.name else (_latest(instance, FINGERPRINT.name, tid) if tid else None)
            mat = fp_rec.asset_materialization if fp_rec else None
            key = (mat.tags or {}).get(SEASON_KEY_TAG) if mat else None
            if not key:
                continue  # not an episode of a series, or not fingerprinted yet (its fingerprint will come)
            if asset == FINGERPRINT.name and tid and _latest(instance, "structure", tid) is None:
                waiting += 1
                continue  # its structure is not there yet: its materialization requests the run
            latest[key] = max(latest.get(key, 0), rec.storage_id)
    cursor = json.dumps(seen, sort_keys=True)
    if not latest:
        why = f"{waiting} episode(s) fingerprinted, waiting for their structure" if waiting else "no new episode fingerprints or structures"
        return SensorResult(skip_reason=SkipReason(why), cursor=cursor)
    known = set(instance.get_dynamic_partitions(SEASONS_PARTITIONS_NAME))
    new = sorted(k for k in latest if k not in known)
    runs = [RunRequest(run_key=f"{k}:{sid}", partition_key=k, tags={SEASON_KEY_TAG: k}) for k, sid in sorted(latest.items())]
    context.log.info(f"season run(s) for {sorted(latest)}; {waiting} episode(s) waiting for their structure")
    return SensorResult(run_requests=runs, cursor=cursor,
                        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SEASONS_PARTITIONS_NAME, new)] if new else [])


def build_season_sensor(interval_s: int = 30):
    @sensor(name="season_sensor", job_name=SEASON_JOB, minimum_interval_seconds=interval_s, default_status=DefaultSensorStatus.RUNNING,
            description="When an episode of a series has its fingerprint and its structure (either materialized anew), (re)computes its "
            "season's intro/recap (adds the season partition if new).")
    def season_sensor(context: SensorEvaluationContext):
        return season_tick(context)

    return season_sensor
