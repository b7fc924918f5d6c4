"""Recording deliveries in the catalog and the run requests for their titles (shared by the sensors,
the manifest asset and the CLI)."""

from dagster import RunRequest

from ..catalog import Catalog, DeliveryRecord
from ..core.store import ObjectStore
from ..partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI, TITLES_PARTITIONS_NAME
from .layout import FoundDelivery

PROCESS_TITLE_JOB = "process_title"


def title_run_request(d: FoundDelivery, uri: str, run_key_prefix: str, extra_tags: dict | None = None) -> RunRequest:
    tags = {TAG_DELIVERY_DATE: d.delivery_date.isoformat(), TAG_DELIVERY_URI: uri, **(extra_tags or {})}
    return RunRequest(run_key=f"{run_key_prefix}:{d.title_id}:{d.key}:{d.etag}", partition_key=d.title_id, tags=tags, job_name=PROCESS_TITLE_JOB)


def register_deliveries(
    instance, store: ObjectStore, catalog: Catalog, found: list[FoundDelivery], *, only_changed: bool = True
) -> tuple[list[FoundDelivery], list[str]]:
    """Records deliveries in the catalog; returns (new-or-changed deliveries, titles new to the
    `titles` partitions). Deliveries with the same URI and ETag as the catalog's are unchanged."""
    uris = {d.key: store.uri_for(d.key) for d in found}
    known = catalog.delivery_etags(uris.values()) if only_changed else {}
    changed = [d for d in found if uris[d.key] not in known or known[uris[d.key]] != d.etag]
    catalog.record_deliveries(DeliveryRecord(d.title_id, d.delivery_date, uris[d.key], d.etag, d.size) for d in changed)
    existing = set(instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME)) if changed else set()
    new_titles = sorted({d.title_id for d in changed} - existing)
    return changed, new_titles
