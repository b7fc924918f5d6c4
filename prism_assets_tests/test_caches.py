"""Caches that libraries write at import time stay in Prism's data dir (core/caches.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

CONTAINED = "from prism_assets.core.caches import import_contained; import os; import_contained('onnxruntime'); print(os.environ.get('XDG_CACHE_HOME', ''))"


def run(code: str, home, data=None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "PRISM_DATA_DIR")}
    env["HOME"] = str(home)
    if data:
        env["PRISM_DATA_DIR"] = str(data)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def written(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_onnxruntime_cache_goes_to_the_data_dir_not_home(tmp_path):
    """Control first: a plain import writes onnxruntime's device-id cache under ~/.cache where this
    onnxruntime build does that at all; the contained import writes the same files under
    <data_dir>/cache instead, nothing under home, and leaves XDG_CACHE_HOME unset afterwards."""
    control, home, data = tmp_path / "control", tmp_path / "home", tmp_path / "data"
    for d in (control, home):
        d.mkdir()
    run("import onnxruntime", control)
    plain = written(control)
    if not plain:
        pytest.skip("this onnxruntime writes no import-time cache here: nothing to contain")
    assert run(CONTAINED, home, data) == "", "XDG_CACHE_HOME was left set for the rest of the process"
    assert written(home) == []
    assert [p.replace("cache/", ".cache/", 1) for p in written(data)] == plain
