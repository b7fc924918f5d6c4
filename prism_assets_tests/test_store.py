"""Object stores (a local folder and S3 through moto's server) and the artifact layout on top."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prism_assets.core.artifacts import ArtifactStore, Bundle
from prism_assets.core.store import LocalStore, S3Store, StoreError, open_store

# Keys whose S3 (byte-wise) order differs from a naive per-folder sort: '-' < '.' < '/' < 'A' < '_' < 'a'.
TRICKY_KEYS = [
    "title/a.txt",
    "title/b/c.txt",
    "title-2.bin",
    "title-2/x.bin",
    "title.x",
    "title_z",
    "titleA",
    "Title",
    "a/b/c/d.txt",
    "a/b.txt",
    "a-b/c.txt",
    "a.b",
    "z",
]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    s3_env = request.getfixturevalue("s3_env")
    _, bucket, client = s3_env
    return S3Store(f"s3://{bucket}/root", client)


def _fill(store, keys):
    for k in keys:
        store.put_bytes(k, k.encode())


def _keys(infos):
    return [i.key for i in infos]


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


# -- the stores ------------------------------------------------------------------------------------
def test_put_get_exists(store, tmp_path):
    store.put_bytes("a/b/c.bin", b"hello")
    assert store.get_bytes("a/b/c.bin") == b"hello"
    assert store.get_bytes("a/b/c.bin", max_bytes=3) == b"hel" and store.get_bytes("a/b/c.bin", max_bytes=99) == b"hello"
    assert store.exists("a/b/c.bin")
    assert not store.exists("a/b/missing.bin")
    assert not store.exists("a/b")  # a folder is not an object
    store.put_bytes("a/b/c.bin", b"replaced")
    assert store.get_bytes("a/b/c.bin") == b"replaced"
    src = tmp_path / "src.bin"
    src.write_bytes(b"from a file" * 100)
    store.put_file("f/src.bin", src)
    assert store.get_bytes("f/src.bin") == src.read_bytes()
    with pytest.raises(StoreError):
        store.get_bytes("nope/none.bin")
    for bad in ("", "/", "a/../b", "a//b", "./a"):
        with pytest.raises(StoreError):
            store.put_bytes(bad, b"x")
    dest = store.download("f/src.bin", tmp_path / "dl" / "src.bin")
    assert dest.read_bytes() == src.read_bytes()
    assert store.uri_for("x/y.bin").endswith("/x/y.bin")


def test_list_order_matches_s3_lexicographic(store):
    _fill(store, TRICKY_KEYS)
    infos = list(store.list())
    assert _keys(infos) == sorted(TRICKY_KEYS, key=lambda k: k.encode())
    # concretely: "title-2.bin" < "title-2/x.bin" < "title.x" < "title/a.txt" < "title_z" < "titleA"
    order = _keys(infos)
    assert order.index("title-2.bin") < order.index("title-2/x.bin") < order.index("title.x") < order.index("title/a.txt") < order.index("title_z")
    assert all(i.size == len(i.key) for i in infos)
    assert all(i.etag for i in infos)
    # with a prefix: only that folder, never its look-alike siblings
    assert _keys(store.list("title")) == ["title/a.txt", "title/b/c.txt"]
    assert _keys(store.list("title-2")) == ["title-2/x.bin"]
    assert _keys(store.list("missing")) == []


def test_list_start_after_resumes(store):
    _fill(store, TRICKY_KEYS)
    expected = sorted(TRICKY_KEYS, key=lambda k: k.encode())
    for i, k in enumerate(expected):
        assert _keys(store.list(start_after=k)) == expected[i + 1 :], k
    # start_after need not be an existing key: a folder name, a key inside a folder, or in between
    for marker in ("title", "title/", "title/a", "title/b", "title-", "a/b/c", "0", "zz", "title/zzz"):
        assert _keys(store.list(start_after=marker)) == [k for k in expected if k > marker], marker
    # with a prefix too
    assert _keys(store.list("title", start_after="title/a.txt")) == ["title/b/c.txt"]


def test_list_limit_pages_through_everything(store):
    _fill(store, TRICKY_KEYS)
    expected = sorted(TRICKY_KEYS, key=lambda k: k.encode())
    assert _keys(store.list(limit=3)) == expected[:3]
    seen, after = [], None
    while True:
        page = _keys(store.list(start_after=after, limit=4))
        seen += page
        if len(page) < 4:
            break
        after = page[-1]
    assert seen == expected


def test_list_dirs(store):
    _fill(store, TRICKY_KEYS)
    assert store.list_dirs() == ["a", "a-b", "title", "title-2"]
    assert store.list_dirs("a") == ["b"]
    assert store.list_dirs("title") == ["b"]
    assert store.list_dirs("missing") == []


def test_delete_prefix(store):
    _fill(store, TRICKY_KEYS)
    assert store.delete_prefix("title") == 2
    assert not store.exists("title/a.txt") and not store.exists("title/b/c.txt")
    # look-alike siblings survive
    for k in ("title-2.bin", "title-2/x.bin", "title.x", "title_z", "titleA"):
        assert store.exists(k), k
    assert store.delete_prefix("title.x") == 1  # a single object
    assert not store.exists("title.x")
    assert store.delete_prefix("nothing/here") == 0
    remaining = set(TRICKY_KEYS) - {"title/a.txt", "title/b/c.txt", "title.x"}
    assert set(_keys(store.list())) == remaining


def test_open_store():
    assert isinstance(open_store("/tmp/x"), LocalStore)
    with pytest.raises(StoreError):
        open_store("s3://bucket/prefix")
    store = open_store("s3://bucket/prefix/", lambda: object())
    assert isinstance(store, S3Store) and store.uri == "s3://bucket/prefix"


# -- LocalStore atomicity --------------------------------------------------------------------------
def test_local_put_leaves_no_temp_files(tmp_path):
    store = LocalStore(tmp_path / "s")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    for i in range(5):
        store.put_bytes(f"d/obj{i}.bin", b"data")
        store.put_file(f"d/file{i}.bin", src)
    assert _tmp_files(store.root) == []
    assert sorted(p.name for p in (store.root / "d").iterdir()) == sorted([f"obj{i}.bin" for i in range(5)] + [f"file{i}.bin" for i in range(5)])


def test_local_failing_put_keeps_old_content(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "s")
    store.put_bytes("d/obj.bin", b"old")
    src = tmp_path / "src.bin"
    src.write_bytes(b"new from file")

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        store.put_bytes("d/obj.bin", b"new")
    with pytest.raises(OSError, match="disk on fire"):
        store.put_file("d/obj.bin", src)
    monkeypatch.undo()
    assert store.get_bytes("d/obj.bin") == b"old"
    assert _tmp_files(store.root) == []
    assert [p.name for p in (store.root / "d").iterdir()] == ["obj.bin"]


def test_local_list_skips_temp_files(tmp_path):
    store = LocalStore(tmp_path / "s")
    store.put_bytes("d/a.bin", b"a")
    (store.root / "d" / ".a.bin.123.tmp").write_bytes(b"partial")
    assert _keys(store.list()) == ["d/a.bin"]


# -- ArtifactStore ---------------------------------------------------------------------------------
@pytest.fixture
def artifacts(store):
    return ArtifactStore(store)


def test_artifact_round_trips(artifacts):
    doc = {"a": 1, "b": [1.5, 2.5], "c": {"d": "e"}, "n": np.int64(3), "f": np.float32(0.5)}
    info = artifacts.write("titles/T1/doc", doc)
    assert info["format"] == "json" and info["files"] == 1 and info["uri"].endswith("titles/T1/doc.json")
    assert artifacts.read("titles/T1/doc") == {"a": 1, "b": [1.5, 2.5], "c": {"d": "e"}, "n": 3, "f": 0.5}

    df = pd.DataFrame({"t": [0.0, 0.5, 1.0], "label": ["a", "b", "c"], "n": [1, 2, 3]})
    info = artifacts.write("titles/T1/table", df)
    assert info["format"] == "parquet"
    pd.testing.assert_frame_equal(artifacts.read("titles/T1/table"), df)

    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    info = artifacts.write("titles/T1/emb", arr)
    assert info["format"] == "npy"
    out = artifacts.read("titles/T1/emb")
    assert out.dtype == arr.dtype and np.array_equal(out, arr)

    assert artifacts.exists("titles/T1/emb") and not artifacts.exists("titles/T1/none")
    with pytest.raises(StoreError):
        artifacts.read("titles/T1/none")
    with pytest.raises(TypeError):
        artifacts.write("titles/T1/bad", object())
    assert ArtifactStore.base_key("a", "T1") == "titles/T1/a"
    assert ArtifactStore.base_key("a", "2024-01-01", daily=True) == "daily/2024-01-01/a"
    assert ArtifactStore.base_key("a", None) == "global/a"


def test_artifact_format_change_leaves_no_twin(artifacts):
    base = "titles/T1/x"
    artifacts.write(base, {"v": 1})
    artifacts.write(base, np.zeros(3))
    assert not artifacts.store.exists(f"{base}.json") and artifacts.store.exists(f"{base}.npy")
    assert np.array_equal(artifacts.read(base), np.zeros(3))


def test_bundle_write_read_files(artifacts, tmp_path):
    side = tmp_path / "frame2.jpg"
    side.write_bytes(b"\xff\xd8jpeg2")
    df = pd.DataFrame({"frame": [1, 2], "file": ["frame1.jpg", "frame2.jpg"]})
    info = artifacts.write("titles/T1/frames", Bundle(df, {"frame1.jpg": b"\xff\xd8jpeg1", "frame2.jpg": side}))
    assert info["format"] == "bundle+parquet" and info["files"] == 3
    assert info["bytes"] > len(b"\xff\xd8jpeg1") + side.stat().st_size
    pd.testing.assert_frame_equal(artifacts.read("titles/T1/frames"), df)
    files = artifacts.bundle_files("titles/T1/frames")
    assert set(files) == {"frame1.jpg", "frame2.jpg"}
    assert artifacts.store.get_bytes(files["frame1.jpg"]) == b"\xff\xd8jpeg1"
    assert artifacts.store.get_bytes(files["frame2.jpg"]) == b"\xff\xd8jpeg2"
    assert artifacts.exists("titles/T1/frames")
    assert artifacts.bundle_files("titles/T1/none") == {}


def _versions(artifacts, base):
    return [d for d in artifacts.store.list_dirs(base)]


def test_bundle_rewrite_replaces_old_version(artifacts):
    base = "titles/T1/frames"
    artifacts.write(base, Bundle({"n": 1}, {"a.jpg": b"1", "b.jpg": b"2"}))
    (v1,) = _versions(artifacts, base)
    old_files = artifacts.bundle_files(base)
    artifacts.write(base, Bundle({"n": 2}, {"c.jpg": b"3"}))
    (v2,) = _versions(artifacts, base)
    assert v2 != v1
    pointer = json.loads(artifacts.store.get_bytes(f"{base}/CURRENT"))
    assert pointer["version"] == v2 and pointer["files"] == ["c.jpg"]
    assert artifacts.read(base) == {"n": 2}
    assert set(artifacts.bundle_files(base)) == {"c.jpg"}
    for key in old_files.values():
        assert not artifacts.store.exists(key)
    assert sorted(_keys(artifacts.store.list(base))) == sorted([f"{base}/CURRENT", f"{base}/{v2}/main.json", f"{base}/{v2}/c.jpg"])


def test_single_file_after_bundle_leaves_no_stale_bundle(artifacts):
    base = "titles/T1/thing"
    artifacts.write(base, Bundle({"kind": "bundle"}, {"a.jpg": b"1"}))
    artifacts.write(base, {"kind": "single"})
    assert artifacts.read(base) == {"kind": "single"}
    assert artifacts.bundle_files(base) == {}
    assert not artifacts.store.exists(f"{base}/CURRENT")
    assert _keys(artifacts.store.list(base)) == []
    assert _keys(artifacts.store.list("titles/T1")) == [f"{base}.json"]


def test_bundle_after_single_file_leaves_no_stale_file(artifacts):
    base = "titles/T1/thing"
    artifacts.write(base, pd.DataFrame({"a": [1]}))
    artifacts.write(base, {"side": 1})  # json twin replaces the parquet one
    artifacts.write(base, Bundle({"kind": "bundle"}, {"a.jpg": b"1"}))
    for ext in ("json", "parquet", "npy"):
        assert not artifacts.store.exists(f"{base}.{ext}")
    assert artifacts.read(base) == {"kind": "bundle"}
    keys = _keys(artifacts.store.list("titles/T1"))
    assert all(k.startswith(f"{base}/") for k in keys), keys


def test_local_listing_never_follows_links_out_of_the_root_or_loops(tmp_path):
    """Hostile delivery trees: a link loop, a link to /, a link to a folder outside the root, a
    broken link: the listing ends, lists only what is inside, and keeps every other delivery."""
    import os

    root = tmp_path / "deliveries"
    (root / "2026-11-20" / "t1").mkdir(parents=True)
    (root / "2026-11-20" / "t1" / "t1.mp4").write_bytes(b"x" * 10)
    (root / "2026-11-20" / "t2").mkdir()
    (root / "2026-11-20" / "t2" / "t2.mp4").write_bytes(b"y" * 10)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"z")
    os.symlink(root / "2026-11-20", root / "2026-11-20" / "t1" / "loop")  # a loop
    os.symlink("/", root / "2026-11-20" / "t2" / "slash")  # the whole machine
    os.symlink(outside, root / "2026-11-20" / "t3")  # a folder outside the root
    os.symlink(outside / "secret.mp4", root / "2026-11-20" / "t2" / "leak.mp4")  # a file outside
    os.symlink(tmp_path / "nothing", root / "2026-11-20" / "t2" / "broken.mp4")  # broken
    (root / "2026-11-21").mkdir()
    (root / "2026-11-22").mkdir()
    os.symlink(root / "2026-11-20" / "t2", root / "2026-11-22" / "t9")  # a link inside the root to a folder walked already
    (root / "2026-11-23" / "t4").mkdir(parents=True)
    os.symlink(root / "2026-11-20" / "t1" / "t1.mp4", root / "2026-11-23" / "t4" / "t4.mp4")  # a file link inside the root
    keys = [o.key for o in LocalStore(root).list()]
    # each folder once (the walked-again link is passed over), the file link inside the root kept, nothing from outside
    assert keys == ["2026-11-20/t1/t1.mp4", "2026-11-20/t2/t2.mp4", "2026-11-23/t4/t4.mp4"], keys
