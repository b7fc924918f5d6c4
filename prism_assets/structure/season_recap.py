"""The recap of an episode: material near its start that repeats earlier episodes (``season.py`` runs it per episode,
in episode order, once every intro and end credits is known).

Sources: the ``recap_back`` episodes numbered just below (nearest first; numbers may be missing): a "previously on"
repeats the previous episode mostly, but also scenes two or more episodes back. Of each source, its body is
searched: its own intro, recap and end credits are left out (its recap is material of earlier episodes, found
in them directly).

Pieces, per source:

* sound (``season_align.match_runs`` with ``local``): runs >= ``min_recap_piece_s`` of this episode's opening (up
  to ``recap_after_intro_s`` after the intro end; the search window without an intro) whose 20-ms band envelopes
  agree (``recap_env_agree``; without envelopes: a clear item match or the pictures);
* pictures (``season_pictures.picture_pieces``): chains of >= 2 1/s samples matching the source's samples by dHash
  and colour layout at one offset, where the sound found nothing: a recap re-mixed under a narrator, or excerpts
  too short for Chromaprint's 2.6-s items.

A stretch of the opening found in several sources keeps the piece of the nearest source (sound before pictures).
Pieces closer than ``recap_join_s`` are joined; the recap is the joined stretch with the most material (picture-only
material weighs ``recap_pic_weight``: 1/s samples place edges less well, and look-alike shots exist) that lies
in the opening: ending before the intro (anywhere before it: a recap may come first and a long cold open after
it, or come after the cold open), or starting within ``recap_max_start_s`` after the intro end; without an intro,
starting within max(``recap_max_start_s``, ``recap_open_frac`` of the episode). It never overlaps the intro or
the end credits. ``from_episode`` is the source of most of its material, ``from_episodes`` all of them.

Edges: sound pieces as before (calibrated item biases, then the band envelopes); picture pieces half way between
the first/last matching sample and its neighbour (<= 0.5 s where those samples match, see ``season_pictures``).
"""

from __future__ import annotations

import numpy as np

from . import season_align as align
from .fingerprint import picture_agreement
from .season_align import Run, envelope_agreement, refine_edges
from .season_common import Episode, confidence, head_items, item_at, pair_dt, to_s
from .season_pictures import picture_pieces


def sources(k: int, eps: list[Episode], p: dict) -> list[int]:
    """The episodes a recap of eps[k] may repeat: up to ``recap_back`` numbered below it, nearest first."""
    num = eps[k].episode
    if num is None:
        return []
    lower = [j for j, e in enumerate(eps) if e.episode is not None and e.episode < num and (e.audio is not None or e.pictures)]
    return sorted(lower, key=lambda j: -eps[j].episode)[: max(1, int(p["recap_back"]))]


def _spans(result: dict, keys=("intro", "recap", "end_credits")) -> list[tuple[float, float]]:
    return [(float(result[k]["start_s"]), float(result[k]["end_s"])) for k in keys if result.get(k)]


def _piece_confirmed(r: Run, ep: Episode, pe: Episode, p: dict) -> bool:
    """A recap piece is short, and unrelated speech over similar ambience can match a few items at 4-5 bits: with
    band envelopes its 20-ms frames must agree (``recap_env_agree``); without, it needs a clear match (``recap_clear_bits``)
    or a fair one the pictures confirm."""
    if r.err > p["run_max_bits"]:
        return False
    au = ep.audio
    t0, t1 = to_s(au, r.a0, p["start_bias_s"]), to_s(au, r.a1, p["end_bias_s"])
    env = envelope_agreement(ep, pe, pair_dt(ep, pe, r), t0, t1, p)
    if env is not None:
        return env >= p["recap_env_agree"]
    if r.err <= p["recap_clear_bits"]:
        return True
    good, n = picture_agreement(ep, pe, t0, t1, pair_dt(ep, pe, r), p)
    return n > 0 and good >= 0.5 * n


def _sound_pieces(ep: Episode, pe: Episode, limit_s: float, skip: list[tuple[float, float]], src_skip: list[tuple[float, float]],
                  p: dict) -> list[dict]:
    au, pa = ep.audio, pe.audio
    if au is None or pa is None or len(au["items"]) == 0 or len(pa["items"]) == 0:
        return []
    a = au["items"][: max(0, min(len(au["items"]), item_at(au, limit_s) + 1))].copy()
    b = pa["items"].copy()
    for items, track, spans in ((b, pa, src_skip), (a, au, skip)):
        # every item about half inside (a loud jingle dominates an item that is half ambience); zeros never match. This
        # episode's own intro and end credits too: items straddling the theme's first note match the source's
        centre = track["start_s"] + track.get("centre_s", 1.3) + np.arange(len(items)) * track["item_s"]
        for s, e in spans:
            items[(centre >= s - p["exclude_margin_s"]) & (centre <= e + p["exclude_margin_s"])] = 0
    out = []
    for r in align.match_runs(a, b, p, p["min_recap_piece_s"], au["item_s"], local=True):
        t0, t1 = to_s(au, r.a0, p["start_bias_s"]), to_s(au, r.a1, p["end_bias_s"])
        if any(min(t1, e) - max(t0, s) > 1.0 for s, e in skip) or not _piece_confirmed(r, ep, pe, p):  # item edges: up to ~1 s
            continue
        out.append({"start_s": t0, "end_s": t1, "run": r, "dt": pair_dt(ep, pe, r), "err": r.err, "kind": "sound"})
    return out


def _covered(q: dict, others: list[dict]) -> bool:
    """Whether more than half of piece q lies inside one of the others (item edges overlap neighbours by ~0.5 s)."""
    return any(min(q["end_s"], o["end_s"]) - max(q["start_s"], o["start_s"]) > 0.5 * (q["end_s"] - q["start_s"]) for o in others)


def _own_pieces(ep: Episode, pe: Episode, limit_s: float, skip: list, src_skip: list, p: dict) -> list[dict]:
    pieces = _sound_pieces(ep, pe, limit_s, skip, src_skip, p)
    for q in picture_pieces(ep, pe, 0.0, limit_s, p, skip, src_skip):
        if _covered(q, pieces):
            continue  # the sound found it (and places its edges better)
        if any(q["start_s"] < e - 0.5 and q["end_s"] > s + 0.5 for s, e in skip):
            continue
        pieces.append({**q, "start_s": max(0.0, q["start_s"]), "kind": "picture", "err": None})
    return pieces


def _opening_limit(ep: Episode, intro: dict | None, p: dict) -> float:
    if intro:
        return float(intro["end_s"]) + p["recap_after_intro_s"]
    if ep.audio is not None:
        return to_s(ep.audio, head_items(ep, p), 0)
    return max(p["search_frac"] * ep.duration_s, p["search_min_s"])


def find_recap(k: int, eps: list[Episode], results: dict, p: dict) -> dict | None:
    ep = eps[k]
    res = results[ep.title_id]
    intro = res.get("intro")
    limit_s = _opening_limit(ep, intro, p)
    skip = _spans(res, ("intro", "end_credits"))
    pieces: list[dict] = []
    for rank, j in enumerate(sources(k, eps, p)):
        src = eps[j]
        nearer = list(pieces)
        for q in _own_pieces(ep, src, limit_s, skip, _spans(results.get(src.title_id, {})), p):
            if not _covered(q, nearer):  # else a nearer source has this stretch already
                pieces.append({**q, "src": j, "rank": rank})
    if not pieces:
        return None
    pieces.sort(key=lambda q: q["start_s"])
    groups: list[list[dict]] = [[pieces[0]]]
    for q in pieces[1:]:
        if q["start_s"] - max(x["end_s"] for x in groups[-1]) <= p["recap_join_s"]:
            groups[-1].append(q)
        else:
            groups.append([q])

    def in_opening(g: list[dict]) -> bool:
        start = g[0]["start_s"]
        if intro:  # before the intro (however long the cold open), or right after it
            return start - float(intro["end_s"]) <= p["recap_max_start_s"]
        return start <= max(p["recap_max_start_s"], p["recap_open_frac"] * ep.duration_s)

    groups = [g for g in groups if in_opening(g)]
    if not groups:
        return None
    g = max(groups, key=lambda g: sum((x["end_s"] - x["start_s"]) * (1.0 if x["kind"] == "sound" else p["recap_pic_weight"]) for x in g))
    return _describe(ep, eps, g, intro, p)


def _describe(ep: Episode, eps: list[Episode], g: list[dict], intro: dict | None, p: dict) -> dict:
    first, last = g[0], max(g, key=lambda x: x["end_s"])
    start, end = first["start_s"], last["end_s"]
    if first["kind"] == "sound":
        fs, _, _ = refine_edges(ep, [(eps[first["src"]], first["dt"])], start, first["end_s"], p, (True, False))
        start = fs if fs is not None else start
    if last["kind"] == "sound":
        _, le, _ = refine_edges(ep, [(eps[last["src"]], last["dt"])], last["start_s"], end, p, (False, True))
        end = le if le is not None else end
    if intro:  # a recap piece cut from just after (before) the previous intro, placed just after (before) this one, continues
        if start >= float(intro["start_s"]):  # the intro at the same offset: the intro, found in all episodes, keeps its stretch
            start = max(start, float(intro["end_s"]))
        else:
            end = min(end, float(intro["start_s"]))
    share: dict[int, float] = {}
    for x in g:
        share[x["src"]] = share.get(x["src"], 0.0) + x["end_s"] - x["start_s"]
    main = max(share, key=lambda j: (share[j], -eps[j].episode))
    order = list(dict.fromkeys(x["src"] for x in g))
    evidence, confs, weights = [], [], []
    for j in order:
        src = eps[j]
        sound = [x for x in g if x["src"] == j and x["kind"] == "sound"]
        pics = [x for x in g if x["src"] == j and x["kind"] == "picture"]
        if sound:
            err = float(np.mean([x["err"] for x in sound]))
            pic = [0, 0]
            for x in sound:
                gd, c = picture_agreement(ep, src, x["start_s"], x["end_s"], x["dt"], p)
                pic[0] += gd
                pic[1] += c
            where = ", ".join(f"{x['start_s'] + x['dt']:.1f}-{x['end_s'] + x['dt']:.1f} s" for x in sound)
            evidence.append(f"audio: {len(sound)} piece(s) from episode {src.episode} ({src.title_id}) at {where}, mean {err:.1f}/32 differing bits")
            evidence.append(f"picture: {pic[0]}/{pic[1]} 1/s samples within {p['picture_max_bits']}/64 dHash bits" if pic[1] else "picture: no samples compared")
            confs.append(confidence(1, 1, err, tuple(pic)))
            weights.append(sum(x["end_s"] - x["start_s"] for x in sound))
        if pics:
            n = sum(x["samples"] for x in pics)
            bits = float(np.mean([x["bits"] for x in pics]))
            where = ", ".join(f"{x['start_s'] + x['dt']:.1f}-{x['end_s'] + x['dt']:.1f} s" for x in pics)
            evidence.append(f"picture: {len(pics)} piece(s) from episode {src.episode} ({src.title_id}) at {where} by their 1/s samples alone "
                            f"({n} samples, mean {bits:.1f}/64 dHash bits, colour layout within {p['recap_pic_layout']}); the sound differs "
                            "(re-mixed, narrated over, or too short)")
            confs.append(round(0.8 * max(0.0, 1.0 - bits / (2 * p["recap_pic_bits"] + 1)) * min(1.0, n / 4), 3))
            weights.append(sum(x["end_s"] - x["start_s"] for x in pics))
    conf = round(float(np.average(confs, weights=weights)) if sum(weights) > 0 else float(np.mean(confs)), 3)
    return {"start_s": round(start, 3), "end_s": round(end, 3), "confidence": conf, "matched_episodes": [eps[j].title_id for j in order],
            "from_episode": eps[main].title_id, "from_episodes": [eps[j].title_id for j in order], "evidence": evidence}
