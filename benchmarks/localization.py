"""Localization signals on generated titles with exact truth, through `prism process` + `prism export`.

    PYTHONPATH=. .venv/bin/python -m benchmarks.localization [--out FILE] [--only NAME ...]   (~3 min a title on 2 cores)

Titles (prism_assets_tests/support/localization_media.py): speech in English, German, French and
Spanish by espeak-ng over one shared music-and-effects bed; dubs with the bed offset by known
amounts (one drifting; three made from frame-rate-converted masters, sped up by ffmpeg: loc-g
24 -> 25 fps and loc-h 23.976 -> 25 fps PAL speed-ups by `asetrate`, loc-i a 23.976 -> 24 pull-up by
`atempo`), music-and-effects tracks, subtitle files and streams with seeded errors
(an offset, overlaps, fast cues, a file in the wrong language, another title's subtitles), MP4
(mov_text) and MKV (SubRip), and one title without any seeded error. Each title is processed by the
CLI as a user would (its own data dir and instance) and its export read back.

Recorded (`benchmarks/results/localization.json`): per dub, the offset error against the truth
(goal <= 40 ms; after the speed correction) and the drift; its speed ratio error (goal <= 0.05 %)
and conversion name (the truth's total ratio, conversion and stretch together, named by
speed.classify); role and language accuracy per audio track (music-only tracks must
have a null language); subtitle QC precision and recall on the seeded errors (an event of the
seeded kind on the seeded track is a hit; any other warn/fail subtitle or dub event is false), and
false events per title. `--only` merges the titles it runs into the existing results file (the
others are kept as they were, `runs` says which run produced which titles) and recomputes the
summary over all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from prism_assets.localization.speed import FILM, classify
from prism_assets_tests.support.localization_media import AudioSpec, SubSpec, make_title

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "localization.json"
GOAL_OFFSET_MS = 40.0
GOAL_RATIO_PCT = 0.05
KIND_OF_SEED = {"cue_offset": "subtitle_cue_offset", "cue_drift": "subtitle_cue_drift", "wrong_language": "subtitle_wrong_language", "text_mismatch": "subtitle_text_mismatch",
                "overlap": "subtitle_overlap", "reading_speed": "subtitle_reading_speed", "out_of_sync": "dub_out_of_sync"}

TITLES = {
    "loc-a": dict(container="mp4", seed=0, audio=[AudioSpec("original", "en"), AudioSpec("dub", "de", offset_ms=180), AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("en", "en", offset_ms=800), SubSpec("es", "en"), SubSpec("de", "de", timed_on=1, where="stream")]),
    "loc-b": dict(container="mkv", seed=1, audio=[AudioSpec("original", "en"), AudioSpec("dub", "fr", offset_ms=-240, stretch=1.5e-3),
                                                  AudioSpec("dub", "es", offset_ms=25)],
                  subs=[SubSpec("en", "en", errors=("overlap", "fast"), where="stream"), SubSpec("fr", "fr", timed_on=1, fmt="vtt"),
                        SubSpec("es", "es", timed_on=2, fmt="ass")]),
    "loc-c": dict(container="mkv", seed=2, audio=[AudioSpec("original", "de"), AudioSpec("dub", "en", offset_ms=420), AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("de", "de"), SubSpec("en", "en", timed_on=1, other_title=True)]),
    "loc-e": dict(container="mkv", seed=4, dur=75.0,
                  audio=[AudioSpec("original", "fr"), AudioSpec("dub", "en", offset_ms=95, stretch=-1e-3), AudioSpec("music_and_effects", None, tag="")],
                  subs=[SubSpec("fr", "fr", stretch=23.976 / 25 - 1), SubSpec("en", "en", timed_on=1, errors=("fast",), where="stream"),
                        SubSpec("de", "fr", fmt="ass")]),
    "loc-f": dict(container="mp4", seed=6, audio=[AudioSpec("original", "it", voice="it+f3", speed=165), AudioSpec("dub", "pt", offset_ms=2500, voice="pt-br+m3"),
                                                  AudioSpec("dub", "en", offset_ms=-3800, voice="en-gb+f2", speed=135), AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("it", "it"), SubSpec("pt", "pt", timed_on=1, offset_ms=-400, fmt="vtt"),
                        SubSpec("en", "en", timed_on=2, errors=("fast", "overlap"))]),
    "loc-d": dict(container="mp4", seed=3, audio=[AudioSpec("original", "es"), AudioSpec("dub", "en", offset_ms=-30), AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("es", "es"), SubSpec("en", "en", timed_on=1)]),
    # dubs from frame-rate-converted masters: the whole dub 25/24, 25/23.976 and 24/23.976 times as fast
    "loc-g": dict(container="mkv", seed=7, audio=[AudioSpec("original", "en"), AudioSpec("dub", "de", offset_ms=120, speed_ratio=24 / 25),
                                                  AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("en", "en"), SubSpec("de", "de", timed_on=1)]),
    "loc-h": dict(container="mp4", seed=8, audio=[AudioSpec("original", "fr"), AudioSpec("dub", "en", offset_ms=-200, speed_ratio=FILM / 25),
                                                  AudioSpec("dub", "es", offset_ms=30)],
                  subs=[SubSpec("fr", "fr"), SubSpec("en", "en", timed_on=1, where="stream")]),
    "loc-i": dict(container="mkv", seed=9, audio=[AudioSpec("original", "es"), AudioSpec("dub", "it", offset_ms=20, speed_ratio=FILM / 24, speed_filter="atempo"),
                                                  AudioSpec("music_and_effects", None)],
                  subs=[SubSpec("es", "es"), SubSpec("it", "it", timed_on=1, fmt="vtt")]),
}


def prism(env: dict, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / ".venv" / "bin" / "prism"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def seeded_errors(truth) -> list[tuple[str, str]]:
    """(kind, where) of every seeded error: subtitle errors by file/stream, dub offsets over the limits."""
    out = [(KIND_OF_SEED[s["kind"]], sub["where"]) for sub in truth.subtitles for s in sub["seeded"]]
    for a in truth.audio:
        if a["offset_ms"] is None:
            continue
        end = a["offset_ms"] + (a["drift_ms_per_hour"] or 0) * truth.duration_s / 3600 + ((a.get("speed_ratio") or 1.0) - 1) * truth.duration_s * 1000
        if min(a["offset_ms"], end) < -40 or max(a["offset_ms"], end) > 60:
            out.append(("dub_out_of_sync", f"track {a['track']}"))
    return out


def where_of(event: dict, subtitle_tracks: dict) -> str:
    if event["kind"].startswith("dub_"):
        return f"track {event.get('track')}"
    t = subtitle_tracks.get((event.get("metrics") or {}).get("subtitle_track"))
    if t is None:
        return "?"
    return t["file"] if t["source"] == "sidecar" else f"stream {t['n_stream']}"


def score(name: str, truth, loc: dict, seconds: float) -> dict:
    audio = []
    for want, got in zip(truth.audio, loc["audio_tracks"]):
        row = {"track": want["track"], "role": want["role"], "role_found": got["role"], "language": want["language"], "language_found": got["language"]}
        if want["offset_ms"] is not None and want["role"] != "music_and_effects" or (want["role"] == "music_and_effects" and got.get("sync")):
            s = got.get("sync") or {}
            row.update(offset_ms=want["offset_ms"], offset_found_ms=s.get("offset_ms"),
                       offset_error_ms=None if s.get("offset_ms") is None or want["offset_ms"] is None else round(abs(s["offset_ms"] - want["offset_ms"]), 1),
                       drift_ms_per_hour=want["drift_ms_per_hour"], drift_found_ms_per_hour=s.get("drift_ms_per_hour"), confidence=s.get("confidence"))
            row.update(speed_row(want, s))
        audio.append(row)
    streams = [t for t in loc["subtitle_tracks"] if t["source"] == "stream"]
    subs = {t["track"]: {**t, "n_stream": streams.index(t) if t in streams else None} for t in loc["subtitle_tracks"]}
    seeded = seeded_errors(truth)
    events = [e for e in loc["events"] if e["severity"] in ("warn", "fail")]
    found = {(e["kind"], where_of(e, subs)) for e in events}
    hits = [s for s in seeded if s in found]
    false = sorted({f for f in found if f not in seeded})
    offsets = {}
    for sub in truth.subtitles:
        t = next((x for x in loc["subtitle_tracks"] if (x["file"] or f"stream {subs[x['track']]['n_stream']}") == sub["where"]), None)
        tm = ((t or {}).get("qc") or {}).get("timing") or {}
        want = next((s["offset_ms"] for s in sub["seeded"] if s["kind"] == "cue_offset"), 0.0)
        drift = next((s["drift_ms_per_hour"] for s in sub["seeded"] if s["kind"] == "cue_drift"), None)
        got = tm.get("line_offset_at_start_ms") if drift is not None else tm.get("offset_ms")  # drifting: the line's offset at 0 s
        offsets[sub["where"]] = {"offset_ms": want, "found_ms": got, "error_ms": None if got is None else round(abs(got - want), 1)}
        if drift is not None:
            offsets[sub["where"]].update(drift_ms_per_hour=round(drift, 1), drift_found_ms_per_hour=tm.get("line_drift_ms_per_hour"))
    return {"title": name, "seconds": round(seconds, 1), "audio": audio, "subtitle_offsets": offsets, "seeded": sorted(seeded),
            "found": sorted(found), "hits": sorted(hits), "missed": sorted(set(seeded) - set(hits)), "false_events": false}


def speed_row(want: dict, s: dict) -> dict:
    """The speed of one aligned track against the truth: its total ratio (conversion and stretch),
    the conversion that ratio is, and the total drift (ms an hour against the original's timeline)."""
    ratio = (want.get("speed_ratio") or 1.0) * (1 + (want["drift_ms_per_hour"] or 0.0) / 3.6e6)
    found = s.get("speed_ratio")
    total = None
    if s.get("drift_ms_per_hour") is not None:
        total = round(s["drift_ms_per_hour"] + ((s.get("nominal_ratio") or 1.0) - 1) * 3.6e6, 1)
    return {"speed_ratio": round(ratio, 7), "speed_ratio_found": found,
            "ratio_error_pct": None if found is None else round(abs(found / ratio - 1) * 100, 5),
            "conversion": classify(ratio)[0], "conversion_found": s.get("conversion"),
            "total_drift_ms_per_hour": round((ratio - 1) * 3.6e6, 1), "total_drift_found_ms_per_hour": total}


def summarize(titles: list[dict]) -> dict:
    rows = [a for t in titles for a in t["audio"]]
    errs = [a["offset_error_ms"] for a in rows if a.get("offset_error_ms") is not None]
    no_offset = [a for a in rows if "offset_ms" in a and a["offset_ms"] is not None and a.get("offset_found_ms") is None]
    seeded = sum(len(t["seeded"]) for t in titles)
    hits = sum(len(t["hits"]) for t in titles)
    false = sum(len(t["false_events"]) for t in titles)
    sub_errs = [o["error_ms"] for t in titles for o in t["subtitle_offsets"].values() if o["error_ms"] is not None]
    return {
        "dub_offset_error_ms": {"max": max(errs) if errs else None, "mean": round(sum(errs) / len(errs), 1) if errs else None, "n": len(errs),
                                "within_goal": sum(1 for e in errs if e <= GOAL_OFFSET_MS), "goal": GOAL_OFFSET_MS, "not_measured": len(no_offset)},
        "speed": speed_summary(rows),
        "role_accuracy": round(sum(a["role"] == a["role_found"] for a in rows) / len(rows), 3),
        "language_accuracy": round(sum(a["language"] == a["language_found"] for a in rows) / len(rows), 3),
        "music_only_tracks_with_null_language": f"{sum(1 for a in rows if a['language'] is None and a['language_found'] is None)}/"
                                                f"{sum(1 for a in rows if a['language'] is None)}",
        "subtitle_offset_error_ms_max": max(sub_errs) if sub_errs else None,
        "qc_recall": round(hits / seeded, 3) if seeded else None,
        "qc_precision": round(hits / (hits + false), 3) if hits + false else None,
        "false_events_per_title": {t["title"]: len(t["false_events"]) for t in titles},
    }


def speed_summary(rows: list[dict]) -> dict:
    """Ratio and conversion accuracy over every aligned track with a speed (results of an older run
    have none), and the offset error of the tracks at another speed than the original's."""
    timed = [a for a in rows if "speed_ratio" in a]
    errs = [a["ratio_error_pct"] for a in timed if a.get("ratio_error_pct") is not None]
    converted = [a for a in timed if a["conversion"] != "none"]
    off = [a["offset_error_ms"] for a in converted if a.get("offset_error_ms") is not None]
    return {"ratio_error_pct": {"max": max(errs) if errs else None, "mean": round(sum(errs) / len(errs), 5) if errs else None, "n": len(errs),
                                "within_goal": sum(1 for e in errs if e <= GOAL_RATIO_PCT), "goal": GOAL_RATIO_PCT},
            "conversion_accuracy": f"{sum(1 for a in timed if a['conversion'] == a['conversion_found'])}/{len(timed)}",
            "converted_tracks": [f"{a['conversion']} -> {a['conversion_found']}" for a in converted],
            "converted_offset_error_ms_max": max(off) if off else None, "converted_not_measured": sum(1 for a in converted if a.get("offset_found_ms") is None)}


def merged(previous: dict | None, results: list[dict], now: str, machine: dict) -> tuple[list[dict], list[dict]]:
    """(titles, runs): the titles of this run in place of the same titles of `previous`, the others kept,
    in TITLES order; `runs` lists which run produced which titles."""
    runs = []
    kept = []
    if previous:
        runs = previous.get("runs") or [{"generated_at": previous.get("generated_at"), "machine": previous.get("machine"),
                                         "titles": [t["title"] for t in previous.get("titles", [])]}]
        new = {r["title"] for r in results}
        kept = [t for t in previous.get("titles", []) if t["title"] not in new]
        for r in runs:
            r["titles"] = [t for t in r["titles"] if t not in new]
        runs = [r for r in runs if r["titles"]]
    runs.append({"generated_at": now, "machine": machine, "titles": [r["title"] for r in results]})
    order = {name: i for i, name in enumerate(TITLES)}
    return sorted(kept + results, key=lambda t: order.get(t["title"], len(order))), runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", nargs="*", help="titles to run (default: all)")
    ap.add_argument("--keep", type=Path, help="keep the media, data dir and exports here")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="prism-loc-"))
    results = []
    try:
        for name, spec in TITLES.items():
            if args.only and name not in args.only:
                continue
            t0 = time.monotonic()
            path, truth = make_title(work / "media" / name, name, spec["audio"], spec["subs"], container=spec["container"], seed=spec["seed"],
                                     dur=spec.get("dur", 48.0))
            env = {**os.environ, "PRISM_DATA_DIR": str(work / "data"), "DAGSTER_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
            (work / "home").mkdir(parents=True, exist_ok=True)
            p = prism(env, "process", str(path), "--title-id", name)
            if p.returncode != 0:
                print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"prism process {name} failed ({p.returncode})")
            dest = work / "export" / name
            shutil.rmtree(dest, ignore_errors=True)
            e = prism(env, "export", name, "--to", str(dest))
            if e.returncode != 0:
                raise SystemExit(f"prism export {name} failed: {e.stderr.strip()[-500:]}")
            loc = json.loads((dest / "localization.json").read_text())
            row = score(name, truth, loc, time.monotonic() - t0)
            print(json.dumps({k: row[k] for k in ("title", "seconds", "missed", "false_events")}), flush=True)
            results.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    previous = json.loads(args.out.read_text()) if args.only and args.out.exists() else None
    titles, runs = merged(previous, results, now, machine)
    doc = {"generated_at": now, "machine": machine,
           "method": "generated titles (espeak-ng speech over a shared music bed, seeded dub offsets, speeds and subtitle errors), "
                     "prism process + prism export per title, localization.json against the truth",
           "runs": runs, "summary": summarize(titles), "titles": titles}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
