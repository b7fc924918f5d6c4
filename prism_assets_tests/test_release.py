"""`release`, the last step of a title's run: a title that cannot ship (QC verdict fail) ends its run FAILED in the
Runs list, after everything else was materialized (issue: "a title whose QC verdict is fail shows green in Runs")."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from dagster import DagsterInstance, asset, materialize

from prism_assets.cli.common import qc_gate_only
from prism_assets.definitions import build_resources
from prism_assets.partitions import titles_partitions
from prism_assets.release.assets import RELEASE_RULES, compute_release

from .support import signal_assets

VERDICT = {"t-pass": ("pass", []), "t-warn": ("warn", ["freeze 2.0 s"]), "t-fail": ("fail", ["loudness -14.1 LUFS (target -23 +-1)"])}


@asset(partitions_def=titles_partitions, group_name="qc", name="qc")
def qc_standin(context) -> dict:
    verdict, reasons = VERDICT[context.partition_key]
    return {"title_id": context.partition_key, "verdict": verdict, "reasons": reasons, "profile": "ebu_r128", "events": []}


@asset(partitions_def=titles_partitions, group_name="index", name="search_index")
def search_index_standin(context) -> dict:
    return {"title_id": context.partition_key, "index_version": context.run_id}


@pytest.mark.unit
def test_release_document_and_its_rule():
    log = SimpleNamespace(warning=lambda *a: None)
    sc = SimpleNamespace(title_id="t1", profile=SimpleNamespace(name="dev"), log=log)
    bad = compute_release(sc, {"verdict": "fail", "reasons": ["true peak -0.2 dBTP"], "profile": "ebu_r128"}, {"index_version": "r1"})
    assert bad.value["releasable"] is False and bad.value["reasons"] == ["true peak -0.2 dBTP"] and bad.value["index_version"] == "r1"
    passed, meta = RELEASE_RULES[0].fn(bad.value)
    assert not passed and meta["summary"] == "verdict fail: true peak -0.2 dBTP"
    ok = compute_release(sc, {"verdict": "warn", "reasons": ["freeze"]}, {})
    assert ok.value["releasable"] is True and RELEASE_RULES[0].fn(ok.value)[0]
    assert RELEASE_RULES[0].blocking and RELEASE_RULES[0].severity.value == "ERROR"


@pytest.mark.integration
def test_a_title_that_cannot_ship_ends_its_run_failed_after_everything_else(settings):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", list(VERDICT))
    assets = [qc_standin, search_index_standin, *signal_assets(settings, "release")]
    for title, (verdict, reasons) in VERDICT.items():
        res = materialize(assets, partition_key=title, instance=instance, resources=build_resources(settings), raise_on_error=False)
        assert res.success == (verdict != "fail"), title
        assert res.asset_materializations_for_node("search_index") and res.asset_materializations_for_node("release"), title
        check = next(e for e in res.get_asset_check_evaluations() if e.check_name == "title_releasable")
        assert check.passed == (verdict != "fail") and check.severity.value == "ERROR"
        if verdict == "fail":
            assert check.description == f"{title}: FAILED: verdict fail: {reasons[0]}", check.description
            assert qc_gate_only(res)  # the CLI counts it as processed, with its verdict, not as a broken run
            failed = [e.step_key for e in res.all_events if e.is_step_failure]
            assert failed == ["release"]
            meta = res.asset_materializations_for_node("release")[0].metadata
            assert meta["releasable"].value is False and "loudness" in meta["reasons"].value
