from dagster import DynamicPartitionsDefinition, TimeWindowPartitionsDefinition


def test_definitions_load_with_every_asset_checked_fresh_and_pooled(settings):
    from prism_assets.definitions import PER_TITLE_ASSETS, build_definitions

    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"source_video", "delivery_manifest"} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.freshness_policy is not None, f"{key} has no freshness policy"
        assert graph.get_check_keys_for_assets({key}), f"{key} has no asset checks"
        assert node.code_version, f"{key} has no code_version"
    # heavy steps run in their pool (decode: CPU-heavy decode passes; gpu: model steps, sized to the
    # node's GPUs); light table-to-table steps (shots, keyframes) run free
    pools = {"source_video": "decode", "visual_pass": "decode", "clip_embeddings": "gpu", "posters": "gpu", "shots": None, "keyframes": None, "qc": None,
             "audio_pass": "decode", "transcript": "gpu", "audio_analysis": None}
    for a in PER_TITLE_ASSETS:
        assert isinstance(a.partitions_def, DynamicPartitionsDefinition) and a.partitions_def.name == "titles"
        assert a.op.name in pools, f"{a.op.name}: declare its pool in this test"
        assert a.op.pool == pools[a.op.name], f"{a.op.name} runs in pool {a.op.pool}, expected {pools[a.op.name]}"
    assert isinstance(graph.get(next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "delivery_manifest")).partitions_def, TimeWindowPartitionsDefinition)
    assert defs.resolve_job_def("process_title").partitions_def.name == "titles"
    assert defs.get_sensor_def("delivery_sensor") and defs.get_sensor_def("manifest_fanout_sensor")
    assert defs.get_schedule_def("daily_batch_schedule")


def test_module_level_defs_is_the_single_entry():
    import prism_assets.definitions as d

    assert d.defs.resolve_job_def("process_title") is not None


def test_unknown_profile_is_rejected(monkeypatch, data_dir):
    import pytest

    from prism_assets.settings import PrismSettings

    monkeypatch.setenv("PRISM_PROFILE", "staging")
    with pytest.raises(ValueError, match="unknown profile"):
        PrismSettings.from_env()
