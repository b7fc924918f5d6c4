"""The `prism` CLI end to end, as a user runs it (subprocess, real instance under DAGSTER_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

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
    assert title["schema_version"] == "1.4" and title["title_id"] == "qc_composite" and title["delivery_date"] == "2026-11-20"
    assert abs(title["duration_s"] - 31.0) <= 1 / 24 and title["fps"] == 24.0 and (title["width"], title["height"]) == (640, 360)
    # the visual signals are exported with their images
    import pandas as pd

    shots = pd.read_parquet(out / "shots.parquet")
    assert shots["start_frame"].iloc[0] == 0 and shots["end_frame"].iloc[-1] == 743 and "dissolve" in set(shots["transition_in"])
    kf = pd.read_parquet(out / "keyframes.parquet")
    posters = pd.read_parquet(out / "posters.parquet")
    assert all((out / p).is_file() for p in list(kf["image"]) + list(posters["image"]))
    emb = pd.read_parquet(out / "embeddings.parquet")
    assert len(emb) == 31 + len(kf) and (out / "shot_embeddings.parquet").is_file() and (out / "frame_stats.parquet").is_file()
    # text search over the embeddings (random-init dev weights: mechanics only, and it says so)
    found = prism("search", "qc_composite", "a bird on a branch", "--top", "3")
    assert "best matches" in found.stdout and "random-init" in found.stderr
    rows = [l for l in found.stdout.splitlines() if l.strip().startswith("│ ") and l.split("│")[1].strip().isdigit()]
    assert len(rows) == 3
    # the run is on the persistent instance: visible in the UI
    from dagster import DagsterInstance

    with DagsterInstance.get() as inst:
        runs = inst.get_runs()
        assert any(r.job_name == "process_title" and r.tags.get("dagster/partition") == "qc_composite" for r in runs)


def test_process_and_export_held_out_composite_is_scored(data_dir, tmp_path):
    """Issue 3's own check: `prism process` + `prism export` on media built like the shared composite
    from other pieces of the footage, at another frame rate and size, scored against its exact ground
    truth (hard cuts +-1 frame, a gradual transition when a boundary falls inside it)."""
    import numpy as np
    import pandas as pd

    from .support.bbb_composite import make_bbb_composite
    from .support.shot_scoring import score_boundaries, shots_to_boundaries

    video = tmp_path / "held_out.mp4"
    gt = make_bbb_composite(video, fps=29.97, width=768, height=432, seed=11)
    prism("process", str(video), "--title-id", "held_out_11", "--date", "2026-11-22")
    out = tmp_path / "export"
    prism("export", "held_out_11", "--to", str(out))
    shots = pd.read_parquet(out / "shots.parquet")
    assert shots["start_frame"].iloc[0] == 0 and shots["end_frame"].iloc[-1] == gt["n_frames"] - 1
    assert (shots["start_frame"].iloc[1:].to_numpy() == shots["end_frame"].iloc[:-1].to_numpy() + 1).all()
    score = score_boundaries(shots_to_boundaries(shots), gt)
    assert score["f1"] >= 0.97, score
    kf = pd.read_parquet(out / "keyframes.parquet")
    assert set(kf["shot_index"]) == set(shots.loc[~shots["is_black"], "shot_index"])
    assert all((out / p).is_file() for p in kf["image"])
    emb = pd.read_parquet(out / "embeddings.parquet")
    vecs = np.stack(emb["embedding"].to_numpy())
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3) and np.isfinite(vecs).all()
    stats = pd.read_parquet(out / "frame_stats.parquet")
    posters = pd.read_parquet(out / "posters.parquet")
    assert len(posters) and all((out / p).is_file() for p in posters["image"])
    assert (stats.set_index("frame").loc[posters["frame"], "black_ratio"] < 0.5).all()


def test_process_and_export_audio_only_korean(data_dir, media, tmp_path, monkeypatch):
    """An audio-only delivery runs the audio signals (transcript, audio.json) and skips the picture
    ones; the Korean speech is detected and transcribed by the offline multilingual model. onnxruntime
    writes nothing under the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    prism("process", str(media / "ko.mp3"), "--date", "2026-11-20")
    # onnxruntime's device-id cache is not under home (containment itself: test_caches); matplotlib's
    # font cache and torch's hub folder still are (MPLCONFIGDIR / TORCH_HOME are the operator's)
    assert not (home / ".cache" / "Microsoft").exists(), sorted(p.name for p in (home / ".cache").rglob("*"))
    out = tmp_path / "exp"
    prism("export", "ko", "--to", str(out))
    title = json.loads((out / "title.json").read_text())
    assert title["flags"] == ["audio_only"] and title["fps"] is None and title["video"] is None
    tr = json.loads((out / "transcript.json").read_text())
    assert tr["language"] == "ko" and tr["language_probability"] > 0.8 and tr["segments"]
    assert any("\uac00" <= ch <= "\ud7a3" for s in tr["segments"] for ch in s["text"]), tr["segments"]  # Hangul
    audio = json.loads((out / "audio.json").read_text())
    assert audio["tracks"][0]["detected_language"] == "ko" and -40 < audio["tracks"][0]["integrated_lufs"] < -5
    assert (out / "transcript.srt").is_file() and not (out / "shots.parquet").exists() and not (out / "qc.json").exists()


def test_process_default_title_id_and_profile(data_dir, synth, tmp_path):
    # prod wants pretrained CLIP weights from the hub; offline (HF_HUB_OFFLINE=1, set for the whole
    # suite) they cannot load: the model steps fail with one clear line, never a silent random init
    proc = prism("process", str(synth("bars_25fps_4s.mp4")), "--profile", "prod", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    # (the first model step to fail is reported: CLIP's or Whisper's, whichever the executor ran first)
    assert len(lines) == 1 and ("cannot load open_clip ViT-B-32 pretrained 'laion2b_s34b_b79k'" in lines[-1]
                                or "cannot load Whisper model 'large-v3'" in lines[-1]), proc.stderr
    # the title id came from the file name; its export is refused whole, naming the failed model steps
    refused = prism("export", "bars_25fps_4s", "--to", str(tmp_path / "e"), check=False)
    assert refused.returncode == 1 and "is incomplete" in refused.stderr and "cannot load" in refused.stderr and not (tmp_path / "e").exists()
    # --partial: the steps that need no model ran under prod
    prism("export", "bars_25fps_4s", "--to", str(tmp_path / "e"), "--partial")
    title = json.loads((tmp_path / "e" / "title.json").read_text())
    assert title["frame_count"] == 100 and title["producer"]["profile"] == "prod"
    assert (tmp_path / "e" / "shots.parquet").exists() and not (tmp_path / "e" / "embeddings.parquet").exists()


@pytest.mark.parametrize(
    "name, expected",
    [("empty.mp4", "empty file (0 bytes)"), ("text.mp4", "not a readable media file"), ("truncated.mp4", "not a readable media file")],
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
        (["search", "never_processed", "anything"], "has no embeddings"),
        (["search", "bad/id", "anything"], "invalid title id"),
        (["export", "bad\n", "--to", "/tmp/x"], "invalid title id"),
        (["backfill", "--from", "2026-11-05", "--to", "2026-11-01"], "before --from"),
        (["backfill", "--from", "2026-11-05", "--to", "2999-01-01"], "--to 2999-01-01 is in the future"),
        (["process", "{media}/qc_composite.mp4", "--date", "2999-01-01"], "--date 2999-01-01 is in the future"),
    ],
)
def test_cli_usage_errors(data_dir, media, args, expected):
    proc = prism(*[a.format(media=media) for a in args], check=False)
    assert proc.returncode != 0 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("case", ["wrong_password", "closed_port", "s3_refused"])
def test_unreachable_services_give_one_line_without_secrets(data_dir, media, monkeypatch, case):
    """The catalog database refusing the password or not listening, S3 refusing connections: one line on
    stderr naming what failed, exit 1, the password nowhere; --debug adds the traceback (still no password)."""
    secret = "pw-do-not-print-7f3a"
    if case == "s3_refused":
        monkeypatch.setenv("PRISM_ARTIFACT_ROOT", "s3://prism-art/a")
        monkeypatch.setenv("PRISM_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        monkeypatch.setenv("PRISM_STEP_RETRIES", "1")
        monkeypatch.setenv("PRISM_STEP_RETRY_DELAY_S", "0")
        args, expected = ["process", str(media / "jfk.flac"), "--title-id", "s3down"], "Could not connect to the endpoint URL"
    else:
        port = 3306 if case == "wrong_password" else 9
        monkeypatch.setenv("PRISM_CATALOG_URL", f"mysql+pymysql://root:{secret}@127.0.0.1:{port}/test")
        args = ["backfill", "--from", "2026-11-01", "--to", "2026-11-01"]
        (data_dir / "deliveries" / "2026-11-01" / "t1").mkdir(parents=True)
        (data_dir / "deliveries" / "2026-11-01" / "t1" / "t1.mp4").write_bytes(b"x")
        expected = "catalog database mysql+pymysql://root:***@127.0.0.1:" + str(port) + "/test: (" + ("1045" if port == 3306 else "2003")
    proc = prism(*args, check=False, timeout=240)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert secret not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    if case != "s3_refused":
        dbg = prism("--debug", *args, check=False, timeout=240)
        assert dbg.returncode == 1 and "Traceback" in dbg.stderr and expected in dbg.stderr.splitlines()[-1]
        assert secret not in dbg.stdout + dbg.stderr


def test_demo_runs_end_to_end(data_dir, media):
    proc = prism("demo", "--date", "2026-11-21", timeout=600)
    assert "qc_composite" in proc.stdout and "big_buck_bunny" in proc.stdout and "demo_bars" in proc.stdout
    assert "delivery_sensor: 3 run request(s)" in proc.stdout
    for tid in ("qc_composite", "big_buck_bunny", "demo_bars"):
        assert (data_dir / "artifacts" / "titles" / tid / "source_video.json").exists()
    assert (data_dir / "artifacts" / "daily" / "2026-11-21" / "delivery_manifest.parquet").exists()
