"""The title viewer and the catalogue, served by the API process: server-rendered HTML and a little
vanilla JavaScript (static/viewer.js), no build step. Pages: `/` (titles + search box), `/search`
(hits that open the viewer at their moment), `/titles/<id>` (player with the VTT tracks, the
timeline lanes where a click seeks, the QC verdict with its reasons and pictures, posters,
localization), `/login` (sets the API-key cookie when keys are configured)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..index.backend import Cond
from ..index.search import Query
from .data import NotFound, check_title_id

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent / "static"
E = html.escape
VERDICT = {"pass": ("#1e7d32", "PASS"), "warn": ("#b26a00", "WARN"), "fail": ("#c62828", "FAIL")}


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{E(title)} · Prism</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/viewer.css"></head>
<body><header><a href="/" class="brand">Prism</a> <form action="/search" method="get" class="search"><input name="q" placeholder="Search speech, subtitles and on-screen text in every title" aria-label="search" maxlength="500"><button>Search</button></form></header>
<main>{body}</main></body></html>""")


def verdict_badge(v: str | None) -> str:
    colour, label = VERDICT.get(v or "", ("#555", (v or "no QC").upper()))
    return f'<span class="badge" style="background:{colour}">{E(label)}</span>'


@router.get("/static/{name}")
def static(name: str):
    files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    if name not in files:
        raise NotFound("no such file")
    kind = {"js": "text/javascript", "css": "text/css"}.get(name.rsplit(".", 1)[-1], "application/octet-stream")
    return Response(files[name].read_bytes(), media_type=kind, headers={"Cache-Control": "max-age=300"})


@router.get("/login")
def login_form(next: str = "/"):
    return page("Sign in", f"""<h1>Sign in</h1><p>This Prism server needs an API key (ask the platform team).</p>
<form method="post" action="/login"><input type="hidden" name="next" value="{E(next)}"><input type="password" name="key" aria-label="API key" placeholder="API key" required> <button>Open</button></form>""")


@router.post("/login")
def login(request: Request, key: str = Form(..., max_length=512), next: str = Form("/", max_length=512)):
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie("prism_api_key", key, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


@router.get("/", response_class=HTMLResponse)
def catalogue(request: Request):
    data = request.app.state.data
    rows = sorted(data.backend.select("titles", [], limit=1_000_000), key=lambda r: (r.get("delivery_date") or "", r["title_id"]), reverse=True)
    trs = "".join(
        f"<tr><td><a href='/titles/{quote(r['title_id'])}'>{E(r.get('name') or r['title_id'])}</a><div class='sub'>{E(r['title_id'])}</div></td>"
        f"<td>{verdict_badge(r.get('qc_verdict'))}<div class='sub'>{E('; '.join(r.get('qc_reasons') or [])[:160])}</div></td>"
        f"<td>{E(r.get('delivery_date') or '')}</td><td>{E(', '.join(r.get('languages') or []) or '—')}</td>"
        f"<td>{E(r.get('series_id') or '')}{' S%s E%s' % (r.get('season'), r.get('episode')) if r.get('series_id') else ''}</td>"
        f"<td>{_dur(r.get('duration_s'))}</td></tr>" for r in rows)
    body = (f"<h1>Titles <span class='sub'>({len(rows)} in the index)</span></h1>"
            "<table class='list'><thead><tr><th>Title</th><th>QC verdict</th><th>Delivered</th><th>Languages</th><th>Series</th><th>Length</th></tr></thead>"
            f"<tbody>{trs or '<tr><td colspan=6>No title has been indexed yet: process a title (prism process / the daemon).</td></tr>'}</tbody></table>")
    return page("Titles", body)


def _dur(s) -> str:
    if s is None:
        return "—"
    s = int(round(float(s)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", mode: str = "hybrid"):
    data = request.app.state.data
    q = q.strip()[:500]
    if not q:
        return RedirectResponse("/", status_code=303)
    if mode not in ("hybrid", "lexical", "semantic"):
        mode = "hybrid"
    hits, notes = data.searcher.search(Query(text=q, mode=mode, top_k=30))
    items = "".join(
        f"<li><a href='/titles/{quote(h.title_id)}?t={h.start_s:.2f}'><img src='/v1/titles/{quote(h.title_id)}/keyframes/{h.unit_index if h.unit_index is not None else data.searcher.unit_at(h.title_id, (h.start_s + h.end_s) / 2)}.jpg' alt='' loading='lazy' onerror=\"this.style.visibility='hidden'\">"
        f"<b>{E(h.title_id)}</b> at {E(h.timecode)}</a> <span class='chan'>{E(h.channel)}</span> <span class='score'>score {h.score:.2f}</span>"
        f"<div>{E(h.text or '')}</div><div class='sub'>{E(_explain(h.explanation))}</div></li>" for h in hits)
    note = "".join(f"<p class='note'>{E(n)}</p>" for n in notes)
    body = f"<h1>Search: “{E(q)}”</h1>{note}<ol class='hits'>{items or '<li>No moment matches well enough.</li>'}</ol>"
    return page(f"Search {q}", body)


def _explain(x: dict) -> str:
    parts = [f"{k} {v:.2f}" for k, v in x.items() if k in ("lexical", "semantic") and isinstance(v, (int, float))]
    return "matched by " + ", ".join(parts) if parts else ""


@router.get("/titles/{title_id}", response_class=HTMLResponse)
def viewer(request: Request, title_id: str, t: float = 0.0):
    data = request.app.state.data
    row = data.title_row(check_title_id(title_id))
    qc = data.read("qc", title_id) or {}
    loc = data.read("localization", title_id) or {}
    summary = json.loads(row.get("summary") or "{}")
    tid = quote(title_id)
    tracks = "".join(f'<track kind="subtitles" label="{E(s["label"])}" srclang="{E((s.get("language") or "und").split("-")[0])}" src="/v1/titles/{tid}/tracks/subtitles-{quote(s["label"])}.vtt">'
                     for s in summary.get("subtitle_tracks") or [] if s.get("label") and s.get("cues"))
    langs = sorted({r["language"] for r in data.backend.select("speech", [Cond("title_id", "=", title_id)], ["language"], limit=100_000) if r.get("language")})
    tracks += "".join(f'<track kind="captions" label="Transcript ({E(lang)})" srclang="{E(lang)}" src="/v1/titles/{tid}/tracks/transcript-{quote(lang)}.vtt">' for lang in langs)
    tracks += f'<track kind="chapters" label="Chapters" src="/v1/titles/{tid}/tracks/chapters.vtt" default>'
    has_media = bool(data.bundle_names("proxy", title_id))
    video = (f'<video id="player" controls preload="metadata" crossorigin="anonymous" src="/v1/titles/{tid}/media">{tracks}</video>' if has_media
             else "<p class='note'>No playable proxy for this title yet (asset <code>proxy</code>).</p>")
    events = sorted(qc.get("events") or [], key=lambda e: ({"fail": 0, "warn": 1}.get(e.get("severity"), 2), e.get("start_s", 0)))
    ev_html = "".join(
        f"<li class='sev-{E(e.get('severity', ''))}'><a href='#' data-seek='{float(e.get('start_s') or 0):.2f}'>"
        f"<img src='/v1/titles/{tid}/keyframes/{data.searcher.unit_at(title_id, (float(e.get('start_s') or 0) + float(e.get('end_s') or 0)) / 2) or 0}.jpg' alt='' loading='lazy' onerror=\"this.style.display='none'\">"
        f"<b>{E(e.get('severity', '').upper())}</b> {E(e.get('kind', ''))} at {_dur(e.get('start_s'))}</a><div>{E(e.get('detail') or '')}</div></li>"
        for e in events if e.get("severity") in ("warn", "fail"))
    reasons = "".join(f"<li>{E(r)}</li>" for r in qc.get("reasons") or [])
    posters = "".join(f"<img src='/v1/titles/{tid}/posters/{quote(n.split('/')[-1])}' alt='poster' loading='lazy'>"
                      for n in data.bundle_names("posters", title_id) if n.endswith(".jpg"))
    audio = "".join(f"<tr><td>{E(str(a.get('track')))}</td><td>{E(a.get('language') or '—')}</td><td>{E(a.get('role') or '')}</td>"
                    f"<td>{E(_offset((a.get('sync') or {}).get('offset_ms')))}</td><td class='sub'>{E('; '.join(a.get('role_evidence') or [])[:200])}</td></tr>"
                    for a in loc.get("audio_tracks") or [])
    subs = "".join(f"<tr><td>{E(s.get('label') or s.get('track') or '')}</td><td>{E(s.get('language') or '—')}</td><td>{E(str(s.get('cues') or 0))} cues</td>"
                   f"<td class='sub'>{E('; '.join(str(f.get('detail') or f.get('kind')) for f in (s.get('findings') or []))[:300])}</td></tr>"
                   for s in loc.get("subtitle_tracks") or [])
    body = f"""<h1>{E(row.get('name') or title_id)} {verdict_badge(row.get('qc_verdict'))}</h1>
<div class="sub">{E(title_id)} · delivered {E(row.get('delivery_date') or '—')} · {_dur(row.get('duration_s'))} · {E(', '.join(row.get('languages') or []) or 'no language')}</div>
<section class="player">{video}<div id="now" class="sub"></div></section>
<section><h2>Timeline <span class="sub">(click a lane to seek)</span></h2><div id="timeline" data-title="{E(title_id)}" data-duration="{float(row.get('duration_s') or 0)}" data-start="{max(float(t), 0.0):.2f}"></div></section>
<section><h2>QC verdict {verdict_badge(qc.get('verdict'))}</h2><ul class="reasons">{reasons or '<li>No reason: the title passed.</li>'}</ul>
<ul class="events">{ev_html}</ul></section>
<section><h2>Localization</h2><table class="list"><thead><tr><th>Audio track</th><th>Language</th><th>Role</th><th>Offset vs original</th><th>Evidence</th></tr></thead><tbody>{audio or '<tr><td colspan=5>No audio track.</td></tr>'}</tbody></table>
<table class="list"><thead><tr><th>Subtitle track</th><th>Language</th><th>Cues</th><th>Findings</th></tr></thead><tbody>{subs or '<tr><td colspan=4>No subtitle track.</td></tr>'}</tbody></table></section>
<section><h2>Posters</h2><div class="posters">{posters or '<p>No poster.</p>'}</div></section>
<script src="/static/viewer.js"></script>"""
    return page(row.get("name") or title_id, body)


def _offset(ms) -> str:
    return "—" if ms is None else f"{float(ms):+.0f} ms"
