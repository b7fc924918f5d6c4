"""Reacting to deliveries: the delivery sensor and the daily schedule (the manifest fan-out is fanout.py)."""


import time
from datetime import date, timedelta

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from ..partitions import TAG_DELIVERY_DATE, titles_partitions
from ..resources import CatalogResource, PrismStorage
from ..settings import PrismSettings
from .queue import is_queue_cursor, queue_tick
from .registry import PROCESS_TITLE_JOB, changed_deliveries, delivery_run_key, new_titles, title_run_request
from .scan import ScanCursor, run_key_digest, scan_page, track_requested

MANIFEST_JOB = "delivery_manifest_job"


def delivery_tick(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource, settings: PrismSettings,
                  today: date | None = None) -> SensorResult:
    """One page of the delivery root: a run request (with a run key) per new or changed delivery, its
    title added as a partition. Nothing is written to the catalog here (registry.py). On the very first
    listing (no cursor), deliveries dated more than `sensor_first_listing_days` before today are old: they
    are not launched (backfill their dates to process them). With PRISM_DELIVERY_QUEUE_URL set, the tick
    consumes the delivery queue's S3 event notifications instead (queue.py), with the same run requests."""
    if settings.delivery_queue_url:
        return queue_tick(context, storage, catalog, settings)
    t0 = time.monotonic()
    store = storage.deliveries()
    queue_cursor = is_queue_cursor(context.cursor)  # the queue was just turned off: a first listing again
    cursor = ScanCursor.parse(None if queue_cursor else context.cursor)
    if context.cursor is None or queue_cursor:
        cursor.since = ((today or date.today()) - timedelta(days=settings.sensor_first_listing_days)).isoformat()
    page = scan_page(store, cursor, settings.sensor_max_keys_per_tick, settings.sensor_lookback_days)
    found = page.deliveries
    old = [d for d in found if cursor.since and d.delivery_date.isoformat() < cursor.since]
    found = [d for d in found if d not in old]
    changed = changed_deliveries(store, catalog.get(), found)
    keys = {id(d): delivery_run_key(d) for d in found}
    pending = set(cursor.requested)
    fresh = [d for d in changed if run_key_digest(keys[id(d)]) not in pending]  # not requested by an earlier tick
    changed_ids = {id(d) for d in changed}
    track_requested(page.cursor, known=[run_key_digest(keys[id(d)]) for d in found if id(d) not in changed_ids],
                    new=[run_key_digest(keys[id(d)]) for d in fresh])
    added = new_titles(context.instance, (d.title_id for d in fresh))
    run_requests = [title_run_request(d, store.uri_for(d.key), keys[id(d)]) for d in fresh]
    elapsed = time.monotonic() - t0
    if page.ignored:
        context.log.warning(f"{len(page.ignored)} object(s) outside the delivery layout ignored, e.g. {page.ignored[:3]}")
    if old:
        context.log.info(f"{len(old)} delivery(ies) dated before {cursor.since} left to backfills by date (first listing), e.g. {[d.key for d in old[:3]]}")
    context.log.info(
        f"listed {page.keys_listed} keys, {len(page.deliveries)} deliveries, {len(fresh)} new or changed, "
        f"{len(changed) - len(fresh)} requested earlier and not yet processed, "
        f"{len(added)} new titles, {'end of listing' if page.exhausted else 'more pending'}; {elapsed:.2f}s"
    )
    if not run_requests and not added:
        return SensorResult(skip_reason=SkipReason(f"no new deliveries ({page.keys_listed} keys listed)"), cursor=page.cursor.dumps())
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[titles_partitions.build_add_request(added)] if added else [],
        cursor=page.cursor.dumps(),
    )


def build_delivery_sensor(settings: PrismSettings):
    if settings.delivery_queue_url:
        description = ("Consumes the delivery queue's S3 event notifications (PRISM_DELIVERY_QUEUE_URL), adds the titles as partitions and "
                       "requests one process_title run per new or changed delivery (run key: title, file, ETag); a message is deleted "
                       "the tick after its run request, poison messages go to the dead-letter queue.")
    else:
        description = ("Lists new deliveries under the delivery root (cursor, paginated), adds their titles as partitions and "
                       "requests one process_title run per new or changed delivery (run key: title, file, ETag).")

    @sensor(
        name="delivery_sensor",
        job_name=PROCESS_TITLE_JOB,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def delivery_sensor(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource):
        return delivery_tick(context, storage, catalog, settings)

    return delivery_sensor


def build_daily_schedule():
    @schedule(
        name="daily_batch_schedule",
        cron_schedule="0 6 * * *",
        job_name=MANIFEST_JOB,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="At 06:00 UTC materializes yesterday's delivery_manifest; the fan-out sensor then runs every title "
        "of that day never attempted for its current delivery (catch-up for anything the delivery sensor missed).",
    )
    def daily_batch_schedule(context: ScheduleEvaluationContext):
        day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
        return RunRequest(run_key=f"daily:{day}", partition_key=day, tags={TAG_DELIVERY_DATE: day})

    return daily_batch_schedule
