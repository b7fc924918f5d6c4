"""What every `prism` command shares: consoles, one-line errors, the persistent Dagster instance,
the real Definitions, and running a title through the per-title job."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console

# Piped output (CI logs, scripts, tests) is not squeezed into 80 columns: tables keep whole ids.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def fail(msg: str, code: int = 1):
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def ensure_dagster_home() -> Path:
    from ..settings import project_root

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(project_root() / ".dagster_home")
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "dagster.yaml"
    src = project_root() / "dagster.yaml"
    if not cfg.exists() and src.exists():
        shutil.copyfile(src, cfg)
    return path


def settings_or_fail(**overrides):
    from ..settings import PrismSettings

    try:
        return PrismSettings.from_env(**overrides)
    except ValueError as exc:
        fail(str(exc))


def setup(profile: str | None):
    """(settings, Definitions, instance) of the code location on the persistent instance."""
    if profile:
        if profile not in ("dev", "prod"):
            fail(f"unknown profile {profile!r}: choose dev or prod")
        os.environ["PRISM_PROFILE"] = profile
    ensure_dagster_home()
    from dagster import DagsterInstance

    from ..core.run_health import reap_dead_runs
    from ..definitions import build_definitions

    settings = settings_or_fail()
    defs = build_definitions(settings)
    instance = DagsterInstance.get()
    reaped = reap_dead_runs(instance)  # a killed earlier run must not hold the pools
    if reaped:
        from ..catalog import connect
        from ..core.tracking import close_dead_run

        for run_id, title, why in reaped:
            close_dead_run(connect(settings.catalog_url), settings.scratch_dir, run_id, title, why)
            err.print(f"[yellow]earlier run {run_id[:8]} of {title}: {why}; marked failed, its pool slots freed[/]", highlight=False)
    return settings, defs, instance


def resources(settings) -> dict:
    from ..definitions import build_resources

    return build_resources(settings)


def run_failure_line(result) -> str:
    from ..core.errors import error_info_line, first_line

    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return first_line(data.user_failure_data.description)
            if data.error:
                return error_info_line(data.error)
    for event in result.all_events:
        if event.event_type_value == "RUN_FAILURE" and event.message:
            return first_line(event.message)
    return "run failed"


def qc_gate_only(result) -> bool:
    """True when a title's run failed only because its QC verdict is fail: the blocking check of the `qc` step
    (`qc_verdict_not_fail`, qc.gate=block) or of the last step `release` (`title_releasable`); the verdict is
    materialized and in the catalog."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return bool(failures) and all(
        e.step_key in ("qc", "release") and e.step_failure_data.error is not None
        and e.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
        for e in failures
    )


def materialize_title(defs, instance, title_id: str, uri: str, delivery_date: str, extra_tags: dict | None = None):
    from ..partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI

    job = defs.resolve_job_def("process_title")
    from ..core.run_health import worker_tags

    tags = {TAG_DELIVERY_URI: uri, TAG_DELIVERY_DATE: delivery_date, "prism/launched_by": "cli", **(extra_tags or {}), **worker_tags()}
    executor = job.executor_def.name
    if executor in ("threads", "multiprocess"):
        # the job's own executor (steps of the title at once), as the daemon's run worker runs it: execute_in_process
        # would replace it with Dagster's one-step-at-a-time in-process executor
        from dagster import build_reconstructable_job, execute_job

        _DEFS[str(id(defs))] = defs  # these Definitions, not ones rebuilt from the environment (tests pass their own)
        recon = build_reconstructable_job("prism_assets.cli.common", "code_location_job", reconstructable_args=(str(id(defs)), "process_title"))
        with execute_job(recon, instance=instance, tags={**tags, "dagster/partition": title_id}, run_config=QUIET_RUN_CONFIG,
                         raise_on_error=False) as result:
            result.all_events  # noqa: B018 - read while the result's instance context is open
            return result
    return job.execute_in_process(partition_key=title_id, instance=instance, tags=tags, raise_on_error=False, run_config=QUIET_RUN_CONFIG)


def code_location_job(key: str, name: str):
    """A job of the Definitions `materialize_title` was given (`_DEFS[key]`): what `execute_job` reconstructs. In the
    same process for the threads executor; in each step's process for the multiprocess one, where the registry is
    empty and the Definitions are built from the same environment."""
    defs = _DEFS.get(key)
    if defs is None:
        from ..definitions import build_definitions

        defs = build_definitions(settings_or_fail())
    return defs.resolve_job_def(name)


_DEFS: dict = {}  # id -> Definitions handed to materialize_title in this process


def update_seasons(defs, instance, settings, title_ids) -> None:
    """After titles were processed by the CLI (no daemon): materialize the season partitions they belong to,
    as the daemon's season_sensor does, and print each season's intros/recaps in one line."""
    from ..core.artifacts import ArtifactStore
    from ..core.store import StoreError
    from ..partitions import SEASONS_PARTITIONS_NAME

    arts = resources(settings)["storage"].artifacts()
    keys = set()
    for tid in title_ids:
        try:
            series = (arts.read(ArtifactStore.base_key("source_video", tid)) or {}).get("series")
        except StoreError:
            series = None
        if series:
            keys.add(series["season_key"])
    if not keys:
        return
    job = defs.resolve_job_def("season_structure_job")
    for key in sorted(keys):
        if not instance.has_dynamic_partition(SEASONS_PARTITIONS_NAME, key):
            instance.add_dynamic_partitions(SEASONS_PARTITIONS_NAME, [key])
        result = job.execute_in_process(partition_key=key, instance=instance, tags={"prism/launched_by": "cli"}, raise_on_error=False,
                                        run_config=QUIET_RUN_CONFIG)
        if not result.success:
            err.print(f"[red]season {key} failed[/]: {run_failure_line(result)}", highlight=False)
            continue
        doc = arts.read(ArtifactStore.base_key("season_structure", key, kind="seasons"))
        eps = doc.get("episodes") or []
        out.print(f"season {key}: {len(eps)} episode(s), {sum(1 for e in eps if e.get('intro'))} intro(s), "
                  f"{sum(1 for e in eps if e.get('recap'))} recap(s), {len(doc.get('pending') or [])} pending", highlight=False)


def delivery_tick(defs, instance, settings, since=None):
    """One evaluation of the real delivery_sensor with the code location's resources; a first listing, so
    deliveries dated long ago are left to backfills unless `since` (a date) says from when to launch."""
    import warnings

    from dagster import build_sensor_context

    from ..deliveries.scan import ScanCursor

    cursor = ScanCursor(since=since.isoformat()).dumps() if since else None

    with warnings.catch_warnings():  # get_sensor_def's notice about unresolved resources: we pass them
        warnings.simplefilter("ignore", UserWarning)
        sensor_def = defs.get_sensor_def("delivery_sensor")
    with build_sensor_context(instance=instance, definitions=defs, sensor_name="delivery_sensor", resources=resources(settings),
                              cursor=cursor) as ctx:
        return sensor_def(ctx)
