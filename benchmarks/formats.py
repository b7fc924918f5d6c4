"""Real delivery formats through `prism process` + `prism export`, one row per case against its exact truth.

    PYTHONPATH=. .venv/bin/python -m benchmarks.formats [--only NAME ...] [--quick] [--keep DIR] [--out FILE]

Cases (media by benchmarks/formats_media.py, i.e. the test suite's own generators): sidecar subtitle and
caption files beside one 10 s video (SRT, WebVTT, ASS, TTML/IMSC as .ttml, .dfxp (forced) and .xml, SCC,
EBU-STL, a forced and an SDH SRT, a truncated SCC and a garbage TTML); CEA-608 captions carried as A/53
SEI in H.264 and as a MOV c608 track; CEA-708 service 1 beside CEA-608 CC1 in H.264 SEI; audio description (by disposition, by content alone); 5.1 (clean,
a silent surround, dialogue swapped out of the centre); dubs from a PAL (25/24) and a 23.976 -> 24
master; HDR10 PQ, HDR10 without mastering metadata, HLG, interlaced 25i, 3:2 telecined 29.97i.

A delivery is one video (cases that share one share its `prism process` time: `shared_by`); each is
processed by the CLI as a user does (its own folder, one data dir and instance for the run) and exported;
the rows are read from the export (title.json, subtitles.json + subtitles/*.parquet, localization.json,
audio.json, qc.json). `--only` takes case or delivery names and merges its rows into the existing
results file; `--quick` runs the sidecar, H.264-608 and HDR10-without-metadata deliveries only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.formats_media import DELIVERIES

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "formats.json"
QUICK = ("sidecars", "cea608-h264", "hdr10-no-metadata")
GOAL_RATIO_PCT, GOAL_OFFSET_MS = 0.05, 40.0
KIND = {"sidecars": "sidecar format", "cea608-h264": "embedded captions", "cea708-h264": "embedded captions", "cea608-mov": "embedded captions",
        "audio-description": "audio track kind", "surround": "audio channels", "dubs": "dub conversion"}


def one_line(s) -> str | None:
    return None if s is None else str(s).strip().splitlines()[0][:300] if str(s).strip() else ""


def prism(env: dict, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / ".venv" / "bin" / "prism"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_export(dest: Path) -> dict:
    """The export's JSON documents and the cues of every subtitle label (subtitles/<label>.parquet)."""
    import pandas as pd

    doc = {n: json.loads((dest / f"{n}.json").read_text()) for n in ("title", "subtitles", "localization", "audio", "qc") if (dest / f"{n}.json").exists()}
    doc["cues"] = {p.stem: pd.read_parquet(p) for p in sorted((dest / "subtitles").glob("*.parquet"))} if (dest / "subtitles").is_dir() else {}
    return doc


def events_of(doc: dict) -> list[dict]:
    return [e for e in doc.get("qc", {}).get("events", []) if e.get("severity") in ("warn", "fail", "info")]


# --------------------------------------------------------------------------------------------- judging


def judge(checks: list[tuple[str, bool]]) -> tuple[bool, list[str]]:
    """(all passed, names of the failed checks)."""
    failed = [name for name, ok in checks if not ok]
    return not failed, failed


def cue_errors(truth: list, got: list[tuple[float, float, str]]) -> dict:
    """Per-cue timing errors (ms) in order, and whether the texts match (whitespace-normalized)."""
    norm = lambda s: " ".join(str(s).split())  # noqa: E731
    pairs = list(zip(truth, got))
    starts = [abs(g[0] - t[0]) * 1000 for t, g in pairs]
    ends = [abs(g[1] - t[1]) * 1000 for t, g in pairs]
    return {"first_start_error_ms": round(starts[0], 1) if starts else None, "max_time_error_ms": round(max(starts + ends), 1) if pairs else None,
            "texts_match": len(truth) == len(got) and all(norm(t[2]) == norm(g[2]) for t, g in pairs)}


def subtitle_track(doc: dict, truth: dict) -> dict | None:
    tracks = doc.get("localization", {}).get("subtitle_tracks") or doc.get("subtitles", {}).get("tracks") or []
    if truth.get("file"):
        return next((t for t in tracks if t.get("file") == truth["file"]), None)
    return next((t for t in tracks if t.get("source") == truth["source"] and t.get("codec") == truth.get("codec", "eia_608")), None)


def score_subtitle(doc: dict, truth: dict) -> dict:
    t = subtitle_track(doc, truth)
    if t is None:
        return {"read": None, "pass": False, "failed": ["track listed"], "error": "no such track in localization.json"}
    qc_kinds = sorted({f"{e['kind']}:{e['severity']}" for e in doc.get("localization", {}).get("events", [])
                       if (e.get("metrics") or {}).get("subtitle_track") == t["track"]})
    if truth.get("bad"):
        err = t.get("error")
        ok, failed = judge([("track listed with an error", bool(err)), ("error is one line", bool(err) and "\n" not in err),
                            ("no cues", not t.get("cues")), ("QC event subtitle_unreadable", "subtitle_unreadable:warn" in qc_kinds)])
        return {"read": {"format": t.get("format"), "parsed": t.get("parsed"), "cues": t.get("cues"), "track_qc_events": qc_kinds}, "pass": ok,
                "failed": failed, "error": err, "rule": "the title processes; the file is a track with a one-line error, no cues and a subtitle_unreadable warn"}
    frame = doc["cues"].get(t.get("label") or "")
    rows = frame[frame["track"] == t["track"]] if frame is not None and "track" in frame else frame
    got = [] if rows is None else sorted((float(r.start_s), float(r.end_s), r.text) for r in rows.itertuples())
    regions = 0 if rows is None else int(rows["region"].notna().sum())
    errs = cue_errors(truth["cues"], got)
    read = {"format": t.get("format"), "kind": t.get("kind"), "cues": t.get("cues"), "cues_in_parquet": len(got), "language": t.get("language"),
            "forced": t.get("forced"), "sdh": t.get("sdh"), "channel": t.get("channel"), "regions_kept": regions, **errs,
            "track_qc_events": qc_kinds}
    tol = truth["tol_ms"]
    ok, failed = judge([("cue count", t.get("cues") == len(truth["cues"]) == len(got)), ("texts", errs["texts_match"]),
                        (f"times within {tol} ms", errs["max_time_error_ms"] is not None and errs["max_time_error_ms"] <= tol + 0.5),
                        ("language", t.get("language") == truth["language"]), ("forced", bool(t.get("forced")) == truth["forced"]),
                        ("sdh", bool(t.get("sdh")) == truth["sdh"]), ("regions kept", regions >= truth["regions"]), ("format", t.get("format") == truth["format"])])
    return {"read": read, "pass": ok, "failed": failed, "error": t.get("error"),
            "rule": f"cue count and texts equal, every start/end within {tol} ms, language/forced/SDH/format as written, >= {truth['regions']} regions kept"}


def audio_track(doc: dict, k: int) -> dict:
    return next((a for a in doc.get("localization", {}).get("audio_tracks", []) if a.get("track") == k), {})


def score_role(doc: dict, truth: dict) -> dict:
    a = audio_track(doc, truth["track"])
    read = {"role": a.get("role"), "language": a.get("language"), "role_evidence": a.get("role_evidence")}
    ok, failed = judge([("role", a.get("role") == truth["role"]), ("language", a.get("language") == truth["language"])])
    return {"read": read, "pass": ok, "failed": failed, "rule": f"role {truth['role']}, language {truth['language']}"}


def score_dub(doc: dict, truth: dict) -> dict:
    a = audio_track(doc, truth["track"])
    s = a.get("sync") or {}
    ratio, off = s.get("speed_ratio"), s.get("offset_ms")
    rerr = None if ratio is None else round(abs(ratio / truth["speed_ratio"] - 1) * 100, 5)
    oerr = None if off is None else round(abs(off - truth["offset_ms"]), 1)
    read = {"role": a.get("role"), "language": a.get("language"), "speed_ratio": ratio, "speed_ratio_truth": truth["speed_ratio"], "ratio_error_pct": rerr,
            "conversion": s.get("conversion"), "conversion_truth": truth["conversion"], "offset_ms": off, "offset_truth_ms": truth["offset_ms"],
            "offset_error_ms": oerr}
    ok, failed = judge([("role", a.get("role") == "dub"), ("language", a.get("language") == truth["language"]),
                        ("conversion", s.get("conversion") == truth["conversion"]), (f"ratio within {GOAL_RATIO_PCT} %", rerr is not None and rerr <= GOAL_RATIO_PCT),
                        (f"offset within {GOAL_OFFSET_MS:g} ms", oerr is not None and oerr <= GOAL_OFFSET_MS)])
    return {"read": read, "pass": ok, "failed": failed,
            "rule": f"dub, language, conversion named, speed ratio within {GOAL_RATIO_PCT} %, offset within {GOAL_OFFSET_MS:g} ms (after the speed)"}


def score_channels(doc: dict, truth: dict) -> dict:
    k = truth["track"]
    t = next((x for x in doc.get("audio", {}).get("tracks", []) if x.get("track") == k), {})
    evs = sorted((e["kind"], (e.get("metrics") or {}).get("channel") or (e.get("metrics") or {}).get("pattern"))
                 for e in doc.get("audio", {}).get("events", []) if e.get("track") == k)
    read = {"channels": t.get("channels"), "channel_layout": t.get("channel_layout"), "dialogue_source": t.get("dialogue_source"),
            "integrated_lufs": t.get("integrated_lufs"), "channel_events": [list(e) for e in evs]}
    checks = [("channels", t.get("channels") == truth["channels"]), ("layout", t.get("channel_layout") == truth["layout"]),
              ("channel events", evs == sorted(truth["events"]))]
    if "dialogue_source" in truth:
        checks.append(("dialogue source", t.get("dialogue_source") == truth["dialogue_source"]))
    ok, failed = judge(checks)
    return {"read": read, "pass": ok, "failed": failed,
            "rule": f"{truth['channels']} channels, layout {truth['layout']}, channel events exactly {truth['events'] or 'none'}"
                    + (f", dialogue source {truth['dialogue_source']}" if "dialogue_source" in truth else "")}


def score_picture(doc: dict, truth: dict) -> dict:
    title = doc.get("title", {})
    hdr, scan = title.get("hdr") or {}, title.get("scan") or {}
    evs = {e["kind"]: e["severity"] for e in events_of(doc)}
    read = {"hdr": {k: hdr.get(k) for k in ("format", "transfer", "primaries", "bit_depth", "mastering_display", "max_cll", "max_fall", "missing_metadata")},
            "scan": {k: scan.get(k) for k in ("type", "field_order", "coded_interlaced", "frames_sampled")}, "flags": title.get("flags")}
    checks = [(f"hdr.{k}", hdr.get(k) == v) for k, v in (truth.get("hdr") or {}).items()]
    checks += [(f"scan.{k}", scan.get(k) == v) for k, v in (truth.get("scan") or {}).items()]
    checks += [(f"QC event {k}" + (f" ({sev})" if sev else ""), k in evs and (sev is None or evs[k] == sev)) for k, sev in truth["events"].items()]
    checks += [(f"no QC event {k}", k not in evs) for k in truth.get("no_events", [])]
    ok, failed = judge(checks)
    return {"read": read, "pass": ok, "failed": failed,
            "rule": "title.json hdr/scan fields equal to the encode's; QC events " + (", ".join(truth["events"]) or "none of " + ", ".join(truth.get("no_events", [])))}


def score(case: str, delivery: str, truth: dict, doc: dict) -> dict:
    if delivery in ("sidecars", "cea608-h264", "cea708-h264", "cea608-mov"):
        return score_subtitle(doc, truth)
    if delivery == "audio-description":
        return score_role(doc, truth)
    if delivery == "dubs":
        return score_dub(doc, truth)
    if delivery == "surround":
        return score_channels(doc, truth)
    return score_picture(doc, truth)


def describe(case: str, truth: dict) -> str:
    if truth.get("file"):
        return f"sidecar {truth['file']}" + (" (bad file)" if truth.get("bad") else f": {len(truth['cues'])} cues")
    if truth.get("source"):
        return f"{truth['format']}: {len(truth['cues'])} cues"
    if "speed_ratio" in truth:
        return f"track {truth['track']}: {truth['language']} dub, speed x{truth['speed_ratio']:.6f} ({truth['conversion']}), {truth['offset_ms']:+g} ms"
    if "role" in truth:
        return f"track {truth['track']}: {truth['role']} ({truth['language']})"
    if "layout" in truth:
        return f"track {truth['track']}: {truth['layout']} {truth['events'] or 'clean'}"
    return json.dumps({k: truth[k] for k in ("hdr", "scan") if k in truth})


# --------------------------------------------------------------------------------------------- running


def run_delivery(name: str, cases: list[str], work: Path, env: dict) -> list[dict]:
    builder, all_cases = DELIVERIES[name]
    folder = work / "media" / name
    folder.mkdir(parents=True, exist_ok=True)
    g0 = time.monotonic()
    video, truths = builder(folder)
    gen_s = time.monotonic() - g0
    tid = f"fmt-{name}".replace(".", "_")
    c0, w0 = children_cpu(), time.monotonic()
    p = prism(env, "process", str(video), "--title-id", tid)
    dest = work / "export" / tid
    shutil.rmtree(dest, ignore_errors=True)
    e = prism(env, "export", tid, "--to", str(dest)) if p.returncode == 0 else None
    wall, cpu = time.monotonic() - w0, children_cpu() - c0
    run_error = None
    if p.returncode != 0:
        run_error = one_line(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"prism process exited {p.returncode}")
    elif e.returncode != 0:
        run_error = one_line(e.stderr.strip().splitlines()[-1] if e.stderr.strip() else "prism export failed")
    doc = read_export(dest) if run_error is None else {}
    events = sorted({f"{x['kind']}:{x['severity']}" for x in events_of(doc)})
    rows = []
    for case in cases:
        truth = truths[case]
        r = score(case, name, truth, doc) if run_error is None else {"read": None, "pass": False, "failed": ["prism process/export"]}
        rows.append({"case": case, "kind": KIND.get(name, "picture"), "delivery": f"{name} ({video.name})", "input": describe(case, truth),
                     "read": r.get("read"), "pass": r["pass"], "failed_checks": r["failed"], "rule": r.get("rule"),
                     "error": run_error or one_line(r.get("error")), "title_qc_events": events,
                     "seconds": {"process_and_export_wall": round(wall, 1), "process_and_export_cpu": round(cpu, 1), "shared_by": len(all_cases),
                                 "generate_wall": round(gen_s, 1)}})
        print(json.dumps({k: rows[-1][k] for k in ("case", "pass", "failed_checks", "error")}), flush=True)
    return rows


def selected(only: list[str] | None, quick: bool) -> dict[str, list[str]]:
    """delivery -> the cases to run of it."""
    out = {}
    for name, (_, cases) in DELIVERIES.items():
        if quick and name not in QUICK:
            continue
        want = cases if not only or name in only else [c for c in cases if c in only]
        if want:
            out[name] = want
    unknown = set(only or []) - set(DELIVERIES) - {c for _, cs in DELIVERIES.values() for c in cs}
    if unknown:
        raise SystemExit(f"unknown case or delivery: {', '.join(sorted(unknown))}")
    return out


def merged(previous: dict | None, rows: list[dict]) -> list[dict]:
    order = [c for _, cs in DELIVERIES.values() for c in cs]
    new = {r["case"] for r in rows}
    kept = [r for r in (previous or {}).get("cases", []) if r["case"] not in new]
    return sorted(kept + rows, key=lambda r: order.index(r["case"]) if r["case"] in order else len(order))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", nargs="*", help="cases or deliveries to run (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"only the deliveries {', '.join(QUICK)}")
    ap.add_argument("--keep", type=Path, help="keep the media, data dir and exports here")
    args = ap.parse_args(argv)
    plan = selected(args.only, args.quick)
    work = args.keep or Path(tempfile.mkdtemp(prefix="prism-formats-"))
    env = {**os.environ, "PRISM_DATA_DIR": str(work / "data"), "DAGSTER_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    (work / "home").mkdir(parents=True, exist_ok=True)
    t0, c0 = time.monotonic(), children_cpu()
    rows = []
    try:
        for name, cases in plan.items():
            rows += run_delivery(name, cases, work, env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    partial = bool(args.only or args.quick)
    previous = json.loads(args.out.read_text()) if partial and args.out.exists() else None
    cases = merged(previous, rows)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    run = {"generated_at": now, "machine": machine, "cases": [r["case"] for r in rows], "wall_s": round(time.monotonic() - t0, 1),
           "children_cpu_s": round(children_cpu() - c0, 1)}
    runs = [r for r in (previous or {}).get("runs", []) if set(r["cases"]) - set(run["cases"])] + [run]
    doc = {"generated_at": now, "machine": machine,
           "note": ("Times are from a 2-core machine shared with other users at the time (loadavg in `runs`): wall seconds are noisy, "
                    "CPU seconds (user+sys of the prism processes) are the better measure. A delivery's `prism process` + `prism export` "
                    "time is shared by its cases (`shared_by`)."),
           "method": "media from the test suite's generators with exact truth (benchmarks/formats_media.py), `prism process` + `prism export` "
                     "per delivery, the export read back and judged per case by the rule in its row",
           "summary": {"cases": len(cases), "passed": sum(r["pass"] for r in cases), "failed": [r["case"] for r in cases if not r["pass"]]},
           "runs": runs, "cases": cases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(doc["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
