"""The delivery sensor, evaluated tick by tick against a local delivery root and an S3 one (moto).

Deliveries are objects `<YYYY-MM-DD>/<title_id>/<name>.mp4` under the delivery root; the sensor
only lists them, so their content is a few fake bytes.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dagster import AddDynamicPartitionsRequest, DagsterInstance, SensorResult, build_sensor_context

from prism_assets.catalog import Catalog
from prism_assets.catalog.models import Delivery, Title
from prism_assets.definitions import build_definitions
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI, TITLES_PARTITIONS_NAME
from prism_assets.settings import PrismSettings

REPO = Path(__file__).resolve().parents[1]
BENCH_FILE = REPO / "benchmarks" / "results" / "sensor_tick_10k.json"


class Harness:
    """One delivery root (local folder or S3 prefix), the definitions built on it and an instance."""

    def __init__(self, kind: str, data_dir: Path, client=None, bucket: str | None = None):
        self.kind = kind
        self.data_dir = data_dir
        self.client = client
        self.bucket = bucket
        self.instance = DagsterInstance.ephemeral()
        self.submitted: set[str] = set()  # run keys the "daemon" submitted
        self.settings: PrismSettings | None = None
        self.defs = None
        self.build()

    def build(self) -> None:
        """(Re)build settings and definitions from the environment (after env changes)."""
        self.settings = PrismSettings.from_env()
        self.defs = build_definitions(self.settings)
        with warnings.catch_warnings():  # "get_sensor_def will not resolve resources" (1.11+)
            warnings.simplefilter("ignore", UserWarning)
            self.sensor = self.defs.get_sensor_def("delivery_sensor")
        # build_sensor_context(definitions=...) does not bind resources when the sensor is called
        # directly; pass the top-level ones it needs, as the daemon does (dagster/_grpc/impl.py).
        top = self.defs.get_repository_def().get_top_level_resources()
        self.resources = {k: v for k, v in top.items() if k in self.sensor.required_resource_keys}
        assert set(self.resources) == {"storage", "catalog"}

    # -- deliveries ------------------------------------------------------------------------------
    def uri(self, key: str) -> str:
        if self.kind == "s3":
            return f"s3://{self.bucket}/deliveries/{key}"
        return str(Path(self.settings.delivery_root).resolve() / key)

    def put(self, key: str, data: bytes = b"fake video bytes") -> None:
        if self.kind == "s3":
            self.client.put_object(Bucket=self.bucket, Key=f"deliveries/{key}", Body=data)
        else:
            path = Path(self.settings.delivery_root) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def put_many(self, keys: list[str], data: bytes = b"fake") -> None:
        if self.kind == "s3":
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(lambda k: self.put(k, data), keys))
        else:
            for k in keys:
                self.put(k, data)

    # -- ticks -----------------------------------------------------------------------------------
    def tick(self, cursor: str | None = None, apply: bool = True) -> SensorResult:
        ctx = build_sensor_context(
            instance=self.instance, definitions=self.defs, sensor_name="delivery_sensor", cursor=cursor, resources=self.resources
        )
        with ctx:
            result = self.sensor(ctx)
        assert isinstance(result, SensorResult)
        if apply:
            self.apply(result)
        return result

    def apply(self, result: SensorResult, start_runs: bool = True) -> list:
        """What the daemon does with a tick: adds the partitions, submits the run requests whose run
        key it has not seen (returned), and, as the runs start, their source_video records the
        delivery (from its run tags) in the catalog."""
        for req in result.dynamic_partitions_requests or []:
            assert isinstance(req, AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        fresh = [r for r in result.run_requests or [] if r.run_key not in self.submitted]
        self.submitted.update(r.run_key for r in fresh)
        if start_runs and fresh:
            from datetime import date as _date

            from prism_assets.catalog import DeliveryRecord
            from prism_assets.partitions import TAG_DELIVERY_ETAG, TAG_DELIVERY_SIZE

            self.catalog().record_deliveries([DeliveryRecord(r.partition_key, _date.fromisoformat(r.tags[TAG_DELIVERY_DATE]), r.tags[TAG_DELIVERY_URI],
                                                             r.tags[TAG_DELIVERY_ETAG], int(r.tags[TAG_DELIVERY_SIZE])) for r in fresh])
        return fresh

    def catalog(self) -> Catalog:
        return Catalog(self.settings.catalog_url)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def h(request, data_dir, monkeypatch):
    monkeypatch.setenv("PRISM_SENSOR_FIRST_LISTING_DAYS", "100000")  # the fixtures' dates are years old
    if request.param == "local":
        harness = Harness("local", data_dir)
    else:
        _, bucket, client = request.getfixturevalue("s3_env")  # after data_dir: it clears the S3 env
        monkeypatch.setenv("PRISM_DELIVERY_ROOT", f"s3://{bucket}/deliveries")
        monkeypatch.setenv("PRISM_ARTIFACT_ROOT", f"s3://{bucket}/artifacts")
        harness = Harness("s3", data_dir, client=client, bucket=bucket)
        assert harness.settings.delivery_root == f"s3://{bucket}/deliveries"
    yield harness
    harness.instance.dispose()


def new_titles(result: SensorResult) -> list[str]:
    out = []
    for req in result.dynamic_partitions_requests or []:
        assert req.partitions_def_name == TITLES_PARTITIONS_NAME
        out.extend(req.partition_keys)
    return out


def run_titles(result: SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def is_skip(result: SensorResult, h=None) -> bool:
    """Nothing new: a skip, or (a rescan of the lookback window) only run keys the daemon already submitted."""
    if result.skip_reason is not None and not result.run_requests and not result.dynamic_partitions_requests:
        return True
    return h is not None and not result.dynamic_partitions_requests and not h.apply(result)


def record_benchmark(kind: str, seconds: float) -> None:
    """Write the tick time to the committed results file only when asked (PRISM_RECORD_BENCH=1), so
    an ordinary test run leaves the working tree as it was."""
    if os.environ.get("PRISM_RECORD_BENCH") != "1":
        return
    BENCH_FILE.parent.mkdir(parents=True, exist_ok=True)
    data = {}
    if BENCH_FILE.exists():
        try:
            data = json.loads(BENCH_FILE.read_text())
        except json.JSONDecodeError:
            data = {}
    data[f"{kind}_s"] = round(seconds, 3)
    tmp = BENCH_FILE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(BENCH_FILE)


# -- cases -----------------------------------------------------------------------------------------
def test_no_deliveries_skips(h):
    result = h.tick()
    assert is_skip(result)
    assert "no new deliveries" in result.skip_reason.skip_message
    assert result.cursor  # a cursor is kept even on skips
    assert h.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME) == []


def test_one_delivery_one_run(h):
    key = "2024-05-01/TITLE-001/feature.mp4"
    h.put(key)
    result = h.tick(apply=False)
    assert result.skip_reason is None
    (req,) = result.run_requests
    assert req.partition_key == "TITLE-001"
    assert req.job_name == "process_title"
    assert req.tags[TAG_DELIVERY_DATE] == "2024-05-01"
    assert req.tags[TAG_DELIVERY_URI] == h.uri(key)
    assert req.run_key and "TITLE-001" in req.run_key
    (add,) = result.dynamic_partitions_requests
    assert isinstance(add, AddDynamicPartitionsRequest)
    assert add.partitions_def_name == TITLES_PARTITIONS_NAME and list(add.partition_keys) == ["TITLE-001"]
    h.apply(result)
    assert h.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME) == ["TITLE-001"]
    # the next tick requests nothing: the catalog has the delivery with this ETag
    assert is_skip(h.tick(result.cursor))


def test_ten_thousand_deliveries_in_one_tick(h):
    dates = ("2024-06-01", "2024-06-02")
    keys = [f"{dates[i % 2]}/T{i:05d}/video.mp4" for i in range(10_000)]
    t_up = time.perf_counter()
    h.put_many(keys)
    print(f"\nuploaded 10k deliveries ({h.kind}) in {time.perf_counter() - t_up:.2f} s")

    t0 = time.perf_counter()
    result = h.tick(apply=False)
    elapsed = time.perf_counter() - t0
    print(f"10k-delivery sensor tick ({h.kind}): {elapsed:.2f} s")
    record_benchmark(h.kind, elapsed)

    assert len(result.run_requests) == 10_000
    assert sorted(run_titles(result)) == sorted(f"T{i:05d}" for i in range(10_000))
    assert len({r.run_key for r in result.run_requests}) == 10_000
    titles = new_titles(result)
    assert len(titles) == 10_000 and len(set(titles)) == 10_000
    assert {r.tags[TAG_DELIVERY_DATE] for r in result.run_requests} == set(dates)
    assert elapsed < 60, f"a 10k-delivery tick took {elapsed:.1f}s"

    h.apply(result)
    assert len(h.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME)) == 10_000
    assert h.catalog().count(Delivery) == 10_000

    again = h.tick(result.cursor)
    assert is_skip(again), f"{len(again.run_requests)} run(s) requested again"
    assert h.catalog().count(Delivery) == 10_000


def test_changed_delivery_runs_again(h):
    key = "2024-05-01/T1/a.mp4"
    h.put(key, b"version one")
    h.put("2024-05-01/T2/b.mp4", b"other")
    first = h.tick()
    assert sorted(run_titles(first)) == ["T1", "T2"]
    second = h.tick(first.cursor)
    assert is_skip(second)

    h.put(key, b"version two, longer")  # same key, new content: new ETag (S3) / mtime+size (local)
    third = h.tick(second.cursor)
    (req,) = third.run_requests
    assert req.partition_key == "T1" and req.tags[TAG_DELIVERY_URI] == h.uri(key)
    assert req.run_key not in {r.run_key for r in first.run_requests}
    assert new_titles(third) == []  # the title is already a partition
    assert is_skip(h.tick(third.cursor))
    assert h.catalog().count(Delivery) == 2


def test_pagination_yields_every_delivery_once(h, monkeypatch):
    monkeypatch.setenv("PRISM_SENSOR_MAX_KEYS_PER_TICK", "50")
    h.build()
    assert h.settings.sensor_max_keys_per_tick == 50
    keys = [f"2024-05-0{1 + i % 3}/P{i:03d}/v.mp4" for i in range(120)]
    h.put_many(keys)

    cursor, seen, per_tick = None, [], []
    for _ in range(6):
        result = h.tick(cursor)
        per_tick.append(len(result.run_requests or []))
        seen += run_titles(result)
        cursor = result.cursor
    assert per_tick[:3] == [50, 50, 20]
    assert per_tick[3:] == [0, 0, 0]
    assert len(seen) == 120 and sorted(seen) == sorted(f"P{i:03d}" for i in range(120))
    assert sorted(h.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME)) == sorted(set(seen))


def test_late_arrival_in_scanned_folder(h):
    h.put_many(["2024-05-01/A/v.mp4", "2024-05-03/B/v.mp4"])
    first = h.tick()
    assert sorted(run_titles(first)) == ["A", "B"]
    second = h.tick(first.cursor)
    assert is_skip(second)  # listing exhausted, nothing new

    # a title arrives late into a date folder already scanned (within the 3-day lookback)
    h.put("2024-05-01/LATE/v.mp4")
    third = h.tick(second.cursor)
    assert run_titles(third) == ["LATE"]
    assert new_titles(third) == ["LATE"]
    assert third.run_requests[0].tags[TAG_DELIVERY_DATE] == "2024-05-01"
    # and a new, later date folder too
    h.put("2024-05-04/NEXT/v.mp4")
    fourth = h.tick(third.cursor)
    assert run_titles(fourth) == ["NEXT"]
    assert is_skip(h.tick(fourth.cursor))


def test_objects_outside_the_layout_are_ignored(h):
    noise = [
        "2024-13-45/BADDATE/v.mp4",  # not a real date
        "20240501/NODASH/v.mp4",  # not YYYY-MM-DD
        "2024-5-1/SHORT/v.mp4",
        "incoming/T9/v.mp4",
        "2024-05-01/-dash-first/v.mp4",  # invalid title ids
        "2024-05-01/has space/v.mp4",
        "2024-05-01/T3/notes.txt",  # not a video
        "2024-05-01/T4/v.mp4.part",
        "2024-05-01/T5/noext",
        "2024-05-01/loose.mp4",  # not in a title folder
        "2024-05-01/T6/sub/v.mp4",  # too deep
        "README.md",
    ]
    h.put_many(noise + ["2024-05-01/GOOD/v.mp4"])
    result = h.tick()
    assert run_titles(result) == ["GOOD"]
    assert new_titles(result) == ["GOOD"]
    assert h.catalog().count(Delivery) == 1
    assert is_skip(h.tick(result.cursor))


def test_sidecars_create_no_runs(h):
    side = json.dumps({"title": "A Film", "provider": "acme", "expected_languages": ["en"]}).encode()
    h.put("2024-05-01/S1/film.mp4")
    h.put("2024-05-01/S1/film.json", side)
    h.put("2024-05-01/S1/sidecar.json", side)
    h.put("2024-05-01/S2/metadata.json", side)  # a sidecar without its video (yet)
    h.put("2024-05-01/S3/title.json", side)
    result = h.tick()
    assert run_titles(result) == ["S1"]
    assert new_titles(result) == ["S1"]
    assert h.catalog().count(Delivery) == 1
    assert is_skip(h.tick(result.cursor))


def test_catalog_rows_equal_deliveries(h):
    keys = [f"2024-05-0{1 + i % 2}/C{i:02d}/v.mp4" for i in range(30)]
    h.put_many(keys + ["2024-05-01/C00/sidecar.json", "2024-05-01/junk.txt"])
    cat = h.catalog()
    assert cat.count(Delivery) == 0
    result = h.tick()
    assert len(result.run_requests) == 30
    assert cat.count(Delivery) == 30
    assert cat.count(Title) == 30
    assert cat.delivery_etags(h.uri(k) for k in keys).keys() == {h.uri(k) for k in keys}
    d = cat.latest_delivery("C01")
    assert d.uri == h.uri("2024-05-02/C01/v.mp4") and d.delivery_date.isoformat() == "2024-05-02"
    # re-ticks and a changed delivery update rows in place, never add twins
    again = h.tick(result.cursor)
    assert is_skip(again)
    h.put(keys[0], b"changed content")
    third = h.tick(again.cursor)
    assert run_titles(third) == ["C00"]
    assert cat.count(Delivery) == 30


def test_a_lost_tick_neither_loses_nor_duplicates_a_delivery(h):
    """The tick writes nothing: if its result is lost (daemon killed before the runs were submitted and
    the cursor stored), the next tick asks again with the same run keys, and the daemon launches each
    delivery once."""
    h.put_many(["2024-05-01/L1/v.mp4", "2024-05-01/L2/v.mp4"])
    lost = h.tick(apply=False)
    assert sorted(run_titles(lost)) == ["L1", "L2"] and h.catalog().count(Delivery) == 0  # nothing recorded by the tick
    again = h.tick(cursor=None)  # the cursor was not stored either
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
    assert len(h.submitted) == 2 and h.catalog().count(Delivery) == 2
    assert is_skip(h.tick(again.cursor), h)
    # a rescan of the lookback window while the runs are still queued (not started: not recorded) asks again,
    # and the run keys keep the daemon from launching twice
    h.submitted.clear()
    h.put("2024-05-01/L3/v.mp4")
    queued = h.tick(again.cursor, apply=False)
    assert h.apply(queued, start_runs=False) and not h.apply(h.tick(again.cursor, apply=False), start_runs=False)


def test_first_listing_launches_nothing_old(data_dir, monkeypatch):
    """Turning the sensor on over an existing delivery root launches only recent deliveries; older date
    folders are left to backfills by date."""
    from datetime import date, timedelta

    monkeypatch.setenv("PRISM_SENSOR_FIRST_LISTING_DAYS", "3")
    h = Harness("local", data_dir)
    today = date.today()
    h.put_many([f"{(today - timedelta(days=40)).isoformat()}/OLD/v.mp4", f"{(today - timedelta(days=2)).isoformat()}/RECENT/v.mp4",
                f"{today.isoformat()}/TODAY/v.mp4"])
    first = h.tick()
    assert sorted(run_titles(first)) == ["RECENT", "TODAY"] and sorted(new_titles(first)) == ["RECENT", "TODAY"]
    # later listings launch every new delivery, whatever its date folder (within the lookback rescans)
    h.put(f"{today.isoformat()}/LATER/v.mp4")
    assert run_titles(h.tick(first.cursor)) == ["LATER"]
    h.instance.dispose()


def test_queued_deliveries_are_not_requested_again_each_tick(h):
    """Runs that are queued but not started have not recorded their delivery yet: the cursor remembers
    what was requested, so later ticks do not hand the daemon the whole backlog again (only Dagster's
    run keys would stop it, at a cost per run per tick); once the catalog knows a delivery it leaves
    the cursor."""
    import json

    h.put_many([f"2024-05-01/Q{i}/v.mp4" for i in range(5)])
    first = h.tick(apply=False)
    assert len(first.run_requests) == 5
    h.apply(first, start_runs=False)  # queued: nothing recorded
    assert len(json.loads(first.cursor)["requested"]) == 5
    second = h.tick(first.cursor, apply=False)
    assert second.skip_reason is not None and not second.run_requests and len(json.loads(second.cursor)["requested"]) == 5
    h.put("2024-05-01/Q9/v.mp4")  # a new one still goes
    third = h.tick(second.cursor, apply=False)
    assert run_titles(third) == ["Q9"]
    h.submitted.clear()
    h.apply(first)  # the queued runs start: their deliveries are recorded
    h.apply(third)
    fourth = h.tick(third.cursor, apply=False)
    assert fourth.skip_reason is not None and not fourth.run_requests and json.loads(fourth.cursor)["requested"] == []
