"""Search across titles, "A then B", query by frame, and RAG context."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..index.backend import Cond
from ..index.search import CHANNELS, GROUPS, STRUCTURE_LABELS, Hit
from ..index.search import Query as SearchQuery
from .data import BadRequest, Data, check_title_id

router = APIRouter(prefix="/v1")
MAX_QUERY = 500
MAX_TOP_K = 100
MAX_IMAGE = 10 << 20

Channel = Literal["speech", "subtitles", "ocr", "visual"]
Label = Literal["intro", "recap", "opening_credits", "end_credits", "body"]


class Filters(BaseModel):
    titles: list[str] = Field(default_factory=list, max_length=1000, description="only these titles")
    series_id: str | None = Field(None, max_length=128)
    season: int | None = Field(None, ge=0, le=10_000)
    language: str | None = Field(None, max_length=16, description="the row's language (ISO 639-1)")
    qc_kinds: list[str] = Field(default_factory=list, max_length=50, description="only titles with QC events of these kinds")
    provider: str | None = Field(None, max_length=128, description="only titles of this provider")
    episode: int | None = Field(None, ge=0, le=100_000)
    title_language: str | None = Field(None, max_length=16, description="only titles having this language (audio, subtitles, on-screen)")
    structure: list[Label] = Field(default_factory=list, description="only moments inside these parts (e.g. intro)")
    exclude_structure: list[Label] = Field(default_factory=list, description="never moments inside these parts (e.g. end_credits)")
    start_s: float | None = Field(None, ge=0)
    end_s: float | None = Field(None, ge=0)


class SearchRequest(BaseModel):
    q: str = Field(..., min_length=1, max_length=MAX_QUERY)
    mode: Literal["hybrid", "lexical", "semantic"] = "hybrid"
    channels: list[Channel] = Field(default_factory=lambda: ["speech", "subtitles", "ocr"], min_length=1, max_length=4)
    filters: Filters = Field(default_factory=Filters)
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    min_score: float | None = Field(None, ge=0, le=1, description="default: the tuned threshold")
    group_by: Literal["unit", "scene", "title"] | None = None


class ThenRequest(BaseModel):
    a: str = Field(..., min_length=1, max_length=MAX_QUERY)
    b: str = Field(..., min_length=1, max_length=MAX_QUERY)
    within_s: float = Field(30.0, gt=0, le=3600)
    mode: Literal["hybrid", "lexical", "semantic"] = "hybrid"
    channels: list[Channel] = Field(default_factory=lambda: ["speech", "subtitles", "ocr"], min_length=1, max_length=4)
    filters: Filters = Field(default_factory=Filters)
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    min_score: float | None = Field(None, ge=0, le=1)


class RagRequest(BaseModel):
    q: str = Field(..., min_length=1, max_length=MAX_QUERY)
    k: int = Field(8, ge=1, le=50)
    filters: Filters = Field(default_factory=Filters)
    context_s: float = Field(15.0, ge=0, le=120, description="seconds of neighbouring speech/subtitles added around each hit")


def _query(text: str | None, mode: str, channels, f: Filters, top_k: int, min_score, group_by=None) -> SearchQuery:
    if f.start_s is not None and f.end_s is not None and f.end_s <= f.start_s:
        raise BadRequest("filters.end_s must be after filters.start_s")
    for t in f.titles:
        check_title_id(t)
    return SearchQuery(text=text, mode=mode, channels=tuple(channels), titles=tuple(f.titles), series_id=f.series_id, season=f.season,
                 language=f.language, qc_kinds=tuple(f.qc_kinds), provider=f.provider, episode=f.episode, title_language=f.title_language,
                 structure=tuple(f.structure), exclude_structure=tuple(f.exclude_structure),
                 start_s=f.start_s, end_s=f.end_s, top_k=top_k, min_score=min_score, group_by=group_by)


def hit_json(h: Hit, base: str) -> dict:
    return {"title_id": h.title_id, "channel": h.channel, "start_s": round(h.start_s, 3), "end_s": round(h.end_s, 3), "timecode": h.timecode,
            "citation": h.citation, "score": round(h.score, 4), "text": h.text, "language": h.language, "track": h.track,
            "structure": h.structure, "scene_index": h.scene_index, "unit_index": h.unit_index, "explanation": h.explanation,
            "viewer_url": f"{base}/titles/{h.title_id}?t={h.start_s:.2f}"}


def _data(request: Request) -> Data:
    return request.app.state.data


def _answer(request: Request, hits, notes: list[str], q: SearchQuery) -> JSONResponse:
    """The answer as a ready JSON response: its values are plain JSON types already, so FastAPI's generic encoder (about
    1 ms a search answer) is not needed."""
    data = _data(request)
    base = str(request.base_url).rstrip("/")
    return JSONResponse({"hits": [hit_json(h, base) for h in hits], "notes": notes, "mode": q.mode, "channels": list(q.channels),
            "min_score": q.min_score if q.min_score is not None else data.searcher.weights.min_score, "index_version": data.index_version()})


@router.post("/search", tags=["search"], summary="Search moments across titles (lexical / semantic / hybrid; channels; filters)")
def search(request: Request, body: SearchRequest):
    q = _query(body.q, body.mode, body.channels, body.filters, body.top_k, body.min_score, body.group_by)
    hits, notes = _data(request).searcher.search(q)
    return _answer(request, hits, notes, q)


@router.get("/search", tags=["search"], summary="Search (simple form): q, mode, channels (comma list), top_k, min_score, group_by")
def search_get(request: Request, q: str = Query(..., min_length=1, max_length=MAX_QUERY), mode: Literal["hybrid", "lexical", "semantic"] = "hybrid",
               channels: str = Query("speech,subtitles,ocr", max_length=100), top_k: int = Query(10, ge=1, le=MAX_TOP_K),
               min_score: float | None = Query(None, ge=0, le=1), group_by: Literal["unit", "scene", "title"] | None = None,
               title_id: str | None = Query(None, max_length=128), language: str | None = Query(None, max_length=16),
               series_id: str | None = Query(None, max_length=128)):
    chans = [c.strip() for c in channels.split(",") if c.strip()]
    bad = [c for c in chans if c not in CHANNELS]
    if bad:
        raise BadRequest(f"unknown channel {bad[0][:30]!r}: choose from {', '.join(CHANNELS)}")
    body = SearchRequest(q=q, mode=mode, channels=chans, top_k=top_k, min_score=min_score, group_by=group_by,
                         filters=Filters(titles=[title_id] if title_id else [], language=language, series_id=series_id))
    return search(request, body)


@router.post("/search/then", tags=["search"], summary="Moments where A is followed by B within N seconds (same title)")
def search_then(request: Request, body: ThenRequest):
    q = _query(body.a, body.mode, body.channels, body.filters, body.top_k, body.min_score)
    hits = _data(request).searcher.then(q, body.b, body.within_s)
    return _answer(request, hits, [], q)


@router.post("/search/frame", tags=["search"], summary="The shot a picture comes from (upload a JPEG/PNG, or name a title's unit)")
async def search_frame(request: Request, image: UploadFile | None = File(None), title_id: str | None = Form(None),
                       unit_index: int | None = Form(None), top_k: int = Form(5, ge=1, le=MAX_TOP_K), min_score: float | None = Form(None, ge=0, le=1),
                       exclude_title: str | None = Form(None, description="leave this title out (e.g. the one the frame comes from)")):
    data = _data(request)
    if image is not None:
        raw = await image.read(MAX_IMAGE + 1)
        if len(raw) > MAX_IMAGE:
            raise BadRequest(f"the image is larger than {MAX_IMAGE >> 20} MiB")
    elif title_id is not None and unit_index is not None:
        from .api_titles import keyframe

        resp = keyframe(request, title_id, unit_index)
        raw = resp.path.read_bytes() if hasattr(resp, "path") else resp.body
    else:
        raise BadRequest("send an image (multipart field `image`) or `title_id` + `unit_index`")
    q = SearchQuery(top_k=top_k + (5 if exclude_title else 0), min_score=data.searcher.weights.frame_min_score if min_score is None else min_score)
    try:
        hits = data.searcher.by_frame(raw, q)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if exclude_title:
        hits = [h for h in hits if h.title_id != exclude_title]
    q.top_k, q.mode, q.channels = top_k, "frame", ("frame",)
    return _answer(request, hits[:top_k], ["visual similarity by colour layout + dHash (no CLIP needed)"], q)


@router.post("/rag/context", tags=["search"], summary="Top chunks for a question, with citations `title_id@timecode`")
def rag_context(request: Request, body: RagRequest):
    data = _data(request)
    q = _query(body.q, "hybrid", ("speech", "subtitles", "ocr"), body.filters, body.k, None, "unit")
    hits, notes = data.searcher.search(q)
    chunks = []
    for h in hits:
        ctx = []
        for table in ("speech", "subtitles"):
            ctx += data.backend.select(table, [Cond("title_id", "=", h.title_id), Cond("end_s", ">", h.start_s - body.context_s),
                                              Cond("start_s", "<", h.end_s + body.context_s)], ["start_s", "end_s", "text", "timecode"], limit=200)
        ctx.sort(key=lambda r: r["start_s"])
        seen, lines = set(), []
        for r in ctx:
            if r["text"] not in seen:
                seen.add(r["text"])
                lines.append(r["text"])
        chunks.append({"citation": h.citation, "title_id": h.title_id, "start_s": round(h.start_s, 3), "end_s": round(h.end_s, 3),
                       "score": round(h.score, 4), "channel": h.channel, "text": h.text, "context": " ".join(lines)[:4000],
                       "structure": h.structure})
    return JSONResponse({"q": body.q, "chunks": chunks, "notes": notes, "index_version": data.index_version()})


__all__ = ["router", "GROUPS", "STRUCTURE_LABELS"]
