"""Batched beam search of VAD chunks (one encoder pass per batch), Whisper's no-speech rule, the
hallucination guard and word timings from the same encoder output."""

from __future__ import annotations

import numpy as np

from .language import features
from .loading import LoadedWhisper
from .segments import APPEND, PREPEND, alignment_words


def tokenizer(model, language: str | None):
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                     language=language if model.model.is_multilingual else "en")


def decode_items(lw: LoadedWhisper, chunks: list[dict], pieces: list[np.ndarray], language: str | None, offset_s: float,
                  enc=None, want_language: bool = False) -> tuple[list[dict], int, list]:
    """Beam-search one batch of VAD chunks (one encoder pass), Whisper's no-speech rule, and word
    timings from the same encoder output. Returns (raw items, dropped, per-item detected languages)."""
    from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

    cfg, model = lw.cfg, lw.model
    tok = tokenizer(model, language)
    text_lang = language if model.model.is_multilingual else "en"  # an English-only model writes English
    if enc is None:
        enc = model.encode(np.stack([features(model, p) for p in pieces]))
    langs = []
    if want_language:
        langs = [(r[0][0][2:-2], float(r[0][1])) for r in model.model.detect_language(enc)]
    prompt = model.get_prompt(tok, [], without_timestamps=True)
    res = model.model.generate(enc, [prompt] * len(pieces), beam_size=cfg.beam_size, patience=1, length_penalty=1,
                               max_length=model.max_length, suppress_blank=True, suppress_tokens=get_suppressed_tokens(tok, [-1]),
                               return_scores=True, return_no_speech_prob=True)
    tokens = [[t for t in r.sequences_ids[0] if t < tok.eot] for r in res]
    keep, dropped, raw = [], 0, []
    for i, r in enumerate(res):
        n = len(r.sequences_ids[0])
        avg_lp = r.scores[0] * n / (n + 1)  # length_penalty 1: cumulative logprob / (tokens + 1)
        # Whisper's silence rule: a likely no-speech window that also decoded poorly
        if not tokens[i] or (r.no_speech_prob > 0.6 and avg_lp < -1.0):
            dropped += 1
            continue
        keep.append((i, float(avg_lp), float(r.no_speech_prob)))
    if cfg.align_model:  # words come from whisperx.align later
        for i, lp, nsp in keep:
            raw.append({"chunk": chunks[i], "text": tok.decode(tokens[i]), "avg_logprob": lp, "no_speech_prob": nsp, "language": text_lang})
        return raw, dropped, langs
    if keep:
        num_frames = [int(len(pieces[i]) // 160) for i, _, _ in keep]
        align = model.model.align(enc, tok.sot_sequence, [tokens[i] for i, _, _ in keep], num_frames, median_filter_width=7)
        for (i, lp, nsp), ar in zip(keep, align):
            words = alignment_words(model, tok, tokens[i], ar)
            merge_punctuations(words, PREPEND, APPEND)
            c = chunks[i]
            ws = []
            for w in words:
                if not w["word"]:
                    continue
                s0 = min(max(c["start"] + w["start"], c["start"]), c["end"])
                e0 = min(max(c["start"] + w["end"], s0), c["end"])
                ws.append({"word": w["word"], "start": round(s0 + offset_s, 3), "end": round(e0 + offset_s, 3), "score": round(float(w["probability"]), 4)})
            for j in range(1, len(ws)):  # monotonic
                if ws[j]["start"] < ws[j - 1]["end"]:
                    ws[j]["start"] = ws[j - 1]["end"]
                    ws[j]["end"] = max(ws[j]["end"], ws[j]["start"])
            if ws and len(ws) <= cfg.lone_words_max and sum(w["score"] for w in ws) / len(ws) < cfg.lone_words_min_probability:
                dropped += 1  # a few unsure words over a non-speech sound: the hallucination guard
                continue
            raw.append({"chunk": c, "words": ws, "avg_logprob": lp, "no_speech_prob": nsp, "language": text_lang})
    return raw, dropped, langs
