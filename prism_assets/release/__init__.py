"""Release: the last step of a title's run, `release` per title: can the title ship?

    qc + search_index (everything the title's run makes before it) -> release

`release.json` says whether the title is releasable (its QC verdict is not fail) with the verdict and reasons. Its check
`title_releasable` is blocking with ERROR severity in every deployment: for a title that cannot ship, it fails after
everything else of the title was materialized (the index and the viewer show the failure), so the title's run ends
**failed** in the Runs list, with the reason in its `prism/qc_reason` tag, and the `release` partition of that title is
red in the Catalog. With `qc.gate: block` (prod) the QC gate already fails the run at `qc` and holds `search_index`
and `release` back; `index_title_job` (run by the index_after_qc_gate sensor) materializes both afterwards.
"""

from ..core.domain import Domain
from .assets import RELEASE

DOMAIN = Domain(
    name="release",
    description="Per title, the last step: releasable or not (the QC verdict), failing the title's run when it cannot ship.",
    signals=(RELEASE,),
)
