"""CPU per search over the load index (`python -m benchmarks.search_load --index DIR --profile N`): what the latency
under load depends on, measured where other processes sharing the machine do not blur it (process CPU time, not
wall time).

- in-process: `Searcher.search` plus the API's JSON answer (`api_search.hit_json`, dumped as `JSONResponse` does),
  one thread, with the query encoder `prism serve` loads, float32 and int8 (`models.text.query_int8`) side by side,
  query by query; ms of `time.process_time` (every thread of the process: LanceDB's, the encoder's) per search;
- `stages=True`: where a search's CPU goes (each backend call and the query encoder, per query kind) and what-ifs
  (the full-text read without its candidate columns, fewer ANN probes);
- `http=True`: the same queries one at a time to a `prism serve --workers 1` process; its CPU (utime + stime of its
  process group, from /proc) per request: HTTP parsing, ASGI, validation and the answer included.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path


def _group_cpu_s(pgid: int) -> float:
    """utime + stime of every live process of the process group (Linux /proc)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _data(index: Path, int8: bool):
    from prism_assets.serving.app import create_app
    from prism_assets.settings import PrismSettings

    env = {**os.environ, "PRISM_INDEX_URI": str(index), "PRISM_DATA_DIR": tempfile.mkdtemp(prefix="search_cpu_")}
    before = os.environ.get("PRISM_TEXT_QUERY_INT8")
    os.environ["PRISM_TEXT_QUERY_INT8"] = "1" if int8 else "0"  # read by create_app (serving/app.py `query_int8`)
    try:
        return create_app(PrismSettings.from_env(env=env), keys=()).state.data
    finally:
        if before is None:
            os.environ.pop("PRISM_TEXT_QUERY_INT8", None)
        else:
            os.environ["PRISM_TEXT_QUERY_INT8"] = before


def _residents_ready(data, timeout_s: float = 120.0) -> dict:
    """Wait until the server's resident copy of the speech table is built (index/resident.py: built in the background
    after the first searches; its build would otherwise count as the first searches' CPU)."""
    res = data.backend.residents
    deadline = time.monotonic() + timeout_s
    while res is not None and "speech" not in res.held() and time.monotonic() < deadline:
        data.backend.fts("speech", "warm")
        time.sleep(0.2)
    return res.held() if res is not None else {}


def _in_process(index: Path, qs: list[str], kinds: list[str], top: int) -> dict:
    """The query encoders side by side: for each query the float32 and the int8 server (each its own backend and
    encoder cache) in turn, the order alternating, so a busy machine weighs on both alike."""
    from prism_assets.index.search import Query
    from prism_assets.serving.api_search import hit_json

    sides = {"float32": _data(index, False), "int8": _data(index, True)}

    def one(data, text: str) -> list:
        q = Query(text=text, top_k=10)
        hits, notes = data.searcher.search(q)
        body = {"hits": [hit_json(h, "http://x") for h in hits], "notes": notes, "mode": q.mode, "channels": list(q.channels),
                "min_score": data.searcher.weights.min_score, "index_version": data.index_version()}
        json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        return [h.row_id for h in hits]

    for data in sides.values():
        for text in ("warm up the reads", "서울 부산 kato", "zqxo vyjux"):
            one(data, text)
        _residents_ready(data)
    per: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
    found, differ, order = 0, 0, list(sides)
    for i, (text, kind) in enumerate(zip(qs, kinds)):
        got = {}
        for name in (order if i % 2 == 0 else order[::-1]):
            t0 = time.process_time()
            got[name] = one(sides[name], text)
            per[name].setdefault(kind, []).append(time.process_time() - t0)
        found += bool(got["float32"])
        differ += got["float32"] != got["int8"]
    out = {"queries": len(qs), "answered": found, "int8_changed_the_hits_of": differ}
    for name, kinds_ in per.items():
        every = [x for v in kinds_.values() for x in v]
        out[name] = {"cpu_ms_per_search": round(sum(every) / len(every) * 1000, 2),
                     "by_kind": {k: {"n": len(v), "cpu_ms": round(sum(v) / len(v) * 1000, 2)} for k, v in sorted(kinds_.items())},
                     "encoder": repr(sides[name].embedder.inner)}
    data = sides["float32"]

    def one_text(text: str) -> None:
        one(data, text)

    if top:
        import cProfile
        import io
        import pstats

        getattr(data.embedder, "_cache", {}).clear()  # the vectors of these queries are computed again, as above
        prof = cProfile.Profile()
        prof.enable()
        for text in qs:
            one_text(text)
        prof.disable()
        for sort in ("cumulative", "tottime"):
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(top)
            out[f"cprofile_{sort}"] = buf.getvalue().splitlines()
    return out


def _over_http(index: Path, qs: list[str], port: int) -> dict:
    import httpx

    from prism_assets_tests.support.serve import start_serve

    work = Path(tempfile.mkdtemp(prefix="search_cpu_http_"))
    env = {**os.environ, "PRISM_DATA_DIR": str(work / "data"), "PRISM_INDEX_URI": str(index), "PYTHONUNBUFFERED": "1"}
    env.pop("PRISM_API_KEYS", None)
    server, url = start_serve(env, port, work / "serve.log", workers=1)
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            for text in ("warm up the reads", "서울 부산 kato", "zqxo vyjux"):
                c.post("/v1/search", json={"q": text, "top_k": 10})
            c0, errors = _group_cpu_s(server.pid), 0
            for text in qs:
                errors += c.post("/v1/search", json={"q": text, "top_k": 10}).status_code != 200
            used = _group_cpu_s(server.pid) - c0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {"queries": len(qs), "errors": errors, "server_cpu_ms_per_request": round(used / len(qs) * 1000, 2)}


def _stages(index: Path, qs: list[str], kinds: list[str]) -> dict:
    """Where a search's CPU goes, per query kind: each backend call (`fts`, its fuzzy and CJK forms, `nearest`,
    `fetch`, `select`) and the query encoder, in ms of process CPU per search, the channels run one after another so
    each call is charged to its query. Then two what-ifs on the same queries: the full-text read without the candidate
    columns (`_rowid` and score only: what reading `text` + `hit` per candidate costs) and `nearest` at fewer probes."""
    import collections
    import threading

    import numpy as np

    import prism_assets.index.search as search_mod
    from prism_assets.index.search import Query
    from prism_assets.index.tables import TEXT_DIM

    data = _data(index, False)
    _residents_ready(data)
    b, acc, cur = data.backend, collections.defaultdict(float), threading.local()
    for name in ("fts", "nearest", "fetch", "select"):
        def wrap(*a, _o=getattr(b, name), _n=name, **k):
            t0 = time.process_time()
            try:
                return _o(*a, **k)
            finally:
                key = _n + ("/fuzzy" if k.get("fuzziness") else "") + ("/cjk" if k.get("column") == "cjk" else "")
                acc[(cur.kind, key)] += time.process_time() - t0
        setattr(b, name, wrap)
    emb, embed = data.searcher.embedder, data.searcher.embedder.embed

    def timed_embed(*a, **k):
        t0 = time.process_time()
        try:
            return embed(*a, **k)
        finally:
            acc[(cur.kind, "encode query")] += time.process_time() - t0
    emb.embed = timed_embed
    pool, search_mod._POOL = search_mod._POOL, type("Serial", (), {"map": staticmethod(lambda f, xs: list(map(f, xs)))})()
    total, n = collections.defaultdict(float), collections.Counter()
    try:
        cur.kind = "warm-up"
        for text in qs[:10]:
            data.searcher.search(Query(text=text, top_k=10))
        for text, kind in zip(qs, kinds):
            cur.kind = kind
            getattr(emb, "_cache", {}).clear()
            t0 = time.process_time()
            data.searcher.search(Query(text=text, top_k=10))
            total[kind] += time.process_time() - t0
            n[kind] += 1
    finally:
        search_mod._POOL, emb.embed = pool, embed
    out = {kind: {"searches": n[kind], "cpu_ms_per_search": round(total[kind] / n[kind] * 1000, 2),
                  "by_call_ms": {c: round(v / n[kind] * 1000, 2) for (k, c), v in sorted(acc.items()) if k == kind}} for kind in n}
    from lancedb.query import MatchQuery

    t = b._reader("speech")
    words = [q for q, k in zip(qs, kinds) if k == "phrase"][:60]
    rng = np.random.default_rng(1)
    vecs = [v / np.linalg.norm(v) for v in rng.standard_normal((60, TEXT_DIM)).astype(np.float32)]
    variants = {}
    for label, run in (
            ("fts text+hit", lambda q, v: t.query().nearest_to_text(MatchQuery(q, "text")).limit(30).select(["text", "hit", "_score"]).with_row_id()),
            ("fts rowid only", lambda q, v: t.query().nearest_to_text(MatchQuery(q, "text")).limit(30).select(["_score"]).with_row_id()),
            *[(f"nearest nprobes {p}", lambda q, v, p=p: t.query().nearest_to(v).column("vector").distance_type("cosine").nprobes(p)
               .limit(30).select(["text", "hit", "_distance"]).with_row_id()) for p in (100, 50, 20)]):
        for q, v in zip(words[:5], vecs[:5]):
            b._run(run(q, v).to_arrow())
        t0 = time.process_time()
        for q, v in zip(words, vecs):
            b._run(run(q, v).to_arrow())
        variants[label] = round((time.process_time() - t0) / len(words) * 1000, 2)
    return {"by_kind": out, "what_if_ms_per_call": variants}


def profile(index: Path, qs: list[str], kinds: list[str], *, top: int = 0, http: bool = False, port: int = 8093, stages: bool = False) -> dict:
    out = {"in_process": _in_process(index, qs, kinds, top)}
    if stages:
        out["stages"] = _stages(index, qs, kinds)
    if http:
        out["http"] = _over_http(index, qs, port)
    out["note"] = "CPU time, not wall time (the machine is shared): compare runs side by side, interleaved"
    return out
