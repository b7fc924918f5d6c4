"""Structure signals on generated titles with exact truth, through `prism process` + `prism export`.

    PYTHONPATH=. .venv/bin/python -m benchmarks.structure [--out FILE] [--only text scenes seasons] [--keep DIR]

Groups (each title processed by the CLI as a user would, in one data dir and instance, then exported):

- text (prism_assets_tests/support/text_media.py): a slate card, burned-in subtitle lines spoken by
  espeak-ng (one Korean or Japanese), opening name cards, rolling end credits over black with music;
  one title without credits. Sidecar: provider `clean-master` (burned-in subtitles are a QC finding)
  and the expected languages. Recorded: slate found and read, burned-in lines read (fuzzy >= 0.8)
  and flagged, CJK lines read with their language, end-credits start error (goal <= 2 s), opening
  credits overlap, none found on the title without, posters never from credits or slates, the QC
  event for the burned-in subtitles.
- scenes (support/scene_media.py): locations with 2-3 camera angles, shots alternating angles, scene
  changes by cut, black or fade, sound changing with the scene; one set of look-alike neighbouring
  scenes (hue_step 12). Recorded: scene-boundary precision/recall/F1 within one (detected) shot.
- seasons (support/season_media.py): episodes sharing an intro at varying positions after cold opens,
  recaps of the previous episode; processed one by one (each `prism process` updates the season, as
  season_sensor does under the daemon), exported with season.json. Recorded: intro start/end within
  1 s per episode (goal >= 90 %), recaps found and attributed, false intros/recaps.
"""

from __future__ import annotations

import argparse
import difflib
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

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "structure.json"
GOAL_CREDITS_S = 2.0
GOAL_INTRO_S = 1.0

TEXT_TITLES = {"text-a": dict(seed=0, credits=True, cjk="ko"), "text-b": dict(seed=1, credits=False, cjk="ja"),
               "text-c": dict(seed=2, credits=True, cjk="ja")}
SCENE_TITLES = {"scenes-1": dict(seed=1), "scenes-2": dict(seed=2), "scenes-3": dict(seed=3, n_scenes=6),
                "scenes-alike": dict(seed=4, hue_step=12.0)}
SEASONS = {"season-a": dict(n_episodes=4, seed=0), "season-b": dict(n_episodes=3, seed=1)}


def prism(env: dict, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / ".venv" / "bin" / "prism"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def norm(s: str) -> str:
    return " ".join(str(s).casefold().split())


def ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, norm(a), norm(b)).ratio()


def process_and_export(env: dict, work: Path, video: Path, title_id: str) -> tuple[Path, float]:
    t0 = time.monotonic()
    p = prism(env, "process", str(video), "--title-id", title_id)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"prism process {title_id} failed ({p.returncode})")
    seconds = time.monotonic() - t0
    dest = work / "export" / title_id
    shutil.rmtree(dest, ignore_errors=True)
    e = prism(env, "export", title_id, "--to", str(dest))
    if e.returncode != 0:
        raise SystemExit(f"prism export {title_id} failed: {e.stderr.strip()[-500:]}")
    return dest, seconds


def step_seconds(env: dict, title_id: str) -> dict:
    """Seconds per step of the title's latest run (from the instance's event log)."""
    code = ("import json,sys\nfrom dagster import DagsterInstance, DagsterEventType as T, RunsFilter\n"
            "i=DagsterInstance.get()\nr=i.get_run_records(RunsFilter(tags={'dagster/partition': sys.argv[1]}), limit=1)[0]\n"
            "s={};o={}\nfor e in i.all_logs(r.dagster_run.run_id, of_type={T.STEP_START, T.STEP_SUCCESS}):\n"
            "    k=e.step_key\n    if e.dagster_event.event_type==T.STEP_START: s[k]=e.timestamp\n    else: o[k]=round(e.timestamp-s[k],1)\n"
            "print(json.dumps(o))")
    p = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code, title_id], env=env, capture_output=True, text=True, timeout=120)
    return json.loads(p.stdout) if p.returncode == 0 else {}


# ---------------------------------------------------------------------------------------------- text


def score_text(name: str, truth: dict, dest: Path) -> dict:
    text = pd.read_parquet(dest / "text.parquet")
    st = json.loads((dest / "structure.json").read_text())
    qc = json.loads((dest / "qc.json").read_text())
    posters = pd.read_parquet(dest / "posters.parquet")
    lines = []
    for sub in truth["subtitles"]:
        near = text[(text["t_s"] >= sub["start_s"] - 0.5) & (text["t_s"] <= sub["end_s"] + 0.5)]
        best = max(((ratio(r.text, sub["text"]), r) for r in near.itertuples()), key=lambda x: x[0], default=(0.0, None))
        r = best[1]
        lines.append({"text": sub["text"], "language": sub.get("language"), "ratio": round(best[0], 2), "read": best[0] >= 0.8,
                      "flagged": bool(r is not None and best[0] >= 0.8 and r.burned_in_subtitle),
                      "language_found": (r.language if r is not None else None)})
    slate_truth = truth["slate"]
    slate_found = [s for s in st["slates"] if s["start_s"] < slate_truth["end_s"] + 1 and s["end_s"] > slate_truth["start_s"] - 1]
    slate_read = max((ratio(r.text, want) for want in slate_truth["lines"] for r in text[text["t_s"] <= slate_truth["end_s"] + 0.5].itertuples()),
                     default=0.0)
    end_t, end_f = truth.get("end_credits"), (st["credits"] or {}).get("end")
    open_t, open_f = truth.get("opening"), (st["credits"] or {}).get("opening")
    spans = [(c["start_s"], c["end_s"]) for c in (end_f, open_f) if c] + [(s["start_s"], s["end_s"]) for s in st["slates"]]
    bad_posters = [float(t) for t in posters["t_s"] if any(a <= t <= b for a, b in spans)]
    burned_events = [e for e in qc.get("events", []) if e["kind"] == "burned_in_subtitles"]
    return {
        "title": name, "credits_truth": bool(end_t),
        "slate": {"found": bool(slate_found), "best_read_ratio": round(slate_read, 2)},
        "burned_in_lines": lines,
        "end_credits": {"truth_start_s": end_t and end_t["start_s"], "found_start_s": end_f and end_f["start_s"],
                        "error_s": round(abs(end_f["start_s"] - end_t["start_s"]), 2) if end_t and end_f else None,
                        "false": bool(end_f and not end_t), "missed": bool(end_t and not end_f)},
        "opening_credits": {"truth": open_t and [open_t["start_s"], open_t["end_s"]], "found": open_f and [open_f["start_s"], open_f["end_s"]],
                            "false": bool(open_f and not open_t), "missed": bool(open_t and not open_f)},
        "next_episode_s": {"truth": truth.get("next_episode_s") if end_t else None, "found": st.get("next_episode_s")},
        "posters_in_credits_or_slate": bad_posters, "posters_with_text": int((posters["score_text_free"].fillna(1.0) < 1.0).sum()),
        "qc_burned_in_event": bool(burned_events), "ocr_engine": (st["producer"]["model"].get("ocr") or {}).get("version"),
        "ocr_languages": (st["producer"]["model"].get("ocr") or {}).get("languages"),
    }


def run_text(env: dict, work: Path, only: set | None) -> list[dict]:
    from prism_assets_tests.support.text_media import make_text_title

    rows = []
    for name, spec in TEXT_TITLES.items():
        if only and name not in only:
            continue
        folder = work / "media" / name
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"{name}.mp4"
        truth = make_text_title(video, spec["seed"], credits=spec["credits"], cjk=spec["cjk"])
        (folder / f"{name}.json").write_text(json.dumps({"title": name, "provider": "clean-master", "expected_languages": ["en", spec["cjk"]]}))
        dest, seconds = process_and_export(env, work, video, name)
        row = score_text(name, truth, dest)
        row["seconds"] = round(seconds, 1)
        row["step_seconds"] = step_seconds(env, name)
        print(json.dumps({k: row[k] for k in ("title", "slate", "end_credits", "seconds")}), flush=True)
        rows.append(row)
    return rows


def summarize_text(rows: list[dict]) -> dict:
    lines = [x for r in rows for x in r["burned_in_lines"]]
    cjk = [x for x in lines if x["language"] in ("ko", "ja")]
    errs = [r["end_credits"]["error_s"] for r in rows if r["end_credits"]["error_s"] is not None]
    return {
        "titles": len(rows),
        "slates_found": f"{sum(r['slate']['found'] for r in rows)}/{len(rows)}",
        "slate_read_ratio_min": min((r["slate"]["best_read_ratio"] for r in rows), default=None),
        "burned_in_lines_read": f"{sum(x['read'] for x in lines)}/{len(lines)}",
        "burned_in_lines_flagged": f"{sum(x['flagged'] for x in lines)}/{len(lines)}",
        "cjk_lines_read_with_language": f"{sum(x['read'] and x['language_found'] == x['language'] for x in cjk)}/{len(cjk)}",
        "end_credits_start_error_s_max": max(errs) if errs else None,
        "end_credits_within_goal": f"{sum(e <= GOAL_CREDITS_S for e in errs)}/{sum(r['credits_truth'] for r in rows)}",
        "false_credits": sum(r["end_credits"]["false"] or r["opening_credits"]["false"] for r in rows),
        "opening_credits_found": f"{sum(not r['opening_credits']['missed'] and r['opening_credits']['found'] is not None for r in rows)}/"
                                 f"{sum(r['opening_credits']['truth'] is not None for r in rows)}",
        "posters_in_credits_or_slate": sum(len(r["posters_in_credits_or_slate"]) for r in rows),
        "qc_burned_in_events": f"{sum(r['qc_burned_in_event'] for r in rows)}/{len(rows)}",
        "goal_credits_s": GOAL_CREDITS_S,
    }


# ---------------------------------------------------------------------------------------------- scenes


def shot_of(starts: list[float], t: float) -> int:
    return max(0, sum(1 for s in starts if s <= t + 1e-6) - 1)


def score_scenes(name: str, truth: dict, dest: Path) -> dict:
    shots = pd.read_parquet(dest / "shots.parquet")
    scenes = pd.read_parquet(dest / "scenes.parquet")
    starts = shots["start_s"].astype(float).tolist()
    want = [float(truth["shots"][i]["start_s"]) for i in truth["scene_starts"][1:]]
    got = [float(t) for t in scenes["start_s"].iloc[1:]]
    wi, gi = [shot_of(starts, t) for t in want], [shot_of(starts, t) for t in got]
    used, matched = set(), 0
    for w in wi:
        j = next((k for k, g in enumerate(gi) if k not in used and abs(g - w) <= 1), None)
        if j is not None:
            used.add(j)
            matched += 1
    p = matched / len(gi) if gi else 1.0
    r = matched / len(wi) if wi else 1.0
    return {"title": name, "truth_scenes": len(want) + 1, "found_scenes": len(got) + 1, "truth_starts_s": want, "found_starts_s": got,
            "precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "shots_detected": len(shots), "shots_truth": len(truth["shots"]), "embeddings_used": bool(
                (scenes.attrs.get("producer") or {}).get("model", {}).get("embeddings", "").startswith("used"))}


def run_scenes(env: dict, work: Path, only: set | None) -> list[dict]:
    from prism_assets_tests.support.scene_media import make_scene_title

    rows = []
    for name, spec in SCENE_TITLES.items():
        if only and name not in only:
            continue
        folder = work / "media" / name
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"{name}.mp4"
        truth = make_scene_title(video, spec["seed"], n_scenes=spec.get("n_scenes", 5), hue_step=spec.get("hue_step", 137.5))
        dest, seconds = process_and_export(env, work, video, name)
        row = score_scenes(name, truth, dest)
        row["seconds"] = round(seconds, 1)
        print(json.dumps({k: row[k] for k in ("title", "f1", "truth_scenes", "found_scenes", "seconds")}), flush=True)
        rows.append(row)
    return rows


def summarize_scenes(rows: list[dict]) -> dict:
    main = [r for r in rows if r["title"] != "scenes-alike"]
    return {"titles": len(rows), "f1_min": min((r["f1"] for r in main), default=None),
            "f1_mean": round(sum(r["f1"] for r in main) / len(main), 3) if main else None,
            "look_alike_f1": next((r["f1"] for r in rows if r["title"] == "scenes-alike"), None), "tolerance": "one detected shot"}


# ---------------------------------------------------------------------------------------------- seasons


def run_seasons(env: dict, work: Path, only: set | None) -> list[dict]:
    from prism_assets_tests.support.season_media import evaluate, make_season

    rows = []
    for name, spec in SEASONS.items():
        if only and name not in only:
            continue
        truth = make_season(work / "media" / name, spec["n_episodes"], spec["seed"], series_id=f"BENCH-{name[-1].upper()}", **spec.get("kw", {}))
        seconds = {}
        found = {}
        for ep in truth["episodes"]:
            dest, s = process_and_export(env, work, Path(ep["video"]), ep["title_id"])
            seconds[ep["title_id"]] = round(s, 1)
        for ep in truth["episodes"]:  # the season as it stands after the last episode (each process updated it)
            e = prism(env, "export", ep["title_id"], "--to", str(work / "export" / f"{ep['title_id']}.final"))
            if e.returncode != 0:
                raise SystemExit(f"prism export {ep['title_id']} failed: {e.stderr.strip()[-500:]}")
            row = json.loads((work / "export" / f"{ep['title_id']}.final" / "season.json").read_text())["episode"] or {}
            found[ep["title_id"]] = {"intro": row.get("intro"), "recap": row.get("recap")}
        ev = evaluate(found, truth, tol_s=GOAL_INTRO_S)
        rows.append({"season": name, "episodes": len(truth["episodes"]), "intro_s": truth.get("intro_s"), "evaluation": ev, "seconds": seconds,
                     "found": found})
        print(json.dumps({"season": name, **ev["summary"]}), flush=True)
    return rows


def summarize_seasons(rows: list[dict]) -> dict:
    n = sum(r["episodes"] for r in rows)
    s = {k: sum(r["evaluation"]["summary"].get(k, 0) for r in rows) for k in
         ("intro_ok", "intro_missed", "intro_false", "recap_ok", "recap_missed", "recap_false", "recap_wrong_source")}
    recaps = sum(1 for r in rows for e in r["evaluation"]["episodes"] if "recap" in e and not (e["recap"] or {}).get("false"))
    return {"seasons": len(rows), "episodes": n, "intro_within_1s": f"{s['intro_ok']}/{n}",
            "intro_within_1s_ratio": round(s["intro_ok"] / n, 3) if n else None, "goal_ratio": 0.9,
            "recap_within_1s": f"{s['recap_ok']}/{recaps}", **{k: v for k, v in s.items() if k not in ("intro_ok", "recap_ok")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", nargs="*", choices=("text", "scenes", "seasons"), help="groups to run (default: all)")
    ap.add_argument("--titles", nargs="*", help="only these titles/seasons of the groups")
    ap.add_argument("--keep", type=Path, help="keep the media, data dir and exports here")
    args = ap.parse_args(argv)
    groups = set(args.only or ("text", "scenes", "seasons"))
    titles = set(args.titles) if args.titles else None
    work = args.keep or Path(tempfile.mkdtemp(prefix="prism-structure-"))
    env = {**os.environ, "PRISM_DATA_DIR": str(work / "data"), "DAGSTER_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    (work / "home").mkdir(parents=True, exist_ok=True)
    doc = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "method": "generated media with exact truth (text cards, burned-in lines, credits; scenes; seasons), prism process + prism export "
                     "per title in one data dir, the exported text.parquet / scenes.parquet / structure.json / posters / qc.json / season.json "
                     "against the truth", "summary": {}}
    t0 = time.monotonic()
    try:
        if "text" in groups:
            doc["text"] = run_text(env, work, titles)
            doc["summary"]["text"] = summarize_text(doc["text"])
        if "scenes" in groups:
            doc["scenes"] = run_scenes(env, work, titles)
            doc["summary"]["scenes"] = summarize_scenes(doc["scenes"])
        if "seasons" in groups:
            doc["seasons"] = run_seasons(env, work, titles)
            doc["summary"]["seasons"] = summarize_seasons(doc["seasons"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    doc["seconds"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    print(json.dumps(doc["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
