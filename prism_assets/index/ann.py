"""The ANN (IVF-PQ) indexes of the index's vector columns: built, checked and rebuilt by `LanceBackend.maintain()`."""

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
    """IVF-PQ with ~sqrt(rows) partitions (k-means; builds in ~3 min at a million rows on 2 cores, where HNSW took
    over 20) and 8 dimensions per PQ sub-vector. Its name records the partition count; the index is rebuilt when the
    table has grown 4x past it (a search reads `nprobes` partitions: too few partitions make each one a scan of
    thousands of rows), or when it holds fewer than half the partitions its name says.

    BUG (LanceDB 0.40): an index built with `num_partitions` lost them at the next `optimize()`: its incremental
    maintenance joins the partitions it finds undersized against its own default target size (894 partitions of a
    million rows became 25 of 32,000, and every vector query scanned 40 % of the table). Built with
    `target_partition_size` (rows / partitions), optimize() keeps that size (test_index.py)."""
    import re

    from lancedb.index import IvfPq

    want = max(16, int(rows ** 0.5))
    have = [i for i in t.list_indices() if column in (getattr(i, "columns", None) or [])]
    m = re.fullmatch(rf"{column}_ivfpq_p(\d+)", have[0].name) if have else None
    named = int(m.group(1)) if m else 0
    real = ivf_partitions(t, column) if m else None
    if m and named * 2 >= want and (real is None or real * 2 >= named):  # sqrt: 4x the rows doubles the wanted partitions
        return {"ivf_partitions": real, "rebuilt": False}
    for i in have:
        t.drop_index(i.name)
    dim = t.schema.field(column).type.list_size
    t.create_index(column, config=IvfPq(distance_type="l2" if column == "frame_vec" else "cosine", target_partition_size=max(1, rows // want),
                                        num_sub_vectors=max(1, dim // 8)), replace=True, name=f"{column}_ivfpq_p{want}")
    return {"ivf_partitions": ivf_partitions(t, column), "rebuilt": True, "was": {"named": named, "real": real} if m else None}
