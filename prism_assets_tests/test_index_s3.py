"""The production index: LanceDB on S3 (moto's S3 server on loopback), written and searched through the same
backend and API as the embedded default; re-processing replaces a title's rows there too."""

import pytest

from prism_assets.index.backend import Cond, LanceBackend, s3_options
from prism_assets.index.search import Query, Searcher

from .test_index import T1, T2, FakeEmbedder, build_title

pytestmark = pytest.mark.integration


def test_index_on_s3_write_replace_search_and_serve(s3_env, tmp_path):
    endpoint, bucket, client = s3_env
    uri = f"s3://{bucket}/index"
    backend = LanceBackend(uri, options=s3_options(endpoint, "us-east-1"), read_consistency_s=0)
    emb = FakeEmbedder()
    for tid in (T1, T2):
        rows, trow, _ = build_title(tid, emb)
        backend.replace_title(tid, rows, trow)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="index/").get("Contents", [])]
    assert any(k.startswith("index/speech.lance/") for k in keys) and any(k.startswith("index/titles.lance/") for k in keys)
    before = backend.count("speech", [Cond("title_id", "=", T1)])
    rows, trow, _ = build_title(T1, emb, index_version="run2", trim=True)
    backend.replace_title(T1, rows, trow)
    assert backend.count("speech", [Cond("title_id", "=", T1)]) == len(rows["speech"]) <= before
    assert {r["index_version"] for r in backend.select("speech", [Cond("title_id", "=", T1)])} == {"run2"}
    text = rows["speech"][0]["text"]
    hits, _ = Searcher(backend, emb).search(Query(text=text, min_score=0.0))
    assert hits and hits[0].title_id == T1

    # the API over the S3 index (settings from the environment, as in the API image)
    from fastapi.testclient import TestClient

    from prism_assets.serving.app import create_app
    from prism_assets.settings import PrismSettings

    settings = PrismSettings.from_env({"PRISM_DATA_DIR": str(tmp_path), "PRISM_INDEX_URI": uri, "PRISM_S3_ENDPOINT_URL": endpoint,
                                       "AWS_REGION": "us-east-1"})
    c = TestClient(create_app(settings, embedder=emb))
    assert {t["title_id"] for t in c.get("/v1/titles").json()["items"]} == {T1, T2}
    assert c.post("/v1/search", json={"q": text, "min_score": 0}).json()["hits"][0]["title_id"] == T1
