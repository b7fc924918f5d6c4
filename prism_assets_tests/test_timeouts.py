"""A store or database that accepts connections and never answers fails the call in bounded time
(connect/read timeouts, bounded retries): nothing hangs."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def black_hole():
    """A TCP server on loopback that accepts every connection and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=5)
    for c in held:
        c.close()
    srv.close()


def test_s3_that_never_answers_fails_in_bounded_time(black_hole, monkeypatch):
    from dagster_aws.s3 import S3Resource

    from prism_assets.resources import PrismStorage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    storage = PrismStorage(delivery_root="s3://b/d", artifact_root="s3://b/a", scratch_dir="/tmp/prism-scratch",
                           s3=S3Resource(endpoint_url=f"http://127.0.0.1:{black_hole}", region_name="us-east-1"),
                           s3_read_timeout_s=1.0, s3_max_attempts=2)
    t0 = time.monotonic()
    with pytest.raises(Exception) as err:
        storage.artifacts().exists("titles/t1/source_video")
    assert time.monotonic() - t0 < 10, "the S3 call waited too long"
    assert "timeout" in type(err.value).__name__.lower() or "timed out" in str(err.value).lower(), repr(err.value)
    # the production defaults are bounded too: about attempts x read timeout
    default = PrismStorage(delivery_root="s3://b/d", artifact_root="s3://b/a", scratch_dir="/tmp/x")
    assert default.s3_connect_timeout_s <= 10 and default.s3_read_timeout_s * default.s3_max_attempts <= 120


def test_s3_client_is_built_once_per_process_and_settings(monkeypatch):
    """Building a boto3 client parses botocore's service models (~0.2 CPU-s): a client per store
    was most of a Celery worker's CPU under load, so one client is shared per settings."""
    from dagster_aws.s3 import S3Resource

    from prism_assets.resources import PrismStorage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")

    def storage(**kw):
        return PrismStorage(delivery_root="s3://b/d", artifact_root="s3://b/a", scratch_dir="/tmp/x",
                            s3=S3Resource(endpoint_url="http://127.0.0.1:9", region_name="us-east-1"), **kw)

    a = storage()
    first = a.s3_client()
    assert a.artifacts().store.client is a.deliveries().client is storage().s3_client() is first
    assert storage(s3_read_timeout_s=3.0).s3_client() is not first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "y")  # other credentials: another client
    assert storage().s3_client() is not first


def test_mariadb_that_never_answers_fails_in_bounded_time(black_hole):
    from prism_assets.catalog import Catalog
    from prism_assets.catalog.repo import DB_CONNECT_TIMEOUT_S, DB_READ_TIMEOUT_S

    t0 = time.monotonic()
    with pytest.raises(Exception) as err:
        Catalog(f"mysql+pymysql://root@127.0.0.1:{black_hole}/prism")
    # pymysql waits for the server's greeting with the read timeout
    assert time.monotonic() - t0 < DB_CONNECT_TIMEOUT_S + DB_READ_TIMEOUT_S + 5, "the catalog waited too long for the database"
    assert "timed out" in str(err.value).lower() or "lost connection" in str(err.value).lower(), str(err.value)[:300]
