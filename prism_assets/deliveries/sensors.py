"""Reacting to deliveries: the delivery sensor, the manifest fan-out sensor, the daily schedule."""


import time
from datetime import date, timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
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

from ..partitions import TAG_DELIVERY_DATE, TAG_REPROCESS, TITLES_PARTITIONS_NAME, titles_partitions
from ..resources import CatalogResource, PrismStorage
from ..settings import PrismSettings
from .layout import FoundDelivery
from .registry import PROCESS_TITLE_JOB, register_deliveries, title_run_request
from .scan import ScanCursor, scan_page

MANIFEST_JOB = "delivery_manifest_job"


def delivery_tick(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource, settings: PrismSettings) -> SensorResult:
    t0 = time.monotonic()
    store = storage.deliveries()
    cursor = ScanCursor.parse(context.cursor)
    page = scan_page(store, cursor, settings.sensor_max_keys_per_tick, settings.sensor_lookback_days)
    changed, new_titles = register_deliveries(context.instance, store, catalog.get(), page.deliveries)
    run_requests = [title_run_request(d, store.uri_for(d.key), "delivery") for d in changed]
    elapsed = time.monotonic() - t0
    if page.ignored:
        context.log.warning(f"{len(page.ignored)} object(s) outside the delivery layout ignored, e.g. {page.ignored[:3]}")
    context.log.info(
        f"listed {page.keys_listed} keys, {len(page.deliveries)} deliveries, {len(changed)} new or changed, "
        f"{len(new_titles)} new titles, {'end of listing' if page.exhausted else 'more pending'}; {elapsed:.2f}s"
    )
    if not run_requests and not new_titles:
        return SensorResult(skip_reason=SkipReason(f"no new deliveries ({page.keys_listed} keys listed)"), cursor=page.cursor.dumps())
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[titles_partitions.build_add_request(new_titles)] if new_titles else [],
        cursor=page.cursor.dumps(),
    )


def build_delivery_sensor(settings: PrismSettings):
    @sensor(
        name="delivery_sensor",
        job_name=PROCESS_TITLE_JOB,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Lists new deliveries under the delivery root (cursor, paginated), records them in the catalog, "
        "adds their titles as partitions and requests one process_title run per new or changed delivery.",
    )
    def delivery_sensor(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource):
        return delivery_tick(context, storage, catalog, settings)

    return delivery_sensor


def manifest_fanout_tick(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource, limit: int = 200) -> SensorResult:
    """For each new `delivery_manifest` materialization, requests runs for the day's titles: all
    of them when the manifest ran in a backfill or with prism/reprocess=true (a date backfill
    from the UI), else only those without a successful source_video yet (the daily schedule)."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("delivery_manifest"), after_storage_id=after), limit=limit, ascending=True
    ).records
    if not records:
        return SensorResult(skip_reason=SkipReason("no new manifest materializations"), cursor=context.cursor)
    cat = catalog.get()
    runs: list[RunRequest] = []
    new_titles: set[str] = set()
    existing = set(context.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    for rec in records:
        day = rec.partition_key
        dagster_run = context.instance.get_run_by_id(rec.run_id)
        run_tags = dagster_run.tags if dagster_run else {}
        reprocess = "dagster/backfill" in run_tags or run_tags.get(TAG_REPROCESS) == "true"
        for d in cat.deliveries_between(date.fromisoformat(day), date.fromisoformat(day)):
            outputs = cat.outputs(d.title_id)
            if not reprocess and "source_video" in outputs:
                continue
            if d.title_id not in existing:
                new_titles.add(d.title_id)
            fd = FoundDelivery(d.uri, d.delivery_date, d.title_id, d.uri.rsplit("/", 1)[-1], d.size_bytes or 0, d.etag or "")
            runs.append(title_run_request(fd, d.uri, f"manifest-{rec.storage_id}", {TAG_REPROCESS: "true"} if reprocess else None))
    context.log.info(f"{len(records)} manifest materialization(s) -> {len(runs)} title run(s)")
    return SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[titles_partitions.build_add_request(sorted(new_titles))] if new_titles else [],
        cursor=str(records[-1].storage_id),
    )


def build_manifest_fanout_sensor():
    @sensor(
        name="manifest_fanout_sensor",
        job_name=PROCESS_TITLE_JOB,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Turns each delivery_manifest materialization into process_title runs for exactly that day's titles "
        "(the UI path for backfills by date).",
    )
    def manifest_fanout_sensor(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource):
        return manifest_fanout_tick(context, storage, catalog)

    return manifest_fanout_sensor


def build_daily_schedule():
    @schedule(
        name="daily_batch_schedule",
        cron_schedule="0 6 * * *",
        job_name=MANIFEST_JOB,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="At 06:00 UTC materializes yesterday's delivery_manifest; the fan-out sensor then runs every title "
        "of that day not yet processed (catch-up for anything the delivery sensor missed).",
    )
    def daily_batch_schedule(context: ScheduleEvaluationContext):
        day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
        return RunRequest(run_key=f"daily:{day}", partition_key=day, tags={TAG_DELIVERY_DATE: day})

    return daily_batch_schedule
