"""PyAV's FFmpeg log callback stays the GIL-free one in every process that runs assets (installed by `definitions.py`).

Why: with a Python log level set (`av.logging.set_level(<int>)`), PyAV routes every FFmpeg log line through a
callback that takes the GIL, from whichever thread logs, FFmpeg's frame/slice decoder threads included. Closing a
threaded decoder (`avcodec_free_context`, from a Cython destructor that holds the GIL) waits for those threads: a
thread that logs at that moment waits for the GIL forever, and so does the process (PyAV documents the caveat).
`import torchvision` sets that level (torchvision/io/video.py: `av.logging.set_level(av.logging.ERROR)`), and
open_clip imports torchvision: a title run that loaded CLIP and then closed a threaded decoder hung, with no Python
frame able to run (pytest-timeout's alarm never fired; found as a test worker stuck in `probe_video`).

So PyAV's own default (no Python callback: FFmpeg's lines are dropped, its errors still raise with their code) is
restored here and `av.logging.set_level` is replaced by a guard that keeps it: a later library asking for a level
gets the GIL-free callback still, and a debug line says so. Prism reads FFmpeg's diagnostics from the ffmpeg CLI's
stderr where it needs them, never through PyAV's logging."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def keep_pyav_logging_off() -> bool:
    """Install the guard (idempotent). False when PyAV is not installed (the API image may lack it)."""
    try:
        import av.logging as avlog
    except ImportError:
        return False
    if getattr(avlog.set_level, "prism_guard", False):
        return True
    real = avlog.set_level

    def set_level(level):
        if level is not None:
            log.debug("av.logging.set_level(%r) ignored: PyAV's Python log callback deadlocks threaded decoders "
                      "(prism_assets/core/pyav_logging.py)", level)
        real(None)

    set_level.prism_guard = True
    set_level.__doc__ = "Prism's guard: PyAV logging stays off (see prism_assets.core.pyav_logging)."
    real(None)
    avlog.set_level = set_level
    return True
