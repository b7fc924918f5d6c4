"""The HTTP API and viewer (prism_assets/serving) through FastAPI's TestClient, no server process.

Unit tier: the index of test_index.py's three titles in tmp_path (real LanceDB, the deterministic
bag-of-words embedder) and a small artifact root (qc.json, a keyframes bundle, a proxy bundle with a
100 kB stand-in for proxy.mp4, scenes) written through ArtifactStore over LocalStore.
"""

from __future__ import annotations

import logging
import os
import re

import pandas as pd
import pytest
import simplejpeg
from fastapi.testclient import TestClient

from prism_assets.core.artifacts import ArtifactStore, Bundle
from prism_assets.core.store import LocalStore
from prism_assets.index.search import DEFAULT_WEIGHTS
from prism_assets.serving.app import create_app
from prism_assets.serving.data import Data
from prism_assets.settings import PrismSettings
from prism_assets_tests.test_index import SPECS, T1, T2, T3, FakeEmbedder, jpeg, picture, reencoded, write_corpus

KEY = "k" * 20
SECRET = b"TOP-SECRET-CONTENT outside the artifact root\n"
PROXY = bytes(range(256)) * 390 + bytes(160)  # 100 000 bytes
PHRASE = "meet me at the old lighthouse tonight"
CITATION = re.compile(r"^[A-Za-z0-9._-]+@\d{2}:\d{2}:\d{2}[:;]\d{2}$")


def keyframe_files(title_id: str, built) -> dict[str, bytes]:
    """The keyframes bundle's side files, named as the units rows name them (the shot's first candidate frame)."""
    rows, _, pics = built[title_id]
    out = {}
    for u in rows["units"]:
        if u["keyframe"] and u["keyframe"] not in out:
            out[u["keyframe"]] = jpeg(picture(pics[u["keyframe_t_s"]]))
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    settings = PrismSettings.from_env({}, data_dir=tmp / "prism")
    assert settings.artifact_root == str(tmp / "prism" / "artifacts") and settings.index_location == str(tmp / "prism" / "index")
    assert settings.api_keys == () and settings.api_cors_origins == ()
    _, built = write_corpus(settings.index_location, FakeEmbedder())
    arts = ArtifactStore(LocalStore(settings.artifact_root))
    for tid in (T1, T2, T3):
        spec = SPECS[tid]
        qc = dict(spec["qc"], profile={"name": "dev"}, event_counts={"fail": sum(e["severity"] == "fail" for e in spec["qc"]["events"])})
        arts.write(ArtifactStore.base_key("qc", tid), qc)
        kf = keyframe_files(tid, built)
        arts.write(ArtifactStore.base_key("keyframes", tid), Bundle(pd.DataFrame({"image": sorted(kf)}), kf))
    arts.write(ArtifactStore.base_key("scenes", T1), pd.DataFrame({"scene_index": [0, 1], "start_s": [0.0, 20.0], "end_s": [20.0, 60.0],
                                                                    "boundary_in": ["start", "cut"]}))
    arts.write(ArtifactStore.base_key("proxy", T1), Bundle({"codec": "h264", "bytes": len(PROXY)}, {"proxy.mp4": PROXY}))
    # T3: a proxy and a keyframe that are symlinks planted inside the bundle, pointing outside the root
    secret = tmp / "secret.txt"
    secret.write_bytes(SECRET)
    arts.write(ArtifactStore.base_key("proxy", T3), Bundle({"codec": "h264"}, {"proxy.mp4": b"placeholder"}))
    store = arts.store
    for asset, name in (("proxy", "proxy.mp4"), ("keyframes", "keyframes/shot_000.jpg")):
        path = store.path(arts.bundle_files(ArtifactStore.base_key(asset, T3))[name])
        path.unlink()
        os.symlink(secret, path)
        assert path.read_bytes() == SECRET
    app = create_app(settings, embedder=FakeEmbedder())
    return {"settings": settings, "app": app, "client": TestClient(app), "built": built, "data": app.state.data}


@pytest.fixture
def client(env) -> TestClient:
    return env["client"]


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["title"] and isinstance(body["detail"], str)
    assert "\n" not in body["detail"] and "Traceback" not in r.text and 'File "' not in r.text
    return body


# ---------------------------------------------------------------------------------------------- meta


def test_health_is_open_and_names_the_index_version(client):
    r = client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["index_version"]["latest"] == "run1" and body["index_version"]["revision"] >= 1


def test_openapi_lists_the_api(client):
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/v1/health", "/v1/titles", "/v1/titles/{title_id}", "/v1/titles/{title_id}/timeline", "/v1/titles/{title_id}/tracks/{name}.vtt",
              "/v1/titles/{title_id}/media", "/v1/titles/{title_id}/keyframes/{unit_index}.jpg", "/v1/search", "/v1/search/then",
              "/v1/search/frame", "/v1/rag/context", "/v1/qc/events"):
        assert p in paths, p
    assert not any(p in paths for p in ("/", "/login", "/titles/{title_id}", "/static/{name}"))
    assert client.get("/v1/docs").status_code == 200


def test_every_json_response_names_its_index_version(client):
    gets = ["/v1/titles", f"/v1/titles/{T1}", f"/v1/titles/{T1}/timeline", "/v1/qc/events", f"/v1/search?q={PHRASE}", "/v1/health"]
    posts = [("/v1/search", {"q": PHRASE}), ("/v1/search/then", {"a": PHRASE, "b": "bring the lantern"}), ("/v1/rag/context", {"q": PHRASE})]
    for url in gets:
        r = client.get(url)
        assert r.status_code == 200 and r.json().get("index_version"), url
    for url, body in posts:
        r = client.post(url, json=body)
        assert r.status_code == 200 and r.json().get("index_version"), url
    r = client.post("/v1/search/frame", data={"title_id": T1, "unit_index": "0"})
    assert r.status_code == 200 and r.json().get("index_version")


def test_data_reads_through_public_interfaces(env):
    from prism_assets.index.backend import LanceBackend
    from prism_assets.serving.data import BadRequest, NotFound

    settings = env["settings"]
    backend = LanceBackend(settings.index_location)
    data = Data(settings, embedder=FakeEmbedder(), backend=backend)
    assert data.backend is backend and data.searcher.embedder is data.embedder
    assert data.index_version() == env["data"].index_version() and data.index_version()["latest"] == "run1"
    assert data.title_row(T2)["name"] == "Beta"
    with pytest.raises(NotFound):
        data.title_row("nope-999")
    for bad in ("..", "../etc", "a/b", "", ".hidden", "a" * 129):
        with pytest.raises(BadRequest):
            data.title_row(bad)
    assert data.read("qc", T1)["verdict"] == "fail" and data.read("localization", T1) is None
    assert data.bundle_names("proxy", T1) == ["proxy.mp4"] and data.bundle_names("proxy", T2) == []
    assert data.bundle_file("proxy", T1, "proxy.mp4").size == len(PROXY)
    with pytest.raises(NotFound):
        data.bundle_file("proxy", T1, "../../qc.json")
    with pytest.raises(NotFound):
        data.bundle_file("proxy", T3, "proxy.mp4")  # the symlink out of the root
    client = TestClient(create_app(settings, data=data))
    assert ids(client.get("/v1/titles")) == [T1, T2, T3]


# ---------------------------------------------------------------------------------------------- titles


def ids(r) -> list[str]:
    assert r.status_code == 200, r.text[:300]
    return [t["title_id"] for t in r.json()["items"]]


def test_titles_list_filters(client):
    r = client.get("/v1/titles")
    assert ids(r) == [T1, T2, T3] and r.json()["next_page_token"] is None
    t1 = r.json()["items"][0]
    assert t1["qc_verdict"] == "fail" and t1["languages"] == ["en", "ko"] and t1["links"]["viewer"].endswith(f"/titles/{T1}")
    assert ids(client.get("/v1/titles?series_id=S1")) == [T1, T2]
    assert ids(client.get("/v1/titles?series_id=S1&season=1")) == [T1, T2]
    assert ids(client.get("/v1/titles?season=2")) == []
    assert ids(client.get("/v1/titles?language=ko")) == [T1]
    assert ids(client.get("/v1/titles?language=DE")) == [T2]
    assert ids(client.get("/v1/titles?qc_verdict=fail")) == [T1]
    assert ids(client.get("/v1/titles?qc_verdict=warn")) == [T3]
    assert ids(client.get("/v1/titles", params={"series_id": "S1' OR '1'='1"})) == []
    is_problem(client.get("/v1/titles?qc_verdict=bogus"), 400)
    is_problem(client.get("/v1/titles?season=-1"), 400)


def test_titles_page_tokens_walk_every_title_once(client):
    seen, token, pages = [], None, 0
    while True:
        r = client.get("/v1/titles", params={"page_size": 1, **({"page_token": token} if token else {})})
        page = ids(r)
        assert len(page) == 1
        seen += page
        pages += 1
        token = r.json()["next_page_token"]
        if token is None:
            break
        assert pages < 10
    assert seen == [T1, T2, T3]
    r = client.get("/v1/titles", params={"page_size": 2, "series_id": "S1"})
    assert ids(r) == [T1, T2] and r.json()["next_page_token"] is None


def test_get_title(client):
    r = client.get(f"/v1/titles/{T1}")
    assert r.status_code == 200
    t = r.json()
    assert t["title_id"] == T1 and t["name"] == "Alpha" and t["series_id"] == "S1"
    assert t["qc"]["verdict"] == "fail" and t["qc"]["reasons"] == SPECS[T1]["qc"]["reasons"] and t["qc"]["profile"] == "dev"
    assert t["structure"]["credits"] == {"end": {"start_s": 50.0, "end_s": 60.0}}
    tracks = t["artifacts"]["tracks"]
    assert set(tracks) == {"subtitles-en", "transcript-en", "chapters", "qc"}
    assert tracks["transcript-en"].endswith(f"/v1/titles/{T1}/tracks/transcript-en.vtt")
    assert t["artifacts"]["media"].endswith(f"/v1/titles/{T1}/media") and t["artifacts"]["posters"] == []
    assert set(client.get(f"/v1/titles/{T2}").json()["artifacts"]["tracks"]) == {"transcript-en", "transcript-de", "chapters", "qc"}


def test_missing_or_invalid_title_is_a_problem(client):
    body = is_problem(client.get("/v1/titles/nope-999"), 404)
    assert "nope-999" in body["detail"]
    for url in ("/v1/titles/nope-999/timeline", "/v1/titles/nope-999/tracks/chapters.vtt", "/v1/titles/nope-999/media",
                "/v1/titles/nope-999/keyframes/0.jpg", f"/v1/titles/{T1}/keyframes/99.jpg", f"/v1/titles/{T1}/poster.jpg",
                f"/v1/titles/{T2}/media", "/v1/no-such-route"):
        is_problem(client.get(url), 404)
    is_problem(client.get("/v1/titles/bad%20id!"), 400)
    is_problem(client.get("/v1/titles/" + "a" * 200), 400)
    is_problem(client.get(f"/v1/titles/{T1}/keyframes/x.jpg"), 400)
    is_problem(client.delete("/v1/titles"), 405)


# ---------------------------------------------------------------------------------------------- timeline and VTT


def test_timeline_tracks(client):
    r = client.get(f"/v1/titles/{T1}/timeline", params={"tracks": "speech,qc"})
    assert r.status_code == 200
    tl = r.json()
    assert set(tl["lanes"]) == {"speech", "qc"} and tl["duration_s"] == 60.0 and tl["index_version"] == "run1"
    speech = tl["lanes"]["speech"]
    assert [s["start_s"] for s in speech] == sorted(s["start_s"] for s in speech) and len(speech) == 5
    assert speech[1]["text"] == PHRASE and speech[1]["detail"] == {"words": []} and "vector" not in speech[1] and "series_id" not in speech[1]
    assert {e["kind"] for e in tl["lanes"]["qc"]} == {"loudness", "black_frames", "subtitle_sync"}
    assert next(e for e in tl["lanes"]["qc"] if e["kind"] == "loudness")["metrics"] == {"lufs": -14.2}
    window = client.get(f"/v1/titles/{T1}/timeline", params={"tracks": "speech,shots", "start_s": 10, "end_s": 20}).json()["lanes"]
    assert [s["text"] for s in window["speech"]] == [PHRASE, "bring the lantern and the map"]
    assert [u["unit_index"] for u in window["shots"]] == [1]
    full = client.get(f"/v1/titles/{T1}/timeline").json()["lanes"]
    assert set(full) == {"shots", "scenes", "speech", "subtitles", "ocr", "qc", "loudness", "structure"}
    assert [s["scene_index"] for s in full["scenes"]] == [0, 1] and full["structure"] == [{"label": "end_credits", "start_s": 50.0, "end_s": 60.0}]
    assert full["loudness"] == {"tracks": []} and [o["language"] for o in full["ocr"]] == ["ko", "en"]
    body = is_problem(client.get(f"/v1/titles/{T1}/timeline", params={"tracks": "speech,bogus"}), 400)
    assert "bogus" in body["detail"]
    is_problem(client.get(f"/v1/titles/{T1}/timeline", params={"start_s": 20, "end_s": 10}), 400)
    is_problem(client.get(f"/v1/titles/{T1}/timeline", params={"start_s": -1}), 400)


@pytest.mark.parametrize("title_id, name, must", [
    (T1, "subtitles-en", "00:00:12.000 --> 00:00:15.000\nMeet me at the old lighthouse tonight."),
    (T1, "transcript-en", "00:00:52.000 --> 00:00:55.000\nthanks for watching the lighthouse keeper"),
    (T2, "transcript-de", "die Straße ist sehr lang heute"),
    (T1, "chapters", "End credits"),
    (T1, "qc", '"kind": "loudness"'),
    (T3, "chapters", "WEBVTT"),
])
def test_vtt_tracks(client, title_id, name, must):
    r = client.get(f"/v1/titles/{title_id}/tracks/{name}.vtt")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/vtt")
    assert r.text.startswith("WEBVTT\n") and must in r.text


def test_vtt_unknown_tracks(client):
    for name in ("subtitles-fr", "transcript-xx", "bogus"):
        is_problem(client.get(f"/v1/titles/{T1}/tracks/{name}.vtt"), 404)


# ---------------------------------------------------------------------------------------------- media and files


def test_media_ranges(client):
    r = client.get(f"/v1/titles/{T1}/media", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 0-99/{len(PROXY)}" and len(r.content) == 100 and r.content == PROXY[:100]
    r = client.get(f"/v1/titles/{T1}/media", headers={"Range": "bytes=99990-"})
    assert r.status_code == 206 and r.content == PROXY[99990:]
    r = client.get(f"/v1/titles/{T1}/media")
    assert r.status_code == 200 and r.content == PROXY and r.headers["content-type"] == "video/mp4"
    assert r.headers.get("accept-ranges") == "bytes"
    r = client.get(f"/v1/titles/{T1}/media", headers={"Range": f"bytes=-{2 * len(PROXY)}"})  # a suffix longer than the file: all of it
    assert r.status_code == 206 and r.content == PROXY and r.headers["content-range"] == f"bytes 0-{len(PROXY) - 1}/{len(PROXY)}"
    assert client.get(f"/v1/titles/{T1}/media", headers={"Range": f"bytes={len(PROXY)}-"}).status_code == 416


class MemStore:
    """An object store holding one object, reading ranges the way S3 does (a start before 0 is an invalid range)."""

    def __init__(self, data: bytes):
        self.data = data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        from prism_assets.core.store import StoreError

        if not 0 <= start <= end:
            raise StoreError(f"cannot read {key}: InvalidRange bytes={start}-{end}")
        return self.data[start:end + 1]


def send_remote(range_header: str | None):
    """api_titles._send for an object-store file (the S3 branch), with this Range header."""
    from starlette.requests import Request

    from prism_assets.serving.api_titles import _send
    from prism_assets.serving.data import RemoteFile

    headers = [(b"range", range_header.encode())] if range_header else []
    return _send(Request({"type": "http", "method": "GET", "path": "/", "headers": headers}), RemoteFile(MemStore(PROXY), "proxy.mp4", len(PROXY)), "video/mp4")


def _streamed(r) -> bytes:
    import asyncio

    async def collect():
        return b"".join([chunk async for chunk in r.body_iterator])

    return asyncio.run(collect())


def test_media_ranges_from_an_object_store():
    n = len(PROXY)
    r = send_remote(None)
    assert r.status_code == 200 and _streamed(r) == PROXY and r.headers["accept-ranges"] == "bytes" and r.headers["content-length"] == str(n)
    r = send_remote("bytes=0-99")
    assert r.status_code == 206 and r.body == PROXY[:100] and r.headers["content-range"] == f"bytes 0-99/{n}"
    r = send_remote("bytes=99990-")
    assert r.status_code == 206 and r.body == PROXY[99990:] and r.headers["content-range"] == f"bytes 99990-99999/{n}"
    r = send_remote("bytes=-10")
    assert r.status_code == 206 and r.body == PROXY[-10:] and r.headers["content-range"] == f"bytes 99990-99999/{n}"
    r = send_remote("bytes=99990-200000")
    assert r.status_code == 206 and r.body == PROXY[99990:]
    for bad in (f"bytes={n}-", "bytes=50-10", "bytes=x-y"):
        r = send_remote(bad)
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{n}", bad


def test_media_suffix_range_longer_than_the_object():
    """BUG: api_titles._send (object-store branch) turns `Range: bytes=-N` with N > size into start = size - N < 0:
    it asks the store for the range `bytes=-N-(size-1)` (not a valid S3 Range) and would label the answer
    `Content-Range: bytes -N-(size-1)/size`. RFC 9110 14.1.3: a suffix longer than the representation selects all
    of it (start = max(size - N, 0)), as the local-file branch (Starlette's FileResponse) does."""
    n = len(PROXY)
    r = send_remote(f"bytes=-{2 * n}")
    assert r.status_code == 206 and r.body == PROXY and r.headers["content-range"] == f"bytes 0-{n - 1}/{n}"


def test_keyframe_served(env, client):
    files = keyframe_files(T1, env["built"])
    r = client.get(f"/v1/titles/{T1}/keyframes/2.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == files["keyframes/shot_002.jpg"]
    assert simplejpeg.decode_jpeg(r.content).shape == (180, 320, 3)
    assert client.get(f"/v1/titles/{T1}/keyframes/3.jpg").content == files["keyframes/shot_002.jpg"]  # the second window of shot 2


@pytest.mark.parametrize("url", [
    "/v1/titles/..%2F..%2Fetc/media",
    "/v1/titles/%2e%2e/media",
    "/v1/titles/%2e%2e%2f%2e%2e%2fsecret.txt/media",
    "/v1/titles/..%2F..%2F..%2Fsecret.txt/keyframes/0.jpg",
    f"/v1/titles/{T1}/posters/..%2F..%2Fqc.json",
    f"/v1/titles/{T1}/posters/%2e%2e",
    f"/v1/titles/{T1}/tracks/..%2F..%2Fqc.vtt",
    f"/v1/titles/{T3}/media",  # a symlink planted in the bundle, pointing outside the root
    f"/v1/titles/{T3}/keyframes/0.jpg",  # the same, for a keyframe
    "/static/..%2Fapp.py",
    "/static/%2e%2e%2fapp.py",
    "/static/..%2F..%2Fsettings.py",
    "/static/%2e%2e",
])
def test_traversal_never_serves_outside_files(env, client, url):
    assert env["data"].bundle_names("proxy", T3) == ["proxy.mp4"]  # the planted symlink is listed by the bundle
    for headers in ({}, {"Range": "bytes=0-99"}):
        r = client.get(url, headers=headers)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.content[:200])
        assert b"TOP-SECRET" not in r.content and b"def create_app" not in r.content and b"PrismSettings" not in r.content
        assert b"root:" not in r.content and b'"verdict"' not in r.content


def test_static_files(client):
    r = client.get("/static/viewer.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/viewer.css").headers["content-type"].startswith("text/css")
    is_problem(client.get("/static/nope.js"), 404)


# ---------------------------------------------------------------------------------------------- limits and errors


def test_request_limits_are_400_problems(client):
    is_problem(client.post("/v1/search", json={"q": "x" * 501}), 400)
    is_problem(client.post("/v1/search", json={"q": PHRASE, "top_k": 1000}), 400)
    is_problem(client.post("/v1/search", json={"q": ""}), 400)
    is_problem(client.post("/v1/search", json={"q": PHRASE, "channels": ["bogus"]}), 400)
    is_problem(client.post("/v1/search", json={"q": PHRASE, "filters": {"titles": ["bad id!"]}}), 400)
    is_problem(client.post("/v1/search", json={"q": PHRASE, "filters": {"start_s": 20, "end_s": 10}}), 400)
    is_problem(client.post("/v1/search", content=b"{not json", headers={"content-type": "application/json"}), 400)
    is_problem(client.post("/v1/search/then", json={"a": PHRASE, "b": "x", "within_s": 0}), 400)
    is_problem(client.post("/v1/search/then", json={"a": "x" * 501, "b": "x"}), 400)
    is_problem(client.post("/v1/rag/context", json={"q": PHRASE, "k": 1000}), 400)
    is_problem(client.post("/v1/search/frame", data={"top_k": "1000", "title_id": T1, "unit_index": "0"}), 400)
    for url in ("/v1/titles?page_size=1000", "/v1/qc/events?page_size=1000", "/v1/titles?page_size=0"):
        body = is_problem(client.get(url), 400)
        assert "page_size" in body["detail"]
    is_problem(client.get("/v1/search?q=" + PHRASE + "&channels=bogus"), 400)
    is_problem(client.get("/v1/search?q=" + PHRASE + "&title_id=bad%20id!"), 400)


@pytest.mark.parametrize("url", ["/v1/search?q=" + "x" * 501, f"/v1/search?q={PHRASE}&top_k=1000", f"/v1/search?q={PHRASE}&min_score=5"],
                         ids=["q-501-chars", "top_k-1000", "min_score-5"])
def test_search_get_limits_are_400_problems(client, url):
    """BUG: GET /v1/search builds `SearchRequest(...)` inside the route, so a q over 500 characters or a top_k over
    100 raises pydantic.ValidationError there (not FastAPI's RequestValidationError): it reaches the last-resort
    middleware and is answered 500 "Internal Server Error" (logged as an incident) instead of 400."""
    is_problem(client.get(url), 400)


def test_an_exception_in_a_route_is_a_500_problem_without_the_message(env, client, monkeypatch, caplog):
    def boom(*_a, **_k):
        raise RuntimeError("secret path /x")

    monkeypatch.setattr(env["data"].searcher, "search", boom)
    with caplog.at_level(logging.ERROR, logger="prism.serving"):
        r = client.post("/v1/search", json={"q": PHRASE})
    body = is_problem(r, 500)
    m = re.search(r"incident ([0-9a-f]{12})", body["detail"])
    assert m, body
    assert "secret" not in r.text and "/x" not in r.text and "RuntimeError" not in r.text
    assert any(m.group(1) in rec.getMessage() for rec in caplog.records)  # the id leads to the logged trace
    r = client.get("/search", params={"q": PHRASE})  # the viewer's search page too
    assert r.status_code == 500 and "secret" not in r.text


# ---------------------------------------------------------------------------------------------- API keys and CORS


@pytest.fixture(scope="module")
def keyed(env):
    app = create_app(env["settings"], data=env["data"], keys=(KEY,))
    return app


def test_api_keys(keyed):
    c = TestClient(keyed, follow_redirects=False)
    body = is_problem(c.get("/v1/titles"), 401)
    assert KEY not in body["detail"]
    is_problem(c.get("/v1/titles", headers={"X-API-Key": "w" * 20}), 401)
    is_problem(c.post("/v1/search", json={"q": PHRASE}), 401)
    is_problem(c.get("/v1/openapi.json"), 401)
    assert ids(c.get("/v1/titles", headers={"X-API-Key": KEY})) == [T1, T2, T3]
    assert ids(c.get("/v1/titles", headers={"Authorization": f"Bearer {KEY}"})) == [T1, T2, T3]
    assert c.post("/v1/search", json={"q": PHRASE}, headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/v1/health").status_code == 200
    assert c.get("/static/viewer.css").status_code == 200
    assert c.get(f"/v1/titles/{T1}/media", headers={"X-API-Key": KEY, "Range": "bytes=0-9"}).status_code == 206


def test_viewer_login_flow(keyed):
    c = TestClient(keyed, follow_redirects=False)
    r = c.get(f"/titles/{T1}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/titles/{T1}"
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = c.get("/login", params={"next": f"/titles/{T1}"})
    assert r.status_code == 200 and 'type="password"' in r.text
    r = c.post("/login", data={"key": KEY, "next": f"/titles/{T1}"})
    assert r.status_code == 303 and r.headers["location"] == f"/titles/{T1}"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"prism_api_key={KEY}") and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    r = c.get(f"/titles/{T1}")
    assert r.status_code == 200 and T1 in r.text
    assert c.get("/v1/titles").status_code == 200  # the cookie opens the API too
    # a wrong key in the cookie: back to the login page
    c2 = TestClient(keyed, follow_redirects=False)
    c2.post("/login", data={"key": "w" * 20})
    assert c2.get("/").status_code == 303
    # open redirects refused
    for evil in ("//evil.example/x", "https://evil.example/"):
        assert c.post("/login", data={"key": KEY, "next": evil}).headers["location"] == "/"


def test_login_refuses_a_backslash_open_redirect(keyed):
    """next='/\\evil.example' passes login's '//' check; browsers read '/\\host' as '//host'. It must not come back
    as a raw backslash (Starlette's RedirectResponse percent-encodes it: '/%5Cevil.example' stays on the site)."""
    c = TestClient(keyed, follow_redirects=False)
    r = c.post("/login", data={"key": KEY, "next": "/\\evil.example/x"})
    assert r.status_code == 303
    assert not r.headers["location"].startswith(("/\\", "\\")), r.headers["location"]


def test_keys_from_settings(env):
    settings = env["settings"].with_(api_keys=(KEY,))
    c = TestClient(create_app(settings, data=env["data"]))
    is_problem(c.get("/v1/titles"), 401)
    assert c.get("/v1/titles", headers={"X-API-Key": KEY}).status_code == 200
    with pytest.raises(ValueError, match="16 characters"):
        env["settings"].with_(api_keys=("short",))


def test_cors_only_when_configured(env, client):
    origin = {"Origin": "https://ui.example"}
    r = client.get("/v1/health", headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    c = TestClient(create_app(env["settings"].with_(api_cors_origins=("https://ui.example",)), data=env["data"]))
    r = c.get("/v1/titles", headers=origin)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in c.get("/v1/titles", headers={"Origin": "https://evil.example"}).headers
    r = c.options("/v1/search", headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example"


def test_cors_preflight_passes_when_keys_are_configured(env):
    """BUG: with API keys and CORS origins both set, a browser's preflight (OPTIONS, which never carries the key)
    is answered 401 by the `authenticate` middleware, which runs outside (before) the CORSMiddleware (app.py:
    `app.add_middleware(CORSMiddleware, ...)` is registered first, `@app.middleware("http")` afterwards = outermost).
    So no cross-origin client can send X-API-Key at all. Fix: let OPTIONS through (or add CORS after auth)."""
    settings = env["settings"].with_(api_cors_origins=("https://ui.example",))
    c = TestClient(create_app(settings, data=env["data"], keys=(KEY,)))
    r = c.options("/v1/search", headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "x-api-key,content-type"})
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers.get("access-control-allow-origin") == "https://ui.example"
    assert "x-api-key" in r.headers.get("access-control-allow-headers", "").lower()


# ---------------------------------------------------------------------------------------------- search endpoints


def test_search_post_and_get(client):
    r = client.post("/v1/search", json={"q": PHRASE})
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "hybrid" and body["min_score"] == DEFAULT_WEIGHTS.min_score and body["notes"] == []
    top = body["hits"][0]
    assert (top["title_id"], top["start_s"], top["citation"]) == (T1, 12.0, f"{T1}@00:00:12:00") and top["score"] > 0.99
    assert top["viewer_url"].endswith(f"/titles/{T1}?t=12.00") and top["explanation"]["lexical"] == 1.0
    assert {h["title_id"] for h in body["hits"]} == {T1, T2}
    hits = client.post("/v1/search", json={"q": PHRASE, "filters": {"titles": [T2]}}).json()["hits"]
    assert hits and {h["title_id"] for h in hits} == {T2}
    hits = client.post("/v1/search", json={"q": PHRASE, "group_by": "title"}).json()["hits"]
    assert sorted(h["title_id"] for h in hits) == [T1, T2]
    hits = client.post("/v1/search", json={"q": "여러", "mode": "lexical"}).json()["hits"]
    assert (hits[0]["title_id"], hits[0]["channel"], hits[0]["language"]) == (T1, "ocr", "ko")
    hits = client.post("/v1/search", json={"q": "thanks for watching the lighthouse keeper", "filters": {"exclude_structure": ["end_credits"]}}).json()["hits"]
    assert all(h["structure"] != "end_credits" for h in hits)
    assert client.post("/v1/search", json={"q": "zebra quantum saxophone"}).json()["hits"] == []
    # GET: the simple form
    r = client.get("/v1/search", params={"q": PHRASE, "title_id": T2, "channels": "speech"})
    assert r.status_code == 200 and [(h["title_id"], h["channel"]) for h in r.json()["hits"]] == [(T2, "speech")]
    hits = client.get("/v1/search", params={"q": "die Straße ist sehr lang heute", "language": "de"}).json()["hits"]
    assert hits and {h["language"] for h in hits} == {"de"}
    hits = client.get("/v1/search", params={"q": PHRASE, "series_id": "S1", "top_k": 1}).json()["hits"]
    assert len(hits) == 1 and hits[0]["title_id"] == T1


def test_search_then(client):
    r = client.post("/v1/search/then", json={"a": PHRASE, "b": "bring the lantern and the map", "within_s": 10, "channels": ["speech"]})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert [h["title_id"] for h in hits] == [T1] and hits[0]["channel"] == "sequence" and hits[0]["explanation"]["gap_s"] == 2.0
    hits = client.post("/v1/search/then", json={"a": PHRASE, "b": "bring the lantern and the map", "within_s": 30, "channels": ["speech"]}).json()["hits"]
    assert sorted(h["title_id"] for h in hits) == [T1, T2]


def test_search_by_frame(env, client):
    rows, _, pics = env["built"][T2]
    fr = rows["frames"][2]
    r = client.post("/v1/search/frame", files={"image": ("query.jpg", reencoded(pics[fr["t_s"]]), "image/jpeg")}, data={"top_k": "3"})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["mode"] == "frame" and len(body["hits"]) <= 3
    top = body["hits"][0]
    assert (top["title_id"], top["unit_index"], top["channel"]) == (T2, fr["unit_index"], "frame") and top["score"] > 0.6
    # by a title's unit: its keyframe
    r = client.post("/v1/search/frame", data={"title_id": T1, "unit_index": "2"})
    assert r.status_code == 200, r.text[:300]
    top = r.json()["hits"][0]
    assert (top["title_id"], top["unit_index"]) == (T1, 2) and top["score"] > 0.8  # the indexed vector came from a downscaled decode
    hits = client.post("/v1/search/frame", data={"title_id": T1, "unit_index": "2", "exclude_title": T1}).json()["hits"]
    assert T1 not in {h["title_id"] for h in hits}
    is_problem(client.post("/v1/search/frame", files={"image": ("x.jpg", b"not a picture at all", "image/jpeg")}), 400)
    is_problem(client.post("/v1/search/frame", data={"top_k": "3"}), 400)
    is_problem(client.post("/v1/search/frame", data={"title_id": T1, "unit_index": "99"}), 404)
    is_problem(client.post("/v1/search/frame", data={"title_id": T3, "unit_index": "0"}), 404)  # the planted symlink


def test_rag_context(client):
    r = client.post("/v1/rag/context", json={"q": PHRASE, "k": 3})
    assert r.status_code == 200
    chunks = r.json()["chunks"]
    assert chunks and len(chunks) <= 3
    assert all(CITATION.match(c["citation"]) for c in chunks), [c["citation"] for c in chunks]
    assert chunks[0]["citation"] == f"{T1}@00:00:12:00" and chunks[0]["text"].lower().startswith("meet me")
    assert "bring the lantern and the map" in chunks[0]["context"] and "the quick brown fox" in chunks[0]["context"]
    assert "heavy rain" not in chunks[0]["context"]  # 25 s away: outside the 15 s context
    assert len({(c["title_id"], c["start_s"]) for c in chunks}) == len(chunks)
    r = client.post("/v1/rag/context", json={"q": PHRASE, "k": 5, "filters": {"titles": [T2]}, "context_s": 0})
    assert [c["citation"] for c in r.json()["chunks"]] == [f"{T2}@00:00:05:00"]


def test_qc_events_feed(client):
    r = client.get("/v1/qc/events")
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 5 and r.json()["next_page_token"] is None
    assert [e["title_id"] for e in items] == [T1, T1, T1, T2, T3]  # newest delivery first
    assert all(CITATION.match(e["citation"]) for e in items) and isinstance(items[0]["metrics"], dict)
    fail = client.get("/v1/qc/events", params={"severity": "fail"}).json()["items"]
    assert [(e["title_id"], e["kind"]) for e in fail] == [(T1, "loudness")]
    assert {e["severity"] for e in client.get("/v1/qc/events", params={"severity": "warn"}).json()["items"]} == {"warn"}
    assert {e["title_id"] for e in client.get("/v1/qc/events", params={"since": "2024-05-01"}).json()["items"]} == {T1, T2}
    assert [e["kind"] for e in client.get("/v1/qc/events", params={"title_id": T3}).json()["items"]] == ["black_frames"]
    assert {e["title_id"] for e in client.get("/v1/qc/events", params={"kind": "black_frames"}).json()["items"]} == {T1, T3}
    assert client.get("/v1/qc/events", params={"kind": "x' OR '1'='1"}).json()["items"] == []
    seen, token = [], None
    for _ in range(10):
        r = client.get("/v1/qc/events", params={"page_size": 2, **({"page_token": token} if token else {})})
        seen += [e["row_id"] for e in r.json()["items"]]
        token = r.json()["next_page_token"]
        if token is None:
            break
    assert seen == [e["row_id"] for e in items] and len(set(seen)) == 5
    is_problem(client.get("/v1/qc/events", params={"severity": "bogus"}), 400)
    is_problem(client.get("/v1/qc/events", params={"since": "May 1"}), 400)
    is_problem(client.get("/v1/qc/events", params={"title_id": "bad id!"}), 400)


def test_qc_events_bad_page_token_is_a_400(client):
    """BUG: api_titles.qc_events does `int(_untoken(page_token))`: a token that decodes to text but not to a number
    raises a plain ValueError (not BadRequest), which is answered 500 instead of 400."""
    import base64

    token = base64.urlsafe_b64encode(b"not-a-number").decode().rstrip("=")
    is_problem(client.get("/v1/qc/events", params={"page_token": token}), 400)


# ---------------------------------------------------------------------------------------------- viewer


def test_viewer_pages(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for text in (T1, T2, T3, "FAIL", "PASS", "WARN", "Alpha"):
        assert text in r.text, text
    r = client.get(f"/titles/{T1}")
    assert r.status_code == 200
    html = r.text
    assert T1 in html and "FAIL" in html and SPECS[T1]["qc"]["reasons"][0] in html
    video = re.search(r"<video[^>]*>(.*?)</video>", html, re.S)
    assert video and f'src="/v1/titles/{T1}/media"' in video.group(0)
    tracks = re.findall(r"<track [^>]*>", video.group(1))
    srcs = {re.search(r'src="([^"]+)"', t).group(1) for t in tracks}
    assert srcs == {f"/v1/titles/{T1}/tracks/subtitles-en.vtt", f"/v1/titles/{T1}/tracks/transcript-en.vtt", f"/v1/titles/{T1}/tracks/chapters.vtt"}
    assert "loudness" in html and "black_frames" in html  # the fail and warn events listed
    r = client.get(f"/titles/{T2}")
    assert r.status_code == 200 and "PASS" in r.text and "<video" not in r.text and "No playable proxy" in r.text
    r = client.get("/search", params={"q": PHRASE})
    assert r.status_code == 200 and T1 in r.text and T2 in r.text and "lighthouse" in r.text
    assert f"/titles/{T1}?t=12.00" in r.text and f"/v1/titles/{T1}/keyframes/1.jpg" in r.text
    r = client.get("/search", params={"q": "zebra quantum saxophone"})
    assert r.status_code == 200 and "No moment matches" in r.text
    r = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert r.status_code == 200 and "<script>alert(1)</script>" not in r.text
    assert client.get("/search", params={"q": ""}, follow_redirects=False).status_code == 303
    assert client.get("/titles/nope-999").status_code == 404


def test_day_pages_without_a_catalog_are_one_line_503(client):
    """This server was given no catalog (the API of a deployment that does not pass PRISM_CATALOG_URL): the day pages
    say so in one line, no stack trace, no URL with a password."""
    body = is_problem(client.get("/v1/days/2026-11-20"), 503)
    assert "PRISM_CATALOG_URL" in body["detail"]
    assert client.get("/days/2026-11-20").status_code == 503
    is_problem(client.get("/v1/days/2026-02-30"), 400)
