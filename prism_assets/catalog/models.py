"""The Prism catalog: titles, deliveries, signal runs and their outputs (SQLAlchemy 2).

Schema changes go through alembic migrations in `migrations/versions/` (never create_all in
production). Later signal domains add their own tables with their own migrations.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Title(Base):
    __tablename__ = "titles"
    __table_args__ = (Index("ix_titles_series_season", "series_id", "season"),)

    title_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(512))
    provider: Mapped[str | None] = mapped_column(String(128), index=True)
    expected_languages: Mapped[list | None] = mapped_column(JSON)
    first_delivery_date: Mapped[date] = mapped_column(Date, index=True)
    latest_delivery_date: Mapped[date] = mapped_column(Date, index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="delivered")  # delivered|processed|failed
    series_id: Mapped[str | None] = mapped_column(String(64))  # sidecar series_id (0004; index ix_titles_series_season)
    season: Mapped[int | None] = mapped_column(Integer)
    episode: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("delivery_key", name="uq_deliveries_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_key: Mapped[str] = mapped_column(String(64))  # sha1 of the video URI
    title_id: Mapped[str] = mapped_column(String(128), ForeignKey("titles.title_id"), index=True)
    delivery_date: Mapped[date] = mapped_column(Date, index=True)
    uri: Mapped[str] = mapped_column(String(2048))
    etag: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sidecar: Mapped[dict | None] = mapped_column(JSON)
    discovered_at: Mapped[datetime] = mapped_column(DateTime)


class SignalRun(Base):
    """One materialization of one signal (asset) for one partition."""

    __tablename__ = "signal_runs"
    __table_args__ = (
        UniqueConstraint("dagster_run_id", "signal", "partition_key", name="uq_signal_runs_run"),
        Index("ix_signal_runs_title_signal", "title_id", "signal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[str | None] = mapped_column(String(128))
    partition_key: Mapped[str] = mapped_column(String(128))
    signal: Mapped[str] = mapped_column(String(128))
    dagster_run_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # started|success|failed
    code_version: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class SignalOutput(Base):
    """The live artifact of a signal for a partition (one row per partition and signal)."""

    __tablename__ = "signal_outputs"
    __table_args__ = (UniqueConstraint("partition_key", "signal", name="uq_signal_outputs_signal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partition_key: Mapped[str] = mapped_column(String(128))
    signal: Mapped[str] = mapped_column(String(128))
    dagster_run_id: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(String(2048))
    format: Mapped[str] = mapped_column(String(32))
    schema_version: Mapped[str | None] = mapped_column(String(16))
    code_version: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class QCResult(Base):
    """The latest content-QC verdict of a title (prism_assets/qc), with its reasons and event counts."""

    __tablename__ = "qc_results"
    __table_args__ = (UniqueConstraint("title_id", name="uq_qc_results_title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[str] = mapped_column(String(128), ForeignKey("titles.title_id"))
    verdict: Mapped[str] = mapped_column(String(8), index=True)  # pass|warn|fail
    profile: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[list | None] = mapped_column(JSON)
    event_counts: Mapped[dict | None] = mapped_column(JSON)
    events_total: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float)
    delivery_date: Mapped[date | None] = mapped_column(Date, index=True)
    artifact_uri: Mapped[str | None] = mapped_column(String(2048))
    dagster_run_id: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
