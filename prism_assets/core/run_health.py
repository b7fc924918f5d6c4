"""Dead runs release what they hold: a run whose process is gone is marked failed and its pool slots freed.

A run killed with `kill -9` (or an out-of-memory kill, a lost machine) never reports its end: it stays
STARTED and keeps its `decode`/`gpu` pool slots, and every later pooled step waits for them. Dagster's
run monitoring handles this through the run launcher's worker health check, which the default launcher
does not implement on one machine. Two doors, one check (`worker_status`):

- **The daemon** (`dagster dev`, the embedded instance): `PrismRunLauncher` is the default launcher plus
  a health check. The run worker's pid is the one Dagster records when the worker starts ("Started
  process for run (pid: N)"); the launcher tags the run with this host when it launches it through a
  code server on this machine. Run monitoring then marks a run whose worker is gone as failed and frees
  its slots `free_slots_after_run_end_seconds` later (dagster.yaml).
- **The CLI** (`prism process`/`backfill`/`demo`, runs in its own process on the same instance): each
  run is tagged with the CLI's host and pid, and every command first reaps this host's dead runs
  (`reap_dead_runs`): marked failed with one line, slots freed at once, so a re-run starts at once
  even when no daemon is running.

What a dead run leaves in Prism's own books is closed by the same two doors: its signal runs still
`started` in the catalog become failed and its step scratch folders are removed (`close_dead_run`),
by the CLI right after reaping, and by the `close_failed_runs` run-failure sensor (core/dead_run_sensor.py) for runs that run
monitoring (or anything else) failed.

A process is alive when its pid exists, is not a zombie and started no later than the run (a pid reused
by a newer process is not the run's). Runs of other hosts are left alone (UNKNOWN): their launcher or
the platform (ECS, Kubernetes) answers for them.
"""

from __future__ import annotations

import os
import socket

from dagster import DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

TAG_HOST = "prism/host"
TAG_PID = "prism/pid"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
START_SLACK_S = 2.0  # clock ticks and event timestamps: a process started this long after the run is a newer one


def this_host() -> str:
    return socket.gethostname()


def worker_tags() -> dict[str, str]:
    """Tags for a run executed in this process (the CLI)."""
    return {TAG_HOST: this_host(), TAG_PID: str(os.getpid())}


def _process_start(pid: int) -> float | None:
    """Epoch seconds the process started (Linux /proc), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def process_alive(pid: int, not_after: float | None = None) -> bool:
    """Whether the process exists, is not a zombie and (with `not_after`) started no later than that time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    if _zombie(pid):
        return False
    start = _process_start(pid) if not_after is not None else None
    return start is None or start <= not_after + START_SLACK_S


def worker_pid(instance, run) -> int | None:
    """The run's process: the CLI's (tag) or the run worker Dagster started (its engine event)."""
    if run.tags.get(TAG_PID, "").isdigit():
        return int(run.tags[TAG_PID])
    from dagster import DagsterEventType

    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        pid = event and event.engine_event_data and event.engine_event_data.metadata.get("pid")
        if pid is not None and str(pid.value).isdigit() and "Started process for run" in (entry.message or ""):
            return int(pid.value)
    return None


def worker_status(instance, run) -> tuple[WorkerStatus, str]:
    """RUNNING or FAILED for this host's runs whose process is known; UNKNOWN otherwise."""
    if run.tags.get(TAG_HOST) != this_host():
        return WorkerStatus.UNKNOWN, "run of another host"
    pid = worker_pid(instance, run)
    if pid is None:
        return WorkerStatus.UNKNOWN, "no process recorded yet"
    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record and record.start_time else None
    if process_alive(pid, started):
        return WorkerStatus.RUNNING, f"process {pid} alive"
    return WorkerStatus.FAILED, f"process {pid} of this run is gone (killed or crashed)"


def reap_dead_runs(instance, host: str | None = None) -> list[tuple[str, str, str]]:
    """This host's STARTED runs whose process is gone: marked failed, their pool slots freed.
    Returns (run id, title, reason) for each."""
    host = host or this_host()
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={TAG_HOST: host})):
        run = record.dagster_run
        status, why = worker_status(instance, run)
        if status != WorkerStatus.FAILED:
            continue
        instance.report_run_failed(run, f"{why}: marked failed, its pool slots freed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append((run.run_id, run.tags.get("dagster/partition", "?"), why))
    return reaped


class PrismRunLauncher(DefaultRunLauncher):
    """The default launcher (run workers started by the code server) plus a worker health check, so that
    run monitoring fails runs whose worker died. Runs are tagged with this host only when their code
    server runs on this machine (a code location `dagster dev` manages, or a gRPC server on loopback)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def launch_run(self, context) -> None:
        run = context.dagster_run
        origin = run.remote_job_origin.repository_origin.code_location_origin if run.remote_job_origin else None
        if origin is not None and getattr(origin, "host", "localhost") in LOCAL_HOSTS:
            self._instance.add_run_tags(run.run_id, {TAG_HOST: this_host()})
        super().launch_run(context)

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        status, why = worker_status(self._instance, run)
        return CheckRunHealthResult(status, why)

