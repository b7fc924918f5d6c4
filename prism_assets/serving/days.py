"""A day of deliveries, followed: `/days/<date>` (HTML, linked from the day's `delivery_manifest` and `qc_report`
materializations in the Dagster UI) and `/v1/days/<date>` (JSON): each title delivered that day with the state of its
steps, its QC verdict and reasons, its SLA (core/sla.py's windows) and links to its runs in the Dagster UI, its viewer
page and the day's QC report. Read from the catalog (`prism_assets.catalog`, read only)."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .data import BadRequest
from .viewer import E, page, verdict_badge

router = APIRouter()
STATE = {"failed": ("#c62828", "FAILED"), "running": ("#1565c0", "RUNNING"), "done": ("#1e7d32", "DONE"), "waiting": ("#555", "WAITING")}
SLA = {"on time": "#1e7d32", "in progress": "#1565c0", "late": "#b26a00", "overdue": "#c62828"}


def _day(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
        raise BadRequest(f"invalid date {text[:20]!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest(f"invalid date {text!r}: {exc}") from None


def _utc(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc))


def title_state(cat, title_id: str, delivered_at: datetime, settings, now: datetime) -> dict:
    """The title's steps since its latest delivery: the latest run of each, the title's state, its SLA."""
    since = _utc(delivered_at)
    latest: dict[str, object] = {}
    for r in cat.signal_runs(title_id):
        if _utc(r.started_at) >= since:
            latest[r.signal] = r  # ordered by id: the last wins
    steps = {s: {"status": r.status, "finished_at": _utc(r.finished_at).isoformat() if r.finished_at else None,
                 "error": r.error, "run_id": r.dagster_run_id} for s, r in sorted(latest.items())}
    statuses = [v["status"] for v in steps.values()]
    state = ("waiting" if not statuses else "failed" if "failed" in statuses else "running" if "started" in statuses else "done")
    finished = [_utc(r.finished_at) for r in latest.values() if r.finished_at]
    end = max(finished) if state == "done" and finished else now
    hours = (end - since).total_seconds() / 3600.0
    if state == "done":
        sla = "on time" if hours <= settings.title_sla_warn_hours else "late" if hours <= settings.title_sla_fail_hours else "overdue"
    else:
        sla = "in progress" if hours <= settings.title_sla_warn_hours else "late" if hours <= settings.title_sla_fail_hours else "overdue"
    return {"state": state, "steps": steps, "sla": sla, "hours": round(hours, 2), "runs": sorted({v["run_id"] for v in steps.values()})}


def day_summary(data, day: date) -> dict:
    settings = data.settings
    cat = data.catalog()
    now = datetime.now(timezone.utc)
    deliveries = {}
    for d in cat.deliveries_between(day, day):  # a title delivered twice that day: its last delivery
        if d.title_id not in deliveries or d.discovered_at >= deliveries[d.title_id].discovered_at:
            deliveries[d.title_id] = d
    qc = cat.qc_results(list(deliveries))
    indexed = {r["title_id"] for r in data.backend.select("titles", [], ["title_id"], limit=1_000_000)}
    dagster = settings.dagster_public_url.rstrip("/")
    titles = []
    for tid, d in sorted(deliveries.items()):
        st = title_state(cat, tid, d.discovered_at, settings, now)
        q = qc.get(tid)
        titles.append({"title_id": tid, "delivered_at": _utc(d.discovered_at).isoformat(), "uri": d.uri, **st,
                       "qc_verdict": q.verdict if q else None, "qc_reasons": list(q.reasons or []) if q else [],
                       "links": {"runs": f"{dagster}/runs?q%5B0%5D=tag%3Adagster%2Fpartition%3D{quote(tid, safe='')}",
                                 "assets": f"{dagster}/assets/release?view=partitions&partition={quote(tid, safe='')}",
                                 **({"viewer": f"/titles/{quote(tid)}"} if tid in indexed else {})}})
    counts = {k: sum(t["state"] == k for t in titles) for k in STATE}
    return {"date": day.isoformat(), "titles": titles, "counts": counts,
            "verdicts": {v: sum(t["qc_verdict"] == v for t in titles) for v in ("pass", "warn", "fail")},
            "qc_report": f"/v1/reports/{day.isoformat()}/qc_report/qc_report.html", "index_version": data.index_version()}


@router.get("/v1/days/{day}", tags=["days"], summary="The titles delivered on a date: steps, QC verdict, SLA, links to their runs")
def day_json(request: Request, day: str):
    return day_summary(request.app.state.data, _day(day))


def _badge(colour: str, label: str) -> str:
    return f'<span class="badge" style="background:{colour};white-space:nowrap">{E(label)}</span>'


@router.get("/days/{day}", response_class=HTMLResponse, include_in_schema=False)
def day_page(request: Request, day: str):
    doc = day_summary(request.app.state.data, _day(day))
    rows = []
    for t in doc["titles"]:
        colour, label = STATE[t["state"]]
        bad = [f"{s}: {v['error'] or v['status']}" for s, v in t["steps"].items() if v["status"] == "failed"]
        steps = f"{sum(v['status'] in ('success', 'skipped') for v in t['steps'].values())}/{len(t['steps'])} steps done"
        links = " · ".join(f"<a href='{E(u)}'>{E(n)}</a>" for n, u in (("runs", t["links"]["runs"]), ("assets", t["links"]["assets"]),
                                                                        ("viewer", t["links"].get("viewer"))) if u)
        rows.append(f"<tr><td><b>{E(t['title_id'])}</b><div class='sub'>{E(t['uri'])}</div></td>"
                    f"<td>{_badge(colour, label)}<div class='sub'>{E(steps)}{'<br>' + E('; '.join(bad))[:300] if bad else ''}</div></td>"
                    f"<td>{verdict_badge(t['qc_verdict'])}<div class='sub'>{E('; '.join(t['qc_reasons']))[:300]}</div></td>"
                    f"<td>{_badge(SLA[t['sla']], t['sla'].upper())}<div class='sub'>{t['hours']:.1f} h since delivery</div></td><td>{links}</td></tr>")
    c, v = doc["counts"], doc["verdicts"]
    head = (f"<h1>Deliveries of {E(doc['date'])} <span class='sub'>({len(doc['titles'])} title{'' if len(doc['titles']) == 1 else 's'}: {c['done']} done, {c['running']} running, "
            f"{c['failed']} failed, {c['waiting']} waiting · QC {v['pass']} pass, {v['warn']} warn, {v['fail']} fail)</span></h1>"
            f"<p><a href='{E(doc['qc_report'])}'>The day's QC report</a> (HTML, once the qc_report of this date is materialized)</p>")
    table = ("<table class='list'><thead><tr><th>Title</th><th>Steps</th><th>QC verdict</th><th>SLA</th><th>Links</th></tr></thead>"
             f"<tbody>{''.join(rows) or '<tr><td colspan=5>No title was delivered on this date.</td></tr>'}</tbody></table>")
    return page(f"Deliveries {doc['date']}", head + table)
