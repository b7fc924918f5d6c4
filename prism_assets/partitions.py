"""Partitioning scheme (docs/architecture.md, "Partitions").

Per-title assets are partitioned by one dynamic partition per title (`titles`): the count grows
with titles, never titles x days. The delivery date is data (catalog, run tags, metadata),
not a partition dimension. Day-level assets (the delivery manifest, later the daily QC report)
use the daily partitions. Season-level assets (intro/recap across the episodes of a season) use one
dynamic partition per season (`seasons`, key `<series_id>.S<season>`): they grow with seasons, and a
late episode re-materializes its season's partition (structure.seasons.season_sensor).
"""

import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

TITLES_PARTITIONS_NAME = "titles"
DAILY_PARTITIONS_NAME = "delivery_day"
SEASONS_PARTITIONS_NAME = "seasons"
FIRST_DATE_ENV = "PRISM_FIRST_DELIVERY_DATE"
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class FirstDateError(ValueError):
    """PRISM_FIRST_DELIVERY_DATE is not a date: one line."""


def first_delivery_date(env=None, today: date | None = None) -> date:
    """The first day of the daily partitions (the manifest, the QC report): `PRISM_FIRST_DELIVERY_DATE`; else the first
    date on record, the earliest `YYYY-MM-DD` folder of a local delivery root (`PRISM_DELIVERY_ROOT`, default
    `<data dir>/deliveries`); never later than the sensor's look-back window before today, so a delivery the sensor or
    the daily schedules can still launch always has its partition. Read when the code location loads: a date before
    it needs the setting (or a reload after its folder appeared)."""
    env = os.environ if env is None else env
    today = today or datetime.now(timezone.utc).date()
    window = max(int(env.get("PRISM_SENSOR_LOOKBACK_DAYS") or 3), int(env.get("PRISM_SENSOR_FIRST_LISTING_DAYS") or 3), 1)
    latest = today - timedelta(days=window)
    raw = (env.get(FIRST_DATE_ENV) or "").strip()
    if raw:
        try:
            if not _DAY_RE.fullmatch(raw):
                raise ValueError("expected YYYY-MM-DD")
            return min(date.fromisoformat(raw), latest)
        except ValueError as exc:
            raise FirstDateError(f"{FIRST_DATE_ENV}={raw!r} is not a date ({exc})") from None
    root = env.get("PRISM_DELIVERY_ROOT") or ""
    if not root:
        from .settings import default_data_dir

        root = str(default_data_dir() / "deliveries")
    days = []
    if "://" not in root and Path(root).is_dir():  # an s3:// root is not listed at load: set PRISM_FIRST_DELIVERY_DATE
        for p in Path(root).iterdir():
            if _DAY_RE.fullmatch(p.name) and p.is_dir():
                try:
                    days.append(date.fromisoformat(p.name))
                except ValueError:
                    continue
    return min([*days, latest])


DAILY_START_DATE = first_delivery_date().isoformat()

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
TAG_TITLE_RUN = "prism/title_run"  # "1" on the runs of a backfill of per-title assets launched by the manifest fan-out (not process_title runs)
TAG_QC_VERDICT = "prism/qc_verdict"  # on a title run: the title's QC verdict (pass | warn | fail)
TAG_QC_REASON = "prism/qc_reason"  # on a title run: the verdict's first reason (one line), when it is not pass


def is_title_run(run, job_name: str = "process_title") -> bool:
    """A run that processes one title: a `process_title` run, or a run of a per-title backfill launched by the fan-out
    (Dagster runs an asset backfill's runs as its implicit asset job; the backfill's tags mark them)."""
    return run.job_name == job_name or (run.tags.get(TAG_TITLE_RUN) == "1" and bool(run.tags.get("dagster/partition")))
