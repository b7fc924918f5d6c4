"""The scheduled index maintenance job through Dagster: a title that is no longer a `titles` partition loses
its rows; the others keep theirs; the schedule runs by default."""

import pytest
from dagster import DagsterInstance

from prism_assets.definitions import build_definitions
from prism_assets.index.backend import Cond, LanceBackend
from prism_assets.partitions import TITLES_PARTITIONS_NAME

from .test_index import T1, T2, T3, FakeEmbedder, write_corpus

pytestmark = pytest.mark.unit


def test_maintenance_job_removes_titles_that_are_no_longer_partitions(settings):
    backend, _ = write_corpus(settings.index_location, FakeEmbedder())
    defs = build_definitions(settings)
    assert defs.get_schedule_def("index_maintenance_schedule").default_status.value == "RUNNING"
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, [T1, T3])  # T2 was removed
        result = defs.resolve_job_def("index_maintenance_job").execute_in_process(instance=instance)
    assert result.success
    fresh = LanceBackend(settings.index_location, read_consistency_s=0)
    assert fresh.title_ids() == sorted([T1, T3])
    for table in ("units", "speech", "ocr", "events", "frames", "subtitles"):
        assert fresh.count(table, [Cond("title_id", "=", T2)]) == 0, table
    assert fresh.count("units", [Cond("title_id", "=", T1)]) > 0
    md = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert md["titles_removed"].value == [T2] and md["rows"].value["units"] == fresh.count("units")
    assert md["ann_index"].value == "no table large enough for a vector index"  # a markdown table once one is
