"""`delivery_manifest`: the daily-partitioned list of each day's deliveries."""

from datetime import date

import pandas as pd
from dagster import AssetCheckSeverity, Enum, EnumValue, Field, MetadataValue

from ..core import checks
from ..core.signal import DAILY, Output, Result, Signal, SignalContext
from ..partitions import TAG_MANIFEST_RUN, TAG_RERUN, TITLES_PARTITIONS_NAME
from .registry import register_deliveries
from .scan import scan_dates

ASSET = "delivery_manifest"
MANIFEST_CODE_VERSION = "manifest-1"
MANIFEST_SCHEMA_VERSION = "1.0"
COLUMNS = ["title_id", "delivery_date", "uri", "size_bytes", "etag", "processed"]

RULES = (
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
)


def compute(sc: SignalContext) -> Result:
    day = date.fromisoformat(sc.partition)
    instance = sc.context.instance
    rerun = (sc.context.op_config or {}).get("rerun")
    if rerun:  # the launch option wins over a tag; the fan-out reads the run's tag
        instance.add_run_tags(sc.run_id, {TAG_RERUN: rerun})
        sc.log.info(f"{day}: rerun = {rerun} (launch option)")
    store = sc.storage.deliveries()
    cat = sc.catalog
    found = scan_dates(store, day, day)
    register_deliveries(instance, store, cat, found)
    registered = set(instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    rows = [{
        "title_id": d.title_id,
        "delivery_date": d.delivery_date.isoformat(),
        "uri": store.uri_for(d.key),
        "size_bytes": int(d.size),
        "etag": d.etag,
        "processed": "source_video" in cat.outputs(d.title_id),
    } for d in found]
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"size_bytes": "int64", "processed": "bool"})
    checked = df.copy()
    checked.attrs["unregistered"] = int(sum(1 for t in df["title_id"] if t not in registered))
    sc.provenance = {"tool": "prism-deliveries", "code_version": MANIFEST_CODE_VERSION}
    runs = f"/runs?q%5B0%5D=tag%3A{TAG_MANIFEST_RUN.replace('/', '%2F')}%3D{sc.run_id}"
    return Result(df, check_value=checked, table=df, table_columns=["title_id", "size_bytes", "processed", "uri"],
                  metadata={"titles": len(df), "processed": int(df["processed"].sum()),
                            "summary": MetadataValue.md(f"{len(df)} title(s) delivered on {day}" if len(df) else "_no deliveries_"),
                            "title_runs": MetadataValue.url(runs)})


RERUN_OPTION = {"rerun": Field(
    Enum("PrismRerun", [EnumValue("stale", description="the titles not up to date for their delivery (the default)"),
                        EnumValue("all", description="every title of the date, up to date or not")]),
    is_required=False,
    description="Which of the date's titles the fan-out runs: stale (default) = those not up to date; all = every one. A launch "
    "option of one date (Materialize > Open launchpad); a backfill over dates takes no config: add the tag prism/rerun = all there.")}

DELIVERY_MANIFEST = Signal(
    name=ASSET, domain="deliveries", code_version=MANIFEST_CODE_VERSION, partitions=DAILY, compute=compute, config_schema=RERUN_OPTION,
    description="The titles delivered on one day (scan of `<delivery_root>/<date>/`), recorded in the catalog and "
    "registered as partitions. Materializing dates of this asset (one date, or a range as a backfill) makes the "
    "manifest_fanout_sensor run exactly those days' titles: by default those not up to date (rerun: stale). To re-run every "
    "title: the launch option rerun: all (Materialize > Open launchpad, config), or for a backfill over dates the tag prism/rerun = all "
    "(Materialize dialog: Tags, Add tags). What the fan-out did is "
    "on the manifest run (tag prism/fanout) and on the date's partition (an observation: N launched, M up to date).",
    outputs=(Output(ASSET, MANIFEST_SCHEMA_VERSION, "daily/<date>/delivery_manifest.parquet", kinds=("catalog",), rules=RULES),),
)
