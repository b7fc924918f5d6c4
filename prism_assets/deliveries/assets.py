"""`delivery_manifest`: the daily-partitioned list of each day's deliveries."""


from datetime import date

import pandas as pd
from dagster import AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output, asset

from ..core import checks
from ..core.signals import default_freshness_policy
from ..partitions import TITLES_PARTITIONS_NAME, daily_partitions
from ..resources import CatalogResource, PrismStorage
from .scan import scan_dates
from .sensors import register_deliveries

ASSET = "delivery_manifest"
MANIFEST_SCHEMA_VERSION = "1.0"
COLUMNS = ["title_id", "delivery_date", "uri", "size_bytes", "etag", "processed"]

RULES = [
    checks.CheckRule(
        "one_delivery_per_title",
        "Each title appears at most once in a day's manifest.",
        lambda df: (not df["title_id"].duplicated().any(), {"rows": len(df), "duplicates": int(df["title_id"].duplicated().sum())}),
    ),
    checks.CheckRule(
        "titles_registered",
        "Every title in the manifest is a registered `titles` partition (so it can be materialized).",
        lambda df: (bool(df.attrs.get("unregistered", 0) == 0), {"unregistered": int(df.attrs.get("unregistered", 0))}),
    ),
    checks.CheckRule(
        "no_empty_files",
        "No delivered video is an empty (0-byte) file.",
        lambda df: (not (df["size_bytes"] == 0).any(), {"empty_files": int((df["size_bytes"] == 0).sum())}),
        severity=AssetCheckSeverity.WARN,
    ),
]


def _markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_no deliveries_"
    cols = ["title_id", "size_bytes", "processed", "uri"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


@asset(
    partitions_def=daily_partitions,
    group_name="deliveries",
    code_version="manifest-1",
    kinds={"catalog"},
    freshness_policy=default_freshness_policy(),
    check_specs=checks.specs(ASSET, RULES),
    metadata={"prism/schema_version": MANIFEST_SCHEMA_VERSION, "prism/artifact": "daily/<date>/delivery_manifest.parquet"},
    description="The titles delivered on one day (scan of <delivery_root>/<date>/), recorded in the catalog and "
    "registered as partitions. Backfilling this asset over a date range makes the manifest_fanout_sensor run "
    "exactly those days' titles.",
)
def delivery_manifest(context: AssetExecutionContext, storage: PrismStorage, catalog: CatalogResource):
    day = date.fromisoformat(context.partition_key)
    store = storage.deliveries()
    cat = catalog.get()
    found = scan_dates(store, day, day)
    _, new_titles = register_deliveries(context.instance, store, cat, found, only_changed=False)
    if new_titles:
        context.instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, new_titles)
    registered = set(context.instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    rows = []
    for d in found:
        rows.append(
            {
                "title_id": d.title_id,
                "delivery_date": d.delivery_date.isoformat(),
                "uri": store.uri_for(d.key),
                "size_bytes": int(d.size),
                "etag": d.etag,
                "processed": "source_video" in cat.outputs(d.title_id),
            }
        )
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"size_bytes": "int64", "processed": "bool"})
    df.attrs["unregistered"] = int(sum(1 for t in df["title_id"] if t not in registered))
    results = checks.evaluate(ASSET, RULES, df)
    df.attrs = {}
    yield Output(
        df,
        metadata={
            "titles": len(df),
            "processed": int(df["processed"].sum()),
            "preview": MetadataValue.md(_markdown(df.head(20))),
        },
    )
    yield from results
