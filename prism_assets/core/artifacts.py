"""Per-partition artifacts (JSON, Parquet, NPY, images) on an ObjectStore.

Layout (see docs/schema.md):

    titles/<title_id>/<asset>.json | .parquet | .npy        single-file artifacts
    titles/<title_id>/<asset>/<version>/<files...>           multi-file bundles (e.g. images)
    titles/<title_id>/<asset>/CURRENT                        pointer to the live bundle version
    daily/<YYYY-MM-DD>/<asset>.json                          daily-partitioned artifacts

Single files are replaced atomically. A bundle is written to a fresh version folder and becomes
visible only when its CURRENT pointer (one atomic PUT) names it; older versions are then
deleted. Readers resolve CURRENT, so they never see a half-written bundle. Re-materialization
overwrites cleanly.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .store import ObjectStore, StoreError


@dataclass
class Bundle:
    """A multi-file artifact: a main table or document plus side files (images, subtitles)."""

    main: Any  # dict (-> main.json) or DataFrame (-> main.parquet)
    files: dict[str, bytes | Path] = field(default_factory=dict)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (datetime,)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False).encode()


def encode(obj: Any) -> tuple[str, bytes]:
    """Serialize a single-file artifact: returns (extension, bytes)."""
    if isinstance(obj, pd.DataFrame):
        buf = io.BytesIO()
        obj.to_parquet(buf, index=False)
        return "parquet", buf.getvalue()
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return "npy", buf.getvalue()
    if isinstance(obj, (dict, list)):
        return "json", dumps_json(obj)
    raise TypeError(f"cannot store an artifact of type {type(obj).__name__}")


def decode(ext: str, data: bytes) -> Any:
    if ext == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if ext == "json":
        return json.loads(data)
    raise StoreError(f"unknown artifact format {ext}")


EXTENSIONS = ("json", "parquet", "npy")


class ArtifactStore:
    def __init__(self, store: ObjectStore):
        self.store = store

    @staticmethod
    def base_key(asset: str, partition: str | None, daily: bool = False, kind: str | None = None) -> str:
        """`titles/<title>/<asset>`, `daily/<date>/<asset>` (daily) or `<kind>/<key>/<asset>` (e.g. kind `seasons`)."""
        if partition is None:
            return f"global/{asset}"
        return f"{kind or ('daily' if daily else 'titles')}/{partition}/{asset}"

    def write(self, base: str, obj: Any) -> dict:
        """Write obj under base key; returns a description {uri, format, bytes, files}."""
        if isinstance(obj, Bundle):
            return self._write_bundle(base, obj)
        ext, data = encode(obj)
        for other in EXTENSIONS:  # a format change must not leave a stale twin behind
            if other != ext and self.store.exists(f"{base}.{other}"):
                self.store.delete_prefix(f"{base}.{other}")
        self.store.put_bytes(f"{base}.{ext}", data)
        if self._pointer(base) is not None:  # a bundle lived here: retire it (pointer first)
            self.store.delete_prefix(f"{base}/CURRENT")
            self.store.delete_prefix(base)
        return {"uri": self.store.uri_for(f"{base}.{ext}"), "format": ext, "bytes": len(data), "files": 1}

    def _write_bundle(self, base: str, bundle: Bundle) -> dict:
        version = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        ext, main = encode(bundle.main)
        total = len(main)
        self.store.put_bytes(f"{base}/{version}/main.{ext}", main)
        names = []
        for name, content in bundle.files.items():
            key = f"{base}/{version}/{name}"
            if isinstance(content, Path):
                self.store.put_file(key, content)
                total += content.stat().st_size
            else:
                self.store.put_bytes(key, content)
                total += len(content)
            names.append(name)
        pointer = {"version": version, "main": f"main.{ext}", "files": names}
        self.store.put_bytes(f"{base}/CURRENT", dumps_json(pointer))  # the atomic switch
        for old in self.store.list_dirs(base):  # previous versions and leftovers of crashed writes
            if old != version:
                self.store.delete_prefix(f"{base}/{old}")
        for other in EXTENSIONS:
            if self.store.exists(f"{base}.{other}"):
                self.store.delete_prefix(f"{base}.{other}")
        return {"uri": self.store.uri_for(f"{base}/{version}"), "format": f"bundle+{ext}", "bytes": total, "files": 1 + len(names)}

    def _pointer(self, base: str) -> dict | None:
        try:
            return json.loads(self.store.get_bytes(f"{base}/CURRENT"))
        except StoreError:
            return None

    def read(self, base: str) -> Any:
        pointer = self._pointer(base)
        if pointer:
            main_key = f"{base}/{pointer['version']}/{pointer['main']}"
            return decode(pointer["main"].rsplit(".", 1)[1], self.store.get_bytes(main_key))
        for ext in EXTENSIONS:
            if self.store.exists(f"{base}.{ext}"):
                return decode(ext, self.store.get_bytes(f"{base}.{ext}"))
        raise StoreError(f"no artifact at {self.store.uri_for(base)}")

    def bundle_files(self, base: str) -> dict[str, str]:
        """name -> key of the side files of the live bundle (empty for single-file artifacts)."""
        pointer = self._pointer(base)
        if not pointer:
            return {}
        return {name: f"{base}/{pointer['version']}/{name}" for name in pointer["files"]}

    def exists(self, base: str) -> bool:
        return self._pointer(base) is not None or any(self.store.exists(f"{base}.{e}") for e in EXTENSIONS)
