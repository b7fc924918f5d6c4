"""The policy every Prism asset shares, decided in ONE place from the settings.

- per-title assets: the dynamic `titles` partitions, one retry policy for unexpected errors, op
  tags from the pool (GPU steps to GPU workers), the per-title SLA check on every output
  (`core/sla.py`), a time-window freshness policy (the platform's heartbeat: *no* title at all in
  the window means the pipeline stalled; which title is late is the SLA check's job);
- daily assets: the daily partitions and a cron freshness policy (yesterday's partition by the
  deadline).

`core.signal.build_signal_asset` reads the op-level parts (retries, tags, pool) when it builds a
signal; `Policy.apply_freshness` is mapped over the merged Definitions (as dagster-open-platform
applies its global freshness policy) so domain code never sets freshness itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dagster import AssetSpec, FreshnessPolicy, RetryPolicy, apply_freshness_policy

from ..settings import PrismSettings
from .routing import cpu_lane_tags, op_tags_for_pool, transient_retry_policy

PARTITIONS_TAG = "prism/partitions"  # asset tag: titles | daily
STEP_TAG = "prism/step"  # asset tag: the step (op) that materializes the asset
DOMAIN_TAG = "prism/domain"


@dataclass(frozen=True)
class Policy:
    settings: PrismSettings

    @property
    def retry_policy(self) -> RetryPolicy:
        return transient_retry_policy(self.settings)

    def op_tags(self, pool: str | None, priority: int = 0, background: bool = False) -> dict[str, str]:
        """Routing tags of the step's pool, its CPU lane (`prism/cpu`) and its `dagster/priority` when not 0 (read by
        the executors and pools)."""
        return {**op_tags_for_pool(pool, self.settings), **cpu_lane_tags(background),
                **({"dagster/priority": str(int(priority))} if priority else {})}

    @property
    def title_freshness(self) -> FreshnessPolicy:
        s = self.settings
        return FreshnessPolicy.time_window(fail_window=timedelta(hours=s.freshness_fail_hours), warn_window=timedelta(hours=s.freshness_warn_hours))

    @property
    def daily_freshness(self) -> FreshnessPolicy:
        """A day's partition is expected by 10:00 UTC the next day (the 06:00 batch and the 09:00
        QC report have run by then)."""
        return FreshnessPolicy.cron(deadline_cron="0 10 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC")

    @property
    def sla_warn(self) -> timedelta:
        return timedelta(hours=self.settings.title_sla_warn_hours)

    @property
    def sla_fail(self) -> timedelta:
        return timedelta(hours=self.settings.title_sla_fail_hours)

    def apply_freshness(self, spec: AssetSpec) -> AssetSpec:
        """The freshness policy of an asset, from its partitions tag (set by the signal builder)."""
        kind = (spec.tags or {}).get(PARTITIONS_TAG)
        policy = self.daily_freshness if kind == "daily" else self.title_freshness
        return apply_freshness_policy(spec, policy, overwrite_existing=True)
