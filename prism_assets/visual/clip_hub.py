"""Hugging Face hub and logging helpers of CLIP loading (clip_model.py): offline mode as the environment says now,
and open_clip's own error lines muted while a failure is turned into one ClipLoadError."""

from __future__ import annotations

import contextlib
import logging
import os

_TRUE = {"1", "true", "yes", "on"}


@contextlib.contextmanager
def mute_root_errors():
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)


def hf_offline() -> bool:
    """HF_HUB_OFFLINE as the environment says now (huggingface_hub reads it once, at import)."""
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if v.strip().lower() in _TRUE:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return False


@contextlib.contextmanager
def hub_offline_mode(offline: bool):
    """Make huggingface_hub honour an HF_HUB_OFFLINE set after it was imported (so a hub attempt
    fails at once offline instead of retrying the network)."""
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
