"""The index domain: `search_index` and `proxy` per title, and the index's maintenance job."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, MetadataValue, ScheduleDefinition, job, op

from ..core.domain import Domain, DomainContext
from ..partitions import TITLES_PARTITIONS_NAME
from .assets import INDEX
from .gate import build_index_after_gate_sensor, build_index_title_job
from .proxy import PROXY
from .resources import SearchIndexResource, TextModelResource

MAINTENANCE_JOB = "index_maintenance_job"
INDEX_TITLE = build_index_title_job()  # one definition, shared by the jobs and the sensor


@op(pool="index", required_resource_keys={"search_index"},
    description="Remove the rows of titles that are no longer partitions of `titles`, compact the tables, fold new rows into "
    "their indexes and delete table versions older than an hour.")
def index_maintenance(context) -> None:
    backend = context.resources.search_index.backend()
    live = set(context.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    removed = {}
    for title_id in backend.title_ids():
        if title_id not in live:
            removed[title_id] = backend.remove_title(title_id)
            context.log.info(f"{title_id}: no longer a title partition: its index rows were removed")
    stats = backend.maintain()
    context.add_output_metadata({"titles_removed": sorted(removed), "rows": {k: v["rows"] for k, v in stats.items()},
                                 "old_versions_removed": {k: v["old_versions_removed"] for k, v in stats.items()},
                                 "ann_index": ann_table(stats), "revision": backend.revision()})
    return None  # the index itself is the result: nothing for the IO manager to store


def ann_table(stats: dict):
    """The vector indexes maintain() looked at, one row each: the partitions LanceDB really has (after optimize) and
    whether it was rebuilt (index/ann.py)."""
    rows = [f"| {k} | {v['rows']:,} | {v['ann'].get('ivf_partitions_after_optimize')} | {'yes' if v['ann'].get('rebuilt') else 'no'} |"
            for k, v in stats.items() if v.get("ann")]
    return MetadataValue.md("\n".join(["| table | rows | IVF partitions | rebuilt |", "|---|---|---|---|", *rows]) if rows
                            else "no table large enough for a vector index")


def _resources(ctx: DomainContext) -> dict:
    s = ctx.settings
    return {"text_model": TextModelResource(profile=ctx.profile),
            "search_index": SearchIndexResource(uri=s.index_location, s3_endpoint_url=s.s3_endpoint_url, s3_region=s.s3_region)}


def _jobs(ctx: DomainContext) -> list:
    @job(name=MAINTENANCE_JOB, description="Index maintenance: orphaned titles removed, tables compacted, old versions deleted.",
         tags={"prism/step": "index_maintenance"})
    def index_maintenance_job():
        index_maintenance()

    return [index_maintenance_job, INDEX_TITLE]


def _sensors(ctx: DomainContext) -> list:
    return [build_index_after_gate_sensor("process_title", INDEX_TITLE)]


def _schedules(ctx: DomainContext) -> list:
    return [ScheduleDefinition(name="index_maintenance_schedule", job_name=MAINTENANCE_JOB, cron_schedule="30 3 * * *",
                               execution_timezone="UTC", default_status=DefaultScheduleStatus.RUNNING,
                               description="Daily at 03:30 UTC: compaction and cleanup of the search index.")]


DOMAIN = Domain(
    name="index",
    description="Serving: each title's rows in the cross-title search index (LanceDB) and a browser-playable proxy; the index's "
    "daily maintenance. Read by the API and viewer (`prism serve`).",
    signals=(PROXY, INDEX),
    resources=_resources,
    jobs=_jobs,
    schedules=_schedules,
    sensors=_sensors,
)
