"""The Prism code location: one Definitions object (`defs`), built from the settings.

`build_definitions(settings)` imports every signal domain of `settings.domains`
(prism_assets/domains.py, plus PRISM_EXTRA_DOMAINS), builds each domain's Definitions (its signals
as assets with their checks, its resources, jobs, schedules and sensors), merges them with the
platform's own (resources, the per-title job, the SLA sensor) through `Definitions.merge`, and maps
the shared freshness policy (`core.policy.Policy`) and each group's description over every asset
in one place.
"""

from __future__ import annotations

import os
import warnings

from dagster import AssetSelection, AssetSpec, Definitions, EnvVar, PreviewWarning, define_asset_job
from dagster_aws.s3 import S3Resource

from .core.dead_run_sensor import build_close_failed_runs_sensor
from .core.domain import Domain, DomainContext, all_signals, load_domains, qc_sources
from .core.metrics import metrics_sensors
from .core.policy import Policy
from .core.pyav_logging import keep_pyav_logging_off
from .core.routing import job_executor
from .core.signal import TITLES
from .core.sla import build_sla_sensor
from .core.stranded_runs import enqueue_stranded_runs
from .core.title_graph import TitleGraph
from .deliveries.registry import PROCESS_TITLE_JOB
from .partitions import titles_partitions
from .resources import CatalogResource, PrismIOManager, PrismProfile, PrismStorage
from .settings import PrismSettings

# every process that runs assets loads this module first (code server, run workers, the CLI): PyAV's log callback
# stays GIL-free there before any step can import torchvision (core/pyav_logging.py)
keep_pyav_logging_off()

GROUP_METADATA = "prism/group"
MAX_RUNTIME_TAG = "dagster/max_runtime"  # run monitoring fails a run still going after this many seconds


def referenced(var: str, value: str):
    """`value` as an EnvVar reference when it came from the environment variable `var`: Dagster keeps a
    resource's config in the job snapshots it stores (Postgres/MySQL), so a URL that may carry a
    password must be referenced there, never copied; it is resolved in each run's own process."""
    return EnvVar(var) if value and os.environ.get(var) == value else value


def platform_resources(settings: PrismSettings, profile: PrismProfile, *, for_definitions: bool = False,
                       title_assets: tuple[str, ...] | list[str] = ()) -> dict:
    """The platform's resources. In the Definitions (`for_definitions`), the catalog URL is an EnvVar
    reference; the CLI and tests use the resources directly, with the value."""
    s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    storage = PrismStorage(
        delivery_root=settings.delivery_root,
        artifact_root=settings.artifact_root,
        scratch_dir=str(settings.scratch_dir),
        s3=s3,
    )
    catalog = CatalogResource(url=referenced("PRISM_CATALOG_URL", settings.catalog_url) if for_definitions else settings.catalog_url)
    if for_definitions and not os.environ.get("PRISM_CATALOG_URL") and os.environ.get("PRISM_CATALOG_HOST") and os.environ.get("PRISM_CATALOG_PASSWORD"):
        # the URL assembled from its parts (deploy/infra): the rotated password stays a reference, never in a stored snapshot
        from sqlalchemy.engine import URL, make_url

        u = make_url(settings.catalog_url)
        bare = URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database, query=u.query)
        catalog = CatalogResource(url=bare.render_as_string(hide_password=False), password=EnvVar("PRISM_CATALOG_PASSWORD"))
    return {"storage": storage, "catalog": catalog, "profile": profile, "io_manager": PrismIOManager(storage=storage, catalog=catalog,
                                                                                                 public_url=settings.api_public_url,
                                                                                                 title_assets=list(title_assets))}


def _context(settings: PrismSettings, domains: list[Domain]) -> DomainContext:
    profile = PrismProfile(name=settings.profile, defaults={d.name: d.defaults for d in domains if d.defaults},
                           overrides=dict(settings.profile_overrides))
    return DomainContext(settings=settings, policy=Policy(settings), profile=profile, signals=tuple(all_signals(domains)))


def build_resources(settings: PrismSettings) -> dict:
    """Every resource of the code location (platform + domains), e.g. for the CLI and tests."""
    domains = load_domains(settings.domains)
    ctx = _context(settings, domains)
    out = platform_resources(settings, ctx.profile, title_assets=per_title_assets(domains))
    for d in domains:
        out.update(d.resources(ctx) if d.resources else {})
    return out


def per_title_assets(domains: list[Domain]) -> list[str]:
    """Every per-title asset key, in declaration (graph) order."""
    return [o for s in all_signals(domains) if s.partitions == TITLES for o in s.output_names]


def build_definitions(settings: PrismSettings | None = None) -> Definitions:
    settings = settings or PrismSettings.from_env()
    domains = load_domains(settings.domains)
    ctx = _context(settings, domains)
    signals = all_signals(domains)
    process_title = define_asset_job(
        PROCESS_TITLE_JOB,
        selection=AssetSelection.assets(*per_title_assets(domains)),
        partitions_def=titles_partitions,
        description="Every per-title signal for one title partition.",
        tags={MAX_RUNTIME_TAG: str(settings.run_max_runtime_s)},
    )
    platform = Definitions(
        executor=job_executor(settings),  # every run's executor: PRISM_EXECUTOR=inprocess (default) | multiprocess | celery | ecs
        jobs=[process_title],
        sensors=[build_sla_sensor(TitleGraph.from_signals(signals), ctx.policy), build_close_failed_runs_sensor(PROCESS_TITLE_JOB), enqueue_stranded_runs,
                 *metrics_sensors(settings)],  # cloudwatch_metrics: only with PRISM_METRICS_NAMESPACE
        resources=platform_resources(settings, ctx.profile, for_definitions=True, title_assets=per_title_assets(domains)),
    )
    sources = qc_sources(domains)
    merged = Definitions.merge(platform, *(d.definitions(ctx, sources) for d in domains))
    groups = {d.name: d.description for d in domains}

    def shared(spec: AssetSpec) -> AssetSpec:
        """What every asset shares, applied once: its freshness policy, and its group's description (Dagster
        1.13 has no group descriptions: each asset shows its own as metadata `prism/group`)."""
        spec = ctx.policy.apply_freshness(spec)
        about = groups.get(spec.group_name)
        return spec.merge_attributes(metadata={GROUP_METADATA: f"{spec.group_name}: {about}"}) if about else spec

    with warnings.catch_warnings():  # map_resolved_asset_specs is a preview API of 1.13, used as dagster-open-platform does
        warnings.simplefilter("ignore", PreviewWarning)
        return merged.map_resolved_asset_specs(func=shared)


defs = build_definitions()
