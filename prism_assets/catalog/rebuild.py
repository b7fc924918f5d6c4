"""Rebuild the catalog from the artifact store (`prism catalog rebuild`): the artifacts are the source of truth.

What each table gets back, and from where (docs/deploy.md, Recovery):

- `titles`: one row per `titles/<title_id>/` folder with a `source_video` artifact (name, provider, expected
  languages, series/season/episode, duration, fps, size; status `processed`) and per title of a daily
  `delivery_manifest` that was never processed (status `delivered`); first/latest delivery dates from its deliveries.
- `deliveries`: every row of the daily `delivery_manifest` artifacts (URI, date, ETag, size), plus the delivery
  each `source_video` was probed from (URI, date, size; its ETag read back from the delivered object when it is
  still the same size, so the delivery sensor does not take it for a new delivery).
- `qc_results`: from each `titles/<title_id>/qc.json` (verdict, reasons, profile, event counts, duration), with the
  delivery date of the title's `source_video` and the artifact's URI.
- `signal_outputs`: one row per live artifact of a `titles/`, `daily/` or `seasons/` partition (URI, format, size,
  schema and code versions as the artifact records them: a JSON document's `schema_version`/`producer`, a Parquet
  file's pandas attrs in its footer; the code's declaration where the artifact has none, e.g. `.npy`).
- `signal_runs`: one `success` row per step (signal) and partition with at least one live output, with the
  outputs' code version and the main artifact's `producer` as its provenance.

What the artifacts do not hold, and what stands in for it:

- Dagster run ids: `REBUILT_RUN_ID` (the `search_index` step's run id is kept: its artifact records it);
- when things happened (`created_at`, `updated_at`, `started_at`, `finished_at`): the time of the rebuild;
  a delivery's `discovered_at`: midnight of its delivery date (a lower bound; keeps old titles out of the SLA window);
- history: only the live artifact of each output exists, so only the latest run of each step comes back, as
  `success`; failed, skipped and unfinished step runs (and their errors) and a title's `failed` status are not
  recorded in any artifact;
- a delivery's `sidecar` JSON (the delivery flows never store it; the fields the titles use are in `source_video`);
- internal autoincrement ids.

All rows are written in one transaction: a rebuild that fails writes nothing.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Callable

from ..core.artifacts import EXTENSIONS, ArtifactStore
from ..core.store import StoreError
from .models import Delivery, QCResult, SignalOutput, SignalRun, Title
from .repo import Catalog, delivery_key, utcnow

REBUILT_RUN_ID = "catalog-rebuild"  # stands for the Dagster run ids that the artifacts do not record
PARTITION_KINDS = ("titles", "daily", "seasons")  # ArtifactStore.base_key: per-title, daily and season partitions


class CatalogNotEmpty(RuntimeError):
    pass


@dataclass
class ArtifactInfo:
    kind: str  # titles | daily | seasons
    partition: str
    asset: str
    base: str
    uri: str
    format: str
    size_bytes: int
    schema_version: str | None = None
    code_version: str | None = None
    producer: dict | None = None


@dataclass
class RebuildPlan:
    titles: dict[str, dict] = field(default_factory=dict)
    deliveries: dict[str, dict] = field(default_factory=dict)  # delivery_key -> row
    qc_results: dict[str, dict] = field(default_factory=dict)
    signal_outputs: list[dict] = field(default_factory=list)
    signal_runs: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    without_etag: list[str] = field(default_factory=list)  # delivery URIs whose object is gone or changed since

    def summary(self, verb: str = "rebuilt") -> str:
        line = (f"{len(self.titles)} titles, {len(self.deliveries)} deliveries, {len(self.qc_results)} qc results, "
                f"{len(self.signal_outputs)} signal outputs, {len(self.signal_runs)} signal runs {verb}")
        extra = []
        if self.skipped:
            extra.append(f"{len(self.skipped)} skipped")
        if self.without_etag:
            extra.append(f"{len(self.without_etag)} deliveries without ETag (delivered file gone or changed since it was processed)")
        return line + (f"; {'; '.join(extra)}" if extra else "")


def _parquet_attrs(store, key: str, size: int) -> dict:
    """The Parquet file's PANDAS_ATTRS from its footer, read as bytes (the last 64 KiB, more if the footer is longer) and
    parsed from an Arrow buffer: a Python file object would let Arrow's IO threads call back into Python, which aborts
    the process (`terminate called without an active exception`) when one finishes during interpreter exit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tail = store.get_range(key, max(0, size - 64 * 1024), size - 1) if size > 0 else b""
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise ValueError(f"{key}: not a Parquet file (no footer)")
    need = int.from_bytes(tail[-8:-4], "little") + 8
    if need > size - 4:
        raise ValueError(f"{key}: Parquet footer of {need} bytes in a {size}-byte file")
    if need > len(tail):
        tail = store.get_range(key, size - need, size - 1)
    meta = pq.read_metadata(pa.BufferReader(b"PAR1" + bytes(tail[-need:]))).metadata or {}
    raw = meta.get(b"PANDAS_ATTRS")
    return json.loads(raw) if raw else {}


def _self_description(doc) -> tuple[str | None, str | None, dict | None]:
    """(schema_version, code_version, producer) as an artifact records them."""
    if not isinstance(doc, dict):
        return None, None, None
    producer = doc.get("producer") if isinstance(doc.get("producer"), dict) else None
    schema = doc.get("schema_version")
    return (str(schema) if schema is not None else None), ((producer or {}).get("code_version") or None), producer


def _describe(arts: ArtifactStore, kind: str, partition: str, asset: str, objects: dict[str, int], declared: dict) -> tuple[ArtifactInfo, object]:
    """The live artifact `<kind>/<partition>/<asset>` from the listing of its partition (key -> size): its row facts and,
    for a JSON main document, the document. Raises StoreError/ValueError for an artifact that cannot be read."""
    store = arts.store
    base = f"{kind}/{partition}/{asset}"
    pointer_key = f"{base}/CURRENT"
    doc = None
    if pointer_key in objects:
        pointer = json.loads(store.get_bytes(pointer_key))
        version, main = pointer["version"], pointer["main"]
        names = [main, *pointer.get("files", [])]
        missing = [n for n in names if f"{base}/{version}/{n}" not in objects]
        if missing:
            raise ValueError(f"bundle version {version} lacks {', '.join(missing)}")
        ext = main.rsplit(".", 1)[1]
        info = ArtifactInfo(kind, partition, asset, base, store.uri_for(f"{base}/{version}"), f"bundle+{ext}",
                            sum(objects[f"{base}/{version}/{n}"] for n in names))
        main_key = f"{base}/{version}/{main}"
    else:
        ext = next(e for e in EXTENSIONS if f"{base}.{e}" in objects)
        main_key = f"{base}.{ext}"
        info = ArtifactInfo(kind, partition, asset, base, store.uri_for(main_key), ext, objects[main_key])
    if ext == "json":
        doc = json.loads(store.get_bytes(main_key))
        info.schema_version, info.code_version, info.producer = _self_description(doc)
    elif ext == "parquet":
        info.schema_version, info.code_version, info.producer = _self_description(_parquet_attrs(store, main_key, objects[main_key]))
    schema, code = declared.get(asset, (None, None))
    info.schema_version = info.schema_version or schema
    info.code_version = info.code_version or code
    return info, doc


def _assets_of(kind: str, partition: str, objects: dict[str, int]) -> list[str]:
    """The assets with a live artifact in a partition's listing: `<asset>.<ext>` files and `<asset>/CURRENT` bundles."""
    prefix = f"{kind}/{partition}/"
    names = set()
    for key in objects:
        rest = key[len(prefix):]
        if "/" in rest:
            asset, _, tail = rest.partition("/")
            if tail == "CURRENT":
                names.add(asset)
        else:
            stem, dot, ext = rest.rpartition(".")
            if dot and ext in EXTENSIONS:
                names.add(stem)
    return sorted(names)


def _delivery_etag(storage, uri: str, size: int | None) -> str | None:
    """The delivered object's change marker as the delivery sensor reads it (S3 ETag, `<mtime_ns>-<size>` locally),
    when the object is still there with the size that was processed; None otherwise."""
    try:
        if uri.startswith("s3://"):
            bucket, _, key = uri[5:].partition("/")
            head = storage.s3_client().head_object(Bucket=bucket, Key=key)
            found_size, etag = int(head["ContentLength"]), head["ETag"].strip('"')
        else:
            st = os.stat(uri)
            found_size, etag = st.st_size, f"{st.st_mtime_ns}-{st.st_size}"
    except Exception:  # noqa: BLE001 - gone, unreadable, denied: the delivery is kept, without ETag
        return None
    return etag if size is None or int(size) == found_size else None


def _date(value) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def plan_rebuild(storage, signals=(), progress: Callable[[str, int | None], None] | None = None, workers: int = 8) -> RebuildPlan:
    """Every row the artifacts of `storage` (a PrismStorage) let us derive. `signals`: the code's Signal declarations
    (asset -> step, declared versions). `progress(description, total)` is called once per partition (total on the first call)."""
    arts = storage.artifacts()
    store = arts.store
    now = utcnow()
    step_of = {o.name: s for s in signals for o in s.outputs}
    declared = {o.name: (o.schema_version, s.code_version) for s in signals for o in s.outputs}
    plan = RebuildPlan()
    partitions = [(kind, p) for kind in PARTITION_KINDS for p in store.list_dirs(kind)]
    if progress:
        progress("listing artifacts", len(partitions))

    def read_partition(kind: str, partition: str):
        objects = {o.key: o.size for o in store.list(f"{kind}/{partition}")}
        found, skipped = {}, []
        for asset in _assets_of(kind, partition, objects):
            try:
                found[asset] = _describe(arts, kind, partition, asset, objects, declared)
            except (StoreError, ValueError, KeyError, OSError) as exc:
                skipped.append((f"{kind}/{partition}/{asset}", _one_line(exc)))
        return (kind, partition), found, skipped

    described: dict[tuple[str, str], dict[str, tuple[ArtifactInfo, object]]] = {}
    # partitions are read in parallel (S3 round trips dominate); an error listing the store ends the rebuild
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(read_partition, kind, p) for kind, p in partitions]
        try:
            for fut in as_completed(futures):
                key, found, skipped = fut.result()
                described[key] = found
                plan.skipped.extend(skipped)
                if progress:
                    progress("/".join(key), None)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    described = dict(sorted(described.items()))
    plan.skipped.sort()

    # deliveries: every day's manifest, then what each title was processed from
    for (kind, day), found in described.items():
        if kind != "daily" or "delivery_manifest" not in found:
            continue
        try:
            rows = arts.read(f"daily/{day}/delivery_manifest").to_dict("records")
        except Exception as exc:  # noqa: BLE001
            plan.skipped.append((f"daily/{day}/delivery_manifest", _one_line(exc)))
            continue
        for r in rows:
            d = _date(r.get("delivery_date"))
            if not r.get("title_id") or not r.get("uri") or d is None:
                plan.skipped.append((f"daily/{day}/delivery_manifest row {r.get('title_id')!r}", "no title id, URI or date"))
                continue
            _add_delivery(plan, r["title_id"], d, r["uri"], r.get("etag") or None, _int(r.get("size_bytes")))
    sources: dict[str, dict] = {}
    for (kind, tid), found in described.items():
        if kind != "titles":
            continue
        sv = found.get("source_video")
        if sv is None or not isinstance(sv[1], dict):
            continue  # a title row only if a manifest lists it (below)
        doc = sv[1]
        d, uri = _date(doc.get("delivery_date")), doc.get("source_uri")
        if d is None or not uri:
            plan.skipped.append((f"titles/{tid}/source_video", "no delivery_date or source_uri"))
            continue
        sources[tid] = doc
        key = delivery_key(uri)
        size = _int(doc.get("file_size_bytes"))
        known = plan.deliveries.get(key)
        etag = known["etag"] if known is not None and known["etag"] and (size is None or known["size_bytes"] in (None, size)) else None
        if etag is None:
            etag = _delivery_etag(storage, uri, size)
            if etag is None:
                plan.without_etag.append(uri)
        _add_delivery(plan, tid, d, uri, etag, size if size is not None else (known or {}).get("size_bytes"))

    # titles
    by_title: dict[str, list[date]] = {}
    for row in plan.deliveries.values():
        by_title.setdefault(row["title_id"], []).append(row["delivery_date"])
    for tid, doc in sources.items():  # a delivery URI is one row: a title whose file was later given another title id keeps its date
        by_title.setdefault(tid, []).append(_date(doc["delivery_date"]))
    for tid, days in sorted(by_title.items()):
        doc = sources.get(tid) or {}
        series = doc.get("series") or {}
        plan.titles[tid] = {
            "title_id": tid, "name": doc.get("title_name"), "provider": doc.get("provider"),
            "expected_languages": doc.get("expected_languages") or None,
            "first_delivery_date": min(days), "latest_delivery_date": max(days),
            "duration_s": doc.get("duration_s"), "fps": doc.get("fps"), "width": doc.get("width"), "height": doc.get("height"),
            "status": "processed" if doc else "delivered",
            "series_id": series.get("series_id"), "season": series.get("season"), "episode": series.get("episode"),
            "created_at": now, "updated_at": now,
        }

    # qc results, outputs and step runs
    for (kind, partition), found in described.items():
        if kind == "titles" and partition not in plan.titles:
            if found:
                plan.skipped.append((f"titles/{partition}", f"no source_video artifact and no delivery: its {len(found)} artifact(s) left out"))
            continue
        steps: dict[str, list[ArtifactInfo]] = {}
        for asset, (info, doc) in found.items():
            run_id = _run_id_of(asset, doc)
            plan.signal_outputs.append({
                "partition_key": partition, "signal": asset, "dagster_run_id": run_id, "uri": info.uri, "format": info.format,
                "schema_version": info.schema_version, "code_version": info.code_version, "size_bytes": info.size_bytes, "created_at": now})
            step = step_of.get(asset)
            if step is not None:
                steps.setdefault(step.name, []).append(info)
            if kind == "titles" and asset == "qc":
                row = _qc_row(partition, info, doc, sources.get(partition) or {}, now)
                if row is None:
                    plan.skipped.append((info.base, "qc document without verdict"))
                else:
                    plan.qc_results[partition] = row
        for step_name, infos in sorted(steps.items()):
            main = infos[0]
            run_ids = {_run_id_of(i.asset, found[i.asset][1]) for i in infos}
            plan.signal_runs.append({
                "title_id": partition if kind == "titles" else None, "partition_key": partition, "signal": step_name,
                "dagster_run_id": run_ids.pop() if len(run_ids) == 1 else REBUILT_RUN_ID, "status": "success",
                "code_version": main.code_version, "model": main.producer, "error": None, "started_at": now, "finished_at": now})
    return plan


def _run_id_of(asset: str, doc) -> str:
    """The Dagster run id an artifact records (the search index records the run that wrote it), else REBUILT_RUN_ID."""
    if asset == "search_index" and isinstance(doc, dict) and isinstance(doc.get("index_version"), str) and 0 < len(doc["index_version"]) <= 64:
        return doc["index_version"]
    return REBUILT_RUN_ID


def _qc_row(title_id: str, info: ArtifactInfo, doc, source: dict, now: datetime) -> dict | None:
    if not isinstance(doc, dict) or doc.get("verdict") not in ("pass", "warn", "fail"):
        return None
    profile = doc.get("profile")
    counts = {str(k): int(v) for k, v in (doc.get("event_counts") or {}).items()}
    return {"title_id": title_id, "verdict": doc["verdict"], "profile": (profile or {}).get("name") if isinstance(profile, dict) else str(profile or ""),
            "reasons": list(doc.get("reasons") or []), "event_counts": counts, "events_total": int(sum(counts.values())),
            "duration_s": doc.get("duration_s"), "delivery_date": _date(source.get("delivery_date")), "artifact_uri": info.uri,
            "dagster_run_id": REBUILT_RUN_ID, "code_version": info.code_version, "created_at": now, "updated_at": now}


def _add_delivery(plan: RebuildPlan, title_id: str, day: date, uri: str, etag: str | None, size: int | None) -> None:
    key = delivery_key(uri)
    plan.deliveries[key] = {"delivery_key": key, "title_id": title_id, "delivery_date": day, "uri": uri, "etag": etag, "size_bytes": size,
                            "sidecar": None, "discovered_at": datetime.combine(day, time())}


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and value == value else None  # NaN from a parquet column
    except (TypeError, ValueError):
        return None


def _one_line(exc: BaseException) -> str:
    from ..core.errors import describe

    return describe(exc)


def catalog_titles(catalog: Catalog) -> int:
    return catalog.count(Title)


def apply_plan(catalog: Catalog, plan: RebuildPlan, force: bool = False) -> None:
    """Writes the plan's rows in one transaction. Refuses (CatalogNotEmpty) a catalog that has titles unless `force`:
    then the rows derived from the artifacts replace theirs (same title, delivery URI, partition and output) and the
    others are kept."""
    with catalog.Session.begin() as s:
        from sqlalchemy import func, select

        existing = s.scalar(select(func.count()).select_from(Title))
        if existing and not force:
            raise CatalogNotEmpty(f"the catalog already has {existing} title(s): rebuild into an empty catalog, or add --force to merge")
        t_cols = [c for c in Title.__table__.columns.keys() if c not in ("title_id", "created_at")]
        catalog._upsert(s, Title, list(plan.titles.values()), ["title_id"], t_cols)
        catalog._upsert(s, Delivery, list(plan.deliveries.values()), ["delivery_key"],
                        ["title_id", "delivery_date", "uri", "etag", "size_bytes", "discovered_at"])
        catalog._upsert(s, QCResult, list(plan.qc_results.values()), ["title_id"],
                        [c for c in QCResult.__table__.columns.keys() if c not in ("id", "title_id", "created_at")])
        catalog._upsert(s, SignalOutput, plan.signal_outputs, ["partition_key", "signal"],
                        ["dagster_run_id", "uri", "format", "schema_version", "code_version", "size_bytes", "created_at"])
        catalog._upsert(s, SignalRun, plan.signal_runs, ["dagster_run_id", "signal", "partition_key"],
                        ["title_id", "status", "code_version", "model", "error", "started_at", "finished_at"])
