"""What the season matcher's parts share (``season.py`` intros and end credits, ``season_recap.py`` recaps): the
episode record, item times and the confidence formula."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .season_align import Run

SNAP_ITEMS = 2  # a stretch whose first matching item is one of the first 3 starts with the track (error <= 0.73 s)


@dataclass
class Episode:
    title_id: str
    episode: int | None
    duration_s: float
    audio: dict | None  # fingerprint.audio_fingerprint()
    pictures: dict | None  # fingerprint.picture_signature()
    end_credits: dict | None = None  # {start_s, end_s} of the title's OCR end credits (structure.json) where known: text evidence


def head_items(ep: Episode, p: dict) -> int:
    """Items of the intro/recap search window: the first ``search_frac`` of the episode, at least ``search_min_s``."""
    au = ep.audio
    span = max(p["search_frac"] * ep.duration_s, p["search_min_s"]) - au["start_s"]
    return int(min(len(au["items"]), max(0, math.ceil(span / au["item_s"]))))


def tail_start_item(ep: Episode, p: dict) -> int:
    """First item of the end search window: the last ``tail_frac`` of the episode, at least ``tail_min_s``."""
    au = ep.audio
    t = ep.duration_s - max(p["tail_frac"] * ep.duration_s, p["tail_min_s"]) - au["start_s"] - au.get("centre_s", 1.3)
    return int(min(len(au["items"]), max(0, math.floor(t / au["item_s"]))))


def to_s(au: dict, i: float, bias: float) -> float:
    """Title time of an edge at item i; the first item of the track also stands for the audio before it."""
    if i <= SNAP_ITEMS and bias < 0:  # the first items of a track rarely match (codec start): snap to the track start
        return float(au["start_s"])
    return float(au["start_s"] + au.get("centre_s", 1.3) + i * au["item_s"] + bias)


def item_at(au: dict, t: float) -> int:
    """The item whose centre is nearest to title time t (may lie outside the track)."""
    return int(round((t - au["start_s"] - au.get("centre_s", 1.3)) / au["item_s"]))


def pair_dt(ep: Episode, other: Episode, r: Run) -> float:
    """Time in ``other`` minus time in ``ep`` for the stretch of run ``r``."""
    return to_s(other.audio, r.a0 + r.d, 0) - to_s(ep.audio, r.a0, 0)


def confidence(n_support: int, n_others: int, err: float, pic: tuple[int, int]) -> float:
    audio = (n_support / max(1, n_others)) * max(0.0, min(1.0, (12.0 - err) / 10.0))
    if pic[1] == 0:
        return round(audio, 3)
    return round(0.7 * audio + 0.3 * pic[0] / pic[1], 3)


def zero_spans(items: np.ndarray, spans: list[tuple[int, int]], margin: int) -> np.ndarray:
    """A copy of ``items`` with the item spans (+- margin) set to 0: zero items are static and never vote or match."""
    out = items.copy()
    for a0, a1 in spans:
        out[max(0, a0 - margin) : max(0, a1 + margin + 1)] = 0
    return out
