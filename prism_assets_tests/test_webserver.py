"""Smoke test: the real `dagster-webserver` loads the workspace and serves the asset graph over GraphQL.

Starts dagster-webserver on a free loopback port against workspace.yaml (code location loaded in a
subprocess, as in production), waits for the `prism` location to be LOADED, then asks the GraphQL
API for what the UI's asset graph shows: keys, partition definitions, asset checks, freshness
policies, upstream dependencies and pools, plus the repository's jobs, sensors and schedules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import REPO, free_port
from .support.dagster_ui import LOCATION, gql, wait_for_location

pytestmark = pytest.mark.e2e

WEBSERVER = Path(sys.executable).parent / "dagster-webserver"

REPOSITORIES_QUERY = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        jobs { name isAssetJob }
        sensors { name sensorType }
        schedules { name cronSchedule }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

# what the UI's asset graph asks for (AssetGraphQuery / AssetNodeForGraphQuery), plus the checks,
# the new-style (1.11+) FreshnessPolicy, which GraphQL exposes as `internalFreshnessPolicy`
# (`freshnessPolicy` is the legacy one), and the concurrency pools
ASSET_GRAPH_QUERY = """
query AssetGraph {
  assetNodes {
    id
    assetKey { path }
    groupName
    isExecutable
    isPartitioned
    partitionDefinition { type name description }
    hasAssetChecks
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name blocking } }
      ... on AssetCheckNeedsMigrationError { message }
      ... on AssetCheckNeedsUserCodeUpgrade { message }
      ... on AssetCheckNeedsAgentUpgradeError { message }
    }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
      ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    }
    dependencyKeys { path }
    dependedByKeys { path }
    pools
    repository { name location { name } }
  }
}
"""


CHECKS_QUERY = """
query TitleChecks {
  assetNodeOrError(assetKey: {path: ["source_video"]}) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks {
          checks {
            name
            partitionDefinition { name }
            partitionStatuses {
              __typename
              ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
  assetCheckExecutions(assetKey: {path: ["source_video"]}, checkName: "has_audio", limit: 10) {
    partition
    status
    evaluation { success partition severity }
  }
}
"""


def _two_titles(media, tmp_path) -> None:
    """source_video for two titles on the instance the webserver reads: one with audio, one without."""
    from datetime import date

    from dagster import DagsterInstance, materialize

    from prism_assets.catalog import DeliveryRecord, connect
    from prism_assets.definitions import build_resources
    from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
    from prism_assets.settings import PrismSettings

    from .support import signal_assets, video_without_audio

    settings = PrismSettings.from_env()
    mute = video_without_audio(media / "big_buck_bunny_0_30.webm", tmp_path / "mute.mp4")
    with DagsterInstance.get() as instance:
        for tid, path in (("with_sound", media / "qc_composite.mp4"), ("mute", mute)):
            connect(settings.catalog_url).record_deliveries([DeliveryRecord(tid, date(2026, 11, 20), str(path))])
            instance.add_dynamic_partitions("titles", [tid])
            res = materialize(signal_assets(settings, "source_video"), partition_key=tid, instance=instance,
                              resources=build_resources(settings), tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})
            assert res.success


def _key(node: dict) -> str:
    return "/".join(node["assetKey"]["path"])


def test_webserver_serves_asset_graph(data_dir, media, tmp_path):
    from prism_assets.definitions import build_definitions
    from prism_assets.settings import PrismSettings

    _two_titles(media, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    logdir = Path(tempfile.mkdtemp(prefix="prism-webserver-", dir=data_dir))
    stdout_path, stderr_path = logdir / "stdout.log", logdir / "stderr.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [str(WEBSERVER), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=dict(os.environ), stdout=out, stderr=err,
        )
    try:
        wait_for_location(url, proc, stderr_path, timeout=120)

        # --- repository: jobs, sensors, schedule
        repos = gql(url, REPOSITORIES_QUERY)["repositoriesOrError"]
        assert repos["__typename"] == "RepositoryConnection", repos
        repo = next(r for r in repos["nodes"] if r["location"]["name"] == LOCATION)
        jobs = {j["name"] for j in repo["jobs"]}
        sensors = {s["name"] for s in repo["sensors"]}
        schedules = {s["name"] for s in repo["schedules"]}
        assert {"process_title", "delivery_manifest_job"} <= jobs, f"jobs served: {sorted(jobs)}"
        assert {"delivery_sensor", "manifest_fanout_sensor"} <= sensors, f"sensors served: {sorted(sensors)}"
        assert "daily_batch_schedule" in schedules, f"schedules served: {sorted(schedules)}"

        # --- asset graph
        nodes = {_key(n): n for n in gql(url, ASSET_GRAPH_QUERY, timeout=60)["assetNodes"]}
        assert {"source_video", "delivery_manifest"} <= set(nodes), f"asset nodes served: {sorted(nodes)}"

        for key, n in nodes.items():
            assert n["repository"]["location"]["name"] == LOCATION, f"{key}: served from {n['repository']}"
            pdef = n["partitionDefinition"]
            assert n["isPartitioned"] and pdef is not None, f"{key}: no partition definition served"
            checks = n["assetChecksOrError"]
            assert checks["__typename"] == "AssetChecks", f"{key}: assetChecksOrError = {checks}"
            assert n["hasAssetChecks"] and checks["checks"], f"{key}: no asset checks served"
            policy = n["internalFreshnessPolicy"]
            assert policy is not None, f"{key}: no freshness policy served (internalFreshnessPolicy is null)"
            if policy["__typename"] == "TimeWindowFreshnessPolicy":
                assert policy["failWindowSeconds"] > 0, f"{key}: freshness policy {policy}"
            for dep in n["dependencyKeys"]:
                assert "/".join(dep["path"]) in nodes, f"{key}: upstream {dep['path']} is not an asset node of the graph"

        sv, dm = nodes["source_video"], nodes["delivery_manifest"]
        assert sv["partitionDefinition"]["type"] == "DYNAMIC", sv["partitionDefinition"]
        assert sv["partitionDefinition"]["name"] == "titles", sv["partitionDefinition"]
        assert dm["partitionDefinition"]["type"] == "TIME_WINDOW", dm["partitionDefinition"]
        assert "daily" in dm["partitionDefinition"]["description"].lower(), dm["partitionDefinition"]
        sv_checks = {c["name"] for c in sv["assetChecksOrError"]["checks"]}
        assert {"probe_complete", "timing_consistent", "has_audio"} <= sv_checks, f"source_video checks: {sorted(sv_checks)}"
        assert sv["pools"] and set(sv["pools"]) <= {"decode", "gpu"}, f"source_video pools: {sv['pools']}"

        # checks per title, as the asset's Checks tab shows them: each title's result, by partition
        data = gql(url, CHECKS_QUERY, timeout=60)
        checks = {c["name"]: c for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"]}
        assert all(c["partitionDefinition"] and c["partitionDefinition"]["name"] == "titles" for c in checks.values()), checks
        has_audio = checks["has_audio"]["partitionStatuses"]
        assert has_audio["succeededPartitions"] == ["with_sound"] and has_audio["failedPartitions"] == ["mute"], has_audio
        probe = checks["probe_complete"]["partitionStatuses"]
        assert sorted(probe["succeededPartitions"]) == ["mute", "with_sound"] and not probe["failedPartitions"], probe
        assert set(checks["processed_on_time"]["partitionStatuses"]["succeededPartitions"]) == {"mute", "with_sound"}
        runs = {e["partition"]: e["evaluation"] for e in data["assetCheckExecutions"]}
        assert runs["mute"]["success"] is False and runs["mute"]["severity"] == "WARN" and runs["with_sound"]["success"] is True, runs

        # the served graph is the one the code defines (same assets, same upstream edges)
        graph = build_definitions(PrismSettings.from_env()).resolve_asset_graph()
        expected = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
        served = {k: {"/".join(d["path"]) for d in n["dependencyKeys"]} for k, n in nodes.items()}
        assert served == expected, f"served deps {served} != defined deps {expected}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
