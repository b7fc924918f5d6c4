"""CPU per search over the load index (`python -m benchmarks.search_load --index DIR --profile N`): what the latency
under load depends on, measured where other processes sharing the machine do not blur it (process CPU time, not
wall time).

- in-process: `Searcher.search` plus the API's JSON answer (`api_search.hit_json`, dumped as `JSONResponse` does),
  one thread, with the query encoder `prism serve` loads, float32 and int8 (`models.text.query_int8`) side by side,
  query by query; ms of `time.process_time` (every thread of the process: LanceDB's, the encoder's) per search;
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


def profile(index: Path, qs: list[str], kinds: list[str], *, top: int = 0, http: bool = False, port: int = 8093) -> dict:
    out = {"in_process": _in_process(index, qs, kinds, top)}
    if http:
        out["http"] = _over_http(index, qs, port)
    out["note"] = "CPU time, not wall time (the machine is shared): compare runs side by side, interleaved"
    return out
