"""Dagster resources of the platform: storage (deliveries + artifacts), catalog, profile, IO manager.

Heavy models get one resource each in their signal domain (visual/, audio/), loaded once per
process. The resources here are light and safe to build in every process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext
from dagster_aws.s3 import S3Resource
from pydantic import Field

from .catalog import Catalog
from .core.artifacts import ArtifactStore
from .core.store import ObjectStore, open_store
from .partitions import DAILY_PARTITIONS_NAME


class PrismStorage(ConfigurableResource):
    """Where deliveries are read and artifacts written: local folders or s3:// URIs."""

    delivery_root: str = Field(description="Folder or s3://bucket/prefix holding <YYYY-MM-DD>/<title_id>/ deliveries")
    artifact_root: str = Field(description="Folder or s3://bucket/prefix for per-title artifacts")
    scratch_dir: str = Field(description="Local scratch folder (S3 sources are staged here for decoding)")
    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings (used for s3:// roots)")

    def _client_factory(self):
        return self.s3.get_client

    def deliveries(self) -> ObjectStore:
        return open_store(self.delivery_root, self._client_factory())

    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(open_store(self.artifact_root, self._client_factory()))

    def stage_local(self, store: ObjectStore, key: str) -> Path:
        """A local path for an object (in place for local stores, downloaded for S3)."""
        return store.download(key, Path(self.scratch_dir) / "staged" / key)

    def stage_bundle(self, asset: str, partition: str, folder: str) -> dict[str, Path]:
        """Local paths of the side files of an asset's live bundle (name -> path), downloaded once
        into `<scratch>/<folder>/<partition>/` for an S3 artifact root; the bundle version is in the
        file name, so a re-materialized bundle is fetched again."""
        arts = self.artifacts()
        out = {}
        for name, key in arts.bundle_files(ArtifactStore.base_key(asset, partition)).items():
            dest = Path(self.scratch_dir) / folder / partition / key.replace("/", "__")
            out[name] = Path(dest if dest.exists() else arts.store.download(key, dest))
        return out


@functools.lru_cache(maxsize=8)
def _catalog(url: str) -> Catalog:
    return Catalog(url)


class CatalogResource(ConfigurableResource):
    """The Prism catalog (SQLite by default, MariaDB through pymysql in production)."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///path or mysql+pymysql://user@host/db",
                     json_schema_extra={"dagster__is_secret": True})  # may carry a password: masked in the UI

    def get(self) -> Catalog:
        return _catalog(self.url)


class PrismProfile(ConfigurableResource):
    """dev = offline models on CPU; prod = production models, GPU when present."""

    name: str = Field(default="dev", description="dev or prod")

    def config(self) -> dict:
        """The profile's YAML (prism_assets/profiles/<name>.yaml): device and model sources."""
        import yaml

        path = Path(__file__).resolve().parent / "profiles" / f"{self.name}.yaml"
        if not path.exists():
            raise ValueError(f"unknown profile {self.name!r}: no {path.name}")
        return yaml.safe_load(path.read_text()) or {}

    def device(self) -> str:
        wanted = self.config().get("device", "cpu")
        if wanted == "cpu":
            return "cpu"
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover
            return "cpu"


class PrismIOManager(ConfigurableIOManager):
    """Stores asset outputs as per-partition artifacts (JSON/Parquet/NPY/bundles) and records them
    in the catalog. Writes are atomic; re-materialization replaces the previous artifact."""

    storage: PrismStorage
    catalog: CatalogResource

    @staticmethod
    def _base(context, asset_key=None) -> str:
        """Artifact base key of an output (or, for an input, of the upstream asset in the same
        partition: the input context carries the partition, the upstream output context may not)."""
        asset = (asset_key or context.asset_key).to_user_string().replace("/", "__")
        partition = context.asset_partition_key if context.has_asset_partitions else None
        daily = False
        if partition is not None:
            pdef = context.asset_partitions_def
            daily = getattr(pdef, "name", None) == DAILY_PARTITIONS_NAME or pdef.__class__.__name__ == "DailyPartitionsDefinition"
        return ArtifactStore.base_key(asset, partition, daily=daily)

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is None:
            return
        base = self._base(context)
        info = self.storage.artifacts().write(base, obj)
        meta = context.definition_metadata or {}
        schema_version = meta.get("prism/schema_version")
        schema_version = getattr(schema_version, "value", schema_version)
        context.add_output_metadata({"artifact_uri": info["uri"], "artifact_format": info["format"], "artifact_bytes": info["bytes"], "artifact_files": info["files"]})
        if context.has_asset_partitions:
            self.catalog.get().record_output(
                partition_key=context.asset_partition_key,
                signal=context.asset_key.to_user_string(),
                run_id=context.run_id,
                uri=info["uri"],
                fmt=info["format"],
                size_bytes=info["bytes"],
                schema_version=str(schema_version) if schema_version else None,
                code_version=context.version if hasattr(context, "version") else None,
            )

    def load_input(self, context: InputContext):
        return self.storage.artifacts().read(self._base(context, context.asset_key))
