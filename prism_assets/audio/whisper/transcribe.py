"""`transcribe_audio`: one track, VAD-gated, language detected, batched, with word timings."""

from __future__ import annotations

import time

import numpy as np

from .align import whisperx_align
from .decoding import decode_items
from .language import detect_language, vad_chunks
from .loading import LoadedWhisper
from .pcm import SAMPLE_RATE, f32
from .segments import segments_from_words

TRANSCRIBE_CODE_VERSION = "transcript-2"


def transcribe_audio(lw: LoadedWhisper, audio: np.ndarray, offset_s: float = 0.0) -> dict:
    """Transcribe one 16 kHz mono track (float32, or int16 as from `load_wav16(mmap=True)`);
    times are shifted by `offset_s` (the track's start in the title)."""
    from whisperx.audio import N_SAMPLES

    cfg = lw.cfg
    t0 = time.perf_counter()
    with lw.lock:  # one CTranslate2 model per process, shared by threads
        chunks, regions = vad_chunks(lw, audio)
        t_vad = time.perf_counter() - t0
        language, prob, top = detect_language(lw, audio, chunks)
        model = lw.model
        segments: list[dict] = []
        source = "whisperx-align" if cfg.align_model else "faster-whisper"
        dropped, switched = 0, []
        per_chunk = bool(cfg.per_chunk_language and model.model.is_multilingual and not cfg.language and not cfg.align_model)
        raw = []
        for b in range(0, len(chunks), cfg.batch_size):
            batch = chunks[b : b + cfg.batch_size]
            pieces = [f32(audio, int(c["start"] * SAMPLE_RATE), int(c["end"] * SAMPLE_RATE))[:N_SAMPLES] for c in batch]
            items, d, langs = decode_items(lw, batch, pieces, language, offset_s, want_language=per_chunk)
            dropped += d
            # a chunk clearly in another language than the track's is decoded again in its own language
            other = [i for i, (l, p) in enumerate(langs) if l != language and p >= cfg.switch_language_probability]
            if other:
                redo = {id(batch[i]) for i in other}
                items = [it for it in items if id(it["chunk"]) not in redo]
                for i in other:
                    again, d2, _ = decode_items(lw, [batch[i]], [pieces[i]], langs[i][0], offset_s)
                    items += again
                    switched.append({"start_s": round(batch[i]["start"] + offset_s, 3), "end_s": round(batch[i]["end"] + offset_s, 3),
                                     "language": langs[i][0], "probability": round(langs[i][1], 4)})
                items.sort(key=lambda it: it["chunk"]["start"])
            raw += items
        if source == "faster-whisper":
            for r in raw:
                segments.extend(segments_from_words(r["words"], cfg.max_gap_s, r["language"]))
        elif raw:
            segments = whisperx_align(lw, audio, raw, language, offset_s)
    secs = time.perf_counter() - t0
    return {
        "language": language, "language_probability": prob, "language_top": [{"language": l, "probability": round(p, 4)} for l, p in top],
        "word_timestamps_source": source, "segments": segments, "language_switches": switched,
        "speech_regions": [{"start_s": round(s + offset_s, 3), "end_s": round(e + offset_s, 3)} for s, e in regions],
        "vad_chunks": len(chunks), "dropped_no_speech": dropped,
        "seconds": round(secs, 3), "vad_seconds": round(t_vad, 3), "audio_seconds": round(len(audio) / SAMPLE_RATE, 3),
    }
