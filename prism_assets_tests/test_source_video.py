"""source_video through `materialize` on an ephemeral instance, against probe truth."""

import json
from datetime import date

import pytest
from dagster import DagsterInstance, materialize

from prism_assets.catalog import Catalog, DeliveryRecord
from prism_assets.core.artifacts import ArtifactStore
from prism_assets.definitions import build_resources
from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

from .support import signal_assets


def run_title(settings, title_id, path, day="2026-11-20", instance=None):
    instance = instance or DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", [title_id])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(title_id, date.fromisoformat(day), str(path))])
    result = materialize(
        signal_assets(settings, "source_video"),
        partition_key=title_id,
        instance=instance,
        resources=build_resources(settings),
        tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: day},
        raise_on_error=False,
    )
    return result


def artifact(settings, title_id):
    arts = build_resources(settings)["storage"].artifacts()
    base = ArtifactStore.base_key("source_video", title_id)
    return arts.read(base) if arts.exists(base) else None


@pytest.mark.integration  # the whole title job: OCR starts tesseract
def test_qc_composite_matches_ground_truth(settings, media):
    gt = json.loads((media / "qc_composite.gt.json").read_text())
    result = run_title(settings, "qc", media / "qc_composite.mp4")
    assert result.success
    t = artifact(settings, "qc")
    assert t["schema_version"] == "1.4" and t["title_id"] == "qc" and t["series"] is None and t["delivery_date"] == "2026-11-20"
    assert t["frame_count"] == 744 and t["fps"] == 24.0
    assert abs(t["duration_s"] - 31.0) <= 1 / 24
    assert (t["width"], t["height"]) == (640, 360)
    assert t["video"]["codec"] == "h264" and not t["is_vfr"]
    assert len(t["audio_tracks"]) == 1 and t["audio_tracks"][0]["codec"] == "aac"
    assert len(t["checksum_sha256"]) == 64
    assert t["producer"]["tool"] == "PyAV"
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    mat = result.asset_materializations_for_node("source_video")[0]
    assert mat.metadata["artifact_uri"].value.endswith("titles/qc/source_video.json")
    assert mat.partition == "qc"
    assert gt  # ground truth file read


def test_webm_vp8_duration_and_rate(settings, media):
    result = run_title(settings, "bbb", media / "big_buck_bunny_0_30.webm")
    assert result.success
    t = artifact(settings, "bbb")
    assert t["frame_count"] == 720 and t["fps"] == 24.0 and abs(t["duration_s"] - 30.0) <= 1 / 24
    assert (t["width"], t["height"], t["video"]["codec"]) == (1280, 720, "vp8")
    assert t["audio_tracks"][0]["channels"] == 2 and t["audio_tracks"][0]["sample_rate"] == 44100


def test_synthetic_title_exact(settings, synth):
    result = run_title(settings, "bars", synth("bars_25fps_4s.mp4"))
    assert result.success
    t = artifact(settings, "bars")
    assert (t["frame_count"], t["fps"], t["width"], t["height"]) == (100, 25.0, 320, 240)
    assert abs(t["duration_s"] - 4.0) <= 1 / 25
    assert t["audio_tracks"][0]["channels"] == 2 and t["audio_tracks"][0]["sample_rate"] == 48000


def test_vfr_is_flagged(settings, synth):
    result = run_title(settings, "vfr", synth("vfr.mkv"))
    assert result.success
    t = artifact(settings, "vfr")
    assert t["is_vfr"] and "vfr" in t["flags"]
    assert t["frame_count"] == 60
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["constant_frame_rate"] is False


def test_rematerialization_overwrites_cleanly(settings, media, synth):
    inst = DagsterInstance.ephemeral()
    assert run_title(settings, "t", synth("bars_25fps_4s.mp4"), instance=inst).success
    assert run_title(settings, "t", media / "qc_composite.mp4", instance=inst).success
    t = artifact(settings, "t")
    assert t["frame_count"] == 744
    folder = settings.data_dir / "artifacts" / "titles" / "t"
    assert sorted(p.name for p in folder.iterdir()) == ["source_video.json"]
    runs = Catalog(settings.catalog_url).signal_runs("t", "source_video")
    assert [r.status for r in runs] == ["success", "success"]


def test_sidecar_is_read_and_recorded(settings, media, tmp_path):
    folder = tmp_path / "2026-11-20" / "side"
    folder.mkdir(parents=True)
    video = folder / "side.mp4"
    video.write_bytes((media / "qc_composite.mp4").read_bytes())
    (folder / "sidecar.json").write_text(json.dumps({"title": "My Film", "provider": "acme", "expected_languages": ["en", "de"]}))
    assert run_title(settings, "side", video).success
    t = artifact(settings, "side")
    assert (t["title_name"], t["provider"], t["expected_languages"]) == ("My Film", "acme", ["en", "de"])
    title = Catalog(settings.catalog_url).title("side")
    assert (title.name, title.provider, title.status, title.duration_s) == ("My Film", "acme", "processed", 31.0)


def test_bad_sidecar_is_flagged_not_fatal(settings, media, tmp_path):
    video = tmp_path / "x.mp4"
    video.write_bytes((media / "qc_composite.mp4").read_bytes())
    (tmp_path / "x.json").write_text("{not json")
    assert run_title(settings, "x", video).success
    assert "not valid JSON" in artifact(settings, "x")["sidecar_warnings"][0]


@pytest.mark.parametrize("case", ["deep", "huge", "long_fields"])
def test_hostile_sidecars_are_bounded_warnings(settings, media, tmp_path, case):
    """A sidecar nested 30,000 levels deep, one of 5 MB, one with a 2,000-character CJK title and a
    500-character provider: the title is processed, each problem is one warning line, nothing fails."""
    video = tmp_path / "h.mp4"
    video.write_bytes((media / "qc_composite.mp4").read_bytes())
    if case == "deep":
        body = "[" * 30_000 + "]" * 30_000  # under 64 KiB: json.loads itself would recurse too deep
    elif case == "huge":
        body = json.dumps({"title": "big", "notes": "x" * 5_000_000})
    else:
        body = json.dumps({"title": "기생충" * 700, "provider": "p" * 500, "expected_languages": ["en"]})
    (tmp_path / "h.json").write_text(body)
    result = run_title(settings, "h", video)
    assert result.success
    t = artifact(settings, "h")
    warnings = t["sidecar_warnings"]
    assert warnings and all("\n" not in w and len(w) < 300 for w in warnings), warnings
    if case == "deep":
        assert "nests deeper than 16 levels" in warnings[0] and t["title_name"] is None
    elif case == "huge":
        assert "larger than 64 KiB" in warnings[0] and t["title_name"] is None
    else:
        assert len(t["title_name"]) == 512 and t["provider"] is None and t["expected_languages"] == ["en"]
        assert any("title is 2100 characters, cut to 512" in w for w in warnings) and any("provider is 500" in w for w in warnings)
        assert Catalog(settings.catalog_url).title("h").name == "기생충" * 170 + "기생"


def test_parse_sidecar_bounds():
    from prism_assets.deliveries.layout import DeliveryError, parse_sidecar

    side, warnings = parse_sidecar(json.dumps({"title": "t", "extra": {"a": [[[1]]]}}).encode(), "s.json")
    assert side["title"] == "t" and warnings == []
    nested = {"title": "t"}
    for _ in range(20):
        nested = {"x": nested}
    with pytest.raises(DeliveryError, match="nests deeper than 16 levels"):
        parse_sidecar(json.dumps(nested).encode(), "s.json")
    side, warnings = parse_sidecar(json.dumps({"expected_languages": ["en"] * 40}).encode(), "s.json")
    assert "expected_languages" not in side and "at most 32 codes" in warnings[0]
