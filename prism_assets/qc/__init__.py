"""Content QC: `qc` per title from the passes' statistics (no decode) plus the events other signals
contribute, a verdict with reasons in the catalog; the daily `qc_report` (HTML + CSV + thumbnails)."""

from ..core.domain import Domain, DomainContext
from .assets import QC
from .daily import QC_REPORT, QC_REPORT_JOB, build_qc_report_job, build_qc_report_schedule

# The `qc:` profile section. Profiles (loudness + technical spec + severities) and default thresholds
# live in prism_assets/qc/profiles.yaml; a deployment picks the default profile, maps content providers
# (the delivery sidecar's `provider`) to profiles and may override thresholds (docs/schema.md, qc.json).
DEFAULTS = {
    "default": "ebu_r128",  # ebu_r128 | atsc_a85 | streaming (or a profile added under `profiles:`)
    "providers": {},  # e.g. {acme-us: atsc_a85, streamco: streaming}
    "thresholds": {},  # e.g. {black_min_s: 2.0, freeze_noise_db: -60, silence_noise_db: -60}
    "report_thumbnails_per_title": 6,
    "gate": "block",  # block | warn: a fail verdict fails the blocking check at qc (ERROR) or only warns there (then at `release`)
}


def _jobs(ctx: DomainContext) -> list:
    return [build_qc_report_job()]


def _schedules(ctx: DomainContext) -> list:
    return [build_qc_report_schedule(QC_REPORT_JOB)]


DOMAIN = Domain(
    name="qc",
    description="Content QC: per title, events (black, freeze, bars, slate, silence, loudness, technical, and what other signals "
    "contribute) and a verdict with reasons; per day, the QC report with thumbnails.",
    signals=(QC, QC_REPORT),
    defaults=DEFAULTS,
    jobs=_jobs,
    schedules=_schedules,
)
