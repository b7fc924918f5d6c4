"""Dagster resources of the platform: storage (deliveries + artifacts), catalog, profile, IO manager.

Heavy models get one resource each in their signal domain (visual/, audio/), loaded once per
process. The resources here are light and safe to build in every process.
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path

from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, MetadataValue, OutputContext
from dagster_aws.s3 import S3Resource
from pydantic import Field

from .catalog import Catalog, connect
from .core.artifacts import ArtifactStore
from .core.store import LocalStore, ObjectStore, S3Store, open_store
from .partitions import DAILY_PARTITIONS_NAME, SEASONS_PARTITIONS_NAME

# One boto3 S3 client per process and settings. Building a client parses botocore's service JSON
# (~0.2 CPU-s each); the IO manager opens a store for every input and output, so a fresh client per
# call was two thirds of a Celery worker's CPU under load. boto3 clients are thread-safe; the cache
# is keyed by the pid as well, so a forked child never shares its parent's connection pool.
_S3_CLIENTS: dict[tuple, object] = {}
_S3_CLIENTS_LOCK = threading.Lock()
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION")


class PrismStorage(ConfigurableResource):
    """Where deliveries are read and artifacts written: local folders or s3:// URIs."""

    delivery_root: str = Field(description="Folder or s3://bucket/prefix holding <YYYY-MM-DD>/<title_id>/ deliveries")
    artifact_root: str = Field(description="Folder or s3://bucket/prefix for per-title artifacts")
    scratch_dir: str = Field(description="Local scratch folder (S3 sources are staged here for decoding)")
    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings (used for s3:// roots)")
    s3_connect_timeout_s: float = Field(default=5.0, description="S3: seconds to open a connection")
    s3_read_timeout_s: float = Field(default=20.0, description="S3: seconds to wait for each read of a response")
    s3_max_attempts: int = Field(default=3, description="S3: attempts per request (botocore standard retries)")

    def s3_client(self):
        """A boto3 S3 client with the S3Resource's settings and bounded waits: an endpoint that
        accepts but never answers fails after about attempts x read timeout, never hangs. Built once
        per process and settings, then shared."""
        r = self.s3
        key = (os.getpid(), r.profile_name, r.region_name, r.use_ssl, r.verify, r.endpoint_url, r.use_unsigned_session,
               r.aws_access_key_id, r.aws_secret_access_key, r.aws_session_token,
               self.s3_connect_timeout_s, self.s3_read_timeout_s, self.s3_max_attempts,
               *(os.environ.get(v) for v in _AWS_ENV))
        with _S3_CLIENTS_LOCK:
            client = _S3_CLIENTS.get(key)
            if client is None:
                client = _S3_CLIENTS[key] = self._new_s3_client()
        return client

    def _new_s3_client(self):
        import boto3
        from botocore.config import Config

        r = self.s3
        extra = {}
        if r.use_unsigned_session:
            from botocore import UNSIGNED

            extra["signature_version"] = UNSIGNED
        config = Config(connect_timeout=self.s3_connect_timeout_s, read_timeout=self.s3_read_timeout_s,
                        retries={"max_attempts": self.s3_max_attempts, "mode": "standard"}, **extra)
        return boto3.session.Session(profile_name=r.profile_name).client(
            "s3", region_name=r.region_name, use_ssl=r.use_ssl, verify=r.verify, endpoint_url=r.endpoint_url, config=config,
            aws_access_key_id=r.aws_access_key_id, aws_secret_access_key=r.aws_secret_access_key, aws_session_token=r.aws_session_token)

    def _client_factory(self):
        return self.s3_client

    def deliveries(self) -> ObjectStore:
        return open_store(self.delivery_root, self._client_factory())

    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(open_store(self.artifact_root, self._client_factory()))

    def open_uri(self, uri: str) -> tuple[ObjectStore, str]:
        """(store, key) of a delivery URI: s3://bucket/key or an absolute local path."""
        if uri.startswith("s3://"):
            bucket, _, key = uri[5:].partition("/")
            return S3Store(f"s3://{bucket}", self.s3_client()), key
        p = Path(uri)
        return LocalStore(p.parent), p.name

    def stage_local(self, store: ObjectStore, key: str) -> Path:
        """A local path for an object (in place for local stores, downloaded for S3)."""
        return store.download(key, Path(self.scratch_dir) / "staged" / key)

    def stage_bundle(self, asset: str, partition: str, folder: str, only: set[str] | None = None) -> dict[str, Path]:
        """Local paths of the side files of an asset's live bundle (name -> path), downloaded once
        into `<scratch>/<folder>/<partition>/` for an S3 artifact root; the bundle version is in the
        file name, so a re-materialized bundle is fetched again. `only`: these files alone."""
        arts = self.artifacts()
        out = {}
        for name, key in arts.bundle_files(ArtifactStore.base_key(asset, partition)).items():
            if only is not None and name not in only:
                continue
            dest = Path(self.scratch_dir) / folder / partition / key.replace("/", "__")
            out[name] = Path(dest if dest.exists() else arts.store.download(key, dest))
        return out


class CatalogResource(ConfigurableResource):
    """The Prism catalog (SQLite by default, MariaDB through pymysql in production)."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///path or mysql+pymysql://user@host/db",
                     json_schema_extra={"dagster__is_secret": True})  # may carry a password: masked in the UI
    password: str | None = Field(default=None, description="The password, when the URL has none (an EnvVar reference)",
                                 json_schema_extra={"dagster__is_secret": True})

    def get(self) -> Catalog:
        if not self.password:
            return connect(self.url)
        from sqlalchemy.engine import make_url

        return connect(make_url(self.url).set(password=self.password).render_as_string(hide_password=False))


def deep_merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, recursively for nested mappings (lists and scalars replace)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


class PrismProfile(ConfigurableResource):
    """dev = offline models on CPU; prod = production models, GPU when present. The profile YAML
    (prism_assets/profiles/<name>.yaml) overrides the defaults each signal domain declares."""

    name: str = Field(default="dev", description="dev or prod")
    defaults: dict = Field(default_factory=dict, description="Per-domain defaults (section -> settings), from the domains")
    overrides: dict = Field(default_factory=dict, description="Settings on top of the profile YAML (section -> settings)")

    def raw(self) -> dict:
        """The profile's YAML as written."""
        from .settings import profile_yaml

        return profile_yaml(self.name)

    def config(self) -> dict:
        """Domain defaults, the profile's YAML on top, then the overrides: device, model sources,
        per-domain settings."""
        return deep_merge(deep_merge(self.defaults, self.raw()), self.overrides)

    def section(self, name: str) -> dict:
        return self.config().get(name) or {}

    def device(self) -> str:
        wanted = self.config().get("device", "cpu")
        if wanted == "cpu":
            return "cpu"
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:  # pragma: no cover
            return "cpu"


def _meta(context, key: str):
    value = (context.definition_metadata or {}).get(key)
    return getattr(value, "value", value)


class PrismIOManager(ConfigurableIOManager):
    """Stores asset outputs as per-partition artifacts (JSON/Parquet/NPY/bundles) and records them
    in the catalog. Writes are atomic; re-materialization replaces the previous artifact."""

    storage: PrismStorage
    catalog: CatalogResource
    public_url: str | None = Field(default=None, description="Where `prism serve` is reached: a day report's links (HTML, CSV) and a "
                                   "title's viewer page open there")
    title_assets: list[str] = Field(default_factory=list, description="The per-title assets: each title materialization links them all")

    @staticmethod
    def _base(context, asset_key=None) -> str:
        """Artifact base key of an output (or, for an input, of the upstream asset in the same
        partition: the input context carries the partition, the upstream output context may not)."""
        asset = (asset_key or context.asset_key).to_user_string().replace("/", "__")
        partition = context.asset_partition_key if context.has_asset_partitions else None
        daily, kind = False, None
        if partition is not None:
            pdef = context.asset_partitions_def
            daily = getattr(pdef, "name", None) == DAILY_PARTITIONS_NAME or pdef.__class__.__name__ == "DailyPartitionsDefinition"
            kind = "seasons" if getattr(pdef, "name", None) == SEASONS_PARTITIONS_NAME else None
        return ArtifactStore.base_key(asset, partition, daily=daily, kind=kind)

    def _title_links(self, title_id: str) -> dict:
        """From one title's materialization to the same title's other assets (their partition pages in this UI) and to
        its page in the viewer (`prism serve`)."""
        from urllib.parse import quote

        out = {}
        if self.public_url:
            out["viewer"] = MetadataValue.url(f"{self.public_url.rstrip('/')}/titles/{quote(title_id)}")
        if self.title_assets:
            out["this title's assets"] = MetadataValue.md(" · ".join(
                f"[{a}](/assets/{a}?view=partitions&partition={quote(title_id)})" for a in self.title_assets))
        return out

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is None:
            return
        base = self._base(context)
        arts = self.storage.artifacts()
        info = arts.write(base, obj)
        meta = {"artifact_uri": info["uri"], "artifact_format": info["format"], "artifact_bytes": info["bytes"], "artifact_files": info["files"]}
        links = _meta(context, "prism/links") or []
        if links:
            files = arts.bundle_files(base)
            for name in links:
                if name in files:
                    uri = arts.store.uri_for(files[name])
                    meta[name] = MetadataValue.url(uri) if uri.startswith(("s3://", "http")) else MetadataValue.path(uri)
                    if self.public_url and base.startswith("daily/"):  # served by prism serve (serving/api_reports.py): a link that opens
                        _, day, asset = base.split("/", 2)
                        meta[f"open {name}"] = MetadataValue.url(f"{self.public_url.rstrip('/')}/v1/reports/{day}/{asset}/{name}")
        if base.startswith("titles/"):
            meta.update(self._title_links(base.split("/")[1]))
        if base.startswith("daily/") and self.public_url:  # the day followed title by title (serving/days.py)
            meta["day view"] = MetadataValue.url(f"{self.public_url.rstrip('/')}/days/{base.split('/')[1]}")
        context.add_output_metadata(meta)
        if context.has_asset_partitions:
            schema_version = _meta(context, "prism/schema_version")
            code_version = _meta(context, "prism/code_version")
            self.catalog.get().record_output(
                partition_key=context.asset_partition_key,
                signal=context.asset_key.to_user_string(),
                run_id=context.run_id,
                uri=info["uri"],
                fmt=info["format"],
                size_bytes=info["bytes"],
                schema_version=str(schema_version) if schema_version else None,
                code_version=str(code_version) if code_version else None,
            )

    def load_input(self, context: InputContext):
        return self.storage.artifacts().read(self._base(context, context.asset_key))
