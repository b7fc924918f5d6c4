"""Subtitles against the speech of the matching audio track: coverage, timing, language and text.

- **coverage**: the share of detected speech that a cue covers, and the speech stretches no cue
  covers (at least `min_uncovered_s` long);
- **offset and drift**: cue activity against speech activity (10 ms hops), cross-correlated for a
  confidence (positive: the cues come late); the offset itself on onsets: speech onsets against
  cue starts (Gaussian trains, cross-correlated; of near-equal peaks the one nearest zero, as
  regular dialogue correlates one line over too), then each speech onset paired with the cue start
  nearest to it at that offset and the median difference of the pairs taken (cues outlast their
  speech and split long speeches, which moves an activity correlation; their in-points sit on the
  onsets). Drift per window with the robust line of sync.py;
- **language**: the cues' script and, for Latin script, stop-word evidence, against the track's
  language: a subtitle file in the wrong language stands out without any model;
- **text**: for the original language, word overlap of the cue text with the transcript of the
  same stretch, so a subtitle file of another title (or episode) stands out.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np

from .subtitles import Cue
from .sync import HOP_S, peak, robust_line, xcorr

STOPWORDS = {
    "en": "the and you that was for are with his they this have from not but what all were when there can said".split(),
    "fr": "le la les des est une que pas pour qui dans sur avec vous nous mais tout cette elle sont".split(),
    "de": "der die das und ist nicht ich sie mit den ein eine auch sich auf was wir dass aber".split(),
    "es": "que los las una por con para pero como más esto está todo eso muy aquí ahora también porque".split(),
    "it": "che non una per sono questo della con come anche cosa tutto perché molto questa ancora".split(),
    "pt": "que não uma para com por mais mas como isso você está muito também ainda quando".split(),
}
STOPWORDS = {code: frozenset(words) for code, words in STOPWORDS.items()}
SCRIPTS = (("ko", "HANGUL"), ("ja", "HIRAGANA"), ("ja", "KATAKANA"), ("zh", "CJK UNIFIED"), ("ru", "CYRILLIC"), ("ar", "ARABIC"),
           ("th", "THAI"), ("he", "HEBREW"), ("hi", "DEVANAGARI"), ("el", "GREEK"))


GUARD = 150  # hops (1.5 s) around a peak that belong to it: speech stretches last seconds


def _train(times, n: int, sigma_hops: float = 5.0) -> np.ndarray:
    """Events (onsets, cue starts) as Gaussian bumps of `sigma_hops` on the 10 ms grid."""
    x = np.zeros(n, dtype=np.float32)
    idx = np.clip(np.round(np.asarray(list(times), dtype=float) / HOP_S).astype(int), 0, n - 1) if len(times) else np.zeros(0, int)
    np.add.at(x, idx, 1.0)
    k = np.arange(-int(3 * sigma_hops), int(3 * sigma_hops) + 1)
    return np.convolve(x, np.exp(-0.5 * (k / sigma_hops) ** 2).astype(np.float32), mode="same")


def _activity(spans, n: int) -> np.ndarray:
    a = np.zeros(n, dtype=np.float32)
    for s, e in spans:
        a[max(0, int(s / HOP_S)):max(0, min(n, int(np.ceil(e / HOP_S))))] = 1.0
    return a


def coverage(cues: list[Cue], speech: list[tuple[float, float]], min_uncovered_s: float = 2.0) -> dict:
    """Share of speech covered by cues and the uncovered stretches of speech."""
    end = max([e for _, e in speech] + [c.end for c in cues] + [0.0])
    n = int(np.ceil(end / HOP_S)) + 1
    sp, cu = _activity(speech, n) > 0, _activity([(c.start, c.end) for c in cues], n) > 0
    total = float(sp.sum())
    gaps = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (sp & ~cu).astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):  # runs of uncovered speech (vectorised: titles are ~1M hops)
        if (b - a) * HOP_S >= min_uncovered_s:
            gaps.append({"start_s": round(float(a) * HOP_S, 2), "end_s": round(float(b) * HOP_S, 2)})
    return {"speech_s": round(total * HOP_S, 2), "covered_ratio": round(float((sp & cu).sum()) / total, 3) if total else None,
            "uncovered": gaps}


def timing(cues: list[Cue], speech: list[tuple[float, float]], max_offset_s: float = 10.0, window_s: float = 300.0) -> dict:
    """Global offset of the cues against speech (ms, positive = late), its confidence, and the drift."""
    end = max([e for _, e in speech] + [c.end for c in cues] + [0.0])
    n = int(np.ceil(end / HOP_S)) + 1
    sp = _activity(speech, n)
    cu = _activity([(c.start, c.end) for c in cues], n)
    if sp.sum() * HOP_S < 5 or len(cues) < 3:
        return {"offset_ms": None, "confidence": 0.0, "drift_ms_per_hour": None, "note": "too little speech or too few cues"}
    a, b = sp - sp.mean(), cu - cu.mean()
    lags, vals = xcorr(a, b, int(max_offset_s / HOP_S))
    _, _, conf = peak(lags, vals, guard=GUARD)
    activity = float(lags[int(np.argmax(vals))])
    out = {"offset_ms": round(activity * HOP_S * 1000, 1), "confidence": round(conf, 3), "drift_ms_per_hour": None,
           "activity_offset_ms": round(activity * HOP_S * 1000, 1)}
    # the offset itself on onsets: in-points sit on speech onsets, whatever the cues' length
    stretch, coarse = onset_alignment(cues, speech, n, max_offset_s)
    onset = onset_offset(cues, speech, coarse * HOP_S, stretch)
    if onset is not None:
        out.update(onset)
    win = int(window_s / HOP_S)
    if n >= 3 * win // 2:
        ts, offs = [], []
        for s in range(0, n - win + 1, win // 2):
            wa, wb = a[s:s + win], b[s:s + win]
            if not wa.any() or not wb.any():
                continue
            wl, _, wc = peak(*xcorr(wa, wb, int(min(max_offset_s, 5.0) / HOP_S)), guard=GUARD)
            if wc >= 0.1:
                ts.append((s + win / 2) * HOP_S)
                offs.append(wl * HOP_S * 1000)
        if len(ts) >= 3:
            slope, icpt = robust_line(np.array(ts), np.array(offs), 250.0)
            out["drift_ms_per_hour"] = round(slope * 3600, 1)
            out["offset_at_start_ms"] = round(icpt + out["offset_ms"] - out["activity_offset_ms"], 1)  # on the onsets' scale
    return out


def smallest_near_peak(lags: np.ndarray, vals: np.ndarray, ratio: float = 0.95) -> float:
    """The lag of the correlation's peak, or of the peak nearest to zero lag among those within
    `ratio` of it: dialogue at a regular pace correlates almost as well one line over as at the
    true offset, and a subtitle file is far more often on time than a whole line late."""
    top = float(vals.max())
    close = np.flatnonzero(vals >= ratio * top)
    i = int(close[np.argmin(np.abs(lags[close]))])
    while 0 < i < len(vals) - 1 and (vals[i + 1] > vals[i] or vals[i - 1] > vals[i]):  # climb to the local peak
        i = i + 1 if vals[i + 1] > vals[i] else i - 1
    return float(lags[i])


def onsets(speech: list[tuple[float, float]], min_pause_s: float = 0.3) -> list[float]:
    """Speech onsets: starts of speech after at least `min_pause_s` without it."""
    out, last_end = [], None
    for s, e in sorted(speech):
        if last_end is None or s - last_end >= min_pause_s:
            out.append(s)
        last_end = e if last_end is None else max(last_end, e)
    return out


def _pairs(starts: np.ndarray, ons: list[float], predict, reach_s: float) -> list[tuple[float, float]]:
    """(onset, cue start - onset) for each onset with a cue start within `reach_s` of its prediction."""
    out = []
    for o in ons:
        want = o + predict(o)
        j = int(np.searchsorted(starts, want))
        near = [starts[k] for k in (j - 1, j) if 0 <= k < len(starts)]
        best = min(near, key=lambda x: abs(x - want))
        if abs(best - want) <= reach_s:
            out.append((o, float(best - o)))
    return out


RATES = (23.976, 24.0, 25.0, 29.97, 30.0)
STRETCHES = (0.0,) + tuple(sorted({round(a / b - 1, 6) for a in RATES for b in RATES if a != b}))  # cues timed for another frame rate


def onset_alignment(cues: list[Cue], speech: list[tuple[float, float]], n: int, max_offset_s: float) -> tuple[float, float]:
    """(stretch, lag in hops) that line the cue starts up with the speech onsets best: for each
    frame-rate stretch (cues timed at rate a for a picture at rate b run a/b - 1 slow), the cue
    starts mapped back and cross-correlated with the onsets (Gaussian trains); a stretch must beat
    no stretch clearly (1.5x the peak) to be taken. Of near-equal lags the one nearest zero."""
    oa = _train(onsets(speech), n)
    oa = oa - oa.mean()
    best = None
    for r in STRETCHES:
        ob = _train([c.start / (1 + r) for c in cues], n)
        lags, vals = xcorr(oa, ob - ob.mean(), int(max_offset_s / HOP_S))
        top = float(vals.max())
        if r == 0.0:
            plain = (top, smallest_near_peak(lags, vals))
            best = (top, r, plain[1])
        elif top > 1.5 * plain[0] and top > best[0]:
            best = (top, r, smallest_near_peak(lags, vals))
    return best[1], best[2]


def onset_offset(cues: list[Cue], speech: list[tuple[float, float]], coarse_s: float, stretch: float = 0.0, reach_s: float = 0.3,
                 agree_s: float = 0.15) -> dict | None:
    """Cue in-points against speech onsets, starting from the offset `coarse_s`:

    - `offset_ms`: the median of cue start - onset over the onsets with a cue start within
      `reach_s` of onset + coarse; `onset_pairs`; `onset_agreement`, the share of all onsets whose
      pair lies within `agree_s` of that median (how many in-points confirm it: a short title has
      too few cues for a correlation peak to stand out, but every cue confirms an offset);
    - a line through the pairs (onset time -> difference), re-pairing around the line until it
      settles, so cues that slide away from the speech (timed for another frame rate) are followed:
      `line_drift_ms_per_hour`, `line_offset_at_start_ms` (at 0 s), `line_pairs`, `line_span_s`.

    None with fewer than 3 pairs (or a quarter of the onsets)."""
    starts = np.array(sorted(c.start for c in cues))
    ons = onsets(speech)
    if not len(starts) or not ons:
        return None
    pairs = _pairs(starts, ons, lambda o: coarse_s + stretch * o, reach_s)
    if len(pairs) < max(3, len(ons) // 4):
        return None
    diffs = [d for _, d in pairs]
    med = float(np.median(diffs))
    out = {"offset_ms": round(med * 1000, 1), "onset_pairs": len(pairs),
           "onset_agreement": round(sum(1 for d in diffs if abs(d - med) <= agree_s) / len(ons), 3)}
    slope, icpt = stretch, coarse_s
    line = pairs
    for _ in range(4):
        if len(line) < 4 or line[-1][0] - line[0][0] < 10.0:
            break
        slope, icpt = robust_line(np.array([t for t, _ in line]), np.array([d for _, d in line]), agree_s)
        again = _pairs(starts, ons, lambda o, a=icpt, b=slope: a + b * o, reach_s)
        if len(again) <= len(line) and again == line:
            break
        line = again
    if len(line) >= 6 and line[-1][0] - line[0][0] >= 20.0:
        near = sum(1 for t, d in line if abs(d - (icpt + slope * t)) <= agree_s)
        out.update(line_drift_ms_per_hour=round(slope * 3600 * 1000, 1), line_offset_at_start_ms=round(icpt * 1000, 1),
                   line_pairs=len(line), line_span_s=round(line[-1][0] - line[0][0], 2), line_agreement=round(near / len(ons), 3))
    return out


def script_language(text: str) -> tuple[str | None, float]:
    """(language, share of letters behind it) from the writing system; Latin by stop words."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None, 0.0
    counts: Counter = Counter()
    for ch in letters:
        name = unicodedata.name(ch, "")
        lang = next((code for code, script in SCRIPTS if script in name), "latin" if "LATIN" in name else None)
        if lang:
            counts[lang] += 1
    if counts.get("ja") and counts.get("zh"):  # kanji inside Japanese text
        counts["ja"] += counts.pop("zh")
    if not counts:
        return None, 0.0
    lang, k = counts.most_common(1)[0]
    share = k / len(letters)
    if lang != "latin":
        return lang, round(share, 3)
    words = re.findall(r"[^\W\d_]+", text.lower())
    hits = {code: sum(1 for w in words if w in sw) for code, sw in STOPWORDS.items()}
    best = max(hits, key=hits.get)
    if not words or hits[best] < max(3, 0.05 * len(words)):
        return None, round(share, 3)
    return best, round(hits[best] / len(words), 3)


def language_mismatch(declared: str | None, text: str) -> tuple[bool, str | None, dict]:
    """(mismatch, the text's language, evidence): the text is clearly in another language than the
    declared one. By script (Hangul declared, Latin written...); within Latin script by stop words:
    the text's language needs 3 hits and three times the declared language's."""
    lang, share = script_language(text)
    if not declared or not lang or lang == declared:
        return False, lang, {"share": share}
    if declared in STOPWORDS and lang in STOPWORDS:
        words = re.findall(r"[^\W\d_]+", text.lower())
        hits = {c: sum(1 for w in words if w in STOPWORDS[c]) for c in (declared, lang)}
        return hits[lang] >= 3 and hits[lang] >= 3 * hits[declared], lang, {"stop_words": hits, "words": len(words)}
    declared_script = next((script for code, script in SCRIPTS if code == declared), "LATIN" if declared in STOPWORDS else None)
    if declared_script is None:
        return False, lang, {"share": share}  # a language whose script we do not know: no claim
    letters = [ch for ch in text if ch.isalpha()]
    own = sum(1 for ch in letters if declared_script in unicodedata.name(ch, "")) / max(1, len(letters))
    return own < 0.2 and share >= 0.5, lang, {"declared_script_share": round(own, 3), "share": share}


def text_match(cues: list[Cue], transcript_words: list[tuple[float, float, str]], slack_s: float = 1.0) -> dict:
    """Word overlap between cues and the transcript words spoken during them (same language only)."""
    def norm(w: str) -> str:
        return re.sub(r"[^\w]", "", w.lower())

    matched = total = 0
    for c in cues:
        said = {norm(w) for s, e, w in transcript_words if s < c.end + slack_s and e > c.start - slack_s}
        words = [norm(w) for w in c.text.split() if norm(w)]
        total += len(words)
        matched += sum(1 for w in words if w in said)
    return {"cue_words": total, "matched_ratio": round(matched / total, 3) if total else None}
