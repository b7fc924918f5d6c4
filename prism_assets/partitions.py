"""Partitioning scheme (docs/architecture.md, "Partitions").

Per-title assets are partitioned by one dynamic partition per title (`titles`): the count grows
with titles, never titles x days. The delivery date is data (catalog, run tags, metadata),
not a partition dimension. Day-level assets (the delivery manifest, later the daily QC report)
use the daily partitions.
"""

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

TITLES_PARTITIONS_NAME = "titles"
DAILY_PARTITIONS_NAME = "delivery_day"
DAILY_START_DATE = "2024-01-01"

titles_partitions = DynamicPartitionsDefinition(name=TITLES_PARTITIONS_NAME)
daily_partitions = DailyPartitionsDefinition(start_date=DAILY_START_DATE, end_offset=1)

# run tags written by the sensor, the schedule, the CLI and backfills
TAG_DELIVERY_DATE = "prism/delivery_date"
TAG_DELIVERY_URI = "prism/delivery_uri"
TAG_DELIVERY_ETAG = "prism/delivery_etag"
TAG_DELIVERY_SIZE = "prism/delivery_size"
TAG_REPROCESS = "prism/reprocess"
TAG_RERUN = "prism/rerun"  # on a manifest run or backfill: which of the day's titles to (re)process: stale (default) | all
TAG_MANIFEST_RUN = "prism/manifest_run"  # on a title run: the manifest run whose fan-out launched it
TAG_QC_VERDICT = "prism/qc_verdict"  # on a title run: the title's QC verdict (pass | warn | fail)
