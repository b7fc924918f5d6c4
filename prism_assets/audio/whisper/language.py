"""Voice activity (WhisperX pyannote VAD, block by block) and the language of a track's speech."""

from __future__ import annotations

import numpy as np

from .loading import LoadedWhisper
from .pcm import SAMPLE_RATE, f32


def vad_chunks(lw: LoadedWhisper, audio: np.ndarray) -> tuple[list[dict], list[tuple[float, float]]]:
    """(WhisperX merged chunks {start, end}, raw speech regions [(start, end)]), seconds. The VAD
    runs on blocks of `vad_block_s` so memory does not grow with the title."""
    from whisperx.vads import Pyannote

    dur = len(audio) / SAMPLE_RATE
    block = int(lw.cfg.vad_block_s * SAMPLE_RATE)
    chunks_out, regions_out = [], []
    for b0 in range(0, len(audio), block):
        x = f32(audio, b0, b0 + block)
        if len(x) < SAMPLE_RATE // 10 or not np.any(x):
            continue
        scores = lw.vad({"waveform": Pyannote.preprocess_audio(x), "sample_rate": SAMPLE_RATE})
        chunks = Pyannote.merge_chunks(scores, lw.cfg.chunk_size, onset=lw.cfg.vad_onset, offset=lw.cfg.vad_offset)
        off = b0 / SAMPLE_RATE
        regions_out += [(off + float(s), off + float(e)) for c in chunks for s, e in c["segments"]]
        chunks_out += [{"start": off + max(0.0, float(c["start"])), "end": min(dur, off + float(c["end"]))} for c in chunks]
    regions = sorted((max(0.0, s), min(dur, e)) for s, e in regions_out)
    return [c for c in chunks_out if c["end"] - c["start"] > 0.05], [(s, e) for s, e in regions if e > s]


def features(model, audio: np.ndarray) -> np.ndarray:
    from whisperx.audio import N_SAMPLES, log_mel_spectrogram

    n_mels = model.feat_kwargs.get("feature_size") or 80
    audio = audio[:N_SAMPLES]
    return log_mel_spectrogram(audio, n_mels=n_mels, padding=N_SAMPLES - audio.shape[0]).numpy()


def detect_language(lw: LoadedWhisper, audio: np.ndarray, chunks: list[dict]) -> tuple[str | None, float | None, list]:
    """Language of the first 30 s of speech (VAD regions concatenated)."""
    if lw.cfg.language:
        return lw.cfg.language, None, []
    if lw.lang_model is None:
        return "en", None, []
    if not chunks:
        return None, None, []
    pieces, total = [], 0
    for c in chunks:
        a = f32(audio, int(c["start"] * SAMPLE_RATE), int(c["end"] * SAMPLE_RATE))
        pieces.append(a)
        total += len(a)
        if total >= 30 * SAMPLE_RATE:
            break
    seg = np.concatenate(pieces)
    enc = lw.lang_model.encode(features(lw.lang_model, seg))
    res = lw.lang_model.model.detect_language(enc)[0]
    top = [(tok[2:-2], float(p)) for tok, p in res[:5]]
    return top[0][0], top[0][1], top
