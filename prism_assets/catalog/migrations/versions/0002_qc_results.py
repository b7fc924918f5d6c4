"""qc_results: the latest content-QC verdict per title (prism_assets/qc)

Revision ID: 0002_qc
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_qc"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title_id", sa.String(128), sa.ForeignKey("titles.title_id"), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("reasons", sa.JSON),
        sa.Column("event_counts", sa.JSON),
        sa.Column("events_total", sa.Integer, nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("delivery_date", sa.Date),
        sa.Column("artifact_uri", sa.String(2048)),
        sa.Column("dagster_run_id", sa.String(64), nullable=False),
        sa.Column("code_version", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("title_id", name="uq_qc_results_title"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_qc_results_verdict", "qc_results", ["verdict"])
    op.create_index("ix_qc_results_delivery_date", "qc_results", ["delivery_date"])


def downgrade() -> None:
    op.drop_table("qc_results")
