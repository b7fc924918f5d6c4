"""Pictures of a title's offending QC events, cut from the visual pass's JPEG packs (never a decode):
for the `qc` asset's metadata and the daily report."""

from __future__ import annotations

import pandas as pd

from ..visual.packs import pack_paths, read_pack_bytes
from .report import offending_events, pick_picture, thumbnail


def event_caption(e: dict, frame: int) -> str:
    track = "" if e["track"] is None else f" t{e['track']}"
    return f"{e['severity']} {e['kind']}{track} {e['start_s']:.2f}-{e['end_s']:.2f} s (frame {int(frame)})"


def event_pictures(storage, title_id: str, qc_doc: dict, index: pd.DataFrame, limit: int) -> list[tuple[str, str, bytes]]:
    """[(file name, caption, thumbnail JPEG)] for the title's worst events with frames, at most `limit`;
    `index` is the title's frame_samples table. Raises visual.packs.PacksMissingError without packs."""
    events = offending_events(qc_doc, limit)
    if not events:
        return []
    packs = pack_paths(storage, title_id)
    out = []
    for i, e in enumerate(events):
        pic = pick_picture(index, int(e["start_frame"]), int(e["end_frame"]))
        if pic is None or pic["pack"] not in packs:
            continue
        name = f"thumbs/{title_id}_{i:02d}_{e['kind']}_f{int(pic['frame']):07d}.jpg"
        jpeg = thumbnail(read_pack_bytes(packs[pic["pack"]], int(pic["offset"]), int(pic["length"])))
        out.append((name, event_caption(e, int(pic["frame"])), jpeg))
    return out
