"""Deliveries: the delivery layout and scans, the delivery sensor, the daily `delivery_manifest`, the
manifest fan-out sensor and the daily batch schedule."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from ..core.domain import Domain, DomainContext
from ..core.title_graph import TitleGraph
from ..partitions import daily_partitions
from .assets import DELIVERY_MANIFEST
from .fanout import build_manifest_date_backfill_sensor, build_manifest_fanout_sensor
from .sensors import MANIFEST_JOB, build_daily_schedule, build_delivery_sensor


def _jobs(ctx: DomainContext) -> list:
    return [define_asset_job(
        MANIFEST_JOB,
        selection=AssetSelection.assets(DELIVERY_MANIFEST.name),
        partitions_def=daily_partitions,
        description="The day's delivery manifest.",
        executor_def=in_process_executor,
    )]


DOMAIN = Domain(
    name="deliveries",
    description="What was delivered when: each day's manifest of the delivery root, recorded in the catalog; the sensors and "
    "the schedule that turn deliveries into per-title runs.",
    signals=(DELIVERY_MANIFEST,),
    jobs=_jobs,
    schedules=lambda ctx: [build_daily_schedule()],
    sensors=lambda ctx: [build_delivery_sensor(ctx.settings), build_manifest_fanout_sensor(TitleGraph.from_signals(ctx.signals), min(15, ctx.settings.sensor_interval_s)),
                         build_manifest_date_backfill_sensor(TitleGraph.from_signals(ctx.signals), min(15, ctx.settings.sensor_interval_s))],
)
