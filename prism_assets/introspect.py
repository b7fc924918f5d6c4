"""What the built Definitions say about themselves: the asset table (domain, step, partitions, code
and schema versions, pool, inputs, export file, checks), the export plan of `prism export`, the
jobs, schedules and sensors. The docs tables (`prism_assets.docgen`) and the CLI read this, so
neither can drift from the code."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, Definitions

from .core.policy import DOMAIN_TAG, PARTITIONS_TAG, STEP_TAG


def _meta(node, key: str):
    v = (node.metadata or {}).get(key)
    return getattr(v, "value", v)


@dataclass(frozen=True)
class AssetRow:
    key: str
    domain: str
    step: str
    partitions: str
    code_version: str | None
    schema_version: str | None
    artifact: str | None
    pool: str | None
    inputs: tuple[str, ...]
    export: str | None
    checks: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class CheckRow:
    asset: str
    name: str
    blocking: bool
    partitioned: bool
    description: str


def _toposorted(graph) -> list[AssetKey]:
    keys = set(graph.get_all_asset_keys())
    order, done = [], set()

    def visit(k):
        if k in done:
            return
        done.add(k)
        for p in sorted(graph.get(k).parent_keys, key=lambda x: x.to_user_string()):
            if p in keys:
                visit(p)
        order.append(k)

    for k in sorted(keys, key=lambda x: x.to_user_string()):
        visit(k)
    return order


def _nodes(defs: Definitions):
    """(key, graph node, AssetsDefinition) of every asset, parents before children (ties by name)."""
    graph = defs.resolve_asset_graph()
    return [(key, graph.get(key), graph.assets_def_for_key(key)) for key in _toposorted(graph)], graph


def asset_rows(defs: Definitions) -> list[AssetRow]:
    """Every asset, parents before children (ties by name)."""
    nodes, graph = _nodes(defs)
    rows = []
    for key, node, ad in nodes:
        tags = node.tags or {}
        rows.append(AssetRow(
            key=key.to_user_string(), domain=tags.get(DOMAIN_TAG) or node.group_name, step=tags.get(STEP_TAG) or ad.op.name,
            partitions=tags.get(PARTITIONS_TAG) or "-", code_version=node.code_version, schema_version=_meta(node, "prism/schema_version"),
            artifact=_meta(node, "prism/artifact"), pool=getattr(ad.op, "pool", None) if ad.is_executable else None,
            inputs=tuple(p.to_user_string() for p in sorted(node.parent_keys, key=lambda x: x.to_user_string())),
            export=_meta(node, "prism/export"),
            checks=tuple(sorted(c.name for c in graph.get_check_keys_for_assets({key}))),
            description=(node.description or "").strip(),
        ))
    return rows


def check_rows(defs: Definitions) -> list[CheckRow]:
    return [CheckRow(asset=key.to_user_string(), name=spec.name, blocking=spec.blocking, partitioned=spec.partitions_def is not None,
                     description=spec.description or "")
            for key, _, ad in _nodes(defs)[0] for spec in sorted(ad.check_specs, key=lambda s: s.name) if spec.asset_key == key]


def export_plan(defs: Definitions) -> list[AssetRow]:
    """The exported per-title assets, parents first (`row.export` is the file name in an export)."""
    return [r for r in asset_rows(defs) if r.export and r.partitions == "titles"]


def automation(defs: Definitions) -> dict[str, list[tuple[str, str]]]:
    """Jobs, schedules and sensors with their descriptions."""
    repo = defs.get_repository_def()
    jobs = [(j.name, (j.description or "").strip()) for j in repo.get_all_jobs() if not j.name.startswith("__")]
    schedules = [(s.name, f"`{s.cron_schedule}` {s.execution_timezone or 'UTC'}: {(s.description or '').strip()}") for s in repo.schedule_defs]
    sensors = [(s.name, (s.description or "").strip()) for s in repo.sensor_defs]
    return {"jobs": sorted(jobs), "schedules": sorted(schedules), "sensors": sorted(sensors)}
