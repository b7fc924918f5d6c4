"""Celery settings of the Prism workers (imported by `celery -A dagster_celery.app` from PYTHONPATH,
like the module `dagster-celery worker start -y` generates). The broker URL carries credentials,
so it is read from the environment (ECS secret / compose .env) and never written to disk."""

import os

broker_url = os.environ["PRISM_CELERY_BROKER_URL"]
result_backend = os.environ.get("PRISM_CELERY_BACKEND_URL", "rpc://")
worker_prefetch_multiplier = 1
# tasks are acknowledged on receipt (Celery's default): a GPU step can run for longer than RabbitMQ's
# consumer_timeout (30 min), which late acknowledgement would trip; a step lost with its worker is
# failed by Dagster and retried by the asset's RetryPolicy / run retries instead.
