"""`prism export` (a title's whole index into a folder) and `prism search` (moments matching a text)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import err, fail, out, resources, settings_or_fail


def incomplete(catalog, artifacts, graph, title_id: str, rows) -> list[str]:
    """Why a title's index is not complete: a signal whose latest run failed or never finished, and the
    exported outputs that are missing (outputs of a step skipped for this title and everything downstream,
    e.g. the pictures of an audio-only delivery, are not expected: `graph` is the TitleGraph).
    `rows` are the exported per-title assets (introspect.export_plan)."""
    from ..core.artifacts import ArtifactStore

    latest = {r.signal: r for r in catalog.signal_runs(title_id)}  # ordered by id: the last run of each wins
    problems = [f"{sig} {'did not finish' if r.status == 'started' else 'failed'}" + (f" ({r.error[:120]})" if r.error else "")
                for sig, r in latest.items() if r.status in ("failed", "started")]
    expected = graph.expected({sig for sig, r in latest.items() if r.status == "skipped"})
    missing = [row.export for row in rows if row.key in expected and not artifacts.exists(ArtifactStore.base_key(row.key, title_id))]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    return problems


def season_entry(artifacts, title_id: str) -> dict | None:
    """The title's row of its season's season_structure (intro, recap), with the season key; None outside a series
    or before the season was computed."""
    from ..core.artifacts import ArtifactStore

    series = (artifacts.read(ArtifactStore.base_key("source_video", title_id)) or {}).get("series")
    base = ArtifactStore.base_key("season_structure", series["season_key"], kind="seasons") if series else None
    if base is None or not artifacts.exists(base):
        return None
    doc = artifacts.read(base)
    row = next((e for e in doc.get("episodes") or [] if e["title_id"] == title_id), None)
    return {"schema_version": doc.get("schema_version"), "season_key": doc["season_key"], "series": series, "episode": row,
            "pending": title_id in (doc.get("pending") or []), "producer": doc.get("producer")}


def export(
    title_id: str = typer.Argument(..., help="Title id"),
    to: Path = typer.Option(..., "--to", help="Destination folder (created; must not exist or be empty)"),
    partial: bool = typer.Option(False, "--partial", help="Export what exists even when a signal failed or is missing"),
):
    """Write a title's whole index (title.json and every signal) to a new folder: complete or not at all.
    A title whose latest processing failed or did not finish is refused (--partial exports what exists).
    The files are written to a temporary folder beside it and moved into place when complete."""
    from ..catalog import connect
    from ..core.artifacts import ArtifactStore, encode
    from ..core.domain import all_signals, load_domains
    from ..core.store import LocalStore, StoreError
    from ..core.title_graph import TitleGraph
    from ..definitions import build_definitions
    from ..deliveries.layout import DeliveryError, validate_title_id
    from ..introspect import export_plan

    try:
        validate_title_id(title_id)
    except DeliveryError as exc:
        fail(str(exc))
    settings = settings_or_fail()
    rows = export_plan(build_definitions(settings))
    artifacts = resources(settings)["storage"].artifacts()
    if not artifacts.exists(ArtifactStore.base_key("source_video", title_id)):
        fail(f"title {title_id!r} has no source_video artifact under {settings.artifact_root} (run `prism process` first)")
    graph = TitleGraph.from_signals(all_signals(load_domains(settings.domains)))
    problems = incomplete(connect(settings.catalog_url), artifacts, graph, title_id, rows)
    if problems and not partial:
        fail(f"title {title_id} is incomplete: {'; '.join(problems)}. Process it again (prism process, a backfill), "
             "or export what exists with --partial")
    for line in problems:
        err.print(f"[yellow]warning: {line}[/]", highlight=False)
    final = to.expanduser().resolve()
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        fail(f"{final} exists and is not an empty folder: export into a new one")
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    dest = LocalStore(tmp)
    written = []
    try:
        for row in rows:
            base, filename = ArtifactStore.base_key(row.key, title_id), row.export
            if not artifacts.exists(base):
                continue
            dest.put_bytes(filename, encode(artifacts.read(base))[1])
            written.append(filename)
            for name, key in artifacts.bundle_files(base).items():
                dest.put_bytes(name, artifacts.store.get_bytes(key))
                written.append(name)
        season = season_entry(artifacts, title_id)
        if season is not None:
            dest.put_bytes("season.json", encode(season)[1])
            written.append("season.json")
        if final.exists():
            final.rmdir()
        tmp.rename(final)
    except (StoreError, OSError) as exc:
        fail(f"export of {title_id} failed, nothing written to {final}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.print(f"exported {title_id} to {final}: {', '.join(written)}", highlight=False)


def search(
    title_id: str = typer.Argument(..., help="Title id"),
    query: str = typer.Argument(..., help="Text to look for, e.g. 'a rabbit in a meadow'"),
    top: int = typer.Option(5, "--top", min=1, help="How many moments to list"),
    profile: Optional[str] = typer.Option(None, "--profile", help="dev (default) or prod: the CLIP model to encode the query with"),
):
    """Find the moments of a title that best match a text, with the CLIP text encoder against its
    embeddings (cosine similarity). The query must use the model that made the embeddings."""
    import numpy as np

    from ..core.artifacts import ArtifactStore
    from ..deliveries.layout import DeliveryError, validate_title_id
    from ..visual.clip import ClipLoadError

    try:
        validate_title_id(title_id)
    except DeliveryError as exc:
        fail(str(exc))
    settings = settings_or_fail(**({"profile": profile} if profile else {}))
    res = resources(settings)
    arts = res["storage"].artifacts()
    base = ArtifactStore.base_key("embeddings", title_id)
    if not arts.exists(base):
        fail(f"title {title_id!r} has no embeddings (run `prism process` first)")
    emb = arts.read(base)
    made_by = (emb.attrs.get("producer") or {}).get("model") or {}
    try:
        model = res["clip"].get()
    except ClipLoadError as exc:
        fail(str(exc))
    mine = {k: model.info.get(k) for k in ("model", "weights")}
    theirs = {k: made_by.get(k) for k in ("model", "weights")}
    if mine != theirs:
        fail(f"embeddings of {title_id} were made by {theirs['model']}/{theirs['weights']}, the query model is {mine['model']}/{mine['weights']}: use the same profile")
    if not model.info.get("weights_trained"):
        err.print("[yellow]warning: random-init CLIP weights (dev profile): similarities are not meaningful[/]", highlight=False)
    q = model.encode_text([query])[0]
    m = np.stack(emb["embedding"].to_numpy())
    sims = m @ q
    order = np.argsort(-sims)[:top]
    table = Table(title=f"{title_id}: best matches for {query!r}")
    for col in ("rank", "t_s", "frame", "shot", "kind", "cosine"):
        table.add_column(col)
    for rank, i in enumerate(order):
        r = emb.iloc[int(i)]
        table.add_row(str(rank), f"{r['t_s']:.2f}", str(int(r["frame"])), str(int(r["shot_index"])), r["kind"], f"{sims[i]:.4f}")
    out.print(table)
