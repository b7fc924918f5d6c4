"""The `hit` column of the text tables: a search hit's display fields packed into one JSON string.

A search reads up to ~100 candidate rows by random access, and LanceDB's cost of a random read is
mostly per column (~0.25 ms a column on top of ~0.7 ms a read, at a million rows on 2 cores): the nine
fields a hit shows (row id, title, times, timecode, structure, scene, language, track) read as one
column make a candidate two columns (`text`, `hit`) instead of nine. The separate columns stay: they
are what filters (`where`) and the API's other reads use. The backend writes `hit` from the row's own
columns on every write (`pack_hits`), so it can never disagree with them; rows written before the
column existed (null `hit`) are read through their columns instead (`LanceBackend._unpack`).
"""

from __future__ import annotations

import json

import pyarrow as pa

HIT_FIELDS = ("row_id", "title_id", "start_s", "end_s", "timecode", "structure", "scene_index", "language", "track")
SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
PACKED_TABLES = ("speech", "subtitles", "ocr")


def pack_hits(data: pa.Table) -> pa.Table:
    """`data` with its `hit` column set from its own HIT_FIELDS columns (a table without a `hit` column: unchanged)."""
    if "hit" not in data.column_names:
        return data
    cols = {f: data.column(f).to_pylist() for f in HIT_FIELDS if f in data.column_names}
    details = data.column("detail").to_pylist() if "detail" in data.column_names else [None] * data.num_rows
    packed = []
    for i in range(data.num_rows):
        hit = {f: v[i] for f, v in cols.items()}
        n = sentences(details[i])
        if n is not None:  # a speech row: whether a hit needs its word timings (search.narrow) at all
            hit["sentences"] = n
        packed.append(json.dumps(hit, ensure_ascii=False, separators=(",", ":")))
    return data.set_column(data.column_names.index("hit"), "hit", pa.array(packed, pa.string()))


def sentences(detail: str | None) -> int | None:
    """How many sentences the timed words of a speech row's `detail` hold (as `search.narrow` splits them); None when
    the detail has no word list (subtitles, OCR) or cannot be read."""
    try:
        words = json.loads(detail).get("words") if detail else None
    except (ValueError, AttributeError):
        return None
    if not isinstance(words, list):
        return None
    n, open_ = 0, False
    for w in words:
        if not isinstance(w, dict) or w.get("start") is None or w.get("end") is None:
            continue
        open_ = True
        if str(w.get("word", "")).rstrip().endswith(SENTENCE_ENDS):
            n, open_ = n + 1, False
    return n + int(open_)


def packed(columns) -> tuple[list[str], list[str]]:
    """The columns to read for `columns` (packed ones replaced by `hit`), and the packed ones asked for."""
    inside = [c for c in columns if c in HIT_FIELDS]
    rest = [c for c in columns if c not in HIT_FIELDS]
    return (rest + ["hit"] if inside else rest), inside


def unpack(row: dict, wanted: list[str]) -> bool:
    """Expand the row's `hit` (the wanted fields and every other packed one); False when it has none (a row written
    before the column: the caller reads the wanted fields from their columns)."""
    raw = row.pop("hit", None)
    if not raw:
        return False
    values = json.loads(raw)
    for f in wanted:
        row.setdefault(f, None)
    row.update(values)  # every packed field, asked for or not: they cost nothing more (the hit's timecode, structure, ...)
    return True
