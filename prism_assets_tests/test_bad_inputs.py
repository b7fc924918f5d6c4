"""Bad deliveries end in a failed (or flagged) materialization with one clear line, leave no
artifact behind, never hang, and do not stop the other titles of the batch."""

from datetime import date

import pytest
from dagster import DagsterInstance, build_sensor_context

from prism_assets.catalog import Catalog
from prism_assets.cli.common import qc_gate_only
from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_definitions, build_resources

from .test_source_video import artifact, run_title


def failure_line(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "expected a step failure"
    data = failures[0].step_failure_data
    return data.user_failure_data.description


@pytest.mark.parametrize(
    "name, expected",
    [
        ("empty.mp4", "empty file (0 bytes)"),
        ("text.mp4", "not a readable media file"),
        ("truncated.mp4", "not a readable media file"),
    ],
)
def test_unusable_input_fails_with_one_line_and_no_artifact(settings, synth, name, expected):
    result = run_title(settings, "bad", synth(name))
    assert not result.success
    line = failure_line(result)
    assert expected in line and "\n" not in line and line.startswith("bad: ")
    assert artifact(settings, "bad") is None
    runs = Catalog(settings.catalog_url).signal_runs("bad", "source_video")
    assert runs[-1].status == "failed" and expected in runs[-1].error
    assert Catalog(settings.catalog_url).title("bad").status == "failed"
    folder = settings.data_dir / "artifacts" / "titles" / "bad"
    assert not folder.exists() or not any(folder.rglob("*")), "partial artifact left behind"


def test_truncated_media_data_is_flagged(settings, synth):
    """Index intact but media data cut: the probe succeeds with the damage flagged."""
    result = run_title(settings, "trunc", synth("truncated_faststart.mp4"))
    t = artifact(settings, "trunc")
    if result.success:
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert not checks["container_integrity"] or not checks["timing_consistent"], checks
        assert t["frame_count"] < 100
    else:
        assert "truncated or corrupt" in failure_line(result) and t is None


def test_no_audio_is_flagged_not_failed(settings, synth):
    result = run_title(settings, "mute", synth("noaudio_30fps_2s.mp4"))
    assert result.success
    t = artifact(settings, "mute")
    assert not t["has_audio"] and "no_audio" in t["flags"] and t["frame_count"] == 60
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["has_audio"] is False and checks["probe_complete"] is True


def test_audio_only_is_flagged_not_failed(settings, synth):
    """An audio-only delivery (a dub, a line-up tone) is probed and flagged `audio_only`: no picture
    fields, every probe check passes, and nothing is left half-done."""
    result = run_title(settings, "tone", synth("audio_only.m4a.mp4"))
    assert result.success
    t = artifact(settings, "tone")
    assert "audio_only" in t["flags"] and t["video"] is None and t["fps"] is None and t["frame_count"] == 0
    assert abs(t["duration_s"] - 2.0) < 0.05 and t["has_audio"] and t["audio_tracks"][0]["sample_rate"] == 44100
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks.values()), checks


@pytest.mark.integration
def test_file_without_video_or_audio_fails(settings, tmp_path):
    from .conftest import ffmpeg

    p = tmp_path / "subs_only.mkv"
    (tmp_path / "s.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    ffmpeg("-i", str(tmp_path / "s.srt"), "-c:s", "srt", str(p))
    result = run_title(settings, "subs", p)
    assert not result.success and "no video stream" in failure_line(result) and artifact(settings, "subs") is None


@pytest.mark.slow
def test_two_hour_title_probes_quickly(settings, synth):
    import time

    path = synth("two_hours.mp4")
    t0 = time.perf_counter()
    result = run_title(settings, "long", path)
    elapsed = time.perf_counter() - t0
    assert result.success
    t = artifact(settings, "long")
    assert abs(t["duration_s"] - 7200) <= 1 and t["frame_count"] == 7200
    assert elapsed < 120, f"2-hour probe took {elapsed:.1f}s"


def test_missing_delivery_file_fails_clearly(settings, tmp_path):
    result = run_title(settings, "gone", tmp_path / "gone.mp4")
    assert not result.success
    assert "gone" in failure_line(result)


def test_bad_title_does_not_block_the_batch(settings, synth, media):
    """Sensor-driven batch of 3 titles, the middle one broken: the others complete."""
    root = settings.data_dir / "deliveries" / date.today().isoformat()  # the sensor's first listing: recent days only
    for tid, src in (("a_good", media / "qc_composite.mp4"), ("b_bad", synth("text.mp4")), ("c_good", synth("bars_25fps_4s.mp4"))):
        (root / tid).mkdir(parents=True)
        (root / tid / f"{tid}.mp4").write_bytes(src.read_bytes())
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="delivery_sensor", resources=build_resources(settings)) as ctx:
        tick = defs.get_sensor_def("delivery_sensor")(ctx)
    instance.add_dynamic_partitions("titles", list(tick.dynamic_partitions_requests[0].partition_keys))
    job = defs.resolve_job_def("process_title")
    outcome = {}
    for req in tick.run_requests:
        res = job.execute_in_process(partition_key=req.partition_key, instance=instance, tags=req.tags, raise_on_error=False)
        outcome[req.partition_key] = res.success or qc_gate_only(res)  # processed (a QC fail verdict ends the run failed at release)
    assert outcome == {"a_good": True, "b_bad": False, "c_good": True}
    arts = build_resources(settings)["storage"].artifacts()
    assert arts.exists(ArtifactStore.base_key("source_video", "c_good"))
    assert not arts.exists(ArtifactStore.base_key("source_video", "b_bad"))
