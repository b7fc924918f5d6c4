"""How long the README's test command takes here: the suite's pytest (as `make test` runs it, lint and setup aside) with
N workers, its wall and CPU seconds, the counts, the slowest tests and the seconds per test file (a file is the unit
the workers share out). `--workers 2 --workers 1` runs both, one after the other, for a side-by-side ratio.

    PYTHONPATH=. .venv/bin/python -m benchmarks.test_time --workers 2      # ~20 min on this 2-core machine kind
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.bench_proc import PY, REPO, host_speed, run_timed

DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+?)::(\S+)")
OUT_LOG = Path(tempfile.gettempdir()) / "prism-test-time-failed.log"  # the whole pytest log of a run with failures
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|error).*?) in ([\d.]+)s")  # "1001 passed, 4 skipped, ... in 1170.50s (0:19:30)"


def pytest_cmd(workers: int) -> list[str]:
    """The Makefile's PYTEST (-n workers --dist loadfile), every duration printed, no cache written into the tree."""
    xdist = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
    return [str(PY), "-m", "pytest", "-q", "-ra", "--durations=0", "-p", "no:cacheprovider", *xdist]


def parse(log: str) -> dict:
    per_test: dict[str, float] = collections.Counter()
    per_file: dict[str, float] = collections.Counter()
    for line in log.splitlines():
        m = DURATION.match(line)
        if m:
            per_test[f"{m.group(3)}::{m.group(4)}"] += float(m.group(1))
            per_file[m.group(3)] += float(m.group(1))
    summary = next((m.group(1) for line in reversed(log.splitlines()) if (m := SUMMARY.match(line))), None)
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", summary or "")}
    failed = [line.split(" ", 1)[1] for line in log.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return {"summary": summary, "counts": counts, "failed": failed, "test_seconds_sum": round(sum(per_test.values()), 1),
            "slowest_tests_s": {k: round(v, 1) for k, v in per_test.most_common(15)},
            "files_s": {k: round(v, 1) for k, v in per_file.most_common(25)}}


def measure(workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="prism-test-time-") as tmp:
        log = Path(tmp) / "pytest.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        timed = run_timed(pytest_cmd(workers), env=env, cwd=REPO, log=log)
        text = log.read_text(errors="replace")
        if timed["rc"] != 0:  # the failures' reports, beside the results file
            Path(str(OUT_LOG)).write_text(text)
    return {"workers": workers, "rc": timed["rc"], "wall_s": timed["wall_s"], "wall_min": round(timed["wall_s"] / 60, 1),
            "cpu_s": timed["cpu_s"], "cores_busy_mean": round(timed["cpu_s"] / timed["wall_s"], 2) if timed["wall_s"] else None,
            **parse(text)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, action="append", help="pytest-xdist workers (repeat for a side-by-side run; default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "test_time.json")
    args = ap.parse_args(argv)
    host = host_speed()
    runs = [measure(w) for w in (args.workers or [2])]
    doc = {"benchmark": "test_time", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0], "host": host},
           "command": " ".join(pytest_cmd(2)[1:]) + "  (`make test`'s pytest; setup and lint apart)",
           "goal_min": 40, "runs": runs}
    if len(runs) > 1:
        base = next((r for r in runs if r["workers"] == 1), None)
        if base:
            doc["wall_over_one_worker"] = {r["workers"]: round(r["wall_s"] / base["wall_s"], 3) for r in runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({r["workers"]: {k: r[k] for k in ("rc", "wall_min", "cores_busy_mean", "counts")} for r in runs}, indent=1))
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
