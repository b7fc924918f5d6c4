"""The lexical score of search.py: how much of a query a row's text holds (0-1), accent- and case-folded.

A search scores every candidate row (up to ~100) against one query, up to three times (whether the exact words
answered, whether the query was found as a phrase, the final score). `LexicalQuery` folds and splits the query once
and remembers each text's score, so a row costs one fold of its text per search; `fold` takes a short path for ASCII
text (the same result: NFKD and the combining-mark filter change nothing there). `lexical_score(query, text)` is the
one-off form.
"""

from __future__ import annotations

import re
import unicodedata

from .features import cjk_runs

_NONWORD = re.compile(r"[^\w]+")

STOP = frozenset("a an the of to in on at and or is was were be been for with by from it its this that as his her my our your their we "
                 "you i he she they them me us not no so but if then than there here der die das und ein eine einen im am zu von mit "
                 "den dem des ist war nicht auf".split())


def fold(text: str) -> str:
    """Case- and accent-folded, punctuation to spaces, whitespace collapsed (ß -> ss)."""
    text = str(text)
    if text.isascii():  # casefold is lower(), NFKD and the combining filter are no-ops
        return " ".join(_NONWORD.sub(" ", text.lower()).split())
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_NONWORD.sub(" ", text).split())


def grams(text: str) -> set[str]:
    """Character 2- and 3-grams of each word (a CJK run is one word), over the folded text."""
    out: set[str] = set()
    for w in fold(text).split():
        if len(w) == 1:
            out.add(w)
        for n in (2, 3):
            out.update(w[i:i + n] for i in range(len(w) - n + 1))
    return out


def _code(word: str) -> int:
    """The word as one integer, character j in bits 32j..32j+31 (XOR of two codes: where two words differ)."""
    return int.from_bytes(word.encode("utf-32-le"), "little")


def near_word(w: str, words, codes: dict | None = None) -> bool:
    """w is one edit (substitution, insertion, deletion) from a word of `words` (words of 4+ letters, w not among them).

    Two words one edit apart agree up to their first difference p, and after it once the edit at p is skipped; p comes
    from the XOR of their `_code`s (its lowest set bit), so a pair costs a few integer operations instead of a Python
    loop over its letters. `codes` remembers the words' codes across calls."""
    n = len(w)
    if n < 4:
        return False
    wc = _code(w)
    for d in words:
        m = len(d)
        if m < 4 or abs(m - n) > 1:
            continue
        dc = codes.get(d) if codes is not None else None
        if dc is None:
            dc = _code(d)
            if codes is not None:
                codes[d] = dc
        k = min(m, n)
        x = (wc ^ dc) & ((1 << (32 * k)) - 1)
        if x == 0:
            if m != n:  # one is the other plus a last letter
                return True
            continue  # the same word
        p = ((x & -x).bit_length() - 1) >> 5
        if (w[p + 1:] == d[p + 1:]) if m == n else (w[p:] == d[p + 1:]) if m > n else (w[p + 1:] == d[p:]):
            return True
    return False


class LexicalQuery:
    """One query's lexical scorer: `score(text)` as `lexical_score(query, text)`, the query folded once and each
    distinct text scored once (thread safe: the memo is a dict written whole values at a time)."""

    def __init__(self, query: str):
        self.query = query
        self.fq = fold(query)
        self._phrase = f" {self.fq} "
        self.cjk_q = cjk_runs(query)
        latin = [w for w in self.fq.split() if not cjk_runs(w)]
        self.content = [w for w in latin if w not in STOP] or latin
        self.cjk_grams = grams(self.cjk_q) if self.cjk_q else set()
        self._memo: dict[str, float] = {}
        self._codes: dict[str, int] = {}

    def score(self, text: str | None) -> float:
        """How much of the query the text holds: 1 when it holds the query as a phrase; else the share of the query's
        content words (stop words left out) found in it, a word one edit away counting 0.8; CJK runs by their character
        2-/3-grams (a 2-character Korean or Japanese query inside a longer word counts as found)."""
        text = text or ""
        hit = self._memo.get(text)
        if hit is None:
            hit = self._memo[text] = self._score(text)
        return hit

    def _score(self, text: str) -> float:
        if not self.fq:
            return 0.0
        ft = fold(text)
        if self._phrase in f" {ft} ":
            return 1.0
        parts, weights = [], []
        if self.content:
            dwords = set(ft.split())
            parts.append(sum(1.0 if w in dwords else 0.8 if near_word(w, dwords, self._codes) else 0.0 for w in self.content) / len(self.content))
            weights.append(len(self.content))
        if self.cjk_q:
            q = self.cjk_grams
            parts.append(len(q & grams(cjk_runs(text))) / len(q) if q else 0.0)
            weights.append(max(1, len(self.cjk_q.split())))
        return sum(p * w for p, w in zip(parts, weights)) / sum(weights) if weights else 0.0


def lexical_score(query: str, text: str) -> float:
    """`LexicalQuery(query).score(text)`: see there."""
    return LexicalQuery(query).score(text)
