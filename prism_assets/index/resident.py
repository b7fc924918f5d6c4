"""Search candidates' columns held in memory by a serving process, at one pinned version of a table.

A search reads ~30-90 candidates per call (full-text and vector rankings) and needs each one's text (to score it) and
its hit fields. Lance reads a row's column values by decoding the page chunk that holds it: ~0.1 ms of CPU per row at
a million rows, most of a search's CPU (benchmarks/results/search_cpu.json). A `Resident` is those columns of every row
of one table version, sorted by Lance's row address, so a candidate costs a binary search.

Consistency: the ranked queries of a table with a resident run against the same pinned version (a checked-out
handle), so every address they return names exactly the row the resident holds. A newer version (a writer's) is
noticed within the refresh interval (the backend's read-consistency interval, 2 s) and a new resident is built beside
the old in a background thread, then swapped in: searches lag a write by the interval plus the build (~1.2 s at
800,000 rows on 2 cores) where reads of the live table lag it by the interval. A write through the same
backend drops the table's resident at once (its own reads see the write). A pinned version whose files were cleaned
up meanwhile makes the search fall back to the live table and the resident be rebuilt. Tables of more than
`max_rows` rows (PRISM_SERVE_RESIDENT_ROWS, default 1,000,000; 0: none) are never held (memory: ~290 bytes a row per
server process, 233 MB for the load benchmark's 800,000 speech rows; twice that while a newer version is loaded).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

log = logging.getLogger("prism.index")
MIN_REFRESH_S = 0.25  # the least time between two checks of a table's latest version (a serving backend checks every
# read-consistency interval, 2 s by default)
RETRY_S = 60.0  # after a build that failed (a build reads every row: never in a loop)
STUCK_S = 300.0  # a build still running after this long (an object store that stopped answering): the searches read the
# live table instead of an ever older copy


def latest_version(backend, table: str) -> int | None:
    """The table's latest version (a handle opened now: the backend's reader may be a read-consistency interval behind)."""
    if backend._reader(table) is None:  # also opens the backend's async connection
        return None
    return int(backend._run(backend._run(backend._aconn.open_table(table)).version()))


def build(backend, table: str, version: int, max_rows: int) -> "Resident | None":
    """The table's resident at `version` (None: more rows than `max_rows`): its candidate columns (`CANDIDATE_COLUMNS`,
    as the backend's reads plan them) of every row, read once through a handle checked out at that version."""
    from .backend import CANDIDATE_COLUMNS

    backend._reader(table)
    h = backend._run(backend._aconn.open_table(table))
    backend._run(h.checkout(int(version)))
    if int(backend._run(h.count_rows())) > max_rows:
        return None
    read, _ = backend._plan(table, h, backend._keep(table, h, CANDIDATE_COLUMNS))
    res = Resident(table, h, version, backend._run(h.query().select(read).with_row_id().to_arrow()))
    _trim()
    return res


def _trim() -> None:
    """The scan's buffers (Lance's, freed once copied into one chunk) back to the system: Arrow's pool, then glibc's
    arenas (measured: +500 MB instead of +250 MB a worker at 800,000 rows without it)."""
    import pyarrow as pa

    from ..core.model_release import release_free_heap

    pa.default_memory_pool().release_unused()
    release_free_heap()


def resident_rows(backend, table: str, res: "Resident", q, rank: str, columns) -> list[dict] | None:
    """A ranked query `q` (built on the resident's pinned handle) run for its ranking alone, the candidates' columns
    from memory; None when the resident does not hold the columns asked for (the caller reads the live table)."""
    read, inside = backend._plan(table, res.handle, backend._keep(table, res.handle, columns))
    if not set(read) <= set(res.rows.column_names):
        return None
    ranked = backend._run(q.select([rank]).with_row_id().to_arrow())
    ids, ranks = ranked.column("_rowid").to_pylist(), ranked.column(rank).to_pylist()
    got = res.read(ids)
    if got is None:
        return None
    rows = [{**{c: got[i][c] for c in read}, rank: v, "_handle": i} for i, v in zip(ids, ranks)]
    return backend._unpack(res.handle, rows, inside)


class Resident:
    """One table version's candidate columns, sorted by Lance row address."""

    def __init__(self, table: str, handle, version: int, rows):
        import pyarrow.compute as pc

        self.table, self.handle, self.version = table, handle, int(version)
        addresses = rows.column("_rowid").to_numpy()
        if len(addresses) > 1 and not bool((addresses[1:] > addresses[:-1]).all()):  # a scan reads in address order
            rows = rows.take(pc.sort_indices(rows.column("_rowid")))
            addresses = rows.column("_rowid").to_numpy()
        rows = rows.combine_chunks()  # one chunk: a take across the scan's ~800 batches costs ~20x one within a chunk
        self.addresses = addresses
        self.rows = rows.drop_columns(["_rowid"])
        self.nbytes = int(self.rows.nbytes + self.addresses.nbytes)

    def __len__(self) -> int:
        return len(self.addresses)

    def read(self, ids: list[int]) -> dict[int, dict] | None:
        """The rows at these addresses (address -> columns), or None when one is not held (not this version's)."""
        if not ids:
            return {}
        want = np.asarray(ids, dtype=np.uint64)
        pos = np.searchsorted(self.addresses, want)
        if (pos >= len(self.addresses)).any() or (self.addresses[np.minimum(pos, len(self.addresses) - 1)] != want).any():
            return None
        return dict(zip(ids, self.rows.take(pos).to_pylist()))


class Residents:
    """The residents of a backend's tables: looked up per search, refreshed in the background."""

    def __init__(self, backend, max_rows: int, refresh_s: float = 2.0):
        self.backend, self.max_rows, self.refresh_s = backend, int(max_rows), max(float(refresh_s), 0.0)
        self._held: dict[str, Resident] = {}
        self._checked: dict[str, float] = {}
        self._building: dict[str, float] = {}  # table -> when its build started
        self._generation = 0  # bumped by every drop: a build that started before a drop is not installed after it
        self._lock = threading.Lock()

    def get(self, table: str) -> Resident | None:
        """The table's resident (it may be a version behind the latest for up to the refresh interval plus a build), or
        None while there is none yet; asks for a build when there is none or the table has a newer version."""
        if self.max_rows <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            held = self._held.get(table)
            due = now - self._checked.get(table, -1e9) >= self.refresh_s and table not in self._building
            if due:
                self._checked[table] = now
                self._building[table] = now
            elif held is not None and now - self._building.get(table, now) > STUCK_S:
                log.warning("index: the resident copy of %s is still loading after %.0f s: searches read the live table", table, STUCK_S)
                self._held.pop(table, None)
                held = None
            generation = self._generation
        if due:
            threading.Thread(target=self._refresh, args=(table, held, generation), name=f"prism-resident-{table}", daemon=True).start()
        return held

    def held(self) -> dict[str, dict]:
        """table -> {version, rows, bytes} of the residents held now (health, benchmarks)."""
        with self._lock:
            return {n: {"version": r.version, "rows": len(r), "bytes": r.nbytes} for n, r in self._held.items()}

    def drop(self, table: str | None = None) -> None:
        """Forget a table's resident (all with None): a write through this backend, or a pinned version gone."""
        with self._lock:
            self._generation += 1
            for name in ([table] if table else list(self._held)):
                self._held.pop(name, None)
                self._checked.pop(name, None)

    def _refresh(self, table: str, held: Resident | None, generation: int) -> None:
        try:
            latest = latest_version(self.backend, table)
            if latest is None or (held is not None and held.version == latest):
                return
            built = build(self.backend, table, latest, self.max_rows)
            with self._lock:
                if self._generation != generation:  # dropped meanwhile (a write through this backend): built too early
                    return
                if built is None:
                    self._held.pop(table, None)
                else:
                    self._held[table] = built
        except Exception as exc:  # noqa: BLE001  (a resident is an optimisation: the searches read the live table)
            log.warning("index: no resident copy of %s (%s)", table, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            with self._lock:
                self._held.pop(table, None)
                self._checked[table] = time.monotonic() + RETRY_S - self.refresh_s  # the next try in RETRY_S, not at every refresh
        finally:
            with self._lock:
                self._building.pop(table, None)
