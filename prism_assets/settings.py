"""Runtime settings of a Prism deployment, read from the environment.

Everything has an embedded default for one machine (local folders under the project's
`.prism/` data dir, a SQLite catalog). Production sets the same variables to S3 URIs and a
MariaDB URL (see docs/deploy.md and deploy/).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout holding workspace.yaml, or the current directory for an installed package."""
    env = os.environ.get("PRISM_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "workspace.yaml").exists():
        return candidate
    return Path.cwd().resolve()


def default_data_dir() -> Path:
    return Path(os.environ.get("PRISM_DATA_DIR") or project_root() / ".prism").resolve()


PROFILES = ("dev", "prod")


@dataclass(frozen=True)
class PrismSettings:
    data_dir: Path
    delivery_root: str
    artifact_root: str
    catalog_url: str
    profile: str = "dev"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    sensor_max_keys_per_tick: int = 20_000
    sensor_lookback_days: int = 3
    sensor_interval_s: int = 60
    freshness_warn_hours: float = 12.0
    freshness_fail_hours: float = 24.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides) -> "PrismSettings":
        data_dir = Path(overrides.pop("data_dir", None) or default_data_dir())
        env = os.environ
        values = dict(
            data_dir=data_dir,
            delivery_root=env.get("PRISM_DELIVERY_ROOT") or str(data_dir / "deliveries"),
            artifact_root=env.get("PRISM_ARTIFACT_ROOT") or str(data_dir / "artifacts"),
            catalog_url=env.get("PRISM_CATALOG_URL") or f"sqlite:///{data_dir / 'catalog.db'}",
            profile=env.get("PRISM_PROFILE", "dev"),
            s3_endpoint_url=env.get("PRISM_S3_ENDPOINT_URL") or None,
            s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            sensor_max_keys_per_tick=int(env.get("PRISM_SENSOR_MAX_KEYS_PER_TICK", 20_000)),
            sensor_lookback_days=int(env.get("PRISM_SENSOR_LOOKBACK_DAYS", 3)),
            sensor_interval_s=int(env.get("PRISM_SENSOR_INTERVAL_S", 60)),
            freshness_warn_hours=float(env.get("PRISM_FRESHNESS_WARN_HOURS", 12)),
            freshness_fail_hours=float(env.get("PRISM_FRESHNESS_FAIL_HOURS", 24)),
        )
        values.update(overrides)
        if values["profile"] not in PROFILES:
            raise ValueError(f"unknown profile {values['profile']!r}: choose one of {', '.join(PROFILES)}")
        return cls(**values)
