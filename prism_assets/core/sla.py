"""Per-title SLA: was each per-title output produced within the window after the title's delivery?

Dagster's freshness policies are asset-level in 1.13 (the evaluator reads the asset's *latest*
materialization, whatever its partition), so a late title is invisible there. Prism therefore
checks the SLA per title with a partitioned asset check, `processed_on_time`, on every per-title
output, evaluated at two moments:

- **in the step**, when the output is materialized: latency = first successful run of the step
  since the delivery was discovered (this run if it is the first) - discovery time. Within
  `title_sla_warn_hours`: passed; up to `title_sla_fail_hours`: failed, WARN; later: failed, ERROR.
  A re-run of an already processed delivery (a backfill) keeps its first latency: it is not late.
- **by `title_sla_sensor`** (every `title_sla_interval_s`), for outputs *not yet* produced: a
  delivery discovered more than the warn window ago whose outputs are missing gets a failed
  evaluation (WARN, then ERROR past the fail window) for each missing output of that title, reported
  as a runless check evaluation with the title as partition. Outputs skipped for the title (an
  audio-only delivery has no picture) and everything downstream of them are not expected. Each
  title is reported once per state (warn, fail); the cursor remembers which, for deliveries inside
  `title_sla_lookback_days` only.

So the UI's Checks tab of any per-title asset shows, per title, whether it was on time, late, or is
overdue right now; the evaluation metadata gives the latency and the windows.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..partitions import TAG_TITLE_RUN
from ..resources import CatalogResource
from .checks import partitioned_spec
from .title_graph import TitleGraph

SLA_CHECK = "processed_on_time"
SLA_DESCRIPTION = ("Per-title SLA: produced within the window after the title's delivery was discovered "
                   "(WARN past title_sla_warn_hours, ERROR past title_sla_fail_hours); overdue titles are flagged by title_sla_sensor.")
MAX_CURSOR_ENTRIES = 20_000


def sla_spec(asset: str, partitions_def):
    return partitioned_spec(SLA_CHECK, asset, SLA_DESCRIPTION, False, partitions_def)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _hours(td: timedelta) -> float:
    return round(td.total_seconds() / 3600.0, 3)


def classify(latency: timedelta, policy) -> tuple[bool, AssetCheckSeverity, str]:
    if latency <= policy.sla_warn:
        return True, AssetCheckSeverity.WARN, "on time"
    if latency <= policy.sla_fail:
        return False, AssetCheckSeverity.WARN, "late"
    return False, AssetCheckSeverity.ERROR, "late (past the fail window)"


def sla_result(asset: str, step: str, title_id: str, catalog, policy, now: datetime | None = None) -> AssetCheckResult:
    """The in-step evaluation for one output of one title."""
    now = now or datetime.now(timezone.utc)
    delivery = catalog.sla_delivery(title_id)
    if delivery is None:
        return AssetCheckResult(asset_key=asset, check_name=SLA_CHECK, passed=True, severity=AssetCheckSeverity.WARN,
                                metadata={"note": "no delivery recorded for this title: no SLA applies", "title": title_id},
                                description=f"{title_id}: passed: no delivery recorded, no SLA applies")
    discovered = _utc(delivery.discovered_at)
    first = _utc(catalog.first_success_since(title_id, step, delivery.discovered_at)) or now
    latency = max(timedelta(0), first - discovered)
    passed, severity, state = classify(latency, policy)
    meta = {"state": state, "latency_h": _hours(latency), "delivery_discovered_at": discovered.isoformat(),
            "first_processed_at": first.isoformat(), "warn_after_h": _hours(policy.sla_warn), "fail_after_h": _hours(policy.sla_fail),
            "delivery_uri": delivery.uri}
    meta["title"] = title_id
    line = (f"{title_id}: {'passed' if passed else 'FAILED'}: {state}, processed {_hours(latency)} h after delivery "
            f"(warn after {_hours(policy.sla_warn)} h, fail after {_hours(policy.sla_fail)} h)")
    return AssetCheckResult(asset_key=asset, check_name=SLA_CHECK, passed=passed, severity=severity, metadata=meta, description=line)


def overdue(catalog, graph: TitleGraph, policy, now: datetime, instance=None) -> list[dict]:
    """Titles whose latest delivery was discovered more than the warn window ago (and inside the
    lookback) with expected outputs missing: [{title_id, delivery_key, discovered_at, state, missing}].
    With `instance`, also the titles whose process_title run has waited in the queue that long (a
    delivery is recorded in the catalog by its run, so a queued one is only in Dagster's run storage)."""
    lookback = now - timedelta(days=policy.settings.title_sla_lookback_days)
    found: dict[str, dict] = {}
    for cand in catalog.sla_candidates(since=lookback.replace(tzinfo=None), until=(now - policy.sla_warn).replace(tzinfo=None),
                                       min_outputs=len(graph.outputs)):
        missing = graph.missing(catalog, cand["title_id"], cand["discovered_at"])
        if missing:
            found[cand["title_id"]] = {**cand, "missing": missing}
    if instance is not None:
        from dagster import DagsterRunStatus, RunsFilter

        waiting = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]
        window = {"created_before": now - policy.sla_warn, "created_after": lookback}
        queued = instance.get_run_records(RunsFilter(job_name="process_title", statuses=waiting, **window), limit=5000)
        queued += instance.get_run_records(RunsFilter(tags={TAG_TITLE_RUN: "1"}, statuses=waiting, **window), limit=5000)  # fan-out backfills
        for rec in queued:
            title = rec.dagster_run.tags.get("dagster/partition")
            if title and title not in found:
                created = rec.create_timestamp.astimezone(timezone.utc).replace(tzinfo=None)
                found[title] = {"title_id": title, "discovered_at": created, "delivery_key": created.isoformat(), "missing": sorted(graph.expected(set()))}
    out = []
    for t in found.values():
        age = now - _utc(t["discovered_at"])
        out.append({**t, "state": "fail" if age > policy.sla_fail else "warn", "age": age})
    return out


def sla_tick(context: SensorEvaluationContext, catalog, graph: TitleGraph, policy, now: datetime | None = None) -> SensorResult:
    now = now or datetime.now(timezone.utc)
    cursor = json.loads(context.cursor) if context.cursor else {}
    horizon = (now - timedelta(days=policy.settings.title_sla_lookback_days)).isoformat()
    cursor = {k: v for k, v in cursor.items() if v.get("at", "") >= horizon}
    events = []
    late = overdue(catalog, graph, policy, now, context.instance)
    for t in late:
        key = f"{t['title_id']}|{t['delivery_key']}"
        if cursor.get(key, {}).get("state") == t["state"]:
            continue
        sev = AssetCheckSeverity.ERROR if t["state"] == "fail" else AssetCheckSeverity.WARN
        for asset in t["missing"]:
            events.append(AssetCheckEvaluation(
                asset_key=AssetKey(asset), check_name=SLA_CHECK, passed=False, severity=sev, partition=t["title_id"],
                description=f"{t['title_id']}: not processed {_hours(t['age'])} h after delivery",
                metadata={"state": "overdue", "age_h": _hours(t["age"]), "delivery_discovered_at": _utc(t["discovered_at"]).isoformat(),
                          "warn_after_h": _hours(policy.sla_warn), "fail_after_h": _hours(policy.sla_fail), "missing_outputs": len(t["missing"])},
                target_materialization_data=None, blocking=False))
        cursor[key] = {"state": t["state"], "at": _utc(t["discovered_at"]).isoformat()}
    if len(cursor) > MAX_CURSOR_ENTRIES:  # keep the newest deliveries; older ones may be reported again (harmless)
        cursor = dict(sorted(cursor.items(), key=lambda kv: kv[1]["at"])[-MAX_CURSOR_ENTRIES:])
    if late:
        context.log.info(f"{len(late)} title(s) overdue, {len(events)} new check evaluation(s)")
    if not events:
        return SensorResult(skip_reason=SkipReason(f"{len(late)} overdue title(s), nothing new to report"), cursor=json.dumps(cursor))
    return SensorResult(asset_events=events, cursor=json.dumps(cursor))


def build_sla_sensor(graph: TitleGraph, policy):
    @sensor(
        name="title_sla_sensor",
        minimum_interval_seconds=policy.settings.title_sla_interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Flags titles whose per-title outputs are overdue after delivery (check processed_on_time, per title).",
    )
    def title_sla_sensor(context: SensorEvaluationContext, catalog: CatalogResource):
        return sla_tick(context, catalog.get(), graph, policy)

    return title_sla_sensor
