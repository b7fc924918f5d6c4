"""Seasons: the sidecar's series fields, the `seasons` partition key, and season_sensor (a late episode
re-runs its season; one run per fingerprint batch, never two for the same one)."""

from __future__ import annotations

import json

import pytest
from dagster import AssetMaterialization, DagsterInstance, build_sensor_context

from prism_assets.deliveries.layout import parse_sidecar
from prism_assets.partitions import SEASONS_PARTITIONS_NAME, parse_season_key, season_key
from prism_assets.structure.seasons import SEASON_KEY_TAG, season_tick


def side(**kw) -> bytes:
    return json.dumps({"title": "Ep", **kw}).encode()


def test_sidecar_series_fields_kept_when_valid():
    doc, warnings = parse_sidecar(side(series_id="ACME-dark_1", season=2, episode=7), "x.json")
    assert (doc["series_id"], doc["season"], doc["episode"]) == ("ACME-dark_1", 2, 7) and warnings == []


@pytest.mark.parametrize("fields", [
    {"series_id": "a/b", "season": 1, "episode": 1},  # not a partition-safe id
    {"series_id": "x" * 65, "season": 1, "episode": 1},
    {"series_id": "show", "season": "1", "episode": 1},  # a string season
    {"series_id": "show", "season": True, "episode": 1},
    {"series_id": "show", "season": 1000, "episode": 1},
    {"series_id": "show", "episode": 1},  # no season
    {"season": 1, "episode": 2},  # no series
])
def test_sidecar_series_fields_dropped_together_with_one_warning(fields):
    doc, warnings = parse_sidecar(side(**fields), "x.json")
    assert not any(k in doc for k in ("series_id", "season", "episode"))
    assert len(warnings) == 1 and "series_id" in warnings[0] and "\n" not in warnings[0]
    assert doc["title"] == "Ep"  # the rest of the sidecar stays


def test_season_key_round_trip_and_rejects():
    assert season_key("ACME-dark", 1) == "ACME-dark.S01"
    assert parse_season_key(season_key("s_1", 123)) == ("s_1", 123)
    for bad in ("ACME", "ACME.S1", "a.b.S01", "ACME.S01\n", ""):
        with pytest.raises(ValueError):
            parse_season_key(bad)
    with pytest.raises(ValueError):
        season_key("bad id", 1)


def _fingerprinted(instance, title_id: str, key: str | None):
    tags = {SEASON_KEY_TAG: key} if key else {}
    instance.report_runless_asset_event(AssetMaterialization("fingerprint", partition=title_id, tags=tags))


def _structured(instance, title_id: str):
    instance.report_runless_asset_event(AssetMaterialization("structure", partition=title_id))


def _tick(instance, cursor):
    with build_sensor_context(instance=instance, cursor=cursor) as ctx:
        return season_tick(ctx)


def test_season_sensor_runs_each_season_once_per_batch_and_again_for_a_late_episode():
    with DagsterInstance.ephemeral() as instance:
        first = _tick(instance, None)
        assert not first.run_requests and first.skip_reason
        _fingerprinted(instance, "ep1", "SHOW.S01")
        _fingerprinted(instance, "ep2", "SHOW.S01")
        _fingerprinted(instance, "other", "OTHER.S02")
        _fingerprinted(instance, "film", None)  # not in a series: no season
        for t in ("ep1", "ep2", "other", "film"):
            _structured(instance, t)
        r = _tick(instance, first.cursor)
        assert sorted(x.partition_key for x in r.run_requests) == ["OTHER.S02", "SHOW.S01"]  # one run per season, not per episode
        added = {k for p in r.dynamic_partitions_requests for k in p.partition_keys}
        assert added == {"SHOW.S01", "OTHER.S02"} and all(p.partitions_def_name == SEASONS_PARTITIONS_NAME for p in r.dynamic_partitions_requests)
        instance.add_dynamic_partitions(SEASONS_PARTITIONS_NAME, sorted(added))
        again = _tick(instance, r.cursor)
        assert not again.run_requests  # nothing new: no second run for the same fingerprints
        _structured(instance, "ep3")  # a late episode (its structure first: either order works)
        _fingerprinted(instance, "ep3", "SHOW.S01")
        late = _tick(instance, again.cursor)
        assert [x.partition_key for x in late.run_requests] == ["SHOW.S01"]
        assert not late.dynamic_partitions_requests  # the season exists already
        assert late.run_requests[0].run_key != next(x.run_key for x in r.run_requests if x.partition_key == "SHOW.S01")


def test_season_waits_for_an_episodes_structure_and_reruns_when_it_changes():
    """The season reads each episode's structure (its OCR end credits): a fingerprinted episode without one
    requests no season run; its structure's materialization does; a later one (recomputed) requests it again."""
    with DagsterInstance.ephemeral() as instance:
        _fingerprinted(instance, "ep1", "SHOW.S01")
        _fingerprinted(instance, "film", None)
        _structured(instance, "film")  # outside a series: never a season
        r = _tick(instance, None)
        assert not r.run_requests and "waiting for their structure" in r.skip_reason.skip_message
        again = _tick(instance, r.cursor)
        assert not again.run_requests
        _structured(instance, "ep1")
        ready = _tick(instance, again.cursor)
        assert [x.partition_key for x in ready.run_requests] == ["SHOW.S01"]
        instance.add_dynamic_partitions(SEASONS_PARTITIONS_NAME, ["SHOW.S01"])
        assert not _tick(instance, ready.cursor).run_requests  # nothing new
        _structured(instance, "ep1")  # recomputed (a new code version, a new data version)
        rerun = _tick(instance, ready.cursor)
        assert [x.partition_key for x in rerun.run_requests] == ["SHOW.S01"]
        assert rerun.run_requests[0].run_key != ready.run_requests[0].run_key
        # a cursor written before structures were watched (a plain storage id) is still read
        assert not _tick(instance, str(10**9)).run_requests


def test_season_lists_an_episode_without_structure_as_pending_with_the_reason(tmp_path):
    """compute_season never decides an episode by position alone: fingerprinted without structure -> pending."""
    from types import SimpleNamespace

    from prism_assets.structure import seasons as S

    class Arts:
        def __init__(self, docs):
            self.docs = docs

        def exists(self, key):
            return key in self.docs

        def read(self, key):
            return self.docs[key]

    fp = {"title_id": "ep2", "duration_s": 60.0, "audio": None, "pictures": None}
    docs = {S.ArtifactStore.base_key("fingerprint", t): dict(fp, title_id=t) for t in ("ep1", "ep2")}
    docs[S.ArtifactStore.base_key("structure", "ep1")] = {"credits": {"end": None}}
    logs = []
    sc = SimpleNamespace(partition="SHOW.S01", storage=SimpleNamespace(artifacts=lambda: Arts(docs)), config={}, profile=SimpleNamespace(name="t"),
                         catalog=SimpleNamespace(season_titles=lambda sid, n: [SimpleNamespace(title_id=t, episode=i + 1) for i, t in enumerate(("ep1", "ep2", "ep3"))]),
                         log=SimpleNamespace(info=logs.append, warning=logs.append), fail=RuntimeError)
    doc = S.compute_season(sc).value
    assert [e["title_id"] for e in doc["episodes"]] == ["ep1"]
    assert doc["pending"] == ["ep2", "ep3"]
    assert "structure not materialized" in doc["pending_reasons"]["ep2"] and doc["pending_reasons"]["ep3"] == "not fingerprinted yet"
