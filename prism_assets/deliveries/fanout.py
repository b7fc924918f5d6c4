"""The manifest fan-out: each `delivery_manifest` materialization becomes `process_title` runs for
exactly the titles of that manifest (the rows of its artifact: what the day's date folder holds).

Which of the day's titles run, by who materialized the manifest:

- the daily schedule (`dagster/schedule_name`): catch-up, the titles never attempted for their current
  delivery (a title that failed is not relaunched automatically: that is its run's retry policy's job);
- anyone else (a backfill of dates from the UI, one date materialized from the UI, a run with the tag):
  `prism/rerun` on the manifest run or backfill: `stale` (default) runs the titles that are not up to
  date (an output missing, failed, from an older code version or older than the delivery), `all` runs
  every title of the day.

The title runs carry `prism/delivery_date`, `prism/manifest_run` and, when the manifest ran in a
backfill, that backfill's `dagster/backfill` tag: they show in the backfill's runs in the UI and the
backfill stays in progress until they are done. Run keys (`manifest:<manifest run>:<title>`) make a
tick idempotent. A manifest materialized as a plain run (one date picked in the Materialize dialog:
Dagster's dialog launches a run, not a backfill, for a single partition) fans out as ONE asset
backfill of the per-title assets over that date's titles, so the date's work shows in the Backfills
tab with its titles and counts, like a range of dates does. The first evaluation (no cursor) fans out
nothing that was materialized before it.
"""

from __future__ import annotations

from datetime import date

from dagster import AssetKey, AssetObservation, AssetRecordsFilter, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from ..core.artifacts import ArtifactStore
from ..core.store import StoreError
from ..core.title_graph import TitleGraph
from ..partitions import TAG_DELIVERY_DATE, TAG_FANOUT, TAG_MANIFEST_RUN, TAG_RERUN, TAG_TITLE_RUN, titles_partitions
from ..resources import CatalogResource, PrismStorage
from .layout import FoundDelivery
from .registry import PROCESS_TITLE_JOB, title_run_request

MANIFEST = "delivery_manifest"
RERUN_MODES = ("stale", "all")
SCHEDULE_TAG = "dagster/schedule_name"
BACKFILL_TAG = "dagster/backfill"


def rerun_mode(run_tags: dict) -> str:
    if SCHEDULE_TAG in run_tags:
        return "catch_up"
    mode = run_tags.get(TAG_RERUN, "stale")
    return mode if mode in RERUN_MODES else "stale"


def active_run(instance, title_id: str) -> bool:
    """Whether a process_title run of the title is queued or in progress (a second would duplicate it)."""
    from dagster import DagsterRunStatus as S
    from dagster import RunsFilter

    active = [S.QUEUED, S.NOT_STARTED, S.STARTING, S.STARTED]
    return bool(instance.get_run_records(RunsFilter(statuses=active, tags={"dagster/partition": title_id}), limit=1))  # process_title or a backfill's run


def wanted(catalog, graph: TitleGraph, title_id: str, mode: str) -> bool:
    """Whether the title runs under this mode (see the module docstring)."""
    if mode == "all":
        return True
    delivery = catalog.sla_delivery(title_id)
    if delivery is None:  # not recorded: the manifest records its deliveries, so this is defensive
        return True
    if mode == "catch_up":
        return not catalog.attempted_since(title_id, delivery.discovered_at)
    return bool(graph.missing(catalog, title_id, delivery.discovered_at, current_code=True))


def one_date_run(tags: dict) -> bool:
    """A manifest materialized as a plain run by an operator (not in a backfill, not by the daily schedule): its titles
    go as one backfill (`manifest_date_backfill_sensor`); the others' as runs (`manifest_fanout_sensor`)."""
    return BACKFILL_TAG not in tags and SCHEDULE_TAG not in tags


def fanout_tick(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource, graph: TitleGraph, limit: int = 50,
                backfills: bool = False) -> SensorResult:
    """One tick over new manifest materializations: with `backfills`, those of one-date runs (one backfill each);
    without, the others (one run per title). Each materialization is handled by exactly one of the two sensors."""
    instance = context.instance
    if context.cursor is None:
        latest = instance.fetch_materializations(AssetKey(MANIFEST), limit=1, ascending=False).records
        start = str(latest[0].storage_id) if latest else "0"
        return SensorResult(skip_reason=SkipReason("first evaluation: manifests materialized before now are not fanned out"), cursor=start)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(MANIFEST), after_storage_id=int(context.cursor)), limit=limit, ascending=True).records
    if not records:
        return SensorResult(skip_reason=SkipReason("no new manifest materializations"), cursor=context.cursor)
    cat = catalog.get()
    arts = storage.artifacts()
    runs, observations = [], []
    for rec in records:
        day = rec.partition_key
        run = instance.get_run_by_id(rec.run_id)
        tags = dict(run.tags) if run else {}
        if one_date_run(tags) != backfills:
            continue  # the other sensor's
        mode = rerun_mode(tags)
        try:
            rows = arts.read(ArtifactStore.base_key(MANIFEST, day, daily=True))
        except StoreError as exc:
            context.log.warning(f"manifest {day}: artifact unreadable ({exc}): nothing fanned out")
            continue
        extra = {TAG_MANIFEST_RUN: rec.run_id, TAG_RERUN: mode}
        if BACKFILL_TAG in tags:
            extra[BACKFILL_TAG] = tags[BACKFILL_TAG]
        chosen, current, running = [], [], []
        titles = rows.drop_duplicates("title_id", keep="last")
        for r in titles.itertuples():
            if not wanted(cat, graph, r.title_id, mode):
                current.append(r.title_id)
                continue
            if active_run(instance, r.title_id):
                running.append(r.title_id)
                continue
            d = FoundDelivery(r.uri, date.fromisoformat(r.delivery_date), r.title_id, r.uri.rsplit("/", 1)[-1], int(r.size_bytes), r.etag or "")
            runs.append(title_run_request(d, r.uri, f"manifest:{rec.run_id}:{r.title_id}", extra))
            chosen.append(r.title_id)
        as_backfill = bool(chosen) and backfills
        if as_backfill:  # the one-date run of the UI: the date's titles as one backfill (Backfills tab), not loose runs
            runs = [r for r in runs if not (r.tags or {}).get(TAG_MANIFEST_RUN) == rec.run_id]
            runs.append(titles_backfill_request(context, graph, chosen, {**extra, TAG_DELIVERY_DATE: day, TAG_TITLE_RUN: "1"}))
        line = plan_line(day, mode, len(titles), chosen, current, running, as_backfill)
        context.log.info(f"manifest {day} (run {rec.run_id[:8]}): {line}")
        # what the fan-out did, where the operator looks: the manifest run's tags (run page, Runs list) and the manifest
        # partition's events (an observation beside its materialization)
        try:
            instance.add_run_tags(rec.run_id, {TAG_FANOUT: line[:200]})
            if run is not None:  # the run page's event list: the operator reads it where the run's own steps are
                instance.report_engine_event(f"fan-out: {line}", run)
        except Exception as exc:  # noqa: BLE001  (a run deleted meanwhile: the observation still says it)
            context.log.warning(f"manifest {day}: cannot tag run {rec.run_id[:8]}: {exc}")
        observations.append(AssetObservation(asset_key=MANIFEST, partition=day, metadata={
            "fanout": line, "launched": len(chosen), "up_to_date": len(current), "already_running": len(running), "rerun": mode,
            "manifest_run": rec.run_id, "launched_titles": ", ".join(chosen[:50]) or "none"}))
    return SensorResult(run_requests=runs, cursor=str(records[-1].storage_id), asset_events=observations)


def titles_backfill_request(context: SensorEvaluationContext, graph: TitleGraph, titles: list[str], tags: dict) -> RunRequest:
    """One asset backfill of every per-title asset over `titles` (the sensor daemon submits it; the backfill daemon runs
    one run per title, as `process_title` would). Dagster builds a sensor's backfill from an AssetGraphSubset: its only
    constructor today (`RunRequest.for_asset_graph_subset`, documented as such in dagster 1.13)."""
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

    subset = titles_partitions.empty_subset().with_partition_keys(titles)
    job_tags = {}
    if context.repository_def is not None and context.repository_def.has_job(PROCESS_TITLE_JOB):
        job_tags = dict(context.repository_def.get_job(PROCESS_TITLE_JOB).tags)  # its run time limit
    return RunRequest.for_asset_graph_subset(
        AssetGraphSubset(partitions_subsets_by_asset_key={AssetKey(name): subset for name in graph.outputs}, non_partitioned_asset_keys=set()),
        tags={**job_tags, **tags})


def plan_line(day: str, mode: str, total: int, chosen: list, current: list, running: list, as_backfill: bool = False) -> str:
    """One line: how many of the day's titles the fan-out launched and why the others were not, with how to force them."""
    line = (f"{total} title(s) delivered {day}: {len(chosen)} launched" + (" as one backfill (Backfills tab)" if as_backfill else "")
            + f", {len(current)} up to date" + (f", {len(running)} already running" if running else "") + f" (rerun: {mode})")
    if current and mode != "all":
        line += "; to re-run the up-to-date ones, materialize the date again with rerun: all (launchpad) or tag prism/rerun = all"
    return line


def build_manifest_fanout_sensor(graph: TitleGraph, interval_s: int = 15):
    @sensor(
        name="manifest_fanout_sensor",
        job_name=PROCESS_TITLE_JOB,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Turns each delivery_manifest materialization of a backfill over dates or of the daily schedule into "
        "process_title runs for exactly that manifest's titles: catch-up after the schedule, `prism/rerun` = stale (default) | all "
        "otherwise (one date materialized as a plain run: manifest_date_backfill_sensor).",
    )
    def manifest_fanout_sensor(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource):
        return fanout_tick(context, storage, catalog, graph)

    return manifest_fanout_sensor


def build_manifest_date_backfill_sensor(graph: TitleGraph, interval_s: int = 15):
    """Dagster lets only a sensor that targets an asset selection request a backfill, and rewrites every run such a
    sensor requests onto its implicit asset job: so one-date manifests have their own sensor, over the per-title assets."""
    from dagster import AssetSelection

    @sensor(
        name="manifest_date_backfill_sensor",
        asset_selection=AssetSelection.assets(*graph.outputs),
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Turns a delivery_manifest date materialized as a plain run (one date picked in the Materialize dialog) into "
        "ONE backfill of the per-title assets over that date's titles (Runs > Backfills), `prism/rerun` = stale (default) | all.",
    )
    def manifest_date_backfill_sensor(context: SensorEvaluationContext, storage: PrismStorage, catalog: CatalogResource):
        return fanout_tick(context, storage, catalog, graph, backfills=True)

    return manifest_date_backfill_sensor
