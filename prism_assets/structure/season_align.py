"""Alignment of two episodes' fingerprints for the season matcher (``season.py``): Chromaprint item runs, and the
fine edges and confirmation of a shared stretch with the 20-ms band envelopes (``fingerprint.band_envelope``).

Items (``match_runs``): every item is looked up by five overlapping 16-bit keys (bits 0-15, 4-19, ..., 16-31)
in the other sequence; each exact key hit votes for the offset j - i (keys seen more than ``max_key_repeats``
times cast no vote). The ``top_offsets`` best offsets (votes summed over +-1 item, peaks >= 3 items apart)
and, with ``local``, the 3 best of every block of ``local_block_items`` items of a (blocks overlapping by
half) are checked item by item: bit errors <= ``item_max_bits`` (the shared jingle 0-7 of 32, unrelated
tonal music 8-17, speech/noise ~16), gaps of <= ``gap_items`` non-matching items bridged, runs shorter than
``min_run_s`` dropped, runs with a mean error over ``run_max_bits`` rejected; static items (within 8 bits of
the item ~1 s away: silence, held tones, noise-like ambience) never match. Why local: a 2.5-s recap piece
matching at 2-4 bits gets ~5-8 votes (a 16-bit window survives e random bit errors with probability
C(16,e)/C(32,e)), a wandering tone in both episodes 15-27 at wrong offsets; ranked over the whole opening
the piece's offset was never checked (measured: 9 of the 11 recaps with a late start or a missed piece on
seeds 11-16).

Envelopes: Chromaprint places a boundary only to within its ~2.6 s item window. The band envelopes, smoothed
over ~80 ms (``_env``: episodes lie at an arbitrary sub-frame phase) and aligned at the offset of the
matching items (then to the 20-ms frame, lag +-0.2 s, with a constant gain from the stretch's interior), say
frame by frame whether two episodes play the same sound:

* agree: level (median over bands of |dB difference - gain|) and change over 60 ms (median over bands of the
  difference of the changes; towards the next frames for a start, the previous ones for an end) both within
  ``env_same_db``;
* neutral: both frames quiet (every band below ``env_quiet_db``), or agreeing while neither moves (fewer than
  a quarter of the bands change by ``INFORMATIVE_DB``): silence, held tones and same-level noise beds are
  alike everywhere and say nothing;
* disagree: otherwise.

Measured on the generated seasons (pairs aligned at the true intro/recap offsets, each episode shifted by
0-17 ms): inside the intro 40 % of frames agree, 15 % disagree (the rest neutral: decaying notes); inside
recap pieces 80 % / 6 %; in the 3 s before the intro (other cold opens, often the same-level noise bed) 3 %
/ 50 %; next to a recap piece 0 % / 97 %. The old rule (unsmoothed, 3 dB, "grow while 60 % of the last 0.2 s
agree") let two unrelated noise beds agree in ~half of the frames and grew edges 1.1 s into them.

An edge is a change point, placed with ALL the episodes that share the stretch at once (``refine_edges``):
every frame scores, per partner, +1 agree, -1 disagree, -0.1 neutral, and the start is the frame b (within
``env_reach_s`` of the coarse edge, never past the stretch's middle) that maximises the sum of the scores
from b inward; the end likewise. So an edge moves outward only over frames where most partners agree; one
partner that shares the ambience before the intro is outvoted by the others; silence or a steady bed at
an edge is left outside. A recap piece is confirmed when most of its informative frames agree
(``envelope_agreement``: true pieces on seeds 11-16 all 1.0; the item matches that are not recap pieces 0: steady
sound only, no informative frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGREE, DISAGREE, NEUTRAL = 1.0, -1.0, -0.1  # per frame and partner (season_align doc)


@dataclass
class Run:
    a0: int  # first/last matching item in a
    a1: int
    d: int  # b index = a index + d
    err: float  # mean differing bits over matching items


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def _static(items: np.ndarray, lag: int = 8, max_bits: int = 8) -> np.ndarray:
    """Stationary items: within ``max_bits`` of the item ``lag`` items (~1 s) before or after. Silence,
    held tones, hum and noise-like ambience look alike in every episode, so they are no evidence of
    shared content. Measured on the generated seasons (lag 8): a noise bed 5-9 bits, the jingle 10-13
    (5th-50th percentile), speech 10-20. (Adjacent items are always similar: their windows share 16 of
    18 frames; items 1 s apart share none.)"""
    s = np.zeros(len(items), dtype=bool)
    if len(items) > lag:
        d = _popcount(items[lag:] ^ items[:-lag]) <= max_bits
        s[lag:] |= d
        s[:-lag] |= d
    return s


def _keys(items: np.ndarray) -> list[np.ndarray]:
    """Five overlapping 16-bit windows of each item: with e bits differing at random, one window is intact
    with high probability (e = 4: 57 % each), so even a 1-s stretch gets several votes."""
    x = items.astype(np.int64)
    return [(x >> shift) & 0xFFFF for shift in (0, 4, 8, 12, 16)]


def _candidate_offsets(a: np.ndarray, b: np.ndarray, p: dict, local: bool = False) -> list[int]:
    """Offsets d (b index - a index) ranked by key-hit votes; with ``local`` also the best of each block of a."""
    if len(a) == 0 or len(b) == 0:
        return []
    ia_all, jb_all = [], []
    for ka, kb in zip(_keys(a), _keys(b)):
        ua, ca = np.unique(ka, return_counts=True)
        ub, cb = np.unique(kb, return_counts=True)
        bad = np.concatenate([ua[ca > p["max_key_repeats"]], ub[cb > p["max_key_repeats"]]])
        order = np.argsort(kb, kind="stable")
        kbs = kb[order]
        ok = ~np.isin(ka, bad)
        ia = np.nonzero(ok)[0]
        lo = np.searchsorted(kbs, ka[ia], "left")
        hi = np.searchsorted(kbs, ka[ia], "right")
        n = hi - lo
        if n.sum() == 0:
            continue
        rep_i = np.repeat(ia, n)
        start = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        jb = order[start + np.arange(n.sum())]
        ia_all.append(rep_i)
        jb_all.append(jb)
    if not ia_all:
        return []
    ia = np.concatenate(ia_all)
    d = np.concatenate(jb_all) - ia + (len(a) - 1)
    votes = np.bincount(d, minlength=len(a) + len(b) - 1).astype(np.float64)
    sm = votes + np.concatenate([[0], votes[:-1]]) + np.concatenate([votes[1:], [0]])
    out: list[int] = []
    for idx in np.argsort(-sm, kind="stable"):
        if sm[idx] < 3 or len(out) >= p["top_offsets"]:
            break
        if all(abs(idx - o) >= 3 for o in out):
            out.append(int(idx))
    if local and p["local_block_items"] > 0:  # a short stretch gets few votes; ranked among all of a it loses to long or repetitive material elsewhere
        for o in _local_offsets(ia, d, len(a) + len(b) - 1, p["local_block_items"]):
            if all(abs(o - x) >= 2 for x in out):
                out.append(o)
    return [o - (len(a) - 1) for o in out]


def _local_offsets(ia: np.ndarray, d: np.ndarray, nd: int, block: int, k: int = 3) -> list[int]:
    """The ``k`` best-voted offsets (votes summed over +-1 item, at least 3) of each block of ``block`` items of a
    (blocks overlapping by half), best first."""
    found: dict[int, float] = {}
    for shift in (0, block // 2):
        key = ((ia + shift) // block).astype(np.int64) * (nd + 2) + d + 1  # +1: d - 1 never reaches the block below
        u, c = np.unique(key, return_counts=True)
        sm = c + _count_at(u, c, u - 1) + _count_at(u, c, u + 1)
        g = u // (nd + 2)
        order = np.lexsort((-sm, g))
        pos = np.arange(len(order))
        rank = pos - np.maximum.accumulate(np.where(np.r_[True, g[order][1:] != g[order][:-1]], pos, 0))
        for x in order[(rank < k) & (sm[order] >= 3)]:
            o = int(u[x] % (nd + 2) - 1)
            found[o] = max(found.get(o, 0), float(sm[x]))
    return sorted(found, key=lambda o: -found[o])


def _count_at(u: np.ndarray, c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts ``c`` of the sorted unique keys ``u`` at keys ``x`` (0 where absent)."""
    pos = np.minimum(np.searchsorted(u, x), len(u) - 1)
    return np.where(u[pos] == x, c[pos], 0)


def _runs_at(a: np.ndarray, b: np.ndarray, d: int, sa: np.ndarray, sb: np.ndarray, p: dict, min_items: int) -> list[Run]:
    i0, i1 = max(0, -d), min(len(a), len(b) - d)
    if i1 - i0 < min_items:
        return []
    e = _popcount(a[i0:i1] ^ b[i0 + d : i1 + d]).astype(np.int32)
    static = sa[i0:i1] | sb[i0 + d : i1 + d]
    match = (e <= p["item_max_bits"]) & ~static
    idx = np.nonzero(match)[0]
    if len(idx) == 0:
        return []
    # a gap is bridged when it has few informative mismatches (static items are neutral) and is not too long
    informative_miss = np.cumsum(~match & ~static)
    miss_between = informative_miss[idx[1:]] - informative_miss[idx[:-1]]
    breaks = np.nonzero((miss_between > p["gap_items"]) | (np.diff(idx) > p["max_gap_items"]))[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(idx) - 1]])
    runs = []
    for s, t in zip(starts, ends):
        r0, r1 = idx[s], idx[t]
        # edges: items near a boundary see both sides and drift up gradually; keep the edges where the mean of
        # 3 items is at most edge_bits (static items count as edge_bits)
        es = np.where(static, p["edge_bits"], e).astype(np.float64)
        while r1 - r0 >= 2 and es[r0 : r0 + 3].mean() > p["edge_bits"]:
            r0 += 1
        while r1 - r0 >= 2 and es[r1 - 2 : r1 + 1].mean() > p["edge_bits"]:
            r1 -= 1
        if r1 - r0 + 1 < min_items:
            continue
        inside = idx[(idx >= r0) & (idx <= r1)]
        err = float(e[inside].mean()) if len(inside) else 99.0
        if err <= p["run_max_bits"]:
            runs.append(Run(int(r0 + i0), int(r1 + i0), d, err))
    return runs


def match_runs(a: np.ndarray, b: np.ndarray, p: dict, min_s: float | None = None, item_s: float = 0.12380952380952381, local: bool = False) -> list[Run]:
    """Stretches of ``a`` found again in ``b`` (at offset ``d``), best offset per stretch, sorted by start. ``p``: season.DEFAULTS
    and overrides; ``local``: also check the best offsets of each block of a (short stretches, see ``_local_offsets``)."""
    edge_loss = p["end_bias_s"] - p["start_bias_s"]  # a stretch of L s gives a run of ~(L - edge_loss) s of items
    min_items = max(4, int(round(((p["min_run_s"] if min_s is None else min_s) - edge_loss) / item_s)))
    sa, sb = _static(a), _static(b)
    found: list[Run] = []
    for d0 in _candidate_offsets(a, b, p, local):
        for d in (d0 - 1, d0, d0 + 1):
            found += _runs_at(a, b, d, sa, sb, p, min_items)
    found.sort(key=lambda r: (r.err, -(r.a1 - r.a0)))
    kept: list[Run] = []
    for r in found:  # one offset per stretch of a: the lowest error
        if all(r.a1 < k.a0 or r.a0 > k.a1 for k in kept):
            kept.append(r)
    kept.sort(key=lambda r: r.a0)
    merged: list[Run] = []
    for r in kept:  # pieces of one stretch split by a short disagreement: same offset (+-1 item), close together
        m = merged[-1] if merged else None
        if m and abs(r.d - m.d) <= 1 and r.a0 - m.a1 <= p["merge_gap_items"]:
            w0, w1 = m.a1 - m.a0 + 1, r.a1 - r.a0 + 1
            merged[-1] = Run(m.a0, r.a1, m.d if w0 >= w1 else r.d, (m.err * w0 + r.err * w1) / (w0 + w1))
        else:
            merged.append(r)
    return merged


# ---- band envelopes


SMOOTH = np.hanning(9)[1:-1] / np.hanning(9)[1:-1].sum()  # 7 frames (~80 ms effective) of band power
STEP = 3  # frame-to-frame change: over 3 frames (60 ms)
INFORMATIVE_DB = 3.0  # a frame pair says something when a quarter of the bands change by this much in one of them
_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _env(au: dict) -> tuple[np.ndarray, float] | None:
    """Band levels (dB + 90) smoothed over ~80 ms, and the hop; None without an envelope. Smoothed because two
    episodes' 20-ms frames of the same sound lie at an arbitrary sub-frame phase: a 20-ms frame of noise or speech
    shifted by 10 ms is another random draw in its narrow bands (measured: recap pieces shifted by 3-17 ms agree in
    25 % of raw frames, 80 % of smoothed ones), while the smoothed level still follows syllables and notes."""
    e = au.get("envelope") if au else None
    if not e or len(e["db"]) == 0:
        return None
    db = e["db"]
    hit = _cache.get(id(db))
    if hit is None or hit[0] is not db:
        power = 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)  # stored as 2 * (dB + 90)
        pad = len(SMOOTH) // 2
        padded = np.concatenate([np.repeat(power[:1], pad, axis=0), power, np.repeat(power[-1:], pad, axis=0)])
        smooth = sum(w * padded[i : i + len(power)] for i, w in enumerate(SMOOTH))
        if len(_cache) > 64:
            _cache.clear()
        hit = _cache[id(db)] = (db, (10.0 * np.log10(smooth)).astype(np.float32))
    return hit[1], float(e["hop_s"])


def _align(ep, other, dt: float, t0: float, t1: float, p: dict) -> tuple[np.ndarray, np.ndarray, int, float] | None:
    """(A, B, frame offset of B, gain B - A in dB) for the stretch [t0, t1] of ep (other's time = ep's + dt), or None."""
    ea, eb = _env(ep.audio), _env(other.audio)
    if ea is None or eb is None or t1 - t0 < 1.0:
        return None
    (A, hop), (B, _) = ea, eb
    f0, f1 = int((t0 + 0.3 - ep.audio["start_s"]) / hop), int((t1 - 0.3 - ep.audio["start_s"]) / hop)
    shift = int(round((dt + ep.audio["start_s"] - other.audio["start_s"]) / hop))
    best = None
    for lag in range(-10, 11):
        fa = np.arange(max(f0, 0, -(shift + lag)), min(f1, len(A), len(B) - shift - lag))
        if len(fa) < 20:
            continue
        diff = A[fa] - B[fa + shift + lag]
        gain = float(np.clip(np.median(diff), -6.0, 6.0))
        # mean (not median: 0.5-dB steps tie across lags) over frames of the level difference, each capped at 12 dB
        score = float(np.mean(np.minimum(np.median(np.abs(diff - gain), axis=1), 12.0)))
        if best is None or score < best[0]:
            best = (score, lag, gain)
    if best is None or best[0] > p["env_same_db"]:
        return None
    return A, B, shift + best[1], best[2]


def _scores(A: np.ndarray, B: np.ndarray, off: int, gain: float, lo: int, hi: int, p: dict, forward: bool) -> np.ndarray:
    """Per frame f in [lo, hi) of A: AGREE / DISAGREE / NEUTRAL, 0 where the partner has no frame."""
    out = np.zeros(max(0, hi - lo), dtype=np.float64)
    step = STEP if forward else -STEP
    f = np.arange(lo, hi)
    ok = (np.minimum(f, f + step) >= 0) & (np.maximum(f, f + step) < len(A)) & (np.minimum(f, f + step) + off >= 0) & (np.maximum(f, f + step) + off < len(B))
    f = f[ok]
    if len(f) == 0:
        return out
    a, b = A[f], B[f + off]
    da, db = A[f + step] - a, B[f + off + step] - b
    level = np.median(np.abs(a - b - gain), axis=1)
    change = np.median(np.abs(da - db), axis=1)
    quiet_db = p["env_quiet_db"] + 90.0
    agree = (level <= p["env_same_db"]) & (change <= p["env_same_db"])
    moving = np.percentile(np.maximum(np.abs(da), np.abs(db)), 75, axis=1) >= INFORMATIVE_DB
    neutral = ((a.max(axis=1) < quiet_db) & (b.max(axis=1) < quiet_db)) | (agree & ~moving)  # silence; steady sound alike
    out[ok] = np.where(neutral, NEUTRAL, np.where(agree, AGREE, DISAGREE))
    return out


def refine_edges(ep, partners: list[tuple[object, float]], start: float, end: float, p: dict,
                 edges: tuple[bool, bool] = (True, True)) -> tuple[float | None, float | None, int]:
    """Edges of the stretch [start, end] of ep (coarse), shared with each (other, dt) of ``partners`` (other's
    time = ep's + dt): (start or None, end or None, partners used). An edge stays None without envelopes or
    without enough agreeing frames near it. Each edge is searched up to the stretch's middle; when only one edge is
    placed (``edges``), up to the other end (a short recap piece whose coarse start is 1.5 s early)."""
    aligned = [x for x in (_align(ep, o, dt, start, end, p) for o, dt in partners) if x is not None]
    if not aligned:
        return None, None, 0
    hop = float(ep.audio["envelope"]["hop_s"])
    n = len(aligned[0][0])
    base = ep.audio["start_s"]
    reach = int(round(p["env_reach_s"] / hop))
    fs, fe = int(round((start - base) / hop)), int(round((end - base) / hop))
    mid = (fs + fe) // 2
    out: list[float | None] = [None, None]
    if edges[0]:  # never past the middle, unless only this edge is placed (a short recap piece: its start may lie past it)
        lo, hi = max(0, fs - reach), min(mid if edges[1] else fe, fs + reach, n)
        if hi - lo >= 5:
            sc = sum(_scores(A, B, off, g, lo, hi, p, True) for A, B, off, g in aligned)
            inward = np.cumsum(sc[::-1])[::-1]  # inward[i] = sum of the scores of frames lo + i .. hi - 1
            i = len(inward) - 1 - int(np.argmax(inward[::-1]))  # the innermost of equal maxima
            if inward[i] >= 5 * AGREE:
                out[0] = base + (lo + i) * hop
    if edges[1]:
        lo, hi = max(0, mid if edges[0] else fs, fe - reach), min(n, fe + reach)
        if hi - lo >= 5:
            sc = sum(_scores(A, B, off, g, lo, hi, p, False) for A, B, off, g in aligned)
            outward = np.cumsum(sc)  # outward[i] = sum of the scores of frames lo .. lo + i
            i = int(np.argmax(outward))  # the innermost of equal maxima
            if outward[i] >= 5 * AGREE:
                out[1] = base + (lo + i + 1) * hop
    return out[0], out[1], len(aligned)


def envelope_agreement(ep, other, dt: float, t0: float, t1: float, p: dict) -> float | None:
    """Fraction of the informative 20-ms frames of ep's [t0, t1] that agree with other at t + dt; None without
    envelopes; 0 when the two cannot be aligned (different sounds) or nothing moves (fewer than 10 informative
    frames: a held tone or noise bed in both, which Chromaprint may match at 3-5 bits)."""
    al = _align(ep, other, dt, t0, t1, p)
    if al is None:
        return None if _env(ep.audio) is None or _env(other.audio) is None else 0.0
    A, B, off, g = al
    hop = float(ep.audio["envelope"]["hop_s"])
    lo, hi = int((t0 + 0.3 - ep.audio["start_s"]) / hop), int((t1 - 0.3 - ep.audio["start_s"]) / hop)
    sc = _scores(A, B, off, g, max(0, lo), min(len(A), hi), p, True)
    informative = (sc == AGREE) | (sc == DISAGREE)
    return float((sc[informative] > 0).mean()) if informative.sum() >= 10 else 0.0  # steady sound only: no evidence
