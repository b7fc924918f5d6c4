"""titles.series_id, season, episode: a title's place in a series (sidecar), for season-level signals

Revision ID: 0004_series
Revises: 0003_utf8mb4
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_series"
down_revision = "0003_utf8mb4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("titles") as batch:  # batch: SQLite cannot ALTER a table in place
        batch.add_column(sa.Column("series_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("season", sa.Integer, nullable=True))
        batch.add_column(sa.Column("episode", sa.Integer, nullable=True))
        batch.create_index("ix_titles_series_season", ["series_id", "season"])


def downgrade() -> None:
    with op.batch_alter_table("titles") as batch:
        batch.drop_index("ix_titles_series_season")
        batch.drop_column("episode")
        batch.drop_column("season")
        batch.drop_column("series_id")
