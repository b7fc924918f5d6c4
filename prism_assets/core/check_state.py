"""The asset-check state behind an asset's Partitions tab, kept up to date incrementally in the serving process
(`PrismInstance` installs it on its event log storage).

Dagster 1.13 computes a check's state (which partitions passed, failed, are in progress ...) from scratch on every
request (`EventLogStorage.get_asset_check_state`: no checkpoint in open-source storages), and builds it one partition
at a time, each a copy of the set so far: with 9,000 evaluated titles and six per-title checks, 1.2 s of SQL and
1.5-30 s of set copies per look at the `qc` asset (benchmarks/results/ui_scale.json). Here, for checks of a dynamic
partitions definition (the titles), the latest record of each partition is kept in memory and brought up to date
with only the records written since (the storage's maximum record id says whether there are any: one indexed query),
and the state is derived from those records in one pass. It is the state Dagster would compute from scratch
(prism_assets_tests/test_check_state.py compares the two through real runs): a partition's latest record decides it;
planned evaluations of finished runs resolve to skipped or execution-failed; deleted titles drop out.

What this process cannot see, others' wipes of an asset's history, is caught by reading everything again every
`FULL_EVERY_S`; this process's own wipes and run deletions clear the cache at once. Checks of other partitions
definitions (the daily ones: few partitions) and unpartitioned checks go to Dagster's own computation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

FULL_EVERY_S = 300.0  # every check's records are read in full at least this often
OVERLAP = 1000  # record ids before the last seen maximum read again (ids can become visible out of order)


class _Check:
    __slots__ = ("pdef", "records", "seen_id", "read_at", "state", "derived_for")

    def __init__(self, pdef, seen_id: int, read_at: float):
        self.pdef, self.seen_id, self.read_at = pdef, seen_id, read_at
        self.records: dict[str, tuple] = {}  # partition -> (status, is_current, planned run id, latest storage id)
        self.state = None  # AssetCheckState derived from `records`
        self.derived_for: tuple | None = None  # (seen_id, valid keys' fingerprint, unresolved runs) of `state`


class CheckStateCache:
    def __init__(self, instance, storage, original: Callable, clock: Callable[[], float] = time.monotonic):
        self._instance, self._storage, self._original, self._clock = instance, storage, original, clock
        self._lock = threading.Lock()
        self._checks: dict = {}  # AssetCheckKey -> _Check
        self._finished: dict[str, object] = {}  # run id -> its final DagsterRunStatus

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()
            self._finished.clear()  # a deleted run's status goes too

    @property
    def run_statuses_kept(self) -> int:
        """How many finished runs' statuses are kept (only those a check's latest record still names, after a full read)."""
        return len(self._finished)

    def get_asset_check_state(self, keys: Sequence[tuple]) -> Mapping:
        from dagster import DynamicPartitionsDefinition

        mine = [(k, p) for k, p in keys if isinstance(p, DynamicPartitionsDefinition) and p.name]
        others = [(k, p) for k, p in keys if not (isinstance(p, DynamicPartitionsDefinition) and p.name)]
        out = dict(self._original(others)) if others else {}
        if mine:
            with self._lock:
                out.update(self._states(mine))
        return out

    # -- records
    def _states(self, keys: Sequence[tuple]) -> dict:
        top = self._storage.get_maximum_record_id() or 0  # read before the records: anything later is read next time
        now = self._clock()
        cold, stale = [], []
        for key, pdef in keys:
            c = self._checks.get(key)
            if c is None or c.pdef != pdef or now - c.read_at > FULL_EVERY_S:
                cold.append(key)
                self._checks[key] = _Check(pdef, top, now)
            elif c.seen_id < top:
                stale.append(key)
        if cold:
            self._read(cold, None, top)
            self._prune_finished()
        if stale:
            self._read(stale, max(0, min(self._checks[k].seen_id for k in stale) - OVERLAP), top)
        valid = {}
        return {key: self._derive(key, pdef, valid) for key, pdef in keys}

    def _read(self, keys: list, after: int | None, top: int) -> None:
        for info in self._storage.get_asset_check_partition_info(keys, after_storage_id=after):
            c = self._checks[info.check_key]
            c.records[info.partition_key] = (info.latest_execution_status, info.is_current, info.latest_planned_run_id,
                                             max(info.latest_check_event_storage_id, info.latest_materialization_storage_id or 0))
        for key in keys:
            self._checks[key].seen_id = top

    def _valid_keys(self, pdef, valid: dict) -> frozenset:
        if pdef.name not in valid:
            valid[pdef.name] = frozenset(self._instance.get_dynamic_partitions(pdef.name))
        return valid[pdef.name]

    def _prune_finished(self) -> None:
        """Keep the statuses of the runs some check's latest record names as planned, no others: without this the map
        grew by every run that ever failed before its checks, for the process's life (a webserver's: months)."""
        from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Rec

        named = {r[2] for c in self._checks.values() for r in c.records.values() if r[0] == Rec.PLANNED}
        for run_id in [r for r in self._finished if r not in named]:
            del self._finished[run_id]

    def _run_statuses(self, run_ids: set[str]) -> dict:
        from dagster import RunsFilter
        from dagster._core.storage.dagster_run import FINISHED_STATUSES

        ask = [r for r in run_ids if r not in self._finished]
        if ask:
            for run in self._instance.get_runs(filters=RunsFilter(run_ids=ask, statuses=FINISHED_STATUSES)):
                self._finished[run.run_id] = run.status
        return {r: self._finished[r] for r in run_ids if r in self._finished}

    # -- the state, as Dagster computes it from scratch (asset_check_state._process_partition_records and
    #    _process_run_statuses over every partition's latest record, starting from an empty state)
    def _derive(self, key, pdef, valid: dict):
        from dagster._core.asset_graph_view.serializable_entity_subset import SerializableEntitySubset
        from dagster._core.storage.asset_check_execution_record import (
            AssetCheckExecutionRecordStatus as Rec,
        )
        from dagster._core.storage.asset_check_execution_record import (
            AssetCheckExecutionResolvedStatus as Res,
        )
        from dagster._core.storage.asset_check_state import AssetCheckState
        from dagster._core.storage.dagster_run import DagsterRunStatus

        c = self._checks[key]
        keys = self._valid_keys(pdef, valid)
        planned_runs = {r[2] for r in c.records.values() if r[0] == Rec.PLANNED}
        finished = self._run_statuses(planned_runs) if planned_runs else {}
        signature = (c.seen_id, len(keys), hash(keys), tuple(sorted(r for r in planned_runs if r not in finished)))
        if c.state is not None and c.derived_for == signature:
            return c.state
        by: dict = {s: [] for s in Res}
        planned: dict[str, list[str]] = {}
        latest = 0
        for pk, (status, current, run_id, last) in c.records.items():
            latest = max(latest, last)
            if pk not in keys:
                continue
            if status == Rec.PLANNED:
                planned.setdefault(run_id, []).append(pk)
            elif status in (Rec.SUCCEEDED, Rec.FAILED) and current:
                by[Res.SUCCEEDED if status == Rec.SUCCEEDED else Res.FAILED].append(pk)
        in_progress = {}
        for run_id, pks in planned.items():
            done = finished.get(run_id)
            if done is None:
                by[Res.IN_PROGRESS] += pks
                in_progress[run_id] = SerializableEntitySubset(key=key, value=pdef.subset_with_partition_keys(pks))
            else:
                by[Res.EXECUTION_FAILED if done == DagsterRunStatus.FAILURE else Res.SKIPPED] += pks
        subsets = {s: SerializableEntitySubset(key=key, value=pdef.subset_with_partition_keys(pks)) for s, pks in by.items()}
        c.state, c.derived_for = AssetCheckState(latest_storage_id=latest, subsets=subsets, in_progress_runs=in_progress), signature
        return c.state
