"""`release`: whether a title can ship, as the last step of its run (see the package docstring)."""

from __future__ import annotations

from dagster import AssetCheckSeverity, MetadataValue

from ..core import checks
from ..core.signal import Output, Result, Signal, SignalContext
from ..qc.checks import PICTURES, verdict_not_fail

ASSET = "release"
SCHEMA_VERSION = "1.0"
CODE_VERSION = "release-1"


RELEASE_RULES = (
    checks.CheckRule("title_releasable", "Fails (ERROR, blocking) for a title that cannot ship: its QC verdict is fail. It runs last, so "
                     "everything else of the title is materialized, and the title's run ends failed with the reason.", verdict_not_fail,
                     severity=AssetCheckSeverity.ERROR, blocking=True),
)


def compute_release(sc: SignalContext, qc: dict, search_index: dict) -> Result:
    verdict = qc.get("verdict")
    reasons = list(qc.get("reasons") or [])
    doc = {"schema_version": SCHEMA_VERSION, "title_id": sc.title_id, "releasable": verdict != "fail", "verdict": verdict,
           "reasons": reasons, "qc_profile": qc.get("profile"), "index_version": (search_index or {}).get("index_version"),
           "producer": {"tool": "prism-release", "code_version": CODE_VERSION, "profile": sc.profile.name, "model": None}}
    checked = None
    if not doc["releasable"]:
        sc.log.warning(f"{sc.title_id}: cannot ship: QC verdict fail: {'; '.join(reasons) or 'no reason recorded'}")
        pictures = qc_pictures(sc)
        checked = {**doc, PICTURES: pictures} if pictures is not None else None
    return Result(doc, check_value=checked, metadata={"releasable": doc["releasable"], "verdict": verdict,
                                                      "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "none")})


def qc_pictures(sc: SignalContext):
    """The pictures of the title's latest `qc` materialization (the reasons' plots, the offending frames), for the failed
    `title_releasable` check, where a run that cannot ship leads; None when there are none (or no instance to ask)."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterError

    instance = getattr(getattr(sc, "context", None), "instance", None)
    if instance is None:
        return None
    try:
        recs = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey("qc"), asset_partitions=[sc.title_id]), limit=1).records
    except DagsterError as exc:
        sc.log.warning(f"{sc.title_id}: no QC pictures for the release check ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return None
    mat = recs[0].asset_materialization if recs else None
    return mat.metadata.get(PICTURES) if mat is not None else None


RELEASE = Signal(
    name=ASSET, domain="release", code_version=CODE_VERSION, inputs=("qc", "search_index"), compute=compute_release,
    description="The title's last step: releasable (QC verdict not fail) or not, with the verdict and reasons. Its blocking check "
    "title_releasable fails the title's run (after everything else was materialized) when the title cannot ship.",
    outputs=(Output(ASSET, SCHEMA_VERSION, "titles/<title_id>/release.json", kinds=("json",), rules=RELEASE_RULES, export="release.json"),),
)
