"""What ships: the project's wheel, and a scratch environment with it installed non-editable.

The wheel is built by setuptools' PEP 517 backend without isolation (no download). The environment
is a fresh venv holding only the wheel; the dependencies are the checkout's `.venv` (synced from
requirements.lock, as the images are), appended through a .pth file after the venv's own
site-packages, so `import prism_assets` resolves to the installed wheel, never to the tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# How the wheel is built, here and in deploy/images/code.Dockerfile (a test holds the two to the same
# command): setuptools' PEP 517 backend from the environment synced from requirements.lock.
BUILD_WHEEL = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"


def build_wheel(dist: Path) -> Path:
    """Builds in the checkout (its build/ and egg-info folders): one build at a time, across the test workers
    (`pytest -n`) too, by a lock file in the temp folder named after the checkout."""
    with open(tempfile.gettempdir() + f"/prism-wheel-{hashlib.sha1(str(REPO).encode()).hexdigest()[:12]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([sys.executable, "-c", BUILD_WHEEL, str(dist)], cwd=REPO, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"wheel build failed:\n{proc.stderr[-3000:]}")
        shutil.rmtree(REPO / "build", ignore_errors=True)
    return dist / proc.stdout.strip().splitlines()[-1]


def install_venv(wheel: Path, venv: Path) -> Path:
    """A venv with the wheel installed non-editable; returns its bin folder."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(Path(sys.executable).parent.parent.glob("lib/python3*/site-packages"))
    (site / "zz_prism_deps.pth").write_text(f"{deps}\n")
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        raise RuntimeError(f"pip install of the wheel failed:\n{pip.stderr}")
    # console scripts of the dependencies (dagster, dagster-webserver, celery...) run with this venv's python
    for tool in ("dagster", "dagster-webserver", "dagster-daemon", "celery", "moto_server"):
        src = Path(sys.executable).parent / tool
        dest = venv / "bin" / tool
        if src.exists() and not dest.exists():
            body = src.read_text().split("\n", 1)[1]
            dest.write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
            dest.chmod(0o755)
    return venv / "bin"
