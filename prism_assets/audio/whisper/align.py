"""Word timings by `whisperx.align` (wav2vec2 CTC forced alignment), when an alignment model is configured."""

from __future__ import annotations

import numpy as np

from ...settings import models_offline
from .loading import LoadedWhisper
from .pcm import f32
from .segments import segments_from_words
from .sources import WhisperLoadError


def whisperx_align(lw: LoadedWhisper, audio: np.ndarray, raw: list[dict], language: str | None, offset_s: float) -> list[dict]:
    import whisperx

    key = (lw.cfg.align_model, language)
    if key not in lw._align:
        try:
            lw._align[key] = whisperx.load_align_model(language_code=language, device=lw.device, model_name=lw.cfg.align_model,
                                                       model_cache_only=models_offline()[0])
        except Exception as exc:
            raise WhisperLoadError(f"cannot load alignment model {lw.cfg.align_model!r}: {str(exc).strip().splitlines()[0]}") from None
    amodel, ameta = lw._align[key]
    segs = [{"start": r["chunk"]["start"], "end": r["chunk"]["end"], "text": r["text"]} for r in raw]
    out = whisperx.align(segs, amodel, ameta, f32(audio), lw.device, return_char_alignments=False)
    words = []
    for s in out["segments"]:
        for w in s.get("words", []):
            if "start" in w:
                words.append({"word": " " + w["word"], "start": round(w["start"] + offset_s, 3), "end": round(w["end"] + offset_s, 3),
                              "score": round(float(w.get("score", 0.0)), 4)})
    return segments_from_words(words, lw.cfg.max_gap_s)
