"""Dagster's PostgreSQL instance storage with one pooled engine per process.

dagster-postgres opens a new connection for every statement (SQLAlchemy `NullPool`, so that idle
connections never pile up per `DagsterInstance`), and dagster-celery builds a new instance for every
step it runs. Under load a Celery worker then spent a third of its wall time in `connect()` (a step
stores ~30 events, each several statements: `benchmarks/results/load.json`), and over a network
with TLS each connect costs more still.

Here the run and event-log storages of every instance in a process share one engine per database
URL: it keeps `POOL_SIZE` connections open and opens more on demand without limit (`max_overflow=-1`,
closed again when returned, which is what `NullPool` does for all of them), so a busy thread never
waits for the pool. Connections are checked before use (`pool_pre_ping`): one dropped by the server
(a restart, a failover, `pg_terminate_backend`) is replaced, not handed out. The engine is keyed by
process id too, so a forked child never uses its parent's sockets. Instances authenticating with
a token provider (IAM / workload identity) keep Dagster's own engines.

A step waiting for a pool slot (`gpu`, `decode`) asks again every `CLAIM_RETRY_S` seconds. Dagster's
executor otherwise backs off from 1 s up to 15 s per waiting step, and only the step at the head
of the pool's queue can take a freed slot: with a few runs queued on one `gpu` slot, the slot sat
idle for seconds after every step (the gpu worker was idle 3/4 of the time under load). The storage
API's `sleep_interval` is the hook Dagster provides for this.

Selected in `deploy/dagster.yaml`:

    storage:
      custom:
        module: prism_assets.core.pg_storage
        class: PrismPostgresStorage
        config: {postgres_db: {...}}     # the same block as `storage: postgres:`
"""

from __future__ import annotations

import os
import threading

import sqlalchemy
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 2
CLAIM_RETRY_S = float(os.environ.get("PRISM_POOL_CLAIM_RETRY_S", "1.0"))
POOL_RECYCLE_S = 1800  # below common server/proxy idle limits (RDS Proxy, pgbouncer, NAT idle timeouts)

_ENGINES: dict[tuple[int, str], sqlalchemy.engine.Engine] = {}
_LOCK = threading.Lock()


def shared_engine(postgres_url: str) -> sqlalchemy.engine.Engine:
    """The process's pooled AUTOCOMMIT engine for a database URL."""
    key = (os.getpid(), postgres_url)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = sqlalchemy.create_engine(
                postgres_url, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE, max_overflow=-1,
                pool_pre_ping=True, pool_recycle=POOL_RECYCLE_S)
        return engine


class _SharedEngine:
    """Swaps the storage's NullPool engine for the process's shared one (after Dagster's own init has
    created or checked the tables), and reads the same config as `storage: postgres:`."""

    def __init__(self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data, token_provider=token_provider)
        if token_provider is None:
            self._engine = shared_engine(self.postgres_url)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(pg_url_from_config(config_value), config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data, token_provider=get_token_provider_from_config(config_value))


class PooledPostgresRunStorage(_SharedEngine, PostgresRunStorage):
    pass


class PooledPostgresEventLogStorage(_SharedEngine, PostgresEventLogStorage):
    def claim_concurrency_slot(self, concurrency_key, run_id, step_key, priority=None):
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if not status.is_claimed and status.sleep_interval is None:
            status = status.with_sleep_interval(CLAIM_RETRY_S)
        return status


class PrismPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres:` with pooled run and event-log storages (the schedule storage, touched
    once per tick, stays Dagster's). Every process that builds an instance from an `InstanceRef`
    (run workers, Celery workers) gets the pooled classes too: the ref names them."""

    def __init__(self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None):
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledPostgresRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = PooledPostgresEventLogStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._schedule_storage = PostgresScheduleStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(pg_url_from_config(config_value), config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data, token_provider=get_token_provider_from_config(config_value))

    def _data(self, cls) -> ConfigurableClassData | None:
        return ConfigurableClassData(__name__, cls.__name__, self.inst_data.config_yaml) if self.inst_data else None

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return self._data(PooledPostgresEventLogStorage)

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return self._data(PooledPostgresRunStorage)
