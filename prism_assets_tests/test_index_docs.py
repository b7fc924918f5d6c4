"""docs/schema.md "Index tables" names every column of every index table (prism_assets/index/tables.py)."""

from pathlib import Path

import pytest

from prism_assets.index.tables import COLUMNS, TABLES

pytestmark = pytest.mark.unit
SCHEMA = (Path(__file__).resolve().parents[1] / "docs" / "schema.md").read_text()


def test_every_index_column_is_documented():
    section = SCHEMA[SCHEMA.index("### Index tables"):SCHEMA.index("### HTTP API")]
    for table in TABLES:
        assert f"| `{table}` |" in section, f"table {table} is not documented"
        for column, _, _ in COLUMNS[table]:
            assert f"`{column}`" in section, f"{table}.{column} is not documented in docs/schema.md"
