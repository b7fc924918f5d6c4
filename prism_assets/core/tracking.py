"""Catalog run tracking of a signal step (`signal_runs`: started -> success | failed | skipped)
and one-line failures."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dagster import Failure


@dataclass
class SignalRunRecord:
    model: dict | None = None  # provenance: which model / tool produced the outputs
    skipped: str | None = None  # why nothing was produced (an optional output not applicable to this title)
    extra: dict = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


@contextmanager
def tracked_signal_run(context, catalog, *, signal: str, code_version: str | None, per_title: bool = True):
    """Records the run of a signal step for the current partition in the catalog (`catalog` is a
    `Catalog`). Expected errors are a dagster `Failure` with a one-line description and are final
    (never retried: bad input stays bad); any other exception is recorded by its first line and
    re-raised unchanged (the retry policy may retry it). A generator closed from outside (the
    output could not be stored, the run was interrupted) is recorded as failed too."""
    partition = context.partition_key if context.has_partition_key else "-"
    title_id = partition if context.has_partition_key and per_title else None
    catalog.start_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, code_version=code_version, title_id=title_id)
    record = SignalRunRecord()
    try:
        yield record
    except BaseException as exc:
        if isinstance(exc, Failure):
            # Prism's one-line Failures are deterministic (bad input, missing weights): never retried
            # by the RetryPolicy (core/routing.py), which is for transient S3/DB/worker errors
            exc.allow_retries = False
        if isinstance(exc, GeneratorExit):
            error = "interrupted before its outputs were stored"
        else:
            error = exc.description if isinstance(exc, Failure) else one_line(exc)
        catalog.finish_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, status="failed", error=error)
        if title_id:
            catalog.update_title(title_id, status="failed")
        raise
    else:
        status = "skipped" if record.skipped else "success"
        catalog.finish_signal_run(partition_key=partition, signal=signal, run_id=context.run_id, status=status, model=record.model,
                                  error=record.skipped)



_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def close_dead_run(catalog, scratch_dir: str | Path | None, run_id: str, partition: str | None, why: str) -> tuple[list[str], int]:
    """What a run that died (killed, crashed, failed by run monitoring) left behind: its signal runs still
    `started` become failed with `why` (their titles too), and its step scratch folders
    (`<scratch>/<kind>/<partition>/<run[:8]>`, see SignalContext.workdir) are removed.
    Returns (titles marked failed, scratch folders removed)."""
    titles = catalog.fail_unfinished_signal_runs(run_id, f"run ended before this step finished: {why}")
    for title_id in titles:
        catalog.update_title(title_id, status="failed")
    removed = 0
    if scratch_dir and partition and _SAFE_NAME.fullmatch(partition) and _SAFE_NAME.fullmatch(run_id[:8]):
        root = Path(scratch_dir)
        for folder in root.glob(f"*/{partition}/{run_id[:8]}"):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return titles, removed


@contextmanager
def final_attempt_names_the_cause(context):
    """On a step's last attempt, a transient error (S3, the catalog database, a worker) becomes a one-line
    `Failure` naming it, with the number of attempts, instead of Dagster's "Exceeded max_retries of N"
    (whose cause only the expanded error shows). Earlier attempts re-raise unchanged: the RetryPolicy
    retries them. Prism's own Failures pass through."""
    from .errors import describe

    try:
        yield
    except Failure:
        raise
    except Exception as exc:
        policy = getattr(getattr(context, "op_def", None), "retry_policy", None)
        if policy is None or context.retry_number < policy.max_retries:
            raise
        n = context.retry_number + 1
        where = context.partition_key if context.has_partition_key else context.op_def.name
        raise Failure(description=f"{where}: {describe(exc)} ({n} attempt{'s' if n != 1 else ''})", allow_retries=False) from exc
