"""Vector search (IVF-PQ) of the load index: recall of a planted neighbour and CPU per query, by `nprobes`.

    PYTHONPATH=. .venv/bin/python -m benchmarks.ann_recall --index DIR [--label NAME] [--nprobes 10,20,40,80,160] [--out FILE]

DIR is an index built by `benchmarks.search_load` (its `speech` table: 800,000 random unit 384-d vectors). For 300 of
its rows, a query is the row's vector plus noise, at cosine 0.9, 0.7 and 0.5 to it; a query "finds" its row when the row
is among the 30 candidates a search reads (`search.CANDIDATES`). Random vectors have no clusters: the worst case for
an IVF index (real sentence embeddings cluster, and find their neighbours with fewer probes). Also reported: the IVF
partitions the index really has (`index.ann.ivf_partitions`: LanceDB's optimize() once shrank an index built by
`num_partitions`, see index/ann.py `ensure_vector_index`). Results are appended to `--out` under the label.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "ann_recall.json"


def measure(index: Path, nprobes: list[int], rows: int = 300, seed: int = 0) -> dict:
    import lancedb

    from prism_assets.index.ann import ivf_partitions
    from prism_assets.index.search import CANDIDATES

    t = lancedb.connect(str(index)).open_table("speech")
    rng = np.random.default_rng(seed)
    sample = t.search().where("row_id LIKE 't0001%'").select(["row_id", "vector"]).limit(rows).to_arrow()
    ids = sample.column("row_id").to_pylist()
    vecs = np.stack(sample.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    out = {"rows": t.count_rows(), "ivf_partitions": ivf_partitions(t, "vector"),
           "index": next((i.name for i in t.list_indices() if "vector" in (i.columns or [])), None), "by_cosine": {}}
    for cos in (0.9, 0.7, 0.5):
        sigma = np.sqrt(1 / cos ** 2 - 1) / np.sqrt(vecs.shape[1])  # noise whose norm makes the query's cosine to its row ~cos
        q = vecs + rng.standard_normal(vecs.shape).astype(np.float32) * sigma
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        for npb in nprobes:
            found, c0 = 0, time.process_time()
            for qi, rid in zip(q, ids):
                got = (t.search(qi, vector_column_name="vector").distance_type("cosine").nprobes(npb).limit(CANDIDATES)
                       .select(["row_id"]).to_arrow().column("row_id").to_pylist())
                found += rid in got
            out["by_cosine"].setdefault(str(cos), {})[str(npb)] = {"found": found, "of": len(ids), "recall": round(found / len(ids), 3),
                                                                  "cpu_ms": round((time.process_time() - c0) * 1000 / len(ids), 2)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--nprobes", default="10,20,40,80,160")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    doc = json.loads(args.out.read_text()) if args.out.exists() else {"benchmark": "ann_recall", "runs": []}
    run = {"label": args.label or str(args.index), "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
           "load_average_start": round(os.getloadavg()[0], 2),
           **measure(args.index, [int(x) for x in args.nprobes.split(",")])}
    run["load_average_end"] = round(os.getloadavg()[0], 2)
    doc["runs"].append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
