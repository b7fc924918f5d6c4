"""An index written by an older schema (a text table without `cjk`) is brought up to date on the next write."""

import pyarrow as pa
import pytest

from prism_assets.index.backend import Cond, LanceBackend
from prism_assets.index.tables import schema_for

from .test_index import T1, FakeEmbedder, build_title

pytestmark = pytest.mark.unit


def test_a_table_of_an_older_schema_gets_the_new_columns(tmp_path):
    backend = LanceBackend(str(tmp_path / "index"), read_consistency_s=0)
    old = pa.schema([f for f in schema_for("speech") if f.name != "cjk"])
    backend.db.create_table("speech", schema=old)
    rows, trow, _ = build_title(T1, FakeEmbedder())
    backend.replace_title(T1, rows, trow)
    fresh = LanceBackend(str(tmp_path / "index"), read_consistency_s=0)
    assert "cjk" in fresh.table("speech").schema.names
    assert fresh.count("speech", [Cond("title_id", "=", T1)]) == len(rows["speech"])


def test_rows_without_the_packed_hit_column_read_like_packed_ones(tmp_path):
    """Schema 1.0 text rows (no `hit`) and 1.1 rows (with it) give the same candidates and fetches: the packed fields
    are the row's own columns, and a row whose `hit` is null is read through its columns."""
    rows, trow, _ = build_title(T1, FakeEmbedder())
    new = LanceBackend(str(tmp_path / "new"), read_consistency_s=0)
    new.replace_title(T1, rows, trow)
    old = LanceBackend(str(tmp_path / "old"), read_consistency_s=0)
    old.db.create_table("speech", schema=pa.schema([f for f in schema_for("speech") if f.name != "hit"]))
    old.replace_title(T1, rows, trow)  # the write migrates the table: `hit` added, and filled for these rows
    legacy = old.table("speech")
    legacy.update(values_sql={"hit": "CAST(NULL AS STRING)"})  # rows as a 1.0 writer left them, after the migration
    old = LanceBackend(str(tmp_path / "old"), read_consistency_s=0)
    word = rows["speech"][0]["text"].split()[0]
    cols = ["row_id", "title_id", "start_s", "end_s", "timecode", "structure", "scene_index", "language", "track", "text"]

    def strip(rs):
        return sorted(({k: r.get(k) for k in cols} for r in rs), key=lambda r: r["row_id"])

    got_new, got_old = new.fts("speech", word, columns=cols), old.fts("speech", word, columns=cols)
    assert got_new and strip(got_new) == strip(got_old)
    assert all(r["timecode"] and r["title_id"] == T1 for r in got_old)
    assert "hit" not in got_new[0]  # the packed column never leaves the backend
    keys = [(r["row_id"], r["_handle"]) for r in got_old]
    fetched = old.fetch("speech", keys, ["timecode", "structure", "language"])
    assert {k: {c: v[c] for c in ("timecode", "structure", "language")} for k, v in fetched.items()} == \
        {r["row_id"]: {c: r[c] for c in ("timecode", "structure", "language")} for r in got_old}


def test_a_multi_sentence_segment_is_narrowed_and_single_sentences_read_no_word_timings(tmp_path):
    """A speech hit names the sentence that was said (its words' times), which needs the segment's word timings
    (`detail`); a segment of one sentence never reads them (the packed `hit` says how many sentences it holds)."""
    from prism_assets.index.rows import TitleContext, speech_rows
    from prism_assets.index.search import Query, Searcher

    def words(text, t0):
        return [{"word": w, "start": t0 + i * 0.5, "end": t0 + i * 0.5 + 0.4} for i, w in enumerate(text.split())]

    two = "The harbour lights are out. Bring the lantern to the pier."
    one = "Nobody saw the yellow balloon."
    tc = TitleContext(title_id="narrow-1", index_version="r1", fps=25.0, duration_s=60.0, series=None)
    rows = speech_rows(tc, {"tracks": [{"track": 0, "language": "en", "segments": [
        {"start": 10.0, "end": 16.0, "text": two, "words": words(two, 10.0)},
        {"start": 30.0, "end": 32.5, "text": one, "words": words(one, 30.0)}]}]})
    for r, v in zip(rows, FakeEmbedder().embed([r["text"] for r in rows])):
        r["vector"] = v.tolist()
    backend = LanceBackend(str(tmp_path / "index"), read_consistency_s=0)
    backend.replace_title("narrow-1", {"speech": rows}, {"title_id": "narrow-1", "index_version": "r1"})
    reads = []
    fetch = backend.fetch
    backend.fetch = lambda table, keys, cols: reads.append((table, cols)) or fetch(table, keys, cols)
    searcher = Searcher(backend, FakeEmbedder())
    hits, _ = searcher.search(Query(text="bring the lantern to the pier", mode="lexical", channels=("speech",)))
    assert hits[0].start_s == 12.5 and hits[0].end_s == 15.4, hits[0]  # "Bring" (6th word) .. "pier." (11th), not 10-16
    assert hits[0].explanation["segment"] == [10.0, 16.0] and reads == [("speech", ["row_id", "detail"])]
    reads.clear()
    hits, _ = searcher.search(Query(text="the yellow balloon", mode="lexical", channels=("speech",)))
    assert (hits[0].start_s, hits[0].end_s) == (30.0, 32.5) and hits[0].timecode == "00:00:30:00" and not reads
