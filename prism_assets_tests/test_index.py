"""The cross-title index (prism_assets/index): picture features and timecodes, lexical scoring, the LanceDB
backend (replace / remove / select / quoting / crash mid-write / maintenance) and the Searcher
(lexical / semantic / hybrid, filters, thresholds, "A then B", query by frame, grouping).

Unit tier: a real LanceDB in tmp_path, rows built by the real `rows.py` functions from small frames and
dicts, and a deterministic bag-of-words text embedder instead of MiniLM (fast, exact by construction:
the same words give cosine 1, no shared word gives cosine 0).

The corpus helpers (`FakeEmbedder`, `picture`, `jpeg`, `shrink`, `build_title`, `write_corpus`) are
also used by test_serving_api.py.
"""

from __future__ import annotations

import json
import math
import re
import zlib

import numpy as np
import pandas as pd
import pytest
import simplejpeg

from prism_assets.index.backend import Cond, LanceBackend, where_sql
from prism_assets.index.features import FRAME_DIM, decode_image, frame_vector, match_score, smpte
from prism_assets.index.rows import (
    TitleContext,
    event_rows,
    frame_rows,
    ocr_rows,
    speech_rows,
    structure_labels,
    subtitle_rows,
    unit_rows,
)
from prism_assets.index.search import Query, Searcher, fold, lexical_score
from prism_assets.index.tables import FTS_TABLES, TABLES, TEXT_DIM

# ---------------------------------------------------------------------------------------------- helpers


class FakeEmbedder:
    """Deterministic bag-of-words vectors: each folded word hashed (crc32) into one of 384 dimensions, L2-normalised."""

    dim = TEXT_DIM
    provenance = {"model": "fake-bag-of-words", "sha256": "0" * 64}

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", fold(t)):
                out[i, zlib.crc32(w.encode()) % TEXT_DIM] += 1.0
            n = float(np.linalg.norm(out[i]))
            if n > 0:
                out[i] /= n
        return out


def picture(name: str, h: int = 180, w: int = 320) -> np.ndarray:
    """A synthetic uint8 RGB picture, different for every name: a 3 x 4 colour layout plus a wave pattern."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    low = rng.integers(0, 256, (3, 4, 3)).astype(np.float64)
    img = np.kron(low, np.ones((h // 3, w // 4, 1)))
    yy, xx = np.mgrid[0:h, 0:w]
    img[..., int(rng.integers(3))] += 50 * np.sin(xx / (6 + rng.integers(20)) + yy / (9 + rng.integers(20)))
    return img.clip(0, 255).astype(np.uint8)


def shrink(rgb: np.ndarray, f: int = 2) -> np.ndarray:
    """Area-resize by an integer factor (every pixel counted once)."""
    h, w = rgb.shape[0] // f * f, rgb.shape[1] // f * f
    return rgb[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3)).round().astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorspace="RGB")


def reencoded(name: str) -> bytes:
    """A reference frame as a user would send it: the picture at half size, JPEG quality 60."""
    return jpeg(shrink(picture(name)), quality=60)


T1, T2, T3 = "alpha-001", "beta-002", "gamma-003"

SPECS = {
    T1: {
        "name": "Alpha", "fps": 25.0, "duration": 60.0, "delivery": "2024-05-02", "series": {"series_id": "S1", "season": 1, "episode": 1},
        "shots": [(0, 10), (10, 20), (20, 35), (35, 50), (50, 60)],  # units 0, 1, 2-3, 4-5, 6
        "credits": {"end": {"start_s": 50.0, "end_s": 60.0}},
        "speech": {"en": [(2, 5, "the quick brown fox jumps over the lazy dog"), (12, 15, "meet me at the old lighthouse tonight"),
                          (17, 19, "bring the lantern and the map"), (40, 43, "the weather forecast says heavy rain"),
                          (52, 55, "thanks for watching the lighthouse keeper")]},
        "subtitles": {"en": [(2, 5, "The quick brown fox jumps over the lazy dog."), (12, 15, "Meet me at the old lighthouse tonight.")]},
        "ocr": [(6, "안녕하세요 여러분 반갑습니다", "ko"), (21, "BREAKING NEWS", "en")],
        "qc": {"verdict": "fail", "reasons": ["programme loudness -14.2 LUFS, target -23"],
               "events": [{"kind": "loudness", "severity": "fail", "start_s": 30.0, "end_s": 31.0, "detail": "loudness -14.2 LUFS", "metrics": {"lufs": -14.2}},
                          {"kind": "black_frames", "severity": "warn", "start_s": 44.0, "end_s": 45.0, "detail": "1.0 s of black", "metrics": {}},
                          {"kind": "subtitle_sync", "severity": "info", "start_s": 12.0, "end_s": 15.0, "detail": "in sync",
                           "metrics": {"source": "localization", "offset_ms": 20}}]},
        "frames": [5, 15, 25, 32, 42, 55],  # units 0, 1, 2, 3, 4, 6
    },
    T2: {
        "name": "Beta", "fps": 24.0, "duration": 40.0, "delivery": "2024-05-01", "series": {"series_id": "S1", "season": 1, "episode": 2},
        "shots": [(0, 12), (12, 40)],  # units 0-1 (6 s each), 2-4 (9.33 s each)
        "credits": {},
        "speech": {"en": [(5, 8, "meet me at the old lighthouse tonight"), (30, 33, "bring the lantern and the map")],
                   "de": [(10, 13, "die Straße ist sehr lang heute")]},
        "subtitles": {},
        "ocr": [],
        "qc": {"verdict": "pass", "reasons": [], "events": [{"kind": "loudness", "severity": "info", "start_s": 0.0, "end_s": 40.0, "detail": "-23.1 LUFS",
                                                             "metrics": {"lufs": -23.1}}]},
        "frames": [3, 14, 25, 36],  # units 0, 2, 3, 4
    },
    T3: {
        "name": "Gamma", "fps": 30000 / 1001, "duration": 30.0, "delivery": "2024-04-30", "series": None,
        "shots": [(0, 15), (15, 30)],  # units 0-1, 2-3
        "credits": {},
        "speech": {"en": [(3, 6, "a recipe for fresh pasta with basil")]},
        "subtitles": {},
        "ocr": [(20, "東京タワーの夜景", "ja")],
        "qc": {"verdict": "warn", "reasons": ["black frames"], "events": [{"kind": "black_frames", "severity": "warn", "start_s": 1.0, "end_s": 2.0,
                                                                             "detail": "1.0 s of black", "metrics": {}}]},
        "frames": [7, 22],
    },
}


CLIP_INFO = {"model": "ViT-B-32", "weights": "random-init", "weights_trained": False, "embed_dim": 512}


def clip_vectors(title_id: str, n_shots: int, missing: tuple[int, ...] = ()) -> pd.DataFrame:
    """shot_embeddings as the visual pass writes them (random-init CLIP: unit vectors without meaning)."""
    rng = np.random.default_rng(zlib.crc32(title_id.encode()))
    rows = []
    for i in range(n_shots):
        v = rng.standard_normal(512).astype(np.float32)
        if i not in missing:
            rows.append({"shot_index": i, "n_embeddings": 3, "model": "ViT-B-32/random-init", "embedding": v / np.linalg.norm(v)})
    return pd.DataFrame(rows, columns=["shot_index", "n_embeddings", "model", "embedding"])


def build_title(title_id: str, embedder, index_version: str = "run1", trim: bool = False) -> tuple[dict, dict, dict]:
    """(rows by table, titles row, {frame t_s: picture name}) of one title, as `compute_index` builds them.
    `trim`: a re-processed title with fewer rows in every table."""
    spec = SPECS[title_id]
    cut = (lambda xs: xs[: max(1, len(xs) // 2)]) if trim else (lambda xs: xs)
    tc = TitleContext(title_id=title_id, index_version=index_version, fps=spec["fps"], duration_s=spec["duration"], series=spec["series"],
                      labels=structure_labels({"credits": spec["credits"]}, None), scenes=[])
    shots_list = cut(spec["shots"])
    shots = pd.DataFrame([{"shot_index": i, "start_s": float(a), "end_s": float(b), "start_frame": int(round(a * spec["fps"])),
                           "end_frame": int(round(b * spec["fps"])) - 1} for i, (a, b) in enumerate(shots_list)])
    frame_times = [t for t in cut(spec["frames"]) if t < shots_list[-1][1]]
    pics = {float(t): f"{title_id}/{t}" for t in frame_times}
    # keyframe of each shot: its first candidate frame
    kf = []
    for i, (a, b) in enumerate(shots_list):
        t = next((t for t in frame_times if a <= t < b), None)
        if t is not None:
            kf.append({"shot_index": i, "rank": 0, "image": f"keyframes/shot_{i:03d}.jpg", "t_s": float(t), "frame": int(t * spec["fps"])})
    keyframes = pd.DataFrame(kf)
    units = unit_rows(tc, shots, keyframes, None, clip_vectors(title_id, len(shots_list)), CLIP_INFO)
    candidates = [(int(t * spec["fps"]), float(t), jpeg(picture(pics[float(t)]))) for t in frame_times]
    transcript = {"tracks": [{"track": n + 1, "language": lang, "segments": [{"start": float(a), "end": float(b), "text": text, "words": []}
                                                                             for a, b, text in cut(segs)]}
                             for n, (lang, segs) in enumerate(spec["speech"].items())]}
    sub_tracks = [{"track": 10 + n, "label": label, "language": label, "forced": False, "cues": len(cut(cues)), "source": "embedded"}
                  for n, (label, cues) in enumerate(spec["subtitles"].items())]
    cues_by_label = {label: pd.DataFrame([{"start_s": float(a), "end_s": float(b), "text": text} for a, b, text in cut(cues)])
                     for label, cues in spec["subtitles"].items()}
    ocr = pd.DataFrame([{"t_s": float(t), "text": text, "language": lang, "confidence": 91.0, "x": 0.1, "y": 0.8, "w": 0.5, "h": 0.1, "group": g}
                        for g, (t, text, lang) in enumerate(cut(spec["ocr"]))]) if spec["ocr"] else None
    qc = dict(spec["qc"], events=cut(spec["qc"]["events"]))
    rows = {
        "units": units,
        "frames": frame_rows(tc, units, candidates),
        "speech": speech_rows(tc, transcript),
        "subtitles": subtitle_rows(tc, sub_tracks, cues_by_label),
        "ocr": ocr_rows(tc, ocr),
        "events": event_rows(tc, qc, spec["delivery"]),
    }
    texts = [r["text"] for name in FTS_TABLES for r in rows[name]]
    vectors = iter(embedder.embed(texts)) if texts else iter(())
    for name in FTS_TABLES:
        for r in rows[name]:
            r["vector"] = next(vectors).tolist()
    langs = {lang for lang in spec["speech"]} | {t["language"] for t in sub_tracks} | {lang for _, _, lang in spec["ocr"]}
    series = spec["series"] or {}
    summary = {"credits": spec["credits"], "subtitle_tracks": sub_tracks, "audio_tracks": [], "event_counts": {},
               "rows": {k: len(v) for k, v in rows.items()}, "models": {"text": "fake"}, "index_schema_version": "1.0"}
    title_row = {"title_id": title_id, "name": spec["name"], "provider": "ACME", "series_id": series.get("series_id"), "season": series.get("season"),
                 "episode": series.get("episode"), "delivery_date": spec["delivery"], "duration_s": spec["duration"], "fps": spec["fps"],
                 "width": 320, "height": 180, "languages": sorted(langs), "audio_languages": sorted(spec["speech"]),
                 "subtitle_languages": sorted(t["language"] for t in sub_tracks), "qc_verdict": qc["verdict"], "qc_reasons": qc["reasons"],
                 "poster": None, "summary": json.dumps(summary), "text_model": "fake@000000000000", "clip_model": None, "clip_weights_trained": False,
                 "index_version": index_version, "indexed_at": f"2024-06-01T00:00:0{int(index_version[-1]) % 10}+00:00"}
    return rows, title_row, pics


def write_corpus(uri: str, embedder) -> tuple[LanceBackend, dict]:
    """The three titles in a fresh index at `uri`: (backend, {title_id: (rows, title_row, pictures)})."""
    backend = LanceBackend(uri, read_consistency_s=0)
    built = {}
    for tid in (T1, T2, T3):
        built[tid] = build_title(tid, embedder)
        backend.replace_title(tid, built[tid][0], built[tid][1])
    return backend, built


def title_rows(backend: LanceBackend, table: str, title_id: str) -> list[dict]:
    return backend.select(table, [Cond("title_id", "=", title_id)], limit=100_000)


def snapshot(backend: LanceBackend, title_id: str) -> dict[str, list[tuple]]:
    """(row_id, index_version) of a title's rows in every table, sorted."""
    out = {}
    for name in TABLES:
        rows = backend.select(name, [Cond("title_id", "=", title_id)], ["title_id", "index_version"] + (["row_id"] if name != "titles" else []), limit=100_000)
        out[name] = sorted((r.get("row_id", r["title_id"]), r["index_version"]) for r in rows)
    return out


def expected(rows: dict, title_row: dict) -> dict[str, list[tuple]]:
    out = {name: sorted((r["row_id"], r["index_version"]) for r in rows.get(name, [])) for name in TABLES if name != "titles"}
    out["titles"] = [(title_row["title_id"], title_row["index_version"])]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A read-only index of the three titles, shared by the search tests."""
    emb = FakeEmbedder()
    backend, built = write_corpus(str(tmp_path_factory.mktemp("index") / "index"), emb)
    return backend, built, Searcher(backend, emb)


@pytest.fixture
def fresh(tmp_path):
    """An index of its own (the tests that write)."""
    return write_corpus(str(tmp_path / "index"), FakeEmbedder())


# ---------------------------------------------------------------------------------------------- features


def test_frame_vector_robust_to_resize_and_reencode():
    a, b = picture("scene-a"), picture("scene-b")
    va, vb = frame_vector(a), frame_vector(b)
    assert va.shape == (FRAME_DIM,) and va.dtype == np.float32
    va2 = frame_vector(decode_image(jpeg(shrink(a), quality=60)))
    same, other = float(np.linalg.norm(va - va2)), float(np.linalg.norm(va - vb))
    assert same < 0.2 * other, (same, other)
    assert match_score(same) > 0.6 > 0.15 > match_score(other)  # a few dHash bits may flip (one bit: 0.16)
    assert match_score(0.0) == 1.0 and abs(match_score(0.5) - 0.5) < 1e-9
    # bigger, and a 4-channel picture: the same vector family
    assert float(np.linalg.norm(frame_vector(np.repeat(np.repeat(a, 2, 0), 2, 1)) - va)) < 0.2 * other
    assert np.allclose(frame_vector(np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)), va)


def test_frame_vector_rejects_tiny_or_grey_input():
    with pytest.raises(ValueError, match="at least 9x8"):
        frame_vector(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        frame_vector(np.zeros((32, 32), np.uint8))


@pytest.mark.parametrize("t, fps, tc", [
    (0.0, 25.0, "00:00:00:00"),
    (3661.5, 25.0, "01:01:01:12"),
    (10.5, 24.0, "00:00:10:12"),
    (10.5, 24000 / 1001, "00:00:10:11"),  # 23.976: non-drop, frames counted at the nominal 24
    (0.0, 30000 / 1001, "00:00:00;00"),
    (1798 * 1001 / 30000, 30000 / 1001, "00:00:59;28"),
    (1799 * 1001 / 30000, 30000 / 1001, "00:00:59;29"),
    (60.06, 30000 / 1001, "00:01:00;02"),  # ;00 and ;01 skipped at minute 1
    (18000 * 1001 / 30000, 30000 / 1001, "00:10:00;18"),  # every tenth minute keeps ;00 and ;01
    (60.06, 60000 / 1001, "00:01:00;04"),  # 59.94: four numbers dropped
    (12.0, None, "00:00:12:00"),  # no rate: 25
])
def test_smpte(t, fps, tc):
    assert smpte(t, fps) == tc


def test_smpte_not_finite():
    assert smpte(float("nan"), 25) == "" and smpte(float("inf"), 25) == ""


def test_decode_image_accepts_jpeg_and_png_and_rejects_the_rest():
    import io

    from PIL import Image

    rgb = picture("decode")
    assert decode_image(jpeg(rgb)).shape == rgb.shape
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    assert np.array_equal(decode_image(buf.getvalue()), rgb)
    for bad in (b"", b"hello, not a picture", b"GIF89a" + b"\0" * 50, b"\xff\xd8\xff" + b"\0" * 100, b"\x89PNG\r\n\x1a\n" + b"\0" * 100):
        with pytest.raises(ValueError) as exc:
            decode_image(bad)
        assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------- lexical scoring


def test_lexical_score():
    assert lexical_score("meet me at the old lighthouse", "Meet me at the OLD lighthouse tonight!") == 1.0
    typo = lexical_score("lighthoise", "meet me at the old lighthouse tonight")
    assert 0.6 <= typo < 1.0, typo
    assert lexical_score("여러", "안녕하세요 여러분 반갑습니다") == 1.0
    assert lexical_score("東京", "東京タワーの夜景") == 1.0
    assert lexical_score("zebra saxophone", "the quick brown fox") < 0.1
    assert lexical_score("", "anything") == 0.0 and lexical_score("   ", "anything") == 0.0
    assert lexical_score("strasse", "Die Straße ist lang") == 1.0 and lexical_score("cafe", "Café") == 1.0


def test_fold():
    assert fold("Straße") == "strasse"
    assert fold("  Crème   Brûlée!! ") == "creme brulee"
    assert fold("ÉCOLE-Été") == "ecole ete"


# ---------------------------------------------------------------------------------------------- backend: quoting and select


def test_where_sql_quotes_values_and_checks_columns_and_operators():
    assert where_sql([]) is None
    assert where_sql([Cond("title_id", "=", "a'b")]) == "title_id = 'a''b'"
    assert where_sql([Cond("season", "=", None)]) == "season IS NULL"
    assert where_sql([Cond("title_id", "in", [])]) == "FALSE" and where_sql([Cond("title_id", "not in", [])]) == "TRUE"
    assert where_sql([Cond("season", ">=", 2), Cond("start_s", "<", 1.5), Cond("weights_trained", "=", True)]) == \
        "season >= 2 AND start_s < 1.5 AND weights_trained = TRUE"
    with pytest.raises(ValueError, match="bad column"):
        where_sql([Cond("title_id; DROP TABLE x", "=", "a")])
    with pytest.raises(ValueError, match="bad operator"):
        where_sql([Cond("title_id", "LIKE", "a%")])


def test_select_with_conditions(corpus):
    backend, built, _ = corpus
    assert backend.title_ids() == [T1, T2, T3]
    rows = backend.select("speech", [Cond("title_id", "=", T1), Cond("start_s", ">=", 10.0), Cond("end_s", "<=", 43.0)], order_by="start_s")
    assert [r["text"] for r in rows] == ["meet me at the old lighthouse tonight", "bring the lantern and the map", "the weather forecast says heavy rain"]
    assert all("vector" not in r for r in rows)
    assert {r["title_id"] for r in backend.select("speech", [Cond("language", "=", "de")])} == {T2}
    assert {r["title_id"] for r in backend.select("titles", [Cond("languages", "contains", "ko")])} == {T1}
    assert {r["title_id"] for r in backend.select("titles", [Cond("series_id", "=", "S1"), Cond("episode", "!=", 1)])} == {T2}
    assert {r["title_id"] for r in backend.select("titles", [Cond("title_id", "not in", [T1, T2])])} == {T3}
    assert {r["title_id"] for r in backend.select("titles", [Cond("series_id", "=", None)])} == {T3}
    assert [r["structure"] for r in backend.select("speech", [Cond("title_id", "=", T1), Cond("structure", "in", ["end_credits"])])] == ["end_credits"]
    assert backend.count("events", [Cond("severity", "=", "fail")]) == 1
    assert backend.count("units", [Cond("title_id", "=", T1)]) == 7
    assert backend.select("no_such_table") == [] and backend.count("no_such_table") == 0
    # rows as rows.py built them: units of a long shot are <= 10 s windows, timecodes at the title's rate
    units = backend.select("units", [Cond("title_id", "=", T1)], order_by="unit_index")
    assert [(u["start_s"], u["end_s"]) for u in units] == [(0, 10), (10, 20), (20, 27.5), (27.5, 35), (35, 42.5), (42.5, 50), (50, 60)]
    assert units[2]["timecode"] == "00:00:20:00" and units[2]["keyframe"] == "keyframes/shot_002.jpg"
    assert backend.select("speech", [Cond("title_id", "=", T3)])[0]["timecode"] == "00:00:02;29"  # 3.0 s at 29.97 = frame 89


@pytest.mark.parametrize("evil", ["alpha-001' OR '1'='1", "x' OR title_id != '", "alpha-001\\' OR 1=1 --", "a'); DROP TABLE titles; --", "\x00none"])
def test_injection_looking_values_are_quoted(corpus, evil):
    backend, _, searcher = corpus
    for table in TABLES:
        assert backend.select(table, [Cond("title_id", "=", evil)]) == []
        assert backend.select(table, [Cond("title_id", "in", [evil, "nope"])]) == []
        assert backend.count(table, [Cond("title_id", "=", evil)]) == 0
    assert backend.fts("speech", "lighthouse", [Cond("title_id", "=", evil)]) == []
    assert searcher.search(Query(text="meet me at the old lighthouse tonight", series_id=evil, min_score=0.0))[0] == []
    assert searcher.search(Query(text="meet me at the old lighthouse tonight", titles=(evil,), min_score=0.0))[0] == []
    assert backend.title_ids() == [T1, T2, T3]  # nothing was dropped


# ---------------------------------------------------------------------------------------------- backend: writes


def test_reprocessing_replaces_exactly_the_titles_rows(fresh):
    backend, built = fresh
    emb = FakeEmbedder()
    others = {tid: snapshot(backend, tid) for tid in (T2, T3)}
    assert snapshot(backend, T1) == expected(*built[T1][:2])
    # the same rows again: idempotent (updated, nothing new)
    counts = backend.replace_title(T1, built[T1][0], built[T1][1])
    assert counts["speech"]["inserted"] == 0 and counts["speech"]["updated"] == len(built[T1][0]["speech"]) and counts["speech"]["deleted"] == 0
    assert snapshot(backend, T1) == expected(*built[T1][:2])
    # re-processed with fewer rows in every table
    rows2, trow2, _ = build_title(T1, emb, index_version="run2", trim=True)
    for name in TABLES[:-1]:
        assert 0 < len(rows2[name]) < len(built[T1][0][name]), name
    counts = backend.replace_title(T1, rows2, trow2)
    assert counts["speech"]["deleted"] == len(built[T1][0]["speech"]) - len(rows2["speech"])
    assert snapshot(backend, T1) == expected(rows2, trow2)  # exactly the new rows: no duplicate, no orphan
    for name in TABLES:
        assert backend.count(name, [Cond("title_id", "=", T1)]) == (1 if name == "titles" else len(rows2[name]))
    assert {tid: snapshot(backend, tid) for tid in (T2, T3)} == others
    assert backend.title_ids() == [T1, T2, T3]
    # the FTS index sees the new set only
    assert "the weather forecast says heavy rain" not in {r["text"] for r in backend.fts("speech", "weather forecast", [Cond("title_id", "=", T1)])}
    assert {r["index_version"] for r in backend.fts("speech", "lighthouse", [Cond("title_id", "=", T1)], columns=("row_id", "index_version"))} == {"run2"}
    # a title with no rows at all in a table: that table's rows of the title are gone
    rows3 = {k: (v if k == "units" else []) for k, v in rows2.items()}
    backend.replace_title(T1, rows3, dict(trow2, index_version="run3"))
    assert all(backend.count(name, [Cond("title_id", "=", T1)]) == 0 for name in ("frames", "speech", "subtitles", "ocr", "events"))
    assert {tid: snapshot(backend, tid) for tid in (T2, T3)} == others


def test_remove_title_removes_every_row_of_the_title(fresh):
    backend, built = fresh
    others = {tid: snapshot(backend, tid) for tid in (T1, T3)}
    removed = backend.remove_title(T2)
    assert removed == {name: (1 if name == "titles" else len(built[T2][0][name])) for name in TABLES}
    assert all(backend.count(name, [Cond("title_id", "=", T2)]) == 0 for name in TABLES)
    assert backend.title_ids() == [T1, T3]
    assert {tid: snapshot(backend, tid) for tid in (T1, T3)} == others
    assert backend.remove_title(T2) == {name: 0 for name in TABLES}  # again: nothing left, no error
    assert backend.remove_title("never-indexed") == {name: 0 for name in TABLES}
    hits, _ = Searcher(backend, FakeEmbedder()).search(Query(text="die Straße ist sehr lang heute", min_score=0.0))
    assert T2 not in {h.title_id for h in hits}


def test_crash_mid_write_leaves_complete_versions_and_rerun_completes(fresh, monkeypatch):
    backend, built = fresh
    emb = FakeEmbedder()
    old = snapshot(backend, T1)
    others = {tid: snapshot(backend, tid) for tid in (T2, T3)}
    rows2, trow2, _ = build_title(T1, emb, index_version="run2", trim=True)
    new = expected(rows2, trow2)
    written: list[str] = []
    for name in TABLES:
        t = backend.table(name)

        def merge_insert(*a, _name=name, _orig=t.merge_insert, **k):
            written.append(_name)
            if len(written) == 2:
                raise OSError(f"{_name}: connection reset while writing")
            return _orig(*a, **k)

        monkeypatch.setattr(t, "merge_insert", merge_insert)
    with pytest.raises(OSError, match="connection reset"):
        backend.replace_title(T1, rows2, trow2)
    first, failed = written
    now = snapshot(backend, T1)
    assert now[first] == new[first]  # the table written before the fault: the new complete set
    for name in TABLES:
        if name != first:
            assert now[name] == old[name], name  # every other table: the old complete set (titles row included)
    assert {tid: snapshot(backend, tid) for tid in (T2, T3)} == others
    monkeypatch.undo()
    backend.replace_title(T1, rows2, trow2)  # the re-run, no fault
    assert snapshot(backend, T1) == new
    assert {tid: snapshot(backend, tid) for tid in (T2, T3)} == others


def test_units_clip_dimension_change_is_refused(fresh):
    backend, built = fresh
    rows = {k: list(v) for k, v in built[T1][0].items()}
    rows["units"] = [dict(u, clip=[0.1] * 768) for u in rows["units"]]
    before = snapshot(backend, T1)
    with pytest.raises(Exception, match="rebuild the index"):
        backend.replace_title(T1, rows, built[T1][1])
    assert snapshot(backend, T1) == before


def test_units_without_a_clip_vector_can_be_indexed(fresh):
    """BUG: a unit without a CLIP vector (`unit_rows` gives `clip: None` for a shot that has no row in
    shot_embeddings, e.g. a shot with no sample and no keyframe embedding) makes replace_title fail: LanceDB's
    merge_insert(...).execute(data) checks vector columns with on_bad_vectors='error' and treats a null
    vector as a bad one ("Vector column 'clip' has variable length vectors"), so the title cannot be indexed at all."""
    backend, built = fresh
    rows, trow, _ = build_title(T3, FakeEmbedder(), index_version="run2")
    spec = SPECS[T3]
    tc = TitleContext(T3, "run2", spec["fps"], spec["duration"], None)
    shots = pd.DataFrame([{"shot_index": i, "start_s": float(a), "end_s": float(b), "start_frame": int(a * 30), "end_frame": int(b * 30) - 1}
                          for i, (a, b) in enumerate(spec["shots"])])
    rows["units"] = unit_rows(tc, shots, None, None, clip_vectors(T3, 2, missing=(1,)), CLIP_INFO)
    assert [u["clip"] is None for u in rows["units"]] == [False, False, True, True]  # shot 1: units 2 and 3
    backend.replace_title(T3, rows, trow)
    assert backend.count("units", [Cond("title_id", "=", T3)]) == 4  # the two units without a vector are kept, their clip null
    assert snapshot(backend, T3) == expected(rows, trow)


@pytest.mark.filterwarnings("ignore:optimize")
def test_maintain_runs_and_reports(fresh):
    backend, built = fresh
    emb = FakeEmbedder()
    for run in ("run2", "run3"):  # versions to clean up
        rows, trow, _ = build_title(T1, emb, index_version=run, trim=run == "run2")
        backend.replace_title(T1, rows, trow)
    counts = {name: backend.count(name) for name in TABLES}
    versions = {name: len(backend.table(name).list_versions()) for name in TABLES}
    report = backend.maintain(older_than_s=0.0)
    assert set(report) == set(TABLES)
    for name, r in report.items():
        assert r["rows"] == counts[name] and r["version_after"] >= r["version_before"]
    assert {name: backend.count(name) for name in TABLES} == counts
    assert all(len(backend.table(name).list_versions()) <= 2 < versions[name] for name in ("speech", "titles")), versions  # older versions deleted
    hits, _ = Searcher(backend, emb).search(Query(text="meet me at the old lighthouse tonight"))
    assert hits and hits[0].title_id == T1 and hits[0].score > 0.99
    assert snapshot(backend, T1) == expected(*build_title(T1, emb, index_version="run3")[:2])


@pytest.mark.filterwarnings("ignore:optimize")
def test_maintain_reports_how_many_old_versions_it_removed(fresh):
    """BUG: `old_versions_removed` is always None: the sync LanceTable.optimize() returns None (only the
    async table returns OptimizeStats), so `getattr(getattr(stats, "prune", None), "old_versions", None)` is None."""
    backend, built = fresh
    for run in ("run2", "run3"):
        rows, trow, _ = build_title(T1, FakeEmbedder(), index_version=run)
        backend.replace_title(T1, rows, trow)
    versions = len(backend.table("speech").list_versions())
    assert versions > 1
    report = backend.maintain(older_than_s=0.0)
    removed = report["speech"]["old_versions_removed"]
    assert isinstance(removed, int) and removed >= 1, report["speech"]


# ---------------------------------------------------------------------------------------------- search


def test_exact_spoken_phrase_first(corpus):
    _, _, s = corpus
    hits, notes = s.search(Query(text="the quick brown fox jumps over the lazy dog"))
    assert notes == []
    top = hits[0]
    assert (top.title_id, top.start_s, top.end_s) == (T1, 2.0, 5.0) and top.score > 0.99 and top.channel in ("speech", "subtitles")
    assert top.citation == f"{T1}@00:00:02:00"
    assert top.explanation["lexical"] == 1.0 and top.explanation["semantic"] is None  # an exact phrase: the vectors are not read
    assert all(h.score >= s.weights.min_score for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    hits, _ = s.search(Query(text="the quick brown fox jumps over the lazy dog", channels=("speech",)))
    assert hits[0].channel == "speech" and hits[0].text == "the quick brown fox jumps over the lazy dog" and hits[0].language == "en"
    assert {h.channel for h in hits} == {"speech"}
    # every mode finds it
    for mode in ("lexical", "semantic"):
        hits, _ = s.search(Query(text="the quick brown fox jumps over the lazy dog", mode=mode, channels=("speech",)))
        assert (hits[0].title_id, hits[0].start_s) == (T1, 2.0) and hits[0].score > 0.99, mode


def test_typo_and_folding_found_lexically(corpus):
    _, _, s = corpus
    hits, _ = s.search(Query(text="lighthoise", mode="lexical", channels=("speech",)))
    assert hits and all("lighthouse" in h.text for h in hits)
    assert 0.6 <= hits[0].score < 1.0
    hits, _ = s.search(Query(text="STRASSE", mode="lexical"))
    assert [(h.title_id, h.text) for h in hits] == [(T2, "die Straße ist sehr lang heute")]


def test_cjk_two_character_substring_of_an_ocr_line(corpus):
    _, _, s = corpus
    for mode in ("lexical", "hybrid"):
        hits, _ = s.search(Query(text="여러", mode=mode))
        assert hits, mode
        top = hits[0]
        assert (top.title_id, top.channel, top.text, top.language) == (T1, "ocr", "안녕하세요 여러분 반갑습니다", "ko"), mode
        assert top.explanation["lexical"] == 1.0
        assert json.loads(s.backend.select("ocr", [Cond("row_id", "=", top.row_id)])[0]["detail"])["box"]["w"] == 0.5
    hits, _ = s.search(Query(text="東京", mode="lexical", channels=("ocr",)))
    assert [(h.title_id, h.text) for h in hits] == [(T3, "東京タワーの夜景")]


def test_filters(corpus):
    _, _, s = corpus
    phrase = "meet me at the old lighthouse tonight"
    everywhere = {(h.title_id, h.channel) for h in s.search(Query(text=phrase))[0]}
    assert everywhere == {(T1, "speech"), (T1, "subtitles"), (T2, "speech")}
    assert {h.title_id for h in s.search(Query(text=phrase, titles=(T2,)))[0]} == {T2}
    assert {h.title_id for h in s.search(Query(text=phrase, titles=(T2, T3)))[0]} == {T2}
    assert s.search(Query(text=phrase, titles=(T3,)))[0] == []
    assert {h.title_id for h in s.search(Query(text=phrase, series_id="S1", min_score=0.0))[0]} <= {T1, T2}
    assert s.search(Query(text="a recipe for fresh pasta with basil", series_id="S1"))[0] == []
    assert {h.title_id for h in s.search(Query(text=phrase, season=1, min_score=0.0))[0]} <= {T1, T2}
    # language: the row's language
    de = s.search(Query(text="die Straße ist sehr lang heute", language="de", min_score=0.0))[0]
    assert de and {h.language for h in de} == {"de"}
    assert "die Straße ist sehr lang heute" not in {h.text for h in s.search(Query(text="die Straße ist sehr lang heute", language="en", min_score=0.0))[0]}
    assert s.search(Query(text="die Straße ist sehr lang heute", language="DE"))[0][0].language == "de"
    # structure
    credits = "thanks for watching the lighthouse keeper"
    hits = s.search(Query(text=credits))[0]
    assert hits[0].structure == "end_credits" and hits[0].start_s == 52.0
    assert all(h.structure != "end_credits" for h in s.search(Query(text=credits, exclude_structure=("end_credits",), min_score=0.0))[0])
    only = s.search(Query(text=credits, structure=("end_credits",), min_score=0.0))[0]
    assert only and {h.structure for h in only} == {"end_credits"}
    # time range
    hits = s.search(Query(text=phrase, start_s=10.0, end_s=20.0))[0]
    assert {(h.title_id, h.start_s) for h in hits} == {(T1, 12.0)}
    # titles with QC events of a kind
    assert {h.title_id for h in s.search(Query(text=phrase, qc_kinds=("loudness",)))[0]} == {T1, T2}
    assert {h.title_id for h in s.search(Query(text=phrase, qc_kinds=("black_frames",)))[0]} == {T1}
    assert s.search(Query(text=phrase, qc_kinds=("no_such_kind",), min_score=0.0))[0] == []
    # channels
    assert {h.channel for h in s.search(Query(text=phrase, channels=("subtitles",)))[0]} == {"subtitles"}
    hits, notes = s.search(Query(text=phrase, channels=("speech", "visual")))
    assert hits and any("visual channel off" in n for n in notes)


def test_min_score_cuts_a_no_answer_query(corpus):
    _, _, s = corpus
    q = "zebra quantum saxophone"
    assert s.search(Query(text=q))[0] == []  # the tuned default threshold
    assert s.search(Query(text=q, mode="lexical"))[0] == []
    assert s.search(Query(text=q, min_score=0.0))[0]  # candidates exist: the threshold cut them
    assert s.search(Query(text="meet me at the old lighthouse tonight", min_score=1.01))[0] == []
    assert s.search(Query(text="   "))[0] == [] and s.search(Query(text=None))[1] == ["empty query"]
    hits, notes = Searcher(s.backend, None).search(Query(text="meet me at the old lighthouse tonight"))
    assert hits and any("semantic search off" in n for n in notes)


def test_top_k_and_grouping(corpus):
    _, _, s = corpus
    phrase = "meet me at the old lighthouse tonight"
    assert len(s.search(Query(text=phrase, top_k=1, min_score=0.0))[0]) == 1
    hits = s.search(Query(text=phrase, group_by="title", min_score=0.0))[0]
    assert len(hits) == len({h.title_id for h in hits}) and {T1, T2} <= {h.title_id for h in hits}
    t1 = next(h for h in hits if h.title_id == T1)
    assert t1.score > 0.99 and t1.explanation.get("also")  # the other T1 hits folded in
    by_unit = s.search(Query(text=phrase, group_by="unit"))[0]
    keys = [(h.title_id, h.unit_index) for h in by_unit]
    assert len(keys) == len(set(keys)) and (T1, 1) in keys and (T2, 1) in keys


def test_then_within_and_not_beyond(corpus):
    _, _, s = corpus
    a = Query(text="meet me at the old lighthouse tonight", channels=("speech",))
    b = "bring the lantern and the map"
    near = s.then(a, b, within_s=10.0)
    assert near and {h.title_id for h in near} == {T1}  # T1: 2 s after; T2: 22 s after
    assert near[0].channel == "sequence" and near[0].explanation["gap_s"] == 2.0
    assert near[0].start_s == 12.0 and near[0].end_s == 19.0 and near[0].score > 0.99
    assert {h.title_id for h in s.then(a, b, within_s=30.0)} == {T1, T2}
    assert s.then(a, b, within_s=1.0) == []
    assert s.then(Query(text=b, channels=("speech",)), a.text, within_s=3600.0) == []  # B before A: no sequence


def test_by_frame_finds_the_unit_of_a_reencoded_resized_frame(corpus):
    backend, built, s = corpus
    for tid, (rows, _, pics) in built.items():
        for fr in rows["frames"]:
            hits = s.by_frame(reencoded(pics[fr["t_s"]]), Query(top_k=3))
            assert hits, (tid, fr["t_s"])
            top = hits[0]
            assert (top.title_id, top.unit_index) == (tid, fr["unit_index"]), (tid, fr["t_s"], [(h.title_id, h.unit_index, h.score) for h in hits])
            assert top.channel == "frame" and top.score > 0.6 and top.explanation["matched_t_s"] == fr["t_s"]
            assert len(hits) == 1 or hits[1].score < top.score
    # filters apply, and a picture not in the index scores low
    hits = s.by_frame(reencoded(f"{T2}/25"), Query(titles=(T1, T3), top_k=3))
    assert hits and T2 not in {h.title_id for h in hits} and hits[0].score < 0.5
    assert s.by_frame(jpeg(picture("never-indexed")), Query(top_k=3, min_score=0.6)) == []
    with pytest.raises(ValueError):
        s.by_frame(b"not a picture", Query())


def test_units_rows_and_frame_rows_shapes(corpus):
    backend, built, _ = corpus
    rows = built[T1][0]
    assert [u["unit_index"] for u in rows["units"]] == list(range(7))
    assert all(len(u["clip"]) == 512 and u["weights_trained"] is False and u["clip_model"] == "ViT-B-32/random-init" for u in rows["units"])
    assert [f["unit_index"] for f in rows["frames"]] == [0, 1, 2, 3, 4, 6]
    assert all(len(f["frame_vec"]) == FRAME_DIM and re.fullmatch(r"[0-9a-f]{16}", f["dhash"]) for f in rows["frames"])
    assert {r["source"] for r in rows["events"]} == {"qc", "localization"}
    assert all(len(r["vector"]) == TEXT_DIM and math.isclose(float(np.linalg.norm(r["vector"])), 1.0, rel_tol=1e-5)
               for t in FTS_TABLES for r in rows[t])


@pytest.mark.filterwarnings("ignore:optimize")
def test_vector_index_has_the_partitions_asked_for_and_is_rebuilt_when_outgrown(tmp_path):
    """BUG: an IVF index built with num_partitions lost them at LanceDB's next optimize() (a million rows: 894 partitions
    became 25 of 32,000 rows, and each of a search's probes scanned one). The index is named by its partition count;
    maintain() builds it with ~sqrt(rows) partitions by target size (which optimize() keeps), rebuilds it when the table
    outgrew it or when it holds fewer partitions than its name says, and reports what LanceDB really has."""
    import pyarrow as pa

    from prism_assets.index.ann import ivf_partitions
    from prism_assets.index.tables import schema_for

    rng = np.random.default_rng(0)
    backend = LanceBackend(str(tmp_path / "ix"))

    def add(n, start):
        t = backend.db.create_table("speech", schema=schema_for("speech"), exist_ok=True)
        v = rng.standard_normal((n, TEXT_DIM)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        t.add(pa.table({"row_id": [f"x:{i}" for i in range(start, start + n)], "title_id": ["x"] * n, "start_s": np.arange(n, dtype=float),
                        "end_s": np.arange(n, dtype=float) + 1, "text": [f"line {i}" for i in range(start, start + n)],
                        "vector": pa.FixedSizeListArray.from_arrays(v.reshape(-1), TEXT_DIM)}).cast(pa.schema([t.schema.field(c) for c in
                        ("row_id", "title_id", "start_s", "end_s", "text", "vector")])), mode="append")
        return v

    v = add(1200, 0)
    report = backend.maintain(older_than_s=0, vector_index_min_rows=1000)
    names = [i.name for i in backend.table("speech").list_indices() if "vector" in i.columns]
    assert names == ["vector_ivfrq_p34"]  # int(sqrt(1200)); at a million rows: 894 partitions (benchmarks/search_load.py)
    assert report["speech"]["ann"]["rebuilt"] and report["speech"]["ann"]["kind"] == "ivf_rq"
    assert 30 <= report["speech"]["ann"]["ivf_partitions_after_optimize"] <= 40
    report = backend.maintain(older_than_s=0, vector_index_min_rows=1000)  # same size: kept, and optimize() kept its partitions
    assert [i.name for i in backend.table("speech").list_indices() if "vector" in i.columns] == ["vector_ivfrq_p34"]
    assert not report["speech"]["ann"]["rebuilt"] and 30 <= ivf_partitions(backend.table("speech"), "vector") <= 40
    # an older release's text index (IVF-PQ) is rebuilt as IVF-RQ
    from lancedb.index import IvfPq, IvfRq

    t = backend.table("speech")
    t.create_index("vector", config=IvfPq(distance_type="cosine", target_partition_size=1200 // 34, num_sub_vectors=48), replace=True,
                   name="vector_ivfpq_p34")
    report = backend.maintain(older_than_s=0, vector_index_min_rows=1000)
    assert report["speech"]["ann"]["rebuilt"] and report["speech"]["ann"]["was"] == {"index": "vector_ivfpq_p34"}
    assert [i.name for i in backend.table("speech").list_indices() if "vector" in i.columns] == ["vector_ivfrq_p34"]
    assert 30 <= ivf_partitions(backend.table("speech"), "vector") <= 40
    # an index holding fewer partitions than its name says (LanceDB's optimize() once shrank an index built by
    # num_partitions: 894 partitions of a million rows became 25) is found out and rebuilt
    t = backend.table("speech")
    t.create_index("vector", config=IvfRq(distance_type="cosine", num_partitions=8), replace=True, name="vector_ivfrq_p34")
    report = backend.maintain(older_than_s=0, vector_index_min_rows=1000)
    assert report["speech"]["ann"]["rebuilt"] and report["speech"]["ann"]["was"] == {"named": 34, "real": 8}
    assert 30 <= ivf_partitions(backend.table("speech"), "vector") <= 40
    add(4000, 1200)  # 5200 rows: sqrt 72 > 2 x 34
    backend = LanceBackend(str(tmp_path / "ix"))  # the maintenance job's own process
    backend.maintain(older_than_s=0, vector_index_min_rows=1000)
    assert [i.name for i in backend.table("speech").list_indices() if "vector" in i.columns] == ["vector_ivfrq_p72"]
    # a candidate's handle reads its row directly; a stale handle (another row's) falls back to the row_id
    backend = LanceBackend(str(tmp_path / "ix"))
    near = backend.nearest("speech", "vector", v[3], limit=3)
    assert near[0]["row_id"] == "x:3" and near[0]["_handle"] is not None
    got = backend.fetch("speech", [("x:3", near[0]["_handle"]), ("x:7", near[0]["_handle"]), ("x:9", None)], ["text", "start_s"])
    assert {k: (r["text"], r["start_s"]) for k, r in got.items()} == {"x:3": ("line 3", 3.0), "x:7": ("line 7", 7.0), "x:9": ("line 9", 9.0)}


# ---------------------------------------------------------------------------------------------- residents (serving)


def _wait(cond, timeout_s: float = 20.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _candidates(backend: LanceBackend, emb) -> list:
    """What the searches read of the index: full-text (exact, fuzzy, CJK) and vector candidates, as comparable tuples."""
    out = []
    for q, kw in (("lighthouse tonight", {}), ("lighthose", {"fuzziness": 1}), ("weather", {})):
        out.append(sorted((r["row_id"], r["text"], r["start_s"], r.get("timecode"), r.get("language"), round(r["_score"], 4))
                          for r in backend.fts("speech", q, **kw)))
    v = emb.embed(["meet me at the old lighthouse"])[0]
    out.append([(r["row_id"], r["text"], r.get("structure"), round(r["_distance"], 4)) for r in backend.nearest("speech", "vector", v, limit=5)])
    return out


def test_resident_candidates_are_the_live_tables_and_follow_a_writer(fresh):
    """A serving process's resident copy (index/resident.py) answers exactly what the live table answers, follows a
    writer in another process within its refresh, and a write through its own backend is seen at once."""
    writer, built = fresh
    emb = FakeEmbedder()
    live = _candidates(LanceBackend(writer.uri, read_consistency_s=0), emb)
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(1_000_000, refresh_s=0)
    server.fts("speech", "warm")  # asks for the build
    _wait(lambda: "speech" in server.residents.held())
    held = server.residents.held()["speech"]
    assert held["rows"] == writer.count("speech") and held["bytes"] > 0
    # one chunk per column: a take across a scan's many batches concatenates them first (67 ms a search at 800,000 rows)
    assert all(c.num_chunks == 1 for c in server.residents._held["speech"].rows.columns)
    calls = []
    read = server.residents._held["speech"].read
    server.residents._held["speech"].read = lambda ids: calls.append(len(ids)) or read(ids)
    assert _candidates(server, emb) == live
    assert len(calls) == 4 and all(calls), "the candidates came from the resident copy"
    # another process re-processes T1 (fewer rows, a new run): the server follows within its refresh, old rows gone
    rows2, trow2, _ = build_title(T1, emb, index_version="run2", trim=True)
    writer.replace_title(T1, rows2, trow2)
    version = writer.table("speech").version
    _wait(lambda: server.fts("speech", "warm") is not None and server.residents.held().get("speech", {}).get("version") == version)
    assert _candidates(server, emb) == _candidates(LanceBackend(writer.uri, read_consistency_s=0), emb)
    assert "the weather forecast says heavy rain" not in {r["text"] for r in server.fts("speech", "weather forecast", [Cond("title_id", "=", T1)])}
    # a write through the server's own backend: its resident of that table is dropped, the next read is the live table
    server.replace_title(T1, built[T1][0], built[T1][1])
    assert "speech" not in server.residents.held()
    assert "the weather forecast says heavy rain" in {r["text"] for r in server.fts("speech", "weather forecast", [Cond("title_id", "=", T1)])}


def test_resident_whose_version_was_cleaned_up_falls_back_to_the_live_table(fresh):
    writer, built = fresh
    emb = FakeEmbedder()
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(1_000_000, refresh_s=3600)  # no refresh: the pinned version stays until it cannot be read
    server.fts("speech", "warm")
    _wait(lambda: "speech" in server.residents.held())
    rows2, trow2, _ = build_title(T1, emb, index_version="run2", trim=True)
    writer.replace_title(T1, rows2, trow2)
    writer.maintain(older_than_s=0)  # compacts and deletes every older version: the resident's files are gone
    got = server.fts("speech", "lighthouse", [Cond("title_id", "=", T1)], columns=("row_id", "text", "start_s"))
    assert got and {r["row_id"] for r in got} <= {r["row_id"] for r in rows2["speech"]}
    assert "speech" not in server.residents.held()  # dropped; rebuilt at the next refresh


def test_tables_over_the_resident_limit_are_read_live(fresh):
    writer, _ = fresh
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(3, refresh_s=0)
    for _ in range(5):
        assert server.fts("speech", "lighthouse")
    import time

    time.sleep(0.5)
    assert server.residents.held() == {}
    server.enable_residents(0)
    assert server.residents is None


def test_resident_rows_setting():
    from prism_assets.settings import PrismSettings

    assert PrismSettings.from_env(env={}).serve_resident_rows == 1_000_000
    assert PrismSettings.from_env(env={"PRISM_SERVE_RESIDENT_ROWS": "0"}).serve_resident_rows == 0
    for bad in ("-1", "many"):
        with pytest.raises(ValueError, match="PRISM_SERVE_RESIDENT_ROWS"):
            PrismSettings.from_env(env={"PRISM_SERVE_RESIDENT_ROWS": bad})


def test_a_resident_build_that_fails_is_not_retried_at_every_search(fresh, monkeypatch):
    import time

    import prism_assets.index.resident as resident

    writer, _ = fresh
    tries = []
    monkeypatch.setattr(resident, "build", lambda *a, **k: tries.append(1) or (_ for _ in ()).throw(MemoryError("no room")))
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(1_000_000, refresh_s=0)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert server.fts("speech", "lighthouse")  # the live table answers meanwhile
        time.sleep(0.01)
    assert len(tries) == 1 and server.residents.held() == {}


def test_a_resident_built_before_a_write_through_its_backend_is_not_installed_after_it(fresh, monkeypatch):
    """A load that started before this backend's own write finishes after it: its copy (the version before the write)
    must not come back, or the process's own write would vanish from its searches until the next refresh."""
    import threading

    import prism_assets.index.resident as resident

    writer, built = fresh
    started, release = threading.Event(), threading.Event()
    real = resident.build

    def slow(*a, **k):
        started.set()
        release.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(resident, "build", slow)
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(1_000_000, refresh_s=3600)
    server.fts("speech", "warm")
    assert started.wait(10)
    rows2, trow2, _ = build_title(T1, FakeEmbedder(), index_version="run2", trim=True)
    server.replace_title(T1, rows2, trow2)  # the load in flight read the version before this
    release.set()
    _wait(lambda: "speech" not in server.residents._building)
    assert "speech" not in server.residents.held()
    assert "the weather forecast says heavy rain" not in {r["text"] for r in server.fts("speech", "weather forecast", [Cond("title_id", "=", T1)])}


def test_a_resident_whose_next_load_hangs_gives_way_to_the_live_table(fresh, monkeypatch):
    import threading

    import prism_assets.index.resident as resident

    writer, _ = fresh
    server = LanceBackend(writer.uri, read_consistency_s=0)
    server.enable_residents(1_000_000, refresh_s=0)
    server.fts("speech", "warm")
    _wait(lambda: "speech" in server.residents.held())
    release = threading.Event()
    real = resident.build
    monkeypatch.setattr(resident, "build", lambda *a, **k: release.wait(20) and real(*a, **k))  # the next load hangs
    monkeypatch.setattr(resident, "STUCK_S", 0.3)
    rows2, trow2, _ = build_title(T1, FakeEmbedder(), index_version="run2", trim=True)
    writer.replace_title(T1, rows2, trow2)  # another process writes: the server's copy is now a version behind
    _wait(lambda: server.fts("speech", "warm") is not None and "speech" in server.residents._building)
    _wait(lambda: server.fts("speech", "warm") is not None and "speech" not in server.residents.held())  # given up on
    assert "the weather forecast says heavy rain" not in {r["text"] for r in server.fts("speech", "weather forecast", [Cond("title_id", "=", T1)])}
    release.set()
