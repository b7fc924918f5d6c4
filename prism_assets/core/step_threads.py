"""A title run's independent steps at the same time, inside the run worker's own process: the `threads`
executor (`PRISM_EXECUTOR=threads`, docs/deploy.md).

It is Dagster's in-process executor with one change: up to `max_concurrent` ready foreground steps run at
once, each in a daemon thread, and beside them up to `BACKGROUND_SLOTS` background ones (`prism/cpu` tag: the
niced proxy, which would otherwise hold a slot the critical path needs; `step_slots`), while the run's main
thread keeps Dagster's own bookkeeping (`ActiveExecution`: dependencies, retries, skips, the instance's
concurrency pools) and yields the steps' events as they arrive. Steps spend their time in ffmpeg/tesseract
processes, numpy, ONNX Runtime, CTranslate2 and
torch, which release the GIL, so two branches of a title (the visual pass while the transcript runs, OCR
while the audio analysis runs) really overlap; models loaded once serve every step of the process, no
process is started per step, and the run's memory is one process's.

Why not Dagster's multiprocess executor: a process per step re-imports the code location and reloads
its models (measured side by side in benchmarks/results/executors.json); it stays available
(`PRISM_EXECUTOR=multiprocess`, forkserver, the same step limit).

What it does not do: op hooks (Prism defines none; a job with hooks is refused at launch) and stopping a
running step's thread on termination: the run is marked interrupted at once, its in-flight steps are
reported, and the worker process's exit ends their threads (they are daemon threads).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

from dagster import Field, IntSource, executor
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterInvariantViolationError
from dagster._core.events import DagsterEvent, EngineEventData, StepFailureData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor
from dagster._utils.error import serializable_error_info_from_exc_info
from dagster._utils.interrupts import pop_captured_interrupt

from .cpu_share import quiet_openmp_waits
from .model_release import ModelReleaser
from .routing import BACKGROUND, BACKGROUND_SLOTS, CPU_TAG

_DONE = object()
WAIT_S = 0.5  # longest wait for a step event before pool claims and retries are looked at again
def default_max_concurrent() -> int:
    """Steps of one run at once when nothing is configured: the process's cores (at least 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(2, cores)


def _run_step(step_context, token: int, out: queue.Queue) -> None:
    """A step in its thread: every event to the main thread, then `_DONE`. Dagster turns user errors into
    failure events itself; anything that escapes it (a framework error) becomes the step's failure."""
    try:
        for event in dagster_event_sequence_for_step(step_context):
            out.put((token, event))
    except BaseException:  # noqa: BLE001 - reported as the step's failure, never lost in a thread
        try:
            error = serializable_error_info_from_exc_info(sys.exc_info())
            out.put((token, DagsterEvent.step_failure_event(step_context=step_context,
                                                          step_failure_data=StepFailureData(error=error, user_failure_data=None))))
        except BaseException as exc:  # noqa: BLE001
            out.put((token, exc))
    finally:
        out.put((token, _DONE))


def step_slots(active, foreground: int, background_running: int) -> int:
    """Steps of the run allowed in flight now: `foreground` plus the background steps running (at most
    BACKGROUND_SLOTS), so that a running background step never takes a foreground slot. Set as the run's
    `ActiveExecution` limit before each request for ready steps (it applies it to the steps in flight). Dagster's own
    `tag_concurrency_limits` would say the same but counts a step that then waits for a pool slot as started: a
    foreground step waiting for the `gpu` pool (speaker_turns while CLIP runs) blocked every other ready step
    (core/routing.py)."""
    slots = foreground + min(background_running, BACKGROUND_SLOTS)
    active._max_concurrent = slots  # noqa: SLF001 - ActiveExecution's limit, read by get_steps_to_execute
    return slots


def in_flight(running: dict) -> list[str]:
    return sorted({key for key, _ in running.values()})


def threaded_execution_iterator(job_context: PlanExecutionContext, execution_plan: ExecutionPlan,
                                max_concurrent: int) -> Iterator[DagsterEvent]:
    """Dagster's `inner_plan_execution_iterator` (one log capture for the process, ActiveExecution) with
    up to `max_concurrent` foreground steps in flight (and the background ones beside them)."""
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    for step in execution_plan.get_steps_to_execute_in_topo_order():
        if job_context.job_def.get_all_hooks_for_handle(step.node_handle):
            raise DagsterInvariantViolationError(f"the threads executor runs no op hooks: step {step.key} has some; "
                                                 "use PRISM_EXECUTOR=inprocess or multiprocess")
    events: queue.Queue = queue.Queue()
    # token -> (step key, thread); a token per attempt: a retried step's new thread may start before the old one's end is read
    running: dict[int, tuple[str, threading.Thread]] = {}
    tokens = iter(range(1, 1 << 62))
    background = {s.key for s in execution_plan.get_steps_to_execute_in_topo_order() if s.tags.get(CPU_TAG) == BACKGROUND}
    releaser = ModelReleaser.for_plan(job_context.job_def, execution_plan, job_context.scoped_resources_builder.resource_instance_dict)
    with ExitStack() as stack:
        concurrency = stack.enter_context(InstanceConcurrencyContext(job_context.instance, job_context.dagster_run))
        active = stack.enter_context(execution_plan.start(
            retry_mode=job_context.retry_mode, max_concurrent=max_concurrent, instance_concurrency_context=concurrency,
            step_dependency_config=job_context.step_dependency_config))  # ready steps by `dagster/priority`, highest first
        capture = stack.enter_context(ExitStack())
        from dagster._core.execution.compute_logs import create_compute_log_file_key

        log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        try:
            log_context = capture.enter_context(compute_log_manager.capture_logs(log_key))
            yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
        except Exception:  # noqa: BLE001 - as Dagster's own iterator: an engine event, the run goes on
            yield DagsterEvent.engine_event(job_context, "Exception while setting up compute log capture",
                                            EngineEventData(error=serializable_error_info_from_exc_info(sys.exc_info())))

        try:
            while running or not active.is_complete:
                if pop_captured_interrupt():
                    # termination: no step is waited for; the worker process's exit ends their (daemon) threads
                    yield DagsterEvent.engine_event(job_context, f"Run interrupted with steps in flight: {', '.join(in_flight(running)) or 'none'}",
                                                    EngineEventData.interrupted(in_flight(running)))
                    running.clear()
                    raise DagsterExecutionInterruptedError()
                if not active.is_complete:
                    slots = step_slots(active, max_concurrent, sum(1 for key, _ in running.values() if key in background))
                    for step in active.get_steps_to_execute(limit=max(0, slots - len(running))):
                        step_context = job_context.for_step(step, active.get_known_state())
                        token = next(tokens)
                        thread = threading.Thread(target=_run_step, args=(step_context, token, events), name=f"prism-step-{step.key}", daemon=True)
                        running[token] = (step.key, thread)
                        thread.start()
                    yield from active.concurrency_event_iterator(job_context)
                if not running:
                    yield from active.plan_events_iterator(job_context)  # skips and abandons after a failure
                    if not active.is_complete:
                        active.sleep_til_ready()  # steps wait for a pool slot or a retry
                        time.sleep(0.01)
                    continue
                try:
                    token, event = events.get(timeout=max(0.01, min(WAIT_S, active.sleep_interval() or WAIT_S)))
                except queue.Empty:
                    continue
                if event is _DONE:
                    key, thread = running.pop(token)
                    thread.join()
                    if key not in in_flight(running):  # not already running again (a retry)
                        active.verify_complete(job_context, key)
                        released = releaser.step_done(key)
                        if released:
                            yield DagsterEvent.engine_event(job_context, f"Released {', '.join(released)}: no step left in this run needs "
                                                                         f"{'them' if len(released) > 1 else 'it'} (memory handed back)", EngineEventData())
                    yield from active.plan_events_iterator(job_context)
                    continue
                if isinstance(event, BaseException):
                    raise event
                yield event
                active.handle_event(event)
        except Exception:
            # the orchestration itself failed: the steps in flight finish (their events recorded) before the run
            # ends, so that nothing of this run still writes once it is over
            if running:
                yield DagsterEvent.engine_event(job_context, f"Unexpected error; waiting for the steps in flight: {', '.join(in_flight(running))}",
                                                EngineEventData(error=serializable_error_info_from_exc_info(sys.exc_info())))
            while running:
                token, event = events.get()
                if event is _DONE:
                    running.pop(token)[1].join()
                elif isinstance(event, DagsterEvent):
                    yield event
            raise

        try:
            capture.close()
        except Exception:  # noqa: BLE001
            yield DagsterEvent.engine_event(job_context, "Exception while cleaning up compute log capture",
                                            EngineEventData(error=serializable_error_info_from_exc_info(sys.exc_info())))


class ThreadsExecutor(Executor):
    def __init__(self, retries: RetryMode, max_concurrent: int):
        self._retries = retries
        self.max_concurrent = max(1, int(max_concurrent))

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        keys = execution_plan.step_keys_to_execute
        omp = quiet_openmp_waits()  # before a step imports CTranslate2 / torch
        late = f" (too late for {', '.join(omp['late'])}, already loaded)" if omp["set"] and omp["late"] else ""
        yield DagsterEvent.engine_event(
            plan_context, f"Executing steps in process (pid: {os.getpid()}), up to {self.max_concurrent} at once in threads; "
                          f"OpenMP wait policy {omp['policy']}{late}",
            event_specific_data=EngineEventData.in_process(os.getpid(), keys))

        def iterator(job_context, execution_plan):
            return threaded_execution_iterator(job_context, execution_plan, self.max_concurrent)

        yield from iter(ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=iterator,
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job, retry_mode=plan_context.retry_mode, execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config, dagster_run=plan_context.dagster_run, instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error, output_capture=plan_context.output_capture),
        ))
        yield DagsterEvent.engine_event(plan_context, f"Finished steps in process (pid: {os.getpid()})",
                                        event_specific_data=EngineEventData.in_process(os.getpid(), keys))


def threads_executor_def(max_concurrent: int | None = None):
    """The executor definition; `max_concurrent` (default: the machine's cores) can be set per run in the
    launchpad (`execution: config: max_concurrent: N`)."""
    default = int(max_concurrent or default_max_concurrent())

    @executor(name="threads", config_schema={
        "max_concurrent": Field(IntSource, is_required=False, default_value=default,
                                description="Steps of one run at once (each in a thread of the run worker)."),
        "retries": get_retries_config(),
    })
    def threads_executor(init_context):
        cfg = init_context.executor_config
        return ThreadsExecutor(retries=RetryMode.from_config(cfg["retries"]), max_concurrent=cfg["max_concurrent"])

    return threads_executor
