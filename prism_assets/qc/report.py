"""The daily QC report: a per-title table (verdict, event counts, reasons) with thumbnails of the
offending frames, as HTML and CSV. Thumbnails come from the visual pass's JPEG packs (never a decode)."""

from __future__ import annotations

import csv
import html
import io

import pandas as pd

REPORT_COLUMNS = ["title_id", "delivery_date", "verdict", "profile", "events_total", "event_counts", "reasons", "thumbnails", "qc_artifact"]
VERDICT_ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "pending": 4}  # error: processing failed before QC
THUMB_WIDTH = 240
# title-wide findings: a picture of them says nothing
TITLE_WIDE = {"loudness", "true_peak", "missing_audio", "video_spec", "vfr", "interlaced", "hdr_metadata", "too_short", "truncated"}


def offending_events(qc: dict, limit: int = 6) -> list[dict]:
    """The events worth a thumbnail: warn/fail events with frames, worst first, picture kinds first."""
    evs = [e for e in qc.get("events") or [] if e.get("severity") in ("warn", "fail") and e.get("start_frame") is not None
           and e.get("kind") not in TITLE_WIDE]
    picture = {"black", "freeze", "colour_bars", "slate", "letterbox", "pillarbox", "decode_errors"}
    evs.sort(key=lambda e: (0 if e["severity"] == "fail" else 1, 0 if e["kind"] in picture else 1, e["start_s"]))
    seen, out = set(), []
    for e in evs:  # one thumbnail per place (silence and digital silence often start together)
        key = e["start_frame"]
        if key in seen:
            continue
        seen.add(key)
        out.append(e)
        if len(out) >= limit:
            break
    return out


def pick_picture(index: pd.DataFrame, start_frame: int, end_frame: int) -> pd.Series | None:
    """The kept picture (keyframe candidate, else embedding sample) nearest to the middle of the event,
    preferring pictures inside it."""
    if index is None or not len(index):
        return None
    pics = index[index["kind"].isin(["keyframe", "sample"])]
    if not len(pics):
        return None
    mid = (start_frame + end_frame) / 2.0
    inside = (pics["frame"] >= start_frame) & (pics["frame"] <= end_frame)
    key = pics["kind"] == "keyframe"  # full frames (samples are square CLIP crops): first choice
    for mask in (inside & key, inside, key, pics["frame"] >= 0):
        pool = pics[mask]
        if len(pool):
            return pool.loc[(pool["frame"] - mid).abs().idxmin()]
    return None


def thumbnail(jpeg: bytes, width: int = THUMB_WIDTH) -> bytes:
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def to_csv(df: pd.DataFrame, kinds: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["title_id", "delivery_date", "verdict", "profile", "events_total", *[f"n_{k}" for k in kinds], "reasons", "thumbnails", "qc_artifact"])
    for r in df.itertuples():
        counts = r.event_counts or {}
        w.writerow([r.title_id, r.delivery_date, r.verdict, r.profile, r.events_total, *[counts.get(k, 0) for k in kinds],
                    " | ".join(r.reasons or []), " ".join(r.thumbnails or []), r.qc_artifact or ""])
    return buf.getvalue().encode()


def to_html(df: pd.DataFrame, day: str, kinds: list[str], captions: dict[str, str]) -> bytes:
    colour = {"fail": "#c62828", "error": "#6a1b9a", "warn": "#ef6c00", "pass": "#2e7d32", "pending": "#757575"}
    counts = df["verdict"].value_counts().to_dict() if len(df) else {}
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICT_ORDER)
    rows = []
    for r in df.itertuples():
        c = r.event_counts or {}
        thumbs = "".join(
            f'<figure><img src="{html.escape(t)}" width="{THUMB_WIDTH // 2}" alt="{html.escape(captions.get(t, t))}">'
            f"<figcaption>{html.escape(captions.get(t, ''))}</figcaption></figure>" for t in (r.thumbnails or [])
        )
        rows.append(
            f'<tr><td>{html.escape(str(r.title_id))}</td><td>{html.escape(str(r.delivery_date))}</td>'
            f'<td style="color:{colour.get(r.verdict, "#000")};font-weight:bold">{html.escape(r.verdict)}</td>'
            f"<td>{html.escape(str(r.profile or ''))}</td><td>{r.events_total}</td>"
            + "".join(f"<td>{c.get(k, 0) or ''}</td>" for k in kinds)
            + f"<td><ul>{''.join(f'<li>{html.escape(x)}</li>' for x in (r.reasons or []))}</ul></td><td class=t>{thumbs}</td></tr>"
        )
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["title", "delivered", "verdict", "profile", "events", *kinds, "reasons", "offending frames"])
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Prism QC report {html.escape(day)}</title>
<style>body{{font-family:sans-serif;font-size:13px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
figure{{display:inline-block;margin:2px}} figcaption{{font-size:11px;max-width:120px}} ul{{margin:0;padding-left:16px}}</style></head>
<body><h1>QC report {html.escape(day)}</h1><p>{len(df)} title(s): {html.escape(summary)}</p>
<table><tr>{head}</tr>{''.join(rows)}</table></body></html>"""
    return doc.encode()
