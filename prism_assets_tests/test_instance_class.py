"""Prism's instance class (core/instance.py): dynamic partition keys read in bulk under a burst of single lookups,
never a key reported missing that the storage holds."""

from __future__ import annotations

import pytest

from prism_assets.core.instance import BURST, TTL_S, WINDOW_S, DynamicKeyCache

pytestmark = pytest.mark.unit


class Storage:
    def __init__(self, keys):
        self.keys, self.single, self.bulk = set(keys), 0, 0

    def has_dynamic_partition(self, name, key):
        self.single += 1
        return key in self.keys

    def get_dynamic_partitions(self, name):
        self.bulk += 1
        return sorted(self.keys)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_burst_of_lookups_reads_the_keys_once():
    store, clock = Storage(f"t{i}" for i in range(1000)), Clock()
    cache = DynamicKeyCache(store, clock)
    assert all(cache.has("titles", f"t{i}") for i in range(1000))
    assert store.bulk == 1 and store.single == BURST  # the first BURST lookups were single queries, the rest from the set
    assert not cache.has("titles", "nope") and store.single == BURST + 1  # a miss is asked of the storage


def test_single_lookups_stay_single_queries():
    store, clock = Storage(["a", "b"]), Clock()
    cache = DynamicKeyCache(store, clock)
    for _ in range(5):
        assert cache.has("titles", "a")
        clock.t += WINDOW_S + 0.1  # spread out: never a burst
    assert store.bulk == 0 and store.single == 5


def test_a_key_added_elsewhere_is_never_missing_and_the_set_expires():
    store, clock = Storage(f"t{i}" for i in range(100)), Clock()
    cache = DynamicKeyCache(store, clock)
    for i in range(BURST + 2):
        cache.has("titles", f"t{i}")
    store.keys.add("new")  # another process added it after the set was read
    assert cache.has("titles", "new")
    store.keys.discard("t1")  # deleted elsewhere: may read as present until the set expires
    clock.t += TTL_S + 0.1
    assert not cache.has("titles", "t1")


def test_this_instances_writes_drop_the_set(tmp_path):
    from dagster import DagsterInstance

    (tmp_path / "dagster.yaml").write_text("instance_class:\n  module: prism_assets.core.instance\n  class: PrismInstance\n")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance).__name__ == "PrismInstance"
        instance.add_dynamic_partitions("titles", [f"t{i}" for i in range(50)])
        assert all(instance.has_dynamic_partition("titles", f"t{i}") for i in range(50))  # a burst: the set is read
        instance.delete_dynamic_partition("titles", "t3")
        assert not instance.has_dynamic_partition("titles", "t3")
        instance.add_dynamic_partitions("titles", ["t3"])
        assert instance.has_dynamic_partition("titles", "t3")
        assert not instance.has_dynamic_partition("titles", "t999")


@pytest.mark.parametrize("path", ["dagster.yaml", "deploy/dagster.yaml", "deploy/dagster.mysql.yaml", "deploy/ecs/dagster.ecs.yaml"])
def test_every_instance_config_selects_it(path):
    import yaml

    from prism_assets.settings import project_root

    cfg = yaml.safe_load((project_root() / path).read_text())
    assert cfg["instance_class"] == {"module": "prism_assets.core.instance", "class": "PrismInstance"}
