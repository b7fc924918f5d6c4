"""Ingest: `source_video`, the probe of each title's delivery (the root of every per-title signal)."""

from ..core.domain import Domain
from .assets import SOURCE_VIDEO

DOMAIN = Domain(
    name="ingest",
    description="The probe of each delivered title (container, streams, timing, checksum): the root of every per-title signal.",
    signals=(SOURCE_VIDEO,),
)
