"""The asset-check state of `qc`'s six per-title checks at 10,000 titles: Dagster's computation from scratch against the
state Prism's instance keeps (core/check_state.py), side by side in one process on one instance.

    PYTHONPATH=. .venv/bin/python -m benchmarks.check_state [--home DIR] [--titles 10000] [--repeats 3] [--out FILE]

The instance is benchmarks/ui_scale.py's (`build_instance`, every materialized title's checks evaluated: 54,000
evaluations, each naming the materialization it checked), built in a temporary DAGSTER_HOME unless `--home` names one
already built (a copy is used: the run adds events). Timed, median of `--repeats`:
- `dagster_from_scratch_s`: `bulk_update_asset_check_state` from empty states, what Dagster 1.13 does on every request;
- `prism_cold_s`: the instance's `get_asset_check_state` with nothing kept (a fresh instance: the webserver's first
  request, and once every FULL_EVERY_S);
- `prism_nothing_new_s`: the same again with no event since;
- `prism_after_one_event_s`: after one new materialization of a title (the records since are read).
Each repeat checks that both give the same state (titles per status per check).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _view(states: dict) -> dict:
    return {str(k): {st.value: len(list(sub.value.get_partition_keys())) for st, sub in s.subsets.items()} for k, s in states.items()}


def measure(home: Path, repeats: int) -> dict:
    from dagster import AssetCheckKey, AssetKey, AssetMaterialization, DagsterInstance
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state

    from benchmarks.ui_scale import ASSET, qc_checks
    from prism_assets.partitions import titles_partitions

    keys = [(AssetCheckKey(AssetKey(ASSET), n), titles_partitions) for n in qc_checks()]
    times: dict[str, list[float]] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    for i in range(repeats):
        with DagsterInstance.from_config(str(home)) as instance, partition_loading_context(dynamic_partitions_store=instance):
            assert type(instance).__name__ == "PrismInstance", "the instance's dagster.yaml must select PrismInstance"
            storage = instance.event_log_storage
            fresh = timed("dagster_from_scratch_s", lambda inst=instance: bulk_update_asset_check_state(inst, keys, {k: AssetCheckState.empty() for k, _ in keys}))
            cold = timed("prism_cold_s", lambda s=storage: s.get_asset_check_state(keys))
            timed("prism_nothing_new_s", lambda s=storage: s.get_asset_check_state(keys))
            instance.report_runless_asset_event(AssetMaterialization(ASSET, partition=f"title-{i:05d}"))
            after = timed("prism_after_one_event_s", lambda s=storage: s.get_asset_check_state(keys))
            again = bulk_update_asset_check_state(instance, keys, {k: AssetCheckState.empty() for k, _ in keys})
            if _view(fresh) != _view(cold) or _view(after) != _view(again):
                raise SystemExit("the kept state differs from Dagster's")
    return {"median_s": {k: round(statistics.median(v), 3) for k, v in times.items()}, "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "state": _view(cold)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="a DAGSTER_HOME built by ui_scale.build_instance (copied, not changed)")
    ap.add_argument("--titles", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "check_state.json")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="prism-check-state-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    home = work / "home"
    try:
        built = None
        if args.home:
            shutil.copytree(args.home, home)
        else:
            from benchmarks.ui_scale import build_instance

            home.mkdir()
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
            os.environ["DAGSTER_HOME"] = str(home)
            built = build_instance(home, args.titles, 1)
        os.environ["DAGSTER_HOME"] = str(home)
        got = measure(home, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from benchmarks.bench_proc import host_speed

    m = got["median_s"]
    doc = {"benchmark": "check_state", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0], "host": host_speed(),
                       "load_average_start": round(os.getloadavg()[0], 2)},
           "instance": built or {"home": "built by ui_scale.build_instance (every materialized title's checks evaluated)", "titles": args.titles},
           **got, "speedup": {"cold": round(m["dagster_from_scratch_s"] / m["prism_cold_s"], 1),
                              "after_one_event": round(m["dagster_from_scratch_s"] / m["prism_after_one_event_s"], 1),
                              "nothing_new": round(m["dagster_from_scratch_s"] / m["prism_nothing_new_s"], 1)},
           "note": "the same state from both (checked each repeat); wall seconds in one process, side by side"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: doc[k] for k in ("median_s", "speedup")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
