"""Shared fixtures: isolated data dirs, a MariaDB scratch database, moto's S3 server on loopback,
and synthetic media generated with ffmpeg (exact ground truth by construction)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# This machine has no route to model hubs: make that explicit so a hub lookup fails at once with a
# clear error instead of retrying for a minute (production air-gapped nodes do the same).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture
def media() -> Path:
    if not (MEDIA / "qc_composite.mp4").exists():
        pytest.fail(f"shared test media missing at {MEDIA}")
    return MEDIA


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh Prism data dir and DAGSTER_HOME; env vars point the settings at them."""
    d = tmp_path / "prism"
    d.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    for var in ("PRISM_DELIVERY_ROOT", "PRISM_ARTIFACT_ROOT", "PRISM_CATALOG_URL", "PRISM_S3_ENDPOINT_URL", "PRISM_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PRISM_DATA_DIR", str(d))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return d


@pytest.fixture
def settings(data_dir):
    from prism_assets.settings import PrismSettings

    return PrismSettings.from_env()


@pytest.fixture(scope="session")
def mariadb_url():
    """A scratch database on the real MariaDB server at 127.0.0.1:3306."""
    import pymysql

    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB at 127.0.0.1:3306 is not reachable ({exc}); .ci/setup.sh starts it")
    name = f"prism_test_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 API server as a real process on loopback (no patched client)."""
    port = free_port()
    proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """AWS env for the moto server plus a fresh bucket; returns (endpoint, bucket, client)."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("PRISM_S3_ENDPOINT_URL", s3_server)
    bucket = f"prism-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return s3_server, bucket, client


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """Generate synthetic media once per session: name -> path."""
    d = tmp_path_factory.mktemp("synth")
    cache: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name in cache:
            return cache[name]
        p = d / name
        if name == "bars_25fps_4s.mp4":  # 100 frames, 320x240, stereo 48 kHz tone
            ffmpeg("-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=4", "-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000:d=4",
                   "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(p))
        elif name == "noaudio_30fps_2s.mp4":  # 60 frames, no audio
            ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x120:r=30:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(p))
        elif name == "two_hours.mp4":  # 7200 s at 1 fps, 32x32, mono 8 kHz: a 2-hour title, small on disk
            ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=32x32:r=1:d=7200", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                   "-t", "7200", "-c:v", "libx264", "-preset", "ultrafast", "-g", "600", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "8k", str(p))
        elif name == "empty.mp4":
            p.write_bytes(b"")
        elif name == "text.mp4":
            p.write_text("this is not a video, just text named .mp4\n" * 20)
        elif name == "truncated.mp4":  # moov at the end (default mux), cut in half: no index
            src = make("bars_25fps_4s.mp4")
            data = src.read_bytes()
            p.write_bytes(data[: len(data) // 2])
        elif name == "truncated_faststart.mp4":  # moov first, media data cut: index points past EOF
            full = d / "faststart_full.mp4"
            ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x120:r=25:d=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(full))
            data = full.read_bytes()
            p.write_bytes(data[: int(len(data) * 0.6)])
        elif name == "audio_only.m4a.mp4":
            ffmpeg("-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=2", "-c:a", "aac", str(p))
        elif name == "vfr.mkv":  # variable frame rate: frames 0-29 at 1/30 s, then 1/10 s
            ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x120:r=30:d=2", "-vf", "setpts='if(lt(N,30),N/30,1+(N-30)/10)/TB'", "-fps_mode", "vfr",
                   "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(p))
        else:
            raise KeyError(name)
        cache[name] = p
        return p

    return make


def read_artifact(settings, asset: str, title_id: str):
    """(artifact store, base key, main artifact) of one title's asset, as the assets stored it."""
    from prism_assets.core.artifacts import ArtifactStore
    from prism_assets.definitions import build_resources

    arts = build_resources(settings)["storage"].artifacts()
    base = ArtifactStore.base_key(asset, title_id)
    return arts, base, arts.read(base)
