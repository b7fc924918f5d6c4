"""Where steps run and how they are retried: op tags read by the executors, the retry policy, and
the executor of the per-title job (docs/deploy.md).

One set of tags routes a step on every supported engine:

- `dagster-celery/queue`: the Celery queue (`gpu` or `cpu`, optionally prefixed by
  `PRISM_CELERY_QUEUE_PREFIX` so that several stacks can share one broker);
- `ecs/container_overrides` + `ecs/run_task_kwargs`: read by dagster-aws's `ecs_executor`, which
  starts each step as its own ECS task; GPU steps ask for one GPU (`resourceRequirements`) and the
  GPU capacity provider (`PRISM_ECS_GPU_CAPACITY_PROVIDER`);
- `prism/device`: informational (shown in the UI and on every step event).

Concurrency *pools* (`pool="gpu"` / `pool="decode"` on the assets) limit how many such steps run at
once across the whole deployment; queues decide *where* they run.

Retries: `TRANSIENT_RETRY_POLICY` retries a step with exponential backoff. Prism's own one-line
`Failure`s (bad input, missing weights, ...) are deterministic and marked `allow_retries=False` by
`core.signals.tracked_signal_run`, so only unexpected errors (S3 throttling or connection resets,
database disconnects, a lost worker) are retried.
"""

from __future__ import annotations

import json
import os

from dagster import Backoff, ExecutorDefinition, Jitter, RetryPolicy, multiprocess_executor

QUEUE_TAG = "dagster-celery/queue"
DEVICE_TAG = "prism/device"
ECS_CONTAINER_OVERRIDES_TAG = "ecs/container_overrides"
ECS_RUN_TASK_KWARGS_TAG = "ecs/run_task_kwargs"

EXECUTORS = ("multiprocess", "celery", "ecs")


def queue_name(kind: str) -> str:
    """The Celery queue of a step kind (`gpu` / `cpu`), with the deployment's optional prefix."""
    if kind not in ("gpu", "cpu"):
        raise ValueError(f"unknown queue kind {kind!r}: gpu or cpu")
    return f"{os.environ.get('PRISM_CELERY_QUEUE_PREFIX', '')}{kind}"


def gpu_op_tags() -> dict[str, str]:
    provider = os.environ.get("PRISM_ECS_GPU_CAPACITY_PROVIDER", "prism-gpu")
    return {
        QUEUE_TAG: queue_name("gpu"),
        DEVICE_TAG: "gpu",
        ECS_CONTAINER_OVERRIDES_TAG: json.dumps({"resourceRequirements": [{"type": "GPU", "value": "1"}]}),
        ECS_RUN_TASK_KWARGS_TAG: json.dumps({"capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1, "base": 0}]}),
    }


def cpu_op_tags() -> dict[str, str]:
    return {QUEUE_TAG: queue_name("cpu"), DEVICE_TAG: "cpu"}


GPU_OP_TAGS = gpu_op_tags()
CPU_OP_TAGS = cpu_op_tags()


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def transient_retry_policy() -> RetryPolicy:
    """Exponential backoff: delay, 2x delay, 4x delay ... (+/- jitter), `PRISM_STEP_RETRIES` times."""
    return RetryPolicy(
        max_retries=_int_env("PRISM_STEP_RETRIES", 3),
        delay=_int_env("PRISM_STEP_RETRY_DELAY_S", 10),
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )


TRANSIENT_RETRY_POLICY = transient_retry_policy()


def celery_executor_config() -> dict:
    """Config of the Celery executor: broker/backend through EnvVar-style `env:` references (the
    URL carries credentials and must never land in the run config), untagged steps on the cpu queue."""
    return {
        "broker": {"env": "PRISM_CELERY_BROKER_URL"},
        "backend": {"env": "PRISM_CELERY_BACKEND_URL"},
        "config_source": {"task_default_queue": queue_name("cpu"), "worker_prefetch_multiplier": 1},
    }


def job_executor(name: str | None = None) -> ExecutorDefinition:
    """The per-title job's executor, from `PRISM_EXECUTOR` (multiprocess | celery | ecs)."""
    name = name or os.environ.get("PRISM_EXECUTOR") or "multiprocess"
    if name == "multiprocess":
        return multiprocess_executor
    if name == "celery":
        for var in ("PRISM_CELERY_BROKER_URL", "PRISM_CELERY_BACKEND_URL"):
            if not os.environ.get(var):
                raise ValueError(f"PRISM_EXECUTOR=celery needs {var} (e.g. pyamqp://user@rabbitmq:5672// and rpc://)")
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(), name="celery")
    if name == "ecs":
        # each step its own ECS task (needs the EcsRunLauncher, deploy/ecs/dagster.ecs.yaml); GPU steps
        # get a GPU and the GPU capacity provider from their op tags
        from dagster_aws.ecs import ecs_executor

        return ecs_executor
    raise ValueError(f"unknown PRISM_EXECUTOR {name!r}: choose one of {', '.join(EXECUTORS)}")
