"""`qc`: content QC of one title from the visual and audio passes' statistics (no decode), with the
events other signals contribute (`Output.qc_events`), the verdict in the catalog and thumbnails of
the offending frames in the UI.

    frame_stats + frame_samples + shots + source_video + audio_stats + audio_analysis (+ contributors) -> qc

A failed title keeps its verdict: `qc` materializes (qc.json written, verdict in the catalog's
`qc_results`) whatever the verdict; its blocking check `qc_verdict_not_fail` then fails, which
marks that title's run and stops anything downstream of that title's `qc` only. Every title runs in
its own `process_title` run, so the rest of the batch is untouched.
"""

from datetime import date

import numpy as np
import pandas as pd
from dagster import Failure, MetadataValue

from ..core.artifacts import ArtifactStore
from ..core.pictures import Picture, pictures_markdown
from ..core.signal import Output, Result, Signal, SignalContext
from ..partitions import TAG_QC_REASON, TAG_QC_VERDICT
from ..visual.packs import PacksMissingError
from .checks import PICTURES, QC_RULES, qc_rules
from .detect import QC_CODE_VERSION, QC_SCHEMA_VERSION, QCInputError, run_qc
from .plots import reason_plots
from .thresholds import load_profiles, select_profile
from .thumbs import event_pictures

ASSET = "qc"
DOMAIN = "qc"


def _delivery_date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _tag_value(text: str) -> str:
    """A run tag's value: one line, at most 200 characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= 200 else line[:199] + "…"


def _annotate_shots(qc: dict, shots: pd.DataFrame | None) -> None:
    if shots is None or not len(shots):
        return
    starts = shots["start_frame"].to_numpy()
    for e in qc["events"]:
        if e["start_frame"] is not None and e["kind"] in ("black", "freeze", "colour_bars", "slate"):
            e["metrics"]["shot_index"] = int(shots["shot_index"].iloc[max(0, int(np.searchsorted(starts, e["start_frame"], side="right")) - 1)])


def compute_qc(sc: SignalContext, frame_stats: pd.DataFrame, frame_samples: pd.DataFrame, shots: pd.DataFrame, source_video: dict,
               audio_stats: pd.DataFrame, audio_analysis: dict, audio_loudness: pd.DataFrame | None = None) -> Result:
    title_id = sc.title_id
    cfg = sc.config
    try:
        rules = qc_rules(cfg.get("gate", "block"))
        doc = load_profiles(overrides=cfg)
    except (ValueError, OSError) as exc:
        raise Failure(description=f"{title_id}: qc profiles: {str(exc).splitlines()[0]}") from None
    name, prof, why = select_profile(doc, source_video.get("provider"))
    result = run_qc(frame_stats, shots, audio_stats, audio_analysis, source_video, prof, name, why, extra_events=sc.qc_events)
    _annotate_shots(result, shots)
    result["title_id"] = title_id
    audio_producer = (audio_stats.attrs.get("producer") or {}) if audio_stats is not None else {}
    result["producer"] = {"tool": "prism-qc", "code_version": QC_CODE_VERSION, "model": None, "profile": sc.profile.name,
                          "inputs": {"frame_stats": (frame_stats.attrs.get("producer") or {}).get("code_version"),
                                     "audio_stats": audio_producer.get("code_version"),
                                     **{k: "contributed" for k in sc.qc_events}}}
    sc.provenance = {"qc_profile": name, "code_version": QC_CODE_VERSION}
    uri = sc.storage.artifacts().store.uri_for(ArtifactStore.base_key(ASSET, title_id) + ".json")
    sc.catalog.record_qc(title_id=title_id, verdict=result["verdict"], profile=name, reasons=result["reasons"],
                         event_counts=result["event_counts"], run_id=sc.run_id, duration_s=result["duration_s"],
                         delivery_date=_delivery_date(source_video.get("delivery_date")), artifact_uri=uri, code_version=QC_CODE_VERSION)
    # the verdict and its first reason in the Runs list, next to the run's own status (a run can succeed on a failing title)
    sc.context.instance.add_run_tags(sc.run_id, {TAG_QC_VERDICT: result["verdict"],
                                                 **({TAG_QC_REASON: _tag_value(result["reasons"][0])} if result["reasons"] else {})})
    log = sc.log.warning if result["verdict"] != "pass" else sc.log.info
    log(f"{title_id}: QC {result['verdict']} ({name}): " + ("; ".join(result["reasons"]) or "no issue"))
    try:
        thumbs = event_pictures(sc.storage, title_id, result, frame_samples, int(cfg.get("report_thumbnails_per_title", 6)))
    except PacksMissingError as exc:
        sc.log.warning(f"{title_id}: no event thumbnails ({exc})")
        thumbs = []
    events = pd.DataFrame(result["events"], columns=["kind", "severity", "start_s", "end_s", "track", "detail"])
    plots = [Picture(caption, jpeg, width=480) for caption, jpeg in reason_plots(result, audio_loudness)]  # the reasons without a frame: plotted
    pictures = plots + [Picture(caption, jpeg) for _, caption, jpeg in thumbs]
    pictures_title = f"QC {result['verdict']}: the reasons (plots, offending frames)"
    # a fail's verdict checks show the same pictures (qc.checks.verdict_not_fail): the run's failed check leads to them
    checked = {**result, PICTURES: pictures_markdown(pictures, pictures_title)} if result["verdict"] == "fail" and pictures else None
    return Result(result, rules=rules, table=events, pictures=pictures, pictures_title=pictures_title, check_value=checked,
                  tags={TAG_QC_VERDICT: result["verdict"]}, metadata={
        "verdict": result["verdict"], "profile": name, "profile_selected_by": why, "events": len(result["events"]),
        "event_counts": MetadataValue.json(result["event_counts"]),
        "reasons": MetadataValue.md("\n".join(f"- {r}" for r in result["reasons"]) or "no issue"),
    })


QC = Signal(
    name=ASSET, domain=DOMAIN, code_version=QC_CODE_VERSION, inputs=("frame_stats", "frame_samples", "shots", "source_video", "audio_stats", "audio_analysis", "audio_loudness"),
    collects_qc_events=True, compute=compute_qc, errors=(QCInputError, ValueError),
    description="Content QC of the title from the visual and audio passes' statistics (no decode): black, freeze, colour bars/slate, "
    "letterbox/pillarbox, silence and digital silence per track, loudness against the provider's profile (EBU R128, ATSC A/85, "
    "streaming dialogue-gated), A/V duration, interlacing, VFR, decode errors, missing audio, resolution/frame rate, and the events "
    "other signals contribute. Verdict pass|warn|fail with reasons, stored in the catalog.",
    outputs=(Output(ASSET, QC_SCHEMA_VERSION, "titles/<title_id>/qc.json", kinds=("json",), rules=QC_RULES, export="qc.json"),),
)
