"""Shared plumbing for signal assets: catalog run tracking, freshness, one-line failures."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from dagster import Failure, FreshnessPolicy

from ..settings import PrismSettings


def default_freshness_policy(settings: PrismSettings | None = None) -> FreshnessPolicy:
    """Every asset carries one: a title not (re)materialized inside the window shows as late."""
    s = settings or PrismSettings.from_env()
    return FreshnessPolicy.time_window(
        fail_window=timedelta(hours=s.freshness_fail_hours), warn_window=timedelta(hours=s.freshness_warn_hours)
    )


@dataclass
class SignalRunRecord:
    model: dict | None = None
    extra: dict = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


@contextmanager
def tracked_signal_run(context, catalog, *, signal: str, code_version: str | None):
    """Records the run of a signal for the current partition in the catalog (started ->
    success | failed). Expected errors become a dagster Failure with a one-line description."""
    partition = context.partition_key if context.has_partition_key else "-"
    title_id = partition if context.has_partition_key else None
    cat = catalog.get()
    cat.start_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, code_version=code_version, title_id=title_id)
    record = SignalRunRecord()
    try:
        yield record
    except Exception as exc:
        if isinstance(exc, Failure):
            # Prism's one-line Failures are deterministic (bad input, missing weights): never retried
            # by the RetryPolicy (core/routing.py), which is for transient S3/DB/worker errors
            exc.allow_retries = False
        error = exc.description if isinstance(exc, Failure) else one_line(exc)
        cat.finish_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, status="failed", error=error)
        if title_id:
            cat.update_title(title_id, status="failed")
        raise
    else:
        cat.finish_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, status="success", model=record.model)
