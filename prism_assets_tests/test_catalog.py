from datetime import date

import pytest
from sqlalchemy import inspect

from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.catalog.models import Delivery, SignalOutput, SignalRun, Title


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.integration)])
def catalog(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("mariadb_url")
    cat = Catalog(url)
    yield cat
    if request.param == "mariadb":
        with cat.engine.begin() as conn:  # every table the migrations made (signal domains add theirs)
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
            for t in inspect(cat.engine).get_table_names():
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        from prism_assets.catalog import repo

        repo._migrated.discard(url)
    cat.dispose()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from prism_assets.catalog.repo import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()  # raises if the migrations have several heads


def test_migrations_create_the_schema(catalog):
    assert catalog.current_revision() == _head()
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"titles", "deliveries", "signal_runs", "signal_outputs", "qc_results", "alembic_version"} <= tables
    catalog.migrate()  # idempotent
    assert catalog.current_revision() == _head()


def test_delivery_upserts_are_idempotent(catalog):
    recs = [
        DeliveryRecord("t1", date(2026, 11, 1), "/d/2026-11-01/t1/a.mp4", "e1", 10, {"title": "One", "provider": "p"}),
        DeliveryRecord("t2", date(2026, 11, 2), "/d/2026-11-02/t2/b.mp4", "e2", 20),
    ]
    catalog.record_deliveries(recs)
    catalog.record_deliveries(recs)
    assert catalog.count(Delivery) == 2 and catalog.count(Title) == 2
    # redelivery of t1 on a later date: a new delivery row; title keeps its first date and name
    catalog.record_deliveries([DeliveryRecord("t1", date(2026, 11, 5), "/d/2026-11-05/t1/a.mp4", "e3", 11)])
    t1 = catalog.title("t1")
    assert (t1.first_delivery_date, t1.latest_delivery_date, t1.name, t1.provider) == (date(2026, 11, 1), date(2026, 11, 5), "One", "p")
    assert catalog.latest_delivery("t1").uri.endswith("2026-11-05/t1/a.mp4")
    # changed etag of an existing delivery updates in place
    catalog.record_deliveries([DeliveryRecord("t2", date(2026, 11, 2), "/d/2026-11-02/t2/b.mp4", "e2b", 21)])
    assert catalog.count(Delivery) == 3
    assert catalog.delivery_etags(["/d/2026-11-02/t2/b.mp4", "/nope"]) == {"/d/2026-11-02/t2/b.mp4": "e2b"}


def test_titles_delivered_between_selects_exact_dates(catalog):
    catalog.record_deliveries(
        [DeliveryRecord(f"t{i}", date(2026, 11, 1 + i), f"/d/{i}.mp4") for i in range(5)]
    )
    assert catalog.titles_delivered_between(date(2026, 11, 2), date(2026, 11, 3)) == ["t1", "t2"]
    assert catalog.titles_delivered_between(date(2026, 12, 1), date(2026, 12, 3)) == []


def test_signal_runs_and_outputs(catalog):
    catalog.record_deliveries([DeliveryRecord("t1", date(2026, 11, 1), "/d/t1.mp4")])
    for _ in ("started", "started"):  # a retried start is an upsert, not a duplicate
        catalog.start_signal_run(partition_key="t1", signal="source_video", run_id="r1", code_version="probe-1", title_id="t1")
    catalog.finish_signal_run(partition_key="t1", signal="source_video", run_id="r1", status="success", model={"tool": "PyAV"})
    runs = catalog.signal_runs("t1", "source_video")
    assert len(runs) == 1 and runs[0].status == "success" and runs[0].model == {"tool": "PyAV"}
    for run in ("r1", "r2"):
        catalog.record_output(partition_key="t1", signal="source_video", run_id=run, uri=f"/a/{run}.json", fmt="json", size_bytes=5, schema_version="1.0", code_version="probe-1")
    assert catalog.count(SignalOutput) == 1 and catalog.outputs("t1")["source_video"].uri == "/a/r2.json"
    assert catalog.count(SignalRun) == 1


@pytest.fixture
def latin1_mariadb():
    """A scratch database on the real MariaDB whose default character set is latin1 (as on an old server)."""
    from .conftest import scratch_mariadb

    with scratch_mariadb("prism_latin1", charset="latin1 COLLATE latin1_swedish_ci") as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("upgrade_from", [None, "0002_qc"])
def test_mariadb_tables_are_utf8mb4_whatever_the_server_default(latin1_mariadb, upgrade_from):
    """On a latin1 database, fresh (None) or created by the earlier migrations then upgraded: names in
    any script (CJK, emoji) round-trip, every table is utf8mb4 with exact (binary) ids, old rows survive."""
    cat = Catalog(latin1_mariadb, migrate=upgrade_from is None)
    if upgrade_from:
        cat.migrate(upgrade_from)
        cat.record_deliveries([DeliveryRecord("old_title", date(2026, 11, 1), "/d/old.mp4")])
        cat.migrate()
    name = "기생충 パラサイト 寄生虫 🎬"
    cat.record_deliveries([DeliveryRecord("cjk", date(2026, 11, 2), "/d/기생충.mp4"), DeliveryRecord("CJK", date(2026, 11, 2), "/d/b.mp4")])
    cat.update_title("cjk", name=name)
    assert cat.title("cjk").name == name and cat.latest_delivery("cjk").uri == "/d/기생충.mp4"
    assert cat.title("CJK") is not None and cat.title("CJK").name is None  # ids are exact, as Dagster's partition keys
    if upgrade_from:
        assert cat.title("old_title") is not None
    with cat.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                                    "AND TABLE_NAME <> 'alembic_version'").all()
    assert rows and all(coll == "utf8mb4_bin" for _, coll in rows), rows
    cat.dispose()
