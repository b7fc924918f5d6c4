"""Object stores behind deliveries and artifacts: a local folder or an S3 prefix.

Keys are '/'-separated relative paths. Every `put` is atomic: a reader sees the old object or
the new one, never a partial file (local: temp file + fsync + os.replace in the same folder;
S3: a single PUT is atomic by the service's contract).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol


class StoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # a change marker: S3 ETag, or "<mtime_ns>-<size>" locally


class ObjectStore(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes: ...  # at most max_bytes (the start) when given
    def get_range(self, key: str, start: int, end: int) -> bytes: ...  # bytes start..end inclusive
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def list(self, prefix: str = "", start_after: str | None = None, limit: int | None = None) -> Iterator[ObjectInfo]: ...
    def list_dirs(self, prefix: str = "") -> list[str]: ...
    def uri_for(self, key: str) -> str: ...
    def download(self, key: str, dest: Path) -> Path: ...


def _clean_key(key: str) -> str:
    key = key.strip("/")
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise StoreError(f"invalid object key: {key!r}")
    return key


class LocalStore:
    """A folder on the local disk (the embedded default)."""

    def __init__(self, root: str | Path):
        self.root = Path(str(root).removeprefix("file://")).resolve()
        self.uri = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def uri_for(self, key: str) -> str:
        return str(self.path(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        try:
            if max_bytes is None:
                return self.path(key).read_bytes()
            with open(self.path(key), "rb") as fh:
                return fh.read(max_bytes)
        except FileNotFoundError as exc:
            raise StoreError(f"no object {self.uri_for(key)}") from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes start..end (inclusive) of a file."""
        with open(self.path(key), "rb") as fh:
            fh.seek(int(start))
            return fh.read(int(end) - int(start) + 1)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        target = self.path(prefix)
        if target.is_dir():
            n = sum(1 for p in target.rglob("*") if p.is_file())
            shutil.rmtree(target, ignore_errors=True)
            return n
        if target.is_file():
            target.unlink()
            return 1
        return 0

    def list(self, prefix: str = "", start_after: str | None = None, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Files under prefix in lexicographic key order (as S3 lists them), skipping temp files.
        Symbolic links are followed only where they stay inside the root, and every folder is walked
        once: a link out of the root, a link loop or a broken link is passed over, never followed."""
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        count = 0
        root_len = len(str(self.root)) + 1
        real_root = os.path.realpath(self.root)
        seen: set[str] = set()

        def inside(path: str) -> str | None:
            real = os.path.realpath(path)
            return real if real == real_root or real.startswith(real_root + os.sep) else None

        def is_dir(entry) -> bool:
            try:
                return entry.is_dir(follow_symlinks=True)
            except OSError:  # ELOOP, permission
                return False

        def walk(folder: str) -> Iterator[ObjectInfo]:
            real = inside(folder)
            if real is None or real in seen:  # outside the root, or a folder already walked (a link loop)
                return
            seen.add(real)
            try:
                # order as S3 does, by full key: a folder sorts as "name/"
                entries = sorted(os.scandir(folder), key=lambda e: e.name + "/" if is_dir(e) else e.name)
            except OSError:
                return
            for entry in entries:
                rel = entry.path[root_len:].replace(os.sep, "/")
                if entry.name.startswith("."):
                    continue
                if is_dir(entry):
                    # prune whole subtrees that sort entirely before start_after
                    if start_after is not None and (rel + "/") < start_after and not start_after.startswith(rel + "/"):
                        continue
                    yield from walk(entry.path)
                elif start_after is None or rel > start_after:
                    if entry.is_symlink() and inside(entry.path) is None:
                        continue  # a file link out of the root
                    try:
                        st = entry.stat()
                    except OSError:  # a broken link
                        continue
                    yield ObjectInfo(rel, st.st_size, f"{st.st_mtime_ns}-{st.st_size}")

        for info in walk(str(base)):
            yield info
            count += 1
            if limit is not None and count >= limit:
                return

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        return sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))

    def download(self, key: str, dest: Path) -> Path:
        # local objects are read in place
        path = self.path(key)
        if not path.is_file():
            raise StoreError(f"no object {path}")
        return path


class S3Store:
    """An S3 prefix (production), through a boto3 client from dagster-aws's S3Resource."""

    def __init__(self, uri: str, client):
        if not uri.startswith("s3://"):
            raise StoreError(f"not an s3 URI: {uri}")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise StoreError(f"s3 URI without bucket: {uri}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _full(self, key: str) -> str:
        key = _clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._full(key))

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        ranged = {"Range": f"bytes=0-{max_bytes - 1}"} if max_bytes else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key), **ranged)["Body"].read()
        except self.client.exceptions.NoSuchKey as exc:
            raise StoreError(f"no object {self.uri_for(key)}") from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes start..end (inclusive) of an object (HTTP Range reads for the media proxy)."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key), Range=f"bytes={int(start)}-{int(end)}")["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"cannot read {self.uri_for(key)}: {exc}") from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            return True
        except Exception as exc:  # botocore ClientError 404
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete_prefix(self, prefix: str) -> int:
        full = self._full(prefix)
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"] == full or o["Key"].startswith(full + "/"))
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]})
        return len(keys)

    def list(self, prefix: str = "", start_after: str | None = None, limit: int | None = None) -> Iterator[ObjectInfo]:
        full_prefix = ""
        if prefix.strip("/"):
            full_prefix = self._full(prefix) + "/"
        elif self.prefix:
            full_prefix = self.prefix + "/"
        kwargs = {"Bucket": self.bucket, "Prefix": full_prefix}
        if start_after:
            kwargs["StartAfter"] = f"{self.prefix}/{start_after}" if self.prefix else start_after
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs, PaginationConfig={"PageSize": 1000}):
            for obj in page.get("Contents", []):
                rel = self._rel(obj["Key"])
                if rel.rsplit("/", 1)[-1].startswith("."):
                    continue
                yield ObjectInfo(rel, int(obj["Size"]), obj["ETag"].strip('"'))
                count += 1
                if limit is not None and count >= limit:
                    return

    def list_dirs(self, prefix: str = "") -> list[str]:
        full_prefix = (self._full(prefix) + "/") if prefix.strip("/") else (self.prefix + "/" if self.prefix else "")
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full_prefix, Delimiter="/"):
            out.extend(p["Prefix"][len(full_prefix) :].strip("/") for p in page.get("CommonPrefixes", []))
        return sorted(out)

    def download(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
        try:
            self.client.download_file(self.bucket, self._full(key), str(tmp))
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dest


def open_store(uri: str, s3_client_factory=None) -> ObjectStore:
    if uri.startswith("s3://"):
        if s3_client_factory is None:
            raise StoreError(f"{uri} needs an S3 client (configure the s3 resource)")
        return S3Store(uri, s3_client_factory())
    return LocalStore(uri)


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
