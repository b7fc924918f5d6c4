"""The signal framework: a new signal is one folder and one registration line.

A small signal is written into a temporary folder (nothing in the repository is edited), registered
with one line (`PRISM_EXTRA_DOMAINS`, the deployment's form of the line in prism_assets/domains.py),
and then appears in the process job, its checks (per title), the export, the QC verdict and the
docs check. Also: each title's check results are stored and read separately; the per-title SLA."""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, build_sensor_context, materialize

from prism_assets.catalog import DeliveryRecord, connect
from prism_assets.cli.common import qc_gate_only
from prism_assets.core.sla import SLA_CHECK, overdue
from prism_assets.core.title_graph import TitleGraph
from prism_assets.definitions import build_definitions, build_resources
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

from .conftest import REPO
from .support import signal_assets, video_without_audio

SCRATCH = '''
"""A scratch signal: shot statistics from `shots`, one JSON per title, one QC contribution."""

import pandas as pd
from dagster import AssetCheckSeverity

from prism_assets.core.checks import CheckRule
from prism_assets.core.domain import Domain
from prism_assets.core.signal import Output, Result, Signal

RULES = (
    CheckRule("counts_positive", "At least one shot, durations positive.", lambda d: (d["shots"] > 0 and d["mean_shot_s"] > 0, {"shots": d["shots"]})),
    CheckRule("few_cuts", "Fewer than {max_cuts} cuts (a demo rule that fails on busy titles).",
              lambda d: (d["cuts"] < d["max_cuts"], {"cuts": d["cuts"]}), severity=AssetCheckSeverity.WARN),
)


def compute(sc, shots: pd.DataFrame) -> Result:
    cuts = int((shots["transition_in"] == "cut").sum())
    doc = {"schema_version": "1.0", "shots": len(shots), "cuts": cuts, "mean_shot_s": float((shots["end_s"] - shots["start_s"]).mean()),
           "max_cuts": int(sc.config["max_cuts"])}
    sc.provenance = {"tool": "scratch"}
    return Result(doc, table=shots, table_columns=["shot_index", "start_s", "end_s"], metadata={"shots": len(shots)})


def qc_events(doc: dict) -> list[dict]:
    if doc["shots"] >= 3:
        return []
    return [{"kind": "few_shots", "severity": "warn", "detail": f"only {doc['shots']} shots", "start_s": 0.0, "end_s": 0.0}]


SHOT_STATS = Signal(
    name="shot_stats", domain="scratch", description="Shot statistics of the title (a scratch signal).", code_version="shot-stats-1",
    inputs=("shots",),
    outputs=(Output("shot_stats", "1.0", "titles/<title_id>/shot_stats.json", kinds=("json",), rules=RULES, export="shot_stats.json",
                    qc_events=qc_events),),
    compute=compute,
)

DOMAIN = Domain(name="scratch", description="A scratch domain written by a test.", signals=(SHOT_STATS,), defaults={"max_cuts": 2})
'''


@pytest.fixture
def scratch_domain(tmp_path, monkeypatch):
    pkg = tmp_path / "scratch_signals" / "shot_stats"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text(textwrap.dedent(SCRATCH))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PRISM_EXTRA_DOMAINS", "scratch_signals.shot_stats")  # the one registration line
    yield "scratch_signals.shot_stats"
    for name in [m for m in sys.modules if m.startswith("scratch_signals")]:
        del sys.modules[name]


def _run(defs, settings, instance, title_id, path):
    connect(settings.catalog_url).record_deliveries([DeliveryRecord(title_id, date(2026, 11, 20), str(path))])
    instance.add_dynamic_partitions("titles", [title_id])
    return defs.resolve_job_def("process_title").execute_in_process(
        partition_key=title_id, instance=instance, raise_on_error=False, tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})


@pytest.mark.integration  # the whole title job: OCR starts tesseract
def test_a_new_signal_is_one_folder_and_one_line(data_dir, media, scratch_domain, tmp_path):
    from prism_assets.core.domain import load_domains
    from prism_assets.docgen import render, stale
    from prism_assets.introspect import export_plan
    from prism_assets.settings import PrismSettings

    settings = PrismSettings.from_env()
    assert settings.domains[-1] == scratch_domain
    defs = build_definitions(settings)
    job = defs.resolve_job_def("process_title")
    assert AssetKey("shot_stats") in job.asset_layer.executable_asset_keys  # in the process job
    graph = defs.resolve_asset_graph()
    node = graph.get(AssetKey("shot_stats"))
    assert node.group_name == "scratch" and node.partitions_def.name == "titles" and node.freshness_policy is not None
    specs = {s.name: s for s in graph.assets_def_for_key(AssetKey("shot_stats")).check_specs}
    assert set(specs) == {"counts_positive", "few_cuts", SLA_CHECK} and all(s.partitions_def is not None for s in specs.values())
    assert AssetKey("shot_stats") in graph.get(AssetKey("qc")).parent_keys  # its QC events feed the title's verdict
    assert ("shot_stats", "shot_stats.json") in [(r.key, r.export) for r in export_plan(defs)]  # in the export
    blocks = render(defs, load_domains(settings.domains))
    assert "`shot_stats`" in blocks["assets"] and "`few_cuts`" in blocks["checks"] and "max_cuts" in blocks["domains"]
    assert any("architecture.md" in s for s in stale(REPO / "docs", defs, load_domains(settings.domains)))  # the docs check sees it

    # through a real run: the checks ran for this title, QC has the contributed event, the export writes the file
    instance = DagsterInstance.ephemeral()  # a persistent instance's compute-log capture starts processes
    res = _run(defs, settings, instance, "qcc", media / "qc_composite.mp4")
    assert res.success or qc_gate_only(res), [e.message for e in res.all_events if e.is_failure]  # the composite fails QC on purpose
    evals = {e.check_name: e for e in res.get_asset_check_evaluations() if e.asset_key == AssetKey("shot_stats")}
    assert set(evals) == {"counts_positive", "few_cuts", SLA_CHECK} and all(e.partition == "qcc" for e in evals.values())
    assert evals["counts_positive"].passed and not evals["few_cuts"].passed  # the composite has more than 2 cuts
    arts = build_resources(settings)["storage"].artifacts()
    from prism_assets.core.artifacts import ArtifactStore

    qc = arts.read(ArtifactStore.base_key("qc", "qcc"))
    assert qc["producer"]["inputs"]["shot_stats"] == "contributed"
    from typer.testing import CliRunner

    from prism_assets.cli import app

    out = tmp_path / "export"
    r = CliRunner().invoke(app, ["export", "qcc", "--to", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "shot_stats.json").read_text())
    assert doc["shots"] >= 3 and doc["max_cuts"] == 2


def test_a_contributed_qc_event_joins_the_verdict():
    from prism_assets.qc.events import validate_events, verdict_of

    evs = validate_events([{"kind": "few_shots", "severity": "warn", "detail": "only 1 shot", "start_s": 0, "end_s": 1}], "shot_stats")
    assert evs[0]["metrics"]["source"] == "shot_stats" and verdict_of(evs) == "warn"
    with pytest.raises(ValueError, match="severity"):
        validate_events([{"kind": "x", "severity": "bad", "detail": "", "start_s": 0, "end_s": 1}], "s")
    with pytest.raises(ValueError, match="ends before it starts"):
        validate_events([{"kind": "x", "severity": "warn", "detail": "", "start_s": 2, "end_s": 1}], "s")


def test_each_title_keeps_its_own_check_results(settings, media, tmp_path):
    """Two titles, one failing a check: each title's result is stored for its partition, and the
    latest evaluation of one title does not hide the other's."""
    instance = DagsterInstance.ephemeral()
    cat = connect(settings.catalog_url)
    mute = tmp_path / "mute.mp4"
    video_without_audio(media / "big_buck_bunny_0_30.webm", mute)
    for tid, path in (("good", media / "qc_composite.mp4"), ("mute", mute)):
        cat.record_deliveries([DeliveryRecord(tid, date(2026, 11, 20), str(path))])
        instance.add_dynamic_partitions("titles", [tid])
        res = materialize(signal_assets(settings, "source_video"), partition_key=tid, instance=instance, resources=build_resources(settings),
                          tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})
        assert res.success
    history = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(AssetKey("source_video"), "has_audio"), limit=10)
    by_title = {r.partition: r.status.value for r in history}
    assert by_title == {"good": "SUCCEEDED", "mute": "FAILED"}, by_title


def test_per_title_sla_in_step_and_by_the_sensor(settings, media):
    """A title processed right away is on time; a delivery discovered long ago with its outputs missing
    is flagged, for that title and for each missing output, by title_sla_sensor (once per state)."""
    settings = settings.with_(title_sla_warn_hours=1, title_sla_fail_hours=3)
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    cat = connect(settings.catalog_url)
    cat.record_deliveries([DeliveryRecord("fast", date(2026, 11, 20), str(media / "qc_composite.mp4"))])
    instance.add_dynamic_partitions("titles", ["fast"])
    res = materialize(signal_assets(settings, "source_video"), partition_key="fast", instance=instance, resources=build_resources(settings),
                      tags={TAG_DELIVERY_URI: str(media / "qc_composite.mp4"), TAG_DELIVERY_DATE: "2026-11-20"})
    sla = next(e for e in res.get_asset_check_evaluations() if e.check_name == SLA_CHECK)
    assert sla.passed and sla.partition == "fast" and sla.metadata["state"].value == "on time"

    # a delivery discovered 2 h ago (warn) and one 5 h ago (fail), nothing processed
    cat.record_deliveries([DeliveryRecord("slow", date(2026, 11, 20), "/deliveries/slow.mp4"), DeliveryRecord("stuck", date(2026, 11, 20), "/d/stuck.mp4")])
    now = datetime.now(timezone.utc)
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE deliveries SET discovered_at = ? WHERE title_id = 'slow'", ((now - timedelta(hours=2)).replace(tzinfo=None),))
        conn.exec_driver_sql("UPDATE deliveries SET discovered_at = ? WHERE title_id = 'stuck'", ((now - timedelta(hours=5)).replace(tzinfo=None),))
    from prism_assets.core.domain import all_signals, load_domains
    from prism_assets.core.policy import Policy

    graph = TitleGraph.from_signals(all_signals(load_domains(settings.domains)))
    late = {t["title_id"]: t for t in overdue(cat, graph, Policy(settings), now)}
    assert set(late) == {"slow", "stuck"} and late["slow"]["state"] == "warn" and late["stuck"]["state"] == "fail"
    assert set(late["stuck"]["missing"]) == set(graph.outputs)  # nothing produced: every per-title output is overdue
    sensor = defs.get_sensor_def("title_sla_sensor")
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="title_sla_sensor", resources=build_resources(settings)) as ctx:
        first = sensor(ctx)
    evs = first.asset_events
    assert {e.partition for e in evs} == {"slow", "stuck"} and all(e.check_name == SLA_CHECK and not e.passed for e in evs)
    assert {e.severity.value for e in evs if e.partition == "stuck"} == {"ERROR"} and {e.severity.value for e in evs if e.partition == "slow"} == {"WARN"}
    assert len(evs) == 2 * len(graph.outputs)
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="title_sla_sensor", resources=build_resources(settings),
                              cursor=first.cursor) as ctx:
        again = sensor(ctx)
    assert not again.asset_events  # reported once per state
    # an audio-only title skips the visual pass: its visual outputs (and QC) are not expected
    assert "frame_stats" not in graph.expected({"visual_pass"}) and "qc" not in graph.expected({"visual_pass"})
    assert "transcript" in graph.expected({"visual_pass"})


def test_metadata_floats_read_like_a_report():
    """Metadata floats are rounded once, for every asset and check: no 30.999999999999996 in the UI."""
    import math

    from prism_assets.core.checks import CheckRule as Rule
    from prism_assets.core.checks import evaluate, tidy, tidy_metadata

    assert tidy(30.999999999999996) == 31.0 and tidy(12.34567) == 12.346 and tidy(0.000123456) == 0.0001235 and tidy(-0.5) == -0.5
    assert tidy(5) == 5 and tidy("a") == "a" and tidy(None) is None and math.isnan(tidy(float("nan")))
    assert tidy_metadata({"d": 2.0000000001, "n": 3}) == {"d": 2.0, "n": 3}
    (res,) = evaluate("a", [Rule("r", "", lambda v: (True, {"duration_s": 30.999999999999996}))], None, "t1", "title")
    assert res.metadata["duration_s"].value == 31.0 and res.description == "t1: passed: duration s 31.0"


def test_json_metadata_reads_as_tables_and_lines():
    """No JSON blob in the UI: a mapping is a table, records a table with their keys as columns, a plain list one line,
    null stays null."""
    from dagster import MetadataValue

    from prism_assets.core.checks import tidy_metadata

    md = tidy_metadata({"event_counts": MetadataValue.json({"black": 2, "loudness": 1, "ratio": 0.30000000000000004, "next": None}),
                        "tracks": MetadataValue.json([{"track": 0, "lufs": -23.04999}, {"track": 1, "lufs": None}]),
                        "integrated_lufs": MetadataValue.json([-23.1000001, -22.9]), "end": MetadataValue.json(None),
                        "producer": MetadataValue.json({"tool": "x|y", "model": {"name": "m", "dims": [1, 2]}})})
    assert md["event_counts"].value == "| name | value |\n|---|---|\n| black | 2 |\n| loudness | 1 |\n| ratio | 0.3 |\n| next | null |"
    assert md["tracks"].value == "| track | lufs |\n|---|---|\n| 0 | -23.05 |\n| 1 | null |"
    assert md["integrated_lufs"].value == "-23.1, -22.9" and md["end"] is None
    assert md["producer"].value.endswith("| tool | x\\|y |\n| model | name: m; dims: 1, 2 |")
