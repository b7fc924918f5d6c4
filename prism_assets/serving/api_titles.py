"""Titles, timelines, WebVTT tracks, pictures, the playable proxy (HTTP Range) and the QC feed."""

from __future__ import annotations

import base64
import json
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from ..index.backend import Cond
from .data import BadRequest, Data, LocalFile, NotFound, check_title_id
from .vtt import chapters_vtt, cues_vtt, qc_vtt

router = APIRouter(prefix="/v1")
TRACKS = ("shots", "scenes", "speech", "subtitles", "ocr", "qc", "loudness", "structure")
MAX_PAGE = 200


def _data(request: Request) -> Data:
    return request.app.state.data


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("page_token is not one this API gave") from None


def _title_summary(row: dict, base: str) -> dict:
    out = {k: row.get(k) for k in ("title_id", "name", "provider", "series_id", "season", "episode", "delivery_date", "duration_s", "fps",
                                   "width", "height", "languages", "audio_languages", "subtitle_languages", "qc_verdict", "qc_reasons",
                                   "clip_weights_trained", "index_version", "indexed_at")}
    out["links"] = {"self": f"{base}/v1/titles/{row['title_id']}", "viewer": f"{base}/titles/{row['title_id']}",
                    "poster": f"{base}/v1/titles/{row['title_id']}/poster.jpg" if row.get("poster") else None}
    return out


@router.get("/titles", tags=["titles"], summary="Titles, filtered, in pages (ordered by title id; page tokens stay valid)")
def list_titles(request: Request, series_id: str | None = Query(None, max_length=128), season: int | None = Query(None, ge=0, le=10_000),
                language: str | None = Query(None, max_length=16, description="ISO 639-1, any of the title's languages"),
                qc_verdict: Literal["pass", "warn", "fail"] | None = None, page_size: int = Query(50, ge=1, le=MAX_PAGE),
                page_token: str | None = Query(None, max_length=400)):
    data = _data(request)
    conds = []
    if series_id:
        conds.append(Cond("series_id", "=", series_id))
    if season is not None:
        conds.append(Cond("season", "=", season))
    if language:
        conds.append(Cond("languages", "contains", language.lower()))
    if qc_verdict:
        conds.append(Cond("qc_verdict", "=", qc_verdict))
    if page_token:
        conds.append(Cond("title_id", ">", _untoken(page_token)))
    rows = data.backend.select("titles", conds, limit=1_000_000)
    rows.sort(key=lambda r: r["title_id"])
    page = rows[:page_size]
    base = str(request.base_url).rstrip("/")
    nxt = _token(page[-1]["title_id"]) if len(rows) > page_size else None
    return {"items": [_title_summary(r, base) for r in page], "next_page_token": nxt, "index_version": data.index_version()}


@router.get("/titles/{title_id}", tags=["titles"], summary="A title: summary, QC verdict and events, structure, localization, links")
def get_title(request: Request, title_id: str):
    data = _data(request)
    row = data.title_row(title_id)
    base = str(request.base_url).rstrip("/")
    qc = data.read("qc", title_id) or {}
    loc = data.read("localization", title_id) or {}
    summary = json.loads(row.get("summary") or "{}")
    tracks = [f"subtitles-{t['label']}" for t in summary.get("subtitle_tracks") or [] if t.get("label")]
    tracks += [f"transcript-{lang}" for lang in sorted({r["language"] for r in data.backend.select(
        "speech", [Cond("title_id", "=", title_id)], ["language"], limit=100_000) if r.get("language")})]
    tracks += ["chapters", "qc"]
    return {
        **_title_summary(row, base),
        "title": data.read("source_video", title_id),
        "qc": {"verdict": qc.get("verdict"), "reasons": qc.get("reasons") or [], "profile": (qc.get("profile") or {}).get("name"),
               "event_counts": qc.get("event_counts") or {}},
        "structure": {k: summary.get(k) for k in ("credits", "next_episode_s", "intro", "recap", "slates", "burned_in_subtitles")},
        "localization": {"audio_tracks": loc.get("audio_tracks") or summary.get("audio_tracks") or [],
                         "subtitle_tracks": loc.get("subtitle_tracks") or summary.get("subtitle_tracks") or [],
                         "original_language": loc.get("original_language")},
        "counts": summary.get("rows"), "models": summary.get("models"),
        "artifacts": {"tracks": {name: f"{base}/v1/titles/{title_id}/tracks/{name}.vtt" for name in tracks},
                      "media": f"{base}/v1/titles/{title_id}/media", "timeline": f"{base}/v1/titles/{title_id}/timeline",
                      "keyframes": f"{base}/v1/titles/{title_id}/keyframes/{{unit_index}}.jpg",
                      "posters": [f"{base}/v1/titles/{title_id}/posters/{name.split('/')[-1]}" for name in data.bundle_names("posters", title_id)
                                  if name.endswith(".jpg")]},
        "index_version": row["index_version"],
    }


def _timed(data: Data, table: str, title_id: str, a: float | None, b: float | None, limit: int = 20_000) -> list[dict]:
    conds = [Cond("title_id", "=", title_id)]
    if a is not None:
        conds.append(Cond("end_s", ">", a))
    if b is not None:
        conds.append(Cond("start_s", "<", b))
    rows = data.backend.select(table, conds, limit=limit, order_by="start_s")
    for r in rows:
        for k in ("detail", "metrics"):
            if k in r and isinstance(r[k], str) and r[k].startswith("{"):
                r[k] = json.loads(r[k])
        r.pop("series_id", None), r.pop("season", None), r.pop("episode", None)
    return rows


@router.get("/titles/{title_id}/timeline", tags=["titles"], summary="The title's lanes over a time range")
def timeline(request: Request, title_id: str, tracks: str = Query(",".join(TRACKS), max_length=200, description=f"comma list of {', '.join(TRACKS)}"),
             start_s: float | None = Query(None, ge=0), end_s: float | None = Query(None, ge=0)):
    data = _data(request)
    row = data.title_row(title_id)
    wanted = [t.strip() for t in tracks.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TRACKS]
    if unknown:
        raise BadRequest(f"unknown track {unknown[0]!r}: choose from {', '.join(TRACKS)}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise BadRequest("end_s must be after start_s")
    out: dict = {"title_id": title_id, "duration_s": row.get("duration_s"), "start_s": start_s, "end_s": end_s, "lanes": {}}
    lanes = out["lanes"]
    if "shots" in wanted:
        lanes["shots"] = _timed(data, "units", title_id, start_s, end_s)
    if "speech" in wanted:
        lanes["speech"] = _timed(data, "speech", title_id, start_s, end_s)
    if "subtitles" in wanted:
        lanes["subtitles"] = _timed(data, "subtitles", title_id, start_s, end_s)
    if "ocr" in wanted:
        lanes["ocr"] = _timed(data, "ocr", title_id, start_s, end_s)
    if "qc" in wanted:
        lanes["qc"] = _timed(data, "events", title_id, start_s, end_s)
    if "scenes" in wanted:
        scenes = data.read("scenes", title_id)
        rows = [] if scenes is None else [{"scene_index": int(r.scene_index), "start_s": float(r.start_s), "end_s": float(r.end_s),
                                           "boundary_in": r.boundary_in} for r in scenes.itertuples()]
        lanes["scenes"] = [r for r in rows if (start_s is None or r["end_s"] > start_s) and (end_s is None or r["start_s"] < end_s)]
    if "structure" in wanted:
        summary = json.loads(row.get("summary") or "{}")
        parts = []
        for key, label in (("intro", "intro"), ("recap", "recap")):
            if summary.get(key):
                parts.append({"label": label, "start_s": summary[key]["start_s"], "end_s": summary[key]["end_s"]})
        for key, label in (("opening", "opening_credits"), ("end", "end_credits")):
            c = (summary.get("credits") or {}).get(key)
            if c:
                parts.append({"label": label, "start_s": c["start_s"], "end_s": c.get("end_s")})
        lanes["structure"] = sorted(parts, key=lambda p: p["start_s"])
    if "loudness" in wanted:
        lanes["loudness"] = _loudness(data, title_id, start_s, end_s)
    out["index_version"] = row["index_version"]
    return out


def _loudness(data: Data, title_id: str, a: float | None, b: float | None) -> dict:
    """Short-term loudness (3 s) per track, one point per second, from the audio pass's 400 ms blocks."""
    df = data.read("audio_loudness", title_id)
    if df is None or len(df) == 0 or "t_s" not in df.columns:
        return {"tracks": []}
    import numpy as np

    out = []
    power_col = next((c for c in ("power", "block_power", "mean_square") if c in df.columns), None)
    for track, part in df.groupby("track") if "track" in df.columns else [(0, df)]:
        part = part.sort_values("t_s")
        t = part["t_s"].to_numpy(float)
        if power_col is None:
            continue
        p = part[power_col].to_numpy(float)
        pts = []
        for sec in range(int(t.min()) if len(t) else 0, int(t.max()) + 1 if len(t) else 0):
            if (a is not None and sec < a) or (b is not None and sec > b):
                continue
            m = (t > sec - 3) & (t <= sec)
            if m.any():
                mean = float(np.mean(p[m]))
                pts.append({"t_s": sec, "lufs": round(-0.691 + 10 * np.log10(mean), 2) if mean > 0 else None})
        out.append({"track": int(track), "short_term": pts})
    return {"tracks": out}


@router.get("/titles/{title_id}/tracks/{name}.vtt", tags=["media"], response_class=PlainTextResponse,
            summary="WebVTT: subtitles-<label>, transcript-<language>, chapters (scenes + structure), qc (events as JSON metadata cues)")
def vtt_track(request: Request, title_id: str, name: str):
    data = _data(request)
    row = data.title_row(title_id)
    if name.startswith("subtitles-"):
        rows = [r for r in _timed(data, "subtitles", title_id, None, None, 200_000) if r["track"] == name[len("subtitles-"):]]
        if not rows:
            raise NotFound(f"{title_id} has no subtitle track {name[len('subtitles-'):]!r}")
        body = cues_vtt(rows)
    elif name.startswith("transcript-"):
        rows = [r for r in _timed(data, "speech", title_id, None, None, 200_000) if r.get("language") == name[len("transcript-"):]]
        if not rows:
            raise NotFound(f"{title_id} has no speech in {name[len('transcript-'):]!r}")
        body = cues_vtt(rows)
    elif name == "chapters":
        scenes = data.read("scenes", title_id)
        body = chapters_vtt(scenes, json.loads(row.get("summary") or "{}"), float(row.get("duration_s") or 0))
    elif name == "qc":
        body = qc_vtt(_timed(data, "events", title_id, None, None, 100_000))
    else:
        raise NotFound(f"no track {name[:60]!r}: subtitles-<label>, transcript-<language>, chapters or qc")
    return PlainTextResponse(body, media_type="text/vtt; charset=utf-8")


def _send(request: Request, f, media_type: str) -> Response:
    if isinstance(f, LocalFile):
        return FileResponse(f.path, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})  # Range: 206 by Starlette
    size = f.size
    rng = request.headers.get("range")
    start, end = 0, size - 1
    status = 200
    if rng and rng.startswith("bytes="):
        a, _, b = rng[6:].split(",")[0].partition("-")
        try:
            start, end = (int(a), int(b) if b else size - 1) if a else (max(size - int(b), 0), size - 1)
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        if start > end or start >= size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        end = min(end, size - 1, start + (8 << 20) - 1)
        status = 206
    if status == 200:  # the whole object, streamed in 8 MiB ranges (never held in memory)
        def chunks():
            for a in range(0, size, 8 << 20):
                yield f.store.get_range(f.key, a, min(a + (8 << 20), size) - 1)

        return StreamingResponse(chunks(), media_type=media_type, headers={"Accept-Ranges": "bytes", "Content-Length": str(size)})
    body = f.store.get_range(f.key, start, end)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(len(body))}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body, status_code=status, media_type=media_type, headers=headers)


@router.get("/titles/{title_id}/media", tags=["media"], summary="The browser-playable proxy (H.264/AAC MP4), with HTTP Range (206)")
def media(request: Request, title_id: str):
    return _send(request, _data(request).bundle_file("proxy", check_title_id(title_id), "proxy.mp4"), "video/mp4")


@router.get("/titles/{title_id}/keyframes/{unit_index}.jpg", tags=["media"], summary="The keyframe of a unit (shot)")
def keyframe(request: Request, title_id: str, unit_index: int):
    data = _data(request)
    rows = data.backend.select("units", [Cond("title_id", "=", check_title_id(title_id)), Cond("unit_index", "=", unit_index)], ["keyframe"], limit=1)
    if not rows or not rows[0].get("keyframe"):
        raise NotFound(f"{title_id} has no keyframe for unit {unit_index}")
    return _send(request, data.bundle_file("keyframes", title_id, rows[0]["keyframe"]), "image/jpeg")


@router.get("/titles/{title_id}/poster.jpg", tags=["media"], summary="The title's best poster")
def poster(request: Request, title_id: str):
    data = _data(request)
    name = data.title_row(title_id).get("poster")
    if not name:
        raise NotFound(f"{title_id} has no poster")
    return _send(request, data.bundle_file("posters", title_id, name), "image/jpeg")


@router.get("/titles/{title_id}/posters/{name}", tags=["media"], summary="One poster image (names from the title's `artifacts.posters`)")
def poster_file(request: Request, title_id: str, name: str):
    return _send(request, _data(request).bundle_file("posters", check_title_id(title_id), f"posters/{name}"), "image/jpeg")


@router.get("/qc/events", tags=["qc"], summary="QC and localization events across titles (newest deliveries first)")
def qc_events(request: Request, kind: str | None = Query(None, max_length=64), severity: Literal["info", "warn", "fail"] | None = None,
              since: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="delivery date >= YYYY-MM-DD"),
              title_id: str | None = Query(None, max_length=128), page_size: int = Query(100, ge=1, le=MAX_PAGE),
              page_token: str | None = Query(None, max_length=400)):
    data = _data(request)
    conds = []
    if kind:
        conds.append(Cond("kind", "=", kind))
    if severity:
        conds.append(Cond("severity", "=", severity))
    if since:
        conds.append(Cond("delivery_date", ">=", since))
    if title_id:
        conds.append(Cond("title_id", "=", check_title_id(title_id)))
    rows = data.backend.select("events", conds, limit=1_000_000)
    def key(r: dict) -> list:  # newest deliveries first, then title, time, row: a total order
        return [-int((r.get("delivery_date") or "0000-00-00").replace("-", "")), r["title_id"], float(r["start_s"]), r["row_id"]]

    rows.sort(key=key)
    if page_token:  # the last row's key: a page starts after it, so events indexed meanwhile never shift a page
        try:
            after = json.loads(_untoken(page_token))
            if not (isinstance(after, list) and len(after) == 4):
                raise ValueError
            rows = [r for r in rows if key(r) > after]
        except (ValueError, TypeError):
            raise BadRequest("page_token is not one this API gave") from None
    page = rows[:page_size]
    for r in page:
        r["metrics"] = json.loads(r["metrics"]) if r.get("metrics") else {}
        r["citation"] = f"{r['title_id']}@{r['timecode']}"
    nxt = _token(json.dumps(key(page[-1]))) if len(rows) > page_size else None
    return {"items": page, "next_page_token": nxt, "index_version": data.index_version()}
