"""A run whose process is gone is marked failed and releases its pool slots (core/run_health.py):
through the CLI's reaping on the next command, and through the launcher's health check that the
daemon's run monitoring calls. Real processes (killed, zombie, alive), a real SQLite instance."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus

from prism_assets.core.run_health import TAG_HOST, TAG_PID, PrismRunLauncher, process_alive, reap_dead_runs, this_host

from .conftest import MEDIA, REPO

pytestmark = pytest.mark.integration


@op
def noop():
    return None


@job
def tiny():
    noop()


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as inst:
        inst.event_log_storage.set_concurrency_slots("decode", 1)
        yield inst


def started_run(instance, pid: int | None, host: str | None = None, slot: bool = True):
    tags = {TAG_HOST: host or this_host()}
    if pid is not None:
        tags[TAG_PID] = str(pid)
    run = instance.create_run_for_job(tiny, tags=tags, status=DagsterRunStatus.STARTED)
    if slot:
        instance.event_log_storage.claim_concurrency_slot("decode", run.run_id, "visual_pass")
    return run


def claimed(instance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info("decode").active_run_ids


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "120"])


def test_dead_runs_are_failed_and_release_slots_live_ones_are_kept(instance):
    alive = sleeper()
    dead = sleeper()
    zombie = sleeper()
    try:
        run_alive = started_run(instance, alive.pid, slot=False)
        run_dead = started_run(instance, dead.pid)
        run_zombie = started_run(instance, zombie.pid, slot=False)
        run_other_host = started_run(instance, dead.pid, host="another-node", slot=False)
        dead.kill()
        dead.wait()
        zombie.kill()  # not waited for: a zombie until reaped by its parent (this test)
        time.sleep(0.2)
        assert claimed(instance) == {run_dead.run_id}

        reaped = {r[0] for r in reap_dead_runs(instance)}

        assert reaped == {run_dead.run_id, run_zombie.run_id}
        status = {r.run_id: instance.get_run_by_id(r.run_id).status for r in (run_alive, run_dead, run_zombie, run_other_host)}
        assert status == {run_alive.run_id: DagsterRunStatus.STARTED, run_dead.run_id: DagsterRunStatus.FAILURE,
                          run_zombie.run_id: DagsterRunStatus.FAILURE, run_other_host.run_id: DagsterRunStatus.STARTED}
        assert claimed(instance) == set()  # the slot is free at once: the next pooled step starts
        assert reap_dead_runs(instance) == []  # idempotent
    finally:
        for p in (alive, dead, zombie):
            p.kill()
            p.wait()


def test_a_reused_pid_is_not_the_runs_process():
    me = os.getpid()
    assert process_alive(me) and process_alive(me, not_after=time.time())
    assert not process_alive(me, not_after=time.time() - 3600)  # a process newer than the run: the run's own is gone


def test_launcher_health_check_reads_the_run_workers_pid(instance):
    """The daemon's path: the pid comes from Dagster's own "Started process for run" engine event."""
    launcher = PrismRunLauncher()
    launcher.register_instance(instance)
    worker = sleeper()
    try:
        run = started_run(instance, None, slot=False)
        assert launcher.check_run_worker_health(run).status == WorkerStatus.UNKNOWN  # no process recorded yet
        instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid))
        assert launcher.supports_check_run_worker_health
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        worker.kill()
        worker.wait()
        result = launcher.check_run_worker_health(run)
        assert result.status == WorkerStatus.FAILED and "gone" in result.msg
        other = instance.create_run_for_job(tiny, tags={TAG_HOST: "another-node"}, status=DagsterRunStatus.STARTED)
        assert launcher.check_run_worker_health(other).status == WorkerStatus.UNKNOWN
    finally:
        worker.kill()
        worker.wait()


PRISM = [sys.executable, "-m", "prism_assets.cli"]
POOLS = ("decode", "gpu")


def held(inst) -> set[str]:
    return set().union(*(inst.event_log_storage.get_concurrency_info(p).active_run_ids for p in POOLS))


def step_scratch(title: str) -> list[Path]:
    """The step work folders of a title's runs (SignalContext.workdir: <scratch>/<kind>/<title>/<run8>)."""
    return sorted((Path(os.environ["PRISM_DATA_DIR"]) / "scratch").glob(f"*/{title}/*"))


def kill_while_holding_a_slot(inst, env: dict, title: str) -> None:
    """`prism process` of the composite, killed with SIGKILL as soon as its run holds a pool slot and a
    step has its scratch folder (the visual or audio pass is under way)."""
    victim = subprocess.Popen([*PRISM, "process", str(MEDIA / "qc_composite.mp4"), "--title-id", title], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and victim.poll() is None and not (held(inst) and step_scratch(title)):
            time.sleep(0.2)
        assert victim.poll() is None and held(inst) and step_scratch(title), \
            "prism process ended (or never held a pool slot / made its scratch) before it could be killed"
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()


@pytest.mark.e2e
def test_a_killed_prism_process_does_not_block_the_next(data_dir, synth):
    """`kill -9` of `prism process` while it holds a pool slot; the next `prism process` of another title
    reaps it (one line), runs at once and succeeds; the killed run is marked failed."""
    env = dict(os.environ)
    with DagsterInstance.get() as inst:
        kill_while_holding_a_slot(inst, env, "victim")
        t0 = time.monotonic()
        nxt = subprocess.run([*PRISM, "process", str(synth("bars_25fps_4s.mp4")), "--title-id", "next"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
        assert nxt.returncode == 0, nxt.stderr[-2000:]
        assert "victim: process" in nxt.stderr and "marked failed, its pool slots freed" in nxt.stderr, nxt.stderr[-2000:]
        runs = inst.get_runs()
        by_title = {r.tags.get("dagster/partition"): r.status for r in runs}
        nxt_run = next(r for r in runs if r.tags.get("dagster/partition") == "next")
        # the next title ran through: SUCCESS, or FAILURE only because its QC verdict is fail (colour bars: it ends failed at release)
        ran = DagsterRunStatus.SUCCESS if nxt_run.tags.get("prism/qc_verdict") != "fail" else DagsterRunStatus.FAILURE
        assert by_title == {"victim": DagsterRunStatus.FAILURE, "next": ran}, by_title
        assert took < 240, f"the next title took {took:.0f}s"
        assert_closed(data_dir, "victim")
    # the killed title's export is refused whole (nothing written); --partial exports what exists, said so
    dest = data_dir / "export_victim"
    exp = subprocess.run([*PRISM, "export", "victim", "--to", str(dest)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in exp.stderr.splitlines() if line.strip()]
    assert exp.returncode == 1 and len(lines) == 1 and "title victim is incomplete" in lines[0] and "failed (run ended before this step finished" in lines[0], exp.stderr
    assert "missing transcript.json" in lines[0] and "qc.json" in lines[0]
    assert not dest.exists() and not list(data_dir.glob(".export_victim*"))
    exp = subprocess.run([*PRISM, "export", "victim", "--to", str(dest), "--partial"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert exp.returncode == 0 and "warning:" in exp.stderr and (dest / "title.json").is_file(), exp.stderr
    assert not (dest / "qc.json").exists()


def assert_closed(data_dir, title: str) -> None:
    """The dead run left nothing unfinished: no signal run 'started', the title failed, no step scratch."""
    from prism_assets.catalog import Catalog
    from prism_assets.settings import PrismSettings

    cat = Catalog(PrismSettings.from_env().catalog_url)
    runs = cat.signal_runs(title)
    assert runs and not [r for r in runs if r.status == "started"], [(r.signal, r.status) for r in runs]
    assert any(r.status == "failed" and "run ended before this step finished" in (r.error or "") for r in runs)
    assert cat.title(title).status == "failed"
    assert step_scratch(title) == [], step_scratch(title)


@pytest.mark.e2e
def test_the_daemons_run_monitoring_fails_a_killed_run_and_frees_its_slots(data_dir, tmp_path):
    """With `dagster dev` running (the embedded dagster.yaml: PrismRunLauncher + run monitoring), a killed
    `prism process` run is marked failed and its pool slots freed by the daemon alone, no command needed."""
    from .conftest import free_port
    from .support.dagster_ui import DagsterDev, wait_until

    env = dict(os.environ)
    shutil.copyfile(REPO / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    dev = DagsterDev(REPO, env, free_port(), tmp_path / "dagster-dev.log")
    try:
        dev.wait_loaded()
        with DagsterInstance.get() as inst:
            kill_while_holding_a_slot(inst, env, "victim")
            (run,) = inst.get_runs()
            wait_until("run monitoring to fail the killed run", lambda: inst.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE,
                       90, log=dev.log)
            wait_until("its pool slots to be freed", lambda: not held(inst), 120, log=dev.log)
            messages = [e.message for e in inst.all_logs(run.run_id) if e.message]
            assert any("Detected run worker status FAILED" in m and "is gone" in m for m in messages), messages[-5:]
            from prism_assets.catalog import Catalog
            from prism_assets.settings import PrismSettings

            cat = Catalog(PrismSettings.from_env().catalog_url)
            wait_until("close_failed_runs to close the run's signal runs", lambda: not [r for r in cat.signal_runs("victim") if r.status == "started"],
                       90, log=dev.log)
            assert_closed(data_dir, "victim")
    finally:
        dev.stop()


def test_close_dead_run_fails_unfinished_steps_and_removes_their_scratch(tmp_path):
    from datetime import date as _date

    from prism_assets.catalog import Catalog, DeliveryRecord
    from prism_assets.core.tracking import close_dead_run

    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    cat.record_deliveries([DeliveryRecord("t1", _date(2026, 11, 1), "/d/t1.mp4")])
    run_id = "abcdef12-0000-0000-0000-000000000000"
    for sig in ("source_video", "visual_pass", "audio_pass"):
        cat.start_signal_run(partition_key="t1", signal=sig, run_id=run_id, code_version="1", title_id="t1")
    cat.finish_signal_run(partition_key="t1", signal="source_video", run_id=run_id, status="success")
    scratch = tmp_path / "scratch"
    mine = [scratch / "visual" / "t1" / run_id[:8], scratch / "audio" / "t1" / run_id[:8]]
    other = scratch / "visual" / "t1" / "99999999"  # another run of the same title
    for d in [*mine, other]:
        d.mkdir(parents=True)
        (d / "f.pack").write_bytes(b"x")
    titles, removed = close_dead_run(cat, scratch, run_id, "t1", "process 42 of this run is gone")
    assert titles == ["t1"] and removed == 2 and not any(d.exists() for d in mine) and other.exists()
    status = {r.signal: (r.status, r.error) for r in cat.signal_runs("t1")}
    assert status["source_video"] == ("success", None)
    assert status["visual_pass"] == ("failed", "run ended before this step finished: process 42 of this run is gone")
    assert cat.title("t1").status == "failed"
    assert close_dead_run(cat, scratch, run_id, "../t1", "x") == ([], 0)  # idempotent; a hostile partition walks nowhere
    cat.dispose()
