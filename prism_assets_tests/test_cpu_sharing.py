"""CPU sharing while a title's steps overlap (issue 26): the threads executor puts OMP_WAIT_POLICY in the environment
before any step loads CTranslate2 / torch (their bundled libgomp reads it once, when it loads), and the subprocesses
off the critical path (the proxy's ffmpeg, tesseract) start with a lower CPU priority. Fast: no media, no models."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from dagster import Definitions, asset, build_reconstructable_job, define_asset_job, execute_job, instance_for_test

from prism_assets.audio.whisper.config import WhisperConfig
from prism_assets.core.cpu_share import background, quiet_openmp_waits
from prism_assets.core.step_threads import threads_executor_def
from prism_assets.index.proxy import run_ffmpeg
from prism_assets.settings import background_nice, omp_wait_policy
from prism_assets.structure import ocr_engine

# unit tests by default (conftest); those that start a process to see what it runs with are marked integration (fast all the same)

PRINT_NICE = [sys.executable, "-c", "import os, sys; sys.stdout.write(str(os.nice(0))); sys.stderr.write(str(os.nice(0)))"]


def expected(n: int) -> int:
    return min(19, os.nice(0) + n)


@pytest.fixture
def no_omp_env(monkeypatch):
    """OMP_WAIT_POLICY unset for the test and restored (removed) after it, whatever the code under test set."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "placeholder")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.delenv("PRISM_OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("PRISM_BACKGROUND_NICE", raising=False)


# -- settings -----------------------------------------------------------------------------------------------------------


def test_omp_wait_policy_setting():
    assert omp_wait_policy({}) == "passive"
    assert omp_wait_policy({"PRISM_OMP_WAIT_POLICY": ""}) == "passive"
    assert omp_wait_policy({"PRISM_OMP_WAIT_POLICY": " Active "}) == "active"
    assert omp_wait_policy({"PRISM_OMP_WAIT_POLICY": "library"}) == "library"
    with pytest.raises(ValueError, match="PRISM_OMP_WAIT_POLICY='spin'"):
        omp_wait_policy({"PRISM_OMP_WAIT_POLICY": "spin"})


def test_background_nice_setting():
    assert background_nice({}) == 10
    assert background_nice({"PRISM_BACKGROUND_NICE": "0"}) == 0
    assert background_nice({"PRISM_BACKGROUND_NICE": "19"}) == 19
    for bad in ("20", "-1"):
        with pytest.raises(ValueError, match="PRISM_BACKGROUND_NICE"):
            background_nice({"PRISM_BACKGROUND_NICE": bad})
    with pytest.raises(ValueError, match="not an integer"):
        background_nice({"PRISM_BACKGROUND_NICE": "low"})


def test_whisper_cpu_threads_from_the_environment():
    assert WhisperConfig.from_profile({"model": "m"}, env={}).cpu_threads == 0
    assert WhisperConfig.from_profile({"model": "m", "cpu_threads": 3}, env={}).cpu_threads == 3
    assert WhisperConfig.from_profile({"model": "m", "cpu_threads": 3}, env={"PRISM_MODEL_WHISPER_CPU_THREADS": "1"}).cpu_threads == 1
    assert WhisperConfig.from_profile({"model": "m", "cpu_threads": 3}, env={"PRISM_MODEL_WHISPER_CPU_THREADS": ""}).cpu_threads == 3
    with pytest.raises(ValueError, match="PRISM_MODEL_WHISPER_CPU_THREADS"):
        WhisperConfig.from_profile({"model": "m"}, env={"PRISM_MODEL_WHISPER_CPU_THREADS": "two"})


# -- OpenMP wait policy -------------------------------------------------------------------------------------------------


def test_quiet_openmp_waits_sets_passive_unless_the_environment_says_otherwise():
    env: dict = {}
    done = quiet_openmp_waits(env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and done["set"] and done["policy"] == "PASSIVE"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}  # the operator's own setting wins
    assert not quiet_openmp_waits(env)["set"] and env["OMP_WAIT_POLICY"] == "ACTIVE"
    env = {"PRISM_OMP_WAIT_POLICY": "library"}  # left to libgomp
    assert not quiet_openmp_waits(env)["set"] and "OMP_WAIT_POLICY" not in env
    env = {"PRISM_OMP_WAIT_POLICY": "active"}
    quiet_openmp_waits(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"


def test_quiet_openmp_waits_names_libraries_loaded_too_early(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert "torch" in quiet_openmp_waits({})["late"]


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="ctranslate2 not installed")
def test_libgomp_of_ctranslate2_starts_passive_after_quiet_openmp_waits():
    """The real thing: a fresh process sets the policy, then imports ctranslate2; its bundled libgomp prints the
    policy it started with (OMP_DISPLAY_ENV)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "PRISM_OMP_WAIT_POLICY")}
    env["OMP_DISPLAY_ENV"] = "TRUE"
    code = "from prism_assets.core.cpu_share import quiet_openmp_waits; quiet_openmp_waits(); import ctranslate2"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in r.stderr + r.stdout


SEEN: dict = {}


@asset
def first_step():
    SEEN["first_step"] = os.environ.get("OMP_WAIT_POLICY")
    return 1


@asset
def second_step(first_step):
    SEEN["second_step"] = os.environ.get("OMP_WAIT_POLICY")


def policy_job():
    defs = Definitions(assets=[first_step, second_step], jobs=[define_asset_job("job", selection=["first_step", "second_step"])],
                       executor=threads_executor_def(2))
    return defs.resolve_job_def("job")


def test_threads_executor_sets_the_policy_before_the_first_step(no_omp_env):
    SEEN.clear()
    recon = build_reconstructable_job("prism_assets_tests.test_cpu_sharing", "policy_job")
    with instance_for_test() as instance:
        with execute_job(recon, instance=instance, raise_on_error=True) as result:
            assert result.success
            messages = [e.message or "" for e in result.all_events if e.event_type_value == "ENGINE_EVENT"]
    assert SEEN == {"first_step": "PASSIVE", "second_step": "PASSIVE"}
    assert any("OpenMP wait policy PASSIVE" in m for m in messages)


# -- lower CPU priority off the critical path ---------------------------------------------------------------------------


@pytest.mark.integration
def test_background_runs_the_command_niced():
    out = subprocess.run(background(PRINT_NICE, 7), capture_output=True, text=True, check=True).stdout
    assert int(out) == expected(7)


def test_background_zero_or_no_nice_binary_leaves_the_command(monkeypatch):
    assert background(["ffmpeg", "-i", "x"], 0) == ["ffmpeg", "-i", "x"]
    monkeypatch.setattr("prism_assets.core.cpu_share._nice_exe", lambda: None)
    assert background(["ffmpeg", "-i", "x"], 5) == ["ffmpeg", "-i", "x"]


def test_background_default_comes_from_the_setting(monkeypatch):
    monkeypatch.delenv("PRISM_BACKGROUND_NICE", raising=False)
    assert background(["x"])[1:4] == ["-n", "10", "x"]
    monkeypatch.setenv("PRISM_BACKGROUND_NICE", "3")
    assert background(["x"])[1:4] == ["-n", "3", "x"]
    monkeypatch.setenv("PRISM_BACKGROUND_NICE", "0")
    assert background(["x"]) == ["x"]


@pytest.mark.integration
def test_proxy_encoder_process_is_niced(tmp_path, monkeypatch):
    """run_ffmpeg (the proxy's encode) returns the process's stderr: here the niceness it ran with."""
    monkeypatch.setenv("PRISM_BACKGROUND_NICE", "4")
    assert int(run_ffmpeg(PRINT_NICE, tmp_path / "log", 30, None)) == expected(4)
    assert int(run_ffmpeg(PRINT_NICE, tmp_path / "log", 30, None, nice=0)) == os.nice(0)


@pytest.mark.integration
def test_tesseract_command_and_worker_are_niced(monkeypatch):
    monkeypatch.delenv("PRISM_BACKGROUND_NICE", raising=False)
    args = ocr_engine.CliReader("/usr/bin/tesseract", ("eng",))._args("stdin", 11)
    assert args[1:3] == ["-n", "10"] and args[3:5] == ["/usr/bin/tesseract", "stdin"]
    out = subprocess.run(ocr_engine.CliReader(PRINT_NICE[0], ("eng",))._args("stdin", 11)[:4] + PRINT_NICE[1:],
                         capture_output=True, text=True, check=True).stdout
    assert int(out) == expected(10)

    started = []

    def fake_popen(cmd, **kw):
        started.append(cmd)
        raise OSError("not started in this test")

    monkeypatch.setattr(ocr_engine.subprocess, "Popen", fake_popen)
    with pytest.raises(OSError):
        ocr_engine._Worker("/tessdata", "eng")
    assert started[0][1:3] == ["-n", "10"] and started[0][3] == sys.executable


def test_whisper_loading_sets_the_policy_before_it_imports_ctranslate2(monkeypatch):
    """get_whisper (any executor, direct calls) sets the policy first: here the call stops right there."""
    from prism_assets.audio.whisper import loading

    class Stop(Exception):
        pass

    def first(*_a, **_k):
        raise Stop

    monkeypatch.setattr("prism_assets.core.cpu_share.quiet_openmp_waits", first)
    monkeypatch.setattr("prism_assets.core.caches.import_contained", lambda *_a, **_k: pytest.fail("imported before the policy was set"))
    with pytest.raises(Stop):
        loading.get_whisper.__wrapped__(WhisperConfig(model="m"), "cpu")
