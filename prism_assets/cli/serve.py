"""`prism serve`: the HTTP API and the title viewer (uvicorn); `prism index-remove`: a title's index rows."""

from __future__ import annotations

import typer

from .common import err, fail, out, settings_or_fail


def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 in a container)"),
          port: int = typer.Option(8080, "--port", min=1, max=65535),
          workers: int = typer.Option(1, "--workers", min=1, max=32, help="uvicorn worker processes")):
    """Serve the API (/v1, OpenAPI at /v1/openapi.json) and the viewer (/) over the index and the artifacts."""
    import uvicorn

    settings = settings_or_fail()
    if not settings.api_keys and not settings.api_keys_secret:
        err.print("[yellow]warning: no API key configured (PRISM_API_KEYS / PRISM_API_KEYS_SECRET): the API is open to anyone who reaches "
                  f"{host}:{port}[/]", highlight=False)
    from ..serving.app import create_app

    try:
        app = create_app(settings)  # also the check that it starts (index, model, keys), in this process
    except Exception as exc:  # noqa: BLE001  (one line: the index, the model, the secret)
        fail(f"cannot start the API: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    out.print(f"Prism viewer: http://{host}:{port}/   API: http://{host}:{port}/v1/docs   index: {settings.index_location}", highlight=False)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    else:  # worker processes build the app from the same environment
        uvicorn.run("prism_assets.serving.app:create_app", factory=True, host=host, port=port, log_level="warning", access_log=False, workers=workers)


def index_remove(title_id: str = typer.Argument(..., help="Title id")):
    """Remove a title's rows from the search index (every table)."""
    from ..index.backend import LanceBackend
    from ..serving.data import BadRequest, check_title_id

    try:
        check_title_id(title_id)
    except BadRequest as exc:
        fail(str(exc))
    removed = LanceBackend.from_settings(settings_or_fail()).remove_title(title_id)
    out.print(f"removed {sum(removed.values())} rows of {title_id}: " + ", ".join(f"{k} {v}" for k, v in removed.items()), highlight=False)
