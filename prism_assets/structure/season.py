"""Intro and recap of each episode of a season, found by matching fingerprints across its episodes.

Input: per episode the Chromaprint items of its original audio track and the dHash of its 1/s picture
samples (``fingerprint.py``). Output per title: intro and recap start/end (s, title time line),
confidence, the episodes that support it, and the evidence.

Method (numpy only, no decode):

1. Pairwise alignment of Chromaprint items by offset voting (``season_align.match_runs``): runs of items
   that match (<= ``item_max_bits`` of 32 differing) at one offset, static items (silence, held tones,
   noise-like ambience) never counting. The recap search also checks the best offsets of every 3-s block of
   the opening, so a 2-3 s piece is not out-voted by longer or repetitive material elsewhere.
2. Intro: on each episode's item axis, count for every item the other episodes with a run covering
   it (searching the first ``search_frac`` of each episode, at least ``search_min_s``: intros are
   in the first third in practice; this keeps a 6 x 45-minute season to a few seconds). The intro is
   the stretch supported by the most episodes (at least ``majority`` of the others, >= 1), the
   longest on ties, at least ``min_intro_s`` long; its items are those covered by more than half
   of the supporting episodes' runs (a partner whose shared stretch goes on does not stretch it),
   converted with the calibrated item-edge biases (below). An intro can sit at a different position in each episode: each pair has its own
   offset.
3. Recap: the episode numbered just below (episodes may come in any order and numbers may be
   missing) is the one recapped. Its items, except its intro and its recap, are matched against this
   episode's opening (up to ``recap_after_intro_s`` after the intro end; the search window when
   there is no intro); runs >= ``min_recap_piece_s`` whose 20-ms band envelopes agree
   (``recap_env_agree``; without envelopes: a clear item match or the pictures) are recap pieces,
   pieces closer than ``recap_join_s`` are joined, and the recap is the joined stretch that starts
   within ``recap_max_start_s`` of the intro (before it, or right after it; it never overlaps the intro:
   a piece cut from right after the previous intro and placed right after this one continues the
   intro's match, and the recap starts at the intro end).
4. Pictures (1/s, so they confirm, never place a boundary): for each supporting pair the dHashes of
   this episode's samples inside the stretch are compared with the partner's samples at the aligned
   time; the fraction within ``picture_max_bits`` (12 of 64; same picture re-encoded 0-4, unrelated
   ~32) is reported and weighs 30 % of the confidence.

Edges: Chromaprint item i describes ~2.6 s of audio, and where a stretch's first/last matching item
falls depends on the loudness on each side of the boundary (a loud jingle dominates an item that is half
quiet ambience: up to 1.8 s early). Coarse edges use ``start_bias_s``/``end_bias_s``; then, when the
fingerprints carry 20-ms band envelopes (``fingerprint.band_envelope``), ``season_align.refine_edges``
places each edge as a change point of the frame-by-frame agreement with ALL the supporting episodes at once
(silence and steady ambience neutral). Measured on generated seasons (``season_media.py``, variations by
seed: 4 eps; 3 without cold open/recap; 5 with the recap after the intro; 4; 6; 3): seeds 11-16 (tuning)
intro 25/25 and recap 17/17 within 1 s (before: 21/25, 6/17: the 1.1 s of noise bed before every intro of
s14 agreed with the old 3-dB "grow while most frames agree" rule, and the recap pieces that start a file
were out-voted, not unmatched); held-out seeds 31-36 and 41-46: 25/25 and 17/17 each, no false intro or
recap, intro edges within 0.32 s (mostly 0-0.12 s: the 80-ms smoothing). With each episode shifted by a
different 3-17 ms (real footage is not frame-aligned; seeds 11, 13-16): intros 21/22, recaps 17/17.

Limits: a recap piece shorter than ~2 s is often missed; a recap piece that begins within
``exclude_margin_s`` of where the previous episode's intro ends starts up to 0.4 s late without envelopes;
with a sub-frame offset between episodes the envelope decision of tonal onsets is less sure (edges up to
~0.6 s, once 1.3 s, inward in the shifted test); with two supporting episodes an intro is the stretch both
share; an intro whose music differs per episode (or is talked over differently in each) is not
found from sound; an intro shorter than ``min_intro_s`` (5 s) is ignored; a season of one episode
(or episodes without audio fingerprints) has no intro; a recap made of pieces shorter than 2 s, or of
material the previous episode does not contain (an older episode, a missing episode number), is not
found; the intro and recap must lie in the search window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import season_align as align
from .fingerprint import picture_agreement
from .season_align import Run, _static, envelope_agreement, refine_edges  # noqa: F401 - _static: tests

DEFAULTS = {
    "search_frac": 0.4,  # intro/recap search window: this fraction of the episode ...
    "search_min_s": 120.0,  # ... and at least this much
    "max_key_repeats": 12,  # a vote key seen more often than this in one episode is not voted for
    "top_offsets": 8,  # candidate offsets checked per pair ...
    "local_block_items": 24,  # ... and for recaps also the best 3 of each 3-s block of the episode's opening
    "item_max_bits": 7,  # an aligned item matches with at most this many differing bits of 32
    "run_max_bits": 5.0,  # a run's mean differing bits
    "edge_bits": 5.0,  # run edges: mean differing bits of the 3 outermost items
    "gap_items": 4,  # informative non-matching items bridged inside a run (0.5 s) ...
    "max_gap_items": 24,  # ... in a gap of at most this many items (3 s; static items in it are neutral)
    "merge_gap_items": 12,  # runs at the same offset (+-1) this close (1.5 s) are one stretch
    "min_run_s": 2.0,  # shortest run kept
    "min_intro_s": 5.0,
    "majority": 0.5,  # an intro is shared with at least this fraction of the other episodes
    "min_recap_piece_s": 1.5,
    "recap_clear_bits": 3.5,  # without band envelopes, a recap piece with a higher mean error needs half its picture samples to agree
    "exclude_margin_s": 0.4,  # the previous episode's intro/recap items (centre within this of them) are not recapped
    "recap_join_s": 3.0,
    "recap_after_intro_s": 60.0,
    "recap_max_start_s": 30.0,
    "start_bias_s": -0.82,  # start = centre of the first matching item + this (measured, see module doc)
    "end_bias_s": 0.10,  # end = centre of the last matching item + this
    "picture_max_bits": 12,
    "env_same_db": 2.5,  # 20-ms band envelopes agree: level and change within this (season_align.py)
    "env_quiet_db": -70.0,  # frames quieter than this in every band (both episodes) are neutral
    "env_reach_s": 2.5,  # how far from a coarse edge the envelope may move it
    "recap_env_agree": 0.5,  # a recap piece is confirmed when this fraction of its informative 20-ms frames agree
}


SNAP_ITEMS = 2  # a stretch whose first matching item is one of the first 3 starts with the track (error <= 0.73 s)


@dataclass
class Episode:
    title_id: str
    episode: int | None
    duration_s: float
    audio: dict | None  # fingerprint.audio_fingerprint()
    pictures: dict | None  # fingerprint.picture_signature()


def match_runs(a: np.ndarray, b: np.ndarray, params: dict | None = None, min_s: float | None = None, item_s: float = 0.12380952380952381,
               local: bool = False) -> list[Run]:
    """Stretches of ``a`` found again in ``b`` (``season_align.match_runs`` with ``DEFAULTS`` under ``params``)."""
    return align.match_runs(a, b, {**DEFAULTS, **(params or {})}, min_s, item_s, local)


def _window_items(ep: Episode, p: dict) -> int:
    au = ep.audio
    span = max(p["search_frac"] * ep.duration_s, p["search_min_s"]) - au["start_s"]
    return int(min(len(au["items"]), max(0, math.ceil(span / au["item_s"]))))


def _to_s(au: dict, i: float, bias: float) -> float:
    """Title time of an edge at item i; the first item of the track also stands for the audio before it."""
    if i <= SNAP_ITEMS and bias < 0:  # the first items of a track rarely match (codec start): snap to the track start
        return float(au["start_s"])
    return float(au["start_s"] + au.get("centre_s", 1.3) + i * au["item_s"] + bias)


def _dt(ep: Episode, other: Episode, r: Run) -> float:
    """Time in ``other`` minus time in ``ep`` for the stretch of run ``r``."""
    return _to_s(other.audio, r.a0 + r.d, 0) - _to_s(ep.audio, r.a0, 0)


def _confidence(n_support: int, n_others: int, err: float, pic: tuple[int, int]) -> float:
    audio = (n_support / max(1, n_others)) * max(0.0, min(1.0, (12.0 - err) / 10.0))
    if pic[1] == 0:
        return round(audio, 3)
    return round(0.7 * audio + 0.3 * pic[0] / pic[1], 3)


def _majority_span(runs: list[Run]) -> tuple[int, int]:
    """First/last item covered by more than half of the runs (one per supporting episode): a partner whose shared
    stretch goes on (its recap starts with the body that follows its intro) does not stretch the intro; for an odd
    number of runs this is the median of their edges."""
    lo, hi = min(r.a0 for r in runs), max(r.a1 for r in runs)
    count = np.zeros(hi - lo + 1, dtype=np.int32)
    for r in runs:
        count[r.a0 - lo : r.a1 - lo + 1] += 1
    inside = np.nonzero(2 * count > len(runs))[0]
    if len(inside) == 0:
        return int(np.median([r.a0 for r in runs])), int(np.median([r.a1 for r in runs]))
    return lo + int(inside[0]), lo + int(inside[-1])


def _find_intro(k: int, eps: list[Episode], pair: dict, p: dict) -> dict | None:
    ep = eps[k]
    others = [j for j in range(len(eps)) if j != k and eps[j].audio is not None]
    n = _window_items(ep, p)
    cover = np.zeros((len(eps), n), dtype=bool)
    for j in others:
        for r in pair[(k, j)]:
            cover[j, r.a0 : r.a1 + 1] = True
    count = cover.sum(axis=0)
    need = max(1, math.ceil(p["majority"] * len(others) - 1e-9))
    min_items = int(round((p["min_intro_s"] - (p["end_bias_s"] - p["start_bias_s"])) / ep.audio["item_s"]))
    best = None
    ok = np.concatenate([[False], count >= need, [False]])
    edges = np.nonzero(np.diff(ok.astype(np.int8)))[0]
    for s, e in zip(edges[::2], edges[1::2] - 1):
        support = [j for j in others if cover[j, s : e + 1].any()]
        runs = [max((r for r in pair[(k, j)] if r.a1 >= s and r.a0 <= e), key=lambda r: min(r.a1, e) - max(r.a0, s)) for j in support]
        a0, a1 = _majority_span(runs)
        if a1 - a0 + 1 < min_items:
            continue
        key = (len(support), a1 - a0)
        if best is None or key > best[0]:
            best = (key, a0, a1, support, runs)
    if best is None:
        return None
    _, a0, a1, support, runs = best
    au = ep.audio
    start, end = _to_s(au, a0, p["start_bias_s"]), _to_s(au, a1, p["end_bias_s"])
    fs, fe, n_env = refine_edges(ep, [(eps[j], _dt(ep, eps[j], r)) for j, r in zip(support, runs)], start, end, p)
    start, end = fs if fs is not None else start, fe if fe is not None else end
    err = float(np.mean([r.err for r in runs]))
    pic = [0, 0]
    for j, r in zip(support, runs):
        dt = _to_s(eps[j].audio, r.a0 + r.d, 0) - _to_s(au, r.a0, 0)
        g, c = picture_agreement(ep, eps[j], start, end, dt, p)
        pic[0] += g
        pic[1] += c
    evidence = [f"audio: shared with {len(support)}/{len(others)} other episodes, mean {err:.1f}/32 differing bits per Chromaprint item",
                f"edges: placed with the 20-ms band envelopes of {n_env} episode(s) together" if n_env else "edges: Chromaprint items only (calibrated biases)"]
    evidence.append(f"picture: {pic[0]}/{pic[1]} 1/s samples within {p['picture_max_bits']}/64 dHash bits" if pic[1] else "picture: no samples compared")
    return {"start_s": round(start, 3), "end_s": round(end, 3), "confidence": _confidence(len(support), len(others), err, tuple(pic)),
            "matched_episodes": [eps[j].title_id for j in support], "evidence": evidence, "_items": (a0, a1)}


def _previous(k: int, eps: list[Episode]) -> int | None:
    num = eps[k].episode
    if num is None:
        return None
    lower = [j for j, e in enumerate(eps) if e.episode is not None and e.episode < num and e.audio is not None]
    return max(lower, key=lambda j: eps[j].episode) if lower else None


def _piece_confirmed(r: Run, ep: Episode, pe: Episode, p: dict) -> bool:
    """A recap piece is short, and unrelated speech over similar ambience can match a few items at 4-5 bits: with
    band envelopes its 20-ms frames must agree (``recap_env_agree``); without, it needs a clear match (``recap_clear_bits``)
    or a fair one the pictures confirm."""
    if r.err > p["run_max_bits"]:
        return False
    au = ep.audio
    t0, t1 = _to_s(au, r.a0, p["start_bias_s"]), _to_s(au, r.a1, p["end_bias_s"])
    env = envelope_agreement(ep, pe, _dt(ep, pe, r), t0, t1, p)
    if env is not None:
        return env >= p["recap_env_agree"]
    if r.err <= p["recap_clear_bits"]:
        return True
    good, n = picture_agreement(ep, pe, t0, t1, _dt(ep, pe, r), p)
    return n > 0 and good >= 0.5 * n


def _find_recap(k: int, prev: int, eps: list[Episode], results: dict, p: dict) -> dict | None:
    ep, pe = eps[k], eps[prev]
    au, pa = ep.audio, pe.audio
    intro = results[ep.title_id].get("intro")
    if intro:
        limit = intro["_items"][1] + int(p["recap_after_intro_s"] / au["item_s"])
    else:
        limit = _window_items(ep, p)
    a = au["items"][: min(limit, len(au["items"]))]
    b = pa["items"].copy()
    centre = pa["start_s"] + pa.get("centre_s", 1.3) + np.arange(len(b)) * pa["item_s"]
    for key in ("intro", "recap"):  # the previous episode's own intro and recap are not its body
        got = results.get(pe.title_id, {}).get(key)
        if got:  # every item about half inside (a loud jingle dominates an item that is half ambience); zeros never match
            b[(centre >= got["start_s"] - p["exclude_margin_s"]) & (centre <= got["end_s"] + p["exclude_margin_s"])] = 0
    pieces = align.match_runs(a, b, p, p["min_recap_piece_s"], au["item_s"], local=True)
    pieces = [r for r in pieces if _piece_confirmed(r, ep, pe, p)]
    if intro:
        i0, i1 = intro["_items"]
        pieces = [r for r in pieces if r.a1 < i0 or r.a0 > i1]
    if not pieces:
        return None
    join = int(p["recap_join_s"] / au["item_s"])
    groups: list[list[Run]] = [[pieces[0]]]
    for r in pieces[1:]:
        if r.a0 - groups[-1][-1].a1 <= join:
            groups[-1].append(r)
        else:
            groups.append([r])
    anchor = intro["_items"] if intro else (0, 0)
    max_items = p["recap_max_start_s"] / au["item_s"]

    def near(g):  # distance of the group from the intro (before it, or right after it)
        return max(0, anchor[0] - g[-1].a1, g[0].a0 - anchor[1]) if intro else g[0].a0

    groups = [g for g in groups if near(g) <= max_items]
    if not groups:
        return None
    g = max(groups, key=lambda g: sum(r.a1 - r.a0 + 1 for r in g))
    start, end = _to_s(au, g[0].a0, p["start_bias_s"]), _to_s(au, g[-1].a1, p["end_bias_s"])
    first, _, _ = refine_edges(ep, [(pe, _dt(ep, pe, g[0]))], start, _to_s(au, g[0].a1, p["end_bias_s"]), p, (True, False))
    _, last, _ = refine_edges(ep, [(pe, _dt(ep, pe, g[-1]))], _to_s(au, g[-1].a0, p["start_bias_s"]), end, p, (False, True))
    start = first if first is not None else start
    end = last if last is not None else end
    if intro:  # a recap piece cut from just after (before) the previous intro, placed just after (before) this one, continues
        if g[0].a0 > intro["_items"][1]:  # the intro at the same offset: the intro, found in all episodes, keeps its stretch
            start = max(start, intro["end_s"])
        else:
            end = min(end, intro["start_s"])
    err = float(np.mean([r.err for r in g]))
    pic = [0, 0]
    for r in g:
        t0, t1 = _to_s(au, r.a0, p["start_bias_s"]), _to_s(au, r.a1, p["end_bias_s"])
        dt = _to_s(pa, r.a0 + r.d, 0) - _to_s(au, r.a0, 0)
        gd, c = picture_agreement(ep, pe, t0, t1, dt, p)
        pic[0] += gd
        pic[1] += c
    src = ", ".join(f"{_to_s(pa, r.a0 + r.d, p['start_bias_s']):.1f}-{_to_s(pa, r.a1 + r.d, p['end_bias_s']):.1f} s" for r in g)
    evidence = [f"audio: {len(g)} piece(s) from episode {pe.episode} ({pe.title_id}) at {src}, mean {err:.1f}/32 differing bits",
                f"picture: {pic[0]}/{pic[1]} 1/s samples within {p['picture_max_bits']}/64 dHash bits" if pic[1] else "picture: no samples compared"]
    return {"start_s": round(start, 3), "end_s": round(end, 3), "confidence": _confidence(1, 1, err, tuple(pic)),
            "matched_episodes": [pe.title_id], "from_episode": pe.title_id, "evidence": evidence, "_items": (g[0].a0, g[-1].a1)}


def find_intros_and_recaps(episodes: list[Episode], params: dict | None = None) -> dict[str, dict]:
    """Per title_id: {"intro": {...} | None, "recap": {...} | None, "note": str} (see the module doc)."""
    p = {**DEFAULTS, **(params or {})}
    eps = sorted(episodes, key=lambda e: (e.episode is None, e.episode if e.episode is not None else 0, e.title_id))
    results: dict[str, dict] = {e.title_id: {"intro": None, "recap": None, "note": ""} for e in eps}
    usable = [k for k, e in enumerate(eps) if e.audio is not None and len(e.audio["items"]) > 0]
    for k, e in enumerate(eps):
        if k not in usable:
            results[e.title_id]["note"] = "no audio fingerprint: intro and recap are found from the sound"
    if len(usable) < 2:
        for k in usable:
            results[eps[k].title_id]["note"] = "a single episode with audio in this season: an intro is found by comparing episodes"
        return _public(results)
    win = {k: eps[k].audio["items"][: _window_items(eps[k], p)] for k in usable}
    pair: dict[tuple[int, int], list[Run]] = {}
    for x in usable:
        for y in usable:
            if x < y:
                runs = align.match_runs(win[x], win[y], p, None, eps[x].audio["item_s"])
                pair[(x, y)] = runs
                pair[(y, x)] = [Run(r.a0 + r.d, r.a1 + r.d, -r.d, r.err) for r in runs]
    for k in usable:
        intro = _find_intro(k, eps, pair, p)
        results[eps[k].title_id]["intro"] = intro
        if intro is None:
            results[eps[k].title_id]["note"] = "no stretch of at least %.0f s shared with the other episodes" % p["min_intro_s"]
    for k in usable:  # in episode order: the previous episode's recap is known when this one is searched
        prev = _previous(k, eps)
        r = results[eps[k].title_id]
        if prev is None:
            r["note"] = (r["note"] + "; " if r["note"] else "") + "no previous episode in the season: no recap searched"
            continue
        r["recap"] = _find_recap(k, prev, eps, results, p)
        if eps[prev].episode != eps[k].episode - 1:
            r["note"] = (r["note"] + "; " if r["note"] else "") + f"episode {eps[k].episode - 1} missing: recap searched in episode {eps[prev].episode}"
    return _public(results)


def _public(results: dict) -> dict:
    for r in results.values():
        for key in ("intro", "recap"):
            if r.get(key):
                r[key].pop("_items", None)
    return results
