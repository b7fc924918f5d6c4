"""`release`: whether a title can ship, as the last step of its run (see the package docstring)."""

from __future__ import annotations

from dagster import AssetCheckSeverity, MetadataValue

from ..core import checks
from ..core.signal import Output, Result, Signal, SignalContext
from ..qc.checks import verdict_not_fail

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
    if not doc["releasable"]:
        sc.log.warning(f"{sc.title_id}: cannot ship: QC verdict fail: {'; '.join(reasons) or 'no reason recorded'}")
    return Result(doc, metadata={"releasable": doc["releasable"], "verdict": verdict,
                                 "reasons": MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "none")})


RELEASE = Signal(
    name=ASSET, domain="release", code_version=CODE_VERSION, inputs=("qc", "search_index"), compute=compute_release,
    description="The title's last step: releasable (QC verdict not fail) or not, with the verdict and reasons. Its blocking check "
    "title_releasable fails the title's run (after everything else was materialized) when the title cannot ship.",
    outputs=(Output(ASSET, SCHEMA_VERSION, "titles/<title_id>/release.json", kinds=("json",), rules=RELEASE_RULES, export="release.json"),),
)
