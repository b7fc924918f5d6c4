"""`prism serve`: the HTTP API (`/v1`, OpenAPI at `/v1/openapi.json`) and the title viewer.

- Errors are RFC 9457 problem+json with one-line `detail`; no stack trace ever leaves the server
  (an unexpected error is logged with an id and answered 500 with that id).
- API keys (read scope) from the settings (`PRISM_API_KEYS`) or AWS Secrets Manager
  (`PRISM_API_KEYS_SECRET`): `X-API-Key`, `Authorization: Bearer`, or the viewer's cookie (set by
  `/login`). No key configured: the API is open, and `prism serve` says so. `/v1/health` is open.
  Keys are never logged.
- CORS origins from `PRISM_API_CORS_ORIGINS`.
- Every JSON response names the `index_version` it was answered from.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .data import BadRequest, Data, NotFound, Unavailable

log = logging.getLogger("prism.serving")
API_VERSION = "1.0"
KEY_COOKIE = "prism_api_key"
OPEN_PATHS = ("/v1/health", "/login", "/static/", "/favicon.ico")


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str):
        self.status, self.title, self.detail = status, title, detail


def problem(status: int, title: str, detail: str, instance: str | None = None) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": " ".join(str(detail).split())[:500]}
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def load_keys(settings) -> tuple[str, ...]:
    """The read keys: settings, or a Secrets Manager secret (`{"keys": [...]}` or a comma list)."""
    keys = tuple(settings.api_keys)
    if settings.api_keys_secret:
        import boto3

        raw = boto3.client("secretsmanager", region_name=settings.s3_region).get_secret_value(SecretId=settings.api_keys_secret)["SecretString"]
        try:
            keys += tuple(json.loads(raw)["keys"])
        except (ValueError, KeyError, TypeError):
            keys += tuple(k.strip() for k in raw.split(",") if k.strip())
    return keys


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization") or ""
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key or request.cookies.get(KEY_COOKIE)


def query_int8(settings, env=None) -> bool:
    """Whether the server's query encoder runs int8 (core/text_onnx.py `int8`: ~2.5x less CPU per query, cosine >= 0.99
    with float32): `PRISM_TEXT_QUERY_INT8` (1/0) if set, else the profile's `models.text.query_int8` (then
    `profile_overrides`); default off. Needs the onnxruntime engine."""
    import os

    from ..settings import profile_yaml

    raw = (os.environ if env is None else env).get("PRISM_TEXT_QUERY_INT8", "").strip().lower()
    if raw:
        if raw not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"PRISM_TEXT_QUERY_INT8={raw[:20]!r}: use 1 or 0")
        return raw in ("1", "true", "yes", "on")
    over = ((settings.profile_overrides or {}).get("models") or {}).get("text") or {}
    if "query_int8" in over:
        return bool(over["query_int8"])
    return bool((((profile_yaml(settings.profile).get("models") or {}).get("text")) or {}).get("query_int8", False))


def query_embedder(settings):
    """The server's query encoder: the profile's text model and engine (int8 when `query_int8`), batched and cached
    (`QueryEmbedder`). TextModelError (one line) when it cannot be loaded."""
    from ..core.text_embedding import QueryEmbedder, TextModelError, load_text_embedder, with_engine
    from .data import text_model_engine, text_model_source

    base, engine = load_text_embedder(text_model_source(settings)), text_model_engine(settings)
    if query_int8(settings):
        if engine != "onnxruntime":
            raise TextModelError(base.source, f"models.text.query_int8 needs the onnxruntime engine, not {engine!r}")
        from ..core.text_onnx import OnnxTextEmbedder

        return QueryEmbedder(OnnxTextEmbedder(base, int8=True))
    return QueryEmbedder(with_engine(base, engine))


def _one_blas_thread() -> None:
    """The BLAS of a serving process runs on the request's own thread: query batches are small, and OpenBLAS's worker
    threads spin while they wait, taking the cores the index reads need (measured: benchmarks/search_load.py)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover  (an image without it keeps the BLAS default)
        return
    threadpool_limits(limits=1, user_api="blas")


class Authenticate:
    """API keys and the last-resort error answer, as a plain ASGI middleware (Starlette's `@app.middleware("http")`
    wraps every request in a second task and a streamed body: measurable CPU per search under load)."""

    def __init__(self, app, keys: tuple[str, ...]):
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        path = scope["path"]
        preflight = request.method == "OPTIONS" and "access-control-request-method" in request.headers  # CORS answers it; it never carries a key
        if self.keys and not preflight and not any(path == p or (p.endswith("/") and path.startswith(p)) for p in OPEN_PATHS):
            presented = _presented_key(request)
            if not presented or not any(hmac.compare_digest(presented.encode(), k.encode()) for k in self.keys):
                if not path.startswith("/v1/") and request.method == "GET":
                    from urllib.parse import quote

                    query = scope.get("query_string", b"").decode("latin-1")
                    target = path + (f"?{query}" if query else "")
                    return await RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)(scope, receive, send)
                return await problem(401, "Unauthorized", "a valid API key is required (X-API-Key or Authorization: Bearer)")(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:  # noqa: BLE001  (last resort: never a trace in a response)
            incident = uuid.uuid4().hex[:12]
            log.exception("request %s %s failed (incident %s)", request.method, path, incident)
            if not started:
                await problem(500, "Internal Server Error", f"the server could not answer (incident {incident})")(scope, receive, send)


def create_app(settings=None, *, data: Data | None = None, embedder=None, keys: tuple[str, ...] | None = None) -> FastAPI:
    from ..settings import PrismSettings

    settings = settings or PrismSettings.from_env()
    if data is None:
        if embedder is None:
            embedder = query_embedder(settings)
        _one_blas_thread()
        data = Data(settings, embedder=embedder)
    keys = load_keys(settings) if keys is None else keys
    app = FastAPI(title="Prism API", version=API_VERSION, openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None,
                  description="Prism's cross-title index: titles, timelines, WebVTT tracks, media, search (lexical / semantic / "
                  "hybrid, by frame, A then B), RAG context and the QC events feed. Every response names its `index_version`. "
                  "Errors are application/problem+json.")
    app.state.data = data
    app.state.settings = settings
    app.state.keys = keys

    if settings.api_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.api_cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type", "Range"], expose_headers=["Content-Range", "Accept-Ranges"])

    app.add_middleware(Authenticate, keys=keys)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error"), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        return problem(400, "Bad Request", f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", "invalid request"))

    @app.exception_handler(Problem)
    async def prism_problem(request: Request, exc: Problem):
        return problem(exc.status, exc.title, exc.detail)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return problem(404, "Not Found", str(exc))

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable):
        return problem(503, "Service Unavailable", str(exc))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return problem(400, "Bad Request", str(exc))

    @app.get("/v1/health", tags=["meta"], summary="Liveness and the index's revision (no key needed)")
    def health():
        return {"status": "ok", "index_version": data.index_version(), "api_version": API_VERSION}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    from .api_reports import router as reports_router
    from .api_search import router as search_router
    from .api_titles import router as titles_router
    from .days import router as days_router
    from .viewer import router as viewer_router

    app.include_router(titles_router)
    app.include_router(search_router)
    app.include_router(reports_router)
    app.include_router(days_router)
    app.include_router(viewer_router)
    return app
