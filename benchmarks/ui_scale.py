"""The Dagster UI's partition and backfill views with 10,000 titles, measured in a real browser.

    PYTHONPATH=. .venv/bin/python -m benchmarks.ui_scale [--titles 10000] [--repeats 3] [--evaluated-every 10] [--out FILE]

- **Instance**: a temporary DAGSTER_HOME (on /dev/shm when there is one: SQLite commits there cost no fsync, so
  building the history takes a minute, not an hour; reads are from the page cache either way) with the embedded
  `dagster.yaml`; N keys in the project's `titles` dynamic partitions (`prism_assets.partitions`), added through
  the instance API; runless materializations of `qc` for 9 titles in 10 (every tenth missing: the partition
  health bar has N/10 ranges, its worst shape) and of `source_video` for all; for one materialized title in ten
  (`--evaluated-every`; 1: every materialized title, as real runs leave them), an evaluation of each per-title check of
  `qc` as the code declares them (`qc_checks()`: its rules and the SLA check), every other `title_passes_qc` failing,
  the others passing, each naming the materialization it checked (as a run's checks do: current, so Dagster counts
  them as passed / failed; evaluations naming none read as outdated and cost Dagster far less to tally).
- **Server**: `dagster-webserver` alone (no daemon: nothing launches) on the project's workspace. Backfills are
  launched through its GraphQL API as the fan-out launches them, i.e. over every per-title asset: one over all N
  titles (an operator's "reprocess everything") and 20 over N/20 titles each (a day's delivery); they stay
  REQUESTED (no daemon), which is the state in which their pages do the most work (every target still to do).
- **Pages** (Debian's `chromium` through Playwright): per repeat, a fresh browser context opens `/` once (the
  app's bundle and workspace cached, as for an operator who has the UI open), then each page by its URL, timed
  from navigation until what the page is for is shown (`ready_s`: a title in the partition list, the latest
  materialization, the backfill in the list, the backfill's assets) and until "network idle" after that
  (Playwright's: no request for 500 ms; `to_idle_s` has the 0.5 s taken off), with every GraphQL request the
  page made (operation name, seconds from request to response end, bytes). Pages: the Partitions tab of a
  per-title asset (`qc`), its overview, the Backfills tab, the big backfill's page.
- **Server side**: each page's GraphQL operations replayed with `requests` (same query and variables) `--repeats`
  times, median: the server's share without the browser; and the parts of the asset's live query (the UI's
  `AssetGraphLiveQuery`: partition counts, each check's latest execution and partition statuses, the latest
  materialization, the latest run) sent one by one (`asset_live_query_parts_s`): which part costs.

Medians of `--repeats` (default 3) are reported; the machine is shared and noisy (wall clock), so compare
pages with each other rather than the absolute seconds with another machine. A page over `SLOW_S` is named in
`slow` with its slowest operations. Writes `benchmarks/results/ui_scale.json`; the run it replaces is kept, summarised,
in its `earlier_runs` (newest first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("PRISM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SLOW_S = 3.0
ASSET = "qc"
IDLE_QUIET_S = 0.5  # Playwright's "networkidle": no request for this long

TITLE_ASSETS = '{assetNodes {assetKey {path} partitionDefinition {name}}}'
BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } }
}"""
LOCATION = '{workspaceOrError {... on Workspace {locationEntries {name loadStatus locationOrLoadError {__typename ... on PythonError {message}}}}}}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gql(url: str, query: str, variables: dict | None = None, timeout: float = 600) -> dict:
    r = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=timeout)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {str(body['errors'])[:500]}")
    return body["data"]


def title_keys(n: int) -> list[str]:
    return [f"title-{i:05d}" for i in range(n)]


VERDICT_CHECK = "title_passes_qc"


def qc_checks() -> list[str]:
    """The per-title checks of `qc` as the code declares them: its rules (`qc.checks.QC_RULES`) and the SLA check every
    per-title output gets (`core.sla.SLA_CHECK`)."""
    from prism_assets.core.sla import SLA_CHECK
    from prism_assets.qc.checks import QC_RULES

    return [r.name for r in QC_RULES] + [SLA_CHECK]


def build_instance(home: Path, n: int, every: int = 10) -> dict:
    """The titles' partitions and their history, written through the instance API (no server running)."""
    from dagster import AssetCheckEvaluation, AssetCheckSeverity, AssetKey, AssetMaterialization, AssetRecordsFilter, DagsterInstance
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

    from prism_assets.partitions import TITLES_PARTITIONS_NAME, titles_partitions

    keys = title_keys(n)
    names = qc_checks()
    t0 = time.perf_counter()
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, keys)
        assert len(titles_partitions.get_partition_keys(dynamic_partitions_store=instance)) == n
        materialized = {"qc": 0, "source_video": 0}
        checks = dict.fromkeys(names, 0)
        evaluated = 0
        for i, key in enumerate(keys):
            instance.report_runless_asset_event(AssetMaterialization("source_video", partition=key))
            materialized["source_video"] += 1
            if i % 10 != 9:
                instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=key, metadata={"verdict": "pass"}))
                materialized[ASSET] += 1
                if i % every == 0:  # the evaluations name this materialization, as a run's checks do: they are current
                    rec = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(ASSET), asset_partitions=[key]), limit=1).records[0]
                    target = AssetCheckEvaluationTargetMaterializationData(storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp)
            if i % 10 != 9 and i % every == 0:  # every per-title check of qc evaluated for that title, as a run of it does
                for name in names:
                    ok = name != VERDICT_CHECK or evaluated % 2 == 0
                    said = f"verdict {'pass' if ok else 'fail: loudness'}" if name == VERDICT_CHECK else "passed"
                    instance.report_runless_asset_event(AssetCheckEvaluation(
                        asset_key=AssetKey(ASSET), check_name=name, passed=ok, partition=key, severity=AssetCheckSeverity.ERROR,
                        description=f"{key}: {said}", target_materialization_data=target))
                    checks[name] += 1
                evaluated += 1
    return {"titles": n, "materializations": materialized, "evaluated_every": every, "check_evaluations": checks, "build_s": round(time.perf_counter() - t0, 1)}


def start_webserver(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISM_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), PRISM_DATA_DIR=str(home.parent / "data"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    with open(log, "wb") as out:
        return subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_loaded(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            entries = gql(url, LOCATION, timeout=10)["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["loadStatus"] == "LOADED":
                err = entries[0]["locationOrLoadError"]
                if err and err["__typename"] == "PythonError":
                    raise RuntimeError(f"code location failed to load: {err['message']}")
                return time.monotonic() - t0
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the code location did not load within {timeout:.0f}s: {log.read_text(errors='replace')[-2000:]}")


def launch_backfills(url: str, n: int, small: int = 20) -> dict:
    """One backfill over all titles and `small` over n/small titles each, every per-title asset (as the fan-out)."""
    nodes = gql(url, TITLE_ASSETS)["assetNodes"]
    assets = [{"path": a["assetKey"]["path"]} for a in nodes if (a["partitionDefinition"] or {}).get("name") == "titles"]
    keys = title_keys(n)
    ids, seconds = [], []
    chunk = max(1, n // small)
    for part in [keys] + [keys[i:i + chunk] for i in range(0, n, chunk)][:small]:
        t0 = time.perf_counter()
        res = gql(url, BACKFILL, {"params": {"assetSelection": assets, "partitionNames": part, "tags": [{"key": "prism/rerun", "value": "all"}]}})
        seconds.append(time.perf_counter() - t0)
        res = res["launchPartitionBackfill"]
        if res["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {res}")
        ids.append(res["backfillId"])
    return {"per_title_assets": len(assets), "big": ids[0], "ids": ids, "launch_all_titles_s": round(seconds[0], 2),
            "launch_one_day_s_median": round(statistics.median(seconds[1:]), 2) if len(seconds) > 1 else None}


# the parts of the UI's AssetGraphLiveQuery (ui-core AssetBaseDataProvider) for one asset, each alone: which one costs
PARTS = {
    "partitionStats": "{assetNodes(assetKeys: $K) { partitionStats {numMaterialized numMaterializing numPartitions numFailed} }}",
    "checks.executionForLatestMaterialization": "{assetNodes(assetKeys: $K) { assetChecksOrError { ... on AssetChecks { checks { name "
                                                "executionForLatestMaterialization { id status evaluation { severity } } } } } }}",
    "checks.partitionStatuses": "{assetNodes(assetKeys: $K) { assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses { "
                                "... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions inProgressPartitions "
                                "skippedPartitions executionFailedPartitions } } } } } }}",
    "assetMaterializations(limit: 1)": "{assetNodes(assetKeys: $K, loadMaterializations: true) { assetMaterializations(limit: 1) { timestamp runId } }}",
    "assetsLatestInfo": "{assetsLatestInfo(assetKeys: $K) { id latestRun { id } inProgressRunIds unstartedRunIds }}",
}


def live_query_parts(url: str, asset: str, repeats: int) -> dict[str, float]:
    """Median seconds of each part of the asset's live query, sent alone (server only)."""
    key = json.dumps([{"path": [asset]}]).replace('"path"', "path")
    out = {}
    for name, query in PARTS.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            gql(url, query.replace("$K", key))
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times), 3)
    return out


def visit(page, url: str, ready=None, timeout_s: float = 180) -> dict:
    """Navigates to `url`; seconds until `ready(page)` (a locator of what the page is for) is visible and until network
    idle after it (the UI's first GraphQL request can come after a quiet 0.5 s: idle alone can be reached before the
    page asked for anything), with every GraphQL request made on the way."""
    calls: list[dict] = []

    def done(req):
        if urlsplit(req.url).path != "/graphql" or req.method != "POST":
            return
        try:
            body = json.loads(req.post_data or "{}")
        except ValueError:
            body = {}
        resp = req.response()
        calls.append({"op": body.get("operationName") or "?", "s": round(max(0.0, req.timing["responseEnd"]) / 1000, 3),
                      "bytes": len(resp.body()) if resp else None, "query": body.get("query"), "variables": body.get("variables")})

    page.on("requestfinished", done)
    t0 = time.perf_counter()
    ready_s = None
    idle = True
    try:
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        if ready is not None:
            ready(page).first.wait_for(state="visible", timeout=timeout_s * 1000)
            ready_s = round(time.perf_counter() - t0, 2)
        page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
    except Exception as exc:  # noqa: BLE001 - a page that never settles is a result, not a crash
        if "Timeout" not in type(exc).__name__:
            raise
        idle = False
    wall = time.perf_counter() - t0
    page.remove_listener("requestfinished", done)
    return {"ready_s": ready_s, "to_idle_s": round(max(wall - IDLE_QUIET_S, ready_s or 0), 2) if idle else None, "idle": idle, "graphql": calls}


def replay(url: str, calls: list[dict], repeats: int) -> dict[str, float]:
    """Median seconds of each distinct operation of the page, sent again by `requests` (server only)."""
    out: dict[str, float] = {}
    seen = set()
    for c in calls:
        if not c["query"] or c["op"] in seen:
            continue
        seen.add(c["op"])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            requests.post(url, json={"operationName": c["op"], "query": c["query"], "variables": c["variables"]}, timeout=600).raise_for_status()
            times.append(time.perf_counter() - t0)
        out[c["op"]] = round(statistics.median(times), 3)
    return out


def skip_welcome(page) -> None:
    """The first visit's "Join the Dagster community" dialog, whenever it shows up."""
    page.add_locator_handler(page.get_by_text("Join the Dagster community"), lambda: page.get_by_role("button", name="Skip").click())


def measure(base: str, pages: dict[str, tuple], repeats: int, shots: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    runs: dict[str, list[dict]] = {name: [] for name in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for rep in range(repeats):
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                page = context.new_page()
                skip_welcome(page)
                visit(page, base + "/")
                for name, (path, ready) in pages.items():
                    runs[name].append(visit(page, base + path, ready))
                    if shots and rep == repeats - 1:
                        page.screenshot(path=str(shots / f"ui_scale-{name}.png"))
                context.close()
        finally:
            browser.close()
    out = {}
    for name, got in runs.items():
        idle = [r["to_idle_s"] for r in got if r["idle"]]
        by_op: dict[str, list[float]] = {}
        for r in got:
            for c in r["graphql"]:
                by_op.setdefault(c["op"], []).append(c["s"])
        ops = sorted(((op, round(statistics.median(v), 3), len(v) // len(got)) for op, v in by_op.items()), key=lambda x: -x[1])
        shown = [r["ready_s"] for r in got if r["ready_s"] is not None]
        out[name] = {"path": pages[name][0], "to_idle_s_median": round(statistics.median(idle), 2) if idle else None,
                     "ready_s_median": round(statistics.median(shown), 2) if shown else None,
                     "to_idle_s": [r["to_idle_s"] for r in got], "ready_s": [r["ready_s"] for r in got], "never_idle": sum(not r["idle"] for r in got),
                     "graphql_requests_per_load": round(sum(len(r["graphql"]) for r in got) / len(got), 1),
                     "graphql_slowest": [{"op": op, "s_median": s, "per_load": k} for op, s, k in ops[:6]],
                     "_calls": got[-1]["graphql"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--titles", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--evaluated-every", type=int, default=10, help="one materialized title in N has check evaluations (1: all)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ui_scale.json")
    ap.add_argument("--shots", type=Path, default=REPO / ".prism" / "bench_media" / "ui_scale", help="screenshots of the last repeat")
    args = ap.parse_args(argv)
    if args.titles < 20 or args.repeats < 1 or args.evaluated_every < 1:
        ap.error("--titles must be >= 20, --repeats and --evaluated-every >= 1")
    if not Path(CHROMIUM).exists():
        ap.error(f"chromium not found at {CHROMIUM} (apt `chromium`, or set PRISM_CHROMIUM)")
    args.shots.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prism-ui-scale-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    home = work / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    log = work / "webserver.log"
    proc = None
    try:
        print(f"building the instance ({args.titles} titles) in {work}", flush=True)
        os.environ["DAGSTER_HOME"] = str(home)
        built = build_instance(home, args.titles, args.evaluated_every)
        print(f"built: {built}", flush=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_webserver(home, port, log)
        load_s = wait_loaded(base + "/graphql", proc, log)
        print(f"webserver loaded in {load_s:.0f}s; launching backfills", flush=True)
        backfills = launch_backfills(base + "/graphql", args.titles)
        print(f"backfills: {({k: v for k, v in backfills.items() if k != 'ids'})}", flush=True)
        big = backfills["big"]
        title = re.compile(r"^title-\d{5}$")
        pages = {  # the page, and what it shows once it has what it is for
            "asset_partitions": (f"/assets/{ASSET}?view=partitions", lambda p: p.get_by_text(title)),
            "asset_overview": (f"/assets/{ASSET}", lambda p: p.get_by_text("Latest materialization")),
            "backfills_tab": ("/runs?view=backfills", lambda p: p.get_by_text(big, exact=True)),
            "backfill_page": (f"/runs/b/{big}", lambda p: p.get_by_text("source_video", exact=True)),
        }
        cpu0 = os.times()
        load_start = [round(x, 2) for x in os.getloadavg()]
        pages_out = measure(base, pages, args.repeats, args.shots)
        for name, res in pages_out.items():
            res["server_replay_s"] = dict(sorted(replay(base + "/graphql", res.pop("_calls"), args.repeats).items(), key=lambda kv: -kv[1])[:6])
            print(f"{name}: {res['to_idle_s_median']} s to network idle; slowest {res['graphql_slowest'][:2]}", flush=True)
        parts = live_query_parts(base + "/graphql", ASSET, args.repeats)
        print(f"{ASSET}'s live query, part by part: {parts}", flush=True)
        cpu1 = os.times()
        slow = {name: {"to_idle_s_median": r["to_idle_s_median"], "slowest": r["graphql_slowest"][:3], "server_replay_s": r["server_replay_s"]}
                for name, r in pages_out.items() if r["to_idle_s_median"] is None or r["to_idle_s_median"] > SLOW_S}
        result = {
            "what": "Dagster UI pages with N titles (dynamic partitions) and backfills over them: seconds to network idle in "
                    "Chromium (median of repeats) and each page's GraphQL operations (browser-timed and replayed server-side)",
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_avg_at_start": load_start, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
                        "note": f"shared {os.cpu_count()}-core machine (other work runs on it: see the load averages, 1/5/15 min, when the "
                                "pages were measured), noisy wall clock: compare pages with each other; the browser and the server share the cores"},
            "dagster": _version(), "qc_per_title_checks": qc_checks(), "instance": built, "webserver_load_s": round(load_s, 1),
            "backfills": {k: v for k, v in backfills.items() if k != "ids"} | {"count": len(backfills["ids"])},
            "repeats": args.repeats, "slow_threshold_s": SLOW_S, "pages": pages_out, "slow": slow,
            "asset_live_query_parts_s": parts,
            "harness_cpu_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), 1),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.exists():  # the run this one replaces stays in the file, summarised, newest first
            old = json.loads(args.out.read_text())
            result["earlier_runs"] = [earlier(old)] + old.get("earlier_runs", [])
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}; slow pages: {sorted(slow) or 'none'}", flush=True)
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if proc is not None:
            try:  # the code server it started
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)


def earlier(run: dict) -> dict:
    """A replaced run as `earlier_runs` keeps it: what was seeded and measured, each page's medians and slowest operations."""
    pages = {name: {k: p.get(k) for k in ("to_idle_s_median", "ready_s_median", "to_idle_s", "graphql_slowest", "server_replay_s")}
             for name, p in (run.get("pages") or {}).items()}
    keep = ("when", "note", "machine", "dagster", "qc_per_title_checks", "instance", "backfills", "repeats")
    return {**{k: run[k] for k in keep if k in run}, "pages": pages, "asset_live_query_parts_s": run.get("asset_live_query_parts_s"),
            "slow": sorted(run.get("slow") or {})}


def _version() -> str:
    import dagster

    return dagster.__version__


if __name__ == "__main__":
    sys.exit(main())
