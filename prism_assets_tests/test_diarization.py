"""The optional diarization model: not configured is stated, a configured model that cannot load is
one line (offline here: no pyannote pipeline ships on PyPI), never a silent fallback."""

from __future__ import annotations

import pytest

from prism_assets.localization.resources import DiarizationConfig, DiarizationLoadError, DiarizationModelResource, load_diarization
from prism_assets.resources import PrismProfile


@pytest.mark.unit
def test_dev_has_none_and_prod_names_one(monkeypatch):
    monkeypatch.delenv("PRISM_DIARIZATION_MODEL", raising=False)
    assert DiarizationModelResource(profile=PrismProfile(name="dev")).get() is None
    prod = DiarizationModelResource(profile=PrismProfile(name="prod")).config()
    assert prod.model == "pyannote/speaker-diarization-community-1" and prod.token_env == "HF_TOKEN"
    monkeypatch.setenv("PRISM_DIARIZATION_MODEL", "")
    assert DiarizationModelResource(profile=PrismProfile(name="prod")).config().model is None  # empty: switched off


@pytest.mark.unit
def test_a_local_folder_without_a_pipeline_is_one_line(tmp_path):
    with pytest.raises(DiarizationLoadError, match="no config.yaml there") as exc:
        load_diarization(DiarizationConfig(str(tmp_path / "pipeline")), "cpu")
    assert "\n" not in str(exc.value)


@pytest.mark.integration
def test_a_hub_model_offline_is_one_line(monkeypatch):
    """The real loading code (WhisperX's DiarizationPipeline -> pyannote) against the hub, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DiarizationLoadError) as exc:
        load_diarization(DiarizationConfig("pyannote/speaker-diarization-community-1"), "cpu")
    msg = str(exc.value)
    assert "\n" not in msg and "cannot be loaded" in msg and "HF_HUB_OFFLINE" in msg, msg
