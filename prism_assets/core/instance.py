"""Prism's Dagster instance class (`instance_class` in every dagster.yaml): Dagster's own, with dynamic partition keys
looked up in bulk when they are looked up one by one in bulk.

Dagster 1.13 checks a title's partition key with one SQL query (`has_dynamic_partition`), and some of its views ask
that once per partition: the asset-check state behind an asset's Partitions tab validates every evaluated
partition key of every check that way (`asset_check_state._process_partition_records`), ~1.7 ms a query, so a
per-title asset with 10,000 evaluated titles took 17.5 s to open (benchmarks/results/ui_scale.json). Here a name
looked up more than `BURST` times within `WINDOW_S` seconds is answered from its whole key set, read in one query
and kept `TTL_S` seconds; a key the set does not hold is asked of the storage anyway (a title added by another
process a moment ago is never reported missing), and the set is dropped at once when this instance adds or deletes
keys of that name. Single lookups (a run worker's, a sensor's) stay single indexed queries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from dagster import DagsterInstance

from .check_state import CheckStateCache

BURST = 16  # single-key lookups of one name per window before its whole key set is read
WINDOW_S = 1.0
TTL_S = 2.0  # a deleted key may still read as present this long (never an added one as missing)


class DynamicKeyCache:
    def __init__(self, storage, clock=time.monotonic):
        self._storage, self._clock, self._lock = storage, clock, threading.Lock()
        self._sets: dict[str, tuple[float, frozenset[str]]] = {}  # name -> (read at, keys)
        self._counts: dict[str, tuple[float, int]] = {}  # name -> (window start, lookups in it)

    def has(self, name: str, key: str) -> bool:
        now = self._clock()
        with self._lock:
            read = self._sets.get(name)
            if read is not None and now - read[0] > TTL_S:
                read = None
            if read is None:
                start, n = self._counts.get(name, (now, 0))
                start, n = (start, n + 1) if now - start <= WINDOW_S else (now, 1)
                self._counts[name] = (start, n)
        if read is None and n > BURST:
            read = (now, frozenset(self._storage.get_dynamic_partitions(name)))
            with self._lock:
                self._sets[name] = read
        if read is not None and key in read[1]:
            return True
        return self._storage.has_dynamic_partition(name, key)

    def forget(self, name: str) -> None:
        with self._lock:
            self._sets.pop(name, None)


class PrismInstance(DagsterInstance):
    """DagsterInstance whose `has_dynamic_partition` reads a name's keys in bulk under a burst of lookups, and whose
    event log storage keeps the asset-check state of per-title checks up to date incrementally (check_state.py)."""

    # what Dagster asks of an `instance_class` (dagster/_core/instance/ref.py): no settings of its own, and the
    # embedded instance's defaults (SQLite storage under DAGSTER_HOME) where dagster.yaml sets none
    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str):
        from dagster._core.instance.ref import InstanceRef

        return InstanceRef.config_defaults(base_dir)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dynamic_keys = DynamicKeyCache(self.event_log_storage)
        storage = self.event_log_storage
        self._check_states = CheckStateCache(self, storage, storage.get_asset_check_state)
        storage.get_asset_check_state = self._check_states.get_asset_check_state  # this storage object only (check_state.py)

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return self._dynamic_keys.has(partitions_def_name, partition_key)

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        try:
            return super().add_dynamic_partitions(partitions_def_name, partition_keys)
        finally:
            self._dynamic_keys.forget(partitions_def_name)

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        try:
            return super().delete_dynamic_partition(partitions_def_name, partition_key)
        finally:
            self._dynamic_keys.forget(partitions_def_name)

    # history this process removes: the asset-check state kept in memory is read again
    def wipe_assets(self, asset_keys) -> None:
        try:
            return super().wipe_assets(asset_keys)
        finally:
            self._check_states.clear()

    def wipe_asset_partitions(self, *args, **kwargs) -> None:
        try:
            return super().wipe_asset_partitions(*args, **kwargs)
        finally:
            self._check_states.clear()

    def delete_run(self, run_id: str) -> None:
        try:
            return super().delete_run(run_id)
        finally:
            self._check_states.clear()

    def wipe(self) -> None:
        try:
            return super().wipe()
        finally:
            self._check_states.clear()
