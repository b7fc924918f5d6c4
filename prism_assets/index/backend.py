"""The cross-title index's storage seam: `SearchBackend`, and its LanceDB implementation.

Tables (schemas in `tables.py`, documented in docs/schema.md "Index"): `titles` (one row per
title), `units` (shots / <= 10 s windows), `frames` (query-by-frame vectors), `speech`,
`subtitles`, `ocr` (text rows with a MiniLM vector and an n-gram full-text index), `events` (QC
and localization events). Every row carries `title_id` and `index_version` (the run that wrote it).

Writes: `replace_title` replaces exactly one title's rows in each table with ONE atomic commit per
table (LanceDB `merge_insert` on `row_id` with `when_not_matched_by_source_delete("title_id = ...")`:
rows of the title that the new set lacks are deleted in the same commit), the `titles` row last. A
writer that dies mid-write leaves every table at a complete version (the old or the new rows of
that title); the re-run replaces them again. One writer at a time: the `index` asset runs in the
`index` pool (limit 1). Readers never block and see a table's newest version within
`read_consistency_s`.

Another engine (OpenSearch, Vespa, pgvector) replaces LanceDB by implementing `SearchBackend`;
the search logic (`search.py`) and the API only use this protocol.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Protocol

import numpy as np
import pyarrow as pa

from .ann import ensure_vector_index, ivf_partitions
from .packing import PACKED_TABLES, pack_hits, packed, unpack
from .resident import resident_rows
from .tables import FTS_TABLES, TABLES, schema_for

log = logging.getLogger("prism.index")
TITLE_TABLE = "titles"
VECTOR_COLUMNS = ("vector", "clip", "frame_vec")
# what a search candidate carries: each further column is a random read per candidate (12 columns made a query 3-4x
# slower than 5 at a million rows); the final hits' other columns are read once, by row_id (`hydrate` in search.py)
CANDIDATE_COLUMNS = ("row_id", "title_id", "start_s", "end_s", "text", "unit_index", "frame", "t_s", "dhash")


NPROBES = 100  # IVF partitions searched per vector query, of ~sqrt(rows) (894 at a million rows): on random 384-d vectors
# (the worst case: no clusters) 100 find a planted neighbour at cosine 0.9 / 0.7 / 0.5 100 / 92 / 66 % of the time at
# ~6.3 ms CPU; the shrunk index of before (25 partitions, 10 probes: 40 % of the rows) found 99 / 90 / 80 % at ~11 ms
# (benchmarks/results/ann_recall.json `chosen_nprobes`)


def _handles(rows: list[dict]) -> list[dict]:
    for r in rows:
        r["_handle"] = r.pop("_rowid", None)
    return rows


class IndexError_(RuntimeError):  # noqa: N801  (not the builtin IndexError)
    """The index cannot be opened or written: one line naming the index."""


@dataclass(frozen=True)
class Cond:
    """One filter condition: `column op value` (op: =, !=, <, <=, >, >=, in, not in, contains)."""

    column: str
    op: str
    value: Any


class SearchBackend(Protocol):
    def replace_title(self, title_id: str, rows: dict[str, list[dict]], title_row: dict) -> dict: ...
    def remove_title(self, title_id: str) -> dict: ...
    def title_ids(self) -> list[str]: ...
    def select(self, table: str, conds: Iterable[Cond] = (), columns: list[str] | None = None, limit: int = 1000,
               order_by: str | None = None) -> list[dict]: ...
    def fts(self, table: str, query: str, conds: Iterable[Cond] = (), limit: int = 50, column: str = "text", fuzziness: int = 0,
            columns: Iterable[str] = CANDIDATE_COLUMNS) -> list[dict]: ...
    def nearest(self, table: str, column: str, vector, conds: Iterable[Cond] = (), limit: int = 50) -> list[dict]: ...
    def fetch(self, table: str, keys: list[tuple[str, Any]], columns: list[str]) -> dict[str, dict]: ...
    def count(self, table: str, conds: Iterable[Cond] = ()) -> int: ...
    def revision(self) -> int: ...
    def maintain(self, older_than_s: float = 3600.0) -> dict: ...


def _sql_value(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(int(v))
    return "'" + str(v).replace("'", "''") + "'"


def where_sql(conds: Iterable[Cond]) -> str | None:
    """A SQL filter for LanceDB (DataFusion) from conditions; values are quoted, column names are
    from the fixed schemas (never from a request)."""
    parts = []
    for c in conds:
        if not c.column.replace("_", "").isalnum():
            raise ValueError(f"bad column {c.column!r}")
        if c.op in ("in", "not in"):
            values = list(c.value)
            if not values:
                parts.append("FALSE" if c.op == "in" else "TRUE")
                continue
            parts.append(f"{c.column} {'IN' if c.op == 'in' else 'NOT IN'} ({', '.join(_sql_value(v) for v in values)})")
        elif c.op == "contains":
            parts.append(f"array_has({c.column}, {_sql_value(c.value)})")
        elif c.op in ("=", "!=", "<", "<=", ">", ">="):
            parts.append(f"{c.column} IS NULL" if c.value is None and c.op == "=" else f"{c.column} {c.op} {_sql_value(c.value)}")
        else:
            raise ValueError(f"bad operator {c.op!r}")
    return " AND ".join(parts) or None


def s3_options(endpoint_url: str | None, region: str | None) -> dict:
    """LanceDB object-store options for an s3:// index (the deployment's endpoint and region)."""
    opts = {}
    if endpoint_url:
        opts["aws_endpoint"] = endpoint_url
        opts["allow_http"] = "true" if endpoint_url.startswith("http://") else "false"
    if region:
        opts["aws_region"] = region
    return opts


class LanceBackend:
    """The embedded default (a folder) and production (s3://) index."""

    def __init__(self, uri: str, *, options: dict | None = None, read_consistency_s: float = 2.0, clip_dim: int | None = None):
        import lancedb

        self.uri = uri
        try:
            self.db = lancedb.connect(uri, storage_options=options or None, read_consistency_interval=timedelta(seconds=read_consistency_s))
        except Exception as exc:  # noqa: BLE001
            raise IndexError_(f"cannot open the index at {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self._tables: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._options, self._read_s = options or None, float(read_consistency_s)
        self._readers: dict[str, tuple[float, Any]] = {}  # table -> (when opened, AsyncTable or None when absent)
        self._aconn = None
        self._schema_names: dict[str, tuple[float, list[str]]] = {}  # table -> (when read, column names): a column the
        # writer adds (an older index migrated) is seen within the read-consistency interval
        self._counts: dict[str, tuple[float, int]] = {}  # table -> (when, rows): searches skip empty tables
        self._revision: tuple[float, int] | None = None  # (when, the titles table's version)
        self._ttl = max(float(read_consistency_s), 0.0)
        self._clip_dim = clip_dim
        self.nprobes = NPROBES
        self.residents = None  # resident.Residents: a serving process's candidates in memory (enable_residents)

    @classmethod
    def from_settings(cls, settings, **kw) -> "LanceBackend":
        return cls(settings.index_location, options=s3_options(settings.s3_endpoint_url, settings.s3_region), **kw)

    # -- tables
    def _existing(self) -> set[str]:
        return set(self.db.list_tables().tables) if hasattr(self.db, "list_tables") else set(self.db.table_names())

    def table(self, name: str, create_with: pa.Schema | None = None):
        with self._lock:
            t = self._tables.get(name)
            if t is not None:
                return t
            if name in self._existing():
                t = self.db.open_table(name)
                if create_with is not None:
                    self._migrate(name, t, create_with)
            elif create_with is not None:
                t = self.db.create_table(name, schema=create_with, exist_ok=True)
            else:
                return None
            self._tables[name] = t
            return t

    # -- the read path: LanceDB's async API on its background loop. A search makes 3-6 reads; through the sync
    # wrappers each paid ~3 ms of Python (a schema round trip, the query builder) before Lance did any work.
    @staticmethod
    def _run(coro):
        from lancedb.background_loop import LOOP

        return LOOP.run(coro)

    def _reader(self, name: str):
        """The table's async handle for reads, or None when the table does not exist (re-checked after the
        read-consistency interval, so a table created by the writer process appears)."""
        import time

        now = time.monotonic()
        with self._lock:
            hit = self._readers.get(name)
            if hit is not None and (hit[1] is not None or now - hit[0] <= self._ttl):
                return hit[1]
            if self._aconn is None:
                import lancedb

                self._aconn = self._run(lancedb.connect_async(self.uri, storage_options=self._options,
                                                              read_consistency_interval=timedelta(seconds=self._read_s)))
            t = self._run(self._aconn.open_table(name)) if name in set(self._run(self._aconn.table_names())) else None
            self._readers[name] = (now, t)
            self._schema_names.pop(name, None)
            return t

    def _fresh(self, name: str | None = None) -> None:
        """After a write through this backend, its own reads see the new version at once."""
        if self.residents is not None:
            self.residents.drop(name)
        with self._lock:
            self._revision = None
            for n in ([name] if name else list(self._readers)):
                self._readers.pop(n, None)
            if name:
                self._counts.pop(name, None)
            else:
                self._counts.clear()

    def _columns(self, table: str, t) -> list[str]:
        import time

        now = time.monotonic()
        hit = self._schema_names.get(table)
        if hit is None or now - hit[0] > self._ttl:
            hit = self._schema_names[table] = (now, list(self._run(t.schema()).names))
        return hit[1]

    def _keep(self, table: str, t, columns: Iterable[str]) -> list[str]:
        names = set(self._columns(table, t))
        return [c for c in columns if c in names]

    @staticmethod
    def _migrate(name: str, t, want: pa.Schema) -> None:
        """A table written by an older index schema gets the columns added since (null in its old rows: e.g. `cjk`,
        filled when each title is written again); a change that cannot be added is one line asking for a rebuild."""
        have = set(t.schema.names)
        missing = [f for f in want if f.name not in have]
        sql = {pa.string(): "STRING", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
        if any(f.type not in sql for f in missing):
            raise IndexError_(f"{name}: the index was written by an older schema ({', '.join(f.name for f in missing)} missing): "
                              "remove the index folder and process the titles again")
        if missing:
            t.add_columns({f.name: f"CAST(NULL AS {sql[f.type]})" for f in missing})

    def _schema(self, name: str, rows: list[dict]) -> pa.Schema:
        dim = None
        if name == "units":
            dim = next((len(r["clip"]) for r in rows if r.get("clip") is not None), None) or self._clip_dim or 512
        return schema_for(name, clip_dim=dim)

    def ensure_fts(self, name: str, t) -> None:
        """The table's indexes, once it has rows: BTREE on `row_id` and `title_id` (the merge key and the title
        filter), and for text tables the two full-text indexes."""
        have = {c for i in t.list_indices() for c in (getattr(i, "columns", None) or [])}
        for col in ("row_id", "title_id"):
            if col not in have and col in t.schema.names:
                t.create_scalar_index(col, index_type="BTREE", replace=True)
        if name not in FTS_TABLES:
            return
        from lancedb.index import FTS

        # words (accent- and case-folded; typos through fuzzy matching at query time): milliseconds at a million rows, where
        # character n-grams of Latin text took seconds (every 2-gram's postings list is most of the table)
        if "text" not in have:
            t.create_index("text", config=FTS(base_tokenizer="simple", lower_case=True, ascii_folding=True, stem=False, remove_stop_words=False),
                           replace=True)
        # the CJK runs alone, as character 2-3-grams: a 2-character Korean/Japanese query matches inside a word
        if "cjk" not in have:
            t.create_index("cjk", config=FTS(base_tokenizer="ngram", ngram_min_length=2, ngram_max_length=3, lower_case=True,
                                             ascii_folding=False, stem=False, remove_stop_words=False), replace=True)

    # -- writes
    def replace_title(self, title_id: str, rows: dict[str, list[dict]], title_row: dict) -> dict:
        """Replace one title's rows in every table (one atomic commit per table), then its titles row."""
        counts = {}
        for name in TABLES:
            if name == TITLE_TABLE:
                continue
            table_rows = rows.get(name, [])
            schema = self._schema(name, table_rows)
            t = self.table(name, create_with=schema)
            if t is None:
                continue
            if name == "units" and table_rows:
                have = t.schema.field("clip").type.list_size
                if table_rows[0].get("clip") is not None and len(table_rows[0]["clip"]) != have:
                    raise IndexError_(f"units: CLIP vectors of {len(table_rows[0]['clip'])} dimensions, the index holds {have}: "
                                      "rebuild the index after a CLIP model change (prism index rebuild)")
            data = pack_hits(pa.Table.from_pylist(table_rows, schema=t.schema))
            cond = where_sql([Cond("title_id", "=", title_id)])
            res = (t.merge_insert("row_id").when_matched_update_all().when_not_matched_insert_all()
                   .when_not_matched_by_source_delete(cond).execute(data, on_bad_vectors="null"))
            counts[name] = {"rows": len(table_rows), "inserted": res.num_inserted_rows, "updated": res.num_updated_rows,
                            "deleted": res.num_deleted_rows, "version": res.version}
            if table_rows:
                self.ensure_fts(name, t)
            self._fresh(name)
        t = self.table(TITLE_TABLE, create_with=schema_for(TITLE_TABLE))
        data = pa.Table.from_pylist([title_row], schema=t.schema)
        res = t.merge_insert("title_id").when_matched_update_all().when_not_matched_insert_all().execute(data)
        counts[TITLE_TABLE] = {"rows": 1, "version": res.version}
        self._fresh(TITLE_TABLE)
        return counts

    def remove_title(self, title_id: str) -> dict:
        out = {}
        for name in TABLES:
            t = self.table(name)
            if t is None:
                continue
            cond = where_sql([Cond("title_id", "=", title_id)])
            n = t.count_rows(cond)
            if n:
                t.delete(cond)
            out[name] = n
        self._fresh()
        return out

    # -- reads
    def title_ids(self) -> list[str]:
        t = self.table(TITLE_TABLE)
        return [] if t is None else sorted(t.to_arrow().column("title_id").to_pylist())

    def select(self, table: str, conds: Iterable[Cond] = (), columns: list[str] | None = None, limit: int = 1000,
               order_by: str | None = None) -> list[dict]:
        t = self._reader(table)
        if t is None:
            return []
        q = t.query()
        where = where_sql(conds)
        if where:
            q = q.where(where)
        cols = columns or [c for c in self._columns(table, t) if c not in VECTOR_COLUMNS]
        rows = self._run(q.select(cols).limit(limit).to_arrow()).to_pylist()
        if order_by:
            rows.sort(key=lambda r: (r.get(order_by) is None, r.get(order_by)))
        return rows

    def count(self, table: str, conds: Iterable[Cond] = ()) -> int:
        t = self._reader(table)
        return 0 if t is None else int(self._run(t.count_rows(where_sql(conds))))

    def is_empty(self, table: str) -> bool:
        """No row at all (cached for the read-consistency interval: an empty table costs a search nothing)."""
        import time

        now = time.monotonic()
        hit = self._counts.get(table)
        if hit is None or now - hit[0] > self._ttl:
            hit = self._counts[table] = (now, self.count(table))
        return hit[1] == 0

    def fts(self, table: str, query: str, conds: Iterable[Cond] = (), limit: int = 50, column: str = "text", fuzziness: int = 0,
            columns: Iterable[str] = CANDIDATE_COLUMNS) -> list[dict]:
        """BM25 candidates: `column` text (words, `fuzziness` edits per word) or cjk (character n-grams)."""
        from lancedb.query import MatchQuery

        if not query.strip() or self.is_empty(table):
            return []

        def ranked(t):
            q = t.query().nearest_to_text(MatchQuery(query, column, fuzziness=int(fuzziness), max_expansions=20))
            where = where_sql(conds)
            return (q.where(where) if where else q).limit(limit)  # `where`: a pre-filter

        try:
            return self._ranked(table, ranked, "_score", columns)
        except Exception as exc:  # noqa: BLE001  (no FTS index yet on an empty table)
            if "index" in str(exc).lower() and self.count(table) == 0:
                return []
            raise

    def nearest(self, table: str, column: str, vector, conds: Iterable[Cond] = (), limit: int = 50,
                columns: Iterable[str] = CANDIDATE_COLUMNS) -> list[dict]:
        if self.is_empty(table):
            return []

        def ranked(t):
            # NPROBES of ~sqrt(rows) IVF partitions (ignored without an ANN index: a flat scan is exact); `where` pre-filters
            q = (t.query().nearest_to(np.asarray(vector, dtype=np.float32)).column(column)
                 .distance_type("l2" if column == "frame_vec" else "cosine").nprobes(self.nprobes))
            where = where_sql(conds)
            return (q.where(where) if where else q).limit(limit)

        return self._ranked(table, ranked, "_distance", columns)

    # -- residents (resident.py): a serving process's candidates in memory
    def enable_residents(self, max_rows: int, refresh_s: float | None = None) -> None:
        """Hold the candidate columns of tables of up to `max_rows` rows in memory (a serving process; 0: never); a
        newer version is looked for every `refresh_s` (default: the read-consistency interval, at least MIN_REFRESH_S)."""
        from .resident import MIN_REFRESH_S, Residents

        refresh = max(self._ttl, MIN_REFRESH_S) if refresh_s is None else refresh_s  # default: the read-consistency interval
        self.residents = Residents(self, max_rows, refresh) if max_rows > 0 else None

    def _ranked(self, table: str, ranked, rank: str, columns: Iterable[str]) -> list[dict]:
        """A ranked query's candidates (`ranked(table handle)` builds it) with their `columns`. With the table's resident:
        the ranking alone on its pinned version, the columns from memory; else one query that reads its columns."""
        res = self.residents.get(table) if self.residents is not None else None
        if res is not None:
            try:
                rows = resident_rows(self, table, res, ranked(res.handle), rank, columns)
                if rows is not None:
                    return rows
            except Exception as exc:  # noqa: BLE001  (the pinned version's files cleaned up meanwhile: the live table)
                log.info("index: the resident copy of %s v%s cannot be read (%s): reading the live table", table, res.version,
                         str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                self.residents.drop(table)
        t = self._reader(table)
        if t is None:
            return []
        read, inside = self._plan(table, t, self._keep(table, t, columns))
        return self._unpack(t, _handles(self._run(ranked(t).select(read + [rank]).with_row_id().to_arrow()).to_pylist()), inside)

    def fetch(self, table: str, keys: list[tuple[str, Any]], columns: list[str]) -> dict[str, dict]:
        """Rows by row_id, `columns` of each (row_id added). A key's handle (the `_handle` of an fts/nearest row: Lance's
        row id) is a direct read (one random read per column, no index lookup: half the time of `row_id IN (...)`); a
        handle that no longer names that row (the table was compacted meanwhile) falls back to the lookup by row_id."""
        t = self._reader(table)
        if t is None or not keys:
            return {}
        cols = self._keep(table, t, list(dict.fromkeys(["row_id", *columns])))
        out: dict[str, dict] = {}
        handles = [(rid, h) for rid, h in keys if h is not None]
        if handles:
            read, inside = self._plan(table, t, cols)
            rows = _handles(self._run(t.take_row_ids([int(h) for _, h in handles]).select(read).with_row_id().to_arrow()).to_pylist())
            for r in self._unpack(t, rows, inside):
                r.pop("_handle", None)
                out[r["row_id"]] = r
        wanted = {rid for rid, _ in keys}
        missing = sorted(wanted - out.keys())
        if missing:
            out.update({r["row_id"]: r for r in self.select(table, [Cond("row_id", "in", missing)], cols, limit=len(missing))})
        return {rid: r for rid, r in out.items() if rid in wanted}

    def _plan(self, table: str, t, columns: list[str]) -> tuple[list[str], list[str]]:
        """The columns to read for `columns`: a text table's hit fields as its one `hit` column (packing.py)."""
        if table in PACKED_TABLES and "hit" in self._columns(table, t):
            return packed(columns)
        return list(columns), []

    def _unpack(self, t, rows: list[dict], inside: list[str]) -> list[dict]:
        """Rows read by `_plan`: their `hit` expanded; a row written before the column (null `hit`) read by its columns."""
        if not inside:
            return rows
        stale = [r for r in rows if not unpack(r, inside)]
        if stale:
            fix = {x.pop("_rowid"): x for x in self._run(t.take_row_ids([int(r["_handle"]) for r in stale]).select(inside).with_row_id().to_arrow()).to_pylist()}
            for r in stale:
                r.update(fix.get(r["_handle"], {}))
        return rows

    def revision(self) -> int:
        """The titles table's version the searches read (every API response names it): asked of LanceDB at most once per
        read-consistency interval (a round trip to its loop per answer otherwise), as the reads themselves see a new
        version within that interval; a write through this backend is seen at once (`_fresh`)."""
        import time

        now = time.monotonic()
        hit = self._revision
        if hit is not None and self._ttl > 0 and now - hit[0] <= self._ttl:
            return hit[1]
        t = self._reader(TITLE_TABLE)
        rev = 0 if t is None else int(self._run(t.version()))
        self._revision = (now, rev)
        return rev

    def table_versions(self) -> dict[str, int]:
        return {name: int(t.version) for name in TABLES if (t := self.table(name)) is not None}

    # -- maintenance
    def maintain(self, older_than_s: float = 3600.0, vector_index_min_rows: int = 100_000) -> dict:
        """Compact small files, fold new rows into the indexes and delete versions older than
        `older_than_s` (the scheduled `index_maintenance` job); build ANN indexes on large tables."""
        out = {}
        for name in TABLES:
            t = self.table(name)
            if t is None:
                continue
            before = int(t.version)
            versions_before = len(t.list_versions())
            n = t.count_rows()
            if n:
                self.ensure_fts(name, t)
            vec_col = {"units": None, "frames": "frame_vec"}.get(name, "vector")
            ann = ensure_vector_index(t, vec_col, n) if vec_col and n >= vector_index_min_rows else None
            t.optimize(cleanup_older_than=timedelta(seconds=older_than_s), delete_unverified=False)
            out[name] = {"rows": n, "version_before": before, "version_after": int(t.version),
                         "old_versions_removed": max(versions_before + 1 - len(t.list_versions()), 0)}
            if ann is not None:
                out[name]["ann"] = {**ann, "ivf_partitions_after_optimize": ivf_partitions(t, vec_col)}
        self._fresh()  # new versions: this backend's reads (and its revision) see them at once
        return out
