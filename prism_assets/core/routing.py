"""Where steps run and how they are retried: op tags read by the executors, the retry policy, and
the executor of the per-title job (docs/deploy.md). Everything is derived from `PrismSettings`
(nothing here reads the environment), and applied to every signal by `core.policy.Policy`.

One set of tags routes a step on every supported engine:

- `dagster-celery/queue`: the Celery queue (`gpu` or `cpu`, optionally prefixed by
  `PRISM_CELERY_QUEUE_PREFIX` so that several stacks can share one broker);
- `ecs/container_overrides` + `ecs/run_task_kwargs`: read by dagster-aws's `ecs_executor`, which
  starts each step as its own ECS task; GPU steps ask for one GPU (`resourceRequirements`) and the
  GPU capacity provider (`PRISM_ECS_GPU_CAPACITY_PROVIDER`);
- `prism/device`: informational (shown in the UI and on every step event);
- `prism/cpu`: `foreground` or `background`, read by the `threads` executor (core/step_threads.py): at most
  `run_steps` (default the cores) foreground steps of a run at once, and beside them `BACKGROUND_SLOTS` background
  steps (steps nothing on the critical path waits for, whose processes run niced: the proxy), so that a niced step
  never holds one of the slots the critical path needs. The `multiprocess` executor counts every step against
  `run_steps` (Dagster's run-scoped `tag_concurrency_limits` would count a step that waits for a pool as started).

Concurrency *pools* (`pool="gpu"` / `pool="decode"` on the signals) limit how many such steps run
at once across the whole deployment; queues decide *where* they run.

Retries: the retry policy retries a step with exponential backoff. Prism's own one-line
`Failure`s (bad input, missing weights, ...) are deterministic and marked `allow_retries=False` by
`core.tracking.tracked_signal_run`, so only unexpected errors (S3 throttling or connection resets,
database disconnects, a lost worker) are retried; on the last attempt such an error becomes a
one-line Failure naming it (`core.tracking.final_attempt_names_the_cause`).
"""

from __future__ import annotations

import json

from dagster import Backoff, ExecutorDefinition, Jitter, RetryPolicy, in_process_executor, multiprocess_executor

from ..settings import EXECUTORS, PrismSettings

QUEUE_TAG = "dagster-celery/queue"
DEVICE_TAG = "prism/device"
ECS_CONTAINER_OVERRIDES_TAG = "ecs/container_overrides"
ECS_RUN_TASK_KWARGS_TAG = "ecs/run_task_kwargs"
CPU_TAG = "prism/cpu"
FOREGROUND, BACKGROUND = "foreground", "background"
BACKGROUND_SLOTS = 1  # background steps of a run beside its `run_steps` foreground steps
POOLS = ("decode", "gpu", "index")  # index: the one writer of the search index (limit 1)


def queue_name(kind: str, settings: PrismSettings) -> str:
    """The Celery queue of a step kind (`gpu` / `cpu`), with the deployment's optional prefix."""
    if kind not in ("gpu", "cpu"):
        raise ValueError(f"unknown queue kind {kind!r}: gpu or cpu")
    return f"{settings.celery_queue_prefix}{kind}"


def gpu_op_tags(settings: PrismSettings) -> dict[str, str]:
    return {
        QUEUE_TAG: queue_name("gpu", settings),
        DEVICE_TAG: "gpu",
        ECS_CONTAINER_OVERRIDES_TAG: json.dumps({"resourceRequirements": [{"type": "GPU", "value": "1"}]}),
        ECS_RUN_TASK_KWARGS_TAG: json.dumps(
            {"capacityProviderStrategy": [{"capacityProvider": settings.ecs_gpu_capacity_provider, "weight": 1, "base": 0}]}
        ),
    }


def cpu_op_tags(settings: PrismSettings) -> dict[str, str]:
    return {QUEUE_TAG: queue_name("cpu", settings), DEVICE_TAG: "cpu"}


def op_tags_for_pool(pool: str | None, settings: PrismSettings) -> dict[str, str]:
    """GPU steps (pool `gpu`) go to GPU workers / GPU ECS tasks; every other step to CPU workers."""
    if pool not in (None, *POOLS):
        raise ValueError(f"unknown pool {pool!r}: one of {', '.join(POOLS)} or none")
    return gpu_op_tags(settings) if pool == "gpu" else cpu_op_tags(settings)


def cpu_lane_tags(background: bool) -> dict[str, str]:
    """The step's CPU lane (`prism/cpu`): background steps do not count against the run's foreground steps."""
    return {CPU_TAG: BACKGROUND if background else FOREGROUND}


def transient_retry_policy(settings: PrismSettings) -> RetryPolicy:
    """Exponential backoff: delay, 2x delay, 4x delay ... (+/- jitter), `step_retries` times."""
    return RetryPolicy(
        max_retries=settings.step_retries,
        delay=settings.step_retry_delay_s,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


def celery_executor_config(settings: PrismSettings) -> dict:
    """Config of the Celery executor: broker/backend through EnvVar-style `env:` references (the
    URL carries credentials and must never land in the run config), untagged steps on the cpu queue."""
    return {
        "broker": {"env": "PRISM_CELERY_BROKER_URL"},
        "backend": {"env": "PRISM_CELERY_BACKEND_URL"},
        "config_source": {"task_default_queue": queue_name("cpu", settings), "worker_prefetch_multiplier": 1},
    }


def job_executor(settings: PrismSettings, env: dict | None = None) -> ExecutorDefinition:
    """The executor of every run (`settings.executor`):

    - `inprocess`: the run's steps in the run worker's own process, one after another:
      imports and models (CLIP, Whisper) once per run, no process per step; a title's run through the
      daemon costs about what `prism process` costs (benchmarks/results/daemon_path.json);
    - `threads` (default): the same process, independent steps of the run at once (up to `run_steps`, default the
      cores) in threads (core/step_threads.py): a run's wall time near its critical path;
    - `multiprocess`: a process per step (isolation, steps of one run in parallel on a big node), forked
      from a server that has imported the code location, up to `run_steps` at once;
    - `celery`: steps on Celery workers, GPU steps on the gpu queue; `ecs`: each step an ECS task.

    The Celery broker/backend URLs are checked to be set (`env`, default the process environment)
    but only referenced, never copied, in the run config."""
    import os

    env = os.environ if env is None else env
    name = settings.executor
    if name == "inprocess":
        return in_process_executor
    if name == "threads":
        from .step_threads import threads_executor_def

        return threads_executor_def(settings.run_steps or None)
    if name == "multiprocess":
        from .step_threads import default_max_concurrent

        return multiprocess_executor.configured(
            {"max_concurrent": settings.run_steps or default_max_concurrent(),
             "start_method": {"forkserver": {"preload_modules": ["prism_assets.definitions"]}}}, name="multiprocess")
    if name == "celery":
        for var in ("PRISM_CELERY_BROKER_URL", "PRISM_CELERY_BACKEND_URL"):
            if not env.get(var):
                raise ValueError(f"PRISM_EXECUTOR=celery needs {var} (e.g. pyamqp://user@rabbitmq:5672// and rpc://)")
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(settings), name="celery")
    if name == "ecs":
        # each step its own ECS task (needs the EcsRunLauncher, deploy/ecs/dagster.ecs.yaml); GPU steps
        # get a GPU and the GPU capacity provider from their op tags
        from dagster_aws.ecs import ecs_executor

        return ecs_executor
    raise ValueError(f"unknown PRISM_EXECUTOR {name!r}: choose one of {', '.join(EXECUTORS)}")
