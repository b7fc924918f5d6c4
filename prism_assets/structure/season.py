"""Intro, end credits and recap of each episode of a season, found by matching fingerprints across its episodes.

Input: per episode the Chromaprint items of its original audio track and the dHash + colour layout of its 1/s
picture samples (``fingerprint.py``), and where known the span of its OCR end credits (``Episode.end_credits``,
from structure.json: text evidence). Output per title: intro, end credits (the shared music at the end) and
recap start/end (s, title time line), confidence, the episodes that support it, and the evidence.

Method (numpy only, no decode):

1. Pairwise alignment of Chromaprint items by offset voting (``season_align.match_runs``): runs of items
   that match (<= ``item_max_bits`` of 32 differing) at one offset, static items (silence, held tones,
   noise-like ambience) never counting. Searched: the first ``search_frac`` of each episode, at least
   ``search_min_s`` (intros are in the first third in practice; this keeps a 6 x 45-minute season to a few
   seconds), and its last ``tail_frac``, at least ``tail_min_s`` (the end credits); the items between are zeroed.
2. Shared stretches: on each episode's item axis, count for every item the other episodes with a run covering
   it; a stretch is supported by at least ``majority`` of the others (>= 1) and lasts >= ``min_intro_s``; its items
   are those covered by more than half of the supporting episodes' runs (a partner whose shared stretch goes on
   does not stretch it), converted with the calibrated item-edge biases (below). Each pair has its own offset.
3. Intro or end credits (real series often play the opening theme again under the end credits, so the theme is
   shared twice in each episode: an intro-vs-credits match is as good as intro-vs-intro). Position and text decide:
   a stretch is the *end credits* when it overlaps the episode's OCR end credits (``credits_text_overlap`` of it),
   or when it starts in the second half (``intro_max_start_frac``) and ends within max(``credits_tail_s``,
   ``credits_tail_frac`` of the episode) of the end, or repeats an earlier shared stretch of the same episode
   (the same music twice: the later one, in the second half or ending near the end). A stretch starting in the
   second half is never the intro. When any episode has end credits, the pairs are aligned again with every
   episode's end credits zeroed for the intros (so each intro is aligned with the partners' intros, never their
   credits: pictures and edges compare the right stretches) and with the intros zeroed for the credits. The
   intro is the stretch supported by the most episodes, the longest on ties; the end credits likewise.
4. Recap (``season_recap.py``): material of the opening repeated from the episodes numbered just below, by sound
   and, where the sound was re-mixed or the excerpts are short, by pictures (``season_pictures.py``).
5. Pictures confirm (1/s, never placing a shared stretch's boundary): for each supporting pair the dHashes of
   this episode's samples inside the stretch are compared with the partner's samples at the aligned time; the
   fraction within ``picture_max_bits`` (12 of 64; same picture re-encoded 0-4, unrelated ~32) is reported and
   weighs 30 % of the confidence.

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
The failure classes of ``season_classes.py`` (six episodes of 28-82 s: end credits over the theme in every one,
one episode without an intro; recaps narrated over, from two episodes back, one 2.2-s excerpt, before a 31-s cold
open), seeds 7-11 (tuning) and 12-14 (held out): intros 25/25 and 15/15 within 1 s (before: 3/25 and 2/15, the
longer theme under the end credits won), end credits 28/30 and 17/18 (the misses end 1.0-1.2 s early: credits 1 s
longer than the other episodes' share of the theme), recaps 20/20 and 12/12 (before: 0/20 and 0/12), no false
intro, credits or recap; ``season_media.py`` seeds 11-16, 21, 22, 31-33, 40 unchanged (50/50 intros, 35/35
recaps). Tested in ``test_season_classes.py``.

Limits: a recap piece that begins within ``exclude_margin_s`` of where the previous episode's intro ends starts
up to 0.4 s late without envelopes; with a sub-frame offset between episodes the envelope decision of tonal
onsets is less sure (edges up to ~0.6 s, once 1.3 s, inward in the shifted test); with two supporting episodes an
intro is the stretch both share; an intro whose music differs per episode (or is talked over differently in
each) is not found from sound; an intro shorter than ``min_intro_s`` (5 s) is ignored; a season of one episode
(or episodes without audio fingerprints) has no intro; an intro starting in the second half of its episode is
taken for end credits or ignored; without text evidence, end credits over the theme that start in the first
half of a short episode without an intro are taken for its intro; shared music at the end that neither repeats
the intro nor reaches the end (a bumper) is neither; the end credits' span is the theme's (the credits may run
on after it); the intro and recap must lie in the search window.
"""

from __future__ import annotations

import math

import numpy as np

from . import season_align as align
from .fingerprint import picture_agreement
from .season_align import Run, _static, envelope_agreement, refine_edges  # noqa: F401 - _static, envelope_agreement: tests
from .season_common import Episode, confidence, head_items, pair_dt, tail_start_item, to_s, zero_spans
from .season_recap import find_recap, sources

__all__ = ["DEFAULTS", "Episode", "Run", "find_intros_and_recaps", "match_runs"]

DEFAULTS = {
    "search_frac": 0.4,  # intro/recap search window: this fraction of the episode ...
    "search_min_s": 120.0,  # ... and at least this much
    "tail_frac": 0.25,  # end credits search window: this fraction of the episode at its end ...
    "tail_min_s": 120.0,  # ... and at least this much
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
    "intro_max_start_frac": 0.5,  # a shared stretch starting later in its episode is never an intro
    "credits_tail_s": 45.0,  # a late shared stretch ending this close to the episode end ...
    "credits_tail_frac": 0.15,  # ... or this fraction of it, is the end credits
    "credits_text_overlap": 0.5,  # a shared stretch this much inside the OCR end credits is the end credits
    "min_recap_piece_s": 1.5,
    "recap_clear_bits": 3.5,  # without band envelopes, a recap piece with a higher mean error needs half its picture samples to agree
    "exclude_margin_s": 0.4,  # the previous episode's intro/recap items (centre within this of them) are not recapped
    "recap_join_s": 3.0,
    "recap_after_intro_s": 60.0,
    "recap_max_start_s": 30.0,  # a recap starts before the intro or within this after its end (without an intro: from the start ...)
    "recap_open_frac": 0.25,  # ... or within this fraction of the episode)
    "recap_back": 3,  # a recap repeats material of the episodes up to this many numbers below
    "recap_pic_bits": 8,  # a recap piece by pictures: samples within this many dHash bits (the chain's mean within 3/4 of it) ...
    "recap_pic_layout": 0.04,  # ... and this mean colour-layout difference (0-1) ...
    "recap_pic_min_samples": 2,  # ... in a chain of this many consecutive samples ...
    "recap_pic_max_dt_s": 0.6,  # ... at one offset (within this)
    "recap_pic_weight": 0.5,  # picture-only material counts this much when the recap's stretch is chosen (sound: 1)
    "start_bias_s": -0.82,  # start = centre of the first matching item + this (measured, see module doc)
    "end_bias_s": 0.10,  # end = centre of the last matching item + this
    "picture_max_bits": 12,
    "env_same_db": 2.5,  # 20-ms band envelopes agree: level and change within this (season_align.py)
    "env_quiet_db": -70.0,  # frames quieter than this in every band (both episodes) are neutral
    "env_reach_s": 2.5,  # how far from a coarse edge the envelope may move it
    "recap_env_agree": 0.5,  # a recap piece is confirmed when this fraction of its informative 20-ms frames agree
}


def match_runs(a: np.ndarray, b: np.ndarray, params: dict | None = None, min_s: float | None = None, item_s: float = 0.12380952380952381,
               local: bool = False) -> list[Run]:
    """Stretches of ``a`` found again in ``b`` (``season_align.match_runs`` with ``DEFAULTS`` under ``params``)."""
    return align.match_runs(a, b, {**DEFAULTS, **(params or {})}, min_s, item_s, local)


def _search_items(ep: Episode, p: dict) -> np.ndarray:
    """The episode's items with those between the head and tail search windows zeroed (zeros never vote or match)."""
    items = ep.audio["items"]
    nh, nt = head_items(ep, p), tail_start_item(ep, p)
    if nt <= nh:
        return items
    out = items.copy()
    out[nh:nt] = 0
    return out


def _pairs(win: dict[int, np.ndarray], eps: list[Episode], p: dict) -> dict[tuple[int, int], list[Run]]:
    pair: dict[tuple[int, int], list[Run]] = {}
    keys = sorted(win)
    for x in keys:
        for y in keys:
            if x < y:
                runs = align.match_runs(win[x], win[y], p, None, eps[x].audio["item_s"])
                pair[(x, y)] = runs
                pair[(y, x)] = [Run(r.a0 + r.d, r.a1 + r.d, -r.d, r.err) for r in runs]
    return pair


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


def _stretches(k: int, eps: list[Episode], others: list[int], pair: dict, p: dict) -> list[dict]:
    """The stretches of eps[k] shared with enough other episodes (step 2 of the module doc), by start."""
    ep = eps[k]
    others = [j for j in others if j != k]
    n = len(ep.audio["items"])
    cover = np.zeros((len(eps), n), dtype=bool)
    for j in others:
        for r in pair[(k, j)]:
            cover[j, r.a0 : r.a1 + 1] = True
    count = cover.sum(axis=0)
    need = max(1, math.ceil(p["majority"] * len(others) - 1e-9))
    min_items = int(round((p["min_intro_s"] - (p["end_bias_s"] - p["start_bias_s"])) / ep.audio["item_s"]))
    ok = np.concatenate([[False], count >= need, [False]])
    edges = np.nonzero(np.diff(ok.astype(np.int8)))[0]
    out = []
    for s, e in zip(edges[::2], edges[1::2] - 1):
        support = [j for j in others if cover[j, s : e + 1].any()]
        runs = [max((r for r in pair[(k, j)] if r.a1 >= s and r.a0 <= e), key=lambda r: min(r.a1, e) - max(r.a0, s)) for j in support]
        a0, a1 = _majority_span(runs)
        if a1 - a0 + 1 < min_items:
            continue
        out.append({"a0": a0, "a1": a1, "support": support, "runs": runs, "n_others": len(others),
                    "start": to_s(ep.audio, a0, p["start_bias_s"]), "end": to_s(ep.audio, a1, p["end_bias_s"])})
    return out


def _same_material(ep: Episode, c: dict, spans: list[tuple[int, int]], p: dict) -> bool:
    """Whether the stretch c of ep plays again what one of the (earlier) item spans of ep plays."""
    items = ep.audio["items"]
    b = items[c["a0"] : c["a1"] + 1]
    return any(align.match_runs(items[a0 : a1 + 1], b, p, p["min_run_s"], ep.audio["item_s"]) for a0, a1 in spans if a1 < c["a0"])


def _classify(ep: Episode, c: dict, earlier: list[tuple[int, int]], p: dict) -> tuple[str | None, list[str]]:
    """("intro" | "credits" | None, the position/text evidence) of the shared stretch c (step 3 of the module doc)."""
    dur = max(ep.duration_s, 1e-9)
    late = c["start"] >= p["intro_max_start_frac"] * dur
    gap = dur - c["end"]
    near_end = gap <= max(p["credits_tail_s"], p["credits_tail_frac"] * dur)
    ec = ep.end_credits
    text = bool(ec) and (min(c["end"], float(ec["end_s"])) - max(c["start"], float(ec["start_s"]))) >= p["credits_text_overlap"] * (c["end"] - c["start"])
    repeat = (late or near_end) and _same_material(ep, c, earlier, p)
    why = [f"position: {c['start'] / dur:.0%} into the episode, ending {max(0.0, gap):.1f} s before its end"]
    if text:
        why.append(f"text: inside the OCR end credits ({float(ec['start_s']):.1f}-{float(ec['end_s']):.1f} s)")
    if repeat:
        why.append("the same music as an earlier shared stretch of this episode (the theme again)")
    if text or (late and (near_end or repeat)) or (repeat and near_end):
        return "credits", why
    return (None if late else "intro"), why


def _pick(ep: Episode, cands: list[dict], kind: str, earlier: list[tuple[int, int]], p: dict) -> dict | None:
    best = None
    for c in cands:
        got, why = _classify(ep, c, earlier, p)
        if got != kind:
            continue
        key = (len(c["support"]), c["a1"] - c["a0"])
        if best is None or key > best[0]:
            best = (key, {**c, "why": why})
    return best[1] if best else None


def _describe(k: int, eps: list[Episode], c: dict, p: dict, kind: str) -> dict:
    ep = eps[k]
    support, runs = c["support"], c["runs"]
    start, end = c["start"], c["end"]
    fs, fe, n_env = refine_edges(ep, [(eps[j], pair_dt(ep, eps[j], r)) for j, r in zip(support, runs)], start, end, p)
    start, end = fs if fs is not None else start, fe if fe is not None else end
    end = min(end, ep.duration_s) if ep.duration_s > 0 else end
    err = float(np.mean([r.err for r in runs]))
    pic = [0, 0]
    for j, r in zip(support, runs):
        g, n = picture_agreement(ep, eps[j], start, end, pair_dt(ep, eps[j], r), p)
        pic[0] += g
        pic[1] += n
    evidence = [f"audio: shared with {len(support)}/{c['n_others']} other episodes, mean {err:.1f}/32 differing bits per Chromaprint item",
                f"edges: placed with the 20-ms band envelopes of {n_env} episode(s) together" if n_env else "edges: Chromaprint items only (calibrated biases)"]
    evidence.append(f"picture: {pic[0]}/{pic[1]} 1/s samples within {p['picture_max_bits']}/64 dHash bits" if pic[1] else "picture: no samples compared")
    if kind == "credits":
        evidence += c.get("why", [])
    return {"start_s": round(start, 3), "end_s": round(end, 3), "confidence": confidence(len(support), c["n_others"], err, tuple(pic)),
            "matched_episodes": [eps[j].title_id for j in support], "evidence": evidence, "_items": (c["a0"], c["a1"])}


def _note(r: dict, text: str) -> None:
    r["note"] = (r["note"] + "; " if r["note"] else "") + text


def _intros_and_credits(eps: list[Episode], usable: list[int], results: dict, p: dict) -> None:
    win = {k: _search_items(eps[k], p) for k in usable}
    pair = _pairs(win, eps, p)
    cands = {k: _stretches(k, eps, usable, pair, p) for k in usable}
    credits_spans = {}
    for k in usable:
        early = [(c["a0"], c["a1"]) for c in cands[k]]
        credits_spans[k] = [(c["a0"], c["a1"]) for c in cands[k] if _classify(eps[k], c, early, p)[0] == "credits"]
    with_credits = any(credits_spans.values())
    margin = {k: int(round(1.0 / eps[k].audio["item_s"])) for k in usable}
    if with_credits:  # align the intros again without anyone's end credits: each intro with the partners' intros
        pair = _pairs({k: zero_spans(win[k], credits_spans[k], margin[k]) for k in usable}, eps, p)
        cands = {k: _stretches(k, eps, usable, pair, p) for k in usable}
    intro_items: dict[int, list[tuple[int, int]]] = {}
    for k in usable:
        c = _pick(eps[k], cands[k], "intro", [], p)
        results[eps[k].title_id]["intro"] = _describe(k, eps, c, p, "intro") if c else None
        intro_items[k] = [(c["a0"], c["a1"])] if c else []
        if c is None:
            _note(results[eps[k].title_id], "no stretch of at least %.0f s shared with the other episodes near its start" % p["min_intro_s"])
    if not with_credits:
        return
    pair = _pairs({k: zero_spans(win[k], intro_items[k], margin[k]) for k in usable}, eps, p)
    for k in usable:
        c = _pick(eps[k], _stretches(k, eps, usable, pair, p), "credits", intro_items[k], p)
        results[eps[k].title_id]["end_credits"] = _describe(k, eps, c, p, "credits") if c else None


def find_intros_and_recaps(episodes: list[Episode], params: dict | None = None) -> dict[str, dict]:
    """Per title_id: {"intro": {...} | None, "recap": {...} | None, "end_credits": {...} | None, "note": str} (module doc)."""
    p = {**DEFAULTS, **(params or {})}
    eps = sorted(episodes, key=lambda e: (e.episode is None, e.episode if e.episode is not None else 0, e.title_id))
    results: dict[str, dict] = {e.title_id: {"intro": None, "recap": None, "end_credits": None, "note": ""} for e in eps}
    usable = [k for k, e in enumerate(eps) if e.audio is not None and len(e.audio["items"]) > 0]
    for k, e in enumerate(eps):
        if k not in usable:
            results[e.title_id]["note"] = "no audio fingerprint: intro and recap are found from the sound"
    if len(usable) < 2:
        for k in usable:
            results[eps[k].title_id]["note"] = "a single episode with audio in this season: an intro is found by comparing episodes"
    else:
        _intros_and_credits(eps, usable, results, p)
    for k, e in enumerate(eps):  # in episode order: the earlier episodes' recaps are known when this one is searched
        if e.audio is None and not e.pictures:
            continue
        r = results[e.title_id]
        src = sources(k, eps, p)
        if not src:
            _note(r, "no previous episode in the season: no recap searched")
            continue
        r["recap"] = find_recap(k, eps, results, p)
        prev = eps[src[0]].episode
        if prev != e.episode - 1:
            _note(r, f"episode {e.episode - 1} missing: recap searched in episode {prev} and before")
    return _public(results)


def _public(results: dict) -> dict:
    for r in results.values():
        for key in ("intro", "recap", "end_credits"):
            if r.get(key):
                r[key].pop("_items", None)
    return results
