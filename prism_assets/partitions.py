"""Partitioning scheme (docs/architecture.md, "Partitions").

Per-title assets are partitioned by one dynamic partition per title (`titles`): the count grows
with titles, never titles x days. The delivery date is data (catalog, run tags, metadata),
not a partition dimension. Day-level assets (the delivery manifest, later the daily QC report)
use the daily partitions. Season-level assets (intro/recap across the episodes of a season) use one
dynamic partition per season (`seasons`, key `<series_id>.S<season>`): they grow with seasons, and a
late episode re-materializes its season's partition (structure.seasons.season_sensor).
"""

import re

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

TITLES_PARTITIONS_NAME = "titles"
DAILY_PARTITIONS_NAME = "delivery_day"
DAILY_START_DATE = "2024-01-01"
SEASONS_PARTITIONS_NAME = "seasons"

titles_partitions = DynamicPartitionsDefinition(name=TITLES_PARTITIONS_NAME)
daily_partitions = DailyPartitionsDefinition(start_date=DAILY_START_DATE, end_offset=1)
seasons_partitions = DynamicPartitionsDefinition(name=SEASONS_PARTITIONS_NAME)

SERIES_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SEASON_KEY_RE = re.compile(r"(?P<series>[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.S(?P<season>[0-9]{2,3})")


def season_key(series_id: str, season: int) -> str:
    """The `seasons` partition key of a series' season, e.g. `ACME-DARK.S01`."""
    if not SERIES_ID_RE.fullmatch(series_id or "") or not 0 <= int(season) <= 999:
        raise ValueError(f"invalid series/season: {series_id!r} season {season!r}")
    return f"{series_id}.S{int(season):02d}"


def parse_season_key(key: str) -> tuple[str, int]:
    m = _SEASON_KEY_RE.fullmatch(key or "")
    if not m:
        raise ValueError(f"not a season partition key (<series_id>.S<season>): {key!r}")
    return m["series"], int(m["season"])

# run tags written by the sensor, the schedule, the CLI and backfills
TAG_DELIVERY_DATE = "prism/delivery_date"
TAG_DELIVERY_URI = "prism/delivery_uri"
TAG_DELIVERY_ETAG = "prism/delivery_etag"
TAG_DELIVERY_SIZE = "prism/delivery_size"
TAG_REPROCESS = "prism/reprocess"
TAG_RERUN = "prism/rerun"  # on a manifest run or backfill: which of the day's titles to (re)process: stale (default) | all
TAG_MANIFEST_RUN = "prism/manifest_run"  # on a title run: the manifest run whose fan-out launched it
TAG_FANOUT = "prism/fanout"  # on a manifest run: what its fan-out did ("3 title(s) delivered <date>: 0 launched, 3 up to date ...")
TAG_QC_VERDICT = "prism/qc_verdict"  # on a title run: the title's QC verdict (pass | warn | fail)
TAG_QC_REASON = "prism/qc_reason"  # on a title run: the verdict's first reason (one line), when it is not pass
