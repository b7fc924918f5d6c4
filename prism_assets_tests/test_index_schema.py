"""An index written by an older schema (a text table without `cjk`) is brought up to date on the next write."""

import pyarrow as pa
import pytest

from prism_assets.index.backend import Cond, LanceBackend
from prism_assets.index.tables import schema_for

from .test_index import T1, FakeEmbedder, build_title

pytestmark = pytest.mark.unit


def test_a_table_of_an_older_schema_gets_the_new_columns(tmp_path):
    backend = LanceBackend(str(tmp_path / "index"), read_consistency_s=0)
    old = pa.schema([f for f in schema_for("speech") if f.name != "cjk"])
    backend.db.create_table("speech", schema=old)
    rows, trow, _ = build_title(T1, FakeEmbedder())
    backend.replace_title(T1, rows, trow)
    fresh = LanceBackend(str(tmp_path / "index"), read_consistency_s=0)
    assert "cjk" in fresh.table("speech").schema.names
    assert fresh.count("speech", [Cond("title_id", "=", T1)]) == len(rows["speech"])
