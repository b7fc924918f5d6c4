"""The signal domains of the code location, in graph order: the ONE registration line per domain.

Each entry is an importable package exposing `DOMAIN` (a `prism_assets.core.domain.Domain`):
its signals (per-title or daily assets with their checks), resources, jobs, schedules, sensors and
profile defaults. A new signal is a new folder with a `DOMAIN` and one line here
(docs/adding-a-signal.md). A deployment may add packages of its own without editing this file:
`PRISM_EXTRA_DOMAINS=acme_signals.scenes,acme_signals.logos`.
"""

DOMAINS: tuple[str, ...] = (
    "prism_assets.deliveries",
    "prism_assets.ingest",
    "prism_assets.visual",
    "prism_assets.audio",
    "prism_assets.localization",
    "prism_assets.structure",
    "prism_assets.qc",
    "prism_assets.index",
    "prism_assets.release",
)
