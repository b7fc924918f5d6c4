"""initial catalog: titles, deliveries, signal_runs, signal_outputs

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "titles",
        sa.Column("title_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(512)),
        sa.Column("provider", sa.String(128)),
        sa.Column("expected_languages", sa.JSON),
        sa.Column("first_delivery_date", sa.Date, nullable=False),
        sa.Column("latest_delivery_date", sa.Date, nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("fps", sa.Float),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_titles_provider", "titles", ["provider"])
    op.create_index("ix_titles_first_delivery_date", "titles", ["first_delivery_date"])
    op.create_index("ix_titles_latest_delivery_date", "titles", ["latest_delivery_date"])

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_key", sa.String(64), nullable=False),
        sa.Column("title_id", sa.String(128), sa.ForeignKey("titles.title_id"), nullable=False),
        sa.Column("delivery_date", sa.Date, nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("etag", sa.String(128)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sidecar", sa.JSON),
        sa.Column("discovered_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("delivery_key", name="uq_deliveries_key"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_deliveries_title_id", "deliveries", ["title_id"])
    op.create_index("ix_deliveries_delivery_date", "deliveries", ["delivery_date"])

    op.create_table(
        "signal_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title_id", sa.String(128)),
        sa.Column("partition_key", sa.String(128), nullable=False),
        sa.Column("signal", sa.String(128), nullable=False),
        sa.Column("dagster_run_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code_version", sa.String(64)),
        sa.Column("model", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("dagster_run_id", "signal", "partition_key", name="uq_signal_runs_run"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_signal_runs_title_signal", "signal_runs", ["title_id", "signal"])

    op.create_table(
        "signal_outputs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partition_key", sa.String(128), nullable=False),
        sa.Column("signal", sa.String(128), nullable=False),
        sa.Column("dagster_run_id", sa.String(64), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("schema_version", sa.String(16)),
        sa.Column("code_version", sa.String(64)),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("partition_key", "signal", name="uq_signal_outputs_signal"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("signal_outputs")
    op.drop_table("signal_runs")
    op.drop_table("deliveries")
    op.drop_table("titles")
