"""Day-level reports over HTTP: the daily QC report's HTML, CSV and thumbnails, so the Dagster UI links open them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .api_titles import _send
from .data import Data, NotFound

router = APIRouter(prefix="/v1")
REPORTS = {"qc_report": "qc_report"}  # the day assets whose bundles are served (asset name in the URL -> asset)
TYPES = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8", ".jpg": "image/jpeg", ".png": "image/png"}


@router.get("/reports/{day}/{asset}/{name:path}", tags=["reports"], summary="A file of a day's report (qc_report.html, qc_report.csv, thumbs/*.jpg)")
def report_file(request: Request, day: str, asset: str, name: str):
    data: Data = request.app.state.data
    if asset not in REPORTS:
        raise NotFound(f"no report {asset[:40]!r}: reports are {', '.join(REPORTS)}")
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    if suffix not in TYPES:
        raise NotFound(f"no such report file {name[:80]!r}")
    return _send(request, data.day_file(REPORTS[asset], day, name), TYPES[suffix])
