"""The `prism` CLI end to end, as a user runs it (subprocess, real instance under DAGSTER_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRISM = str(Path(sys.executable).parent / "prism")


def prism(*args, check=True, timeout=300):
    proc = subprocess.run([PRISM, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"prism {' '.join(args)} -> {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def test_process_and_export_qc_composite(data_dir, media, tmp_path):
    prism("process", str(media / "qc_composite.mp4"), "--title-id", "qc_composite", "--date", "2026-11-20")
    out = tmp_path / "export"
    prism("export", "qc_composite", "--to", str(out))
    title = json.loads((out / "title.json").read_text())
    assert title["schema_version"] == "1.0" and title["title_id"] == "qc_composite" and title["delivery_date"] == "2026-11-20"
    assert abs(title["duration_s"] - 31.0) <= 1 / 24 and title["fps"] == 24.0 and (title["width"], title["height"]) == (640, 360)
    # the run is on the persistent instance: visible in the UI
    from dagster import DagsterInstance

    with DagsterInstance.get() as inst:
        runs = inst.get_runs()
        assert any(r.job_name == "process_title" and r.tags.get("dagster/partition") == "qc_composite" for r in runs)


def test_process_default_title_id_and_profile(data_dir, synth, tmp_path):
    prism("process", str(synth("bars_25fps_4s.mp4")), "--profile", "prod")
    prism("export", "bars_25fps_4s", "--to", str(tmp_path / "e"))
    title = json.loads((tmp_path / "e" / "title.json").read_text())
    assert title["frame_count"] == 100 and title["producer"]["profile"] == "prod"


@pytest.mark.parametrize(
    "name, expected",
    [("empty.mp4", "empty file (0 bytes)"), ("text.mp4", "not a readable media file"), ("truncated.mp4", "not a readable media file"), ("audio_only.m4a.mp4", "no video stream")],
)
def test_process_bad_input_one_line_error(data_dir, synth, name, expected):
    proc = prism("process", str(synth(name)), "--title-id", "bad", check=False)
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["process", "/no/such/file.mp4"], "no such file"),
        (["process", "{media}/qc_composite.mp4", "--date", "2026-13-01"], "invalid date"),
        (["process", "{media}/qc_composite.mp4", "--title-id", "bad id!"], "invalid title id"),
        (["process", "{media}/qc_composite.mp4", "--profile", "gpu"], "unknown profile"),
        (["export", "never_processed", "--to", "/tmp/x"], "no source_video artifact"),
        (["backfill", "--from", "2026-11-05", "--to", "2026-11-01"], "before --from"),
    ],
)
def test_cli_usage_errors(data_dir, media, args, expected):
    proc = prism(*[a.format(media=media) for a in args], check=False)
    assert proc.returncode != 0 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_demo_runs_end_to_end(data_dir, media):
    proc = prism("demo", "--date", "2026-11-21", timeout=600)
    assert "qc_composite" in proc.stdout and "big_buck_bunny" in proc.stdout and "demo_bars" in proc.stdout
    assert "delivery_sensor: 3 run request(s)" in proc.stdout
    for tid in ("qc_composite", "big_buck_bunny", "demo_bars"):
        assert (data_dir / "artifacts" / "titles" / tid / "source_video.json").exists()
    assert (data_dir / "artifacts" / "daily" / "2026-11-21" / "delivery_manifest.parquet").exists()
