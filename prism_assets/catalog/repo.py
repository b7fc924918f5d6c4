"""Catalog access: migrations and idempotent upserts on SQLite (default) or MariaDB/MySQL."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from alembic import command
from alembic.config import Config
from sqlalchemy import and_, create_engine, event, func, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..core.errors import CatalogError, first_line
from ..settings import redact_url
from .models import Delivery, QCResult, SignalOutput, SignalRun, Title

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def delivery_key(uri: str) -> str:
    return hashlib.sha1(uri.encode()).hexdigest()


@dataclass(frozen=True)
class DeliveryRecord:
    title_id: str
    delivery_date: date
    uri: str
    etag: str | None = None
    size_bytes: int | None = None
    sidecar: dict | None = None
    discovered_at: datetime | None = None  # naive UTC; default: now (kept on later upserts of the same URI)


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class Catalog:
    def __init__(self, url: str, migrate: bool = True):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _):  # WAL: readers never block the writer
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        else:
            # bounded waits: a database that does not answer fails the step with an error instead of hanging it
            self.engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_timeout=30, connect_args=_timeouts(url))
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.engine, "handle_error", self._name_the_database)
        if migrate:
            self.migrate()

    def _name_the_database(self, ctx) -> None:
        """A connection-level failure (unreachable, refused, credentials, timeout, lost) says it is the
        catalog's, with the URL (password hidden): a CatalogError chained to the driver's error.
        A pre-ping's failure is left to the pool, which reconnects."""
        if ctx.is_pre_ping or not isinstance(ctx.sqlalchemy_exception, (OperationalError, InterfaceError)):
            return
        orig = ctx.original_exception
        why = first_line(orig) or type(orig).__name__
        raise CatalogError(f"catalog database {redact_url(self.url)}: {why}") from orig

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        with _migrate_lock:
            if revision == "head" and self.url in _migrated:
                return
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
            if revision == "head":
                _migrated.add(self.url)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()

    # -- upserts ---------------------------------------------------------------------------
    def _upsert(self, session: Session, model, rows: Sequence[dict], keys: Sequence[str], update_cols: Sequence[str]) -> None:
        if not rows:
            return
        table = model.__table__
        if self.dialect == "sqlite":
            stmt = sqlite_insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols})
        elif self.dialect in ("mysql", "mariadb"):
            stmt = mysql_insert(table)
            stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in update_cols})
        elif self.dialect == "postgresql":
            stmt = pg_insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols})
        else:  # pragma: no cover
            raise NotImplementedError(self.dialect)
        chunk = 500
        for i in range(0, len(rows), chunk):
            session.execute(stmt, list(rows[i : i + chunk]))

    def record_deliveries(self, records: Iterable[DeliveryRecord]) -> int:
        """Idempotently records deliveries and their titles. Returns how many were given."""
        records = list(records)
        if not records:
            return 0
        now = utcnow()
        titles: dict[str, dict] = {}
        for r in records:
            side = r.sidecar or {}
            t = titles.get(r.title_id)
            if t is None:
                titles[r.title_id] = t = {
                    "title_id": r.title_id,
                    "name": side.get("title") or side.get("name"),
                    "provider": side.get("provider"),
                    "expected_languages": side.get("expected_languages"),
                    "first_delivery_date": r.delivery_date,
                    "latest_delivery_date": r.delivery_date,
                    "status": "delivered",
                    "created_at": now,
                    "updated_at": now,
                }
            t["first_delivery_date"] = min(t["first_delivery_date"], r.delivery_date)
            t["latest_delivery_date"] = max(t["latest_delivery_date"], r.delivery_date)
        with self.Session.begin() as s:
            existing = {
                row.title_id: row
                for chunk_ids in _chunks(list(titles), 500)
                for row in s.execute(select(Title.title_id, Title.first_delivery_date, Title.latest_delivery_date, Title.name, Title.provider,
                                            Title.expected_languages).where(Title.title_id.in_(chunk_ids)))
            }
            for tid, t in titles.items():
                old = existing.get(tid)
                if old is not None:
                    t["first_delivery_date"] = min(t["first_delivery_date"], old.first_delivery_date)
                    t["latest_delivery_date"] = max(t["latest_delivery_date"], old.latest_delivery_date)
                    t["name"] = t["name"] or old.name
                    t["provider"] = t["provider"] or old.provider
                    t["expected_languages"] = t["expected_languages"] or old.expected_languages
            self._upsert(
                s,
                Title,
                list(titles.values()),
                ["title_id"],
                ["name", "provider", "expected_languages", "first_delivery_date", "latest_delivery_date", "updated_at"],
            )
            rows = [
                {
                    "delivery_key": delivery_key(r.uri),
                    "title_id": r.title_id,
                    "delivery_date": r.delivery_date,
                    "uri": r.uri,
                    "etag": r.etag,
                    "size_bytes": r.size_bytes,
                    "sidecar": r.sidecar,
                    "discovered_at": r.discovered_at or now,
                }
                for r in records
            ]
            self._upsert(s, Delivery, rows, ["delivery_key"], ["title_id", "delivery_date", "etag", "size_bytes", "sidecar"])
        return len(records)

    # -- queries ---------------------------------------------------------------------------
    def title(self, title_id: str) -> Title | None:
        with self.Session() as s:
            return s.get(Title, title_id)

    def latest_delivery(self, title_id: str) -> Delivery | None:
        with self.Session() as s:
            return s.scalars(
                select(Delivery).where(Delivery.title_id == title_id).order_by(Delivery.delivery_date.desc(), Delivery.discovered_at.desc(), Delivery.id.desc()).limit(1)
            ).first()

    def deliveries_between(self, start: date, end: date) -> list[Delivery]:
        with self.Session() as s:
            return list(s.scalars(select(Delivery).where(Delivery.delivery_date >= start, Delivery.delivery_date <= end).order_by(Delivery.delivery_date, Delivery.title_id)))

    def titles_delivered_between(self, start: date, end: date) -> list[str]:
        """Titles with a delivery dated in [start, end], each once, ordered by date then id."""
        seen: dict[str, None] = {}
        for d in self.deliveries_between(start, end):
            seen.setdefault(d.title_id, None)
        return list(seen)

    def delivery_etags(self, uris: Iterable[str]) -> dict[str, str | None]:
        """uri -> recorded etag, for the given URIs that the catalog knows."""
        by_key = {delivery_key(u): u for u in uris}
        out: dict[str, str | None] = {}
        with self.Session() as s:
            for chunk in _chunks(list(by_key), 1000):
                for key, etag in s.execute(select(Delivery.delivery_key, Delivery.etag).where(Delivery.delivery_key.in_(chunk))):
                    out[by_key[key]] = etag
        return out

    def count(self, model) -> int:
        with self.Session() as s:
            return s.scalar(select(func.count()).select_from(model))

    # -- signals ---------------------------------------------------------------------------
    def start_signal_run(self, *, partition_key: str, signal: str, run_id: str, code_version: str | None, title_id: str | None) -> None:
        with self.Session.begin() as s:
            self._upsert(
                s,
                SignalRun,
                [dict(title_id=title_id, partition_key=partition_key, signal=signal, dagster_run_id=run_id, status="started", code_version=code_version,
                      model=None, error=None, started_at=utcnow(), finished_at=None)],
                ["dagster_run_id", "signal", "partition_key"],
                ["status", "code_version", "error", "started_at", "finished_at"],
            )

    def finish_signal_run(self, *, partition_key: str, signal: str, run_id: str, status: str, model: dict | None = None, error: str | None = None) -> None:
        with self.Session.begin() as s:
            s.execute(
                update(SignalRun)
                .where(SignalRun.dagster_run_id == run_id, SignalRun.signal == signal, SignalRun.partition_key == partition_key)
                .values(status=status, model=model, error=(error or None) and error[:4000], finished_at=utcnow())
            )

    def fail_unfinished_signal_runs(self, run_id: str, error: str) -> list[str]:
        """Signal runs of a Dagster run still `started` (the run died): marked failed with `error`.
        Returns the titles they belonged to."""
        with self.Session.begin() as s:
            rows = s.execute(select(SignalRun.id, SignalRun.title_id).where(SignalRun.dagster_run_id == run_id, SignalRun.status == "started")).all()
            if rows:
                s.execute(update(SignalRun).where(SignalRun.id.in_([r.id for r in rows]))
                          .values(status="failed", error=error[:4000], finished_at=utcnow()))
        return sorted({r.title_id for r in rows if r.title_id})

    def record_output(self, *, partition_key: str, signal: str, run_id: str, uri: str, fmt: str, size_bytes: int, schema_version: str | None, code_version: str | None) -> None:
        with self.Session.begin() as s:
            self._upsert(
                s,
                SignalOutput,
                [dict(partition_key=partition_key, signal=signal, dagster_run_id=run_id, uri=uri, format=fmt, schema_version=schema_version,
                      code_version=code_version, size_bytes=size_bytes, created_at=utcnow())],
                ["partition_key", "signal"],
                ["dagster_run_id", "uri", "format", "schema_version", "code_version", "size_bytes", "created_at"],
            )

    def signal_runs(self, partition_key: str, signal: str | None = None) -> list[SignalRun]:
        with self.Session() as s:
            q = select(SignalRun).where(SignalRun.partition_key == partition_key)
            if signal:
                q = q.where(SignalRun.signal == signal)
            return list(s.scalars(q.order_by(SignalRun.id)))

    def outputs(self, partition_key: str) -> dict[str, SignalOutput]:
        with self.Session() as s:
            return {o.signal: o for o in s.scalars(select(SignalOutput).where(SignalOutput.partition_key == partition_key))}

    # -- per-title SLA (core/sla.py) ---------------------------------------------------------
    def sla_delivery(self, title_id: str) -> Delivery | None:
        """The title's most recently discovered delivery (the one its outputs are due for)."""
        with self.Session() as s:
            return s.scalars(select(Delivery).where(Delivery.title_id == title_id)
                             .order_by(Delivery.discovered_at.desc(), Delivery.id.desc()).limit(1)).first()

    def first_success_since(self, partition_key: str, signal: str, since: datetime) -> datetime | None:
        """When the step `signal` first succeeded for the partition at or after `since` (naive UTC)."""
        with self.Session() as s:
            return s.scalar(select(func.min(SignalRun.finished_at)).where(
                SignalRun.partition_key == partition_key, SignalRun.signal == signal, SignalRun.status == "success",
                SignalRun.finished_at >= since))

    def sla_candidates(self, *, since: datetime, until: datetime, min_outputs: int, limit: int = 5000) -> list[dict]:
        """Titles whose latest delivery was discovered in [since, until] (naive UTC) with fewer than
        `min_outputs` outputs written since: [{title_id, discovered_at}], oldest first."""
        latest = (select(Delivery.title_id.label("title_id"), func.max(Delivery.discovered_at).label("discovered_at"))
                  .group_by(Delivery.title_id).subquery())
        produced = func.count(SignalOutput.id)
        q = (select(latest.c.title_id, latest.c.discovered_at)
             .select_from(latest)
             .outerjoin(SignalOutput, and_(SignalOutput.partition_key == latest.c.title_id, SignalOutput.created_at >= latest.c.discovered_at))
             .where(latest.c.discovered_at >= since, latest.c.discovered_at <= until)
             .group_by(latest.c.title_id, latest.c.discovered_at)
             .having(produced < min_outputs)
             .order_by(latest.c.discovered_at)
             .limit(limit))
        with self.Session() as s:
            return [{"title_id": r.title_id, "discovered_at": r.discovered_at, "delivery_key": r.discovered_at.isoformat()} for r in s.execute(q)]

    def outputs_since(self, partition_key: str, since: datetime) -> tuple[dict[str, str | None], set[str]]:
        """({output: code version} written at or after `since`, steps whose latest run since then was skipped)."""
        with self.Session() as s:
            produced = dict(s.execute(select(SignalOutput.signal, SignalOutput.code_version)
                                      .where(SignalOutput.partition_key == partition_key, SignalOutput.created_at >= since)).all())
            runs = s.execute(select(SignalRun.signal, SignalRun.status).where(SignalRun.partition_key == partition_key, SignalRun.started_at >= since)
                             .order_by(SignalRun.id)).all()
        last = {}
        for sig, status in runs:
            last[sig] = status
        return produced, {sig for sig, st in last.items() if st == "skipped"}

    def attempted_since(self, partition_key: str, since: datetime) -> bool:
        """Whether any step ran for the partition at or after `since` (naive UTC)."""
        with self.Session() as s:
            return s.scalar(select(func.count()).select_from(SignalRun)
                            .where(SignalRun.partition_key == partition_key, SignalRun.started_at >= since)) > 0

    # -- content QC ------------------------------------------------------------------------
    def record_qc(self, *, title_id: str, verdict: str, profile: str, reasons: list, event_counts: dict, run_id: str,
                  duration_s: float | None = None, delivery_date: date | None = None, artifact_uri: str | None = None,
                  code_version: str | None = None) -> None:
        """Upsert the title's latest QC verdict (one row per title)."""
        now = utcnow()
        row = dict(title_id=title_id, verdict=verdict, profile=profile, reasons=list(reasons), event_counts=dict(event_counts),
                   events_total=int(sum(event_counts.values())), duration_s=duration_s, delivery_date=delivery_date,
                   artifact_uri=artifact_uri, dagster_run_id=run_id, code_version=code_version, created_at=now, updated_at=now)
        with self.Session.begin() as s:
            self._upsert(s, QCResult, [row], ["title_id"],
                         ["verdict", "profile", "reasons", "event_counts", "events_total", "duration_s", "delivery_date",
                          "artifact_uri", "dagster_run_id", "code_version", "updated_at"])

    def qc_result(self, title_id: str) -> QCResult | None:
        with self.Session() as s:
            return s.scalars(select(QCResult).where(QCResult.title_id == title_id)).first()

    def qc_results(self, title_ids: Iterable[str]) -> dict[str, QCResult]:
        out: dict[str, QCResult] = {}
        with self.Session() as s:
            for chunk in _chunks(list(title_ids), 500):
                for r in s.scalars(select(QCResult).where(QCResult.title_id.in_(chunk))):
                    out[r.title_id] = r
        return out

    def season_titles(self, series_id: str, season: int) -> list[Title]:
        """The titles of a series' season (sidecar series_id/season), by episode then title id."""
        with self.Session() as s:
            q = select(Title).where(Title.series_id == series_id, Title.season == season).order_by(Title.episode, Title.title_id)
            return list(s.scalars(q))

    def episode_claims(self, series_id: str, season: int, episode: int | None, exclude: str | None = None) -> list[str]:
        """The title ids that claim the same series/season/episode (sidecar series_id/season/episode), but `exclude`:
        two titles claiming one episode are a delivery error the structure step reports."""
        if series_id is None or season is None or episode is None:
            return []
        with self.Session() as s:
            q = select(Title.title_id).where(Title.series_id == series_id, Title.season == season, Title.episode == episode)
            if exclude is not None:
                q = q.where(Title.title_id != exclude)
            return sorted(s.scalars(q.order_by(Title.title_id)))

    def update_title(self, title_id: str, **values) -> None:
        with self.Session.begin() as s:
            s.execute(update(Title).where(Title.title_id == title_id).values(updated_at=utcnow(), **values))


DB_CONNECT_TIMEOUT_S = 10
DB_READ_TIMEOUT_S = 30


def _timeouts(url: str) -> dict:
    """Connect and read timeouts of the DB-API driver of a URL (pymysql, psycopg2)."""
    if url.startswith(("mysql", "mariadb")):
        return {"connect_timeout": DB_CONNECT_TIMEOUT_S, "read_timeout": DB_READ_TIMEOUT_S, "write_timeout": DB_READ_TIMEOUT_S,
                "charset": "utf8mb4"}  # explicit: any script in names and sidecars, whatever the server's default
    if url.startswith("postgresql"):
        return {"connect_timeout": DB_CONNECT_TIMEOUT_S, "options": f"-c statement_timeout={DB_READ_TIMEOUT_S * 1000}"}
    return {}


_connections: dict[str, Catalog] = {}
_connections_lock = threading.Lock()


def connect(url: str) -> Catalog:
    """The process-wide Catalog of a URL (engine and migrations once per process)."""
    with _connections_lock:
        cat = _connections.get(url)
        if cat is None:
            cat = _connections[url] = Catalog(url)
        return cat


def _chunks(seq: list, n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
