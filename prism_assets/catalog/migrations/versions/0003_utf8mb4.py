"""utf8mb4 everywhere on MariaDB/MySQL: titles and sidecar text in any script (CJK, emoji), ids exact

A server or database whose default character set is latin1 (or 3-byte utf8) created the tables of
0001/0002 with it: a CJK title name failed there. Every table is converted to utf8mb4 with the
binary collation (title ids and partition keys compare exactly, as Dagster's partition keys do), and
the database's default becomes utf8mb4 for tables created later. SQLite and PostgreSQL store UTF-8
already: nothing to do there.

Revision ID: 0003_utf8mb4
Revises: 0002_qc
"""

from alembic import op

revision = "0003_utf8mb4"
down_revision = "0002_qc"
branch_labels = None
depends_on = None

CHARSET, COLLATION = "utf8mb4", "utf8mb4_bin"
TABLES = ("titles", "deliveries", "signal_runs", "signal_outputs", "qc_results")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    op.execute(f"ALTER DATABASE CHARACTER SET {CHARSET} COLLATE {COLLATION}")
    op.execute("SET FOREIGN_KEY_CHECKS=0")  # titles.title_id and the columns referencing it change together
    try:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET {CHARSET} COLLATE {COLLATION}")
    finally:
        op.execute("SET FOREIGN_KEY_CHECKS=1")


def downgrade() -> None:
    pass  # utf8mb4 is a superset: nothing to undo
