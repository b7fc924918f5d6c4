"""Recap pieces found by their pictures: the 1/s samples of an episode's opening matched to an earlier episode's
samples (``fingerprint.picture_signature``: 64-bit dHash + 4 x 4 colour layout), for the recaps the sound cannot
find (a "previously on" whose excerpts play under a narrator: Chromaprint items and band envelopes then describe
the narration, not the excerpt).

Method: a sample of the opening and a sample of the source *match* when their dHashes differ by at most
``recap_pic_bits`` and their colour layouts by at most ``recap_pic_layout`` (mean absolute difference, 0-1) -
the layout because the dHash sees only luma gradients (one test card in two hues, one set in two grades share it).
Samples whose hash is flat (fewer than ``FLAT_BITS`` bits set or unset: black, a plain colour) never match. A piece
is a chain of >= ``recap_pic_min_samples`` consecutive samples of the opening (1 s apart) whose matches keep one
offset (within ``recap_pic_max_dt_s``: the sample grids of two episodes are not aligned, so the same picture lies
up to half a sample apart), the longest first, kept when

* its pictures *place* it (``_placed``): compared with the source's pictures 1-3 s before and after their matches,
  inside the source stretch the chain covers, its samples match worse there by ``PLACE_BITS`` on average (dHash
  bits + ``LAYOUT_BITS`` x layout difference): the same changes at the same times. A still picture (a static shot,
  a card, a recurring set) matches at any offset and places nothing;
* its mean dHash distance is within 3/4 of ``recap_pic_bits`` (look-alike footage matches loosely).

A placed chain goes on over the samples either side that still match at its offset (the still end of an excerpt).
Its edges lie half way between its first (last) sample and the neighbouring sample (error <= 0.5 s where the
excerpt's first and last samples match; a moving picture sampled 0.5 s off may not, and the piece then looks up to
1 s shorter).

Measured on generated seasons (``prism_assets_tests/support/season_classes.py``: moving pictures, excerpts of
2.2-3 s): a recap sample vs the source sample nearest to it (up to 0.5 s apart) 0-7 bits, layout <= 0.03; two
smptehdbars shots of near hues in ``season_media.py`` seed 21: 0-3 bits, layout < 0.02, 8 samples in a row (the
false recap that ``_placed`` removes). Recaps within 1 s: class seeds 7-11 (tuning) 20/20, held-out 12-14 12/12 (the
narrated ones by pictures alone, edges 0.5 s out); ``season_media.py`` seeds 11-16, 21, 22, 31-33, 40: no false recap.

Limits: a picture-only piece needs 2 samples (an excerpt of >= ~2 s) whose picture changes (a still excerpt is not
placed); fast motion (noise, cellular automata, flashes) at a half-sample offset does not match; moving look-alike
footage (one set, the same camera move) can pass for recap material.
"""

from __future__ import annotations

import numpy as np

MAX_MATCHES = 12  # matches kept per sample (the closest)
FLAT_BITS = 3  # a dHash with fewer set (or unset) bits is a flat picture (black, one colour): no evidence
SHIFTS_S = (-3.0, -2.0, -1.0, 1.0, 2.0, 3.0)  # a chain is placed when, shifted by these along its own source stretch ...
PLACE_BITS = 2.0  # ... its samples match worse by this much on average (dHash bits + LAYOUT_BITS x layout difference)
LAYOUT_BITS = 100.0  # a mean colour-layout difference of 0.01 counts as one dHash bit (a drifting smooth picture changes colour, not gradients)


def _dist(ha: np.ndarray, la: np.ndarray | None, i: int, hb: np.ndarray, lb: np.ndarray | None, j: int) -> float:
    d = float(np.bitwise_count(ha[i] ^ hb[j]))
    if la is not None and lb is not None:
        d += LAYOUT_BITS * float(np.abs(la[i].astype(np.int16) - lb[j].astype(np.int16)).mean()) / 255.0
    return d


def _placed(path: list[tuple[int, int]], ta: np.ndarray, ha: np.ndarray, la, tb: np.ndarray, hb: np.ndarray, lb) -> bool:
    """Whether the chain's pictures fix its offset: each sample compared with the source pictures 1-3 s before and
    after its match, inside the source stretch the chain covers, matches worse there by ``PLACE_BITS`` on average
    (the same changes at the same times). A still picture (a static shot, a card, a recurring set) matches at any
    offset and places nothing."""
    lo, hi = min(tb[j] for _, j in path) - 0.5, max(tb[j] for _, j in path) + 0.5
    diffs = []
    for i, j in path:
        here = _dist(ha, la, i, hb, lb, j)
        for shift in SHIFTS_S:
            t = tb[j] + shift
            if lo <= t <= hi:
                k = int(np.clip(np.searchsorted(tb, t), 1, len(tb) - 1))
                k = k - 1 if abs(tb[k - 1] - t) <= abs(tb[k] - t) else k
                if k != j and abs(tb[k] - t) <= 0.6:
                    diffs.append(_dist(ha, la, i, hb, lb, k) - here)
    return len(diffs) >= 2 and float(np.mean(diffs)) >= PLACE_BITS


def _at(matches: list[tuple[int, int]], t: float, tb: np.ndarray, p: dict) -> bool:
    return any(abs(tb[j] - t) <= p["recap_pic_max_dt_s"] for j, _ in matches)


def _usable(pics: dict | None) -> bool:
    return bool(pics) and len(pics.get("t_s", [])) > 0


def _inside(t: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    out = np.zeros(len(t), dtype=bool)
    for a, b in spans:
        out |= (t >= a) & (t <= b)
    return out


def picture_pieces(ep, src, t0: float, t1: float, p: dict, skip_ep: list[tuple[float, float]] = (),
                   skip_src: list[tuple[float, float]] = ()) -> list[dict]:
    """Pieces of ep's [t0, t1] whose pictures are found again in src: [{start_s, end_s, dt (src time - ep time),
    samples, bits}] by start; samples inside ``skip_ep`` / ``skip_src`` spans (intros, credits, earlier recaps) are
    left out."""
    pa, pb = ep.pictures, src.pictures
    if not _usable(pa) or not _usable(pb):
        return []
    ta, ha = pa["t_s"], pa["hash"]
    tb, hb = pb["t_s"], pb["hash"]
    la, lb = pa.get("layout"), pb.get("layout")
    use_layout = la is not None and lb is not None and len(la) == len(ta) and len(lb) == len(tb)
    sel_a = np.nonzero((ta >= t0) & (ta <= t1) & ~_inside(ta, list(skip_ep)))[0]
    ok_b = ~_inside(tb, list(skip_src))
    pop_b = np.bitwise_count(hb)
    ok_b &= (pop_b >= FLAT_BITS) & (pop_b <= 64 - FLAT_BITS)
    jb = np.nonzero(ok_b)[0]
    if len(sel_a) == 0 or len(jb) == 0:
        return []
    matches: dict[int, list[tuple[int, int]]] = {}
    for i in sel_a:
        pop = int(np.bitwise_count(ha[i]))
        if pop < FLAT_BITS or pop > 64 - FLAT_BITS:
            continue
        bits = np.bitwise_count(hb[jb] ^ ha[i])
        good = bits <= p["recap_pic_bits"]
        if use_layout and good.any():
            lay = np.abs(lb[jb].astype(np.int16) - la[i].astype(np.int16)).mean(axis=1) / 255.0
            good &= lay <= p["recap_pic_layout"]
        if good.any():
            keep = np.nonzero(good)[0]
            keep = keep[np.argsort(bits[keep], kind="stable")[:MAX_MATCHES]]  # a still picture matches a whole shot: its best few
            matches[int(i)] = [(int(j), int(b)) for j, b in zip(jb[keep], bits[keep])]
    # chains: consecutive samples of ep (<= 1.5 s apart) whose matches keep one offset
    best: dict[tuple[int, int], tuple[int, int, tuple | None]] = {}  # (i, j) -> (chain length, total bits, previous (i, j))
    order = sorted(matches)
    for n, i in enumerate(order):
        prev = order[n - 1] if n and ta[i] - ta[order[n - 1]] <= 1.5 else None
        for j, b in matches[i]:
            link = (1, b, None)
            if prev is not None:
                for jp, _ in matches[prev]:
                    c = best[(prev, jp)]
                    if abs((tb[j] - tb[jp]) - (ta[i] - ta[prev])) <= p["recap_pic_max_dt_s"] and c[0] + 1 > link[0]:
                        link = (c[0] + 1, c[1] + b, (prev, jp))
            best[(i, j)] = link
    chains = sorted(((ln, -bits, key) for key, (ln, bits, _) in best.items() if ln >= p["recap_pic_min_samples"]), reverse=True)
    pieces: list[dict] = []
    for length, nbits, key in chains:
        path = [key]
        while best[path[-1]][2] is not None:
            path.append(best[path[-1]][2])
        first, last = path[-1][0], path[0][0]
        if any(first <= q["_last"] and last >= q["_first"] for q in pieces):
            continue
        dt = float(np.median([tb[j] - ta[i] for i, j in path]))
        if not _placed(path, ta, ha, la if use_layout else None, tb, hb, lb if use_layout else None) or -nbits / length > 0.75 * p["recap_pic_bits"]:
            continue  # a still picture matches at any offset: it places nothing (a recurring shot); look-alikes match loosely
        # placed: the samples either side that still match at its offset continue it (a still end of the excerpt)
        while last + 1 < len(ta) and ta[last + 1] - ta[last] <= 1.5 and _at(matches.get(last + 1, []), ta[last + 1] + dt, tb, p):
            last += 1
        while first > 0 and ta[first] - ta[first - 1] <= 1.5 and _at(matches.get(first - 1, []), ta[first - 1] + dt, tb, p):
            first -= 1
        if any(first <= q["_last"] and last >= q["_first"] for q in pieces):
            continue
        start = (ta[first] + ta[first - 1]) / 2 if first > 0 else ta[first] - 0.5
        end = (ta[last] + ta[last + 1]) / 2 if last + 1 < len(ta) else ta[last] + 0.5
        pieces.append({"start_s": float(start), "end_s": float(end), "dt": dt, "samples": int(last - first + 1), "bits": float(-nbits / length),
                       "_first": first, "_last": last})
    pieces.sort(key=lambda q: q["start_s"])
    for q in pieces:
        q.pop("_first")
        q.pop("_last")
    return pieces
