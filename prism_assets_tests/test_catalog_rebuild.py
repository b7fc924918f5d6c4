"""`prism catalog rebuild` (issue 28, Recovery): two short titles processed for real (the per-title job in process, the
day's delivery manifests), the catalog snapshotted, the catalog DROPPED (the SQLite file deleted; a scratch MariaDB
database dropped and created empty again), rebuilt from the artifacts by the CLI, and compared row by row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import select

from prism_assets.catalog import DeliveryRecord, repo
from prism_assets.catalog.models import Delivery, QCResult, SignalOutput, SignalRun, Title
from prism_assets.catalog.rebuild import REBUILT_RUN_ID
from prism_assets.cli.common import materialize_title, qc_gate_only
from prism_assets.definitions import build_definitions, build_resources
from prism_assets.settings import PrismSettings

from .conftest import ffmpeg, scratch_mariadb
from .support import signal_assets

PRISM = str(Path(sys.executable).parent / "prism")
DAY1, DAY2 = "2026-11-02", "2026-11-03"
PICTURE_AND_TONE = ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d={d}", "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*{f}*t):s=48000:d={d}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]

# What the artifacts cannot give back, so the comparison leaves it out (each column named, nothing else excluded):
NOT_REBUILT = {
    # autoincrement ids are internal; when a row was written is not in any artifact (the rebuild's time stands in;
    # a delivery's discovered_at becomes midnight of its delivery date)
    "titles": {"created_at", "updated_at"},
    "deliveries": {"id", "discovered_at"},
    # the Dagster run that wrote a QC verdict is not recorded in qc.json (REBUILT_RUN_ID stands in)
    "qc_results": {"id", "dagster_run_id", "created_at", "updated_at"},
    # run ids: only search_index.json records its run (index_version), checked below; the others are REBUILT_RUN_ID
    "signal_outputs": {"id", "dagster_run_id", "created_at"},
    # a step's provenance (signal_runs.model) is what the step handed the tracker, which is not stored as such: the
    # rebuilt row holds the main artifact's `producer` block instead (the same facts, laid out as the artifact has them)
    "signal_runs": {"id", "dagster_run_id", "started_at", "finished_at", "model"},
}
KEYS = {"titles": ("title_id",), "deliveries": ("delivery_key",), "qc_results": ("title_id",),
        "signal_outputs": ("partition_key", "signal"), "signal_runs": ("partition_key", "signal")}
MODELS = {"titles": Title, "deliveries": Delivery, "qc_results": QCResult, "signal_outputs": SignalOutput, "signal_runs": SignalRun}


def snapshot(url: str) -> dict[str, dict[tuple, dict]]:
    """Every row of the five tables, keyed by its natural key (a fresh engine: nothing cached in this process)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name, model in MODELS.items():
                rows = [dict(r._mapping) for r in conn.execute(select(model.__table__))]
                if name == "signal_runs":  # history: only the latest run of a step per partition is in the artifacts (below)
                    rows = list({(r["partition_key"], r["signal"]): r for r in sorted(rows, key=lambda r: r["id"])}.values())
                out[name] = {tuple(r[k] for k in KEYS[name]): r for r in rows}
            return out
    finally:
        engine.dispose()


def prism(*args, check=True):
    proc = subprocess.run([PRISM, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"prism {' '.join(args)} -> {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def process_two_titles(settings: PrismSettings, tmp_path: Path) -> None:
    """`feat`: delivered on DAY1, re-delivered (other content) on DAY2, both days' manifests materialized, its DAY2
    delivery processed; `ep1`: a series episode with a sidecar, registered and processed as `prism process` does,
    from a folder outside the delivery root (so its ETag comes back from the file, not from a manifest)."""
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    resources = build_resources(settings)
    root = Path(settings.delivery_root)
    for day, seconds in ((DAY1, 2), (DAY2, 3)):
        (root / day / "feat").mkdir(parents=True)
        ffmpeg(*[a.format(d=seconds, f=1000) for a in PICTURE_AND_TONE], str(root / day / "feat" / "feat.mp4"))
    for day in (DAY1, DAY2):
        assert materialize(signal_assets(settings, "delivery_manifest"), partition_key=day, instance=instance, resources=resources).success
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ep1 = inbox / "ep1.mp4"
    ffmpeg(*[a.format(d=3, f=440) for a in PICTURE_AND_TONE], str(ep1))
    (inbox / "ep1.json").write_text(json.dumps({"title": "Épisode 1 — Pilot", "provider": "acme", "expected_languages": ["en", "fr"],
                                                "series_id": "show_a", "season": 1, "episode": 1}))
    st = ep1.stat()
    repo.connect(settings.catalog_url).record_deliveries([DeliveryRecord("ep1", date.fromisoformat(DAY2), str(ep1), f"{st.st_mtime_ns}-{st.st_size}", st.st_size)])
    instance.add_dynamic_partitions("titles", ["ep1"])
    for tid, uri in (("feat", str(root / DAY2 / "feat" / "feat.mp4")), ("ep1", str(ep1))):
        res = materialize_title(defs, instance, tid, uri, DAY2)
        assert res.success or qc_gate_only(res), tid


def drop_catalog(url: str) -> None:
    """The catalog database is lost: the SQLite file deleted, or the MariaDB database dropped and created empty again."""
    cat = repo._connections.pop(url, None)
    if cat is not None:
        cat.dispose()
    repo._migrated.discard(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    engine = create_engine(make_url(url).set(database=""))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {db}")
        conn.exec_driver_sql(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    engine.dispose()


def comparable(table: str, row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in NOT_REBUILT[table]}


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_catalog_rebuilt_from_artifacts_loses_nothing(data_dir, tmp_path, monkeypatch, backend):
    with scratch_mariadb("prism_rebuild") if backend == "mariadb" else _nothing() as url:
        if url:
            monkeypatch.setenv("PRISM_CATALOG_URL", url)
        settings = PrismSettings.from_env()
        url = settings.catalog_url
        process_two_titles(settings, tmp_path)
        before = snapshot(url)
        assert set(before["titles"]) == {("feat",), ("ep1",)} and len(before["deliveries"]) == 3 and len(before["qc_results"]) == 2
        assert all(r["status"] == "success" for r in before["signal_runs"].values()), "a step did not succeed: nothing to compare"

        drop_catalog(url)
        dry = prism("catalog", "rebuild", "--dry-run")
        assert "dry run: 2 titles, 3 deliveries, 2 qc results" in dry.stdout, dry.stdout
        if backend == "sqlite":
            assert not Path(url.removeprefix("sqlite:///")).exists()  # a dry run opens no catalog
        done = prism("catalog", "rebuild")
        summary = [line for line in done.stdout.splitlines() if line.strip()]
        assert len(summary) == 1 and summary[0].startswith("2 titles, 3 deliveries, 2 qc results, "), done.stdout
        assert "skipped" not in done.stdout + done.stderr and "no ETag" not in done.stderr, done.stderr
        after = snapshot(url)

        for table in MODELS:
            assert set(after[table]) == set(before[table]), (table, set(before[table]) ^ set(after[table]))
            for key, row in before[table].items():
                assert comparable(table, after[table][key]) == comparable(table, row), (table, key)
        # the excluded run ids: kept where the artifact records one, the placeholder elsewhere
        for table in ("signal_outputs", "signal_runs"):
            for (partition, signal), row in after[table].items():
                want = before[table][(partition, signal)]["dagster_run_id"] if signal == "search_index" else REBUILT_RUN_ID
                assert row["dagster_run_id"] == want, (table, partition, signal)
        assert {r["dagster_run_id"] for r in after["qc_results"].values()} == {REBUILT_RUN_ID}
        # ... and what the rows say holds: first/latest delivery, the series, the sidecar's fields, the provenance
        feat, ep1 = after["titles"][("feat",)], after["titles"][("ep1",)]
        assert (str(feat["first_delivery_date"]), str(feat["latest_delivery_date"])) == (DAY1, DAY2)
        assert (ep1["name"], ep1["provider"], ep1["series_id"], ep1["season"], ep1["episode"]) == ("Épisode 1 — Pilot", "acme", "show_a", 1, 1)
        assert after["signal_runs"][("ep1", "source_video")]["model"] == before["signal_runs"][("ep1", "source_video")]["model"]
        assert all(r["etag"] for r in after["deliveries"].values())

        # a catalog that has titles is refused in one line; --force merges (the same rows again)
        again = prism("catalog", "rebuild", check=False)
        lines = [line for line in again.stderr.splitlines() if line.strip()]
        assert again.returncode == 1 and len(lines) == 1 and "already has 2 title(s)" in lines[0], again.stderr
        prism("catalog", "rebuild", "--force")
        assert {t: len(v) for t, v in snapshot(url).items()} == {t: len(v) for t, v in after.items()}
        if backend == "mariadb":
            drop_catalog(url)  # leave no connection behind before the scratch database goes


def test_unreadable_artifacts_are_skipped_with_a_reason_and_a_full_catalog_refused(tmp_path):
    """Without media (unit tier): a bundle whose CURRENT names a missing file and a qc.json without a verdict are
    skipped with their reasons, the rest is rebuilt; a catalog that has titles is refused and left as it was."""
    import pandas as pd

    from prism_assets.catalog import Catalog
    from prism_assets.catalog.rebuild import CatalogNotEmpty, apply_plan, plan_rebuild
    from prism_assets.core.artifacts import ArtifactStore, Bundle
    from prism_assets.core.domain import all_signals, load_domains
    from prism_assets.core.store import LocalStore
    from prism_assets.resources import PrismStorage
    from prism_assets.settings import DOMAINS

    storage = PrismStorage(delivery_root=str(tmp_path / "d"), artifact_root=str(tmp_path / "a"), scratch_dir=str(tmp_path / "s"))
    arts = ArtifactStore(LocalStore(tmp_path / "a"))
    arts.write("titles/t1/source_video", {"schema_version": "1.3", "title_id": "t1", "delivery_date": DAY2, "source_uri": str(tmp_path / "gone.mp4"),
                                          "title_name": "T", "file_size_bytes": 10, "duration_s": 2.0, "fps": 25.0, "width": 64, "height": 48,
                                          "producer": {"tool": "PyAV", "code_version": "probe-2"}})
    arts.write("titles/t1/qc", {"schema_version": "1.0", "title_id": "t1", "reasons": []})  # no verdict
    arts.write("titles/t1/proxy", Bundle({"schema_version": "1.0"}, {"proxy.mp4": b"x"}))
    (tmp_path / "a" / "titles" / "t1" / "proxy").joinpath(json.loads(arts.store.get_bytes("titles/t1/proxy/CURRENT"))["version"], "proxy.mp4").unlink()
    arts.write("titles/t1/shots", pd.DataFrame({"shot_index": [0]}))
    arts.write("daily/2026-11-02/delivery_manifest", pd.DataFrame([{"title_id": "t1", "delivery_date": DAY1, "uri": "/d/t1.mp4", "size_bytes": 5,
                                                                     "etag": "e1", "processed": False}]))
    plan = plan_rebuild(storage, all_signals(load_domains(DOMAINS)), workers=2)
    assert [what for what, _ in plan.skipped] == ["titles/t1/proxy", "titles/t1/qc"], plan.skipped
    assert "lacks proxy.mp4" in plan.skipped[0][1] and plan.without_etag == [str(tmp_path / "gone.mp4")]
    assert plan.summary().startswith("1 titles, 2 deliveries, 0 qc results, 4 signal outputs, 4 signal runs rebuilt; 2 skipped; 1 deliveries without ETag")
    t1 = plan.titles["t1"]
    assert (str(t1["first_delivery_date"]), str(t1["latest_delivery_date"]), t1["name"], t1["status"]) == (DAY1, DAY2, "T", "processed")
    shots = next(o for o in plan.signal_outputs if o["signal"] == "shots")
    assert shots["format"] == "parquet" and shots["schema_version"] is not None and shots["code_version"] is not None  # declared: no attrs
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        cat.record_deliveries([DeliveryRecord("other", date(2026, 1, 1), "/d/other.mp4")])
        with pytest.raises(CatalogNotEmpty, match="already has 1 title"):
            apply_plan(cat, plan)
        assert cat.count(Title) == 1 and cat.count(SignalOutput) == 0
        apply_plan(cat, plan, force=True)
        assert cat.count(Title) == 2 and cat.count(SignalOutput) == 4 and cat.title("t1").name == "T"
    finally:
        cat.dispose()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
