"""Libraries that write caches outside Prism's data dir at import time, contained.

onnxruntime (imported under faster-whisper / WhisperX) writes a telemetry device id to
`$XDG_CACHE_HOME/Microsoft/DeveloperTools` (default `~/.cache`) when it is imported. It is imported
here first with XDG_CACHE_HOME pointing at `<data_dir>/cache`, then the variable is put back, so
nothing else (matplotlib's font cache, hub caches) moves. An operator's own XDG_CACHE_HOME wins.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

_lock = threading.Lock()


def import_contained(module: str) -> None:
    with _lock:
        if module in sys.modules or "XDG_CACHE_HOME" in os.environ:
            importlib.import_module(module)
            return
        from ..settings import default_data_dir

        cache = default_data_dir() / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(cache)
        try:
            importlib.import_module(module)
        finally:
            os.environ.pop("XDG_CACHE_HOME", None)
