"""The Prism code location: one Definitions object (`defs`), built from the environment."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor
from dagster_aws.s3 import S3Resource

from .core.routing import job_executor
from .deliveries.assets import delivery_manifest
from .deliveries.sensors import MANIFEST_JOB, PROCESS_TITLE_JOB, build_daily_schedule, build_delivery_sensor, build_manifest_fanout_sensor
from .ingest.assets import source_video
from .partitions import daily_partitions, titles_partitions
from .resources import CatalogResource, PrismIOManager, PrismProfile, PrismStorage
from .settings import PrismSettings
from .visual.assets import clip_embeddings, keyframes, posters, shots, visual_pass
from .visual.clip import ClipModelResource
from .audio.assets import audio_analysis, audio_pass, transcript
from .audio.resources import WhisperModelResource
from .qc.assets import daily_qc_report_schedule, qc, qc_report, qc_report_job

# Every asset partitioned by title, in graph order. Signal domains append theirs here.
PER_TITLE_ASSETS = [source_video, visual_pass, shots, keyframes, clip_embeddings, posters, audio_pass, transcript, audio_analysis, qc]
DAILY_ASSETS = [delivery_manifest, qc_report]


def build_resources(settings: PrismSettings) -> dict:
    s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    storage = PrismStorage(
        delivery_root=settings.delivery_root,
        artifact_root=settings.artifact_root,
        scratch_dir=str(Path(settings.data_dir) / "scratch"),
        s3=s3,
    )
    catalog = CatalogResource(url=settings.catalog_url)
    profile = PrismProfile(name=settings.profile)
    return {
        "storage": storage,
        "catalog": catalog,
        "profile": profile,
        "clip": ClipModelResource(profile=profile),
        "whisper": WhisperModelResource(profile=profile),
        "io_manager": PrismIOManager(storage=storage, catalog=catalog),
    }


def build_definitions(settings: PrismSettings | None = None) -> Definitions:
    settings = settings or PrismSettings.from_env()
    process_title = define_asset_job(
        PROCESS_TITLE_JOB,
        selection=AssetSelection.assets(*PER_TITLE_ASSETS),
        partitions_def=titles_partitions,
        description="Every per-title signal for one title partition.",
        executor_def=job_executor(),  # PRISM_EXECUTOR=multiprocess (default) | celery | ecs (docs/deploy.md)
    )
    manifest_job = define_asset_job(
        MANIFEST_JOB,
        selection=AssetSelection.assets(delivery_manifest),  # qc_report has its own job and schedule (after the day's titles ran)
        partitions_def=daily_partitions,
        description="The day's delivery manifest.",
        executor_def=in_process_executor,
    )
    return Definitions(
        assets=[*PER_TITLE_ASSETS, *DAILY_ASSETS],
        jobs=[process_title, manifest_job, qc_report_job],
        sensors=[build_delivery_sensor(settings), build_manifest_fanout_sensor()],
        schedules=[build_daily_schedule(), daily_qc_report_schedule],
        resources=build_resources(settings),
    )


defs = build_definitions()
