"""The asset-check state kept incrementally by Prism's instance (core/check_state.py) is the state Dagster computes from
scratch, through real runs on real instances (SQLite; production's Postgres storage): passes and fails, a re-run, a newer materialization that
outdates the evaluations, a run that fails before its checks, a run still in progress, a deleted title, a wipe."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus as Res
from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state

pytestmark = pytest.mark.integration  # real runs on a real instance (Dagster asks `uname` for the run record)

titles = dg.DynamicPartitionsDefinition(name="titles")
SEEN: dict = {}


@dg.asset(partitions_def=titles, check_specs=[dg.AssetCheckSpec("ok", asset="a", partitions_def=titles),
                                                  dg.AssetCheckSpec("sla", asset="a", partitions_def=titles)])
def a(context):
    key = context.partition_key
    if key.startswith("boom"):
        raise RuntimeError("the title could not be read")
    if key.startswith("peek"):  # while this run is in progress: its checks are planned, not evaluated
        SEEN["during"] = both(context.instance)
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="ok", passed=not key.endswith("1")),
                                               dg.AssetCheckResult(check_name="sla", passed=True)])


@dg.asset(check_specs=[dg.AssetCheckSpec("fine", asset="b")])
def b():
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="fine", passed=True)])


KEYS = [(dg.AssetCheckKey(dg.AssetKey("a"), "ok"), titles), (dg.AssetCheckKey(dg.AssetKey("a"), "sla"), titles),
        (dg.AssetCheckKey(dg.AssetKey("b"), "fine"), None)]


def scratch(instance) -> dict:
    with partition_loading_context(dynamic_partitions_store=instance):
        return bulk_update_asset_check_state(instance, KEYS, {k: AssetCheckState.empty() for k, _ in KEYS})


def both(instance) -> tuple[dict, dict]:
    with partition_loading_context(dynamic_partitions_store=instance):
        return instance.event_log_storage.get_asset_check_state(KEYS), scratch(instance)


def view(states: dict) -> dict:
    def keys(subset):
        return subset.value if isinstance(subset.value, bool) else set(subset.value.get_partition_keys())
    return {str(k): (s.latest_storage_id, {st.value: keys(sub) for st, sub in s.subsets.items()},
                     {run: keys(sub) for run, sub in s.in_progress_runs.items()}) for k, s in states.items()}


def same(instance) -> dict:
    cached, fresh = both(instance)
    assert view(cached) == view(fresh)
    return view(cached)


def status_of(v: dict, title: str, check: str = "ok") -> list[str]:
    return [st for st, ks in v[str(dg.AssetCheckKey(dg.AssetKey("a"), check))][1].items() if title in ks]


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, tmp_path, monkeypatch):
    """The embedded instance (SQLite), and production's (deploy/dagster.yaml: Prism's Postgres storage) on a fresh
    database of the real PostgreSQL at 127.0.0.1:5432."""
    stack, env = None, {}
    if request.param == "sqlite":
        (tmp_path / "dagster.yaml").write_text("instance_class:\n  module: prism_assets.core.instance\n  class: PrismInstance\n")
    else:
        from .test_deploy import DEPLOY, load_local_stack

        stack = load_local_stack()
        env = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
               "DAGSTER_PG_DB": f"prism_checks_{uuid.uuid4().hex[:10]}"}
        assert stack.create_database(env), "PostgreSQL at 127.0.0.1:5432 is not reachable"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    try:
        with dg.DagsterInstance.from_config(str(tmp_path)) as inst:
            assert type(inst).__name__ == "PrismInstance"
            yield inst
    finally:
        if stack is not None:
            stack.drop_database(env)


def run(instance, key: str) -> bool:
    return dg.materialize([a], partition_key=key, instance=instance, raise_on_error=False).success


def test_the_kept_state_is_the_state_dagster_computes(instance, monkeypatch):
    from prism_assets.core import check_state

    monkeypatch.setattr(check_state, "OVERLAP", 0)  # reads since the last one start right after it (scratch reads from 0)
    storage = instance.event_log_storage
    reads = []
    real = storage.get_asset_check_partition_info
    storage.get_asset_check_partition_info = lambda keys, after_storage_id=None, partition_keys=None: (
        reads.append(after_storage_id), real(keys, after_storage_id=after_storage_id, partition_keys=partition_keys))[1]

    instance.add_dynamic_partitions("titles", ["t0", "t1", "t2", "t3", "boom0", "peek0"])
    for key in ("t0", "t1", "t2", "t3"):
        assert run(instance, key)
    assert dg.materialize([b], instance=instance).success
    v = same(instance)
    assert status_of(v, "t0") == [Res.SUCCEEDED.value] and status_of(v, "t1") == [Res.FAILED.value]

    n = len(reads)
    with partition_loading_context(dynamic_partitions_store=instance):
        kept = storage.get_asset_check_state(KEYS[:2])
        assert len(reads) == n  # nothing new since: the kept state, no read of the checks' records
        assert kept[KEYS[0][0]] is storage.get_asset_check_state(KEYS[:2])[KEYS[0][0]]

    assert run(instance, "t1")  # evaluated again: still failed, once
    v = same(instance)
    assert status_of(v, "t1") == [Res.FAILED.value]
    assert any(after for after in reads[n:])  # brought up to date with the records since, not read again in full

    instance.report_runless_asset_event(dg.AssetMaterialization("a", partition="t2"))  # newer than its evaluations
    v = same(instance)
    assert status_of(v, "t2") == []

    assert not run(instance, "boom0")  # failed before its checks ran
    v = same(instance)
    assert status_of(v, "boom0") == [Res.EXECUTION_FAILED.value]
    cache = storage.get_asset_check_state.__self__
    assert cache.run_statuses_kept == 1  # boom0's run, which its planned checks name

    assert run(instance, "peek0")
    during_cached, during_fresh = SEEN["during"]
    assert view(during_cached) == view(during_fresh)
    assert status_of(view(during_cached), "peek0") == [Res.IN_PROGRESS.value]
    assert status_of(same(instance), "peek0") == [Res.SUCCEEDED.value]

    instance.delete_dynamic_partition("titles", "t0")  # a removed title leaves the state (no event marks that)
    assert status_of(same(instance), "t0") == []

    instance.wipe_assets([dg.AssetKey("a")])
    v = same(instance)
    assert all(not ks for ks in v[str(KEYS[0][0])][1].values())
    assert cache.run_statuses_kept == 0  # no record names a run any more: no status kept


def test_another_process_wipe_is_caught_by_the_full_read(instance, monkeypatch):
    from prism_assets.core import check_state

    instance.add_dynamic_partitions("titles", ["t0"])
    assert run(instance, "t0")
    assert status_of(same(instance), "t0") == [Res.SUCCEEDED.value]
    other = dg.DagsterInstance.from_ref(instance.get_ref())  # another process's instance on the same storage
    other.wipe_assets([dg.AssetKey("a")])
    stale, _ = both(instance)
    assert status_of(view(stale), "t0") == [Res.SUCCEEDED.value]  # unseen here until the next full read
    monkeypatch.setattr(check_state, "FULL_EVERY_S", -1.0)
    assert status_of(same(instance), "t0") == []


def test_kept_run_statuses_go_with_the_records_that_name_them(instance, monkeypatch):
    """The statuses of runs that failed before their checks are kept only while a latest record names them: a full
    read (here: another process wiped the asset) drops the rest."""
    from prism_assets.core import check_state

    instance.add_dynamic_partitions("titles", ["boom1", "boom2"])
    for key in ("boom1", "boom2"):
        assert not run(instance, key)
    assert status_of(same(instance), "boom2") == [Res.EXECUTION_FAILED.value]
    cache = instance.event_log_storage.get_asset_check_state.__self__
    assert cache.run_statuses_kept == 2
    dg.DagsterInstance.from_ref(instance.get_ref()).wipe_assets([dg.AssetKey("a")])  # not through this instance: no clear()
    monkeypatch.setattr(check_state, "FULL_EVERY_S", -1.0)
    assert status_of(same(instance), "boom2") == []
    assert cache.run_statuses_kept == 0
