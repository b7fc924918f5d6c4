"""Asset checks of `qc.json` (per title) and of the daily QC report."""

import pandas as pd
from dagster import AssetCheckSeverity, MetadataValue

from ..core import checks
from .events import VERDICTS, verdict_of
from .report import VERDICT_ORDER


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


PICTURES = "pictures"  # in the value a verdict check is given (not in qc.json / release.json): the reasons' pictures, markdown


def verdict_not_fail(qc: dict):
    """Passed unless the verdict is fail; the verdict and its reasons as the evaluation's one line (qc.json, release.json).
    A failed one also carries the first reason as a line of its own and, when the checked value has them (`PICTURES`: the
    qc step's and release's check values), the reasons' pictures: from a failed run to its failed check, the reason and
    its plot are one click away (the Runs list, the run, the failed step, the pictures)."""
    reasons = list(qc.get("reasons") or [])
    meta = {"verdict": qc["verdict"], "summary": f"verdict {qc['verdict']}" + (f": {'; '.join(reasons)}" if reasons else ""),
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "none")}
    if qc["verdict"] == "fail":
        meta.update({"reason": reasons[0]} if reasons else {})
        meta.update({PICTURES: qc[PICTURES]} if qc.get(PICTURES) is not None else {})
    return qc["verdict"] != "fail", meta


GATE_RULE = checks.CheckRule(
    "qc_verdict_not_fail", "Blocking QC gate: fails for a title whose verdict is fail. The verdict stays materialized and in the catalog; "
    "with qc.gate=block (prod) the failed check marks that title's run and holds back only what is downstream of that title's qc; "
    "with qc.gate=warn (dev) it is reported with WARN severity and holds nothing back (the run still ends failed at `release`).", verdict_not_fail,
    blocking=True)
VERDICT_RULE = checks.CheckRule(
    "title_passes_qc", "Red (ERROR) for a title whose QC verdict is fail, in every deployment, with the reasons: the Catalog and the "
    "asset's health show the failure. It holds nothing back; the gate below does (prod).", verdict_not_fail)
QC_RULES = (
    checks.CheckRule("events_inside_duration", "Every event lies inside the title (times and frames).", _inside_duration),
    checks.CheckRule("events_non_overlapping", "Events of one kind and track do not overlap.", _no_overlap),
    checks.CheckRule("verdict_consistent", "The verdict is the worst event severity (fail > warn > pass); reasons and counts match the events.",
                     _verdict_consistent),
    VERDICT_RULE,
    GATE_RULE,
)
GATES = {"block": AssetCheckSeverity.ERROR, "warn": AssetCheckSeverity.WARN}


def qc_rules(gate: str) -> tuple:
    """The rules with the gate's severity for this deployment (`qc.gate`: block | warn)."""
    if gate not in GATES:
        raise ValueError(f"unknown qc.gate {gate!r}: choose block or warn")
    return QC_RULES[:-1] + (GATE_RULE.with_severity(GATES[gate]),)


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


REPORT_RULES = (
    checks.CheckRule("every_title_listed", "The report (table, CSV and HTML) lists exactly the titles delivered that day.", _report_listed),
    checks.CheckRule("verdicts_known", "Each row's verdict is pass, warn, fail, error (processing failed before QC) or pending (no QC yet).",
                     lambda df: (bool(df["verdict"].isin(list(VERDICT_ORDER)).all()), {"verdicts": df["verdict"].value_counts().to_dict()})),
    checks.CheckRule("thumbnails_written", "Every thumbnail the report links is in the report bundle.", _report_thumbs, severity=AssetCheckSeverity.WARN),
)
