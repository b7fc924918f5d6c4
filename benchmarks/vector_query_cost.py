"""What one vector ranking costs at a million rows: LanceDB's IVF-RQ query alone (by probes, limit, fast_search) against
the backend's `nearest` on the same pinned table version, CPU milliseconds per query, side by side.

    PYTHONPATH=. .venv/bin/python -m benchmarks.vector_query_cost --index DIR [--queries 80] [--reps 3]

DIR: an index built by benchmarks/search_load.py (800,000 speech rows, 384-d IVF-RQ over ~894 partitions). Random unit
query vectors; each variant runs the same queries, variants interleaved round by round; `time.process_time` of this
process (LanceDB's threads included) per query, the median round. The backend variant is `LanceBackend.nearest` with
the serving process's resident copy (the ranking on the pinned version, the candidates' columns from memory: what a
search pays for its vector channel). Writes benchmarks/results/vector_query_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "vector_query_cost.json"


def main(argv=None) -> int:
    from prism_assets.index.backend import NPROBES, LanceBackend
    from prism_assets.index.search import CANDIDATES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=80)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not (args.index / "speech.lance").exists():
        ap.error(f"{args.index}: not an index built by benchmarks/search_load.py")
    load0 = list(os.getloadavg())
    b = LanceBackend(str(args.index))
    b.enable_residents(1_000_000, refresh_s=3600)
    probe = np.full(384, 384 ** -0.5, dtype=np.float32)
    deadline = time.monotonic() + 300
    while not (b.residents.held().get("speech")) and time.monotonic() < deadline:
        b.nearest("speech", "vector", probe)
        time.sleep(0.5)
    res = b.residents.get("speech")
    if res is None:
        raise SystemExit("the resident copy of speech did not load in 300 s")
    rng = np.random.default_rng(1)
    qs = rng.standard_normal((args.queries, 384)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)

    def lance(nprobes: int, limit: int = CANDIDATES, fast: bool = False):
        def f(q):
            x = res.handle.query().nearest_to(q).column("vector").distance_type("cosine").nprobes(nprobes).limit(limit)
            return b._run((x.fast_search() if fast else x).select(["_distance"]).with_row_id().to_arrow())
        return f

    variants = {
        f"lance nprobes {NPROBES}": lance(NPROBES), "lance nprobes 20": lance(20), "lance nprobes 1": lance(1),
        f"lance nprobes {NPROBES} limit 10": lance(NPROBES, 10), f"lance nprobes {NPROBES} fast_search": lance(NPROBES, fast=True),
        f"backend nearest (resident, nprobes {NPROBES})": lambda q: b.nearest("speech", "vector", q, limit=CANDIDATES),
    }
    for f in variants.values():  # warm: the index partitions in Lance's cache
        for q in qs[:5]:
            f(q)
    rounds: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.reps):
        for name, f in variants.items():
            c0 = time.process_time()
            for q in qs:
                f(q)
            rounds[name].append(round((time.process_time() - c0) / len(qs) * 1000, 3))
    med = {k: round(statistics.median(v), 2) for k, v in rounds.items()}
    doc = {"benchmark": "vector_query_cost", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                       "loadavg_start_end": [load0, list(os.getloadavg())]},
           "index": str(args.index), "rows": len(res), "candidates": CANDIDATES, "queries": args.queries, "reps": args.reps,
           "cpu_ms_per_query_median": med, "cpu_ms_per_query_rounds": rounds,
           "fixed_part_ms": med["lance nprobes 1"], "backend_over_lance_ms": round(med[f"backend nearest (resident, nprobes {NPROBES})"] - med[f"lance nprobes {NPROBES}"], 2),
           "method": __doc__.split("\n\n", 2)[2].strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(med, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
