"""Deliveries and the title runs they ask for (shared by the sensors, the manifest asset, the CLI
and `source_video`).

Who writes a delivery into the catalog: the run that processes it (`source_video`, from its run
tags), the day's manifest run, and `prism process` / `prism backfill`; never a sensor tick. A tick
only reads the catalog to tell new or changed deliveries (by URI and ETag) and returns run requests
with run keys, so a tick whose result is lost asks again on the next pass and Dagster's run keys
keep it from launching twice: no delivery is lost or duplicated.
"""

from dagster import RunRequest

from ..catalog import Catalog, DeliveryRecord
from ..core.store import ObjectStore
from ..partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_ETAG, TAG_DELIVERY_SIZE, TAG_DELIVERY_URI, TITLES_PARTITIONS_NAME
from .layout import FoundDelivery

PROCESS_TITLE_JOB = "process_title"


def delivery_tags(d: FoundDelivery, uri: str) -> dict[str, str]:
    return {TAG_DELIVERY_DATE: d.delivery_date.isoformat(), TAG_DELIVERY_URI: uri, TAG_DELIVERY_ETAG: d.etag or "", TAG_DELIVERY_SIZE: str(int(d.size))}


def title_run_request(d: FoundDelivery, uri: str, run_key: str, extra_tags: dict | None = None) -> RunRequest:
    return RunRequest(run_key=run_key, partition_key=d.title_id, tags={**delivery_tags(d, uri), **(extra_tags or {})}, job_name=PROCESS_TITLE_JOB)


def delivery_run_key(d: FoundDelivery) -> str:
    """One run per delivered file and content: a re-delivery with new content (ETag) runs again."""
    return f"delivery:{d.title_id}:{d.key}:{d.etag}"


def changed_deliveries(store: ObjectStore, catalog: Catalog, found: list[FoundDelivery]) -> list[FoundDelivery]:
    """The deliveries the catalog does not know with this URI and ETag (read only)."""
    uris = {d.key: store.uri_for(d.key) for d in found}
    known = catalog.delivery_etags(uris.values())
    return [d for d in found if uris[d.key] not in known or known[uris[d.key]] != d.etag]


def new_titles(instance, titles) -> list[str]:
    """Titles that are not yet `titles` partitions."""
    titles = set(titles)
    if not titles:
        return []
    existing = set(instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    return sorted(titles - existing)


def record_deliveries(store: ObjectStore, catalog: Catalog, found: list[FoundDelivery]) -> None:
    catalog.record_deliveries(DeliveryRecord(d.title_id, d.delivery_date, store.uri_for(d.key), d.etag, d.size) for d in found)


def register_deliveries(instance, store: ObjectStore, catalog: Catalog, found: list[FoundDelivery]) -> list[str]:
    """Records deliveries in the catalog and adds their titles as partitions (inside a run: the
    manifest, the CLI); returns the titles that were new partitions."""
    record_deliveries(store, catalog, found)
    added = new_titles(instance, (d.title_id for d in found))
    if added:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, added)
    return added
