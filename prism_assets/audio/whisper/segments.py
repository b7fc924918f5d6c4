"""Words into segments (sentences) and the token -> word timing of faster-whisper's alignment."""

from __future__ import annotations

import numpy as np

SENTENCE_END = (".", "?", "!", "。", "？", "！", "…")
PREPEND, APPEND = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"


def split_sentences(words: list[dict], max_gap: float) -> list[list[dict]]:
    out, cur = [], []
    for w in words:
        if cur and (w["start"] - cur[-1]["end"] > max_gap):
            out.append(cur)
            cur = []
        cur.append(w)
        if w["word"].strip().endswith(SENTENCE_END):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def segments_from_words(words: list[dict], max_gap: float, language: str | None = None) -> list[dict]:
    segs = []
    for ws in split_sentences(words, max_gap):
        text = "".join(w["word"] for w in ws).strip()
        if not text:
            continue
        seg = {"start": ws[0]["start"], "end": ws[-1]["end"], "text": text,
               "words": [{"word": w["word"].strip(), "start": w["start"], "end": w["end"], "score": w["score"]} for w in ws if w["word"].strip()]}
        if language:
            seg["language"] = language
        segs.append(seg)
    return segs





def alignment_words(model, tok, text_tokens: list[int], ar) -> list[dict]:
    """faster-whisper's find_alignment post-processing for one item (token -> word times)."""
    if not text_tokens:
        return []
    probs = ar.text_token_probs
    text_idx = np.array([p[0] for p in ar.alignments])
    time_idx = np.array([p[1] for p in ar.alignments])
    words, word_tokens = tok.split_to_word_tokens(text_tokens + [tok.eot])
    if len(word_tokens) <= 1:
        return []
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / model.tokens_per_second
    starts, ends = jump_times[bounds[:-1]], jump_times[bounds[1:]]
    return [{"word": w, "tokens": t, "start": float(s), "end": float(e), "probability": float(np.mean(probs[i:j])) if j > i else 0.0}
            for w, t, s, e, i, j in zip(words, word_tokens, starts, ends, bounds[:-1], bounds[1:])]
