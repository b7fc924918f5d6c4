"""The ANN indexes of the index's vector columns: built, checked and rebuilt by `LanceBackend.maintain()`.

Text vectors (384-d cosine, `vector`) get IVF-RQ (RaBitQ, 1 bit a dimension); the frames' colour-layout vectors
(`frame_vec`, l2, few dimensions: RaBitQ's one bit a dimension is too coarse there) keep IVF-PQ. Measured side by side
on the 800,000 random vectors of the load index (benchmarks/results/ann_recall.json, the `ivf-rq` runs): at 100 probes
IVF-RQ found a planted neighbour at cosine 0.9 / 0.7 / 0.5 99.7 / 93.3 / 71.3 % of the time at 5.1-5.9 ms CPU a query,
IVF-PQ 100 / 90 / 68.3 % at 8.5-9.3 ms; it builds in ~30 s where IVF-PQ took ~2 min."""

from __future__ import annotations

import numpy as np


def ivf_partitions(t, column: str) -> int | None:
    """The IVF partitions `column`'s index really has (None: no index, or LanceDB's plan does not say). LanceDB
    reports them only in a query plan (`partitions_ranked`); the index's name says what was asked for."""
    import re

    dim = t.schema.field(column).type.list_size
    try:
        plan = (t.search(np.full(dim, 1.0 / dim ** 0.5, dtype=np.float32), vector_column_name=column)
                .distance_type("l2" if column == "frame_vec" else "cosine").nprobes(1).limit(1).select([]).analyze_plan())
    except Exception:  # noqa: BLE001  (no index on the column, an empty table)
        return None
    got = [int(x) for x in re.findall(r"partitions_ranked=(\d+)", plan)]
    return max(got) if got else None


def ensure_vector_index(t, column: str, rows: int) -> dict:
    """IVF with ~sqrt(rows) partitions (k-means; HNSW took over 20 min to build at a million rows on 2 cores): RQ for
    the text vectors, PQ with 8 dimensions per sub-vector for `frame_vec` (`index_kind`). Its name records the kind and
    the partition count (`vector_ivfrq_p894`); the index is rebuilt when it is of another kind (an older release's
    IVF-PQ text index), when the table has grown 4x past it (a search reads `nprobes` partitions: too few partitions
    make each one a scan of thousands of rows), or when it holds fewer than half the partitions its name says.

    BUG (LanceDB 0.40): an index built with `num_partitions` lost them at the next `optimize()`: its incremental
    maintenance joins the partitions it finds undersized against its own default target size (894 partitions of a
    million rows became 25 of 32,000, and every vector query scanned 40 % of the table). Built with
    `target_partition_size` (rows / partitions), optimize() keeps that size (test_index.py)."""
    import re

    from lancedb.index import IvfPq, IvfRq

    want = max(16, int(rows ** 0.5))
    kind = index_kind(column)
    have = [i for i in t.list_indices() if column in (getattr(i, "columns", None) or [])]
    m = re.fullmatch(rf"{column}_ivf{kind}_p(\d+)", have[0].name) if have else None
    named = int(m.group(1)) if m else 0
    real = ivf_partitions(t, column) if m else None
    if m and named * 2 >= want and (real is None or real * 2 >= named):  # sqrt: 4x the rows doubles the wanted partitions
        return {"ivf_partitions": real, "rebuilt": False, "kind": f"ivf_{kind}"}
    for i in have:
        t.drop_index(i.name)
    dim = t.schema.field(column).type.list_size
    size = max(1, rows // want)
    config = (IvfRq(distance_type="cosine", target_partition_size=size, num_bits=1) if kind == "rq" else
              IvfPq(distance_type="l2" if column == "frame_vec" else "cosine", target_partition_size=size, num_sub_vectors=max(1, dim // 8)))
    t.create_index(column, config=config, replace=True, name=f"{column}_ivf{kind}_p{want}")
    was = {"named": named, "real": real} if m else ({"index": have[0].name} if have else None)
    return {"ivf_partitions": ivf_partitions(t, column), "rebuilt": True, "kind": f"ivf_{kind}", "was": was}


def index_kind(column: str) -> str:
    """`rq` (IVF-RQ) for the text vectors, `pq` (IVF-PQ) for the frames' low-dimensional l2 vectors."""
    return "pq" if column == "frame_vec" else "rq"
