"""Search latency at scale: `/v1/search` of a real `prism serve` process over an index of >= 1,000,000
rows, 16 concurrent clients for 60 s, all on this machine (loopback only).

    PYTHONPATH=. .venv/bin/python -m benchmarks.search_load [--rows 1000000] [--clients 16] [--seconds 60] [--index DIR] [--out FILE]

The rows are synthetic (titles x speech segments and units with pseudo-sentences over a 20,000-word
vocabulary, Korean and Japanese lines among them, random unit-norm 384-d text vectors); the index is
built through the same backend as the `search_index` asset (LanceBackend, then `maintain()`, which
compacts and builds the ANN indexes the daily maintenance job builds). Queries mix 2-6 word phrases
taken from indexed rows, phrases with a typo, CJK pairs and words that appear nowhere, none sent twice. Clients run in
a separate process from the server (threads, closed loop, no think time); each request's latency is
measured by the client. Results: p50/p95/p99, requests, errors, the CPU per request of the server's processes
and of the client (where the two cores went), and the index build seconds.

    PYTHONPATH=. .venv/bin/python -m benchmarks.search_load --index DIR --profile 400 [--cprofile 25] [--http] [--stages]

`--profile N` measures instead what the latency depends on, CPU per search, on the same index and query mix: N
queries in one thread, in-process (`Searcher.search` and the API's JSON answer, with the query encoder `prism serve`
loads), as `time.process_time` ms per search, per query kind, into `--profile-out` (results/search_cpu.json; `--out`
is left alone); `--cprofile K` adds
cProfile's top K functions by cumulative time; `--http` measures the same queries sent one at a time to a `prism
serve --workers 1` process: its CPU (utime + stime of its process group) per request, HTTP and ASGI included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.bench_proc import host_speed

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "search_load.json"
PROFILE_OUT = REPO / "benchmarks" / "results" / "search_cpu.json"
SYLL = ["ka", "to", "ri", "ne", "mo", "sa", "lu", "vi", "de", "ran", "tel", "por", "min", "ga", "shi", "bel", "con", "dra", "fen", "lo"]
CJK = ["서울", "부산", "시장", "공원", "東京", "大阪", "ホテル", "カフェ", "駅前", "공항"]


def _group_pss_mb(pgid: int) -> float | None:
    """Proportional set size of the processes of a process group (the server and its workers), MB; None off Linux."""
    total, seen = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # pgrp
                continue
            for line in (stat.parent / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total, seen = total + int(line.split()[1]), True
        except (OSError, ValueError, IndexError):
            continue
    return round(total / 1024, 1) if seen else None


def vocabulary(n: int, rng) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLL, size=int(rng.integers(2, 5)))))  # 20^2 + 20^3 + 20^4 possible words
    return sorted(words)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(index: Path, rows: int, rng) -> dict:
    from prism_assets.index.backend import LanceBackend
    from prism_assets.index.features import cjk_runs
    from prism_assets.index.packing import pack_hits
    from prism_assets.index.tables import TEXT_DIM, schema_for

    t0 = time.perf_counter()
    vocab = vocabulary(20_000, rng)
    backend = LanceBackend(str(index))
    n_speech, n_units = int(rows * 0.8), rows - int(rows * 0.8)
    per_title = 1000
    batch = 50_000
    samples = []
    speech = backend.db.create_table("speech", schema=schema_for("speech"), exist_ok=True)
    for b0 in range(0, n_speech, batch):
        n = min(batch, n_speech - b0)
        idx = np.arange(b0, b0 + n)
        lens = rng.integers(5, 14, size=n)
        words = rng.choice(len(vocab), size=(n, 14))
        texts = [" ".join(vocab[w] for w in words[i, :lens[i]]) for i in range(n)]
        for i in rng.choice(n, size=n // 50, replace=False):
            texts[i] += " " + " ".join(rng.choice(CJK, size=2))
        samples += [texts[i] for i in rng.choice(n, size=20, replace=False)]
        start = (idx % per_title) * 6.0
        speech.add(pack_hits(pa.table({
            "row_id": [f"t{i // per_title:05d}:speech:0:{i % per_title}" for i in idx], "title_id": [f"t{i // per_title:05d}" for i in idx],
            "series_id": pa.nulls(n, pa.string()), "season": pa.nulls(n, pa.int32()), "episode": pa.nulls(n, pa.int32()),
            "index_version": ["synthetic"] * n, "start_s": start, "end_s": start + 5.0, "timecode": ["00:00:00:00"] * n,
            "structure": ["body"] * n, "scene_index": pa.array((idx % per_title) // 20, pa.int32()), "text": texts, "cjk": [cjk_runs(x) for x in texts], "language": ["en"] * n,
            "track": ["0"] * n, "detail": ['{"words": []}'] * n, "hit": pa.nulls(n, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(unit(rng.standard_normal((n, TEXT_DIM), dtype=np.float32)).reshape(-1), TEXT_DIM)},
            schema=speech.schema)))  # `hit` packed from the row's columns, as the backend does on every write
        print(f"speech rows {b0 + n}", flush=True)
    units = backend.db.create_table("units", schema=schema_for("units", clip_dim=512), exist_ok=True)
    for b0 in range(0, n_units, batch):
        n = min(batch, n_units - b0)
        idx = np.arange(b0, b0 + n)
        start = (idx % 250) * 8.0
        units.add(pa.table({
            "row_id": [f"t{i // 250:05d}:units:{i % 250}" for i in idx], "title_id": [f"t{i // 250:05d}" for i in idx],
            "series_id": pa.nulls(n, pa.string()), "season": pa.nulls(n, pa.int32()), "episode": pa.nulls(n, pa.int32()),
            "index_version": ["synthetic"] * n, "start_s": start, "end_s": start + 8.0, "timecode": ["00:00:00:00"] * n, "structure": ["body"] * n,
            "scene_index": pa.array((idx % 250) // 10, pa.int32()), "unit_index": pa.array(idx % 250, pa.int32()),
            "shot_index": pa.array(idx % 250, pa.int32()), "start_frame": pa.array((idx % 250) * 200, pa.int32()),
            "end_frame": pa.array((idx % 250) * 200 + 199, pa.int32()), "keyframe": pa.nulls(n, pa.string()), "keyframe_t_s": pa.nulls(n, pa.float64()),
            "clip_model": ["ViT-B-32/random-init"] * n, "weights_trained": [False] * n, "clip": pa.nulls(n, pa.list_(pa.float32(), 512))},
            schema=units.schema))
    titles = sorted({f"t{i // per_title:05d}" for i in range(n_speech)})
    backend.db.create_table("titles", schema=schema_for("titles"), exist_ok=True).add(
        [{"title_id": t, "name": t, "index_version": "synthetic", "indexed_at": "2026-12-01T00:00:00+00:00", "languages": ["en"]} for t in titles])
    t_rows = time.perf_counter() - t0
    backend = LanceBackend(str(index))
    backend.ensure_fts("speech", backend.table("speech"))  # what the asset does on its first write
    t_fts = time.perf_counter() - t0 - t_rows
    stats = backend.maintain(older_than_s=0, vector_index_min_rows=100_000)
    return {"rows": {"speech": n_speech, "units": n_units, "titles": len(titles)}, "seconds": {"rows": round(t_rows, 1), "fts_index": round(t_fts, 1),
            "maintain_and_ann_index": round(time.perf_counter() - t0 - t_rows - t_fts, 1)}, "maintain": stats, "samples": samples}


KINDS = ("phrase", "phrase", "typo", "cjk", "absent")  # the query kinds, by attempt


def queries(samples: list[str], rng, n: int = 12_000, kinds: list | None = None) -> list[str]:
    """n queries, no two alike (a run of 60 s sends fewer than n, so no query repeats and no cache answers one): 2-6 word
    phrases from indexed rows, the same with a typo, CJK pairs with a word, and made-up words found nowhere."""
    out, seen = [], set()
    absent = ["zq", "xo", "vy", "jux", "qen", "wib", "fro", "kzy", "plo"]  # syllables the corpus vocabulary never uses
    tries = 0
    while len(out) < n and tries < 50 * n:
        s = samples[int(rng.integers(0, len(samples)))].split()
        kind, tries = tries % 5, tries + 1  # by attempt: a kind whose queries run out leaves room to the others
        if kind in (0, 1):
            a = int(rng.integers(0, max(1, len(s) - 3)))
            q = " ".join(s[a:a + int(rng.integers(2, 6))])
        elif kind == 2:
            w = list(" ".join(s[int(rng.integers(0, 3)):][:3]))
            k = int(rng.integers(0, len(w)))
            w[k] = "x" if w[k] != "x" else "y"
            q = "".join(w)
        elif kind == 3:
            q = " ".join([str(rng.choice(CJK)), str(rng.choice(CJK)), s[int(rng.integers(0, len(s)))]])
        else:
            q = " ".join("".join(rng.choice(absent, size=int(rng.integers(2, 4)))) for _ in range(int(rng.integers(2, 4))))
        if q not in seen:
            seen.add(q)
            out.append(q)
            if kinds is not None:
                kinds.append(KINDS[kind])
    return out


def client_load(url: str, qs: list[str], clients: int, seconds: float) -> dict:
    import httpx

    lat, errors, stop = [], [], time.monotonic() + seconds
    lock = threading.Lock()

    def worker(k: int):
        with httpx.Client(base_url=url, timeout=30) as c:
            i = k
            while time.monotonic() < stop:
                q = qs[i % len(qs)]
                i += clients
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/search", json={"q": q, "top_k": 10})
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    (lat.append(dt) if ok else errors.append(str(getattr(r, "status_code", r))[:100]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    a = np.array(lat) if lat else np.array([np.nan])
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(lat), "errors": len(errors), "error_samples": errors[:5],
            "rps": round(len(lat) / wall, 1), "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(np.max(a)), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--index", type=Path, default=None, help="reuse / keep the index here")
    ap.add_argument("--port", type=int, default=8093)
    ap.add_argument("--workers", type=int, default=2, help="prism serve --workers (uvicorn processes)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="CPU ms per search over N queries (needs --index)")
    ap.add_argument("--cprofile", type=int, default=0, metavar="K", help="with --profile: cProfile's top K functions")
    ap.add_argument("--http", action="store_true", help="with --profile: server CPU per request of a prism serve process")
    ap.add_argument("--stages", action="store_true", help="with --profile: CPU per backend call and query kind, and what-ifs")
    ap.add_argument("--profile-out", type=Path, default=PROFILE_OUT, help="with --profile: where the result goes")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.profile:
        from benchmarks.search_cpu import profile

        if args.index is None or not (args.index / "speech.lance").exists():
            ap.error("--profile needs --index DIR of an index built by this script")
        samples, kinds = json.loads((args.index.parent / "samples.json").read_text()), []
        qs = queries(samples, rng, n=args.profile, kinds=kinds)
        doc = {"benchmark": "search_cpu", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0], "host": host_speed()},
               "load_average_start": round(os.getloadavg()[0], 2), "index": str(args.index),
               **profile(args.index, qs, kinds, top=args.cprofile, http=args.http, port=args.port, stages=args.stages)}
        args.profile_out.parent.mkdir(parents=True, exist_ok=True)
        args.profile_out.write_text(json.dumps(doc, indent=1))
        short = {**doc, "in_process": {k: v for k, v in doc["in_process"].items() if not k.startswith("cprofile")}}
        print(json.dumps(short, indent=1))  # the cProfile tables are in the file
        return 0
    work = Path(tempfile.mkdtemp(prefix="search_load_"))
    index = args.index or work / "index"
    built = None
    if not (index / "speech.lance").exists():
        built = build(index, args.rows, rng)
        (index.parent / "samples.json").write_text(json.dumps(built.pop("samples")))
    samples = json.loads((index.parent / "samples.json").read_text())
    env = {**os.environ, "PRISM_DATA_DIR": str(work / "data"), "PRISM_INDEX_URI": str(index), "PYTHONUNBUFFERED": "1"}
    env.pop("PRISM_API_KEYS", None)
    from prism_assets_tests.support.serve import start_serve

    load_start = round(os.getloadavg()[0], 2)  # the machine is shared: a busy start explains a slow run
    server, url = start_serve(env, args.port, work / "serve.log", workers=args.workers)
    try:
        qs = queries(samples, rng)
        warm = client_load(url, qs[: len(qs) // 4], 2, 10)  # the load's queries are others: nothing it sends was seen before
        from benchmarks.search_cpu import _group_cpu_s

        s0, c0 = _group_cpu_s(server.pid), time.process_time()
        load = client_load(url, qs[len(qs) // 4:], args.clients, args.seconds)
        n = max(1, load["requests"] + load["errors"])  # where the two cores went: the server's processes, this client
        load["cpu_ms_per_request"] = {"server": round((_group_cpu_s(server.pid) - s0) / n * 1000, 2),
                                      "client": round((time.process_time() - c0) / n * 1000, 2)}
        load["server_pss_mb"] = _group_pss_mb(server.pid)  # after the load: the workers' memory, resident copies included
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    doc = {"benchmark": "search_load", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0], "host": host_speed()},
           "index": built, "server": {"workers": args.workers, "query_encoder": "int8" if os.environ.get("PRISM_TEXT_QUERY_INT8", "").strip() in ("1", "true", "yes", "on") else "float32"},
           "load_average_start_end": [load_start, round(os.getloadavg()[0], 2)], "warmup": warm, "load": load,
           "goal": {"p95_ms": 150, "errors": 0, "met": load["p95_ms"] <= 150 and load["errors"] == 0},
           "note": "server and clients share the machine's 2 cores; the clients are one process with 16 threads in a closed loop"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():  # the earlier runs stay in the file, newest first, each with what it measured
        old = json.loads(args.out.read_text())
        earlier = old.pop("earlier_runs", [])
        doc["index"] = doc["index"] or old.get("index")  # a run on the index built by an earlier one keeps its build figures
        doc["earlier_runs"] = [{k: old.get(k) for k in ("when", "server", "engine", "warmup", "load", "note") if k in old}] + earlier
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps({"load": load, "goal": doc["goal"]}, indent=1))
    if args.index is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
