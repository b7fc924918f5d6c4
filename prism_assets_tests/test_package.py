"""What ships: the built wheel holds every file of the package (code and data) and no tests, and
`prism process` runs from a non-editable install of it, outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from .conftest import MEDIA, REPO
from .support.wheel import build_wheel, install_venv

pytestmark = pytest.mark.e2e


def _tracked(prefix: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if line and "__pycache__" not in line}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_ships_every_package_file_and_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {p for p in _tracked("prism_assets") if not p.endswith((".md", ".txt"))}
    missing = sorted(want - names)
    assert not missing, f"tracked package files missing from the wheel: {missing}"
    assert "prism_assets/qc/profiles.yaml" in names and "prism_assets/profiles/dev.yaml" in names
    assert not [n for n in names if n.startswith(("prism_assets_tests", "benchmarks", "deploy/", "docs/"))], "tests or tooling in the wheel"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "prism = prism_assets.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_prism_process_runs_from_the_installed_wheel(wheel, tmp_path):
    """A scratch venv with the wheel installed non-editable (the dependencies are the checkout's
    venv, reused with --no-deps); `prism process` + `prism export` from outside the checkout."""
    venv = tmp_path / "venv"
    install_venv(wheel, venv)
    site = next((venv / "lib").glob("python3*/site-packages"))
    work = tmp_path / "elsewhere"  # not the checkout: nothing of the tree can be imported from here
    work.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISM_", "PYTHONPATH"))}
    env.update(PRISM_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(home), HF_HUB_OFFLINE="1")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import prism_assets; print(prism_assets.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0 and where.stdout.strip().startswith(str(site)), (where.stdout, where.stderr)
    prism = str(venv / "bin" / "prism")
    proc = subprocess.run([prism, "process", str(MEDIA / "qc_composite.mp4"), "--title-id", "wheel1"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QC verdict fail (ebu_r128)" in proc.stdout  # QC ran: its profiles.yaml came with the package
    out = tmp_path / "export"
    exp = subprocess.run([prism, "export", "wheel1", "--to", str(out)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert exp.returncode == 0, exp.stderr
    assert {"title.json", "shots.parquet", "embeddings.parquet", "transcript.json", "qc.json"} <= {p.name for p in out.iterdir()}
