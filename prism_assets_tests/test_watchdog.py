"""The suite's hang watchdog (conftest.py): a test stuck in native code holding the GIL, where pytest-timeout's alarm
cannot land, fails as a crashed worker with its stacks in test-artifacts/hangs/, and the run goes on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

HANG = '''
import ctypes
import signal

import pytest


@pytest.mark.timeout(1)
def test_native_hang():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as a thread stuck in native code: the alarm cannot land
    ctypes.PyDLL(None).sleep(60)  # and it holds the GIL


def test_after():
    pass
'''


@pytest.mark.integration
def test_a_native_hang_fails_its_test_and_the_run_goes_on(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANG)
    env = {"PRISM_TEST_ARTIFACTS": str(tmp_path / "art"), "PRISM_TEST_WATCHDOG_GRACE_S": "2", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pyproject.toml", "--rootdir", ".",
                           "-p", "prism_assets_tests.conftest", "-n", "2", str(tmp_path / "test_hang.py")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "1 failed, 1 passed" in proc.stdout and "crashed while running" in proc.stdout, proc.stdout[-3000:]
    (hang,) = (tmp_path / "art" / "hangs").iterdir()
    text = hang.read_text()
    assert text.startswith("HUNG: ") and "test_native_hang was still running 3 s" in text and "Timeout (0:00:03)!" in text, text[:2000]
