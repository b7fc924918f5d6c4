"""Prism: a title's signals as Dagster assets. Importing the package makes one process-wide choice: PyAV's FFmpeg log
callback stays the GIL-free one (`core/pyav_logging.py`: the Python one deadlocks threaded decoders)."""

from .core.pyav_logging import keep_pyav_logging_off

keep_pyav_logging_off()
