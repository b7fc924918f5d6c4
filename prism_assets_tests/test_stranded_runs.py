"""A run the daemon created but failed to queue (storage error between the two) is queued later."""

from __future__ import annotations

import time

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, instance_for_test

from prism_assets.core.stranded_runs import STRANDED_AFTER_S, enqueue_stranded


def _origin():
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

    return RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("prism"), "__repository__"), "process_title")


QUEUED = {"run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}}


def test_a_run_left_not_started_is_queued_after_the_grace_period():
    with instance_for_test(overrides=QUEUED) as inst:  # the daemon's queue, as in dagster.yaml
        stranded = create_run_for_test(inst, job_name="process_title", status=DagsterRunStatus.NOT_STARTED, remote_job_origin=_origin())
        in_process = create_run_for_test(inst, job_name="process_title", status=DagsterRunStatus.NOT_STARTED)  # no origin: not ours to queue
        running = create_run_for_test(inst, job_name="process_title", status=DagsterRunStatus.STARTED)
        now = time.time()
        assert enqueue_stranded(inst, now=now) == []  # just created: the daemon may be queuing it right now
        assert inst.get_run_by_id(stranded.run_id).status == DagsterRunStatus.NOT_STARTED
        assert enqueue_stranded(inst, now=now + STRANDED_AFTER_S + 1) == [stranded.run_id]
        assert inst.get_run_by_id(stranded.run_id).status == DagsterRunStatus.QUEUED
        assert inst.get_run_by_id(running.run_id).status == DagsterRunStatus.STARTED
        assert inst.get_run_by_id(in_process.run_id).status == DagsterRunStatus.NOT_STARTED
        assert enqueue_stranded(inst, now=now + STRANDED_AFTER_S + 1) == []  # once


def test_nothing_is_queued_where_no_daemon_dequeues():
    """Under the default run coordinator (runs launched at once, no queue) a queued run would never
    be launched: the sensor leaves runs alone there."""
    with DagsterInstance.ephemeral() as inst:  # DefaultRunCoordinator
        run = create_run_for_test(inst, job_name="process_title", status=DagsterRunStatus.NOT_STARTED, remote_job_origin=_origin())
        assert enqueue_stranded(inst, now=time.time() + STRANDED_AFTER_S + 1) == []
        assert inst.get_run_by_id(run.run_id).status == DagsterRunStatus.NOT_STARTED
