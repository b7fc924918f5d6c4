"""Content-QC assets: `qc` per title (from the visual and audio passes' statistics; no decode) and
the daily `qc_report` (HTML + CSV with thumbnails of the offending frames from the visual packs).

    frame_stats + shots + source_video + audio_stats + audio_analysis -> qc        (titles partitions)
    catalog (that day's deliveries + their qc verdicts) + qc.json + frame_samples packs -> qc_report (daily)

A failed title keeps its verdict: `qc` materializes (qc.json written, verdict in the catalog's
`qc_results`) whatever the verdict; its blocking check `qc_verdict_not_fail` then fails, which
marks that title's run and stops anything downstream of that title's `qc` only. Every title runs in
its own `process_title` run, so the rest of the batch is untouched.
"""


import dataclasses
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetSelection,
    Failure,
    MetadataValue,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    in_process_executor,
    schedule,
)

from ..core import checks
from ..core.artifacts import ArtifactStore, Bundle
from ..core.signals import default_freshness_policy, tracked_signal_run
from ..core.store import StoreError
from ..partitions import TAG_DELIVERY_DATE, daily_partitions, titles_partitions
from ..resources import CatalogResource, PrismProfile, PrismStorage
from .detect import QC_CODE_VERSION, QC_SCHEMA_VERSION, VERDICTS, QCInputError, load_profiles, run_qc, select_profile, verdict_of
from .report import REPORT_COLUMNS, VERDICT_ORDER, offending_events, pick_picture, thumbnail, to_csv, to_html

ASSET = "qc"
REPORT_ASSET = "qc_report"
REPORT_CODE_VERSION = "qc-report-1"
REPORT_SCHEMA_VERSION = "1.0"
QC_REPORT_JOB = "qc_report_job"


# ---------------------------------------------------------------------------------------------
# checks on qc.json


def _inside_duration(qc: dict):
    dur, n = qc["duration_s"], qc["frames"]
    bad = []
    for i, e in enumerate(qc["events"]):
        ok = 0 <= e["start_s"] <= e["end_s"] <= dur + 1e-6
        if e["start_frame"] is not None:
            ok = ok and 0 <= e["start_frame"] <= e["end_frame"] <= n - 1
        if not ok:
            bad.append(f"{i}:{e['kind']} {e['start_s']}-{e['end_s']} f{e['start_frame']}-{e['end_frame']}")
    return not bad, {"events": len(qc["events"]), "duration_s": dur, "frames": n, "outside": bad[:20]}


def _no_overlap(qc: dict):
    by: dict[tuple, list] = {}
    for e in qc["events"]:
        by.setdefault((e["kind"], e["track"]), []).append(e)
    bad = []
    for (kind, track), evs in by.items():
        evs = sorted(evs, key=lambda e: e["start_s"])
        for a, b in zip(evs, evs[1:]):
            if b["start_s"] < a["end_s"] - 1e-6:
                bad.append(f"{kind}/{track}: {a['start_s']}-{a['end_s']} and {b['start_s']}-{b['end_s']}")
    return not bad, {"overlaps": bad[:20], "groups": len(by)}


def _verdict_consistent(qc: dict):
    want = verdict_of(qc["events"])
    ok = qc["verdict"] == want and qc["verdict"] in VERDICTS and (bool(qc["reasons"]) == (qc["verdict"] != "pass"))
    counts: dict[str, int] = {}
    for e in qc["events"]:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    ok = ok and counts == qc["event_counts"]
    return ok, {"verdict": qc["verdict"], "from_events": want, "reasons": len(qc["reasons"])}


def _not_fail(qc: dict):
    return qc["verdict"] != "fail", {"verdict": qc["verdict"], "reasons": MetadataValue.md("\n".join(f"- {r}" for r in qc["reasons"]) or "none")}


GATE_RULE = checks.CheckRule(
    "qc_verdict_not_fail", "Blocking QC gate: fails for a title whose verdict is fail. The verdict stays materialized and in the catalog; "
    "with qc.gate=block (prod) the failed check marks that title's run and holds back only what is downstream of that title's qc; "
    "with qc.gate=warn (dev) it is reported with WARN severity and holds nothing back.", _not_fail, blocking=True)
QC_RULES = [
    checks.CheckRule("events_inside_duration", "Every event lies inside the title (times and frames).", _inside_duration),
    checks.CheckRule("events_non_overlapping", "Events of one kind and track do not overlap.", _no_overlap),
    checks.CheckRule("verdict_consistent", "The verdict is the worst event severity (fail > warn > pass); reasons and counts match the events.",
                     _verdict_consistent),
    GATE_RULE,
]
GATES = {"block": AssetCheckSeverity.ERROR, "warn": AssetCheckSeverity.WARN}


def qc_rules(gate: str) -> list:
    """The rules with the gate's severity for this deployment (`qc.gate`: block | warn)."""
    if gate not in GATES:
        raise ValueError(f"unknown qc.gate {gate!r}: choose block or warn")
    return QC_RULES[:-1] + [dataclasses.replace(GATE_RULE, severity=GATES[gate])]


def _report_listed(df: pd.DataFrame):
    """Every title delivered that day is a row of the table, of the written CSV and of the HTML."""
    import csv
    import io

    want = set(df.attrs.get("expected_titles", []))
    csv_titles = {r["title_id"] for r in csv.DictReader(io.StringIO(df.attrs.get("csv", b"").decode()))}
    html = df.attrs.get("html", b"").decode()
    not_in_html = sorted(t for t in want if f"<td>{t}</td>" not in html)
    ok = want == set(df["title_id"]) == csv_titles and not not_in_html
    return ok, {"titles": len(want), "table": len(df), "csv": len(csv_titles), "missing_in_csv": sorted(want - csv_titles)[:20],
                "missing_in_html": not_in_html[:20]}


def _report_thumbs(df: pd.DataFrame):
    files = set(df.attrs.get("files", []))
    missing = [t for ts in df["thumbnails"] for t in (ts or []) if t not in files]
    wanted = [r.title_id for r in df.itertuples() if r.verdict in ("warn", "fail") and not r.thumbnails]
    return not missing, {"thumbnails": sum(len(t or []) for t in df["thumbnails"]), "missing_files": missing[:20], "offending_without_thumbnail": wanted[:20]}


REPORT_RULES = [
    checks.CheckRule("every_title_listed", "The report (table, CSV and HTML) lists exactly the titles delivered that day.", _report_listed),
    checks.CheckRule("verdicts_known", "Each row's verdict is pass, warn, fail or pending (no QC yet).",
                     lambda df: (bool(df["verdict"].isin(list(VERDICT_ORDER)).all()), {"verdicts": df["verdict"].value_counts().to_dict()})),
    checks.CheckRule("thumbnails_written", "Every thumbnail the report links is in the report bundle.", _report_thumbs, severity=AssetCheckSeverity.WARN),
]


# ---------------------------------------------------------------------------------------------
# assets


def qc_config(profile: PrismProfile) -> dict:
    return profile.config().get("qc", {}) or {}


def _delivery_date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _annotate_shots(qc: dict, shots: pd.DataFrame | None) -> None:
    if shots is None or not len(shots):
        return
    starts = shots["start_frame"].to_numpy()
    for e in qc["events"]:
        if e["start_frame"] is not None and e["kind"] in ("black", "freeze", "colour_bars", "slate"):
            e["metrics"]["shot_index"] = int(shots["shot_index"].iloc[max(0, int(np.searchsorted(starts, e["start_frame"], side="right")) - 1)])


@asset(
    partitions_def=titles_partitions,
    group_name="qc",
    code_version=QC_CODE_VERSION,
    kinds={"json"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs(ASSET, QC_RULES),
    ins={"frame_stats": AssetIn(), "shots": AssetIn(), "source_video": AssetIn(), "audio_stats": AssetIn(), "audio_analysis": AssetIn()},
    metadata={"prism/schema_version": QC_SCHEMA_VERSION, "prism/artifact": "titles/<title_id>/qc.json"},
    description="Content QC of the title from the visual and audio passes' statistics (no decode): black, freeze, colour bars/slate, "
    "letterbox/pillarbox, silence and digital silence per track, loudness against the provider's profile (EBU R128, ATSC A/85, "
    "streaming dialogue-gated), A/V duration, interlacing, VFR, decode errors, missing audio, resolution/frame rate. "
    "Verdict pass|warn|fail with reasons, stored in the catalog.",
)
def qc(context: AssetExecutionContext, frame_stats: pd.DataFrame, shots: pd.DataFrame, source_video: dict, audio_stats: pd.DataFrame,
       audio_analysis: dict, storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile):
    title_id = context.partition_key
    with tracked_signal_run(context, catalog, signal=ASSET, code_version=QC_CODE_VERSION) as rec:
        try:
            cfg = qc_config(profile)
            rules = qc_rules(cfg.get("gate", "block"))
            doc = load_profiles(overrides=cfg)
        except (ValueError, OSError) as exc:
            raise Failure(description=f"{title_id}: qc profiles: {str(exc).splitlines()[0]}") from None
        name, prof, why = select_profile(doc, source_video.get("provider"))
        try:
            result = run_qc(frame_stats, shots, audio_stats, audio_analysis, source_video, prof, name, why)
        except (QCInputError, ValueError) as exc:
            raise Failure(description=f"{title_id}: {str(exc).splitlines()[0]}") from None
        _annotate_shots(result, shots)
        result["title_id"] = title_id
        audio_producer = (audio_stats.attrs.get("producer") or {}) if audio_stats is not None else {}
        result["producer"] = {"tool": "prism-qc", "code_version": QC_CODE_VERSION, "model": None, "profile": profile.name,
                              "inputs": {"frame_stats": (frame_stats.attrs.get("producer") or {}).get("code_version"),
                                         "audio_stats": audio_producer.get("code_version")}}
        rec.model = {"qc_profile": name, "code_version": QC_CODE_VERSION}
        uri = storage.artifacts().store.uri_for(ArtifactStore.base_key(ASSET, title_id) + ".json")
        catalog.get().record_qc(title_id=title_id, verdict=result["verdict"], profile=name, reasons=result["reasons"],
                                event_counts=result["event_counts"], run_id=context.run_id, duration_s=result["duration_s"],
                                delivery_date=_delivery_date(source_video.get("delivery_date")), artifact_uri=uri, code_version=QC_CODE_VERSION)
    log = context.log.warning if result["verdict"] != "pass" else context.log.info
    log(f"{title_id}: QC {result['verdict']} ({name}): " + ("; ".join(result["reasons"]) or "no issue"))
    yield Output(result, metadata={
        "verdict": result["verdict"], "profile": name, "profile_selected_by": why, "events": len(result["events"]),
        "event_counts": MetadataValue.json(result["event_counts"]),
        "reasons": MetadataValue.md("\n".join(f"- {r}" for r in result["reasons"]) or "no issue"),
    })
    yield from checks.evaluate(ASSET, rules, result)


def _title_thumbnails(storage: PrismStorage, title_id: str, qc_doc: dict, limit: int) -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """Thumbnails of the title's offending events, cut from the visual pass's packs."""
    from ..visual.assets import _pack_paths
    from ..visual.decode import read_pack_bytes

    arts = storage.artifacts()
    events = offending_events(qc_doc, limit)
    if not events:
        return {}, {}, []
    index = arts.read(ArtifactStore.base_key("frame_samples", title_id))
    packs = _pack_paths(storage, title_id)
    files, captions, names = {}, {}, []
    for i, e in enumerate(events):
        pic = pick_picture(index, int(e["start_frame"]), int(e["end_frame"]))
        if pic is None or pic["pack"] not in packs:
            continue
        name = f"thumbs/{title_id}_{i:02d}_{e['kind']}_f{int(pic['frame']):07d}.jpg"
        files[name] = thumbnail(read_pack_bytes(packs[pic["pack"]], int(pic["offset"]), int(pic["length"])))
        captions[name] = f"{e['severity']} {e['kind']}{'' if e['track'] is None else ' t' + str(e['track'])} {e['start_s']:.2f}-{e['end_s']:.2f} s (frame {int(pic['frame'])})"
        names.append(name)
    return files, captions, names


@asset(
    partitions_def=daily_partitions,
    group_name="qc",
    code_version=REPORT_CODE_VERSION,
    kinds={"html", "csv"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs(REPORT_ASSET, REPORT_RULES),
    metadata={"prism/schema_version": REPORT_SCHEMA_VERSION, "prism/artifact": "daily/<date>/qc_report/<version>/ (main.parquet, qc_report.html, qc_report.csv, thumbs/*.jpg)"},
    description="The day's QC report: one row per title delivered that day (verdict, event counts, reasons, thumbnails of the offending "
    "frames from the visual packs), as HTML and CSV; the links are in the materialization metadata.",
)
def qc_report(context: AssetExecutionContext, storage: PrismStorage, catalog: CatalogResource, profile: PrismProfile):
    day = date.fromisoformat(context.partition_key)
    cat = catalog.get()
    limit = int(qc_config(profile).get("report_thumbnails_per_title", 6))
    deliveries = cat.deliveries_between(day, day)
    titles = list(dict.fromkeys(d.title_id for d in deliveries))
    results = cat.qc_results(titles)
    arts = storage.artifacts()
    rows, files, captions = [], {}, {}
    for tid in titles:
        r = results.get(tid)
        row = {"title_id": tid, "delivery_date": day.isoformat(), "verdict": "pending", "profile": None, "events_total": 0,
               "event_counts": {}, "reasons": [], "thumbnails": [], "qc_artifact": None}
        if r is not None:
            row.update(verdict=r.verdict, profile=r.profile, events_total=int(r.events_total), event_counts=dict(r.event_counts or {}),
                       reasons=list(r.reasons or []), qc_artifact=r.artifact_uri)
            try:
                qc_doc = arts.read(ArtifactStore.base_key(ASSET, tid))
                f, c, names = _title_thumbnails(storage, tid, qc_doc, limit)
                files.update(f)
                captions.update(c)
                row["thumbnails"] = names
            except (StoreError, Failure) as exc:
                context.log.warning(f"{tid}: no thumbnails ({getattr(exc, 'description', None) or exc})")
        rows.append(row)
    rows.sort(key=lambda x: (VERDICT_ORDER.get(x["verdict"], 9), x["title_id"]))
    df = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    kinds = sorted({k for r in rows for k in r["event_counts"]})
    files["qc_report.csv"] = to_csv(df, kinds)
    files["qc_report.html"] = to_html(df, day.isoformat(), kinds, captions)
    table = df.assign(event_counts=df["event_counts"].map(lambda d: json.dumps(d, sort_keys=True)),
                      reasons=df["reasons"].map(list), thumbnails=df["thumbnails"].map(list))
    table.attrs = {"schema_version": REPORT_SCHEMA_VERSION, "producer": {"tool": "prism-qc", "code_version": REPORT_CODE_VERSION, "model": None,
                                                                       "profile": profile.name, "day": day.isoformat()}}
    base = ArtifactStore.base_key(REPORT_ASSET, day.isoformat(), daily=True)
    info = arts.write(base, Bundle(table, files=files))
    cat.record_output(partition_key=day.isoformat(), signal=REPORT_ASSET, run_id=context.run_id, uri=info["uri"], fmt=info["format"],
                      size_bytes=info["bytes"], schema_version=REPORT_SCHEMA_VERSION, code_version=REPORT_CODE_VERSION)
    keys = arts.bundle_files(base)
    html_uri, csv_uri = arts.store.uri_for(keys["qc_report.html"]), arts.store.uri_for(keys["qc_report.csv"])
    link = (lambda u: MetadataValue.url(u) if u.startswith(("s3://", "http")) else MetadataValue.path(u))
    check_df = df.copy()
    check_df.attrs = {"expected_titles": titles, "files": list(files), "csv": files["qc_report.csv"], "html": files["qc_report.html"]}
    counts = df["verdict"].value_counts().to_dict()
    md = "\n".join(f"| {r.title_id} | {r.verdict} | {r.events_total} |" for r in df.head(30).itertuples())
    yield Output(None, metadata={
        "titles": len(df), "fail": int(counts.get("fail", 0)), "warn": int(counts.get("warn", 0)), "pass": int(counts.get("pass", 0)),
        "pending": int(counts.get("pending", 0)), "report_html": link(html_uri), "report_csv": link(csv_uri),
        "artifact_uri": info["uri"], "artifact_files": info["files"], "thumbnails": sum(len(t) for t in df["thumbnails"]),
        "preview": MetadataValue.md("| title | verdict | events |\n|---|---|---|\n" + md if len(df) else "_no deliveries_"),
    })
    yield from checks.evaluate(REPORT_ASSET, REPORT_RULES, check_df)


qc_report_job = define_asset_job(
    QC_REPORT_JOB,
    selection=AssetSelection.assets(qc_report),
    partitions_def=daily_partitions,
    description="The day's QC report (HTML + CSV with thumbnails).",
    executor_def=in_process_executor,
)


@schedule(job=qc_report_job, cron_schedule="0 9 * * *", execution_timezone="UTC", name="daily_qc_report_schedule")
def daily_qc_report_schedule(context: ScheduleEvaluationContext):
    """09:00 UTC: yesterday's QC report (after the 06:00 batch has run that day's titles); re-materialize
    any day from the UI for a fresher one."""
    day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return RunRequest(run_key=f"qc-report:{day}", partition_key=day, tags={TAG_DELIVERY_DATE: day})
